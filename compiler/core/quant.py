"""Fixed-point arithmetic, bit-exact with TFLite-Micro's reference kernels.

Everything here works elementwise on numpy int64 arrays that hold int32 values, so the
reference executor can run whole tensors at once. The C kernels in `runtime_c/mt_quant.h`
implement the same functions on scalars; `tests/test_quant.py` checks the two agree.

Sources of the arithmetic (facts, re-implemented): gemmlowp's fixedpoint.h
(SaturatingRoundingDoublingHighMul, RoundingDivideByPOT, exp_on_negative_values,
one_over_one_plus_x_for_x_in_0_1, logistic) and TFLite's quantization_util.cc
(QuantizeMultiplier, PreprocessSoftmaxScaling, CalculateInputRadius), in their default
double-rounding form (TFLITE_SINGLE_ROUNDING unset, as in the tflite-micro package).
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """A real multiplier as (q31 significand, power-of-two exponent): real ~= q/2^31 * 2^shift."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * (1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def _round_half_away(x: float) -> int:
    """C's round(): halves away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _i64(x: np.ndarray | int) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 range (C's unsigned-wrap behaviour)."""
    x = _i64(x)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (VQRDMULH)."""
    a, b = _i64(a), _i64(b)
    overflow = (a == b) & (a == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C integer division truncates toward zero
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where(overflow, INT32_MAX, q)


def rdbypot(x: np.ndarray | int, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: rounding arithmetic right shift, ties away from zero."""
    x, exponent = _i64(x), _i64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def mbqm(x: np.ndarray | int, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (double rounding)."""
    x, multiplier, shift = _i64(x), _i64(multiplier), _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rdbypot(srdhm(wrap32(x * (np.int64(1) << left)), multiplier), right)


def mbqm64(x: np.ndarray | int, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier(int64_t x, ...) of the 16x8 kernels: the multiplier
    rounded to 15 bits, one rounding shift by 15 - shift (|x| < 2^47), the result cast to int32.
    Source: tensorflow/lite/kernels/internal/common.cc (tflite-micro)."""
    x, multiplier, shift = _i64(x), _i64(multiplier), _i64(shift)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - shift
    return wrap32((x * reduced + (np.int64(1) << (total - 1))) >> total)


def mbqm_smaller_than_one(x: np.ndarray | int, multiplier: np.ndarray | int, shift: np.ndarray | int):
    """TFLite MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0)."""
    return rdbypot(srdhm(x, multiplier), -_i64(shift))


def mbqm_greater_than_one(x: np.ndarray | int, multiplier: int, left_shift: int) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplierGreaterThanOne (left_shift >= 0)."""
    return srdhm(wrap32(_i64(x) * (1 << left_shift)), multiplier)


# -- gemmlowp fixed-point transcendental functions (int32 raw values) ---------------------


def _sat_mul_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on int32."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbypot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    r = wrap32(x << exponent)
    r = np.where(x > threshold, INT32_MAX, r)
    return np.where(x < -threshold, INT32_MIN, r)


def rescale(x: np.ndarray, src_int_bits: int, dst_int_bits: int) -> np.ndarray:
    return _sat_mul_pot(x, src_int_bits - dst_int_bits)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbypot(x4, 2)
    t = rdbypot(srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + srdhm(constant_term, x + t)


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """exp(a) for a <= 0 given as Q(integer_bits).(31-integer_bits); result in Q0.31."""
    a = _i64(a)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0)
    )
    remainder = a_mod_quarter_minus_one_quarter - a
    barrel = (
        (-2, 1672461947),
        (-1, 1302514674),
        (0, 790015084),
        (1, 290630308),
        (2, 39332535),
        (3, 720401),
        (4, 242),
    )
    for exponent, multiplier in barrel:
        if integer_bits > exponent:
            shift = frac_bits + exponent
            result = np.where((remainder & (1 << shift)) != 0, srdhm(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _rounding_half_sum(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    s = _i64(a) + _i64(b)
    sign = np.where(s >= 0, 1, -1)
    t = s + sign
    return np.where(t >= 0, t // 2, -((-t) // 2))


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """1/(1+a) for a in [0,1) as Q0.31, result Q0.31 (Newton-Raphson, as gemmlowp)."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    c48_17 = 1515870810
    cn32_17 = -1010580540
    x = c48_17 + srdhm(half_denominator, cn32_17)
    one_f2 = 1 << 29
    for _ in range(3):
        hdx = srdhm(half_denominator, x)
        one_minus = one_f2 - hdx
        x = x + rescale(srdhm(x, one_minus), 2 + 2, 2)
    # ExactMulByPot<-1>: F2 -> F1 with the same raw; then Rescale<0> from 1 integer bit
    return rescale(x, 1, 0)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """(1-a)/(1+a) for a in [0,1) as Q0.31 (gemmlowp: the Newton-Raphson of
    one_over_one_plus_x_for_x_in_0_1, then Rescale<0>(x - F2::One()))."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = 1515870810 + srdhm(half_denominator, -1010580540)
    one_f2 = 1 << 29
    for _ in range(3):
        hdx = srdhm(half_denominator, x)
        x = x + rescale(srdhm(x, one_f2 - hdx), 2 + 2, 2)
    return rescale(x - one_f2, 2, 0)


def tanh_q(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh on Q(integer_bits) input, Q0.31 output: with n = -|a|,
    t = one_minus_x_over_one_plus_x(exp_on_negative_values(n as Q(integer_bits + 1)))."""
    a = _i64(a)
    n = np.where(a < 0, a, -a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(a < 0, -t, t))


def count_leading_zeros32(x: np.ndarray | int) -> np.ndarray:
    """Leading zeros of the uint32 reinterpretation of x (32 for zero)."""
    u = (_i64(x) & 0xFFFFFFFF).astype(np.float64)
    _, e = np.frexp(u)  # exact: u < 2^53, so e is the bit length
    return 32 - e.astype(np.int64)


def get_reciprocal(x: np.ndarray, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal: returns (shifted_scale Q0.31, num_bits_over_unit)."""
    x = _i64(x)
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = (((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    shifted_sum_minus_one = wrap32(shifted)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def logistic_q(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic on Q(integer_bits) input, Q0.31 output."""
    a = _i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, -a)
    r_pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-abs_input, integer_bits))
    r_neg = INT32_MAX - r_pos
    return np.where(a == 0, 1 << 30, np.where(positive, r_pos, r_neg))


