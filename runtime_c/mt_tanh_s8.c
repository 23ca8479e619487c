/* mt_tanh_s8: int8 tanh (output Q0.7, zero point 0), TFLite reference_integer_ops::Tanh:
 * input rescaled to Q4.27, gemmlowp tanh (compiler/core/quant.py tanh_q), inputs beyond the radius
 * saturate. */
#include "mt_nn.h"
#include "mt_quant.h"

/* gemmlowp one_minus_x_over_one_plus_x_for_x_in_0_1: (1-a)/(1+a), a and the result in Q0.31. */
static int32_t one_minus_x_over_one_plus_x(int32_t a)
{
    const int32_t half_denominator = mt_rounding_half_sum(a, MT_INT32_MAX);
    const int32_t one_f2 = 1 << 29;
    int32_t x = mt_wrap32((int64_t)1515870810 + mt_srdhm(half_denominator, -1010580540));
    for (int32_t i = 0; i < 3; ++i) {
        const int32_t hdx = mt_srdhm(half_denominator, x);
        const int32_t one_minus = mt_wrap32((int64_t)one_f2 - hdx);
        x = mt_wrap32((int64_t)x + mt_rescale(mt_srdhm(x, one_minus), 4, 2));
    }
    return mt_rescale(mt_wrap32((int64_t)x - one_f2), 2, 0);
}

/* gemmlowp tanh on a Q(integer_bits) input, Q0.31 output. */
static int32_t tanh_q(int32_t a, int32_t integer_bits)
{
    if (a == 0) {
        return 0;
    }
    const int32_t n = a < 0 ? a : mt_wrap32(-(int64_t)a);
    const int32_t t = one_minus_x_over_one_plus_x(mt_exp_on_negative_values(n, integer_bits + 1));
    return a < 0 ? mt_wrap32(-(int64_t)t) : t;
}

mt_status mt_tanh_s8(const mt_logistic_params *p, const int8_t *in, int8_t *out, int32_t size)
{
    if (p == 0 || in == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t x = (int32_t)in[i] - p->input_zp;
        int32_t v;
        if (x <= -p->input_range_radius) {
            v = -128;
        } else if (x >= p->input_range_radius) {
            v = 127;
        } else {
            const int32_t q4 = mt_mbqm(x, p->input_multiplier, p->input_left_shift);
            v = mt_clamp(mt_rdbypot(tanh_q(q4, 4), 31 - 7), -128, 127);
        }
        out[i] = (int8_t)v;
    }
    return MT_OK;
}
