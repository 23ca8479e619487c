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

#if !defined(__ARM_FEATURE_DSP) || !defined(MT_FAST_ASM)
MT_INLINE int32_t lo16(int32_t w)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)w & 0xFFFFu);
}

MT_INLINE int32_t hi16(int32_t w)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)w >> 16);
}

/* One group: column words x0 = (k0 | k2 << 16), x1 = (k1 | k3 << 16) against filter words of
 * the same layout. Products are at most 2^14, sums of 4 fit easily; the wrap matches SMLAD. */
MT_INLINE int32_t dot_group(int32_t acc, int32_t x0, int32_t x1, int32_t w0, int32_t w1)
{
    const int32_t s = lo16(x0) * lo16(w0) + hi16(x0) * hi16(w0) + lo16(x1) * lo16(w1) + hi16(x1) * hi16(w1);
    return mt_add_wrap(acc, s);
}

MT_INLINE int32_t pack_s8(const int8_t *w, int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)(int32_t)w[b] << 16) | ((uint32_t)(int32_t)w[a] & 0xFFFFu));
}
#endif

#define MT_MAT_UNROLL 32
#if defined(__ARM_FEATURE_DSP) && defined(MT_FAST_ASM)
/* Up to MT_MAT_UNROLL groups of the block, straight-line: a computed jump into an unrolled
 * run of groups (2 LDM + 8 SMLAD = 10 instructions for 16 MACs, no loop counter: all 14
 * registers hold accumulators, data and the two pointers). Longer reductions run as
 * several chunks. Built with MT_FAST_ASM (the generated Makefile sets it at -O2/-O3: at
 * -O1/-Os/-Og GCC cannot free the 14 registers); otherwise the C loop below. */
#define MT_G2X2_LDM                                      \
    "ldmia.w %[xp]!, {%[x0], %[x1], %[y0], %[y1]}\n\t"   \
    "ldmia.w %[wp]!, {%[u0], %[u1], %[v0], %[v1]}\n\t"   \
    "smlad %[a00], %[x0], %[u0], %[a00]\n\t"             \
    "smlad %[a10], %[y0], %[u0], %[a10]\n\t"             \
    "smlad %[a00], %[x1], %[u1], %[a00]\n\t"             \
    "smlad %[a10], %[y1], %[u1], %[a10]\n\t"             \
    "smlad %[a01], %[x0], %[v0], %[a01]\n\t"             \
    "smlad %[a11], %[y0], %[v0], %[a11]\n\t"             \
    "smlad %[a01], %[x1], %[v1], %[a01]\n\t"             \
    "smlad %[a11], %[y1], %[v1], %[a11]\n\t"
#define MT_G4 MT_G2X2_LDM MT_G2X2_LDM MT_G2X2_LDM MT_G2X2_LDM
#define MT_G32 MT_G4 MT_G4 MT_G4 MT_G4 MT_G4 MT_G4 MT_G4 MT_G4

/* skip = (MT_MAT_UNROLL - first chunk) * 40 bytes, computed once per call: the first chunk
 * enters the unrolled run that far in, every further chunk (kg > MT_MAT_UNROLL) at its top. */
#define MT_MAC2X2_W16(xp_, wp_, rest, skip, c00, c01, c10, c11)                                    \
    do {                                                                                           \
        int32_t left_ = (rest), skip_ = (skip);                                                    \
        for (;;) {                                                                                 \
            register int32_t x0_ __asm__("r0") = skip_;                                            \
            register int32_t x1_ __asm__("r1");                                                    \
            register int32_t y0_ __asm__("r2");                                                    \
            register int32_t y1_ __asm__("r3");                                                    \
            register int32_t u0_ __asm__("r4");                                                    \
            register int32_t u1_ __asm__("r5");                                                    \
            register int32_t v0_ __asm__("r6");                                                    \
            register int32_t v1_ __asm__("r8");                                                    \
            __asm__ volatile("adr.w %[u0], 8f\n\t"                                                 \
                             "add %[u0], %[u0], %[x0]\n\t"                                         \
                             "mov pc, %[u0]\n\t"                                                   \
                             ".balign 4\n"                                                         \
                             "8:\n\t" MT_G32                                                       \
                             : [a00] "+r"(c00), [a01] "+r"(c01), [a10] "+r"(c10), [a11] "+r"(c11), \
                               [xp] "+r"(xp_), [wp] "+r"(wp_), [x0] "+r"(x0_), [x1] "=r"(x1_),     \
                               [y0] "=r"(y0_), [y1] "=r"(y1_), [u0] "=&r"(u0_), [u1] "=r"(u1_),    \
                               [v0] "=r"(v0_), [v1] "=r"(v1_)                                      \
                             :                                                                     \
                             : "memory");                                                          \
            if (left_ <= 0) {                                                                      \
                break;                                                                             \
            }                                                                                      \
            left_ -= MT_MAT_UNROLL;                                                                \
            skip_ = 0;                                                                             \
        }                                                                                          \
    } while (0)

