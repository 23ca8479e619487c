/* mt_maximum_s16: int16 MAXIMUM of the raw quantized values (TFLite-Micro), 4-D broadcast. */
#include "mt_internal.h"
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_maximum_s16(const mt_broadcast *b, const int16_t *in1, const int16_t *in2, int16_t *out)
{
    if (b == 0 || in1 == 0 || in2 == 0 || out == 0) {
        return MT_ERR_ARG;
    }
    MT_BROADCAST_EACH(b, in1, in2, out, x1, x2, (int16_t)(x1 > x2 ? x1 : x2));
    return MT_OK;
}
