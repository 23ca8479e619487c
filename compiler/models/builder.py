"""Build int8 CNNs in code: float layers, calibration, TFLite-style post-training quantization.

    b = GraphBuilder("demo", seed=0)
    x = b.input((1, 48, 48, 3))
    y = b.conv2d(x, 16, kernel=3, stride=2, activation="relu6")
    y = b.depthwise_conv2d(y, kernel=3)
    y = b.softmax(b.fully_connected(b.flatten(b.mean(y)), 10))
    b.output(y)
    graph = b.build()                    # an int8 `compiler.core.ir.Graph`

Layers hold float32 weights (given, or He-initialised from the builder's seeded generator).
`build()` runs the float graph on calibration inputs (given, or seeded uniform [-1, 1]),
records every tensor's range and quantizes as the TFLite converter does:
- weights: per-channel symmetric int8 (conv axis 0, depthwise axis 3); fully-connected
  per-tensor unless `fc_per_channel=True`; bias int32 with scale in_scale * w_scale, zp 0;
- activations: per-tensor asymmetric int8 from the calibrated [min, max] (widened to hold 0);
- softmax and logistic outputs: scale 1/256, zero point -128;
- ops that move int8 values without rescaling share one quantization between input and output
  (max/avg pool, pad, reshape, relu6, concat inputs and output);
- quantize (int8 -> int8) gets an output scale of its own (`range_scale` times the input's range).

Randomly initialised conv/depthwise/fc layers are normalised on the first calibration batch
(BatchNorm folding with batch statistics, random gamma/beta drawn at construction), so deep
random networks keep activations in a sane range. Everything is deterministic in `seed`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.core.ir import ACTIVATIONS, Graph, Op, QParams, Tensor
from compiler.frontend.tflite import same_pads
from compiler.golden.float_ref import activation_float as _act_float


class BuilderError(ValueError):
    """A layer was given inconsistent shapes or arguments."""


@dataclass
class _Node:
    kind: str
    name: str
    inputs: list[str]
    attrs: dict[str, Any]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    fold: tuple[np.ndarray, np.ndarray] | None = None  # (gamma, beta) of a pending BN fold
    per_channel: bool = True


_TIED = ("max_pool2d", "avg_pool2d", "pad", "reshape", "relu6", "concat")
_FIXED = ("softmax", "logistic")


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


def _out_hw(
    in_hw: Sequence[int], k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], padding: str
) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    if padding == "same":
        pads = same_pads(tuple(in_hw), k, s, d)
        return ((in_hw[0] + s[0] - 1) // s[0], (in_hw[1] + s[1] - 1) // s[1]), pads
    if padding == "valid":
        oh = (in_hw[0] - ((k[0] - 1) * d[0] + 1)) // s[0] + 1
        ow = (in_hw[1] - ((k[1] - 1) * d[1] + 1)) // s[1] + 1
        if oh < 1 or ow < 1:
            raise BuilderError(f"VALID window {k} (dilation {d}) does not fit input {tuple(in_hw)}")
        return (oh, ow), (0, 0, 0, 0)
    raise BuilderError(f"padding must be 'same' or 'valid', not {padding!r}")


class GraphBuilder:
    """Constructs a float CNN layer by layer; `build()` returns the quantized int8 IR graph."""

    def __init__(self, name: str = "model", seed: int = 0, bn_fold: bool = True) -> None:
        self.name = name
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.bn_fold = bn_fold
        self.nodes: list[_Node] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.fixed: set[str] = set()
        self._count: dict[str, int] = {}

    # -- helpers --------------------------------------------------------------------------
    def _name(self, kind: str, name: str | None) -> str:
        if name is None:
            i = self._count.get(kind, 0)
            self._count[kind] = i + 1
            name = f"{kind}_{i}"
        if name in self.shapes:
            raise BuilderError(f"duplicate layer name {name!r}")
        return name

    def _add(self, node: _Node, shape: Sequence[int]) -> str:
        self.nodes.append(node)
        self.shapes[node.name] = tuple(int(d) for d in shape)
        tied_to_fixed = node.kind in _TIED and node.kind != "concat" and node.inputs[0] in self.fixed
        if node.kind in _FIXED or tied_to_fixed:
            self.fixed.add(node.name)
        return node.name

    def shape(self, x: str) -> tuple[int, ...]:
        return self.shapes[x]

    def _check_act(self, activation: str) -> None:
        if activation not in ACTIVATIONS:
            raise BuilderError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")

    def _fold_params(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        gamma = self.rng.uniform(0.6, 1.4, channels).astype(np.float32)
        beta = self.rng.normal(0.0, 0.25, channels).astype(np.float32)
        return gamma, beta

    # -- layers ---------------------------------------------------------------------------
    def input(self, shape: Sequence[int], name: str | None = None) -> str:
        name = self._name("input", name)
        self.shapes[name] = tuple(int(d) for d in shape)
        self.inputs.append(name)
        return name

    def constant(self, value: np.ndarray, name: str | None = None) -> str:
        """A float constant operand (quantized per-tensor), e.g. for a broadcast add/mul."""
        name = self._name("const", name)
        arr = np.asarray(value, dtype=np.float32)
        self.shapes[name] = arr.shape
        self.consts[name] = arr
        return name

    def conv2d(
        self,
        x: str,
        filters: int,
        kernel: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: str = "same",
        dilation: int | Sequence[int] = 1,
        activation: str = "none",
        weights: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        name: str | None = None,
    ) -> str:
        """2-D convolution; `weights` are OHWI floats, `bias` [filters]."""
        self._check_act(activation)
        n, h, w, c = self.shape(x)
        k, s, d = _pair(kernel), _pair(stride), _pair(dilation)
        (oh, ow), pads = _out_hw((h, w), k, s, d, padding)
        node = _Node(
            "conv2d",
            self._name("conv", name),
            [x],
            {"stride": s, "dilation": d, "pads": pads, "activation": activation},
        )
        if weights is None:
            fan_in = k[0] * k[1] * c
            weights = self.rng.normal(0, math.sqrt(2.0 / fan_in), (filters, k[0], k[1], c))
            if self.bn_fold:
                node.fold = self._fold_params(filters)
        weights = np.asarray(weights, np.float32)
        if weights.shape != (filters, k[0], k[1], c):
            raise BuilderError(f"conv2d weights must be {(filters, k[0], k[1], c)}, got {weights.shape}")
        node.params["w"] = weights
        node.params["b"] = np.zeros(filters, np.float32) if bias is None else np.asarray(bias, np.float32)
        return self._add(node, (n, oh, ow, filters))

    def depthwise_conv2d(
        self,
        x: str,
        kernel: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: str = "same",
        dilation: int | Sequence[int] = 1,
        depth_multiplier: int = 1,
        activation: str = "none",
        weights: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        name: str | None = None,
    ) -> str:
        """Depthwise convolution; `weights` are 1HW(C*multiplier) floats."""
        self._check_act(activation)
        n, h, w, c = self.shape(x)
        k, s, d = _pair(kernel), _pair(stride), _pair(dilation)
        (oh, ow), pads = _out_hw((h, w), k, s, d, padding)
        oc = c * depth_multiplier
        attrs = {
            "stride": s,
            "dilation": d,
            "pads": pads,
            "activation": activation,
            "depth_multiplier": depth_multiplier,
        }
        node = _Node("depthwise_conv2d", self._name("dwconv", name), [x], attrs)
        if weights is None:
            weights = self.rng.normal(0, math.sqrt(2.0 / (k[0] * k[1])), (1, k[0], k[1], oc))
            if self.bn_fold:
                node.fold = self._fold_params(oc)
        weights = np.asarray(weights, np.float32)
        if weights.shape != (1, k[0], k[1], oc):
            raise BuilderError(f"depthwise weights must be {(1, k[0], k[1], oc)}, got {weights.shape}")
        node.params["w"] = weights
        node.params["b"] = np.zeros(oc, np.float32) if bias is None else np.asarray(bias, np.float32)
        return self._add(node, (n, oh, ow, oc))

    def fully_connected(
        self,
        x: str,
        units: int,
        activation: str = "none",
        weights: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        per_channel: bool = False,
        name: str | None = None,
    ) -> str:
        """Dense layer over the flattened input; `weights` are [units, in] floats."""
        self._check_act(activation)
        shape = self.shape(x)
        n, fan_in = shape[0], int(np.prod(shape[1:]))
        node = _Node("fully_connected", self._name("fc", name), [x], {"activation": activation})
        node.per_channel = per_channel
        if weights is None:
            weights = self.rng.normal(0, math.sqrt(2.0 / fan_in), (units, fan_in))
            if self.bn_fold:
                node.fold = (np.ones(1, np.float32), np.zeros(1, np.float32))
        weights = np.asarray(weights, np.float32)
        if weights.shape != (units, fan_in):
            raise BuilderError(f"fully_connected weights must be {(units, fan_in)}, got {weights.shape}")
        node.params["w"] = weights
        node.params["b"] = np.zeros(units, np.float32) if bias is None else np.asarray(bias, np.float32)
        return self._add(node, (n, units))

    def _binary(self, kind: str, a: str, b: str, activation: str, name: str | None) -> str:
        self._check_act(activation)
        try:
            shape = np.broadcast_shapes(self.shape(a), self.shape(b))
        except ValueError:
            raise BuilderError(
                f"{kind}: shapes {self.shape(a)} and {self.shape(b)} do not broadcast"
            ) from None
        return self._add(_Node(kind, self._name(kind, name), [a, b], {"activation": activation}), shape)

    def add(self, a: str, b: str, activation: str = "none", name: str | None = None) -> str:
        return self._binary("add", a, b, activation, name)

    def mul(self, a: str, b: str, activation: str = "none", name: str | None = None) -> str:
        return self._binary("mul", a, b, activation, name)

    def _pool(self, kind: str, x: str, kernel, stride, padding: str, activation: str, name) -> str:
        self._check_act(activation)
        n, h, w, c = self.shape(x)
        k = _pair(kernel)
        s = k if stride is None else _pair(stride)
        (oh, ow), pads = _out_hw((h, w), k, s, (1, 1), padding)
        attrs = {"kernel": k, "stride": s, "pads": pads, "activation": activation}
        return self._add(_Node(kind, self._name(kind.replace("2d", ""), name), [x], attrs), (n, oh, ow, c))

    def avg_pool2d(
        self,
        x: str,
        kernel=2,
        stride=None,
        padding: str = "valid",
        activation: str = "none",
        name: str | None = None,
    ) -> str:
        return self._pool("avg_pool2d", x, kernel, stride, padding, activation, name)

    def max_pool2d(
        self,
        x: str,
        kernel=2,
        stride=None,
        padding: str = "valid",
        activation: str = "none",
        name: str | None = None,
    ) -> str:
        return self._pool("max_pool2d", x, kernel, stride, padding, activation, name)

    def global_avg_pool(self, x: str, name: str | None = None) -> str:
        """Average over H and W with an AVERAGE_POOL_2D of the whole map (output N,1,1,C)."""
        return self.avg_pool2d(x, kernel=self.shape(x)[1:3], stride=1, name=name)

    def mean(
        self, x: str, axes: Sequence[int] = (1, 2), keep_dims: bool = False, name: str | None = None
    ) -> str:
        shape = self.shape(x)
        axes = tuple(sorted({int(a) % len(shape) for a in axes}))
        if 0 in axes:
            raise BuilderError("mean over the batch axis is not supported")
        out = tuple(1 if i in axes else d for i, d in enumerate(shape) if keep_dims or i not in axes)
        return self._add(
            _Node("mean", self._name("mean", name), [x], {"axes": axes, "keep_dims": keep_dims}), out
        )

    def pad(self, x: str, paddings: Sequence[Sequence[int]], name: str | None = None) -> str:
        shape = self.shape(x)
        pp = tuple((int(a), int(b)) for a, b in paddings)
        if len(pp) != len(shape) or pp[0] != (0, 0):
            raise BuilderError(f"pad: need one (before, after) per axis of {shape} and no batch padding")
        out = tuple(d + a + b for d, (a, b) in zip(shape, pp, strict=True))
        return self._add(_Node("pad", self._name("pad", name), [x], {"paddings": pp}), out)

    def reshape(self, x: str, shape: Sequence[int], name: str | None = None) -> str:
        src = self.shape(x)
        shape = list(shape)
        if -1 in shape:
            i = shape.index(-1)
            rest = int(np.prod([d for j, d in enumerate(shape) if j != i]))
            shape[i] = int(np.prod(src)) // rest
        if int(np.prod(shape)) != int(np.prod(src)) or shape[0] != src[0]:
            raise BuilderError(f"reshape: cannot reshape {src} to {tuple(shape)} (batch must stay first)")
        return self._add(_Node("reshape", self._name("reshape", name), [x], {}), shape)

    def flatten(self, x: str, name: str | None = None) -> str:
        shape = self.shape(x)
        return self.reshape(x, (shape[0], int(np.prod(shape[1:]))), name=name)

    def concat(self, xs: Sequence[str], axis: int = -1, name: str | None = None) -> str:
        shapes = [self.shape(x) for x in xs]
        rank = len(shapes[0])
        axis = axis % rank
        for s in shapes:
            if len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != axis):
                raise BuilderError(f"concat: shapes {shapes} differ outside axis {axis}")
        # inputs with a fixed quantization (softmax/logistic outputs) cannot share the output's:
        # requantize them first, as the TFLite converter does
        ins = [self.quantize(x) if x in self.fixed else x for x in xs]
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return self._add(
            _Node("concat", self._name("concat", name), ins, {"axis": axis, "activation": "none"}), out
        )

    def softmax(self, x: str, beta: float = 1.0, name: str | None = None) -> str:
        return self._add(
            _Node("softmax", self._name("softmax", name), [x], {"beta": float(beta)}), self.shape(x)
        )

    def logistic(self, x: str, name: str | None = None) -> str:
        return self._add(_Node("logistic", self._name("logistic", name), [x], {}), self.shape(x))

    def hard_swish(self, x: str, name: str | None = None) -> str:
        return self._add(_Node("hard_swish", self._name("hard_swish", name), [x], {}), self.shape(x))

    def relu(self, x: str, name: str | None = None) -> str:
        return self._add(
            _Node("relu", self._name("relu", name), [x], {"min": 0.0, "max": float("inf")}), self.shape(x)
        )

    def relu6(self, x: str, name: str | None = None) -> str:
        return self._add(
            _Node("relu6", self._name("relu6", name), [x], {"min": 0.0, "max": 6.0}), self.shape(x)
        )

    def quantize(self, x: str, range_scale: float = 1.5, name: str | None = None) -> str:
        """An int8 -> int8 requantization to a range `range_scale` times the input's."""
        return self._add(
            _Node("quantize", self._name("quantize", name), [x], {"range_scale": range_scale}), self.shape(x)
        )

    def output(self, *xs: str) -> None:
        for x in xs:
            if x not in self.shapes:
                raise BuilderError(f"unknown tensor {x!r}")
            self.outputs.append(x)

    # -- float execution ------------------------------------------------------------------
    def calibration_inputs(self, n: int = 4) -> list[np.ndarray]:
        """Seeded uniform [-1, 1] inputs, one batch of `n` per graph input."""
        rng = np.random.default_rng(self.seed + 1)
        return [rng.uniform(-1, 1, (n,) + self.shapes[x][1:]).astype(np.float32) for x in self.inputs]

    def run_float(self, inputs: Sequence[np.ndarray], fold: bool = False) -> dict[str, np.ndarray]:
        """Run the float graph on a batch; returns every tensor. `fold` applies pending BN folds."""
        env: dict[str, np.ndarray] = {k: v for k, v in self.consts.items()}
        for name, arr in zip(self.inputs, inputs, strict=True):
            arr = np.asarray(arr, np.float32)
            if arr.shape[1:] != self.shapes[name][1:]:
                raise BuilderError(f"input {name!r}: expected (N,)+{self.shapes[name][1:]}, got {arr.shape}")
            env[name] = arr
        for node in self.nodes:
            env[node.name] = _FLOAT[node.kind](self, node, [env[i] for i in node.inputs], fold)
        return env

    # -- quantization ---------------------------------------------------------------------
    def build(
        self,
        calib: Sequence[np.ndarray] | np.ndarray | None = None,
        n_calib: int = 4,
        input_range: tuple[float, float] | None = None,
    ) -> Graph:
        """Calibrate on `calib` (or `n_calib` seeded random inputs) and return the int8 graph."""
        if not self.outputs:
            raise BuilderError("no outputs: call output() first")
        if calib is None:
            calib = self.calibration_inputs(n_calib)
        elif isinstance(calib, np.ndarray):
            calib = [calib]
        env = self.run_float(calib, fold=True)
        ranges: dict[str, tuple[float, float]] = {}
        for name, arr in env.items():
            if name in self.consts:
                continue
            ranges[name] = (float(_snap(arr.min(), "down")), float(_snap(arr.max(), "up")))
        if input_range is not None:
            for name in self.inputs:
                ranges[name] = (float(input_range[0]), float(input_range[1]))

        # tensors that must share one quantization (int8 data moved without rescaling)
        parent = {n: n for n in ranges}

        def find(a: str) -> str:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for node in self.nodes:
            if node.kind in _TIED:
                for i in node.inputs:
                    if i in parent:
                        parent[find(i)] = find(node.name)
        group_range: dict[str, tuple[float, float]] = {}
        for n, (lo, hi) in ranges.items():
            r = find(n)
            glo, ghi = group_range.get(r, (lo, hi))
            group_range[r] = (min(glo, lo), max(ghi, hi))

        quant: dict[str, QParams] = {}
        fixed_group = {find(n) for n in self.fixed}
        for n in ranges:
            r = find(n)
            quant[n] = (
                QParams(np.float32(1.0 / 256), -128) if r in fixed_group else _act_quant(*group_range[r])
            )
        group_size: dict[str, int] = {}
        for n in ranges:
            group_size[find(n)] = group_size.get(find(n), 0) + 1
        for node in self.nodes:
            # a requantize on its own chooses a new range; inside a tied group it takes the group's
            if node.kind == "quantize" and group_size[find(node.name)] == 1:
                src = quant[node.inputs[0]]
                lo = float(src.scale[0]) * (-128 - src.zp)
                hi = float(src.scale[0]) * (127 - src.zp)
                f = float(node.attrs["range_scale"])
                quant[node.name] = _act_quant(lo * f, hi * f)
        return self._emit(quant)

    def _emit(self, quant: dict[str, QParams]) -> Graph:
        g = Graph(name=self.name)
        for name in self.inputs:
            g.add_tensor(Tensor(name, self.shapes[name], "int8", quant[name]))
        for name, arr in self.consts.items():
            q = _act_quant(float(arr.min()), float(arr.max()))
            data = np.clip(np.round(arr / q.s) + q.zp, -128, 127).astype(np.int8)
            g.add_tensor(Tensor(name, arr.shape, "int8", q, data))
        for node in self.nodes:
            y = node.name
            ins = list(node.inputs)
            attrs = dict(node.attrs)
            kind = node.kind
            if kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
                w, b = node.params["w"], node.params["b"]
                axis = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": 0}[kind]
                wq, ws = _weight_quant(w, axis, per_channel=node.per_channel)
                in_s = np.float32(quant[ins[0]].scale[0])
                bs = (in_s * ws).astype(np.float32)
                bq = np.round(b.astype(np.float64) / np.broadcast_to(bs, b.shape)).astype(np.int64)
                bq = np.clip(bq, -(1 << 31) + 1, (1 << 31) - 1).astype(np.int32)
                g.add_tensor(Tensor(f"{y}_w", w.shape, "int8", QParams(ws, np.zeros(ws.size), axis), wq))
                g.add_tensor(Tensor(f"{y}_b", b.shape, "int32", QParams(bs, np.zeros(bs.size), 0), bq))
                ins += [f"{y}_w", f"{y}_b"]
            elif kind == "relu6":
                kind = "relu"
            elif kind == "quantize":
                attrs = {}
            g.add_tensor(Tensor(y, self.shapes[y], "int8", quant[y]))
            g.add_op(Op(kind, y, ins, [y], attrs))
        g.inputs = list(self.inputs)
        g.outputs = list(self.outputs)
        g.verify()
        return g