/* The paired int8 filter (mt_nn_fast.h): per group one LDM of both columns, one LDRD of the
 * pair's two words, 2 SXTB16 and 8 SMLAD = 12 instructions (48 bytes) for 16 MACs. c1/d1
 * accumulate a + 256 b, c2/d2 channel a (columns 0/1). */
#define MT_P8_GROUP                                      \
    "ldmia.w %[xp]!, {%[x0], %[x1], %[y0], %[y1]}\n\t"   \
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t"                 \
    "smlad %[c1], %[x0], %[w0], %[c1]\n\t"               \
    "smlad %[d1], %[y0], %[w0], %[d1]\n\t"               \
    "sxtb16 %[w0], %[w0]\n\t"                            \
    "smlad %[c2], %[x0], %[w0], %[c2]\n\t"               \
    "smlad %[d2], %[y0], %[w0], %[d2]\n\t"               \
    "smlad %[c1], %[x1], %[w1], %[c1]\n\t"               \
    "smlad %[d1], %[y1], %[w1], %[d1]\n\t"               \
    "sxtb16 %[w1], %[w1]\n\t"                            \
    "smlad %[c2], %[x1], %[w1], %[c2]\n\t"               \
    "smlad %[d2], %[y1], %[w1], %[d2]\n\t"
#define MT_P8_G4 MT_P8_GROUP MT_P8_GROUP MT_P8_GROUP MT_P8_GROUP
#define MT_P8_G32 MT_P8_G4 MT_P8_G4 MT_P8_G4 MT_P8_G4 MT_P8_G4 MT_P8_G4 MT_P8_G4 MT_P8_G4
#define MT_P8_BYTES 48

#define MT_MAC2X2_P8(xp_, wp_, rest, skip, c1_, c2_, d1_, d2_)                                      \
    do {                                                                                           \
        int32_t left_ = (rest), skip_ = (skip);                                                    \
        for (;;) {                                                                                 \
            register int32_t x0_ __asm__("r0") = skip_;                                            \
            register int32_t x1_ __asm__("r1");                                                    \
            register int32_t y0_ __asm__("r2");                                                    \
            register int32_t y1_ __asm__("r3");                                                    \
            int32_t w0_, w1_;                                                                      \
            __asm__ volatile("adr.w %[w0], 8f\n\t"                                                 \
                             "add %[w0], %[w0], %[x0]\n\t"                                         \
                             "mov pc, %[w0]\n\t"                                                   \
                             ".balign 4\n"                                                         \
                             "8:\n\t" MT_P8_G32                                                    \
                             : [c1] "+r"(c1_), [c2] "+r"(c2_), [d1] "+r"(d1_), [d2] "+r"(d2_),     \
                               [xp] "+r"(xp_), [wp] "+r"(wp_), [x0] "+r"(x0_), [x1] "=r"(x1_),     \
                               [y0] "=r"(y0_), [y1] "=r"(y1_), [w0] "=&r"(w0_), [w1] "=r"(w1_)    \
                             :                                                                     \
                             : "memory");                                                          \
            if (left_ <= 0) {                                                                      \
                break;                                                                             \
            }                                                                                      \
            left_ -= MT_MAT_UNROLL;                                                                \
            skip_ = 0;                                                                             \
        }                                                                                          \
    } while (0)
#endif

#if defined(MT_MAT_PAIRS_ASM)
/* The whole channel-pair loop of the commonest case (int16 filter, full output range,
 * k_groups <= MT_MAT_UNROLL) as one hand-allocated Thumb-2 function, so nothing spills
 * around the unrolled run: per pair 1 load-from-frame + 1 LDM per channel's quant record
 * (bias, mult, lshift, rnd, rshift), SMMLAR/ADD/ASR/SSAT per output (the same arithmetic as
 * mt_requant_q with ls = 0 and mt_clamp_q of a full range), 4 STRB (column 1 first), the
 * next pair's biases and one LDR PC into the run: 36 instructions besides the 10 per group.
 * Registers: r0-r3 column words, r4-r7 filter words, r8 a00, r9 a01, r10 a10, r11 a11,
 * r12 the column pointer, lr the filter pointer (kept across pairs). Frame: [sp] x,
 * [sp+4] q, [sp+8] out0, [sp+12] out1, [sp+16] the end of q, [sp+20] the run's entry | 1.
 * Arguments: x, filter, q, pairs (>= 1), then on the stack out0, out1, skip (bytes). */
