"""The int16 activation arithmetic of TFLite-Micro: LOGISTIC and TANH (a 256-entry sigmoid
table with linear interpolation) and SOFTMAX (two 513-entry LUTs with interpolation).

Sources (facts, re-implemented): tflite-micro `tensorflow/lite/kernels/internal/common.h`
(`sigmoid_table_uint16`, `LUTPopulateInt16<float>`, `LUTLookup(int16_t, ...)`),
`reference/integer_ops/logistic.h` and `tanh.h` (the int16 `Logistic`/`Tanh`),
`micro/kernels/logistic_common.cc` and `tanh.cc` (their int16 Prepare),
`reference/softmax.h` (`SoftmaxInt16`) and `micro/kernels/softmax_common.cc` (its Prepare).

The tables do not depend on the model: the C kernels read the same numbers from
`runtime_c/mt_lut16.c` (declared in `runtime_c/mt_lut16.h`), which
`python -m compiler.core.lut16 > runtime_c/mt_lut16.c` writes (`tests/test_kernels_lut16.py` checks
the file is this module's output). `logistic16` / `tanh16` also serve the LSTM's gates
(`compiler/core/lstm.py`), as TFLM's lstm_eval.cc calls the same int16 Logistic / Tanh.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from typing import Any

import numpy as np

# sigmoid(i / 24) in unsigned Q0.16 (saturated at 65535), i = 0..255: TFLM's
# sigmoid_table_uint16 (common.h). Not a plain rounding of the formula, so kept as data.
SIGMOID_TABLE_U16: tuple[int, ...] = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
)

_F = np.float32


def _roundf(x: np.float32) -> np.float32:
    """C roundf (TfLiteRound on a float): halves away from zero, in float32."""
    v = float(x)  # exact in double, and |v| + 0.5 is too for any float32 below 2^52
    return _F(math.copysign(math.floor(abs(v) + 0.5), v))


def checked_log2(x: float) -> tuple[bool, int]:
    """TFLite CheckedLog2 in float32: (|log2 x - round(log2 x)| < 1e-3, round(log2 x))."""
    x_log2 = _F(np.log(_F(x))) * (_F(1.0) / _F(np.log(_F(2.0))))
    r = _roundf(x_log2)
    return bool(abs(_F(x_log2 - r)) < _F(1e-3)), int(r)


def sigmoid16_params(kind: str, input_scale: float) -> tuple[int, int]:
    """(input_multiplier, input_left_shift) of TFLM's int16 LOGISTIC / TANH Prepare
    (kInputIntegerBits 3). multiplier 0 marks the power-of-two scale the kernel takes as
    3 << left_shift (LOGISTIC: scale 2^-12; TANH: 2^-12 or 2^-11); otherwise the scale times
    3 * 4096, doubled (left_shift += 1) while <= 32767 / 2, truncated to an int."""
    pot, log2 = checked_log2(input_scale)
    left_shift = 12 + log2
    pot = pot and (left_shift in ((0,) if kind == "logistic" else (0, 1)))
    if pot:
        return 0, left_shift
    m = float(_F(input_scale)) * 4096.0 * 3.0
    left_shift = 0
    while m <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        m *= 2.0
    return int(m), left_shift


def _rescale16(x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    if multiplier == 0:
        multiplier, left_shift = 3 << left_shift, 0
    rnd = (1 << (left_shift - 1)) if left_shift > 0 else 0
    return (np.asarray(x, np.int64) * multiplier + rnd) >> left_shift  # |.| < 2^31: no int32 wrap


_SIGMOID_TABLE = np.asarray(SIGMOID_TABLE_U16, np.int64)


def _interpolate16(v: np.ndarray, frac_bits: int, saturated: int) -> np.ndarray:
    """sigmoid_table_uint16 at |v| >> frac_bits, linearly interpolated over the low frac_bits
    bits (unsigned, as TFLM), `saturated` from index 255 on: the common step of the int16
    Logistic (frac_bits 9) and Tanh (frac_bits 8)."""
    a = np.abs(v)
    uh = a >> frac_bits
    idx = np.minimum(uh, 254)
    ua, ub = _SIGMOID_TABLE[idx], _SIGMOID_TABLE[idx + 1]
    return np.where(uh >= 255, saturated, (ua << frac_bits) + (a & ((1 << frac_bits) - 1)) * (ub - ua))


def logistic16(x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    """reference_integer_ops::Logistic (int16 in, int16 Q0.15 out)."""
    v = _rescale16(x, multiplier, left_shift)
    r = _interpolate16(v, 9, 0x7FFF << 10)
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return (r >> 10).astype(np.int16)


def tanh16(x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    """reference_integer_ops::Tanh (int16 in, int16 Q0.15 out): tanh(x) = 2 sigmoid(2x) - 1."""
    v = _rescale16(x, multiplier, left_shift)
    r = _interpolate16(v, 8, 0xFFFF << 8)
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return (r >> 8).astype(np.int16)


# -- SOFTMAX int16 ---------------------------------------------------------------------------


@functools.cache
def _libm_expf() -> Any:
    """The C library's expf through ctypes, or None where there is none."""
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6").expf
    except (OSError, AttributeError):
        return None
    fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return fn


