/* mt_fully_connected_s8_dsp: fully connected layer, four output rows per step with SMLAD.
 *
 * The input row is widened once into scratch; each step then reads one column group
 * (LDRD) and the four rows' groups (2 LDM with an int16 filter on the core, 2 LDRD +
 * 8 SXTB16 with an int8 one) for 8 SMLAD = 16 MACs.
 */
#include "mt_simd.h"

#if !MT_SIMD
/* SMLAD in portable C: acc + x.lo * w.lo + x.hi * w.hi, wrapping. */
MT_INLINE int32_t fc_dot(int32_t acc, int32_t x, int32_t w)
{
    const int32_t s = (int32_t)(int16_t)(uint16_t)((uint32_t)x & 0xFFFFu) * (int32_t)(int16_t)(uint16_t)((uint32_t)w & 0xFFFFu) +
                      (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16) * (int32_t)(int16_t)(uint16_t)((uint32_t)w >> 16);
    return mt_add_wrap(acc, s);
}
#endif

int32_t mt_fully_connected_s8_dsp_get_buffer_size(int32_t in_features)
{
    return 8 * ((in_features + 3) / 4);
}

/* fc_pairs in C (the SIMD intrinsics, or portable C): hosts, other compilers, and the last
 * partial block of rows (outside the asm runs: flash). */
MT_INLINE const int32_t *fc_pairs_c(const int32_t *xp, const int32_t *wp, int32_t k_groups, int32_t *s0, int32_t *c1,
                                    int32_t *s2, int32_t *c3)
{
    int32_t a0 = *s0, a1 = *c1, a2 = *s2, a3 = *c3;
    for (int32_t g = k_groups; g > 0; --g) {
        int32_t x0, x1, p0, p1, q0, q1;
        MT_LD2(xp, x0, x1);
        MT_LD2(wp, p0, p1);
        MT_LD2(wp, q0, q1);
#if MT_SIMD
        a1 = __smlad(x1, p1, __smlad(x0, p0, a1));
        a0 = __smlad(x1, mt_sxtb16(p1), __smlad(x0, mt_sxtb16(p0), a0));
        a3 = __smlad(x1, q1, __smlad(x0, q0, a3));
        a2 = __smlad(x1, mt_sxtb16(q1), __smlad(x0, mt_sxtb16(q0), a2));
#else
        a1 = fc_dot(fc_dot(a1, x0, p0), x1, p1);
        a0 = fc_dot(fc_dot(a0, x0, mt_sxtb16(p0)), x1, mt_sxtb16(p1));
        a3 = fc_dot(fc_dot(a3, x0, q0), x1, q1);
        a2 = fc_dot(fc_dot(a2, x0, mt_sxtb16(q0)), x1, mt_sxtb16(q1));
#endif
    }
    *s0 = a0, *c1 = a1, *s2 = a2, *c3 = a3;
    return wp;
}

static __attribute__((noinline)) void fc_pairs_tail(const int32_t *xp, const int32_t *wp, int32_t k_groups,
                                                    int32_t *s0, int32_t *c1, int32_t *s2, int32_t *c3)
{
    (void)fc_pairs_c(xp, wp, k_groups, s0, c1, s2, c3);
}

/* The paired int8 filter (mt_nn_fast.h), two pairs of rows: per group 14 instructions for
 * 16 MACs on the core (LDRD of the input pair, LDM of the four words, 4 SXTB16, 8 SMLAD).
 * s0/s2: the first/second pair's channel a; c1/c3: the pairs' a + 256 b sums. */
