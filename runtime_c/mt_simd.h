/* Internal helpers of the *_dsp kernels (not API): the DSP instructions they use, the fast
 * requantization and the shared 2-pixel matrix core.
 *
 * MT_SIMD is 1 when the SIMD code paths are compiled: on a core with the DSP extension
 * (__ARM_FEATURE_DSP: Cortex-M4/M7/M33...) through ACLE (<arm_acle.h>) plus a few
 * one-instruction inline-asm helpers ACLE lacks, or on a host with MT_EMULATE_ACLE defined
 * (mt_acle_host.h, tests only). Otherwise (a plain host build) the kernels take their
 * portable C paths, which read the same packed data and give the same bytes.
 */
#ifndef MT_SIMD_H
#define MT_SIMD_H

/* Kernel speed independent of the project's -O level (STM32CubeIDE builds Release at -Os and
 * Debug at -O0): with GCC every function of the fast-kernel files (this header is their
 * first include, so its inline helpers too) is optimized as at -O2, and the register-pinned
 * asm runs (MT_FAST_ASM) are always on, since -O2 frees the registers they pin. Define
 * MT_KERNEL_OPT_AS_PROJECT to build them at the project's level instead (then the asm runs
 * need -O2/-O3 and -DMT_FAST_ASM, as before). */
#if defined(__GNUC__) && !defined(__clang__) && !defined(MT_KERNEL_OPT_AS_PROJECT)
#pragma GCC optimize("O2")
#if defined(__ARM_FEATURE_DSP) && !defined(MT_FAST_ASM)
#define MT_FAST_ASM 1
#endif
#endif

/* The fast kernels' inline helpers: inlined at any -O level, -O0 included (GCC does not
 * inline plain `static inline` functions in a -O0 translation unit, pragma or not). */
#if defined(__GNUC__)
#define MT_INLINE static inline __attribute__((always_inline))
#else
#define MT_INLINE static inline
#endif

#include <stdint.h>
#include <string.h>

#include "mt_nn_fast.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#define MT_SIMD 1
/* SXTB16 Rd, Rm, ROR #8: sign-extend bytes 1 and 3 (ACLE spells it __sxtb16(__ror(x, 8)),
 * which GCC 12 emits as two instructions). */
MT_INLINE int32_t mt_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* SMMULR: (a * b + 2^31) >> 32 (no ACLE intrinsic). */
MT_INLINE int32_t mt_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* SMMLAR: c + ((a * b + 2^31) >> 32) (no ACLE intrinsic). */
MT_INLINE int32_t mt_smmlar(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}
/* SSAT #8 (ACLE's __ssat trips -Wsign-conversion in GCC 12's arm_acle.h). */
MT_INLINE int32_t mt_ssat8(int32_t x)
{
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(x));
    return r;
}
/* LDRD with post-increment: a = p[0], b = p[1], p += 2 (GCC does not pair the loads). */
#define MT_LD2(p, a, b) \
    __asm__("ldrd %0, %1, [%2], #8" : "=r"(a), "=r"(b), "+r"(p) : "m"(*(const int32_t(*)[2])(p)))
#elif defined(MT_EMULATE_ACLE)
#include "mt_acle_host.h"
#define MT_SIMD 1
#define mt_ssat8(x) __ssat((x), 8)
#endif

#if !defined(__ARM_FEATURE_DSP)
MT_INLINE int32_t mt_sxtb16_ror8_c(int32_t x)
{
    uint32_t u = (uint32_t)x;
    return (int32_t)((((uint32_t)(int32_t)(int8_t)(uint8_t)(u >> 24)) << 16) |
                     ((uint32_t)(int32_t)(int8_t)(uint8_t)((u >> 8) & 0xFFu) & 0xFFFFu));
}
#define mt_sxtb16_ror8 mt_sxtb16_ror8_c
#endif

#if !defined(__ARM_FEATURE_DSP) && !defined(MT_EMULATE_ACLE)
MT_INLINE int32_t mt_sxtb16(int32_t x)
{
    uint32_t u = (uint32_t)x;
    return (int32_t)((((uint32_t)(int32_t)(int8_t)(uint8_t)((u >> 16) & 0xFFu)) << 16) |
                     ((uint32_t)(int32_t)(int8_t)(uint8_t)(u & 0xFFu) & 0xFFFFu));
}
#else
#define mt_sxtb16 __sxtb16
#endif

