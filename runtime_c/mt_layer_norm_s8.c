/* mt_layer_norm_s8: integer-only LayerNorm over the last axis (rows of `dim` int8 values).
 * The arithmetic (int32/int64 only, one integer square root and one 64-bit division per row)
 * is stated in compiler/core/lower.py (_lower_layer_norm); compiler/golden/reference.py is its spec. */
#include "mt_nn.h"

/* floor(sqrt(x)) by the bit-by-bit method. */
static uint32_t mt_isqrt64(uint64_t x)
{
    uint64_t res = 0;
    uint64_t bit = (uint64_t)1 << 62;
    while (bit > x) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (x >= res + bit) {
            x -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)res;
}

static int32_t mt_bit_length64(uint64_t x)
{
    int32_t n = 0;
    while (x != 0) {
        ++n;
        x >>= 1;
    }
    return n;
}

mt_status mt_layer_norm_s8(const mt_layer_norm_params *p, const int32_t *gamma_q, const int32_t *beta_q,
                           const int8_t *in, int32_t rows, int8_t *out)
{
    if (p == 0 || gamma_q == 0 || beta_q == 0 || in == 0 || out == 0 || rows < 0 || p->dim < 1 ||
        p->dim > MT_LAYER_NORM_MAX_DIM || p->out_shift < 17 || p->out_shift > 40 || p->eps_term < 0) {
        return MT_ERR_ARG;
    }
    const int32_t n = p->dim;
    const int32_t sh = p->out_shift;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = in + (int64_t)r * n;
        int8_t *y = out + (int64_t)r * n;
        int32_t sum = 0;
        for (int32_t i = 0; i < n; ++i) {
            sum += x[i];
        }
        uint64_t v = 0;
        for (int32_t i = 0; i < n; ++i) {
            const int64_t c = (int64_t)n * x[i] - sum;
            v += (uint64_t)(c * c);
        }
        const uint64_t w = (uint64_t)n * v + (uint64_t)p->eps_term;
        int64_t inv = 0;
        int32_t k = 0;
        if (w != 0) {
            k = (62 - mt_bit_length64(w)) / 2;
            inv = (int64_t)((((uint64_t)1) << 61) / mt_isqrt64(w << (2 * k)));
        }
        const int32_t nshift = 45 - k;
        const int64_t nround = (int64_t)1 << (nshift - 1);
        const int64_t oround = (int64_t)1 << (sh - 1);
        for (int32_t i = 0; i < n; ++i) {
            /* c = n * x - sum, times n: |n c| < 2^31, |n c * inv| < 2^62 */
            const int64_t t = (int64_t)n * ((int64_t)n * x[i] - sum);
            const int64_t nq = w != 0 ? (t * inv + nround) >> nshift : 0;
            const int64_t acc = (int64_t)gamma_q[i] * nq + beta_q[i];
            int64_t o = p->output_zp + ((acc + oround) >> sh);
            o = o < -128 ? -128 : (o > 127 ? 127 : o);
            y[i] = (int8_t)o;
        }
    }
    return MT_OK;
}