MT_INLINE const int32_t *fc_pairs(const int32_t *xp, const int32_t *wp,
                                                                      int32_t k_groups, int32_t *s0, int32_t *c1,
                                                                      int32_t *s2, int32_t *c3)
{
    int32_t a0 = *s0, a1 = *c1, a2 = *s2, a3 = *c3;
#if defined(__ARM_FEATURE_DSP) && defined(MT_FAST_ASM)
    register int32_t p0 __asm__("r8");
    register int32_t p1 __asm__("r9");
    register int32_t q0 __asm__("r10");
    register int32_t q1 __asm__("r11");
    int32_t x0, x1, n = k_groups;
#define MT_FC_P8                                         \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                 \
    "ldmia %[wp]!, {%[p0], %[p1], %[q0], %[q1]}\n\t"     \
    "smlad %[a1], %[x0], %[p0], %[a1]\n\t"               \
    "sxtb16 %[p0], %[p0]\n\t"                            \
    "smlad %[a0], %[x0], %[p0], %[a0]\n\t"               \
    "smlad %[a1], %[x1], %[p1], %[a1]\n\t"               \
    "sxtb16 %[p1], %[p1]\n\t"                            \
    "smlad %[a0], %[x1], %[p1], %[a0]\n\t"               \
    "smlad %[a3], %[x0], %[q0], %[a3]\n\t"               \
    "sxtb16 %[q0], %[q0]\n\t"                            \
    "smlad %[a2], %[x0], %[q0], %[a2]\n\t"               \
    "smlad %[a3], %[x1], %[q1], %[a3]\n\t"               \
    "sxtb16 %[q1], %[q1]\n\t"                            \
    "smlad %[a2], %[x1], %[q1], %[a2]\n\t"
    /* k_groups % 4 groups first, then four per iteration */
    __asm__ volatile("lsrs %[n], %[n], #1\n\t"
                     "bcc 2f\n\t" MT_FC_P8 "2:\n\t"
                     "lsrs %[n], %[n], #1\n\t"
                     "bcc 3f\n\t" MT_FC_P8 MT_FC_P8 "3:\n\t"
                     "cmp %[n], #0\n\t"
                     "beq 4f\n"
                     "1:\n\t" MT_FC_P8 MT_FC_P8 MT_FC_P8 MT_FC_P8 "subs %[n], %[n], #1\n\t"
                     "bne 1b\n"
                     "4:\n"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xp] "+r"(xp), [wp] "+r"(wp),
                       [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1), [p0] "=&r"(p0), [p1] "=&r"(p1),
                       [q0] "=&r"(q0), [q1] "=&r"(q1)
                     :
                     : "cc", "memory");
#undef MT_FC_P8
#else
    wp = fc_pairs_c(xp, wp, k_groups, &a0, &a1, &a2, &a3);
#endif
    *s0 = a0, *c1 = a1, *s2 = a2, *c3 = a3;
    return wp;
}

/* Channel b of a pair: (A1 - A2) >> 8 = S_b exactly, plus its folded bias (mt_nn_fast.h). */
MT_INLINE int32_t pair_b(int32_t a1, int32_t a2, int32_t bias_b)
{
    return mt_add_wrap((int32_t)((uint32_t)a1 - (uint32_t)a2) >> 8, bias_b);
}

MT_INLINE int8_t fc_out(int32_t acc, const mt_fast_quant *q, mt_out_stage os)
{
    return mt_clamp_q(mt_requant_q(acc, q->mult, q->lshift, q->rnd, q->rshift), os);
}

/* One batch row with the paired filter: four output rows per step, few live values around
 * the MAC run (the block's state is reloaded once per four rows). */
static void fc_paired_row(const int32_t *xcol, int32_t k_groups, const int32_t *w, const mt_fast_quant *q,
                          int32_t out_features, int8_t *o, mt_out_stage os)
{
    int32_t r = 0;
    for (; r + 4 <= out_features; r += 4, q += 4, o += 4) {
        int32_t a0 = q[0].bias, a1 = a0, a2 = q[2].bias, a3 = a2;
        w = fc_pairs(xcol, w, k_groups, &a0, &a1, &a2, &a3);
        a1 = pair_b(a1, a0, q[1].bias);
        a3 = pair_b(a3, a2, q[3].bias);
        const int8_t v0 = fc_out(a0, q, os), v1 = fc_out(a1, q + 1, os);
        const int8_t v2 = fc_out(a2, q + 2, os), v3 = fc_out(a3, q + 3, os);
        o[0] = v0;
        o[1] = v1;
        o[2] = v2;
        o[3] = v3;
    }
    const int32_t n = out_features - r; /* 0..3 rows left; the packer's zero rows fill the block */
    if (n > 0) {
        int32_t a0 = q[0].bias, a1 = a0, a2 = n > 2 ? q[2].bias : 0, a3 = a2;
        fc_pairs_tail(xcol, w, k_groups, &a0, &a1, &a2, &a3);
        o[0] = fc_out(a0, q, os);
        if (n > 1) {
            o[1] = fc_out(pair_b(a1, a0, q[1].bias), q + 1, os);
        }
        if (n > 2) {
            o[2] = fc_out(a2, q + 2, os);
        }
    }
}

#if defined(__ARM_FEATURE_DSP) && defined(MT_FAST_ASM)
/* The int16 filter's whole blocks of four rows (the generic loop below runs the rest): per
 * group LDRD of the input pair, two LDM of two rows' words each (pinned ascending registers),
 * 8 SMLAD = 11 instructions for 16 MACs, four groups per loop iteration. Returns the rows done. */
