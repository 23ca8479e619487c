/* mt_softmax_s8_s16: SOFTMAX along the last axis, int8 input, int16 output (scale 1/65536, zero
 * point -32768): TFLite-Micro reference_ops::Softmax<int8_t, int16_t>, the int8 kernel's
 * arithmetic (mt_softmax_s8.c: gemmlowp exp with 5 integer bits, sum of exps in Q12,
 * reciprocal by Newton-Raphson) with the result rounded to 16 bits instead of 8. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_softmax_s8_s16(const mt_softmax_params *p, const int8_t *in, int32_t rows, int32_t depth, int16_t *out)
{
    if (p == 0 || in == 0 || out == 0 || rows < 0 || depth < 1) {
        return MT_ERR_ARG;
    }
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = in + r * depth;
        int16_t *y = out + r * depth;
        int32_t max_v = -128;
        for (int32_t i = 0; i < depth; ++i) {
            max_v = x[i] > max_v ? x[i] : max_v;
        }
        uint32_t sum = 0; /* wraps like the reference's int32 sum */
        for (int32_t i = 0; i < depth; ++i) {
            const int32_t diff = x[i] - max_v;
            if (diff >= p->diff_min) {
                const int32_t scaled = mt_mbqm_greater_than_one(diff, p->input_multiplier, p->input_left_shift);
                sum += (uint32_t)mt_rescale(mt_exp_on_negative_values(scaled, 5), 0, 12);
            }
        }
        int32_t num_bits_over_unit = 0;
        const int32_t shifted_scale = mt_get_reciprocal(mt_wrap32((int64_t)sum), 12, &num_bits_over_unit);
        const int32_t exponent = num_bits_over_unit + 31 - 16;
        if (exponent < 0 || exponent > 31) {
            return MT_ERR_ARG; /* TFLM's TFLITE_CHECK; unreachable: the row maximum's exp is 1 */
        }
        for (int32_t i = 0; i < depth; ++i) {
            const int32_t diff = x[i] - max_v;
            int32_t v = -32768;
            if (diff >= p->diff_min) {
                const int32_t scaled = mt_mbqm_greater_than_one(diff, p->input_multiplier, p->input_left_shift);
                const int32_t e = mt_exp_on_negative_values(scaled, 5);
                v = mt_clamp(mt_rdbypot(mt_srdhm(shifted_scale, e), exponent) - 32768, -32768, 32767);
            }
            y[i] = (int16_t)v;
        }
    }
    return MT_OK;
}
