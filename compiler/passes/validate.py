"""`validate(graph, source)`: an imported graph is checked before anything is planned.

A model file declares every tensor's shape, its constant buffers and quantization parameters
and every op's attributes; a corrupted or hand-edited file can declare values that disagree
with each other (a 1,048,576-element output of a softmax over 12 classes, a stride of 0, an
axis of 7 on a rank-4 tensor). Each is refused here with a `ModelError` naming the op, never
passed on to the planner, the emitter or the firmware. Checks:

- tensors: every dimension >= 1, rank <= 6, at most `MAX_ELEMENTS` elements; a constant's data
  has exactly the declared shape;
- quantization: scales finite and > 0, zero points inside the tensor's integer dtype,
  per-channel `axis` inside the rank with one scale per channel;
- attributes: strides, dilations, kernel sizes >= 1; pads and paddings >= 0; axes inside the
  rank; activations known;
- shapes: each op's declared output shape equals what its semantics give from its inputs
  (the formulas of TFLite's reference kernels: `tensorflow/lite/kernels/padding.h`
  ComputeOutSize for conv/pool, broadcasting for add/mul, element count for reshape).

Ops other engineers add without a rule here get the tensor, quantization and attribute
checks only. Raises `ModelError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.core.ir import ACTIVATIONS, DTYPES, Graph, Op
from compiler.errors import ModelError

MAX_RANK = 6
MAX_ELEMENTS = 1 << 24  # 16 Mi elements: far above what any MCU holds, far below an int32 overflow


def validate(graph: Graph, source: str = "model") -> None:
    """Check `graph` (see the module docstring); raises ModelError naming `source` and the op."""
    for t in graph.tensors.values():
        _check_tensor(t, source)
    for op in graph.ops:
        where = f"{source}: node {op.name} ({op.kind})"
        _check_operands(graph, op, where)
        _check_attrs(graph, op, where)
        rule = _SHAPE_RULES.get(op.kind)
        if rule is None:
            continue
        ins = [tuple(graph.t(n).shape) if n else None for n in op.inputs]
        want = rule(graph, op, ins, where)
        if want is None:
            continue
        got = tuple(graph.t(op.outputs[0]).shape)
        if tuple(want) != got:
            raise ModelError(
                f"{where}: output {op.outputs[0]!r} is declared with shape {list(got)}, the op gives {list(want)}"
            )


# (least, most) inputs per op kind; the inputs past `least` are optional ("" = absent)
ARITY: dict[str, tuple[int, int]] = {
    "conv2d": (2, 3),
    "depthwise_conv2d": (2, 3),
    "fully_connected": (2, 3),
    "add": (2, 2),
    "mul": (2, 2),
    "avg_pool2d": (1, 1),
    "max_pool2d": (1, 1),
    "mean": (1, 1),
    "pad": (1, 2),
    "reshape": (1, 1),
    "concat": (1, 64),
    "softmax": (1, 1),
    "logistic": (1, 1),
    "hard_swish": (1, 1),
    "relu": (1, 1),
    "quantize": (1, 1),
    "dequantize": (1, 1),
    "gelu": (1, 1),
    "layer_norm": (3, 3),
    "batch_matmul": (2, 2),
    "transpose": (1, 1),
    "slice": (1, 1),
    **dict.fromkeys(("strided_slice", "depth_to_space", "space_to_depth", "reduce_sum", "reduce_max", "arg_max",
                     "arg_min", "resize_bilinear"), (1, 1)),
}
_WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")


def _check_operands(g: Graph, op: Op, where: str) -> None:
    """Input count, required inputs present, one output; the first input computed (not a
    constant; concat: at least one input computed, parts may repeat); weights and bias of
    conv/depthwise/FC constants of a weight / bias dtype."""
    least, most = ARITY.get(op.kind, (1, 64))
    if not least <= len(op.inputs) <= most or any(not n for n in op.inputs[:least]):
        raise ModelError(f"{where}: {len(op.inputs)} input(s) {op.inputs}, expected {least}..{most}")
    if len(op.outputs) != 1:
        raise ModelError(f"{where}: {len(op.outputs)} outputs, expected 1")
    if g.t(op.outputs[0]).is_const:
        raise ModelError(f"{where}: its output {op.outputs[0]!r} is a constant")
    used = [n for n in op.inputs if n]
    if len(set(used)) != len(used) and op.kind != "concat":  # concat copies a part as often as it is named
        raise ModelError(f"{where}: reads the same tensor twice ({op.inputs}): not supported")
    if op.kind == "concat":  # constant parts (a ViT's class token) beside computed ones are fine
        if all(g.t(n).is_const for n in used):
            raise ModelError(f"{where}: every input is a constant, not a computed tensor")
    elif g.t(op.inputs[0]).is_const:
        raise ModelError(f"{where}: its data input {op.inputs[0]!r} is a constant, not a computed tensor")
    if op.kind in _WEIGHTED:
        w = g.t(op.inputs[1])
        if not w.is_const or w.dtype not in ("int8", "float32"):
            raise ModelError(f"{where}: weights {w.name!r} must be a constant int8/float32 tensor ({w.dtype})")
        if len(op.inputs) > 2 and op.inputs[2]:
            b = g.t(op.inputs[2])
            if not b.is_const or b.dtype not in ("int32", "int64", "float32"):
                raise ModelError(f"{where}: bias {b.name!r} must be a constant int32/float32 tensor ({b.dtype})")


def _check_tensor(t: Any, source: str) -> None:
    where = f"{source}: tensor {t.name!r}"
    shape = tuple(t.shape)
    if len(shape) > MAX_RANK:
        raise ModelError(f"{where}: rank {len(shape)} (at most {MAX_RANK} supported)")
    if any(int(d) < 1 for d in shape):
        raise ModelError(f"{where}: shape {list(shape)} has a dimension < 1")
    if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise ModelError(f"{where}: shape {list(shape)} has more than {MAX_ELEMENTS} elements")
    if t.data is not None and tuple(np.shape(t.data)) != shape:
        raise ModelError(f"{where}: constant data of shape {list(np.shape(t.data))}, declared {list(shape)}")
    if t.data is not None and np.asarray(t.data).dtype.kind == "f" and not np.all(np.isfinite(t.data)):
        raise ModelError(f"{where}: constant data holds NaN or infinity")
    q = t.quant
    if q is None:
        return
    scale = np.asarray(q.scale, np.float64).reshape(-1)
    zp = np.asarray(q.zero_point).reshape(-1)
    if scale.size == 0 or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ModelError(f"{where}: quantization scale must be finite and > 0, got {scale[:4].tolist()}")
    if t.dtype in DTYPES and np.issubdtype(DTYPES[t.dtype], np.integer) and zp.size:
        info = np.iinfo(DTYPES[t.dtype])
        if zp.min() < info.min or zp.max() > info.max:
            raise ModelError(f"{where}: zero point {zp[:4].tolist()} outside {t.dtype}")
    if zp.size not in (1, scale.size):
        raise ModelError(f"{where}: {zp.size} zero points for {scale.size} scales")
    if scale.size > 1:
        axis = int(q.axis)
        if not 0 <= axis < max(len(shape), 1) or (shape and shape[axis] != scale.size):
            raise ModelError(
                f"{where}: {scale.size} per-channel scales on axis {axis} of shape {list(shape)}"
            )


def _ints(v: Any, n: int, what: str, where: str, lo: int) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in v)
    except (TypeError, ValueError):
        raise ModelError(f"{where}: {what} {v!r} is not a list of integers") from None
    if len(vals) != n or any(x < lo for x in vals):
        raise ModelError(f"{where}: {what} {list(vals)} must be {n} integers >= {lo}")
    return vals


def _check_attrs(g: Graph, op: Op, where: str) -> None:
    a = op.attrs
    if "activation" in a and a["activation"] not in ACTIVATIONS:
        raise ModelError(f"{where}: unknown activation {a['activation']!r}")
    for key in ("stride", "dilation", "kernel"):
        if key in a:
            _ints(a[key], 2, key, where, 1)
    if "pads" in a:
        _ints(a["pads"], 4, "pads", where, 0)
    if "depth_multiplier" in a:
        _ints([a["depth_multiplier"]], 1, "depth_multiplier", where, 1)
    rank = len(g.t(op.inputs[0]).shape) if op.inputs and op.inputs[0] else 0
    if "paddings" in a:
        pads = [p for pair in a["paddings"] for p in pair]
        _ints(pads, 2 * rank, "paddings", where, 0)
    if "axes" in a:
        axes = _ints(a["axes"], len(tuple(a["axes"])), "axes", where, -rank)
        if any(x >= rank for x in axes):
            raise ModelError(f"{where}: axes {list(axes)} outside rank {rank}")
    if "axis" in a and op.kind == "concat":
        axis = int(a["axis"])
        if not -rank <= axis < rank:
            raise ModelError(f"{where}: axis {axis} outside rank {rank}")


# -- output shapes from op semantics ------------------------------------------------------


def _rank(shape: tuple[int, ...] | None, n: int, what: str, where: str) -> tuple[int, ...]:
    if shape is None or len(shape) != n:
        raise ModelError(f"{where}: {what} has shape {list(shape or ())}, expected rank {n}")
    return shape


def _window(n: int, k: int, s: int, d: int, p0: int, p1: int, where: str) -> int:
    eff = (k - 1) * d + 1
    out = (n + p0 + p1 - eff) // s + 1
    if out < 1:
        raise ModelError(f"{where}: window {k} (dilation {d}) does not fit input size {n} with pads {p0}+{p1}")
    return out


def _conv(g: Graph, op: Op, ins: list, where: str) -> tuple[int, ...]:
    x = _rank(ins[0], 4, "input", where)
    w = _rank(ins[1] if len(ins) > 1 else None, 4, "weights", where)
    a = op.attrs
    s, d, p = a["stride"], a["dilation"], a["pads"]
    if op.kind == "conv2d":
        if w[3] == 0 or x[3] % w[3] != 0 or x[3] != w[3]:
            raise ModelError(f"{where}: weights {list(w)} expect {w[3]} input channels, the input has {x[3]}")
        cout = w[0]
    else:
        mult = int(a.get("depth_multiplier", 1))
        if w[0] != 1 or w[3] != x[3] * mult:
            raise ModelError(f"{where}: depthwise weights {list(w)} do not fit {x[3]} channels x multiplier {mult}")
        cout = w[3]
    if len(ins) > 2 and ins[2] is not None and int(np.prod(ins[2])) != cout:
        raise ModelError(f"{where}: bias of shape {list(ins[2])} for {cout} output channels")
    oh = _window(x[1], w[1], s[0], d[0], p[0], p[1], where)
    ow = _window(x[2], w[2], s[1], d[1], p[2], p[3], where)
    return (x[0], oh, ow, cout)


def _pool(g: Graph, op: Op, ins: list, where: str) -> tuple[int, ...]:
    x = _rank(ins[0], 4, "input", where)
    a = op.attrs
    k, s, p = a["kernel"], a["stride"], a["pads"]
    oh = _window(x[1], k[0], s[0], 1, p[0], p[1], where)
    return (x[0], oh, _window(x[2], k[1], s[1], 1, p[2], p[3], where), x[3])


def _fc(g: Graph, op: Op, ins: list, where: str) -> tuple[int, ...] | None:
    x, w = ins[0], ins[1] if len(ins) > 1 else None
    if x is None or w is None or len(w) != 2:
        raise ModelError(f"{where}: weights must be [out, in], got {list(w or ())}")
    n_in = int(np.prod(x))
    if n_in % w[1] != 0:
        raise ModelError(f"{where}: input of shape {list(x)} does not split into rows of {w[1]} (weights {list(w)})")
    if len(ins) > 2 and ins[2] is not None and int(np.prod(ins[2])) != w[0]:
        raise ModelError(f"{where}: bias of shape {list(ins[2])} for {w[0]} outputs")
    out = tuple(g.t(op.outputs[0]).shape)
    if int(np.prod(out)) != n_in // w[1] * w[0] or out[-1] != w[0]:
        raise ModelError(f"{where}: output {list(out)} is not {n_in // w[1]} rows of {w[0]}")
    return None


def _broadcast(g: Graph, op: Op, ins: list, where: str) -> tuple[int, ...]:
    try:
        out = tuple(np.broadcast_shapes(*[s for s in ins if s is not None]))
    except ValueError:
        raise ModelError(f"{where}: input shapes {[list(s) for s in ins if s]} do not broadcast") from None
    computed = [tuple(g.t(n).shape) for n in op.inputs if n and not g.t(n).is_const]
    if out not in computed:  # a constant operand may not grow the computed tensor (the batch axis included)
        raise ModelError(f"{where}: a constant operand of shape {list(ins[1])} grows the result to {list(out)}")
    return out


def _same(g: Graph, op: Op, ins: list, where: str) -> tuple[int, ...]:
    return ins[0]


def _reshape(g: Graph, op: Op, ins: list, where: str) -> None:
    out = tuple(g.t(op.outputs[0]).shape)
    if int(np.prod(ins[0])) != int(np.prod(out)):
        raise ModelError(f"{where}: reshape of {list(ins[0])} ({int(np.prod(ins[0]))} elements) to {list(out)}")
    if len(out) > 1 and len(ins[0]) > 1 and out[0] != ins[0][0]:
        raise ModelError(f"{where}: reshape of {list(ins[0])} to {list(out)} moves the batch axis")
    return None


def _mean(g: Graph, op: Op, ins: list, where: str) -> tuple[int, ...] | None:
    x = ins[0]
    axes = {int(a) % len(x) for a in op.attrs["axes"]}
    if op.attrs.get("keep_dims"):
        return tuple(1 if i in axes else d for i, d in enumerate(x))
    kept = tuple(d for i, d in enumerate(x) if i not in axes)
    out = tuple(g.t(op.outputs[0]).shape)
    if int(np.prod(kept)) != int(np.prod(out)):  # TFLite may keep a leading 1: compare element counts
        return kept
    return None


def _pad(g: Graph, op: Op, ins: list, where: str) -> tuple[int, ...]:
    return tuple(d + int(b) + int(e) for d, (b, e) in zip(ins[0], op.attrs["paddings"], strict=True))


def _concat(g: Graph, op: Op, ins: list, where: str) -> tuple[int, ...]:
    shapes = [s for s in ins if s is not None]
    rank = len(shapes[0])
    axis = int(op.attrs["axis"]) % rank
    for s in shapes[1:]:
        if len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != axis):
            raise ModelError(f"{where}: inputs {[list(x) for x in shapes]} do not concatenate on axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return tuple(out)


_SHAPE_RULES: dict[str, Any] = {
    "conv2d": _conv,
    "depthwise_conv2d": _conv,
    "avg_pool2d": _pool,
    "max_pool2d": _pool,
    "fully_connected": _fc,
    "add": _broadcast,
    "mul": _broadcast,
    "mean": _mean,
    "pad": _pad,
    "reshape": _reshape,
    "concat": _concat,
    "softmax": _same,
    "logistic": _same,
    "hard_swish": _same,
    "relu": _same,
    "quantize": _same,
    "dequantize": _same,
    "gelu": _same,
    "layer_norm": _same,
}