def _act_quant(lo: float, hi: float) -> QParams:
    """TFLite-style asymmetric int8 quantization of the real range [lo, hi] (widened to hold 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-6:
        hi = lo + 1e-6
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-128 - lo / float(scale)), -128, 127))
    return QParams(scale, zp)


def _snap(x: np.ndarray | float, mode: str = "nearest", bits: int = 8) -> np.ndarray:
    """Round to `bits` significant bits (toward -inf/+inf for "down"/"up").

    Calibration statistics pass through BLAS, whose last bits vary between machines; snapping
    them before they reach scales and biases makes a model's bytes the same everywhere (barring
    a value within an ulp of a grid point)."""
    m, e = np.frexp(np.asarray(x, np.float64))
    f = {"nearest": np.round, "up": np.ceil, "down": np.floor}[mode]
    return np.ldexp(f(m * (1 << bits)) / (1 << bits), e).astype(np.float32)


def _weight_quant(w: np.ndarray, axis: int, per_channel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights (range [-127, 127]) with per-channel scales along `axis`."""
    if per_channel:
        red = tuple(i for i in range(w.ndim) if i != axis)
        m = np.abs(w).max(axis=red)
    else:
        m = np.atleast_1d(np.abs(w).max())
    scale = np.where(m > 0, m / 127.0, 1.0 / 127.0).astype(np.float32)
    shape = [1] * w.ndim
    if per_channel:
        shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


