"""The golden model: a numpy executor of the IR, bit-exact with TFLite-Micro's reference kernels.

`run(graph, inputs)` returns the graph outputs; `run(..., keep_all=True)` every tensor.
Each op's integer parameters come from `compiler.core.lower.lower`, the same numbers the C code
generator writes into the firmware.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from compiler.core import lut16
from compiler.core import quant as Q
from compiler.core.ir import Graph, Op
from compiler.core.lower import lower
from compiler.errors import ModelError

Env = dict[str, np.ndarray]


def run(graph: Graph, inputs: Sequence[np.ndarray] | dict[str, np.ndarray], keep_all: bool = False):
    env: Env = {}
    if not isinstance(inputs, dict):
        inputs = dict(zip(graph.inputs, inputs, strict=True))
    for name in graph.inputs:
        t = graph.t(name)
        a = np.asarray(inputs[name])
        if a.size != t.size:
            raise ModelError(f"input {name!r}: expected {t.size} values of shape {t.shape}, got {a.shape}")
        env[name] = a.reshape(t.shape).astype(t.dtype)
    for op in graph.ops:
        fn = _OPS.get(op.kind)
        if fn is None:
            raise ModelError(f"reference: no implementation for op kind {op.kind!r} ({op.name})")
        out = fn(graph, op, env)
        t = graph.t(op.outputs[0])
        env[op.outputs[0]] = np.asarray(out).reshape(t.shape).astype(t.dtype)
    if keep_all:
        return env
    return [env[n] for n in graph.outputs]


def _in(g: Graph, env: Env, name: str) -> np.ndarray:
    t = g.t(name)
    if t.data is not None:
        return t.data
    return env[name]


def _clamp8(x: np.ndarray, lo: int = -128, hi: int = 127) -> np.ndarray:
    return np.clip(x, lo, hi).astype(np.int8)


def _pad_hw(x: np.ndarray, pads: Sequence[int], value: int) -> np.ndarray:
    t, b, left, r = pads
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def _windows(x: np.ndarray, kh: int, kw: int, stride, dil, out_hw) -> np.ndarray:
    """[N, OH, OW, C, KH, KW] view of the (already padded) input."""
    eh, ew = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
    v = sliding_window_view(x, (eh, ew), axis=(1, 2))  # N, H', W', C, eh, ew
    v = v[:, :: stride[0], :: stride[1], :, :: dil[0], :: dil[1]]
    return v[:, : out_hw[0], : out_hw[1]]


def _requant(acc: np.ndarray, p: dict) -> np.ndarray:
    """Requantize int32 (or, 16x8 with an int64 bias, int64) accumulators and clamp; the
    caller's output dtype (int8 or int16) holds the result."""
    if p.get("acc64"):
        acc = Q.mbqm64(acc, p["multiplier"], p["shift"]) + p["output_offset"]
    else:
        acc = Q.mbqm(Q.wrap32(acc), p["multiplier"], p["shift"]) + p["output_offset"]
    return np.clip(acc, p["act_min"], p["act_max"])