static int32_t fc_wide_rows(const int32_t *xcol, int32_t k_groups, const int32_t *w, const mt_fast_quant *q,
                            int32_t out_features, int8_t *o, mt_out_stage os)
{
    int32_t r = 0;
    for (; r + 4 <= out_features; r += 4, q += 4, o += 4) {
        int32_t a0 = q[0].bias, a1 = q[1].bias, a2 = q[2].bias, a3 = q[3].bias;
        register int32_t u0 __asm__("r8");
        register int32_t u1 __asm__("r9");
        register int32_t v0 __asm__("r10");
        register int32_t v1 __asm__("r11");
        int32_t x0, x1, n = k_groups;
        const int32_t *xp = xcol;
#define MT_FC_W16                                        \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                 \
    "ldmia %[wp]!, {%[u0], %[u1], %[v0], %[v1]}\n\t"     \
    "smlad %[a0], %[x0], %[u0], %[a0]\n\t"               \
    "smlad %[a0], %[x1], %[u1], %[a0]\n\t"               \
    "smlad %[a1], %[x0], %[v0], %[a1]\n\t"               \
    "smlad %[a1], %[x1], %[v1], %[a1]\n\t"               \
    "ldmia %[wp]!, {%[u0], %[u1], %[v0], %[v1]}\n\t"     \
    "smlad %[a2], %[x0], %[u0], %[a2]\n\t"               \
    "smlad %[a2], %[x1], %[u1], %[a2]\n\t"               \
    "smlad %[a3], %[x0], %[v0], %[a3]\n\t"               \
    "smlad %[a3], %[x1], %[v1], %[a3]\n\t"
        __asm__ volatile("lsrs %[n], %[n], #1\n\t"
                         "bcc 2f\n\t" MT_FC_W16 "2:\n\t"
                         "lsrs %[n], %[n], #1\n\t"
                         "bcc 3f\n\t" MT_FC_W16 MT_FC_W16 "3:\n\t"
                         "cmp %[n], #0\n\t"
                         "beq 4f\n"
                         "1:\n\t" MT_FC_W16 MT_FC_W16 MT_FC_W16 MT_FC_W16 "subs %[n], %[n], #1\n\t"
                         "bne 1b\n"
                         "4:\n"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xp] "+r"(xp), [wp] "+r"(w),
                           [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1), [u0] "=&r"(u0), [u1] "=&r"(u1),
                           [v0] "=&r"(v0), [v1] "=&r"(v1)
                         :
                         : "cc", "memory");
#undef MT_FC_W16
        const int8_t y0 = fc_out(a0, q, os), y1 = fc_out(a1, q + 1, os);
        const int8_t y2 = fc_out(a2, q + 2, os), y3 = fc_out(a3, q + 3, os);
        o[0] = y0;
        o[1] = y1;
        o[2] = y2;
        o[3] = y3;
    }
    return r;
}
#endif

