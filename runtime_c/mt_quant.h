/* microtile fixed-point helpers: scalar versions of compiler/core/quant.py, bit-exact with it and
 * with TFLite-Micro's reference arithmetic (gemmlowp fixedpoint.h, TFLite's default
 * double-rounding MultiplyByQuantizedMultiplier).
 *
 * All values are int32 "raw" fixed-point numbers. Intermediate arithmetic that C would
 * overflow is done in int64 or uint32, so these functions are free of signed-overflow UB.
 * Right shifts of negative values are arithmetic (every compiler microtile targets).
 */
#ifndef MT_QUANT_H
#define MT_QUANT_H

#include <stdint.h>

#define MT_INT32_MIN (-2147483647 - 1)
#define MT_INT32_MAX 2147483647

/* Two's-complement wrap of an int64 to int32 (as C's unsigned arithmetic would do). */
static inline int32_t mt_wrap32(int64_t x)
{
    uint32_t u = (uint32_t)((uint64_t)x & 0xFFFFFFFFu);
    return u <= 0x7FFFFFFFu ? (int32_t)u : (int32_t)(u - 0x80000000u) + MT_INT32_MIN;
}

/* Two's-complement wrap to int16. */
static inline int32_t mt_wrap16(int64_t x)
{
    return (int32_t)(((uint64_t)x + 32768u) & 0xFFFFu) - 32768;
}

static inline int32_t mt_sat16(int64_t x)
{
    return x < -32768 ? -32768 : (x > 32767 ? 32767 : (int32_t)x);
}

/* x * 2^left wrapped to int32 (left in [0, 31]). */
static inline int32_t mt_shl_wrap32(int32_t x, int32_t left)
{
    return mt_wrap32((int64_t)((uint64_t)(int64_t)x << left));
}

/* gemmlowp SaturatingRoundingDoublingHighMul (VQRDMULH). */
static inline int32_t mt_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == MT_INT32_MIN) {
        return MT_INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates */
}

/* gemmlowp RoundingDivideByPOT: rounding arithmetic right shift, ties away from zero.
 * exponent in [0, 62] (done in int64, so exponents above 31 behave as in numpy). */
static inline int32_t mt_rdbypot(int32_t x, int32_t exponent)
{
    int64_t v = x;
    int64_t mask = (int64_t)(((uint64_t)1 << exponent) - 1u);
    int64_t remainder = v & mask;
    int64_t threshold = (mask >> 1) + (v < 0 ? 1 : 0);
    return (int32_t)((v >> exponent) + (remainder > threshold ? 1 : 0));
}

/* TFLite MultiplyByQuantizedMultiplier (double rounding), shift in [-62, 31]. */
static inline int32_t mt_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    int32_t left = shift > 0 ? shift : 0;
    int32_t right = shift > 0 ? 0 : -shift;
    return mt_rdbypot(mt_srdhm(mt_shl_wrap32(x, left), multiplier), right);
}

/* TFLite MultiplyByQuantizedMultiplier(int64_t x, ...) of the 16x8 kernels
 * (tensorflow/lite/kernels/internal/common.cc): the multiplier rounded to 15 bits, one
 * rounding shift by 15 - shift; |x| < 2^47, shift in [-31, 7]; the result cast to int32. */
static inline int32_t mt_mbqm64(int64_t x, int32_t multiplier, int32_t shift)
{
    const int64_t reduced = multiplier < 0x7FFF0000 ? (int64_t)((multiplier + (1 << 15)) >> 16) : 0x7FFF;
    const int32_t total = 15 - shift;
    return mt_wrap32((x * reduced + ((int64_t)1 << (total - 1))) >> total);
}

/* TFLite MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0). */
static inline int32_t mt_mbqm_smaller_than_one(int32_t x, int32_t multiplier, int32_t shift)
{
    return mt_rdbypot(mt_srdhm(x, multiplier), -shift);
}

/* TFLite MultiplyByQuantizedMultiplierGreaterThanOne (left_shift in [0, 31]). */
static inline int32_t mt_mbqm_greater_than_one(int32_t x, int32_t multiplier, int32_t left_shift)
{
    return mt_srdhm(mt_shl_wrap32(x, left_shift), multiplier);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent>, exponent in [-31, 31]. */
static inline int32_t mt_sat_mul_pot(int32_t x, int32_t exponent)
{
    if (exponent == 0) {
        return x;
    }
    if (exponent < 0) {
        return mt_rdbypot(x, -exponent);
    }
    int64_t threshold = ((int64_t)1 << (31 - exponent)) - 1;
    if (x > threshold) {
        return MT_INT32_MAX;
    }
    if (x < -threshold) {
        return MT_INT32_MIN;
    }
    return mt_shl_wrap32(x, exponent);
}

/* gemmlowp Rescale: change the number of integer bits of a raw value (saturating). */
static inline int32_t mt_rescale(int32_t x, int32_t src_integer_bits, int32_t dst_integer_bits)
{
    return mt_sat_mul_pot(x, src_integer_bits - dst_integer_bits);
}

static inline int32_t mt_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668;
    const int32_t constant_1_over_3 = 715827883;
    int32_t x = mt_wrap32((int64_t)a + (1 << 28));
    int32_t x2 = mt_srdhm(x, x);
    int32_t x3 = mt_srdhm(x2, x);
    int32_t x4 = mt_srdhm(x2, x2);
    int32_t x4_over_4 = mt_rdbypot(x4, 2);
    int32_t inner = mt_srdhm(mt_wrap32((int64_t)x4_over_4 + x3), constant_1_over_3);
    int32_t t = mt_rdbypot(mt_wrap32((int64_t)inner + x2), 1);
    return mt_wrap32((int64_t)constant_term + mt_srdhm(constant_term, mt_wrap32((int64_t)x + t)));
}