# -- quantization-parameter derivations (Prepare() of each TFLM kernel) ---------------------


def activation_range(activation: str, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127):
    """TFLite CalculateActivationRangeQuantized: the int clamp of a fused activation."""

    def q(v: float) -> int:
        # TFLite divides in float32: round(f / scale) with f and scale floats
        return zero_point + _round_half_away(float(np.float32(v) / np.float32(scale)))

    if activation == "relu":
        return max(qmin, q(0.0)), qmax
    if activation == "relu6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if activation == "relu_n1_to_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    return qmin, qmax


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    max_input_rescaled = (
        1.0
        * ((1 << input_integer_bits) - 1)
        * (1 << (total_signed_bits - input_integer_bits))
        / (1 << input_left_shift)
    )
    return int(math.floor(max_input_rescaled))


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) as TFLM's CalculateSoftmaxParams for int8."""
    scaled_diff_integer_bits = 5
    max_real = float((1 << 31) - 1)
    real = min(beta * input_scale * (1 << (31 - scaled_diff_integer_bits)), max_real)
    mult, shift = quantize_multiplier(real)
    diff_min = -calculate_input_radius(scaled_diff_integer_bits, shift)
    return mult, shift, diff_min


def inv_sqrt_multiplier_exp(x: np.ndarray | int, reverse_shift: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetInvSqrtQuantizedMultiplierExp on int32 values x >= 0: (multiplier, shift) with
    1/sqrt(x) ~= multiplier/2^31 * 2^shift (reverse_shift -1: shift as MultiplyByQuantizedMultiplier
    takes it). x <= 1 gives (INT32_MAX, 0). Five Newton-Raphson steps in gemmlowp Q3.28 from 1.0,
    times sqrt(2)/2 in Q0.31. Source: tensorflow/lite/kernels/internal/common.h (tflite-micro)."""
    x = _i64(x).copy()
    small = x <= 1
    x = np.where(small, 1 << 28, x)  # any valid value; replaced below
    shift = np.full(x.shape, 11, dtype=np.int64)
    while np.any(x >= (1 << 29)):
        big = x >= (1 << 29)
        x = np.where(big, x // 4, x)
        shift = shift + big
    pairs = (count_leading_zeros32(x) - 1) // 2 - 1
    shift = shift - pairs
    x = x << (2 * pairs)
    f3_input = x >> 1
    half_input = rdbypot(f3_input, 1)
    half_three = (1 << 28) + (1 << 27)
    r = np.full(x.shape, 1 << 28, dtype=np.int64)  # F3 one
    for _ in range(5):
        x3 = rescale(srdhm(srdhm(r, r), r), 9, 3)
        r = rescale(wrap32(srdhm(half_three, r) - srdhm(half_input, x3)), 6, 3)
    r = srdhm(r, 1518500250)
    r = np.where(shift < 0, wrap32(r << np.maximum(-shift, 0)), r)
    shift = np.maximum(shift, 0)
    r = np.where(small, INT32_MAX, r)
    shift = np.where(small, 0, shift)
    return r, shift * reverse_shift
