/* mt_squared_difference_s16: int16 SQUARED_DIFFERENCE (TFLite-Micro squared_difference.cc, left
 * shift 0, zero points 0) over a 4-D output with per-input strides (0 = broadcast). */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_squared_difference_s16(const mt_add_params *p, const mt_broadcast *b, const int16_t *in1,
                                    const int16_t *in2, int16_t *out)
{
    if (p == 0 || b == 0 || in1 == 0 || in2 == 0 || out == 0 || p->left_shift != 0) {
        return MT_ERR_ARG;
    }
    MT_BROADCAST_EACH(b, in1, in2, out, x1, x2, (int16_t)mt_squared_difference_one(p, x1, x2));
    return MT_OK;
}