__asm__(".text\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".balign 4\n\t"
        ".global mt_mat_pairs_w16_full\n\t"
        ".type mt_mat_pairs_w16_full, %function\n\t"
        ".thumb_func\n"
        "mt_mat_pairs_w16_full:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #24\n\t"
        "ldr r4, [sp, #60]\n\t"
        "ldr r5, [sp, #64]\n\t"
        "ldr r6, [sp, #68]\n\t"
        "str r0, [sp, #0]\n\t"
        "str r2, [sp, #4]\n\t"
        "strd r4, r5, [sp, #8]\n\t"
        "add r3, r3, r3, lsl #2\n\t"
        "add r3, r2, r3, lsl #3\n\t"
        "str r3, [sp, #16]\n\t"
        "adr.w r7, 1f\n\t"
        "add r7, r7, r6\n\t"
        "orr r7, r7, #1\n\t"
        "str r7, [sp, #20]\n\t"
        "mov lr, r1\n\t"
        "ldr r8, [r2, #0]\n\t"
        "ldr r9, [r2, #20]\n\t"
        "mov r10, r8\n\t"
        "mov r11, r9\n\t"
        "mov r12, r0\n\t"
        "ldr pc, [sp, #20]\n\t"
        ".balign 4\n"
        "1:\n\t"
        ".rept 32\n\t"
        "ldmia.w r12!, {r0-r3}\n\t"
        "ldmia.w lr!, {r4-r7}\n\t"
        "smlad r8, r0, r4, r8\n\t"
        "smlad r10, r2, r4, r10\n\t"
        "smlad r8, r1, r5, r8\n\t"
        "smlad r10, r3, r5, r10\n\t"
        "smlad r9, r0, r6, r9\n\t"
        "smlad r11, r2, r6, r11\n\t"
        "smlad r9, r1, r7, r9\n\t"
        "smlad r11, r3, r7, r11\n\t"
        ".endr\n\t"
        "ldr r12, [sp, #4]\n\t"
        "ldmia.w r12!, {r0-r4}\n\t"
        "smmlar r0, r8, r1, r3\n\t"
        "smmlar r2, r10, r1, r3\n\t"
        "add r0, r0, r8, asr #31\n\t"
        "add r2, r2, r10, asr #31\n\t"
        "asr r0, r0, r4\n\t"
        "asr r2, r2, r4\n\t"
        "ssat r8, #8, r0\n\t"
        "ssat r10, #8, r2\n\t"
        "ldmia.w r12!, {r0-r4}\n\t"
        "smmlar r0, r9, r1, r3\n\t"
        "smmlar r2, r11, r1, r3\n\t"
        "add r0, r0, r9, asr #31\n\t"
        "add r2, r2, r11, asr #31\n\t"
        "asr r0, r0, r4\n\t"
        "asr r2, r2, r4\n\t"
        "ssat r9, #8, r0\n\t"
        "ssat r11, #8, r2\n\t"
        "ldrd r0, r1, [sp, #8]\n\t"
        "strb r11, [r1, #1]\n\t"
        "strb r10, [r1], #2\n\t"
        "strb r9, [r0, #1]\n\t"
        "strb r8, [r0], #2\n\t"
        "strd r0, r1, [sp, #8]\n\t"
        "str r12, [sp, #4]\n\t"
        "ldr r0, [sp, #16]\n\t"
        "cmp r12, r0\n\t"
        "beq 2f\n\t"
        "ldr r8, [r12, #0]\n\t"
        "ldr r9, [r12, #20]\n\t"
        "mov r10, r8\n\t"
        "mov r11, r9\n\t"
        "ldr r12, [sp, #0]\n\t"
        "ldr pc, [sp, #20]\n"
        "2:\n\t"
        "add sp, sp, #24\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size mt_mat_pairs_w16_full, .-mt_mat_pairs_w16_full\n");
#endif