# -- float kernels (NHWC, float32) ------------------------------------------------------------


def _pad_nhwc(x: np.ndarray, pads: Sequence[int], value: float = 0.0) -> np.ndarray:
    t, b, left, r = pads
    if t == b == left == r == 0:
        return x
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def _taps(x: np.ndarray, attrs: dict, k: tuple[int, int], out_hw: tuple[int, int]):
    """Yield (i, j, strided slice of the padded input) for every kernel tap."""
    s, d = attrs["stride"], attrs.get("dilation", (1, 1))
    for i in range(k[0]):
        for j in range(k[1]):
            h0, w0 = i * d[0], j * d[1]
            yield (
                i,
                j,
                x[
                    :,
                    h0 : h0 + (out_hw[0] - 1) * s[0] + 1 : s[0],
                    w0 : w0 + (out_hw[1] - 1) * s[1] + 1 : s[1],
                ],
            )


def _apply_fold(node: _Node, z: np.ndarray, fold: bool) -> np.ndarray:
    """Fold a BatchNorm with the batch's statistics into the layer's weights (once)."""
    if not fold or node.fold is None:
        return z
    gamma, beta = node.fold
    red = tuple(range(z.ndim - 1))
    if node.kind == "fully_connected":
        mu = np.zeros(z.shape[-1], np.float32)
        sd = np.full(z.shape[-1], float(z.std()) + 1e-5, np.float32)
    else:
        mu = z.mean(axis=red)
        sd = z.std(axis=red) + 1e-3
    mu, sd = _snap(mu), _snap(sd)
    a = (gamma / sd).astype(np.float32)
    w = node.params["w"]
    if node.kind == "conv2d":
        w = w * a[:, None, None, None]
    elif node.kind == "depthwise_conv2d":
        w = w * a
    else:
        w = w * a[:, None]
    node.params["w"] = w.astype(np.float32)
    node.params["b"] = ((node.params["b"] - mu) * a + beta).astype(np.float32)
    node.fold = None
    return ((z - mu) * a + beta).astype(np.float32)