/* gemmlowp exp_on_negative_values: exp(a) for a <= 0 in Q(integer_bits).(31-integer_bits),
 * result in Q0.31. integer_bits in [1, 29]. */
static inline int32_t mt_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    static const int32_t barrel_mult[7] = {1672461947, 1302514674, 790015084, 290630308,
                                           39332535,   720401,     242};
    const int32_t frac_bits = 31 - integer_bits;
    const int64_t one_quarter = (int64_t)1 << (frac_bits - 2);
    const int64_t mask = one_quarter - 1;
    const int64_t a_mod_quarter_minus_one_quarter = ((int64_t)a & mask) - one_quarter;
    int32_t result = mt_exp_on_interval_between_negative_one_quarter_and_0_excl(
        mt_rescale((int32_t)a_mod_quarter_minus_one_quarter, integer_bits, 0));
    const int64_t remainder = a_mod_quarter_minus_one_quarter - a;
    for (int32_t i = 0; i < 7; ++i) {
        int32_t exponent = i - 2;
        if (integer_bits > exponent) {
            int32_t shift = frac_bits + exponent;
            if ((remainder & ((int64_t)1 << shift)) != 0) {
                result = mt_srdhm(result, barrel_mult[i]);
            }
        }
    }
    if (integer_bits > 5) {
        int64_t clamp = -((int64_t)1 << (36 - integer_bits));
        if (a < clamp) {
            result = 0;
        }
    }
    return a == 0 ? MT_INT32_MAX : result;
}

/* gemmlowp RoundingHalfSum on int32. */
static inline int32_t mt_rounding_half_sum(int32_t a, int32_t b)
{
    int64_t s = (int64_t)a + b;
    int64_t t = s + (s >= 0 ? 1 : -1);
    return (int32_t)(t / 2);
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: 1/(1+a), a and the result in Q0.31. */
static inline int32_t mt_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = mt_rounding_half_sum(a, MT_INT32_MAX);
    const int32_t c48_17 = 1515870810;
    const int32_t cn32_17 = -1010580540;
    const int32_t one_f2 = 1 << 29;
    int32_t x = mt_wrap32((int64_t)c48_17 + mt_srdhm(half_denominator, cn32_17));
    for (int32_t i = 0; i < 3; ++i) {
        int32_t hdx = mt_srdhm(half_denominator, x);
        int32_t one_minus = mt_wrap32((int64_t)one_f2 - hdx);
        x = mt_wrap32((int64_t)x + mt_rescale(mt_srdhm(x, one_minus), 4, 2));
    }
    return mt_rescale(x, 1, 0);
}

/* Leading zeros of the uint32 reinterpretation of x (32 for zero). */
static inline int32_t mt_clz32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* TFLite GetReciprocal: 1/x as a Q0.31 scale and *num_bits_over_unit. */
static inline int32_t mt_get_reciprocal(int32_t x, int32_t x_integer_digits, int32_t *num_bits_over_unit)
{
    int32_t headroom_plus_one = mt_clz32((uint32_t)x);
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    uint32_t shifted = headroom_plus_one >= 32 ? 0u : ((uint32_t)x << headroom_plus_one);
    int32_t shifted_sum_minus_one = mt_wrap32((int64_t)shifted - ((int64_t)1 << 31));
    return mt_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

/* gemmlowp logistic on a Q(integer_bits) input, Q0.31 output. */
static inline int32_t mt_logistic_q(int32_t a, int32_t integer_bits)
{
    if (a == 0) {
        return 1 << 30;
    }
    int64_t abs_input = a > 0 ? (int64_t)a : -(int64_t)a;
    int32_t r_pos = mt_one_over_one_plus_x_for_x_in_0_1(
        mt_exp_on_negative_values(mt_wrap32(-abs_input), integer_bits));
    return a > 0 ? r_pos : MT_INT32_MAX - r_pos;
}

static inline int32_t mt_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

#endif /* MT_QUANT_H */
