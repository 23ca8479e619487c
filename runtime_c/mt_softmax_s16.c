/* mt_softmax_s16: int16 SOFTMAX along the last axis (input zero point 0, output 1/32768 with
 * zero point 0), TFLite-Micro reference_ops::SoftmaxInt16: each difference to the row maximum
 * rescaled (MBQM) so -65535 is -10.0, exp from a 513-entry LUT, the sum's reciprocal from the
 * 1/(1+x) LUT after normalizing it by its leading zeros, each exp times it, rounded, in
 * [0, 32767]. The LUTs are TFLM's (mt_lut16.h). The exps are computed twice instead of cached
 * in the output, so `out` may be `in`. Python: compiler/core/lut16.py softmax16_rows. */
#include "mt_lut16.h"
#include "mt_nn.h"
#include "mt_quant.h"

static int32_t exp16(const mt_lut16_params *p, int32_t diff)
{
    const int32_t scaled = mt_mbqm(diff, p->input_multiplier, p->input_left_shift);
    const int64_t sym = (int64_t)scaled + 32767;
    return mt_lut_lookup16((int32_t)(sym > 32767 ? 32767 : (sym < -32768 ? -32768 : sym)), mt_softmax16_exp);
}

mt_status mt_softmax_s16(const mt_lut16_params *p, const int16_t *in, int32_t rows, int32_t depth, int16_t *out)
{
    if (p == 0 || in == 0 || out == 0 || rows < 0 || depth < 1 || depth > 65535) {
        return MT_ERR_ARG;
    }
    for (int32_t r = 0; r < rows; ++r) {
        const int16_t *x = in + r * depth;
        int16_t *y = out + r * depth;
        int32_t max_v = -32768;
        for (int32_t c = 0; c < depth; ++c) {
            max_v = x[c] > max_v ? x[c] : max_v;
        }
        int32_t sum = 0; /* each exp <= 32767, depth <= 65535: no overflow */
        for (int32_t c = 0; c < depth; ++c) {
            sum += exp16(p, x[c] - max_v);
        }
        const int32_t hpo = mt_clz32((uint32_t)sum); /* sum >= 1: the maximum's exp is ~32767 */
        const int32_t shifted = (int32_t)((((int64_t)sum << (hpo - 1)) + (1 << 13)) >> 14);
        int32_t sym = shifted - ((1 << 15) + (1 << 16));
        sym = sym > 32767 ? 32767 : (sym < -32768 ? -32768 : sym);
        const int64_t recip = mt_lut_lookup16(sym, mt_softmax16_inv);
        const int32_t rs = 31 - hpo;
        const int64_t round = (int64_t)1 << (rs - 1);
        for (int32_t c = 0; c < depth; ++c) {
            const int64_t v = ((int64_t)exp16(p, x[c] - max_v) * recip + round) >> rs;
            y[c] = (int16_t)(v < 0 ? 0 : (v > 32767 ? 32767 : v));
        }
    }
    return MT_OK;
}