def expf(v: Any) -> Any:
    """C's expf elementwise on float32 values (a scalar or an array of any shape; same shape back,
    float32): the C library's own, the one the tflite-micro package calls (TFLM's std::exp(float)
    in LUTPopulateInt16 and elu.cc; glibc's is within 0.502 ulp and differs from the correctly
    rounded value on ~0.06 % of inputs), else the float32 rounding of the double exp."""
    a = np.asarray(v, dtype=np.float32)
    fn = _libm_expf()
    if fn is None:
        out = np.exp(a.astype(np.float64)).astype(np.float32)
    else:
        out = np.asarray([fn(float(t)) for t in a.reshape(-1)], dtype=np.float32).reshape(a.shape)
    return out[()] if out.ndim == 0 else out


def lut_populate_int16(input_scale: float, input_zp: int, output_scale: float, output_zp: int, fn) -> np.ndarray:
    """TFLM LUTPopulateInt16<float>: 512 samples over the input range plus one, each biased by
    half the interpolation error at the segment midpoint, in float32 arithmetic."""
    s_in, s_out = _F(input_scale), _F(output_scale)
    input_min = s_in * _F(-32768 - input_zp)
    input_max = s_in * _F(32767 - input_zp)
    output_min = s_out * _F(-32768 - output_zp)
    output_max = s_out * _F(32767 - output_zp)
    step = (input_max - input_min) / _F(512)
    half_step = step / _F(2)
    inv = _F(65536) / (output_max - output_min)
    lut = np.zeros(513, np.int16)
    for i in range(512):
        val = fn(input_min + _F(i) * step)
        val_mid = fn(input_min + _F(i) * step + half_step)
        val_next = fn(input_min + _F(i + 1) * step)
        sample = _roundf(val * inv)
        mid_interp = _roundf((val_next * inv + _roundf(val * inv)) / _F(2))
        mid = _roundf(val_mid * inv)
        bias = _roundf((mid_interp - mid) / _F(2))
        lut[i] = int(min(max(sample - bias, _F(-32768)), _F(32767)))
    lut[512] = int(min(max(_roundf(fn(input_max) * inv), _F(-32768)), _F(32767)))
    return lut


def softmax16_luts() -> tuple[np.ndarray, np.ndarray]:
    """(exp_lut, one_over_one_plus_x_lut) of TFLM's int16 SOFTMAX Prepare: exp on [-10, 0] and
    1 / (1 + x) on [0, 1], both into [-1, 1) as int16 (scale 2/65535)."""
    rng = _F(65535)
    exp_lut = lut_populate_int16(_F(10.0) / rng, 32767, _F(2.0) / rng, 0, expf)
    inv_lut = lut_populate_int16(_F(1.0) / rng, -32768, _F(2.0) / rng, 0, lambda v: _F(1.0) / (_F(1.0) + _F(v)))
    return exp_lut, inv_lut