#if defined(MT_MAT_PAIRS_ASM)
/* mt_pw_run_w16_full: a packed pointwise layer's pixel pairs in one call (mt_simd.h). Per pixel
 * pair: both pixels widened into the column pair (2 groups per iteration: 4 LDR, 8 SXTB16,
 * one 8-register STM), then the channel-pair loop of mt_mat_pairs_w16_full. Frame as there,
 * plus [sp+24] the job (its in, out and px_pairs advance). */
__asm__(".text\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".balign 4\n\t"
        ".global mt_pw_run_w16_full\n\t"
        ".type mt_pw_run_w16_full, %function\n\t"
        ".thumb_func\n"
        "mt_pw_run_w16_full:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #32\n\t"
        "str r0, [sp, #24]\n\t"
        "ldr r1, [r0, #32]\n\t"
        "str r1, [sp, #0]\n\t"
        "ldr r2, [r0, #16]\n\t"
        "ldr r3, [r0, #20]\n\t"
        "add r3, r3, r3, lsl #2\n\t"
        "add r3, r2, r3, lsl #3\n\t"
        "str r3, [sp, #16]\n\t"
        "ldr r4, [r0, #24]\n\t"
        "rsb r4, r4, #32\n\t"
        "add r4, r4, r4, lsl #2\n\t"
        "lsl r4, r4, #3\n\t"
        "adr.w r7, 1f\n\t"
        "add r7, r7, r4\n\t"
        "orr r7, r7, #1\n\t"
        "str r7, [sp, #20]\n"
        "3:\n\t"
        "ldr r1, [r0, #0]\n\t"
        "ldr r2, [r0, #24]\n\t"
        "add r3, r1, r2, lsl #2\n\t"
        "add r4, r3, r2, lsl #2\n\t"
        "str r4, [r0, #0]\n\t"
        "ldr r12, [sp, #0]\n\t"
        "subs r2, r2, #2\n\t"
        "blt 5f\n"
        "4:\n\t"
        "ldr r4, [r1], #4\n\t"
        "ldr r6, [r3], #4\n\t"
        "ldr r8, [r1], #4\n\t"
        "ldr r10, [r3], #4\n\t"
        "sxtb16 r5, r4, ror #8\n\t"
        "sxtb16 r4, r4\n\t"
        "sxtb16 r7, r6, ror #8\n\t"
        "sxtb16 r6, r6\n\t"
        "sxtb16 r9, r8, ror #8\n\t"
        "sxtb16 r8, r8\n\t"
        "sxtb16 r11, r10, ror #8\n\t"
        "sxtb16 r10, r10\n\t"
        "stmia r12!, {r4-r11}\n\t"
        "subs r2, r2, #2\n\t"
        "bge 4b\n"
        "5:\n\t"
        "adds r2, r2, #2\n\t"
        "beq 6f\n\t"
        "ldr r4, [r1]\n\t"
        "ldr r6, [r3]\n\t"
        "sxtb16 r5, r4, ror #8\n\t"
        "sxtb16 r4, r4\n\t"
        "sxtb16 r7, r6, ror #8\n\t"
        "sxtb16 r6, r6\n\t"
        "stmia r12!, {r4-r7}\n"
        "6:\n\t"
        "ldr r1, [r0, #4]\n\t"
        "ldr r2, [r0, #28]\n\t"
        "add r3, r1, r2\n\t"
        "strd r1, r3, [sp, #8]\n\t"
        "add r3, r3, r2\n\t"
        "str r3, [r0, #4]\n\t"
        "ldr r2, [r0, #16]\n\t"
        "str r2, [sp, #4]\n\t"
        "ldr lr, [r0, #12]\n\t"
        "ldr r8, [r2, #0]\n\t"
        "ldr r9, [r2, #20]\n\t"
        "mov r10, r8\n\t"
        "mov r11, r9\n\t"
        "ldr r12, [sp, #0]\n\t"
        "ldr pc, [sp, #20]\n\t"
        ".balign 4\n"
        "1:\n\t"
        ".rept 32\n\t"
        "ldmia.w r12!, {r0-r3}\n\t"
        "ldmia.w lr!, {r4-r7}\n\t"
        "smlad r8, r0, r4, r8\n\t"
        "smlad r10, r2, r4, r10\n\t"
        "smlad r8, r1, r5, r8\n\t"
        "smlad r10, r3, r5, r10\n\t"
        "smlad r9, r0, r6, r9\n\t"
        "smlad r11, r2, r6, r11\n\t"
        "smlad r9, r1, r7, r9\n\t"
        "smlad r11, r3, r7, r11\n\t"
        ".endr\n\t"
        "ldr r12, [sp, #4]\n\t"
        "ldmia.w r12!, {r0-r4}\n\t"
        "smmlar r0, r8, r1, r3\n\t"
        "smmlar r2, r10, r1, r3\n\t"
        "add r0, r0, r8, asr #31\n\t"
        "add r2, r2, r10, asr #31\n\t"
        "asr r0, r0, r4\n\t"
        "asr r2, r2, r4\n\t"
        "ssat r8, #8, r0\n\t"
        "ssat r10, #8, r2\n\t"
        "ldmia.w r12!, {r0-r4}\n\t"
        "smmlar r0, r9, r1, r3\n\t"
        "smmlar r2, r11, r1, r3\n\t"
        "add r0, r0, r9, asr #31\n\t"
        "add r2, r2, r11, asr #31\n\t"
        "asr r0, r0, r4\n\t"
        "asr r2, r2, r4\n\t"
        "ssat r9, #8, r0\n\t"
        "ssat r11, #8, r2\n\t"
        "ldrd r0, r1, [sp, #8]\n\t"
        "strb r11, [r1, #1]\n\t"
        "strb r10, [r1], #2\n\t"
        "strb r9, [r0, #1]\n\t"
        "strb r8, [r0], #2\n\t"
        "strd r0, r1, [sp, #8]\n\t"
        "str r12, [sp, #4]\n\t"
        "ldr r0, [sp, #16]\n\t"
        "cmp r12, r0\n\t"
        "beq 2f\n\t"
        "ldr r8, [r12, #0]\n\t"
        "ldr r9, [r12, #20]\n\t"
        "mov r10, r8\n\t"
        "mov r11, r9\n\t"
        "ldr r12, [sp, #0]\n\t"
        "ldr pc, [sp, #20]\n"
        "2:\n\t"
        "ldr r0, [sp, #24]\n\t"
        "ldr r1, [r0, #8]\n\t"
        "subs r1, r1, #1\n\t"
        "str r1, [r0, #8]\n\t"
        "bne 3b\n\t"
        "add sp, sp, #32\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size mt_pw_run_w16_full, .-mt_pw_run_w16_full\n");
