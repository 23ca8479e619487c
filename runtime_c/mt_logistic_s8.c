/* mt_logistic_s8: int8 logistic (output scale 1/256, zero point -128), TFLite's arithmetic:
 * input rescaled to Q4.27, gemmlowp logistic, inputs beyond the radius saturate. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_logistic_s8(const mt_logistic_params *p, const int8_t *in, int8_t *out, int32_t size)
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
            v = mt_clamp(mt_rdbypot(mt_logistic_q(q4, 4), 31 - 8) - 128, -128, 127);
        }
        out[i] = (int8_t)v;
    }
    return MT_OK;
}
