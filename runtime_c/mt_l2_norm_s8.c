/* mt_l2_norm_s8: int8 L2_NORMALIZATION over the last axis, TFLite-Micro's
 * reference_integer_ops::L2Normalization: per row the int32 sum of (x - z_x)^2, its inverse
 * square root as a quantized multiplier, each x - z_x rescaled to 1/128 units and clamped. */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_l2_norm_s8(int32_t input_zp, int32_t outer, int32_t depth, const int8_t *in, int8_t *out)
{
    if (in == 0 || out == 0 || outer < 0 || depth < 0 || depth > 33025) {
        return MT_ERR_ARG;
    }
    for (int32_t r = 0; r < outer; ++r) {
        const int8_t *x = in + (int64_t)r * depth;
        int8_t *y = out + (int64_t)r * depth;
        int32_t acc = 0;
        for (int32_t i = 0; i < depth; ++i) {
            const int32_t v = (int32_t)x[i] - input_zp;
            acc += v * v; /* <= 33025 * 255^2 < 2^31 */
        }
        int32_t m, s;
        mt_inv_sqrt_multiplier_exp(acc, &m, &s);
        for (int32_t i = 0; i < depth; ++i) {
            y[i] = (int8_t)mt_clamp(mt_mbqm((int32_t)x[i] - input_zp, m, s + 7), -128, 127);
        }
    }
    return MT_OK;
}