#endif

/* Channels c, c+1 of both columns: the 2 x 2 block's accumulators over the k_groups
 * groups; *wpp (the pair's packed filter) advances to the next pair. */
MT_INLINE void mac_pair(const int32_t *x, int32_t k_groups, int32_t skip,
                                                           int32_t rest, const void **wpp, int32_t wide, int32_t *a00,
                                                           int32_t *a01, int32_t *a10, int32_t *a11)
{
    int32_t b00 = *a00, b01 = *a01, b10 = *a10, b11 = *a11;
    const int32_t *xp = x;
    (void)skip, (void)rest;
#if MT_SIMD
    if (wide) {
        const int32_t *wp = (const int32_t *)*wpp;
#if defined(__ARM_FEATURE_DSP) && defined(MT_FAST_ASM)
        MT_MAC2X2_W16(xp, wp, rest, skip, b00, b01, b10, b11);
#else
        for (int32_t g = k_groups; g > 0; --g) {
            int32_t x0, x1, y0, y1, u0, u1, v0, v1;
            MT_LD2(xp, x0, x1);
            MT_LD2(xp, y0, y1);
            MT_LD2(wp, u0, u1);
            MT_LD2(wp, v0, v1);
            b00 = __smlad(x1, u1, __smlad(x0, u0, b00));
            b10 = __smlad(y1, u1, __smlad(y0, u0, b10));
            b01 = __smlad(x1, v1, __smlad(x0, v0, b01));
            b11 = __smlad(y1, v1, __smlad(y0, v0, b11));
        }
#endif
        *wpp = wp;
    } else {
        const int8_t *wp = (const int8_t *)*wpp;
        for (int32_t g = k_groups; g > 0; --g) {
            int32_t x0, x1, y0, y1;
            MT_LD2(xp, x0, x1);
            MT_LD2(xp, y0, y1);
            const int32_t wu = mt_read_s8x4(wp), wv = mt_read_s8x4(wp + 4);
            wp += 8;
            const int32_t u0 = __sxtb16(wu), u1 = mt_sxtb16_ror8(wu);
            b00 = __smlad(x0, u0, b00);
            b00 = __smlad(x1, u1, b00);
            b10 = __smlad(y0, u0, b10);
            b10 = __smlad(y1, u1, b10);
            const int32_t v0 = __sxtb16(wv), v1 = mt_sxtb16_ror8(wv);
            b01 = __smlad(x0, v0, b01);
            b01 = __smlad(x1, v1, b01);
            b11 = __smlad(y0, v0, b11);
            b11 = __smlad(y1, v1, b11);
        }
        *wpp = wp;
    }
#else
    const int32_t *w32 = (const int32_t *)*wpp;
    const int8_t *w8 = (const int8_t *)*wpp;
    for (int32_t g = 0; g < k_groups; ++g) {
        int32_t u0, u1, v0, v1;
        if (wide) {
            const int32_t *wp = w32 + g * 4;
            u0 = wp[0], u1 = wp[1], v0 = wp[2], v1 = wp[3];
        } else {
            const int8_t *wp = w8 + g * 8;
            u0 = pack_s8(wp, 0, 2), u1 = pack_s8(wp, 1, 3), v0 = pack_s8(wp, 4, 6), v1 = pack_s8(wp, 5, 7);
        }
        const int32_t *xg = xp + 4 * g;
        b00 = dot_group(b00, xg[0], xg[1], u0, u1);
        b10 = dot_group(b10, xg[2], xg[3], u0, u1);
        b01 = dot_group(b01, xg[0], xg[1], v0, v1);
        b11 = dot_group(b11, xg[2], xg[3], v0, v1);
    }
    *wpp = wide ? (const void *)(w32 + 4 * k_groups) : (const void *)(w8 + 8 * k_groups);
#endif
    *a00 = b00, *a01 = b01, *a10 = b10, *a11 = b11;
}

