/* mt_softmax_s8: int8 softmax along the last axis (TFLite-Micro's int8 arithmetic: gemmlowp
 * exp with 5 integer bits, sum of exps in Q12, reciprocal by Newton-Raphson). */
#include "mt_nn.h"
#include "mt_quant.h"

#define MT_SOFTMAX_DIFF_INT_BITS 5
#define MT_SOFTMAX_ACCUM_BITS 12

mt_status mt_softmax_s8(const mt_softmax_params *p, const int8_t *in, int32_t rows, int32_t depth, int8_t *out)
{
    if (p == 0 || in == 0 || out == 0 || rows < 0 || depth < 1) {
        return MT_ERR_ARG;
    }
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = in + r * depth;
        int8_t *y = out + r * depth;
        int32_t max_v = -128;
        for (int32_t i = 0; i < depth; ++i) {
            max_v = x[i] > max_v ? x[i] : max_v;
        }
        uint32_t sum = 0; /* wraps like the reference's int32 sum */
        for (int32_t i = 0; i < depth; ++i) {
            const int32_t diff = x[i] - max_v;
            if (diff >= p->diff_min) {
                const int32_t scaled = mt_mbqm_greater_than_one(diff, p->input_multiplier, p->input_left_shift);
                const int32_t e = mt_exp_on_negative_values(scaled, MT_SOFTMAX_DIFF_INT_BITS);
                sum += (uint32_t)mt_rescale(e, 0, MT_SOFTMAX_ACCUM_BITS);
            }
        }
        int32_t num_bits_over_unit = 0;
        const int32_t shifted_scale =
            mt_get_reciprocal(mt_wrap32((int64_t)sum), MT_SOFTMAX_ACCUM_BITS, &num_bits_over_unit);
        const int32_t exponent = num_bits_over_unit + 31 - 8;
        for (int32_t i = 0; i < depth; ++i) {
            const int32_t diff = x[i] - max_v;
            int32_t v = -128;
            if (diff >= p->diff_min) {
                const int32_t scaled = mt_mbqm_greater_than_one(diff, p->input_multiplier, p->input_left_shift);
                const int32_t e = mt_exp_on_negative_values(scaled, MT_SOFTMAX_DIFF_INT_BITS);
                v = mt_clamp(mt_rdbypot(mt_srdhm(shifted_scale, e), exponent) - 128, -128, 127);
            }
            y[i] = (int8_t)v;
        }
    }
    return MT_OK;
}