#if !defined(__ARM_FEATURE_DSP)
MT_INLINE int32_t mt_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
}
MT_INLINE int32_t mt_smmlar(int32_t a, int32_t b, int32_t c)
{
    return (int32_t)((uint32_t)c + (uint32_t)mt_smmulr(a, b));
}
#define MT_LD2(p, a, b) \
    do {                \
        (a) = (p)[0];   \
        (b) = (p)[1];   \
        (p) += 2;       \
    } while (0)
#endif

#ifndef MT_SIMD
#define MT_SIMD 0
#endif

/* Four int8 from any address as one little-endian word (a single LDR on Armv7E-M). */
MT_INLINE int32_t mt_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Four copies of an int8 value in one word. */
MT_INLINE int32_t mt_splat_s8x4(int32_t v)
{
    return (int32_t)(((uint32_t)v & 0xFFu) * 0x01010101u);
}

/* Two's-complement wrapping add (the accumulator plus the folded bias). */
MT_INLINE int32_t mt_add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* MultiplyByQuantizedMultiplier of mt_quant.h for accumulators the compiler has bounded:
 * SRDHM(a, m) == SMMULR(2a, m) and RoundingDivideByPOT(v, e) == (2v + 2^e + (v < 0 ? -1 : 0))
 * >> (e + 1), both exact while |acc << lshift| < 2^30 (q->lshift = left shift + 1,
 * q->rnd = 2^e, q->rshift = e + 1, e <= 30; see codegen/kernels.py). The int8 result is
 * clamped to [act_min, act_max] by the caller. */
MT_INLINE int32_t mt_requant_fast(int32_t acc, const mt_fast_quant *q)
{
    const int32_t v = mt_smmulr((int32_t)((uint32_t)acc << q->lshift), q->mult);
    const int32_t t = (int32_t)(((uint32_t)v << 1) + (uint32_t)q->rnd) + (v >> 31);
    return t >> q->rshift;
}

/* Output stage: zero point, then the activation clamp. `full` (act range = int8 range)
 * needs only the SSAT. The caller keeps these in locals so the stores through int8_t
 * pointers do not force reloads. */
typedef struct {
    int32_t zp, lo, hi, full;
} mt_out_stage;

/* (plain inline: once per kernel call; forcing it changes GCC's register allocation of the
 * callers for the worse) */
static inline mt_out_stage mt_out_stage_of(const mt_fast_params *p)
{
    mt_out_stage o = {p->output_offset, p->act_min, p->act_max, p->act_min <= -128 && p->act_max >= 127};
    return o;
}

MT_INLINE int8_t mt_out_s8(int32_t v, mt_out_stage o)
{
    v += o.zp;
#if MT_SIMD
    v = mt_ssat8(v);
    if (!o.full) {
        v = v < o.lo ? o.lo : v;
        v = v > o.hi ? o.hi : v;
    }
#else
    v = v < o.lo ? o.lo : v;
    v = v > o.hi ? o.hi : v;
#endif
    return (int8_t)v;
}

/* Requantizes and stores one output with the record's fields already in registers. */
MT_INLINE int8_t mt_requant_out(int32_t acc, int32_t mult, int32_t ls, int32_t rnd, int32_t rs,
                                    mt_out_stage o)
{
    const int32_t v = mt_smmulr((int32_t)((uint32_t)acc << ls), mult);
    const int32_t t = (int32_t)(((uint32_t)v << 1) + (uint32_t)rnd) + (v >> 31);
    return mt_out_s8(t >> rs, o);
}

/* The conv / depthwise / fully-connected requantization (records of codegen/kernels.py
 * fast_quant): TFLite's MultiplyByQuantizedMultiplier plus the output zero point as
 *   a = acc << lshift;  (SMMLAR(a, mult, rnd) + (a >> 31)) >> rshift
 * with rnd = 2^(e-1) + zp * 2^e and rshift = e >= 1. SMMLAR adds rnd to SMMULR(a, mult)
 * = SRDHM(acc << left, mult) exactly (|a| < 2^30), and (v + 2^(e-1) + zp 2^e - (a < 0)) >> e
 * is RoundingDivideByPOT(v, e) + zp (ties away from zero: a < 0 whenever v < 0, and when
 * v = 0 the -1 cannot cross a multiple of 2^e). Then SSAT and the activation clamp. */