/* Requantizes a block's four accumulators (records loaded before any int8 store, which
 * could alias them) and stores column 1, then column 0. */
MT_INLINE void store_pair(const mt_fast_quant *q, int32_t a00, int32_t a01,
                                                             int32_t a10, int32_t a11, mt_out_stage o,
                                                             int8_t *o0, int8_t *o1, int32_t two_ch, int32_t ls)
{
    /* live channels have lshift 1 (codegen/kernels.py), constant ones multiplier 0: the
     * shift is the constant ls (0 where the int16 filter and the bias are doubled) */
    const int32_t m0 = q[0].mult, r0 = q[0].rnd, s0 = q[0].rshift, l0 = ls;
    const int32_t m1 = q[1].mult, r1 = q[1].rnd, s1 = q[1].rshift, l1 = ls;
    const int32_t v10 = mt_requant_q(a10, m0, l0, r0, s0), v00 = mt_requant_q(a00, m0, l0, r0, s0);
    if (two_ch) {
        const int32_t v11 = mt_requant_q(a11, m1, l1, r1, s1), v01 = mt_requant_q(a01, m1, l1, r1, s1);
        o1[0] = mt_clamp_q(v10, o);
        o1[1] = mt_clamp_q(v11, o);
        o0[0] = mt_clamp_q(v00, o);
        o0[1] = mt_clamp_q(v01, o);
    } else {
        o1[0] = mt_clamp_q(v10, o);
        o0[0] = mt_clamp_q(v00, o);
    }
}

/* Paired int8 filter: the pair's words against both columns; c1/d1 = bias + S_a + 256 S_b,
 * c2/d2 = bias + S_a (columns 0/1, wrapping); *wpp advances to the next pair. */