def lut_lookup16(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """TFLM LUTLookup(int16_t, lut[513]): lut[256 + (v >> 7)] plus the slope times the low 7
    bits, rounded (>> 7 with +64)."""
    v = np.asarray(value, np.int64)
    idx = 256 + (v >> 7)
    lut64 = lut.astype(np.int64)
    base = lut64[idx]
    slope = ((lut64[idx + 1] - base + 32768) & 0xFFFF) - 32768  # an int16 in TFLM
    return ((base + ((slope * (v & 0x7F) + 64) >> 7) + 32768) & 0xFFFF) - 32768


def softmax16_params(input_scale: float, beta: float) -> tuple[int, int]:
    """(input_multiplier, input_left_shift): QuantizeMultiplier(s_x * beta / (10 / 65535)), so
    a difference of -65535 after rescaling is -10.0 (softmax_common.cc)."""
    from compiler.core.quant import quantize_multiplier

    return quantize_multiplier(float(_F(input_scale)) * float(_F(beta)) / (10.0 / 65535.0))


def softmax16_rows(x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    """reference_ops::SoftmaxInt16 over the rows of x ([rows, depth] int16) -> int16 Q0.15."""
    from compiler.core.quant import mbqm

    exp_lut, inv_lut = SOFTMAX16_LUTS
    x = np.asarray(x, np.int64)
    diff = x - x.max(axis=1, keepdims=True)
    scaled = mbqm(diff, multiplier, left_shift)
    e = lut_lookup16(np.clip(scaled + 32767, -32768, 32767), exp_lut)
    total = e.sum(axis=1, keepdims=True)  # int32 in TFLM: depth * 32767 < 2^31 (checked in lower)
    u = total & 0xFFFFFFFF
    hpo = 32 - np.frexp(u.astype(np.float64))[1].astype(np.int64)  # leading zeros of uint32
    shifted = ((total << (hpo - 1)) + (1 << 13)) >> 14
    recip = lut_lookup16(np.clip(shifted - (1 << 15) - (1 << 16), -32768, 32767), inv_lut)
    rs = 31 - hpo
    out = (e * recip + (np.int64(1) << (rs - 1))) >> rs
    return np.clip(out, 0, 32767).astype(np.int16)


SOFTMAX16_LUTS = softmax16_luts()


def c_source() -> str:
    """runtime_c/mt_lut16.c: the three tables, defined once for every kernel that includes
    mt_lut16.h (which declares them extern with the same sizes)."""

    def arr(ctype: str, name: str, values) -> str:
        vals = [str(int(v)) for v in values]
        rows = ["    " + ", ".join(vals[i : i + 12]) + "," for i in range(0, len(vals), 12)]
        return f"const {ctype} {name}[{len(vals)}] = {{\n" + "\n".join(rows) + "\n};\n"

    exp_lut, inv_lut = SOFTMAX16_LUTS
    return (
        "/* mt_lut16.c: the tables of the int16 LOGISTIC, TANH, SOFTMAX and the LSTM kernels (mt_lut16.h).\n"
        " * Generated by `python -m compiler.core.lut16 > runtime_c/mt_lut16.c` "
        "(compiler/core/lut16.py): do not edit.\n"
        " * mt_sigmoid_u16: TFLite's sigmoid_table_uint16 (sigmoid(i/24), unsigned Q0.16);\n"
        " * mt_softmax16_exp / mt_softmax16_inv: TFLM LUTPopulateInt16<float> of exp on [-10, 0] and\n"
        " * 1/(1+x) on [0, 1] (513 entries, read by mt_lut_lookup16). */\n"
        '#include "mt_lut16.h"\n\n'
        + arr("uint16_t", "mt_sigmoid_u16", SIGMOID_TABLE_U16)
        + "\n"
        + arr("int16_t", "mt_softmax16_exp", exp_lut)
        + "\n"
        + arr("int16_t", "mt_softmax16_inv", inv_lut)
    )


if __name__ == "__main__":
    print(c_source(), end="")
