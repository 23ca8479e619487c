"""Lowering: each op's integer parameters, computed once from the tensors' scales.

This is the Prepare() step of every TFLite-Micro kernel, re-derived: the reference executor
and the C code generator both read these numbers, so the golden model and the firmware can
never disagree about a multiplier or a clamp. Every value is a plain int or an int array.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from compiler.core import quant as Q
from compiler.core.ir import Graph, Op
from compiler.errors import ModelError


def _scale(g: Graph, name: str) -> float:
    q = g.t(name).quant
    if q is None:
        raise ModelError(f"tensor {name!r} has no quantization parameters")
    return float(np.float32(q.scale[0]))


def _zp(g: Graph, name: str) -> int:
    q = g.t(name).quant
    return 0 if q is None else int(q.zero_point[0])


def lower(g: Graph, op: Op) -> dict[str, Any]:
    """Integer parameters of one op (see the per-kind comments for their meaning)."""
    k = op.kind
    x = op.inputs[0]
    y = op.outputs[0]
    p: dict[str, Any] = {}
    if k in ("conv2d", "depthwise_conv2d", "fully_connected", "transpose_conv"):
        w = g.t(op.inputs[1])
        in_s, out_s = _scale(g, x), _scale(g, y)
        wq = w.quant
        if wq is None:
            raise ModelError(f"node {op.name}: weights {w.name!r} are not quantized")
        n_out = g.t(y).shape[-1]
        w_scales = np.broadcast_to(wq.scale.astype(np.float32), (n_out,)) if wq.scale.size == 1 else wq.scale
        mult = np.zeros(n_out, dtype=np.int32)
        shift = np.zeros(n_out, dtype=np.int32)
        for c in range(n_out):
            real = float(np.float32(in_s)) * float(np.float32(w_scales[c])) / float(np.float32(out_s))
            mult[c], shift[c] = Q.quantize_multiplier(real)
        p["multiplier"], p["shift"] = mult, shift
        p["input_offset"] = -_zp(g, x)
        p["weights_offset"] = -int(wq.zero_point[0])
        p["output_offset"] = _zp(g, y)
        info = np.iinfo(g.t(y).dtype)  # int8, or int16 in the 16x8 kernels (zero points 0 there)
        p["act_min"], p["act_max"] = Q.activation_range(
            op.attrs.get("activation", "none"), out_s, _zp(g, y), int(info.min), int(info.max)
        )
        p["per_channel"] = bool(wq.scale.size > 1)
        b = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else None
        # 16x8: an int64 bias (or none) means an int64 accumulator and the 15-bit-multiplier MBQM
        # (Q.mbqm64); an int32 bias the int32 accumulator and the usual MBQM (TFLM conv.cc)
        p["acc64"] = g.t(x).dtype == "int16" and (b is None or g.t(b).dtype == "int64")
    elif k in ("add", "sub"):
        s1, s2, so = _scale(g, op.inputs[0]), _scale(g, op.inputs[1]), _scale(g, y)
        left_shift = 15 if g.t(y).dtype == "int16" else 20  # TFLM add_common.cc, sub.cc
        twice_max = 2.0 * float(max(np.float32(s1), np.float32(s2)))
        p["left_shift"] = left_shift
        p["input1_offset"] = -_zp(g, op.inputs[0])
        p["input2_offset"] = -_zp(g, op.inputs[1])
        p["output_offset"] = _zp(g, y)
        p["input1_multiplier"], p["input1_shift"] = Q.quantize_multiplier(s1 / twice_max)
        p["input2_multiplier"], p["input2_shift"] = Q.quantize_multiplier(s2 / twice_max)
        p["output_multiplier"], p["output_shift"] = Q.quantize_multiplier(twice_max / ((1 << left_shift) * so))
        p["act_min"], p["act_max"] = _act_range(g, op, so)
    elif k == "mul":
        s1, s2, so = _scale(g, op.inputs[0]), _scale(g, op.inputs[1]), _scale(g, y)
        p["input1_offset"] = -_zp(g, op.inputs[0])
        p["input2_offset"] = -_zp(g, op.inputs[1])
        p["output_offset"] = _zp(g, y)
        p["output_multiplier"], p["output_shift"] = Q.quantize_multiplier(s1 * s2 / so)
        p["act_min"], p["act_max"] = _act_range(g, op, so)
    elif k in ("avg_pool2d", "max_pool2d"):
        p["act_min"], p["act_max"] = _act_range(g, op, _scale(g, y))
    elif k == "mean":
        xs = g.t(x).shape
        n = int(np.prod([xs[a] for a in op.attrs["axes"]]))
        mult, shift = Q.quantize_multiplier(_scale(g, x) / _scale(g, y))
        s = min(n.bit_length() - 1, 32, 31 + shift)
        p["count"] = n
        p["multiplier"] = int((mult << s) // n)
        p["shift"] = shift - s
        p["input_zp"] = _zp(g, x)
        p["output_zp"] = _zp(g, y)
    elif k == "pad":
        p["pad_value"] = _zp(g, y)
        if len(op.inputs) > 1 and op.inputs[1]:
            cv = g.t(op.inputs[1])
            if cv.data is not None:
                p["pad_value"] = int(cv.data.reshape(-1)[0])
    elif k == "concat":
        for n in op.inputs:
            if _scale(g, n) != _scale(g, y) or _zp(g, n) != _zp(g, y):
                raise ModelError(
                    f"node {op.name} (concat): inputs with quantization different from the output "
                    "are not supported (TFLite-Micro requires them equal)"
                )
    elif k == "svdf":
        p.update(_lower_svdf(g, op))
    elif k in ("logistic", "tanh", "softmax") and g.t(x).dtype == "int16":
        p.update(_lower_lut16(g, op))
    elif k == "softmax":
        if g.t(y).dtype == "int16":  # int8 -> int16 (TFLM softmax_common.cc: zero point -32768, 1/65536 +- 0.1 %)
            if _zp(g, y) != -32768 or abs(float(np.float32(_scale(g, y))) - 1.0 / 65536) > 0.001 / 65536:
                raise ModelError(f"node {op.name} (softmax): int16 output of an int8 input must have scale "
                                 "1/65536, zero point -32768")
        elif _zp(g, y) != -128 or _scale(g, y) != np.float32(1.0 / 256):
            raise ModelError(f"node {op.name} (softmax): int8 output must have scale 1/256, zero point -128")
        p["input_multiplier"], p["input_left_shift"], p["diff_min"] = Q.softmax_params(
            float(op.attrs.get("beta", 1.0)), _scale(g, x)
        )
    elif k in ("logistic", "tanh"):  # TFLM logistic.cc / tanh.cc int8 Prepare (kInputIntegerBits 4)
        if k == "logistic" and _zp(g, y) != -128:
            raise ModelError(f"node {op.name} (logistic): int8 output zero point must be -128")
        real = _scale(g, x) * float(1 << (31 - 4))
        q, shift = __import__("math").frexp(real)
        p["input_zp"] = _zp(g, x)
        p["input_multiplier"] = Q._round_half_away(q * (1 << 31))
        p["input_left_shift"] = shift
        p["input_range_radius"] = Q.calculate_input_radius(4, shift, 31)
    elif k == "hard_swish":
        in_s = np.float32(_scale(g, x))
        hires = np.float32(np.float32(1.0 / 128.0) * in_s)
        reluish_scale = np.float32(3.0 / 32768.0)
        om, oe = Q.quantize_multiplier(float(np.float32(hires / np.float32(_scale(g, y)))))
        rm, re_ = Q.quantize_multiplier(float(np.float32(hires / reluish_scale)))
        if oe > 0:
            raise ModelError(f"node {op.name} (hard_swish): output scale too small for the int8 kernel")
        p["input_zp"], p["output_zp"] = _zp(g, x), _zp(g, y)
        p["output_multiplier"], p["output_exponent"] = _downscale_to_int16(om), oe
        p["reluish_multiplier"], p["reluish_exponent"] = _downscale_to_int16(rm), re_
    elif k == "relu":
        lo, hi = float(op.attrs.get("min", 0.0)), float(op.attrs.get("max", float("inf")))
        info = np.iinfo(g.t(y).dtype)
        qmin, qmax = int(info.min), int(info.max)
        if hi == 6.0:
            # TFLM RELU6 int8: a clamp in the input's quantization (no rescale)
            s, z = _scale(g, x), _zp(g, x)
            p["mode"] = "clamp"
            # FloatToQuantizedType: round(6.0f / scale) in float32 arithmetic
            six = Q._round_half_away(float(np.float32(6.0) / np.float32(s)))
            p["act_min"], p["act_max"] = z, max(qmin, min(qmax, z + six))
        else:
            s, z = _scale(g, y), _zp(g, y)
            p["mode"] = "rescale"
            p["input_zp"], p["output_zp"] = _zp(g, x), z
            p["output_multiplier"], p["output_shift"] = Q.quantize_multiplier(
                float(np.float32(np.float32(_scale(g, x)) / np.float32(s)))
            )
            p["act_min"] = max(qmin, z + Q._round_half_away(float(np.float32(lo) / np.float32(s))))
            p["act_max"] = qmax if hi == float("inf") else min(qmax, z + Q._round_half_away(hi / s))
    elif k == "quantize":
        src = g.t(x)
        if src.dtype == "float32":
            p["mode"] = "float"
        else:
            p["mode"] = "requantize"
            p["multiplier"], p["shift"] = Q.quantize_multiplier(_scale(g, x) / _scale(g, y))
            p["input_zp"] = _zp(g, x)
        p["output_zp"] = _zp(g, y)
    elif k == "gather":
        xs = g.t(x).shape
        axis = int(op.attrs["axis"])
        idx = np.asarray(op.attrs["indices"], dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= xs[axis]):
            raise ModelError(f"node {op.name} (gather): indices outside [0, {xs[axis]})")
        p["outer"] = int(np.prod(xs[:axis], dtype=np.int64))
        p["axis_size"] = int(xs[axis])
        p["inner"] = int(np.prod(xs[axis + 1 :], dtype=np.int64))
        p["indices"] = idx.astype(np.int32)
    elif k == "resize_nearest":
        p.update(_resize_nearest_maps(g.t(x).shape, g.t(y).shape, op.attrs))
    elif k == "abs":  # TFLM elementwise.cc PrepareAbsRsqrt
        p["input_zp"], p["output_zp"] = _zp(g, x), _zp(g, y)
        p["rescale"] = int(_scale(g, x) != _scale(g, y))
        p["multiplier"], p["shift"] = Q.quantize_multiplier(_scale(g, x) / _scale(g, y)) if p["rescale"] else (0, 0)
    elif k == "leaky_relu":
        # TFLM leaky_relu.cc: the scale ratios in float32, then QuantizeMultiplier
        s_x, s_y = np.float32(_scale(g, x)), np.float32(_scale(g, y))
        alpha = np.float32(op.attrs["alpha"])
        if alpha < 0:
            raise ModelError(f"node {op.name} (leaky_relu): negative alpha {float(alpha)} is not supported")
        p["input_zp"], p["output_zp"] = _zp(g, x), _zp(g, y)
        p["identity_multiplier"], p["identity_shift"] = Q.quantize_multiplier(float(np.float32(s_x / s_y)))
        p["alpha_multiplier"], p["alpha_shift"] = Q.quantize_multiplier(float(np.float32(s_x * alpha / s_y)))
    elif k == "layer_norm":
        p.update(_lower_layer_norm(g, op))
    elif k == "gelu":
        p["lut"] = _gelu_lut(g, op)
    elif k == "batch_matmul":
        p.update(_lower_batch_matmul(g, op))
    elif k == "lstm":
        from compiler.core.lstm import lower_lstm

        p.update(lower_lstm(g, op))
    elif k in ELEMENTWISE_KINDS:
        p.update(_lower_elementwise(g, op))
    elif k in ("transpose", "slice"):
        if _scale(g, x) != _scale(g, y) or _zp(g, x) != _zp(g, y):
            raise ModelError(f"node {op.name} ({k}): input and output quantization must be equal")
    elif k in _LAYOUT_KINDS:
        p.update(_lower_layout(g, op))
    return p


def _nearest(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLite GetNearestNeighbor for every output index, in its float32 arithmetic."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel_centers else f32(0.0)
    out = np.zeros(out_size, dtype=np.int32)
    for i in range(out_size):
        v = (f32(i) + offset) * scale
        r = int(Q._round_half_away(float(v))) if align_corners else int(np.floor(v))
        r = min(r, in_size - 1)
        out[i] = max(0, r) if half_pixel_centers else r
    return out


def _resize_nearest_maps(xs: tuple[int, ...], ys: tuple[int, ...], attrs: dict[str, Any]) -> dict[str, Any]:
    ac, hp = bool(attrs.get("align_corners", False)), bool(attrs.get("half_pixel_centers", False))
    return {"y_map": _nearest(xs[1], ys[1], ac, hp), "x_map": _nearest(xs[2], ys[2], ac, hp)}


def _act_range(g: Graph, op: Op, out_scale: float) -> tuple[int, int]:
    """The fused activation's clamp within the output dtype's range (int8 or int16)."""
    y = op.outputs[0]
    info = np.iinfo(g.t(y).dtype)
    return Q.activation_range(op.attrs.get("activation", "none"), out_scale, _zp(g, y), int(info.min), int(info.max))


def _downscale_to_int16(m: int) -> int:
    if m >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (m + (1 << 15)) >> 16


# -- transformer ops ----------------------------------------------------------------------

LN_MAX_DIM = 2048  # N * (N q - sum) must fit int32 and N * sum(c^2) + E must fit 62 bits
LN_NORM_BITS = 16  # the normalized value (x - mean) / std is carried in Q16


def _lower_layer_norm(g: Graph, op: Op) -> dict[str, Any]:
    """Integer-only LayerNorm over the last axis (all arithmetic in int32/int64).

    For one row q[0..N) of int8 inputs (scale s_x; the zero point cancels out):
      sum = sum_i q_i;  c_i = N q_i - sum  (= N (q_i - mean));  V = sum_i c_i^2  (int64)
      W = N V + E,  E = round(epsilon N^4 / s_x^2)  so that  (x_i - mean) / sqrt(var + eps) = N c_i / sqrt(W)
      k = (62 - bitlen(W)) // 2;  r = isqrt(W << 2k)  (in [2^30, 2^31): 31 significant bits)
      inv = floor(2^61 / r)                       (one 64-bit division per row)
      n_i = (N c_i * inv + 2^(44-k)) >> (45 - k)   (the normalized value in Q16)
      y_i = clamp(z_y + ((G_j n_i + B_j + 2^(S-1)) >> S))
    with G_j = round(gamma_j / s_y * 2^(S-16)), B_j = round(beta_j / s_y * 2^S) (int32), S chosen
    per layer as large as int32 G and B allow (at most 40). W == 0 (a constant row and E == 0)
    gives n_i = 0.
    """
    x, gamma, beta = op.inputs[0], op.inputs[1], op.inputs[2]
    y = op.outputs[0]
    axis = int(op.attrs.get("axis", -1))
    xs = g.t(x).shape
    if axis not in (-1, len(xs) - 1):
        raise ModelError(f"node {op.name} (layer_norm): only the last axis is supported, not {axis}")
    n = xs[-1]
    if n > LN_MAX_DIM:
        raise ModelError(f"node {op.name} (layer_norm): dimension {n} > {LN_MAX_DIM} is not supported")
    gt, bt = g.t(gamma), g.t(beta)
    if gt.data is None or bt.data is None:
        raise ModelError(f"node {op.name} (layer_norm): gamma and beta must be constants")
    s_x, s_y = _scale(g, x), _scale(g, y)
    gf = gt.data.astype(np.float64).reshape(-1) / s_y
    bf = np.clip(bt.data.astype(np.float64).reshape(-1) / s_y, -(2.0**14), 2.0**14)
    lim = float((1 << 31) - 1)
    shift = 40
    gmax, bmax = float(np.abs(gf).max(initial=0.0)), float(np.abs(bf).max(initial=0.0))
    while shift > 17 and (gmax * 2.0 ** (shift - LN_NORM_BITS) >= lim or bmax * 2.0**shift >= lim):
        shift -= 1
    eps = float(op.attrs.get("epsilon", 1e-5))
    e_term = min(round(eps * float(n) ** 4 / (s_x * s_x)), 1 << 60)
    return {
        "dim": n,
        "rows": g.t(x).size // n,
        "eps_term": int(e_term),
        "out_shift": shift,
        "output_zp": _zp(g, y),
        "gamma_q": np.round(gf * 2.0 ** (shift - LN_NORM_BITS)).astype(np.int64).astype(np.int32),
        "beta_q": np.round(bf * 2.0**shift).astype(np.int64).astype(np.int32),
    }


def _gelu_lut(g: Graph, op: Op) -> np.ndarray:
    """256-entry int8 table: lut[q + 128] = clamp(round(gelu(s_x (q - z_x)) / s_y) + z_y)."""
    from compiler.core.transformer_ops import gelu

    x, y = op.inputs[0], op.outputs[0]
    q = np.arange(-128, 128, dtype=np.int64)
    real = _scale(g, x) * (q - _zp(g, x)).astype(np.float64)
    out = Q.round_half_away(gelu(real, str(op.attrs.get("approximate", "none"))) / _scale(g, y)) + _zp(g, y)
    return np.clip(out, -128, 127).astype(np.int8)


def _lower_batch_matmul(g: Graph, op: Op) -> dict[str, Any]:
    """acc = sum_k (a + a_offset)(b + b_offset) in int32; y = clamp(MBQM(acc) + z_y), per tensor."""
    a, b, y = op.inputs[0], op.inputs[1], op.outputs[0]
    sa, sb = g.t(a).shape, g.t(b).shape
    tb = bool(op.attrs.get("transpose_b", False))
    try:  # batch dimensions broadcast (numpy / TFLite BATCH_MATMUL rules)
        batch = np.broadcast_shapes(sa[:-2], sb[:-2]) if len(sa) >= 2 and len(sb) >= 2 else None
    except ValueError:
        batch = None
    if batch is None:
        raise ModelError(f"node {op.name} (batch_matmul): shapes {sa} x {sb} need broadcastable batch dimensions")
    m, k = sa[-2], sa[-1]
    kb, nb = (sb[-1], sb[-2]) if tb else (sb[-2], sb[-1])
    if kb != k:
        raise ModelError(f"node {op.name} (batch_matmul): inner dimensions {k} and {kb} differ")
    for t in (a, b):
        q = g.t(t).quant
        if q is None or q.per_channel:
            raise ModelError(f"node {op.name} (batch_matmul): {t!r} must be quantized per tensor")
    mult, shift = Q.quantize_multiplier(
        float(np.float32(_scale(g, a))) * float(np.float32(_scale(g, b))) / float(np.float32(_scale(g, y)))
    )
    _check_shift(op, shift, 14 if g.t(a).dtype == "int16" else 30)
    info = np.iinfo(g.t(y).dtype)  # int8, or int16 (TFLite BATCH_MATMUL 16x16: zero points 0)
    act_min, act_max = Q.activation_range(
        op.attrs.get("activation", "none"), _scale(g, y), _zp(g, y), int(info.min), int(info.max)
    )
    return {
        "acc64": g.t(a).dtype == "int16",
        "batch_shape": tuple(int(d) for d in batch),
        "batches": int(np.prod(batch, dtype=np.int64)),
        "m": m,
        "k": k,
        "n": nb,
        "transpose_b": tb,
        "a_offset": -_zp(g, a),
        "b_offset": -_zp(g, b),
        "output_offset": _zp(g, y),
        "multiplier": mult,
        "shift": shift,
        "act_min": act_min,
        "act_max": act_max,
    }


# -- TFLite elementwise ops (TFLite-Micro's Prepare() of each kernel) -----------------------

ELEMENTWISE_KINDS = ("squared_difference", "prelu", "elu", "rsqrt", "l2_norm")
L2_NORM_MAX_DEPTH = 33025  # depth * 255^2 must fit TFLM's int32 accumulator


def _lower_elementwise(g: Graph, op: Op) -> dict[str, Any]:
    """SQUARED_DIFFERENCE, PRELU, ELU, RSQRT, L2_NORMALIZATION (tflite-micro kernels/
    squared_difference.cc, prelu_common.cc, elu.cc, elementwise.cc, l2norm.cc).

    squared_difference: ADD's parameter names (mt_add_params): both inputs times 2^left_shift
      (int8 7, int16 0) rescaled by s_i / (2 max(s1, s2)) (smaller than one), the difference
      squared, rescaled by (2 max(s1, s2))^2 / (2^(2 left_shift) s_y); all in double.
    prelu: input_offset = -z_x, alpha_offset = -z_a, output_offset = z_y; multiplier_1 = s_x/s_y,
      multiplier_2 = s_x s_a / s_y (double).
    elu: `lut` (256 int8, index q + 128): TFLM's PopulateLookupTable in float32.
    rsqrt: `lut` as elu plus input_zp (inputs below it make TFLM's invoke fail; the kernel too).
    l2_norm: input_zp, depth (last axis), outer (the other axes).
    """
    k = op.kind
    x, y = op.inputs[0], op.outputs[0]
    dt = g.t(y).dtype
    info = np.iinfo(dt)
    p: dict[str, Any] = {}
    if k == "squared_difference":
        s1, s2, sy = (float(np.float32(_scale(g, n))) for n in (op.inputs[0], op.inputs[1], y))
        ls = 7 if dt == "int8" else 0
        twice_max = 2.0 * max(s1, s2)
        p["input1_offset"], p["input2_offset"] = -_zp(g, op.inputs[0]), -_zp(g, op.inputs[1])
        p["output_offset"], p["left_shift"] = _zp(g, y), ls
        p["input1_multiplier"], p["input1_shift"] = Q.quantize_multiplier(s1 / twice_max)
        p["input2_multiplier"], p["input2_shift"] = Q.quantize_multiplier(s2 / twice_max)
        p["output_multiplier"], p["output_shift"] = Q.quantize_multiplier(
            twice_max * twice_max / float(np.float32(float(1 << (2 * ls)) * sy))
        )
        p["act_min"], p["act_max"] = int(info.min), int(info.max)
    elif k == "prelu":
        sx, sa, sy = (float(np.float32(_scale(g, n))) for n in (x, op.inputs[1], y))
        p["input_offset"], p["alpha_offset"], p["output_offset"] = -_zp(g, x), -_zp(g, op.inputs[1]), _zp(g, y)
        p["output_multiplier_1"], p["output_shift_1"] = Q.quantize_multiplier(sx / sy)
        p["output_multiplier_2"], p["output_shift_2"] = Q.quantize_multiplier(sx * sa / sy)
    elif k == "elu":
        p["lut"] = _float_lut(g, op, _elu_f32)
    elif k == "rsqrt":
        s_x, s_y = np.float32(_scale(g, x)), np.float32(_scale(g, y))
        p["input_zp"], p["output_zp"] = _zp(g, x), _zp(g, y)
        # in double: the tflite-micro package matches that, not float32 sqrt/product, on every int16 input
        p["multiplier"], p["shift"] = Q.quantize_multiplier(1.0 / (math.sqrt(float(s_x)) * float(s_y)))
        p["qmin"], p["qmax"] = int(info.min), int(info.max)
        if dt == "int8":
            q = np.arange(-128, 128, dtype=np.int64)
            p["lut"] = np.where(q >= p["input_zp"], rsqrt_values(q, p), 0).astype(np.int8)
    elif k == "l2_norm":
        shape = g.t(x).shape
        p["input_zp"] = _zp(g, x)
        p["depth"] = int(shape[-1]) if shape else 1
        p["outer"] = g.t(x).size // max(p["depth"], 1)
        if p["depth"] > L2_NORM_MAX_DEPTH:
            raise ModelError(
                f"node {op.name} (l2_norm): depth {p['depth']} > {L2_NORM_MAX_DEPTH} overflows TFLite-Micro's int32 sum"
            )
    return p


def _elu_f32(v: np.ndarray) -> np.ndarray:
    """TFLM elu.cc's transform in float32: v < 0 ? expf(v) - 1 : v (tests/test_tflite_elementwise.py
    compares every table entry with TFLM)."""
    from compiler.core.lut16 import expf

    e = expf(np.minimum(v, 0).astype(np.float32)) - np.float32(1.0)
    return np.where(v < 0, e, v).astype(np.float32)


def _float_lut(g: Graph, op: Op, fn: Any) -> np.ndarray:
    """TFLM PopulateLookupTable<int8_t> (elu.cc): in float32, dequantize s_x (q - z_x), transform,
    round(t * (1 / s_y)) half away from zero, + z_y, clamp to int8. Index q + 128."""
    x, y = op.inputs[0], op.outputs[0]
    f32 = np.float32
    s_x, s_y = f32(_scale(g, x)), f32(_scale(g, y))
    q = np.arange(-128, 128, dtype=np.int64)
    deq = (s_x * (q - _zp(g, x)).astype(f32)).astype(f32)
    t = fn(deq)
    inv = f32(f32(1.0) / s_y)
    rescaled = Q.round_half_away((t * inv).astype(f32).astype(np.float64)).astype(f32)  # std::round, exact in double
    out = (rescaled + f32(_zp(g, y))).astype(np.int64)
    return np.clip(out, -128, 127).astype(np.int8)


def rsqrt_values(q: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    """TFLM RsqrtEvalQuantized (int8, int16) for inputs q >= z_x: v = q - z_x; v == 0 -> the
    type's max; else (m, s) = GetInvSqrtQuantizedMultiplierExp(v), data = MBQM(1, m, s + 20),
    out = MBQM(data, M, S - 20) + z_y clamped, with M/S (`multiplier`/`shift`) the double
    1 / (sqrt(s_x) s_y) (sqrt and product in double, from the float32 scales)."""
    v = np.maximum(np.asarray(q, dtype=np.int64) - p["input_zp"], 0)
    m, s = Q.inv_sqrt_multiplier_exp(v)
    data = Q.mbqm(1, m, s + 20)
    out = np.clip(Q.mbqm(data, p["multiplier"], p["shift"] - 20) + p["output_zp"], p["qmin"], p["qmax"])
    return np.where(v == 0, p["qmax"], out)
# -- int16 LOGISTIC / TANH / SOFTMAX (compiler/core/lut16.py holds the arithmetic and tables) ---------


def _lower_lut16(g: Graph, op: Op) -> dict[str, Any]:
    """TFLM's int16 Prepare of LOGISTIC/TANH (input_multiplier, input_left_shift; multiplier 0
    = the power-of-two scale) and SOFTMAX (input_multiplier, input_left_shift of
    s_x * beta / (10/65535)). Refused (ModelError) where TFLM's Prepare fails: zero points
    other than 0, an output scale that is not 2^-15 (LOGISTIC/TANH, CheckedLog2) or not
    1/32768 within 0.1 % (SOFTMAX); and where its int32 arithmetic would overflow (a
    LOGISTIC/TANH multiplier above 32767, i.e. input scale > 2.67; a SOFTMAX row deeper than
    65535)."""
    from compiler.core import lut16

    x, y = op.inputs[0], op.outputs[0]
    if _zp(g, x) != 0 or _zp(g, y) != 0 or g.t(y).dtype != "int16":
        raise ModelError(f"node {op.name} ({op.kind}): int16 input and output need zero point 0")
    s_x, s_y = _scale(g, x), _scale(g, y)
    if op.kind == "softmax":
        if abs(float(np.float32(s_y)) - 1.0 / 32768) > 0.001 / 32768:
            raise ModelError(f"node {op.name} (softmax): int16 output scale {s_y:g} must be 1/32768")
        depth = g.t(x).shape[-1]
        if depth > 65535:
            raise ModelError(f"node {op.name} (softmax): int16 rows of {depth} > 65535 values overflow int32")
        m, sh = lut16.softmax16_params(s_x, float(op.attrs.get("beta", 1.0)))
        return {"input_multiplier": m, "input_left_shift": sh, "depth": depth, "rows": g.t(x).size // depth}
    pot, log2 = lut16.checked_log2(s_y)
    if not pot or log2 != -15:
        raise ModelError(f"node {op.name} ({op.kind}): int16 output scale {s_y:g} must be 2^-15")
    m, sh = lut16.sigmoid16_params(op.kind, s_x)
    if m > 32767:
        raise ModelError(f"node {op.name} ({op.kind}): int16 input scale {s_x:g} > 2.67 overflows TFLM's kernel")
    return {"input_multiplier": m, "input_left_shift": sh}


def _lower_svdf(g: Graph, op: Op) -> dict[str, Any]:
    """TFLM svdf_common.cc PrepareSvdf for int8 input, int16 (or int8) time weights and state:
    effective_scale_1 = s_x * s_wf / s_state and effective_scale_2 = s_state * s_wt / s_y (in
    float32, as TFLM multiplies the float scales) as QuantizeMultiplier pairs; the bias scale
    must be within 1e-5 of s_state * s_wt (TFLM's check). Shapes: x [B, I], weights_feature
    [F, I], weights_time [F, M], bias [F / rank], output [B, F / rank]. The fused activation is
    not applied: TFLM's integer SVDF ignores it (only "none" and "relu" are accepted)."""
    x, wf, wt, b = (g.t(n) for n in op.inputs[:4])
    y = g.t(op.outputs[0])
    rank = int(op.attrs["rank"])
    if len(x.shape) != 2 or len(wf.shape) != 2 or len(wt.shape) != 2 or len(y.shape) != 2:
        raise ModelError(f"node {op.name} (svdf): input, weights and output must be 2-D")
    (batches, n_in), (filters, wf_in), (wt_f, memory) = x.shape, wf.shape, wt.shape
    if rank < 1 or filters % rank or wf_in != n_in or wt_f != filters or y.shape != (batches, filters // rank):
        raise ModelError(
            f"node {op.name} (svdf): shapes x {x.shape}, weights_feature {wf.shape}, weights_time {wt.shape}, "
            f"output {y.shape} and rank {rank} do not fit together"
        )
    if b.shape != (filters // rank,):
        raise ModelError(f"node {op.name} (svdf): bias shape {b.shape}, expected ({filters // rank},)")
    if op.attrs.get("activation", "none") not in ("none", "relu"):
        raise ModelError(f"node {op.name} (svdf): fused activation {op.attrs['activation']!r}; supported: none, relu")
    if n_in > 65536:
        raise ModelError(f"node {op.name} (svdf): input size {n_in} > 65536 may overflow TFLM's int32 sums")
    f32 = np.float32
    s_x, s_wf, s_wt, s_y = (f32(_scale(g, n)) for n in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0]))
    s_st = f32(op.attrs["state_scale"])
    info = np.iinfo(wt.dtype)  # the state has the time weights' dtype (int16 or int8: the two schemes)
    if not (np.isfinite(s_st) and s_st > 0) or not info.min <= int(op.attrs["state_zp"]) <= info.max:
        raise ModelError(f"node {op.name} (svdf): state scale {float(s_st):g} / zero point {op.attrs['state_zp']}")
    s_b = float(f32(b.quant.scale[0])) if b.quant is not None else 0.0
    if abs(s_b - float(f32(s_st * s_wt))) >= 1e-5:
        raise ModelError(f"node {op.name} (svdf): bias scale {s_b:g} must equal state scale x time-weights scale")
    m1, sh1 = Q.quantize_multiplier(float(f32(f32(s_x * s_wf) / s_st)))
    m2, sh2 = Q.quantize_multiplier(float(f32(f32(s_st * s_wt) / s_y)))
    return {
        "batches": batches, "input_size": n_in, "units": filters // rank, "rank": rank, "memory": memory,
        "input_zp": _zp(g, op.inputs[0]), "state_zp": int(op.attrs["state_zp"]), "output_zp": _zp(g, op.outputs[0]),
        "multiplier1": m1, "shift1": sh1, "multiplier2": m2, "shift2": sh2,
        "state_dtype": wt.dtype,  # int8 state: reset to its zero point (TFLM ResetTensorData), int16: to 0
        "state_reset": int(op.attrs["state_zp"]) if wt.dtype == "int8" else 0,
    }
# -- TFLite layout and reduction ops --------------------------------------------------------

_LAYOUT_KINDS = ("strided_slice", "depth_to_space", "space_to_depth", "reduce_sum", "reduce_max",
                 "arg_max", "arg_min", "resize_bilinear")
SUM_MAX_COUNT = 65535  # elements per SUM output: the int32 sum of int16 values cannot overflow


def _lower_layout(g: Graph, op: Op) -> dict[str, Any]:
    """SUM: count, multiplier/shift of s_x/s_y (TFLM reduce_common.cc PrepareMeanOrSumHelper,
    QuantizeMultiplier of the double ratio), zero points; REDUCE_MAX and the data movers: equal
    quantization in and out; ARG_MAX/MIN: outer/axis/inner sizes; RESIZE_BILINEAR: the integer
    source rows/columns and 10-bit fractions (compiler.core.lower._bilinear)."""
    k, x, y = op.kind, op.inputs[0], op.outputs[0]
    xs = g.t(x).shape
    p: dict[str, Any] = {}
    if k == "reduce_sum":
        n = int(np.prod([xs[a] for a in op.attrs["axes"]], dtype=np.int64))
        if n > SUM_MAX_COUNT:
            raise ModelError(f"node {op.name} (reduce_sum): {n} elements per sum > {SUM_MAX_COUNT} is not supported")
        p["count"] = n
        p["multiplier"], p["shift"] = Q.quantize_multiplier(_scale(g, x) / _scale(g, y))
        _check_shift(op, p["shift"], 30)
        p["input_zp"], p["output_zp"] = _zp(g, x), _zp(g, y)
        return p
    if k in ("arg_max", "arg_min"):
        axis = int(op.attrs["axis"])
        p["outer"] = int(np.prod(xs[:axis], dtype=np.int64))
        p["axis_size"] = int(xs[axis])
        p["inner"] = int(np.prod(xs[axis + 1 :], dtype=np.int64))
        return p
    if _scale(g, x) != _scale(g, y) or _zp(g, x) != _zp(g, y):
        raise ModelError(f"node {op.name} ({k}): input and output quantization must be equal")
    if k == "resize_bilinear":
        ac, hp = bool(op.attrs.get("align_corners", False)), bool(op.attrs.get("half_pixel_centers", False))
        if ac and hp:
            raise ModelError(f"node {op.name} (resize_bilinear): align_corners and half_pixel_centers both set")
        ys = g.t(y).shape
        p["y_map"] = _bilinear(xs[1], ys[1], ac, hp)
        p["x_map"] = _bilinear(xs[2], ys[2], ac, hp)
        if p["y_map"][:, 0].max() >= xs[1] or p["x_map"][:, 0].max() >= xs[2]:  # TFLM would read past the input
            raise ModelError(f"node {op.name} (resize_bilinear): output {ys[1:3]} too large for the 10-bit scale")
    return p


def _check_shift(op: Op, shift: int, most: int) -> None:
    """A requantization multiplier of 2^shift beyond `most`: TFLM's MultiplyByQuantizedMultiplier
    shifts by it in C (undefined past 31 bits: the result depends on the machine), so refused."""
    if shift > most:
        raise ModelError(f"node {op.name} ({op.kind}): the scales give a requantization multiplier of about "
                         f"2^{shift} (> 2^{most}): not supported")


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _bilinear(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """[out_size, 3] int32: (lower index, upper index, scaled - 1024 * lower) per output index, as
    TFLite's ResizeBilinearInteger / ComputeInterpolationValuesInteger compute them (10-bit scale
    rounded to nearest; the fraction may be negative near the edge with half-pixel centers)."""
    scale = ((1 << 10) * in_size + out_size // 2) // out_size
    if align_corners and out_size > 1:
        scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    out = np.zeros((out_size, 3), dtype=np.int32)
    for i in range(out_size):
        v = i * scale + scale // 2 - (1 << 9) if half_pixel_centers else i * scale
        lo = max(_cdiv(v, 1 << 10), 0)
        hi = min(_cdiv(v + (1 << 10) - 1, 1 << 10), in_size - 1)
        out[i] = (lo, hi, v - (1 << 10) * lo)
    return out
