/* mt_svdf_s8: TFLite SVDF, int8 input and output, int8 feature weights, int16 time weights and
 * state (TFLite-Micro svdf_common.cc EvalIntegerSvdfReference): per batch and filter f the
 * state row of `memory` values shifts left by one, its newest value becomes
 * state_zp + clamp16(MBQM1(sum_c (x_c - input_zp) wf[f][c])), the time product
 * sum_m (state[f][m] - state_zp) wt[f][m] is taken; per unit u the bias plus the time products
 * of its `rank` filters (int32, wrapping as TFLM's sums) goes through MBQM2 + output_zp, clamped
 * to int8. TFLM's integer kernel applies no fused activation; neither does this one.
 * state: [batches][units * rank][memory] int16, updated in place; reset_state != 0 zeroes it
 * first (what TFLM's variable tensor holds after AllocateTensors / reset), so the call equals
 * TFLM's first invoke. No scratch. Python: compiler/reference.py svdf_step. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_svdf_s8(const mt_svdf_params *p, const int8_t *in, const int8_t *weights_feature,
                     const int16_t *weights_time, const int32_t *bias, int16_t *state, int32_t reset_state, int8_t *out)
{
    if (p == 0 || in == 0 || weights_feature == 0 || weights_time == 0 || state == 0 || out == 0 ||
        p->batches < 1 || p->input_size < 1 || p->units < 1 || p->rank < 1 || p->memory < 1) {
        return MT_ERR_ARG;
    }
    const int32_t filters = p->units * p->rank, memory = p->memory, n_in = p->input_size;
    if (reset_state) {
        for (int32_t k = 0; k < p->batches * filters * memory; ++k) {
            state[k] = 0;
        }
    }
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * n_in;
        for (int32_t u = 0; u < p->units; ++u) {
            uint32_t acc = bias != 0 ? (uint32_t)bias[u] : 0u;
            for (int32_t j = 0; j < p->rank; ++j) {
                const int32_t f = u * p->rank + j;
                int16_t *s = state + (b * filters + f) * memory;
                for (int32_t m = 0; m + 1 < memory; ++m) {
                    s[m] = s[m + 1];
                }
                const int8_t *w = weights_feature + f * n_in;
                uint32_t dot = 0u; /* |w (x - zp)| <= 128 * 255: each product fits, the sum wraps */
                for (int32_t c = 0; c < n_in; ++c) {
                    dot += (uint32_t)((int32_t)w[c] * ((int32_t)x[c] - p->input_zp));
                }
                const int32_t v = mt_clamp(mt_mbqm(mt_wrap32((int64_t)dot), p->multiplier1, p->shift1), -32768, 32767);
                s[memory - 1] = (int16_t)mt_wrap16((int64_t)p->state_zp + v);
                const int16_t *wt = weights_time + f * memory;
                uint32_t t = 0u; /* |wt (s - zp)| <= 32768 * 65535 < 2^31 */
                for (int32_t m = 0; m < memory; ++m) {
                    t += (uint32_t)((int32_t)wt[m] * ((int32_t)s[m] - p->state_zp));
                }
                acc += t;
            }
            const int32_t y = mt_mbqm(mt_wrap32((int64_t)acc), p->multiplier2, p->shift2) + p->output_zp;
            out[b * p->units + u] = (int8_t)mt_clamp(y, -128, 127);
        }
    }
    return MT_OK;
}