MT_INLINE void mac_pair_p8(const int32_t *x, int32_t k_groups, int32_t skip,
                                                              int32_t rest, const void **wpp, int32_t *c1,
                                                              int32_t *c2, int32_t *d1, int32_t *d2)
{
    int32_t b1 = *c1, b2 = *c2, e1 = *d1, e2 = *d2;
    const int32_t *xp = x;
    const int32_t *wp = (const int32_t *)*wpp;
    (void)skip, (void)rest, (void)k_groups;
#if defined(__ARM_FEATURE_DSP) && defined(MT_FAST_ASM)
    MT_MAC2X2_P8(xp, wp, rest, skip, b1, b2, e1, e2);
#elif MT_SIMD
    for (int32_t g = k_groups; g > 0; --g) {
        int32_t x0, x1, y0, y1, w0, w1;
        MT_LD2(xp, x0, x1);
        MT_LD2(xp, y0, y1);
        MT_LD2(wp, w0, w1);
        const int32_t t0 = mt_sxtb16(w0), t1 = mt_sxtb16(w1);
        b1 = __smlad(x1, w1, __smlad(x0, w0, b1));
        b2 = __smlad(x1, t1, __smlad(x0, t0, b2));
        e1 = __smlad(y1, w1, __smlad(y0, w0, e1));
        e2 = __smlad(y1, t1, __smlad(y0, t0, e2));
    }
#else
    for (int32_t g = 0; g < k_groups; ++g, xp += 4, wp += 2) {
        const int32_t t0 = mt_sxtb16(wp[0]), t1 = mt_sxtb16(wp[1]);
        b1 = dot_group(b1, xp[0], xp[1], wp[0], wp[1]);
        b2 = dot_group(b2, xp[0], xp[1], t0, t1);
        e1 = dot_group(e1, xp[2], xp[3], wp[0], wp[1]);
        e2 = dot_group(e2, xp[2], xp[3], t0, t1);
    }
#endif
    *wpp = wp;
    *c1 = b1, *c2 = b2, *d1 = e1, *d2 = e2;
}

/* Channel b of a pair from its two accumulators: S_b = (A1 - A2) / 256 exactly (|S_b| < 2^23,
 * checked by the compiler), plus b's folded bias (wrapping like the SMLAD sums). */
MT_INLINE int32_t pair_b(int32_t a1, int32_t a2, int32_t bias_b)
{
    return mt_add_wrap((int32_t)((uint32_t)a1 - (uint32_t)a2) >> 8, bias_b);
}

/* The odd last channel's pair (rare: most layers have even channel counts) outside the
 * unrolled runs, so each run is emitted once per specialization (flash): plain SIMD loops. */
#if defined(__ARM_FEATURE_DSP) && defined(MT_FAST_ASM)
static __attribute__((noinline)) void tail_p8(const int32_t *x, int32_t k_groups, const void *wp, int32_t *c1,
                                               int32_t *c2, int32_t *d1, int32_t *d2)
{
    const int32_t *w = (const int32_t *)wp;
    int32_t b1 = *c1, b2 = *c2, e1 = *d1, e2 = *d2;
    for (int32_t g = k_groups; g > 0; --g, x += 4, w += 2) {
        const int32_t t0 = __sxtb16(w[0]), t1 = __sxtb16(w[1]);
        b1 = __smlad(x[1], w[1], __smlad(x[0], w[0], b1));
        b2 = __smlad(x[1], t1, __smlad(x[0], t0, b2));
        e1 = __smlad(x[3], w[1], __smlad(x[2], w[0], e1));
        e2 = __smlad(x[3], t1, __smlad(x[2], t0, e2));
    }
    *c1 = b1, *c2 = b2, *d1 = e1, *d2 = e2;
}

static __attribute__((noinline)) void tail_pair(const int32_t *x, int32_t k_groups, const void *wp, int32_t wide,
                                                 int32_t *a00, int32_t *a01, int32_t *a10, int32_t *a11)
{
    int32_t b00 = *a00, b01 = *a01, b10 = *a10, b11 = *a11;
    const int32_t *w32 = (const int32_t *)wp;
    const int8_t *w8 = (const int8_t *)wp;
    for (int32_t g = 0; g < k_groups; ++g, x += 4) {
        int32_t u0, u1, v0, v1;
        if (wide) {
            u0 = w32[4 * g], u1 = w32[4 * g + 1], v0 = w32[4 * g + 2], v1 = w32[4 * g + 3];
        } else {
            const int32_t wu = mt_read_s8x4(w8 + 8 * g), wv = mt_read_s8x4(w8 + 8 * g + 4);
            u0 = __sxtb16(wu), u1 = mt_sxtb16_ror8(wu), v0 = __sxtb16(wv), v1 = mt_sxtb16_ror8(wv);
        }
        b00 = __smlad(x[1], u1, __smlad(x[0], u0, b00));
        b10 = __smlad(x[3], u1, __smlad(x[2], u0, b10));
        b01 = __smlad(x[1], v1, __smlad(x[0], v0, b01));
        b11 = __smlad(x[3], v1, __smlad(x[2], v0, b11));
    }
    *a00 = b00, *a01 = b01, *a10 = b10, *a11 = b11;
}
#else
static void tail_p8(const int32_t *x, int32_t k_groups, const void *wp, int32_t *c1, int32_t *c2, int32_t *d1,
                    int32_t *d2)
{
    mac_pair_p8(x, k_groups, 0, 0, &wp, c1, c2, d1, d2);
}

