/* mt_minimum_s8: int8 MINIMUM of the raw quantized values (TFLite-Micro) over a 4-D output with per-input strides (0 = broadcast). */
#include "mt_internal.h"
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_minimum_s8(const mt_broadcast *b, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    if (b == 0 || in1 == 0 || in2 == 0 || out == 0) {
        return MT_ERR_ARG;
    }
    MT_BROADCAST_EACH(b, in1, in2, out, x1, x2, (int8_t)(x1 < x2 ? x1 : x2));
    return MT_OK;
}