mt_status mt_fully_connected_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                                    int32_t batches, int32_t in_features, const void *filter,
                                    int32_t out_features, int8_t *out, void *scratch)
{
    if (p == 0 || q == 0 || in == 0 || filter == 0 || out == 0 || scratch == 0 || batches < 0 ||
        in_features < 0 || out_features < 0) {
        return MT_ERR_ARG;
    }
    const int32_t k_groups = (in_features + 3) / 4;
    int32_t *xcol = (int32_t *)scratch;
    const int32_t wide = p->wide;
    const mt_out_stage os = mt_out_stage_of(p);
    const int32_t block_words = (wide == MT_FILTER_S16 ? 8 : 4) * k_groups; /* filter words per 4 rows */
    for (int32_t b = 0; b < batches; ++b) {
        mt_widen_s8(in + b * in_features, in_features, xcol, 2);
        int8_t *o = out + b * out_features;
        if (wide == MT_FILTER_S8_PAIRED) {
            /* per pair: A2 (SXTB16 of the words) = channel a, A1 (the raw words) = a + 256 b */
            fc_paired_row(xcol, k_groups, (const int32_t *)filter, q, out_features, o, os);
            continue;
        }
        const int32_t *wblock = (const int32_t *)filter;
        int32_t r = 0;
#if defined(__ARM_FEATURE_DSP) && defined(MT_FAST_ASM)
        if (wide == MT_FILTER_S16) {
            r = fc_wide_rows(xcol, k_groups, wblock, q, out_features, o, os);
            wblock += (r >> 2) * block_words;
        }
#endif
        for (; r < out_features; r += 4, wblock += block_words) {
            const int32_t n = out_features - r;
            int32_t a0 = q[r].bias;
            int32_t a1 = n > 1 ? q[r + 1].bias : 0;
            int32_t a2 = n > 2 ? q[r + 2].bias : 0;
            int32_t a3 = n > 3 ? q[r + 3].bias : 0;
            const int32_t *xp = xcol;
            const int32_t *wp = wblock;
#if MT_SIMD
            if (wide == MT_FILTER_S16) { /* with the asm runs: only the last partial block */
                for (int32_t g = k_groups; g > 0; --g) {
                    int32_t x0, x1, u0, u1;
                    MT_LD2(xp, x0, x1);
                    MT_LD2(wp, u0, u1);
                    a0 = __smlad(x0, u0, a0);
                    a0 = __smlad(x1, u1, a0);
                    MT_LD2(wp, u0, u1);
                    a1 = __smlad(x0, u0, a1);
                    a1 = __smlad(x1, u1, a1);
                    MT_LD2(wp, u0, u1);
                    a2 = __smlad(x0, u0, a2);
                    a2 = __smlad(x1, u1, a2);
                    MT_LD2(wp, u0, u1);
                    a3 = __smlad(x0, u0, a3);
                    a3 = __smlad(x1, u1, a3);
                }
            } else {
                for (int32_t g = k_groups; g > 0; --g) {
                    int32_t x0, x1, w0, w1, w2, w3;
                    MT_LD2(xp, x0, x1);
                    MT_LD2(wp, w0, w1);
                    a0 = __smlad(x0, mt_sxtb16(w0), a0);
                    a0 = __smlad(x1, mt_sxtb16_ror8(w0), a0);
                    a1 = __smlad(x0, mt_sxtb16(w1), a1);
                    a1 = __smlad(x1, mt_sxtb16_ror8(w1), a1);
                    MT_LD2(wp, w2, w3);
                    a2 = __smlad(x0, mt_sxtb16(w2), a2);
                    a2 = __smlad(x1, mt_sxtb16_ror8(w2), a2);
                    a3 = __smlad(x0, mt_sxtb16(w3), a3);
                    a3 = __smlad(x1, mt_sxtb16_ror8(w3), a3);
                }
            }
#else
            for (int32_t g = 0; g < k_groups; ++g) {
                int32_t acc[4] = {a0, a1, a2, a3};
                for (int32_t j = 0; j < 4; ++j) {
                    int32_t u0, u1;
                    if (wide == MT_FILTER_S16) {
                        u0 = wp[(g * 4 + j) * 2];
                        u1 = wp[(g * 4 + j) * 2 + 1];
                    } else {
                        u0 = mt_sxtb16(wp[g * 4 + j]);
                        u1 = mt_sxtb16_ror8(wp[g * 4 + j]);
                    }
                    const int32_t x0 = xp[2 * g], x1 = xp[2 * g + 1];
                    const int32_t s = (int32_t)(int16_t)(uint16_t)((uint32_t)x0 & 0xFFFFu) *
                                          (int32_t)(int16_t)(uint16_t)((uint32_t)u0 & 0xFFFFu) +
                                      (int32_t)(int16_t)(uint16_t)((uint32_t)x0 >> 16) *
                                          (int32_t)(int16_t)(uint16_t)((uint32_t)u0 >> 16) +
                                      (int32_t)(int16_t)(uint16_t)((uint32_t)x1 & 0xFFFFu) *
                                          (int32_t)(int16_t)(uint16_t)((uint32_t)u1 & 0xFFFFu) +
                                      (int32_t)(int16_t)(uint16_t)((uint32_t)x1 >> 16) *
                                          (int32_t)(int16_t)(uint16_t)((uint32_t)u1 >> 16);
                    acc[j] = mt_add_wrap(acc[j], s);
                }
                a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
            }
#endif
            const mt_fast_quant *qr = q + r;
            if (n >= 4) {
                const int32_t v0 = mt_requant_q(a0, qr[0].mult, qr[0].lshift, qr[0].rnd, qr[0].rshift);
                const int32_t v1 = mt_requant_q(a1, qr[1].mult, qr[1].lshift, qr[1].rnd, qr[1].rshift);
                const int32_t v2 = mt_requant_q(a2, qr[2].mult, qr[2].lshift, qr[2].rnd, qr[2].rshift);
                const int32_t v3 = mt_requant_q(a3, qr[3].mult, qr[3].lshift, qr[3].rnd, qr[3].rshift);
                o[r] = mt_clamp_q(v0, os);
                o[r + 1] = mt_clamp_q(v1, os);
                o[r + 2] = mt_clamp_q(v2, os);
                o[r + 3] = mt_clamp_q(v3, os);
            } else {
                const int32_t acc[4] = {a0, a1, a2, a3};
                for (int32_t j = 0; j < n; ++j) {
                    o[r + j] = mt_clamp_q(mt_requant_q(acc[j], qr[j].mult, qr[j].lshift, qr[j].rnd, qr[j].rshift), os);
                }
            }
        }
    }
    return MT_OK;
}
