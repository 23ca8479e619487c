"""A float32 numpy executor of the IR: calibration for PTQ and the float side of fidelity checks.

`run_float(graph, inputs)` runs a float graph (float32 activations, float weights) and returns
its outputs; `keep_all=True` returns every tensor. Inputs may carry a leading batch of any size
(the IR's batch-1 shapes are checked on everything after the batch axis), so a whole calibration
set runs in one call. The transformer kinds use the definitions in `compiler/core/transformer_ops.py`.

An int8 graph runs too: int8 inputs and constants are dequantized first, so this gives the float
model an int8 graph approximates (quantized weights, float arithmetic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from compiler.core import transformer_ops as T
from compiler.core.ir import Graph, Op, Tensor
from compiler.errors import ModelError

Env = dict[str, np.ndarray]


def dequantize(t: Tensor, data: np.ndarray) -> np.ndarray:
    """Real values of `data` (stored as tensor `t`): float as is, integers through `t.quant`."""
    if t.dtype == "float32" or t.quant is None:
        return np.asarray(data, np.float32)
    q = t.quant
    d = np.asarray(data, np.float64)
    if q.per_channel:
        shape = [1] * d.ndim
        shape[q.axis] = -1
        s, z = q.scale.reshape(shape), q.zero_point.reshape(shape)
    else:
        s, z = q.s, q.zp
    return ((d - z) * s).astype(np.float32)


def run_float(
    graph: Graph,
    inputs: Sequence[np.ndarray] | dict[str, np.ndarray],
    keep_all: bool = False,
    known: Env | None = None,
) -> list[np.ndarray] | Env:
    """Run `graph` in float32. Inputs: one array per graph input, shape (N, *shape[1:]).
    `known` maps op outputs to values computed elsewhere (onnxruntime, for calibration): those ops
    are not run and their outputs are taken as given."""
    if not isinstance(inputs, dict):
        inputs = dict(zip(graph.inputs, inputs, strict=True))
    env: Env = {}
    for name in graph.inputs:
        t = graph.t(name)
        a = np.asarray(inputs[name])
        if a.shape[1:] != t.shape[1:]:
            if a.size == t.size:
                a = a.reshape(t.shape)
            else:
                raise ModelError(
                    f"input {name!r}: expected shape (N, {', '.join(map(str, t.shape[1:]))}), got {a.shape}"
                )
        env[name] = dequantize(t, a) if a.dtype != np.float32 else a
    for op in graph.ops:
        if known is not None and op.outputs[0] in known:
            env[op.outputs[0]] = known[op.outputs[0]]
            continue
        fn = _OPS.get(op.kind)
        if fn is None:
            raise ModelError(f"float executor: no implementation for op kind {op.kind!r} ({op.name})")
        ins = [_value(graph, env, n) for n in op.inputs]
        out = fn(graph, op, ins)
        t = graph.t(op.outputs[0])
        env[op.outputs[0]] = np.asarray(out, np.float32).reshape((-1,) + t.shape[1:]) if t.shape else out
    if keep_all:
        return env
    return [env[n] for n in graph.outputs]


def _value(g: Graph, env: Env, name: str) -> np.ndarray | None:
    if not name:
        return None
    if name in env:
        return env[name]
    t = g.t(name)
    if t.data is None:
        raise ModelError(f"float executor: tensor {name!r} read before it is produced")
    v = dequantize(t, t.data)
    env[name] = v
    return v


def activation_float(z: np.ndarray, activation: str) -> np.ndarray:
    """A fused activation in float (relu, relu6, relu_n1_to_1 or none)."""
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "relu6":
        return np.clip(z, 0, 6)
    if activation == "relu_n1_to_1":
        return np.clip(z, -1, 1)
    return z


def _windows(x: np.ndarray, k: Sequence[int], stride, dil, pads, out_hw, value: float = 0.0) -> np.ndarray:
    """[N, OH, OW, C, KH, KW] windows of the padded NHWC input."""
    t, b, left, r = pads
    x = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)
    eh, ew = (k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1
    v = sliding_window_view(x, (eh, ew), axis=(1, 2))
    v = v[:, :: stride[0], :: stride[1], :, :: dil[0], :: dil[1]]
    return v[:, : out_hw[0], : out_hw[1]]


def _conv2d(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
    a = op.attrs
    out_hw = g.t(op.outputs[0]).shape[1:3]
    win = _windows(x, w.shape[1:3], a["stride"], a.get("dilation", (1, 1)), a["pads"], out_hw)
    z = np.einsum("nhwcij,oijc->nhwo", win, w, optimize=True)
    if b is not None:
        z = z + b
    return activation_float(z, a.get("activation", "none"))


def _depthwise(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
    a = op.attrs
    out_hw = g.t(op.outputs[0]).shape[1:3]
    win = _windows(x, w.shape[1:3], a["stride"], a.get("dilation", (1, 1)), a["pads"], out_hw)
    win = np.repeat(win, a.get("depth_multiplier", 1), axis=3)
    z = np.einsum("nhwcij,ijc->nhwc", win, w[0], optimize=True)
    if b is not None:
        z = z + b
    return activation_float(z, a.get("activation", "none"))


def _fc(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
    n = x.shape[0]
    z = x.reshape(n, -1, w.shape[1]) @ w.T
    if b is not None:
        z = z + b
    return activation_float(z, op.attrs.get("activation", "none")).reshape((n,) + g.t(op.outputs[0]).shape[1:])


def _binary(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    z = ins[0] + ins[1] if op.kind == "add" else ins[0] * ins[1]
    return activation_float(z, op.attrs.get("activation", "none"))


def _pool(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    a = op.attrs
    out_hw = g.t(op.outputs[0]).shape[1:3]
    x = ins[0]
    if op.kind == "max_pool2d":
        z = _windows(x, a["kernel"], a["stride"], (1, 1), a["pads"], out_hw, -np.inf).max(axis=(-1, -2))
    else:
        s = _windows(x, a["kernel"], a["stride"], (1, 1), a["pads"], out_hw).sum(axis=(-1, -2))
        ones = np.ones((1,) + x.shape[1:3] + (1,), np.float32)
        n = _windows(ones, a["kernel"], a["stride"], (1, 1), a["pads"], out_hw).sum(axis=(-1, -2))
        z = s / n
    return activation_float(z, a.get("activation", "none"))


def _mean(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    return ins[0].mean(axis=tuple(op.attrs["axes"]), keepdims=bool(op.attrs.get("keep_dims", False)))


def _pad(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    return np.pad(ins[0], op.attrs["paddings"])


def _reshape(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    return ins[0].reshape((ins[0].shape[0],) + g.t(op.outputs[0]).shape[1:])


def _concat(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    n = max(x.shape[0] for x in ins)
    parts = [np.broadcast_to(x, (n,) + x.shape[1:]) for x in ins]
    return np.concatenate(parts, axis=op.attrs["axis"])


def _softmax(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    z = ins[0].astype(np.float64) * float(op.attrs.get("beta", 1.0))
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _logistic(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-ins[0].astype(np.float64)))


def _hard_swish(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    x = ins[0]
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _relu(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    return np.clip(ins[0], float(op.attrs.get("min", 0.0)), float(op.attrs.get("max", np.inf)))


def _identity(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    return ins[0]


def _layer_norm(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    if op.attrs.get("axis", -1) not in (-1, len(g.t(op.inputs[0]).shape) - 1):
        raise ModelError(f"float executor: layer_norm {op.name} over axis {op.attrs['axis']} (only -1)")
    return T.layer_norm(ins[0], ins[1], ins[2], float(op.attrs.get("epsilon", 1e-5)))


def _gelu(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    return T.gelu(ins[0], op.attrs.get("approximate", "none"))


def _batch_matmul(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    return T.batch_matmul(ins[0], ins[1], bool(op.attrs.get("transpose_b", False)))


def _transpose(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    perm = tuple(op.attrs["perm"])
    if perm[0] != 0:  # a batch of samples: keep the sample axis first (IR batch is 1)
        x = ins[0]
        return np.stack([T.transpose(x[i : i + 1], perm) for i in range(x.shape[0])]).reshape(
            (x.shape[0],) + g.t(op.outputs[0]).shape[1:]
        )
    return T.transpose(ins[0], perm)


def _slice(g: Graph, op: Op, ins: list[Any]) -> np.ndarray:
    x = ins[0]
    begin, size = list(op.attrs["begin"]), list(op.attrs["size"])
    begin[0], size[0] = 0, -1  # every sample of the batch
    return T.slice_(x, begin, size)


_OPS: dict[str, Callable[[Graph, Op, list[Any]], np.ndarray]] = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "fully_connected": _fc,
    "add": _binary,
    "mul": _binary,
    "avg_pool2d": _pool,
    "max_pool2d": _pool,
    "mean": _mean,
    "pad": _pad,
    "reshape": _reshape,
    "concat": _concat,
    "softmax": _softmax,
    "logistic": _logistic,
    "hard_swish": _hard_swish,
    "relu": _relu,
    "quantize": _identity,
    "dequantize": _identity,
    "layer_norm": _layer_norm,
    "gelu": _gelu,
    "batch_matmul": _batch_matmul,
    "transpose": _transpose,
    "slice": _slice,
}
