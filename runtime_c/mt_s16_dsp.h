/* Internal helpers of the 16x8 DSP kernels (mt_conv_s16_dsp.c, mt_depthwise_conv_s16_dsp.c,
 * mt_fully_connected_s16_dsp.c); not API. Include after mt_simd.h. */
#ifndef MT_S16_DSP_H
#define MT_S16_DSP_H

#include "mt_quant.h"
#include "mt_simd.h"

/* Groups of 4 reduction values an int32 SMLAD partial takes before it is added into int64:
 * |x * w| <= 2^15 * 2^7 = 2^22, so 4 * 127 = 508 products give |sum| <= 2,130,706,432 < 2^31 - 1
 * (every intermediate SMLAD value is the sum of a subset, so none overflows either). */
#define MT_S16_FLUSH_GROUPS 127

/* The last r (1..3) int8 weights of a row as one word, zero-padded (never reads past the row). */
MT_INLINE int32_t mt_s16_tail_word(const int8_t *w, int32_t r)
{
    uint32_t v = 0;
    for (int32_t i = 0; i < r; ++i) {
        v |= (uint32_t)(uint8_t)w[i] << (8 * i);
    }
    return (int32_t)v;
}

/* 4 * groups int16 into SMLAD order against SXTB16-widened int8 words: per group (a0 a1 a2 a3)
 * the words (a0 | a2 << 16), (a1 | a3 << 16) (PKHBT / PKHTB), the next group `step` words on. */
MT_INLINE void mt_s16_pack(const int16_t *src, int32_t groups, int32_t *dst, int32_t step)
{
    for (; groups > 0; --groups, src += 4, dst += step) {
        uint32_t lo, hi;
        memcpy(&lo, src, 4);
        memcpy(&hi, src + 2, 4);
        dst[0] = (int32_t)((lo & 0xFFFFu) | (hi << 16));
        dst[1] = (int32_t)((lo >> 16) | (hi & 0xFFFF0000u));
    }
}

/* mt_mbqm64 (TFLite's 64-bit MultiplyByQuantizedMultiplier) of one channel, prepared once:
 * reduced = the multiplier rounded to 15 bits, total = 15 - shift (>= 1), round = 2^(total-1). */
typedef struct {
    int32_t mult, shift;
    int32_t reduced, total;
    int64_t round;
} mt_s16_rq;

MT_INLINE mt_s16_rq mt_s16_rq_of(int32_t multiplier, int32_t shift)
{
    mt_s16_rq r;
    r.mult = multiplier;
    r.shift = shift;
    r.reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    r.total = 15 - shift;
    r.round = (int64_t)1 << (r.total - 1);
    return r;
}

/* mt_mbqm64(v, r->mult, r->shift), the same value for every input: when v fits int32 (the
 * common case) t = v * reduced + round is one SMLAL (|t| < 2^46 + 2^62) and the wrapped t >> total
 * is read from its two words (lo >> total | hi << (32 - total), or hi >> (total - 32)); else
 * mt_mbqm64 itself. */
MT_INLINE int32_t mt_s16_rq_apply(int64_t v, const mt_s16_rq *r)
{
    const int32_t v32 = mt_wrap32(v);
    if ((int64_t)v32 != v) {
        return mt_mbqm64(v, r->mult, r->shift);
    }
    const int64_t t = (int64_t)v32 * r->reduced + r->round;
    const uint32_t lo = (uint32_t)((uint64_t)t & 0xFFFFFFFFu);
    const int32_t hi = (int32_t)(t >> 32);
    if (r->total < 32) {
        return (int32_t)((lo >> r->total) | ((uint32_t)hi << (32 - r->total)));
    }
    return hi >> (r->total - 32);
}

/* The same for an exact int32 sum `acc` plus the channel's int64 bias, with the bias folded
 * into the constant: c = bias * reduced + 2^(total-1), so t = acc * reduced + c is one SMLAL
 * (|acc * reduced| < 2^46, |bias * reduced| < 2^61 while |bias| < 2^46, c < 2^62 + 2^61: no
 * overflow) and equals mt_mbqm64's (acc + bias) * reduced + 2^(total-1); a larger bias (ok = 0)
 * takes mt_mbqm64 itself. */
typedef struct { /* int32 fields only (4-byte aligned in scratch); 36 bytes */
    int32_t reduced, total;
    uint32_t c_lo; /* c = bias * reduced + 2^(total-1), as its two words */
    int32_t c_hi;
    int32_t ok;
    int32_t mult, shift;
    uint32_t bias_lo; /* the bias for mt_mbqm64 when !ok */
    int32_t bias_hi;
} mt_s16_rqb;

MT_INLINE mt_s16_rqb mt_s16_rqb_of(int32_t multiplier, int32_t shift, int64_t bias)
{
    mt_s16_rqb r;
    r.mult = multiplier;
    r.shift = shift;
    r.reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    r.total = 15 - shift;
    r.bias_lo = (uint32_t)((uint64_t)bias & 0xFFFFFFFFu);
    r.bias_hi = (int32_t)(bias >> 32);
    r.ok = bias > -((int64_t)1 << 46) && bias < ((int64_t)1 << 46);
    const int64_t c = r.ok ? bias * r.reduced + ((int64_t)1 << (r.total - 1)) : 0;
    r.c_lo = (uint32_t)((uint64_t)c & 0xFFFFFFFFu);
    r.c_hi = (int32_t)(c >> 32);
    return r;
}

MT_INLINE int32_t mt_s16_rqb_apply(int32_t acc, const mt_s16_rqb *r)
{
    if (!r->ok) {
        const int64_t bias = (int64_t)(((uint64_t)(uint32_t)r->bias_hi << 32) | r->bias_lo);
        return mt_mbqm64((int64_t)acc + bias, r->mult, r->shift);
    }
    uint32_t lo = r->c_lo;
    int32_t hi = r->c_hi;
#if defined(__ARM_FEATURE_DSP)
    __asm__("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(hi) : "r"(acc), "r"(r->reduced)); /* (hi:lo) += acc * reduced */
#else
    const int64_t t = (int64_t)acc * r->reduced + (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo);
    lo = (uint32_t)((uint64_t)t & 0xFFFFFFFFu);
    hi = (int32_t)(t >> 32);
#endif
    if (r->total < 32) {
        return (int32_t)((lo >> r->total) | ((uint32_t)hi << (32 - r->total)));
    }
    return hi >> (r->total - 32);
}

#endif /* MT_S16_DSP_H */