def conv2d(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    w = _in(g, env, op.inputs[1]).astype(np.int64)  # O, KH, KW, I
    b = _in(g, env, op.inputs[2]).astype(np.int64) if len(op.inputs) > 2 and op.inputs[2] else 0
    oshape = g.t(op.outputs[0]).shape
    xp = _pad_hw(x + p["input_offset"], op.attrs["pads"], 0)
    win = _windows(xp, w.shape[1], w.shape[2], op.attrs["stride"], op.attrs["dilation"], oshape[1:3])
    # N, OH, OW, C, KH, KW  x  O, KH, KW, I  ->  N, OH, OW, O
    acc = np.einsum("nhwcij,oijc->nhwo", win, w + p["weights_offset"], optimize=True) + b
    return _requant(acc, p)


def depthwise_conv2d(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    w = _in(g, env, op.inputs[1]).astype(np.int64)  # 1, KH, KW, C*M
    b = _in(g, env, op.inputs[2]).astype(np.int64) if len(op.inputs) > 2 and op.inputs[2] else 0
    m = op.attrs["depth_multiplier"]
    oshape = g.t(op.outputs[0]).shape
    xp = _pad_hw(x + p["input_offset"], op.attrs["pads"], 0)
    win = _windows(xp, w.shape[1], w.shape[2], op.attrs["stride"], op.attrs["dilation"], oshape[1:3])
    win = np.repeat(win, m, axis=3)  # output channel oc reads input channel oc // m
    acc = np.einsum("nhwcij,ijc->nhwc", win, w[0] + p["weights_offset"], optimize=True) + b
    return _requant(acc, p)


def transpose_conv(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite reference_integer_ops::TransposeConv: every input pixel scatters x * w into the
    output window at (iy * stride - pad_top + ky, ix * stride - pad_left + kx); then bias and
    the per-channel requantization of conv2d."""
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64) + p["input_offset"]
    w = _in(g, env, op.inputs[1]).astype(np.int64)  # O, KH, KW, I
    b = _in(g, env, op.inputs[2]).astype(np.int64) if len(op.inputs) > 2 and op.inputs[2] else 0
    n, oh, ow, oc = g.t(op.outputs[0]).shape
    sh, sw = op.attrs["stride"]
    pt, pl = op.attrs["pads"][0], op.attrs["pads"][2]
    acc = np.zeros((n, oh, ow, oc), dtype=np.int64)
    for iy in range(x.shape[1]):
        for ix in range(x.shape[2]):
            for ky in range(w.shape[1]):
                oy = iy * sh - pt + ky
                if not 0 <= oy < oh:
                    continue
                for kx in range(w.shape[2]):
                    ox = ix * sw - pl + kx
                    if 0 <= ox < ow:
                        acc[:, oy, ox, :] += x[:, iy, ix, :] @ w[:, ky, kx, :].T
    return _requant(acc + b, p)


def fully_connected(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    w = _in(g, env, op.inputs[1]).astype(np.int64)  # O, I
    x = _in(g, env, op.inputs[0]).astype(np.int64).reshape(-1, w.shape[1])
    b = _in(g, env, op.inputs[2]).astype(np.int64) if len(op.inputs) > 2 and op.inputs[2] else 0
    acc = (x + p["input_offset"]) @ (w + p["weights_offset"]).T + b
    return _requant(acc, p)


def _broadcast(g: Graph, op: Op, env: Env) -> tuple[np.ndarray, np.ndarray]:
    a = _in(g, env, op.inputs[0]).astype(np.int64)
    b = _in(g, env, op.inputs[1]).astype(np.int64)
    return a, b


def _rescaled_pair(g: Graph, op: Op, env: Env, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """ADD's and SUB's two inputs, offset, left-shifted and rescaled to the common scale (int64)."""
    a, b = _broadcast(g, op, env)
    ls = 1 << p["left_shift"]
    sa = Q.mbqm_smaller_than_one(Q.wrap32((a + p["input1_offset"]) * ls), p["input1_multiplier"], p["input1_shift"])
    sb = Q.mbqm_smaller_than_one(Q.wrap32((b + p["input2_offset"]) * ls), p["input2_multiplier"], p["input2_shift"])
    return sa, sb


def add(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    sa, sb = _rescaled_pair(g, op, env, p)
    raw = Q.mbqm_smaller_than_one(sa + sb, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return np.clip(raw, p["act_min"], p["act_max"])  # int8 or int16 range (lower)


def sub(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite SUB (int8, int16): ADD's rescaling, the second scaled input subtracted."""
    p = lower(g, op)
    sa, sb = _rescaled_pair(g, op, env, p)
    raw = Q.mbqm_smaller_than_one(Q.wrap32(sa - sb), p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return np.clip(raw, p["act_min"], p["act_max"])


def leaky_relu(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite QuantizeLeakyRelu (int8, int16): two multipliers by the input's sign."""
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64) - p["input_zp"]
    pos = Q.mbqm(x, p["identity_multiplier"], p["identity_shift"])
    neg = Q.mbqm(x, p["alpha_multiplier"], p["alpha_shift"])
    info = np.iinfo(g.t(op.outputs[0]).dtype)
    return np.clip(p["output_zp"] + np.where(x >= 0, pos, neg), info.min, info.max)


def gather(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _in(g, env, op.inputs[0])
    idx = np.asarray(op.attrs["indices"], dtype=np.int64)
    assert idx.size == 0 or idx.max() < p["axis_size"]
    return np.take(x, idx, axis=int(op.attrs["axis"]))


def resize_nearest(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite ResizeNearestNeighbor: out[y, x] = in[y_map[y], x_map[x]] (maps from compiler.core.lower)."""
    p = lower(g, op)
    x = _in(g, env, op.inputs[0])
    return x[:, p["y_map"]][:, :, p["x_map"]]


def abs_(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite AbsEvalQuantized: |x - z_x|, times s_x/s_y (MBQM) when the scales differ, + z_y."""
    p = lower(g, op)
    v = np.abs(_in(g, env, op.inputs[0]).astype(np.int64) - p["input_zp"])
    if p["rescale"]:
        v = Q.mbqm(v, p["multiplier"], p["shift"])
    info = np.iinfo(g.t(op.outputs[0]).dtype)
    return np.clip(v + p["output_zp"], info.min, info.max)


def maximum(g: Graph, op: Op, env: Env) -> np.ndarray:
    a, b = _broadcast(g, op, env)
    return np.maximum(a, b)


def minimum(g: Graph, op: Op, env: Env) -> np.ndarray:
    a, b = _broadcast(g, op, env)
    return np.minimum(a, b)


def mul(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    a, b = _broadcast(g, op, env)
    prod = (a + p["input1_offset"]) * (b + p["input2_offset"])
    raw = Q.mbqm(prod, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return np.clip(raw, p["act_min"], p["act_max"])  # int8 or int16 range (lower)


def avg_pool2d(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    kh, kw = op.attrs["kernel"]
    oshape = g.t(op.outputs[0]).shape
    xp = _pad_hw(x, op.attrs["pads"], 0)
    ones = _pad_hw(np.ones((1,) + x.shape[1:3] + (1,), dtype=np.int64), op.attrs["pads"], 0)
    s = _windows(xp, kh, kw, op.attrs["stride"], (1, 1), oshape[1:3]).sum(axis=(-1, -2))
    n = _windows(ones, kh, kw, op.attrs["stride"], (1, 1), oshape[1:3]).sum(axis=(-1, -2))
    half = n // 2
    num = np.where(s > 0, s + half, s - half)
    q = np.where(num >= 0, num // n, -((-num) // n))  # C division truncates
    return np.clip(q, p["act_min"], p["act_max"])


def max_pool2d(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    kh, kw = op.attrs["kernel"]
    oshape = g.t(op.outputs[0]).shape
    xp = _pad_hw(x, op.attrs["pads"], -(1 << 40))  # below any int8/int16 value
    m = _windows(xp, kh, kw, op.attrs["stride"], (1, 1), oshape[1:3]).max(axis=(-1, -2))
    return np.clip(m, p["act_min"], p["act_max"])


def mean(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    s = x.sum(axis=tuple(op.attrs["axes"]), keepdims=True)
    s = Q.wrap32(s - p["input_zp"] * p["count"])
    out = Q.mbqm(s, p["multiplier"], p["shift"]) + p["output_zp"]
    info = np.iinfo(g.t(op.outputs[0]).dtype)
    return np.clip(out, info.min, info.max)


def pad(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _in(g, env, op.inputs[0])
    return np.pad(x, op.attrs["paddings"], constant_values=p["pad_value"])


def reshape(g: Graph, op: Op, env: Env) -> np.ndarray:
    return _in(g, env, op.inputs[0])


def concat(g: Graph, op: Op, env: Env) -> np.ndarray:
    lower(g, op)
    parts = [_in(g, env, n) for n in op.inputs]
    return np.concatenate(parts, axis=op.attrs["axis"])


def softmax(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    shape = x.shape
    if g.t(op.inputs[0]).dtype == "int16":  # TFLM SoftmaxInt16: exp and 1/(1+x) LUTs (compiler/core/lut16.py)
        return lut16.softmax16_rows(x.reshape(-1, shape[-1]), p["input_multiplier"], p["input_left_shift"])
    x = x.reshape(-1, shape[-1])
    diff = x - x.max(axis=1, keepdims=True)
    valid = diff >= p["diff_min"]
    rescaled = Q.mbqm_greater_than_one(diff, p["input_multiplier"], p["input_left_shift"])
    e = Q.exp_on_negative_values(rescaled, 5)
    sum_of_exps = np.where(valid, Q.rescale(e, 0, 12), 0).sum(axis=1, keepdims=True)
    sum_of_exps = Q.wrap32(sum_of_exps)
    shifted_scale, nbits = Q.get_reciprocal(sum_of_exps, 12)
    bits = 16 if g.t(op.outputs[0]).dtype == "int16" else 8  # int8 -> int16: 16 output bits, zero point -32768
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    exponent = nbits + 31 - bits
    unsat = Q.rdbypot(Q.srdhm(shifted_scale, e), exponent)
    out = np.where(valid, np.clip(unsat + lo, lo, hi), lo)
    return out.reshape(shape).astype(np.int16 if bits == 16 else np.int8)


def logistic(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    if g.t(op.inputs[0]).dtype == "int16":  # TFLM's int16 sigmoid table (compiler/core/lut16.py)
        return lut16.logistic16(_in(g, env, op.inputs[0]), p["input_multiplier"], p["input_left_shift"])
    x = _in(g, env, op.inputs[0]).astype(np.int64) - p["input_zp"]
    r = p["input_range_radius"]
    q4 = Q.mbqm(x, p["input_multiplier"], p["input_left_shift"])
    out = Q.rdbypot(Q.logistic_q(q4, 4), 31 - 8) - 128
    out = np.clip(out, -128, 127)
    out = np.where(x <= -r, -128, np.where(x >= r, 127, out))
    return out.astype(np.int8)


def tanh(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite reference_integer_ops::Tanh (int8): saturate beyond the radius, else gemmlowp tanh
    of the Q4.27 input, rounded to Q0.7."""
    p = lower(g, op)
    if g.t(op.inputs[0]).dtype == "int16":  # tanh(x) = 2 sigmoid(2x) - 1 on the table (compiler/core/lut16.py)
        return lut16.tanh16(_in(g, env, op.inputs[0]), p["input_multiplier"], p["input_left_shift"])
    x = _in(g, env, op.inputs[0]).astype(np.int64) - p["input_zp"]
    r = p["input_range_radius"]
    q4 = Q.mbqm(x, p["input_multiplier"], p["input_left_shift"])
    out = np.clip(Q.rdbypot(Q.tanh_q(q4, 4), 31 - 7), -128, 127)
    return np.where(x <= -r, -128, np.where(x >= r, 127, out))


def _srdhm16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    overflow = (a == b) & (a == -32768)
    ab = a * b
    s = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    q = np.where(s >= 0, s >> 15, -((-s) >> 15))
    return np.where(overflow, 32767, q)


def _sat16(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -32768, 32767)


def _wrap16(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, np.int64) + 32768) & 0xFFFF) - 32768


def hard_swish(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _wrap16(_in(g, env, op.inputs[0]).astype(np.int64) - p["input_zp"])
    hires = _wrap16(x * 128)
    pre_out = _srdhm16(hires, p["output_multiplier"])
    r = hires
    re_ = p["reluish_exponent"]
    if re_ > 0:
        r = _sat16(r * (1 << (re_ - 1)))
    r = _srdhm16(r, p["reluish_multiplier"])
    if re_ > 0:
        r = _sat16(r * 2)
    if re_ < 0:
        r = Q.rdbypot(r, -re_)
    r = _wrap16((r + (1 << 15)) >> 1)
    ab = r * pre_out
    overflow = (r == pre_out) & (r == -32768)
    pre = np.where(overflow, 32767, np.where(ab >= 0, ab >> 15, -((-ab) >> 15)))
    pre = _wrap16(pre)
    out = _wrap16(Q.rdbypot(pre, -p["output_exponent"]) + p["output_zp"])
    return _clamp8(out)


def relu(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    if p["mode"] == "clamp":
        return np.clip(x, p["act_min"], p["act_max"])
    out = p["output_zp"] + Q.mbqm(x - p["input_zp"], p["output_multiplier"], p["output_shift"])
    return np.clip(out, p["act_min"], p["act_max"])  # within the output dtype (lower)


def quantize(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    x = _in(g, env, op.inputs[0])
    y = g.t(op.outputs[0])
    if p["mode"] == "float":
        s = np.float32(y.quant.scale[0])
        q = Q.round_half_away((x.astype(np.float32) / s).astype(np.float32)).astype(np.int64) + p["output_zp"]
    else:  # TFLite-Micro reference_ops::Requantize, any of int8/uint8/int16 in and out
        q = Q.mbqm(x.astype(np.int64) - p["input_zp"], p["multiplier"], p["shift"]) + p["output_zp"]
    info = np.iinfo(y.dtype)
    return np.clip(q, info.min, info.max)


def dequantize(g: Graph, op: Op, env: Env) -> np.ndarray:
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    q = g.t(op.inputs[0]).quant
    return ((x - q.zp).astype(np.float32) * np.float32(q.s)).astype(np.float32)


# -- transformer ops (integer arithmetic documented in compiler.core.lower) -----------------------


def layer_norm_rows(x: np.ndarray, p: dict) -> np.ndarray:
    """The integer LayerNorm of `compiler.core.lower._lower_layer_norm` on rows of x ([rows, D] int8)."""
    n = p["dim"]
    q = np.asarray(x, dtype=np.int64).reshape(-1, n)
    out = np.empty(q.shape, dtype=np.int8)
    gq = p["gamma_q"].astype(np.int64)
    bq = p["beta_q"].astype(np.int64)
    sh = p["out_shift"]
    for r in range(q.shape[0]):
        c = n * q[r] - int(q[r].sum())
        w = n * int((c * c).sum()) + p["eps_term"]
        if w == 0:
            nq = np.zeros(n, dtype=np.int64)
        else:
            k = (62 - w.bit_length()) // 2
            inv = (1 << 61) // math.isqrt(w << (2 * k))
            nq = (n * c * inv + (1 << (44 - k))) >> (45 - k)
        acc = gq * nq + bq
        out[r] = np.clip(p["output_zp"] + ((acc + (1 << (sh - 1))) >> sh), -128, 127)
    return out


def layer_norm(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    return layer_norm_rows(_in(g, env, op.inputs[0]), p)


def gelu(g: Graph, op: Op, env: Env) -> np.ndarray:
    lut = lower(g, op)["lut"]
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    return lut[x + 128]


def batch_matmul(g: Graph, op: Op, env: Env) -> np.ndarray:
    p = lower(g, op)
    a = _in(g, env, op.inputs[0]).astype(np.int64) + p["a_offset"]
    b = _in(g, env, op.inputs[1]).astype(np.int64) + p["b_offset"]
    if p["transpose_b"]:
        b = np.swapaxes(b, -1, -2)
    if p.get("acc64"):  # int16 (TFLite BATCH_MATMUL 16x16): int64 sums, the 64-bit MBQM
        out = Q.mbqm64(a @ b, p["multiplier"], p["shift"]) + p["output_offset"]
    else:
        out = Q.mbqm(Q.wrap32(a @ b), p["multiplier"], p["shift"]) + p["output_offset"]
    return np.clip(out, p["act_min"], p["act_max"])  # the batch dimensions broadcast as numpy's matmul


def transpose(g: Graph, op: Op, env: Env) -> np.ndarray:
    lower(g, op)
    return np.transpose(_in(g, env, op.inputs[0]), tuple(op.attrs["perm"]))


def slice_(g: Graph, op: Op, env: Env) -> np.ndarray:
    from compiler.core.transformer_ops import slice_index

    lower(g, op)
    x = _in(g, env, op.inputs[0])
    return x[slice_index(x.shape, op.attrs["begin"], op.attrs["size"])]


def lstm(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite-Micro's integer UNIDIRECTIONAL_SEQUENCE_LSTM (compiler/core/lstm.py), from the reset state."""
    from compiler.core.lstm import run_lstm

    return run_lstm(_in(g, env, op.inputs[0]), [_in(g, env, n) for n in op.inputs[1:9]], lower(g, op))
def svdf_step(p: dict, x: np.ndarray, wf: np.ndarray, wt: np.ndarray, bias: np.ndarray | None,
              state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One invoke of TFLM's integer SVDF (svdf_common.cc EvalIntegerSvdfReference<T>, T the state's
    int16 or int8): x [B, I] int8, state [B, F * M] -> (output [B, U] int8, the new state). Each
    filter's memory row shifts left by one; its newest entry is state_zp + clamp_T(MBQM1(sum
    (x - z_x) wf)) wrapped to T;
    the time products sum (s - state_zp) wt per filter (int32, wrapping), `rank` filters and the
    bias per unit, then MBQM2 + z_y clamped to int8."""
    batches, units, rank, memory = p["batches"], p["units"], p["rank"], p["memory"]
    filters = units * rank
    s = np.asarray(state, np.int64).reshape(batches, filters, memory)
    s = np.concatenate([s[:, :, 1:], np.zeros((batches, filters, 1), np.int64)], axis=2)
    dot = Q.wrap32((np.asarray(x, np.int64).reshape(batches, -1) - p["input_zp"]) @ np.asarray(wf, np.int64).T)
    info = np.iinfo(p["state_dtype"])  # int16, or int8 (mt_svdf_state8_s8)
    v = np.clip(Q.mbqm(dot, p["multiplier1"], p["shift1"]), info.min, info.max)
    span = int(info.max) - int(info.min) + 1
    s[:, :, -1] = (p["state_zp"] + v - int(info.min)) % span + int(info.min)  # stored wrapped to the state type
    t = Q.wrap32(((s - p["state_zp"]) * np.asarray(wt, np.int64)[None]).sum(axis=2))
    acc = t.reshape(batches, units, rank).sum(axis=2) + (0 if bias is None else np.asarray(bias, np.int64))
    y = np.clip(Q.mbqm(Q.wrap32(acc), p["multiplier2"], p["shift2"]) + p["output_zp"], -128, 127)
    return y.astype(np.int8), s.reshape(batches, filters * memory).astype(p["state_dtype"])


def svdf(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite SVDF (int8, int16 or int8 state) as TFLM's first invoke: the state starts as TFLM
    resets it (int16: 0, int8: its zero point), which is what the generated code does on every
    invoke."""
    p = lower(g, op)
    wf, wt, b = (_in(g, env, n) for n in op.inputs[1:4])
    state = np.full((p["batches"], p["units"] * p["rank"] * p["memory"]), p["state_reset"], p["state_dtype"])
    return svdf_step(p, _in(g, env, op.inputs[0]), wf, wt, b, state)[0]
# -- TFLite layout and reduction ops (integer parameters in compiler.core.lower) --------------------


def strided_slice(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite StridedSlice (reference_ops, 4-D): out[i_0..] = x[begin[d] + i_d * steps[d]] with
    begin/steps/size resolved at import from begin/end/strides and the masks (steps may be < 0)."""
    x = _in(g, env, op.inputs[0])
    idx = [b + s * np.arange(n) for b, s, n in zip(op.attrs["begin"], op.attrs["steps"], op.attrs["size"], strict=True)]
    return x[np.ix_(*idx)]


def depth_to_space(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite DepthToSpace (NHWC): out[n, h*b+i, w*b+j, c] = x[n, h, w, (i*b+j)*C_out + c]."""
    x = _in(g, env, op.inputs[0])
    b = int(op.attrs["block_size"])
    n, h, w, c = x.shape
    return x.reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5).reshape(n, h * b, w * b, c // (b * b))


def space_to_depth(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite SpaceToDepth (NHWC): out[n, h, w, (i*b+j)*C + c] = x[n, h*b+i, w*b+j, c]."""
    x = _in(g, env, op.inputs[0])
    b = int(op.attrs["block_size"])
    n, h, w, c = x.shape
    return x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h // b, w // b, b * b * c)


def reduce_sum(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite SUM int8/int16 (reference_ops::QuantizedMeanOrSum, compute_sum): the int32 sum over
    the axes less z_x * count, MBQM by s_x/s_y, + z_y, clamped to the dtype."""
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    s = Q.wrap32(x.sum(axis=tuple(op.attrs["axes"])) - p["input_zp"] * p["count"])
    out = Q.mbqm(s, p["multiplier"], p["shift"]) + p["output_zp"]
    info = np.iinfo(g.t(op.outputs[0]).dtype)
    return np.clip(out, info.min, info.max)


def reduce_max(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite REDUCE_MAX int8 (reference_ops::ReduceGeneric): the largest raw value over the axes."""
    lower(g, op)
    return _in(g, env, op.inputs[0]).max(axis=tuple(op.attrs["axes"]))


def _arg(g: Graph, op: Op, env: Env, largest: bool) -> np.ndarray:
    """TFLite ArgMinMax: the first index of the extreme value along the axis, int32."""
    x = _in(g, env, op.inputs[0])
    f = np.argmax if largest else np.argmin  # numpy also returns the first occurrence
    return f(x, axis=int(op.attrs["axis"])).astype(np.int32)


def arg_max(g: Graph, op: Op, env: Env) -> np.ndarray:
    return _arg(g, op, env, True)


def arg_min(g: Graph, op: Op, env: Env) -> np.ndarray:
    return _arg(g, op, env, False)


def resize_bilinear(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLite ResizeBilinearInteger (int8, no float): per output row/column the two source
    indices and the 10-bit fraction (compiler.core.lower), four int64 products summed in 2^20 units,
    rounded half away from zero (C division) and cast to int8."""
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    y0, y1, fy = (p["y_map"][:, k].astype(np.int64) for k in range(3))
    x0, x1, fx = (p["x_map"][:, k].astype(np.int64) for k in range(3))
    one = 1 << 10
    wy0, wy1 = (one - fy)[:, None, None], fy[:, None, None]
    wx0, wx1 = (one - fx)[None, :, None], fx[None, :, None]
    r0, r1 = x[:, y0], x[:, y1]  # [N, OH, W, C]
    acc = (r0[:, :, x0] * wy0 * wx0 + r1[:, :, x0] * wy1 * wx0 + r0[:, :, x1] * wy0 * wx1
           + r1[:, :, x1] * wy1 * wx1)
    half = 1 << 19
    num = acc + np.where(acc > 0, half, -half)
    q = np.where(num >= 0, num >> 20, -((-num) >> 20))  # C division truncates
    return ((q + 128) & 0xFF) - 128


_OPS: dict[str, Callable[[Graph, Op, Env], np.ndarray]] = {
    "conv2d": conv2d,
    "depthwise_conv2d": depthwise_conv2d,
    "fully_connected": fully_connected,
    "transpose_conv": transpose_conv,
    "add": add,
    "mul": mul,
    "sub": sub,
    "maximum": maximum,
    "gather": gather,
    "resize_nearest": resize_nearest,
    "leaky_relu": leaky_relu,
    "tanh": tanh,
    "abs": abs_,
    "minimum": minimum,
    "avg_pool2d": avg_pool2d,
    "max_pool2d": max_pool2d,
    "mean": mean,
    "pad": pad,
    "reshape": reshape,
    "concat": concat,
    "softmax": softmax,
    "logistic": logistic,
    "hard_swish": hard_swish,
    "relu": relu,
    "quantize": quantize,
    "dequantize": dequantize,
    "layer_norm": layer_norm,
    "gelu": gelu,
    "batch_matmul": batch_matmul,
    "transpose": transpose,
    "slice": slice_,
    "lstm": lstm,
    "svdf": svdf,
    "strided_slice": strided_slice,
    "depth_to_space": depth_to_space,
    "space_to_depth": space_to_depth,
    "reduce_sum": reduce_sum,
    "reduce_max": reduce_max,
    "arg_max": arg_max,
    "arg_min": arg_min,
    "resize_bilinear": resize_bilinear,
}


# -- TFLite elementwise ops (integer params: compiler.core.lower._lower_elementwise) ---------------


def squared_difference(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLM squared_difference.cc (int8, int16): v_i = MBQM<1((x_i - z_i) 2^left_shift), the
    difference squared (int32), MBQM to the output, + z_y, clamped; numpy broadcasting."""
    p = lower(g, op)
    a, b = _broadcast(g, op, env)
    ls = 1 << p["left_shift"]
    sa = Q.mbqm_smaller_than_one((a + p["input1_offset"]) * ls, p["input1_multiplier"], p["input1_shift"])
    sb = Q.mbqm_smaller_than_one((b + p["input2_offset"]) * ls, p["input2_multiplier"], p["input2_shift"])
    d = sa - sb
    raw = Q.mbqm(d * d, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return np.clip(raw, p["act_min"], p["act_max"])


def prelu(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLM reference_ops::BroadcastPrelu4DSlow (int8, int16 with int8 alpha): v = x - z_x;
    v >= 0: MBQM(v, m1, s1); else MBQM(v (alpha - z_a), m2, s2); + z_y, clamped."""
    p = lower(g, op)
    x, al = _broadcast(g, op, env)
    v = x + p["input_offset"]
    pos = Q.mbqm(v, p["output_multiplier_1"], p["output_shift_1"])
    neg = Q.mbqm(v * (al + p["alpha_offset"]), p["output_multiplier_2"], p["output_shift_2"])
    info = np.iinfo(g.t(op.outputs[0]).dtype)
    return np.clip(np.where(v >= 0, pos, neg) + p["output_offset"], info.min, info.max)


def elu(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLM elu.cc (int8): out = lut[x + 128]."""
    return lower(g, op)["lut"][_in(g, env, op.inputs[0]).astype(np.int64) + 128]


def rsqrt(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLM RsqrtEvalQuantized (int8, int16: compiler.core.lower.rsqrt_values); an input below the
    zero point (a negative real value) makes TFLM's invoke fail, so it raises ModelError here."""
    from compiler.core.lower import rsqrt_values

    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64)
    if x.size and int(x.min()) < p["input_zp"]:
        raise ModelError(f"node {op.name} (rsqrt): input value {int(x.min())} below the zero point "
                         f"{p['input_zp']} (a negative real value): TFLite-Micro's invoke fails")
    return rsqrt_values(x, p)


def l2_norm(g: Graph, op: Op, env: Env) -> np.ndarray:
    """TFLM reference_integer_ops::L2Normalization (int8): per row of the last axis, acc =
    sum (x - z_x)^2, (m, s) = GetInvSqrtQuantizedMultiplierExp(acc), out = clamp(MBQM(x - z_x,
    m, s + 7)) in 1/128 units."""
    p = lower(g, op)
    x = _in(g, env, op.inputs[0]).astype(np.int64).reshape(p["outer"], p["depth"]) - p["input_zp"]
    acc = Q.wrap32(np.sum(x * x, axis=1))
    m, s = Q.inv_sqrt_multiplier_exp(acc)
    return np.clip(Q.mbqm(x, m[:, None], s[:, None] + 7), -128, 127)


_OPS.update({"squared_difference": squared_difference, "prelu": prelu, "elu": elu, "rsqrt": rsqrt,
             "l2_norm": l2_norm})
