/* Host emulation of the ACLE DSP intrinsics the fast kernels use (test builds only).
 *
 * Included by mt_simd.h when MT_EMULATE_ACLE is defined and the compiler does not target a
 * core with the DSP extension, so the SIMD code paths of the *_dsp kernels run on the host
 * (under ASan/UBSan in tests/test_fast_kernels.py). Every function mirrors the Armv7E-M
 * instruction of the same name bit for bit; arithmetic that wraps on the core wraps here
 * (uint32_t), so UBSan sees no signed overflow. Never used in firmware.
 */
#ifndef MT_ACLE_HOST_H
#define MT_ACLE_HOST_H

#include <stdint.h>

static inline int32_t mt_h_lo16(int32_t x)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x & 0xFFFFu);
}

static inline int32_t mt_h_hi16(int32_t x)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16);
}

static inline int32_t mt_h_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}

/* SXTB16: sign-extend bytes 0 and 2 into the two halfwords. */
static inline int32_t __sxtb16(int32_t x)
{
    uint32_t u = (uint32_t)x;
    return mt_h_pack16((int32_t)(int8_t)(uint8_t)(u & 0xFFu), (int32_t)(int8_t)(uint8_t)((u >> 16) & 0xFFu));
}

/* SMLAD: a.lo * b.lo + a.hi * b.hi + c, wrapping to 32 bits (the core sets Q on overflow). */
static inline int32_t __smlad(int32_t a, int32_t b, int32_t c)
{
    uint32_t s = (uint32_t)(mt_h_lo16(a) * mt_h_lo16(b)) + (uint32_t)(mt_h_hi16(a) * mt_h_hi16(b));
    return (int32_t)(s + (uint32_t)c);
}

static inline int32_t __smlabb(int32_t a, int32_t b, int32_t c)
{
    return (int32_t)((uint32_t)(mt_h_lo16(a) * mt_h_lo16(b)) + (uint32_t)c);
}

static inline int32_t __smlatt(int32_t a, int32_t b, int32_t c)
{
    return (int32_t)((uint32_t)(mt_h_hi16(a) * mt_h_hi16(b)) + (uint32_t)c);
}

static inline int32_t __smlabt(int32_t a, int32_t b, int32_t c)
{
    return (int32_t)((uint32_t)(mt_h_lo16(a) * mt_h_hi16(b)) + (uint32_t)c);
}

static inline int32_t __smlatb(int32_t a, int32_t b, int32_t c)
{
    return (int32_t)((uint32_t)(mt_h_hi16(a) * mt_h_lo16(b)) + (uint32_t)c);
}

/* SSAT #n: saturate to the signed n-bit range. */
static inline int32_t mt_h_ssat(int32_t x, int32_t n)
{
    const int32_t hi = (int32_t)((1u << (n - 1)) - 1u), lo = -hi - 1;
    return x < lo ? lo : (x > hi ? hi : x);
}
#define __ssat(x, n) mt_h_ssat((x), (n))

#endif /* MT_ACLE_HOST_H */
