"""The microtile IR: a graph of N-D tensors and ops, NHWC for images.

Every frontend (.tflite, .onnx, PyTorch via ONNX, the graph builder) produces a `Graph`.
Tensors carry shape, dtype, quantization parameters and, for constants, their data.
Ops carry a `kind` (one of `OP_KINDS`) and a flat `attrs` dict of plain Python values.

Conventions (TFLite's, so int8 TFLite models map 1:1):
- conv2d weights are OHWI, depthwise weights 1HW(C*multiplier), fully_connected weights [out, in];
- spatial padding is always explicit per edge: attrs["pads"] = (top, bottom, left, right);
- fused activations are a name in attrs["activation"] ("none", "relu", "relu6", "relu_n1_to_1");
- reshape/squeeze are views: the planner aliases their output to their input.

`Graph.dump()` prints a readable, diffable text form of the whole graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPES: dict[str, np.dtype] = {
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "int16": np.dtype(np.int16),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
    "float32": np.dtype(np.float32),
}

# Op kinds the IR knows, with the attributes each one carries.
OP_KINDS: dict[str, tuple[str, ...]] = {
    "conv2d": ("stride", "dilation", "pads", "activation"),
    "depthwise_conv2d": ("stride", "dilation", "pads", "activation", "depth_multiplier"),
    "fully_connected": ("activation",),
    "add": ("activation",),
    "mul": ("activation",),
    "sub": ("activation",),  # TFLite SUB: add's arithmetic with the second scaled input subtracted
    "maximum": (),  # TFLite MAXIMUM/MINIMUM: elementwise on the raw quantized values (broadcast)
    "minimum": (),
    "gather": ("axis", "indices"),  # TFLite GATHER with constant indices (batch_dims 0): np.take
    "resize_nearest": ("align_corners", "half_pixel_centers"),  # TFLite RESIZE_NEAREST_NEIGHBOR, NHWC
    "leaky_relu": ("alpha",),  # TFLite LEAKY_RELU: x >= 0 rescaled by s_x/s_y, x < 0 by alpha s_x/s_y
    "transpose_conv": ("stride", "pads", "activation", "dilation"),  # TFLite TRANSPOSE_CONV: x, w (OHWI), bias
    "abs": (),  # TFLite ABS (int8, int16): |x - z_x|, rescaled when the scales differ
    "tanh": (),  # TFLite TANH int8: input in Q4.27, gemmlowp tanh, output Q0.7 (zero point 0)
    "avg_pool2d": ("kernel", "stride", "pads", "activation"),
    "max_pool2d": ("kernel", "stride", "pads", "activation"),
    "mean": ("axes", "keep_dims"),
    "pad": ("paddings",),
    "reshape": (),
    "concat": ("axis", "activation"),
    "softmax": ("beta",),
    "logistic": (),
    "hard_swish": (),
    "relu": ("min", "max"),  # bounds in real values: relu = (0, inf), relu6 = (0, 6)
    "quantize": (),
    "dequantize": (),
    # transformer ops; float semantics in compiler/core/transformer_ops.py, int8 arithmetic in lower.py
    "layer_norm": ("axis", "epsilon"),  # inputs x, gamma f32 [D], beta f32 [D]; axis must be -1
    "gelu": ("approximate",),  # "none" (erf) | "tanh"
    "batch_matmul": ("transpose_b",),  # [B.., M, K] x [B.., K, N] (or [B.., N, K] when transpose_b)
    "transpose": ("perm",),
    "slice": ("begin", "size"),  # out = x[begin[i] : begin[i] + size[i]] per axis
    # TFLite UNIDIRECTIONAL_SEQUENCE_LSTM (int8 x int8 -> int16 cell): inputs x, 4 input weights,
    # 4 recurrent weights, 4 biases (gates input, forget, cell, output); compiler/core/lstm.py
    "lstm": ("time_major", "cell_clip", "hidden_scale", "hidden_zp", "cell_scale"),
    # TFLite elementwise ops (TFLite-Micro's integer arithmetic; compiler/core/lower.py, compiler/golden/reference.py)
    "squared_difference": (),  # (x1 - x2)^2, both rescaled to 2 max(s1, s2) first; 4-D broadcast
    "prelu": (),  # inputs x, alpha (int8, broadcast to x): x >= z_x rescaled by s_x/s_y, else by s_x s_a/s_y
    "elu": (),  # int8: a 256-entry table of TFLite-Micro's float32 exp(x) - 1 (x < 0), x (x >= 0)
    "rsqrt": (),  # int8: 1/sqrt(x) by gemmlowp's Newton-Raphson inverse square root; x < z_x fails invoke
    "l2_norm": (),  # int8: x / ||x||_2 over the last axis, output in 1/128 units (zero point 0)
    # TFLite SVDF int8: inputs x [B, I], weights_feature [F, I] int8, weights_time [F, M] int16,
    # bias [F / rank] int32; the int16 state [B, F * M] is the op's own (compiler/golden/reference.py svdf)
    "svdf": ("rank", "activation", "state_scale", "state_zp"),
    # TFLite layout and reduction ops (compiler/frontend/tflite.py; arithmetic in compiler/golden/reference.py)
    "strided_slice": ("begin", "steps", "size"),  # out[i..] = x[begin[d] + i_d * steps[d]] (steps may be < 0)
    "depth_to_space": ("block_size",),  # NHWC, TF's DCR order: out[h*b+i, w*b+j, c] = x[h, w, (i*b+j)*C+c]
    "space_to_depth": ("block_size",),  # the inverse: out[h, w, (i*b+j)*C+c] = x[h*b+i, w*b+j, c]
    "reduce_sum": ("axes", "keep_dims"),  # TFLite SUM: int32 sum, rescaled s_x/s_y
    "reduce_max": ("axes", "keep_dims"),  # TFLite REDUCE_MAX: max of the raw values (same quantization)
    "arg_max": ("axis",),  # TFLite ARG_MAX: int32 index of the first largest value along axis
    "arg_min": ("axis",),  # TFLite ARG_MIN: int32 index of the first smallest value along axis
    "resize_bilinear": ("align_corners", "half_pixel_centers"),  # TFLite RESIZE_BILINEAR int8, NHWC
}

ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")

# Ops whose output is a view of their input (no data movement).
VIEW_OPS = frozenset({"reshape"})


class IRError(ValueError):
    """The graph is malformed (a bug in a frontend or pass, or a bad model)."""


@dataclass
class QParams:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per `axis`."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0

    def __post_init__(self) -> None:
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def s(self) -> float:
        """The per-tensor scale (only valid when not per-channel)."""
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        return int(self.zero_point[0])

    def __repr__(self) -> str:
        if self.per_channel:
            return f"q(per-axis {self.axis}, {self.scale.size} scales)"
        return f"q({self.s:.6g}, {self.zp})"


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: QParams | None = None
    data: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.shape = tuple(int(d) for d in self.shape)
        if self.dtype not in DTYPES:
            raise IRError(f"tensor {self.name!r}: unknown dtype {self.dtype!r}")
        if self.data is not None:
            self.data = np.asarray(self.data, dtype=DTYPES[self.dtype]).reshape(self.shape)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * DTYPES[self.dtype].itemsize

    def describe(self) -> str:
        shape = "x".join(str(d) for d in self.shape) or "scalar"
        q = f" {self.quant!r}" if self.quant is not None else ""
        c = " const" if self.is_const else ""
        return f"{self.dtype}[{shape}]{q}{c}"


@dataclass
class Op:
    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in self.attrs.items())
        return f"{', '.join(self.outputs)} = {self.kind}({', '.join(self.inputs)}){{{attrs}}}"


@dataclass
class Graph:
    name: str = "model"
    tensors: dict[str, Tensor] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    # frontend/pass annotations (e.g. the ONNX input layout, the PTQ report); plain values only
    meta: dict[str, Any] = field(default_factory=dict)

    # -- building -------------------------------------------------------------------------
    def add_tensor(self, tensor: Tensor) -> Tensor:
        if tensor.name in self.tensors:
            raise IRError(f"duplicate tensor name {tensor.name!r}")
        self.tensors[tensor.name] = tensor
        return tensor

    def add_op(self, op: Op) -> Op:
        if op.kind not in OP_KINDS:
            raise IRError(f"op {op.name!r}: unknown kind {op.kind!r}")
        self.ops.append(op)
        return op

    def unique_name(self, base: str) -> str:
        name, i = base, 1
        while name in self.tensors:
            name, i = f"{base}_{i}", i + 1
        return name

    # -- queries --------------------------------------------------------------------------
    def t(self, name: str) -> Tensor:
        return self.tensors[name]

    def producer(self, tensor: str) -> Op | None:
        for op in self.ops:
            if tensor in op.outputs:
                return op
        return None

    def consumers(self, tensor: str) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]

    def activations(self) -> list[Tensor]:
        """Non-constant tensors that ops read or write."""
        names: list[str] = []
        for op in self.ops:
            for n in op.inputs + op.outputs:
                if n and not self.tensors[n].is_const and n not in names:
                    names.append(n)
        for n in self.inputs:
            if n not in names:
                names.append(n)
        return [self.tensors[n] for n in names]

    def constants(self) -> list[Tensor]:
        return [t for t in self.tensors.values() if t.is_const and self.consumers(t.name)]

    # -- checking -------------------------------------------------------------------------
    def verify(self) -> None:
        """Check that ops are topologically ordered and every tensor they name exists."""
        defined = set(self.inputs) | {n for n, t in self.tensors.items() if t.is_const}
        for op in self.ops:
            if op.kind not in OP_KINDS:
                raise IRError(f"op {op.name!r}: unknown kind {op.kind!r}")
            for n in op.inputs:
                if n == "":
                    continue
                if n not in self.tensors:
                    raise IRError(f"op {op.name!r} reads unknown tensor {n!r}")
                if n not in defined:
                    raise IRError(f"op {op.name!r} reads {n!r} before it is produced")
            for n in op.outputs:
                if n not in self.tensors:
                    raise IRError(f"op {op.name!r} writes unknown tensor {n!r}")
                if n in defined:
                    raise IRError(f"tensor {n!r} is produced twice")
                defined.add(n)
        for n in self.outputs:
            if n not in defined:
                raise IRError(f"graph output {n!r} is never produced")

    # -- printing -------------------------------------------------------------------------
    def dump(self) -> str:
        lines = [f"graph {self.name}"]
        for n in self.inputs:
            lines.append(f"  input  {n}: {self.tensors[n].describe()}")
        for op in self.ops:
            lines.append(f"  [{op.name}] {op.describe()}")
            for n in op.outputs:
                lines.append(f"      {n}: {self.tensors[n].describe()}")
        for n in self.outputs:
            lines.append(f"  output {n}: {self.tensors[n].describe()}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.dump()


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one op (the convention MLPerf Tiny and MCUNet use)."""
    out = graph.tensors[op.outputs[0]]
    if op.kind == "conv2d":
        w = graph.tensors[op.inputs[1]]
        return out.size * math.prod(w.shape[1:])
    if op.kind == "depthwise_conv2d":
        w = graph.tensors[op.inputs[1]]
        return out.size * w.shape[1] * w.shape[2]
    if op.kind == "fully_connected":
        w = graph.tensors[op.inputs[1]]
        return out.size * w.shape[-1]
    if op.kind == "batch_matmul":
        return out.size * graph.tensors[op.inputs[0]].shape[-1]
    if op.kind == "lstm":  # 4 gates, each an input and a recurrent FC per output element
        w, r = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[5]]
        return 4 * out.size * (w.shape[1] + r.shape[1])
    if op.kind == "svdf":  # the feature and the time products
        b, f_i, f_m = out.shape[0], graph.tensors[op.inputs[1]].shape, graph.tensors[op.inputs[2]].shape
        return b * (f_i[0] * f_i[1] + f_m[0] * f_m[1])
    return 0


def graph_macs(graph: Graph) -> int:
    return sum(op_macs(graph, op) for op in graph.ops)