MT_INLINE int32_t mt_requant_q(int32_t acc, int32_t mult, int32_t ls, int32_t rnd, int32_t rs)
{
    const int32_t a = (int32_t)((uint32_t)acc << ls);
    const int32_t u = mt_smmlar(a, mult, rnd);
    return (int32_t)((uint32_t)u + (uint32_t)(a >> 31)) >> rs;
}

/* Clamp of a zero-point-adjusted value to int8 and the activation range. */
MT_INLINE int8_t mt_clamp_q(int32_t v, mt_out_stage o)
{
#if MT_SIMD
    v = mt_ssat8(v);
    if (!o.full) {
        v = v < o.lo ? o.lo : v;
        v = v > o.hi ? o.hi : v;
    }
#else
    v = v < o.lo ? o.lo : v;
    v = v > o.hi ? o.hi : v;
#endif
    return (int8_t)v;
}

MT_INLINE int8_t mt_rq_out(int32_t acc, const mt_fast_quant *q, mt_out_stage o)
{
    return mt_clamp_q(mt_requant_q(acc, q->mult, q->lshift, q->rnd, q->rshift), o);
}

/* Widens n int8 values into the column layout of the matrix core: every 4 values
 * (k0 k1 k2 k3) become the words (k0 | k2 << 16), (k1 | k3 << 16) at dst[0], dst[1]; the
 * next group goes `step` words further. The last group is zero-padded. */
void mt_widen_s8(const int8_t *src, int32_t n, int32_t *dst, int32_t step);

/* The same for whole groups only (n = 4 * groups), inlined into the callers' pixel loops. */
MT_INLINE void mt_widen_groups_s8(const int8_t *src, int32_t groups, int32_t *dst, int32_t step)
{
    for (; groups > 0; --groups, src += 4, dst += step) {
        const int32_t v = mt_read_s8x4(src);
        dst[0] = mt_sxtb16(v);
        dst[1] = mt_sxtb16_ror8(v);
    }
}

/* The matrix core: for two widened input columns interleaved per group of 4 values
 * (x[4g .. 4g+1] = column 0, x[4g+2 .. 4g+3] = column 1) computes every output channel of
 * both, requantizes and stores out0[c] and (out1 != NULL) out1[c]. The filter is packed in
 * channel pairs (mt_nn_fast.h). */
void mt_mat_2col_s8(const int32_t *x, int32_t k_groups, const void *filter, int32_t wide,
                    const mt_fast_quant *q, int32_t n_out, const mt_fast_params *p, int8_t *out0,
                    int8_t *out1);

#if defined(__ARM_FEATURE_DSP) && defined(MT_FAST_ASM) && defined(__thumb2__)
/* The matrix core's commonest case in one Thumb-2 function (mt_mat_2col_s8.c): int16 filter
 * (wide = 1), full output range, 1 <= k_groups <= MT_MAT_UNROLL (32), `pairs` >= 1 channel
 * pairs (2 * pairs output channels); skip = 40 * (32 - k_groups). Stores column 1 (out1,
 * which may equal out0) before column 0 like mt_mat_2col_s8. */
#define MT_MAT_PAIRS_ASM 1
void mt_mat_pairs_w16_full(const int32_t *x, const void *filter, const mt_fast_quant *q, int32_t pairs,
                           int8_t *out0, int8_t *out1, int32_t skip);

/* A pointwise layer whose pixels are consecutive (input pixel i at in + i * 4 * k_groups,
 * output pixel i at out + i * ocs): px_pairs >= 1 pixel pairs, each widened into cols
 * (16 * k_groups bytes, 4-byte aligned) then run through the pair loop above (same filter,
 * q and conditions, ch_pairs >= 1). Advances in, out and counts px_pairs down to 0. */
typedef struct {
    const int8_t *in;       /* 0 */
    int8_t *out;            /* 4 */
    int32_t px_pairs;       /* 8 */
    const void *filter;     /* 12 */
    const mt_fast_quant *q; /* 16 */
    int32_t ch_pairs;       /* 20 */
    int32_t k_groups;       /* 24 */
    int32_t ocs;            /* 28 */
    int32_t *cols;          /* 32 */
} mt_pw_job;
void mt_pw_run_w16_full(mt_pw_job *job);
#endif

#endif /* MT_SIMD_H */
