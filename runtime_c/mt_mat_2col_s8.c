/* mt_mat_2col_s8 + mt_widen_s8: the matrix core shared by mt_conv_1x1_s8_dsp and
 * mt_conv_s8_dsp (internal, declared in mt_simd.h).
 *
 * Two output pixels x two output channels per step: four accumulators, each SMLAD does two
 * MACs; per group of 4 reduction values the core issues 4 LDRD (2 columns, 2 filter rows
 * pre-widened) + 8 SMLAD, or with an int8 filter 2 LDRD + 2 LDR + 4 SXTB16 + 8 SMLAD.
 */
#include "mt_simd.h"

void mt_widen_s8(const int8_t *src, int32_t n, int32_t *dst, int32_t step)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t v = mt_read_s8x4(src + i);
        dst[0] = mt_sxtb16(v);
        dst[1] = mt_sxtb16_ror8(v);
        dst += step;
    }
    if (i < n) {
        int8_t t[4] = {0, 0, 0, 0};
        for (int32_t j = 0; i + j < n; ++j) {
            t[j] = src[i + j];
        }
        const int32_t v = mt_read_s8x4(t);
        dst[0] = mt_sxtb16(v);
        dst[1] = mt_sxtb16_ror8(v);
    }
}

#if !MT_SIMD
static inline int32_t lo16(int32_t w)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)w & 0xFFFFu);
}

static inline int32_t hi16(int32_t w)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)w >> 16);
}

/* One group: column words x0 = (k0 | k2 << 16), x1 = (k1 | k3 << 16) against filter words of
 * the same layout. Products are at most 2^14, sums of 4 fit easily; the wrap matches SMLAD. */
static inline int32_t dot_group(int32_t acc, int32_t x0, int32_t x1, int32_t w0, int32_t w1)
{
    const int32_t s = lo16(x0) * lo16(w0) + hi16(x0) * hi16(w0) + lo16(x1) * lo16(w1) + hi16(x1) * hi16(w1);
    return mt_add_wrap(acc, s);
}

static inline int32_t pack_s8(const int8_t *w, int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)(int32_t)w[b] << 16) | ((uint32_t)(int32_t)w[a] & 0xFFFFu));
}
#endif

#define MT_MAT_GROUP_W16()                  \
    do {                                    \
        int32_t x0, x1, y0, y1, u0, u1, v0, v1; \
        MT_LD2(xp, x0, x1);                 \
        MT_LD2(xp, y0, y1);                 \
        MT_LD2(wp, u0, u1);                 \
        a00 = __smlad(x0, u0, a00);         \
        a00 = __smlad(x1, u1, a00);         \
        a10 = __smlad(y0, u0, a10);         \
        a10 = __smlad(y1, u1, a10);         \
        MT_LD2(wp, v0, v1);                 \
        a01 = __smlad(x0, v0, a01);         \
        a01 = __smlad(x1, v1, a01);         \
        a11 = __smlad(y0, v0, a11);         \
        a11 = __smlad(y1, v1, a11);         \
    } while (0)

void mt_mat_2col_s8(const int32_t *x, int32_t k_groups, const void *filter, int32_t wide,
                    const mt_fast_quant *q, int32_t n_out, const mt_fast_params *p, int8_t *out0,
                    int8_t *out1)
{
    const int32_t *w32 = (const int32_t *)filter;
    const int8_t *w8 = (const int8_t *)filter;
    const mt_out_stage o = mt_out_stage_of(p);
    for (int32_t c = 0; c < n_out; c += 2) {
        const mt_fast_quant *q0 = &q[c];
        const mt_fast_quant *q1 = c + 1 < n_out ? &q[c + 1] : q0;
        int32_t a00 = q0->bias, a01 = q1->bias, a10 = q0->bias, a11 = q1->bias;
        const int32_t *xp = x;
#if MT_SIMD
        if (wide) {
            const int32_t *wp = w32 + (c >> 1) * k_groups * 4;
            int32_t g = k_groups;
            if (g & 1) {
                int32_t x0, x1, y0, y1, u0, u1, v0, v1;
                MT_LD2(xp, x0, x1);
                MT_LD2(xp, y0, y1);
                MT_LD2(wp, u0, u1);
                MT_LD2(wp, v0, v1);
                a00 = __smlad(x1, u1, __smlad(x0, u0, a00));
                a10 = __smlad(y1, u1, __smlad(y0, u0, a10));
                a01 = __smlad(x1, v1, __smlad(x0, v0, a01));
                a11 = __smlad(y1, v1, __smlad(y0, v0, a11));
                --g;
            }
            for (; g > 0; g -= 2) {
                MT_MAT_GROUP_W16();
                MT_MAT_GROUP_W16();
            }
        } else {
            const int8_t *wp = w8 + (c >> 1) * k_groups * 8;
            for (int32_t g = k_groups; g > 0; --g) {
                int32_t x0, x1, y0, y1;
                MT_LD2(xp, x0, x1);
                MT_LD2(xp, y0, y1);
                const int32_t wu = mt_read_s8x4(wp), wv = mt_read_s8x4(wp + 4);
                wp += 8;
                const int32_t u0 = __sxtb16(wu), u1 = mt_sxtb16_ror8(wu);
                a00 = __smlad(x0, u0, a00);
                a00 = __smlad(x1, u1, a00);
                a10 = __smlad(y0, u0, a10);
                a10 = __smlad(y1, u1, a10);
                const int32_t v0 = __sxtb16(wv), v1 = mt_sxtb16_ror8(wv);
                a01 = __smlad(x0, v0, a01);
                a01 = __smlad(x1, v1, a01);
                a11 = __smlad(y0, v0, a11);
                a11 = __smlad(y1, v1, a11);
            }
        }
#else
        for (int32_t g = 0; g < k_groups; ++g) {
            int32_t u0, u1, v0, v1;
            if (wide) {
                const int32_t *wp = w32 + ((c >> 1) * k_groups + g) * 4;
                u0 = wp[0], u1 = wp[1], v0 = wp[2], v1 = wp[3];
            } else {
                const int8_t *wp = w8 + ((c >> 1) * k_groups + g) * 8;
                u0 = pack_s8(wp, 0, 2), u1 = pack_s8(wp, 1, 3), v0 = pack_s8(wp, 4, 6), v1 = pack_s8(wp, 5, 7);
            }
            const int32_t *xg = xp + 4 * g;
            a00 = dot_group(a00, xg[0], xg[1], u0, u1);
            a10 = dot_group(a10, xg[2], xg[3], u0, u1);
            a01 = dot_group(a01, xg[0], xg[1], v0, v1);
            a11 = dot_group(a11, xg[2], xg[3], v0, v1);
        }
#endif
        {
            const int32_t m0 = q0->mult, l0 = q0->lshift, r0 = q0->rnd, s0 = q0->rshift;
            const int32_t m1 = q1->mult, l1 = q1->lshift, r1 = q1->rnd, s1 = q1->rshift;
            out0[c] = mt_requant_out(a00, m0, l0, r0, s0, o);
            if (c + 1 < n_out) {
                out0[c + 1] = mt_requant_out(a01, m1, l1, r1, s1, o);
            }
            if (out1 != 0) {
                out1[c] = mt_requant_out(a10, m0, l0, r0, s0, o);
                if (c + 1 < n_out) {
                    out1[c + 1] = mt_requant_out(a11, m1, l1, r1, s1, o);
                }
            }
        }
    }
}