static void tail_pair(const int32_t *x, int32_t k_groups, const void *wp, int32_t wide, int32_t *a00, int32_t *a01,
                      int32_t *a10, int32_t *a11)
{
    mac_pair(x, k_groups, 0, 0, &wp, wide, a00, a01, a10, a11);
}
#endif

MT_INLINE void mat_run(const int32_t *x, int32_t k_groups, const void *filter,
                                                          int32_t wide, const mt_fast_quant *q, int32_t n_out,
                                                          mt_out_stage o, int8_t *out0, int8_t *out1)
{
    /* the unrolled run: the first chunk's groups (1 .. MT_MAT_UNROLL) and those after it */
    const int32_t first = k_groups - (k_groups - 1) / MT_MAT_UNROLL * MT_MAT_UNROLL;
    const int32_t rest = k_groups - first;
    const void *wp = filter;
    if (wide == MT_FILTER_S8_PAIRED) {
        const int32_t skip = 48 * (MT_MAT_UNROLL - first);
        for (int32_t n = n_out >> 1; n > 0; --n, q += 2, out0 += 2, out1 += 2) {
            int32_t c1 = q[0].bias, c2 = c1, d1 = c1, d2 = c1;
            mac_pair_p8(x, k_groups, skip, rest, &wp, &c1, &c2, &d1, &d2);
            const int32_t bb = q[1].bias;
            store_pair(q, c2, pair_b(c1, c2, bb), d2, pair_b(d1, d2, bb), o, out0, out1, 1, 1);
        }
        if (n_out & 1) { /* the last pair's channel b is the packer's zero padding */
            int32_t c1 = q[0].bias, c2 = c1, d1 = c1, d2 = c1;
            tail_p8(x, k_groups, wp, &c1, &c2, &d1, &d2);
            store_pair(q, c2, 0, d2, 0, o, out0, out1, 0, 1);
        }
        return;
    }
    const int32_t ls = wide ? 0 : 1;
    const int32_t skip = 40 * (MT_MAT_UNROLL - first);
#if defined(MT_MAT_PAIRS_ASM)
    if (wide == 1 && o.full && rest == 0 && n_out >= 2) {
        const int32_t pairs = n_out >> 1;
        mt_mat_pairs_w16_full(x, wp, q, pairs, out0, out1, skip);
        wp = (const int32_t *)wp + 4 * k_groups * pairs;
        q += 2 * pairs, out0 += 2 * pairs, out1 += 2 * pairs;
        n_out &= 1;
    }
#endif
    for (int32_t n = n_out >> 1; n > 0; --n, q += 2, out0 += 2, out1 += 2) {
        int32_t a00 = q[0].bias, a01 = q[1].bias, a10 = a00, a11 = a01;
        mac_pair(x, k_groups, skip, rest, &wp, wide, &a00, &a01, &a10, &a11);
        store_pair(q, a00, a01, a10, a11, o, out0, out1, 1, ls);
    }
    if (n_out & 1) {
        /* the last pair's second channel is the packer's zero padding */
        int32_t a00 = q[0].bias, a01 = 0, a10 = a00, a11 = 0;
        tail_pair(x, k_groups, wp, wide, &a00, &a01, &a10, &a11);
        store_pair(q, a00, a01, a10, a11, o, out0, out1, 0, ls);
    }
}

void mt_mat_2col_s8(const int32_t *x, int32_t k_groups, const void *filter, int32_t wide,
                    const mt_fast_quant *q, int32_t n_out, const mt_fast_params *p, int8_t *out0,
                    int8_t *out1)
{
    const mt_out_stage o = mt_out_stage_of(p);
    if (out1 == 0) {
        out1 = out0; /* column 1 (whatever it holds) is stored first, then column 0 over it */
    }
    mt_out_stage f = o;
    if (o.full) {
        f.full = 1;
        if (wide == MT_FILTER_S8_PAIRED) {
            mat_run(x, k_groups, filter, MT_FILTER_S8_PAIRED, q, n_out, f, out0, out1);
        } else if (wide) {
            mat_run(x, k_groups, filter, 1, q, n_out, f, out0, out1);
        } else {
            mat_run(x, k_groups, filter, 0, q, n_out, f, out0, out1);
        }
    } else {
        f.full = 0;
        mat_run(x, k_groups, filter, wide, q, n_out, f, out0, out1);
    }
}
