/* mt_sub_s8: int8 SUB (TFLite: ADD's rescaling, the second input subtracted) over a 4-D output with per-input strides (0 = broadcast). */
#include "mt_internal.h"
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_sub_s8(const mt_add_params *p, const mt_broadcast *b, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    if (p == 0 || b == 0 || in1 == 0 || in2 == 0 || out == 0) {
        return MT_ERR_ARG;
    }
    MT_BROADCAST_EACH(b, in1, in2, out, x1, x2, (int8_t)mt_add_sub_one(p, x1, x2, -1));
    return MT_OK;
}
