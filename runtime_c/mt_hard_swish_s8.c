/* mt_hard_swish_s8: int8 hard swish with TFLite's int16-internal arithmetic. */
#include "mt_nn.h"
#include "mt_quant.h"

/* gemmlowp SaturatingRoundingDoublingHighMul on int16 values. */
static int32_t srdhm16(int32_t a, int32_t b)
{
    if (a == b && a == -32768) {
        return 32767;
    }
    const int32_t ab = a * b;
    const int32_t s = ab + (ab >= 0 ? (1 << 14) : (1 - (1 << 14)));
    return s >= 0 ? (s >> 15) : -((-s) >> 15);
}

mt_status mt_hard_swish_s8(const mt_hard_swish_params *p, const int8_t *in, int8_t *out, int32_t size)
{
    if (p == 0 || in == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    const int32_t re = p->reluish_exponent;
    for (int32_t i = 0; i < size; ++i) {
        const int32_t x = mt_wrap16((int32_t)in[i] - p->input_zp);
        const int32_t hires = mt_wrap16(x * 128);
        const int32_t pre_out = srdhm16(hires, p->output_multiplier);
        int32_t r = hires;
        if (re > 0) {
            r = mt_sat16((int64_t)r * ((int64_t)1 << (re - 1)));
        }
        r = srdhm16(r, p->reluish_multiplier);
        if (re > 0) {
            r = mt_sat16((int64_t)r * 2);
        }
        if (re < 0) {
            r = mt_rdbypot(r, -re);
        }
        r = mt_wrap16((r + (1 << 15)) >> 1); /* [-1, 1] -> [0, 1] in Q0.15 */
        int32_t pre;
        if (r == pre_out && r == -32768) {
            pre = 32767;
        } else {
            const int32_t ab = r * pre_out;
            pre = ab >= 0 ? (ab >> 15) : -((-ab) >> 15);
        }
        pre = mt_wrap16(pre);
        const int32_t v = mt_wrap16((int64_t)mt_rdbypot(pre, -p->output_exponent) + p->output_zp);
        out[i] = (int8_t)mt_clamp(v, -128, 127);
    }
    return MT_OK;
}
