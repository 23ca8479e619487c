/* mt_rsqrt_s16: int16 RSQRT, TFLite-Micro's RsqrtEvalQuantized (elementwise.cc): the inverse
 * square root of x - z_x as a quantized multiplier, applied to 1 in Q20, rescaled to the output;
 * fails (MT_ERR_ARG) on an input below the zero point, as TFLM's invoke does. */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_rsqrt_s16(const mt_rsqrt_params *p, const int16_t *in, int16_t *out, int32_t size)
{
    if (p == 0 || in == 0 || out == 0 || size < 0 || p->shift > 31 + 20) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        if ((int32_t)in[i] < p->input_zp) {
            return MT_ERR_ARG;
        }
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t v = (int32_t)in[i] - p->input_zp;
        if (v == 0) {
            out[i] = 32767;
            continue;
        }
        int32_t m, s;
        mt_inv_sqrt_multiplier_exp(v, &m, &s);
        const int32_t data = mt_mbqm(1, m, s + 20);
        out[i] = (int16_t)mt_clamp(mt_mbqm(data, p->multiplier, p->shift - 20) + p->output_zp, -32768, 32767);
    }
    return MT_OK;
}
