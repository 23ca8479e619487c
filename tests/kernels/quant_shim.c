/* Host-test shim: exports the static inline helpers of mt_quant.h over arrays, so
 * tests/test_kernels.py can compare them with compiler/core/quant.py through ctypes. */
#include <stdint.h>

#include "mt_quant.h"

#define MT_SHIM2(name, expr)                                                                  \
    void mt_test_##name(const int32_t *a, const int32_t *b, int32_t *out, int32_t n);         \
    void mt_test_##name(const int32_t *a, const int32_t *b, int32_t *out, int32_t n)          \
    {                                                                                         \
        for (int32_t i = 0; i < n; ++i) {                                                     \
            out[i] = (expr);                                                                  \
        }                                                                                     \
    }

#define MT_SHIM3(name, expr)                                                                  \
    void mt_test_##name(const int32_t *a, const int32_t *b, const int32_t *c, int32_t *out,   \
                        int32_t n);                                                           \
    void mt_test_##name(const int32_t *a, const int32_t *b, const int32_t *c, int32_t *out,   \
                        int32_t n)                                                            \
    {                                                                                         \
        for (int32_t i = 0; i < n; ++i) {                                                     \
            out[i] = (expr);                                                                  \
        }                                                                                     \
    }

MT_SHIM2(srdhm, mt_srdhm(a[i], b[i]))
MT_SHIM2(rdbypot, mt_rdbypot(a[i], b[i]))
MT_SHIM3(mbqm, mt_mbqm(a[i], b[i], c[i]))
MT_SHIM3(mbqm_smaller_than_one, mt_mbqm_smaller_than_one(a[i], b[i], c[i]))
MT_SHIM3(mbqm_greater_than_one, mt_mbqm_greater_than_one(a[i], b[i], c[i]))
MT_SHIM3(rescale, mt_rescale(a[i], b[i], c[i]))
MT_SHIM2(exp_on_negative_values, mt_exp_on_negative_values(a[i], b[i]))
MT_SHIM2(one_over_one_plus_x_for_x_in_0_1, mt_one_over_one_plus_x_for_x_in_0_1(a[i] + 0 * b[i]))
MT_SHIM2(logistic_q, mt_logistic_q(a[i], b[i]))
MT_SHIM2(clz32, mt_clz32((uint32_t)a[i] + 0u * (uint32_t)b[i]))
MT_SHIM2(wrap16, mt_wrap16((int64_t)a[i] * b[i]))

void mt_test_get_reciprocal(const int32_t *a, const int32_t *b, int32_t *out, int32_t *nbits, int32_t n);
void mt_test_get_reciprocal(const int32_t *a, const int32_t *b, int32_t *out, int32_t *nbits, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        out[i] = mt_get_reciprocal(a[i], b[i], &nbits[i]);
    }
}
