/* mt_mul_s16: int16 MUL over a 4-D output with per-input strides (0 = broadcast);
 * the same arithmetic as the int8 kernel, clamped to the int16 activation range. */
#include "mt_internal.h"
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_mul_s16(const mt_mul_params *p, const mt_broadcast *b, const int16_t *in1, const int16_t *in2,
                     int16_t *out)
{
    if (p == 0 || b == 0 || in1 == 0 || in2 == 0 || out == 0) {
        return MT_ERR_ARG;
    }
    MT_BROADCAST_EACH(b, in1, in2, out, x1, x2, (int16_t)mt_mul_one(p, x1, x2));
    return MT_OK;
}
