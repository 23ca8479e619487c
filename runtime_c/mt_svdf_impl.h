/* mt_svdf_impl.h: the body of mt_svdf_s8 (int16 time weights and state) and
 * mt_svdf_state8_s8 (int8 ones), written once for a state / time-weights element type T with
 * range [T_MIN, T_MAX] (TFLite-Micro's EvalIntegerSvdfReference<T>; see mt_svdf_s8.c).
 * `reset_value` is what the state holds after TFLM's reset: 0 for int16, the zero point for
 * int8. Returns from the enclosing kernel. Private to the two kernel files. */
#ifndef MT_SVDF_IMPL_H
#define MT_SVDF_IMPL_H

#include "mt_nn.h"
#include "mt_quant.h"

#define MT_SVDF_BODY(T, T_MIN, T_MAX, reset_value)                                                       \
    do {                                                                                               \
        if (p == 0 || in == 0 || weights_feature == 0 || weights_time == 0 || state == 0 || out == 0 ||  \
            p->batches < 1 || p->input_size < 1 || p->units < 1 || p->rank < 1 || p->memory < 1) {       \
            return MT_ERR_ARG;                                                                         \
        }                                                                                              \
        const int32_t filters = p->units * p->rank, memory = p->memory, n_in = p->input_size;          \
        if (reset_state) {                                                                             \
            for (int32_t k = 0; k < p->batches * filters * memory; ++k) {                              \
                state[k] = (T)(reset_value);                                                           \
            }                                                                                          \
        }                                                                                              \
        for (int32_t b = 0; b < p->batches; ++b) {                                                     \
            const int8_t *x = in + b * n_in;                                                           \
            for (int32_t u = 0; u < p->units; ++u) {                                                   \
                uint32_t acc = bias != 0 ? (uint32_t)bias[u] : 0u;                                     \
                for (int32_t j = 0; j < p->rank; ++j) {                                                \
                    const int32_t f = u * p->rank + j;                                                 \
                    T *s = state + (b * filters + f) * memory;                                         \
                    for (int32_t m = 0; m + 1 < memory; ++m) {                                         \
                        s[m] = s[m + 1];                                                               \
                    }                                                                                  \
                    const int8_t *w = weights_feature + f * n_in;                                      \
                    uint32_t dot = 0u; /* each product <= 128 * 255; the sum wraps as TFLM's int32 */  \
                    for (int32_t c = 0; c < n_in; ++c) {                                               \
                        dot += (uint32_t)((int32_t)w[c] * ((int32_t)x[c] - p->input_zp));             \
                    }                                                                                  \
                    const int32_t v = mt_clamp(mt_mbqm(mt_wrap32((int64_t)dot), p->multiplier1, p->shift1), \
                                               (T_MIN), (T_MAX));                                      \
                    const int32_t nv = (int32_t)(((uint32_t)(p->state_zp + v) - (uint32_t)(T_MIN)) &      \
                                                 (uint32_t)((T_MAX) - (T_MIN))) + (T_MIN);              \
                    s[memory - 1] = (T)nv; /* wrapped to T, as TFLM's store */                         \
                    const T *wt = weights_time + f * memory;                                           \
                    uint32_t t = 0u; /* |wt (s - zp)| <= 32768 * 65535 < 2^31 */                       \
                    for (int32_t m = 0; m < memory; ++m) {                                             \
                        t += (uint32_t)((int32_t)wt[m] * ((int32_t)s[m] - p->state_zp));               \
                    }                                                                                  \
                    acc += t;                                                                          \
                }                                                                                      \
                const int32_t y = mt_mbqm(mt_wrap32((int64_t)acc), p->multiplier2, p->shift2) + p->output_zp; \
                out[b * p->units + u] = (int8_t)mt_clamp(y, -128, 127);                                \
            }                                                                                          \
        }                                                                                              \
        return MT_OK;                                                                                  \
    } while (0)

#endif /* MT_SVDF_IMPL_H */