def _f_conv2d(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    x = _pad_nhwc(ins[0], node.attrs["pads"])
    w = node.params["w"]
    out_hw = b.shapes[node.name][1:3]
    acc = np.zeros((x.shape[0],) + tuple(out_hw) + (w.shape[0],), np.float32)
    for i, j, sl in _taps(x, node.attrs, w.shape[1:3], out_hw):
        acc += sl @ w[:, i, j, :].T
    z = _apply_fold(node, acc + node.params["b"], fold)
    return _act_float(z, node.attrs["activation"])


def _f_depthwise(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    x = _pad_nhwc(ins[0], node.attrs["pads"])
    m = node.attrs["depth_multiplier"]
    if m > 1:
        x = np.repeat(x, m, axis=3)
    w = node.params["w"]
    out_hw = b.shapes[node.name][1:3]
    acc = np.zeros((x.shape[0],) + tuple(out_hw) + (w.shape[3],), np.float32)
    for i, j, sl in _taps(x, node.attrs, w.shape[1:3], out_hw):
        acc += sl * w[0, i, j]
    z = _apply_fold(node, acc + node.params["b"], fold)
    return _act_float(z, node.attrs["activation"])


def _f_fc(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    x = ins[0].reshape(ins[0].shape[0], -1)
    z = x @ node.params["w"].T + node.params["b"]
    z = _apply_fold(node, z, fold)
    return _act_float(z, node.attrs["activation"])


def _f_pool(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    a = node.attrs
    out_hw = b.shapes[node.name][1:3]
    if node.kind == "max_pool2d":
        x = _pad_nhwc(ins[0], a["pads"], -np.inf)
        out = None
        for _, _, sl in _taps(x, a, a["kernel"], out_hw):
            out = sl.copy() if out is None else np.maximum(out, sl)
    else:
        x = _pad_nhwc(ins[0], a["pads"])
        ones = _pad_nhwc(np.ones((1,) + ins[0].shape[1:3] + (1,), np.float32), a["pads"])
        out = np.zeros((x.shape[0],) + tuple(out_hw) + (x.shape[3],), np.float32)
        cnt = np.zeros((1,) + tuple(out_hw) + (1,), np.float32)
        for (_, _, sl), (_, _, one) in zip(
            _taps(x, a, a["kernel"], out_hw), _taps(ones, a, a["kernel"], out_hw), strict=True
        ):
            out += sl
            cnt += one
        out = out / cnt
    return _act_float(out, a["activation"])


def _f_binary(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    z = ins[0] + ins[1] if node.kind == "add" else ins[0] * ins[1]
    return _act_float(z.astype(np.float32), node.attrs["activation"])


def _f_mean(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    return ins[0].mean(axis=node.attrs["axes"], keepdims=node.attrs["keep_dims"])


def _f_pad(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    return np.pad(ins[0], node.attrs["paddings"])


def _f_reshape(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    return ins[0].reshape((ins[0].shape[0],) + b.shapes[node.name][1:])


def _f_concat(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    return np.concatenate(ins, axis=node.attrs["axis"])


def _f_softmax(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    z = ins[0] * node.attrs["beta"]
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _f_logistic(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-ins[0]))


def _f_hard_swish(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    x = ins[0]
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _f_relu(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    return np.clip(ins[0], node.attrs["min"], node.attrs["max"])


def _f_identity(b: GraphBuilder, node: _Node, ins: list[np.ndarray], fold: bool) -> np.ndarray:
    return ins[0]


_FLOAT = {
    "conv2d": _f_conv2d,
    "depthwise_conv2d": _f_depthwise,
    "fully_connected": _f_fc,
    "add": _f_binary,
    "mul": _f_binary,
    "avg_pool2d": _f_pool,
    "max_pool2d": _f_pool,
    "mean": _f_mean,
    "pad": _f_pad,
    "reshape": _f_reshape,
    "concat": _f_concat,
    "softmax": _f_softmax,
    "logistic": _f_logistic,
    "hard_swish": _f_hard_swish,
    "relu": _f_relu,
    "relu6": _f_relu,
    "quantize": _f_identity,
}


# -- model factories --------------------------------------------------------------------------


def make_divisible(v: float, divisor: int = 8) -> int:
    """MobileNetV2's channel rounding (Sandler et al. 2018, reference code `_make_divisible`): the
    nearest multiple of `divisor`, at least `divisor`, never below 90 % of `v`."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def mobilenet_v1(
    width: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    n_calib: int = 2,
    channels: int = 3,
) -> Graph:
    """MobileNetV1 (13 depthwise-separable blocks, relu6), random seeded weights."""
    b = GraphBuilder(f"mobilenet_v1_{width:g}_{resolution}", seed=seed)
    x = b.input((1, resolution, resolution, channels))
    y = b.conv2d(x, make_divisible(32 * width), 3, stride=2, activation="relu6")
    cfg = (
        [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    )
    for c, s in cfg:
        y = b.depthwise_conv2d(y, 3, stride=s, activation="relu6")
        y = b.conv2d(y, make_divisible(c * width), 1, activation="relu6")
    y = b.global_avg_pool(y)
    y = b.fully_connected(b.flatten(y), num_classes)
    b.output(b.softmax(y))
    return b.build(n_calib=n_calib)


def mobilenet_v2(
    width: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    n_calib: int = 2,
    channels: int = 3,
) -> Graph:
    """MobileNetV2 (inverted residuals with linear bottlenecks and adds), random seeded weights."""
    b = GraphBuilder(f"mobilenet_v2_{width:g}_{resolution}", seed=seed)
    x = b.input((1, resolution, resolution, channels))
    c_in = make_divisible(32 * width)
    y = b.conv2d(x, c_in, 3, stride=2, activation="relu6")
    settings = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    for t, c, n, s in settings:
        c_out = make_divisible(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            h = y
            if t != 1:
                h = b.conv2d(h, c_in * t, 1, activation="relu6")
            h = b.depthwise_conv2d(h, 3, stride=stride, activation="relu6")
            h = b.conv2d(h, c_out, 1)
            y = b.add(y, h) if stride == 1 and c_in == c_out else h
            c_in = c_out
    last = make_divisible(1280 * width) if width > 1.0 else 1280
    y = b.conv2d(y, last, 1, activation="relu6")
    y = b.mean(y, axes=(1, 2))
    y = b.fully_connected(y, num_classes)
    b.output(b.softmax(y))
    return b.build(n_calib=n_calib)


def tiny_cnn(seed: int = 0, num_classes: int = 10, n_calib: int = 8) -> Graph:
    """The demo model: a small MobileNet-style CNN on 48x48x3 (one residual add, avg pool, FC, softmax)."""
    b = GraphBuilder("tiny_cnn", seed=seed)
    x = b.input((1, 48, 48, 3), name="input")
    y = b.conv2d(x, 16, 3, stride=2, activation="relu6", name="stem")  # 24x24x16
    y = b.depthwise_conv2d(y, 3, activation="relu6", name="dw1")
    y = b.conv2d(y, 24, 1, activation="relu6", name="pw1")  # 24x24x24
    y = b.depthwise_conv2d(y, 3, stride=2, activation="relu6", name="dw2")
    y = b.conv2d(y, 32, 1, activation="relu6", name="pw2")  # 12x12x32
    h = b.conv2d(y, 64, 1, activation="relu6", name="expand3")  # 12x12x64
    h = b.depthwise_conv2d(h, 3, activation="relu6", name="dw3")
    h = b.conv2d(h, 32, 1, name="project3")
    y = b.add(y, h, name="residual")  # 12x12x32
    y = b.depthwise_conv2d(y, 3, stride=2, activation="relu6", name="dw4")
    y = b.conv2d(y, 64, 1, activation="relu6", name="pw4")  # 6x6x64
    y = b.depthwise_conv2d(y, 3, activation="relu6", name="dw5")
    y = b.conv2d(y, 128, 1, activation="relu6", name="pw5")  # 6x6x128
    y = b.global_avg_pool(y, name="pool")  # 1x1x128
    y = b.flatten(y, name="flatten")
    y = b.fully_connected(y, num_classes, name="fc")
    b.output(b.softmax(y, name="softmax"))
    return b.build(n_calib=n_calib)
