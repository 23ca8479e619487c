/* mt_fully_connected_s16_dsp: 16x8 fully connected (mt_fully_connected_s16's arguments and bytes)
 * with the Cortex-M DSP extension: the input row is packed once into SMLAD order, then four
 * output rows at a time take SMLAD of int16 activation pairs against their int8 weights widened by
 * SXTB16 (a word (k0 k1 k2 k3) gives (k0, k2) and (k1, k3), so the row is stored as the words
 * (a0 | a2 << 16), (a1 | a3 << 16) per group of 4).
 *
 * Exactness for all inputs: |x * w| <= 2^22, and an int32 partial takes at most 4 * 127 = 508
 * products before it is added into the int64 accumulator (508 * 2^22 < 2^31 - 1), so the int64
 * sum is the portable kernel's exactly, and the requantization gives the portable kernel's values
 * (mt_mbqm; mt_mbqm64 with an SMLAL fast path when the sum fits int32, mt_s16_rq_apply). The
 * last partial group's weights are assembled byte by byte.
 * Technique after CMSIS-NN's arm_fully_connected_s16 (own code).
 *
 * Scratch: mt_fully_connected_s16_dsp_get_buffer_size(in_features) bytes, 4-byte aligned. A
 * filter zero point (filter_offset != 0), or a build without the DSP extension, runs
 * mt_fully_connected_s16.
 */
#include "mt_simd.h"
#include "mt_s16_dsp.h"

int32_t mt_fully_connected_s16_dsp_get_buffer_size(int32_t in_features)
{
    return in_features < 0 ? 0 : 8 * ((in_features + 3) / 4);
}

#if MT_SIMD

/* Rows w, w + k, w + 2k, w + 3k against the packed row x: s[0..3]. One weight pointer and
 * register offsets (no spilled row pointers in the loop). */
static void dot_4(const int32_t *x, int32_t k, const int8_t *w, int64_t *s)
{
    const int32_t k2 = 2 * k, k3 = 3 * k;
    int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int32_t groups = k >> 2;
    while (groups > 0) {
        int32_t n = groups < MT_S16_FLUSH_GROUPS ? groups : MT_S16_FLUSH_GROUPS;
        groups -= n;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        do {
            const int32_t xa = x[0], xb = x[1];
            x += 2;
            int32_t v = mt_read_s8x4(w);
            a0 = __smlad(xa, mt_sxtb16(v), a0);
            a0 = __smlad(xb, mt_sxtb16_ror8(v), a0);
            v = mt_read_s8x4(w + k);
            a1 = __smlad(xa, mt_sxtb16(v), a1);
            a1 = __smlad(xb, mt_sxtb16_ror8(v), a1);
            v = mt_read_s8x4(w + k2);
            a2 = __smlad(xa, mt_sxtb16(v), a2);
            a2 = __smlad(xb, mt_sxtb16_ror8(v), a2);
            v = mt_read_s8x4(w + k3);
            w += 4;
            a3 = __smlad(xa, mt_sxtb16(v), a3);
            a3 = __smlad(xb, mt_sxtb16_ror8(v), a3);
        } while (--n > 0);
        s0 += a0;
        s1 += a1;
        s2 += a2;
        s3 += a3;
    }
    const int32_t r = k & 3;
    if (r != 0) { /* 4 products, |sum| <= 2^24 */
        int32_t v = mt_s16_tail_word(w, r);
        s0 += __smlad(x[1], mt_sxtb16_ror8(v), __smlad(x[0], mt_sxtb16(v), 0));
        v = mt_s16_tail_word(w + k, r);
        s1 += __smlad(x[1], mt_sxtb16_ror8(v), __smlad(x[0], mt_sxtb16(v), 0));
        v = mt_s16_tail_word(w + k2, r);
        s2 += __smlad(x[1], mt_sxtb16_ror8(v), __smlad(x[0], mt_sxtb16(v), 0));
        v = mt_s16_tail_word(w + k3, r);
        s3 += __smlad(x[1], mt_sxtb16_ror8(v), __smlad(x[0], mt_sxtb16(v), 0));
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}

static int64_t dot_1(const int32_t *x, int32_t k, const int8_t *w)
{
    int64_t s = 0;
    int32_t groups = k >> 2;
    while (groups > 0) {
        int32_t n = groups < MT_S16_FLUSH_GROUPS ? groups : MT_S16_FLUSH_GROUPS;
        groups -= n;
        int32_t a = 0;
        do {
            const int32_t v = mt_read_s8x4(w);
            w += 4;
            a = __smlad(x[0], mt_sxtb16(v), a);
            a = __smlad(x[1], mt_sxtb16_ror8(v), a);
            x += 2;
        } while (--n > 0);
        s += a;
    }
    const int32_t r = k & 3;
    if (r != 0) {
        const int32_t v = mt_s16_tail_word(w, r);
        s += __smlad(x[1], mt_sxtb16_ror8(v), __smlad(x[0], mt_sxtb16(v), 0));
    }
    return s;
}

MT_INLINE int16_t requant(int64_t acc, int32_t o, const mt_fc_params *p, const mt_pc_quant *q, int32_t per_channel,
                          const int64_t *bias64, const int32_t *bias32)
{
    const int32_t qi = per_channel ? o : 0;
    int32_t v;
    if (bias32 != 0) {
        v = mt_mbqm(mt_wrap32(acc + bias32[o]), q->multiplier[qi], q->shift[qi]);
    } else {
        const mt_s16_rq rq = mt_s16_rq_of(q->multiplier[qi], q->shift[qi]);
        v = mt_s16_rq_apply(acc + (bias64 != 0 ? bias64[o] : 0), &rq);
    }
    v += p->output_offset;
    return (int16_t)mt_clamp(v, p->act_min, p->act_max);
}

#endif /* MT_SIMD */

mt_status mt_fully_connected_s16_dsp(const mt_fc_params *p, const mt_pc_quant *q, int32_t per_channel,
                                     const int16_t *in, int32_t batches, int32_t in_features, const int8_t *filter,
                                     const int64_t *bias64, const int32_t *bias32, int32_t out_features, int16_t *out,
                                     void *scratch)
{
#if MT_SIMD
    if (p == 0 || q == 0 || in == 0 || filter == 0 || out == 0 || batches < 0 || in_features < 0 ||
        out_features < 0 || (bias64 != 0 && bias32 != 0)) {
        return MT_ERR_ARG;
    }
    if (p->filter_offset != 0 || scratch == 0 || in_features == 0) {
        return mt_fully_connected_s16(p, q, per_channel, in, batches, in_features, filter, bias64, bias32,
                                      out_features, out);
    }
    int32_t *x = (int32_t *)scratch;
    const int32_t full = in_features >> 2, r = in_features & 3;
    for (int32_t b = 0; b < batches; ++b) {
        const int16_t *src = in + b * in_features;
        for (int32_t g = 0; g < full; ++g, src += 4) {
            uint32_t lo, hi;
            memcpy(&lo, src, 4);
            memcpy(&hi, src + 2, 4);
            x[2 * g] = (int32_t)((lo & 0xFFFFu) | (hi << 16));
            x[2 * g + 1] = (int32_t)((lo >> 16) | (hi & 0xFFFF0000u));
        }
        if (r != 0) { /* zero-padded last group */
            int32_t t[4] = {0, 0, 0, 0};
            for (int32_t i = 0; i < r; ++i) {
                t[i] = src[i];
            }
            x[2 * full] = (int32_t)(((uint32_t)t[0] & 0xFFFFu) | ((uint32_t)t[2] << 16));
            x[2 * full + 1] = (int32_t)(((uint32_t)t[1] & 0xFFFFu) | ((uint32_t)t[3] << 16));
        }
        int16_t *y = out + b * out_features;
        int32_t o = 0;
        for (; o + 4 <= out_features; o += 4) {
            int64_t s[4];
            dot_4(x, in_features, filter + o * in_features, s);
            for (int32_t j = 0; j < 4; ++j) {
                y[o + j] = requant(s[j], o + j, p, q, per_channel, bias64, bias32);
            }
        }
        for (; o < out_features; ++o) {
            y[o] = requant(dot_1(x, in_features, filter + o * in_features), o, p, q, per_channel, bias64, bias32);
        }
    }
    return MT_OK;
#else
    (void)scratch;
    return mt_fully_connected_s16(p, q, per_channel, in, batches, in_features, filter, bias64, bias32, out_features,
                                  out);
#endif
}
