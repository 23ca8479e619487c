"""Receptive-field analysis: which input window each output patch of a stage needs.

A *stage* is a run of graph ops computed patch by patch. For one patch of the stage's output
map, walking the ops backwards gives, for every tensor inside the stage, the box of it that
must be computed (the union of what all its consumers read), and for every op input the
exact window it reads plus the per-edge padding of that call:

- at an image border the call's padding is the layer's own padding (zero points, or for
  pooling cells that do not count); at an interior edge it is 0 and the halo is real data;
- conv2d, depthwise_conv2d, avg/max pooling (any kernel, stride, dilation, padding) and
  explicit `pad` ops (a 1x1 "kernel" whose padding rows become output rows) are spatial;
- elementwise ops (add, mul, relu, logistic, hard_swish, quantize) read the same box they
  write; a residual add inside the stage makes its skip tensor's box the union of both
  branches' needs.

Rows and columns are independent (a box is an interval of rows times an interval of
columns, and unions are bounding boxes), so the analysis runs per axis: `analyze_axis`
on the row bands, again on the column bands, and a patch is one row band x one column band.
That keeps a 8x8 grid as cheap as 8 + 8 one-dimensional walks.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.core.ir import Graph, Op

SPATIAL = frozenset({"conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d", "pad"})
ELEMENTWISE = frozenset({"add", "mul", "relu", "logistic", "hard_swish", "quantize"})
PATCHABLE = SPATIAL | ELEMENTWISE


@dataclass(frozen=True)
class Span:
    """A half-open interval [lo, hi) of rows (or columns) of a tensor's full map."""

    lo: int
    hi: int

    @property
    def n(self) -> int:
        return max(0, self.hi - self.lo)

    def union(self, other: Span | None) -> Span:
        if other is None or other.n == 0:
            return self
        if self.n == 0:
            return other
        return Span(min(self.lo, other.lo), max(self.hi, other.hi))


@dataclass(frozen=True)
class Window:
    """What one op input reads for one output span: the span inside the map, and the call's
    padding before and after it (virtual rows outside the map)."""

    span: Span
    pad_lo: int
    pad_hi: int


@dataclass(frozen=True)
class Geometry1D:
    """One axis of a layer: kernel extent, stride, dilation, padding before/after."""

    kernel: int
    stride: int
    dilation: int
    pad_lo: int
    pad_hi: int


def op_geometry(graph: Graph, op: Op, axis: int) -> Geometry1D:
    """Kernel geometry of a spatial op along axis 0 (rows) or 1 (columns)."""
    if op.kind in ("conv2d", "depthwise_conv2d"):
        k = graph.t(op.inputs[1]).shape[1 + axis]
        pads = op.attrs["pads"]
        return Geometry1D(k, op.attrs["stride"][axis], op.attrs["dilation"][axis], pads[2 * axis], pads[2 * axis + 1])
    if op.kind in ("avg_pool2d", "max_pool2d"):
        pads = op.attrs["pads"]
        return Geometry1D(op.attrs["kernel"][axis], op.attrs["stride"][axis], 1, pads[2 * axis], pads[2 * axis + 1])
    if op.kind == "pad":
        p = op.attrs["paddings"]
        lo, hi = p[len(p) - 3 + axis]
        return Geometry1D(1, 1, 1, int(lo), int(hi))
    if op.kind in ELEMENTWISE:
        return Geometry1D(1, 1, 1, 0, 0)
    raise ValueError(f"op {op.name} ({op.kind}) has no receptive-field geometry")


def input_window(geo: Geometry1D, out: Span, in_size: int) -> Window:
    """The input window one output span reads, clipped to the map, with its call padding.

    Output index o reads virtual input indices o*stride - pad_lo + k*dilation, k < kernel.
    For a `pad` op (kernel 1, stride 1) pad_lo/pad_hi are the padding rows inside the span.
    """
    if out.n == 0:
        return Window(Span(0, 0), 0, 0)
    v_lo = out.lo * geo.stride - geo.pad_lo
    v_hi = (out.hi - 1) * geo.stride - geo.pad_lo + (geo.kernel - 1) * geo.dilation + 1
    if v_lo >= in_size:  # the whole span reads padding after the map
        return Window(Span(in_size, in_size), 0, v_hi - v_lo)
    if v_hi <= 0:  # ... or before it
        return Window(Span(0, 0), v_hi - v_lo, 0)
    lo, hi = max(0, v_lo), min(in_size, v_hi)
    return Window(Span(lo, hi), lo - v_lo, v_hi - hi)


def patchable(graph: Graph, op: Op) -> bool:
    """Can this op run on a sub-window of its maps (NHWC, batch 1, no broadcast)?"""
    if op.kind not in PATCHABLE:
        return False
    y = graph.t(op.outputs[0])
    if len(y.shape) != 4 or y.shape[0] != 1:
        return False
    acts = [n for n in op.inputs if n and not graph.t(n).is_const]
    if op.kind in ("add", "mul"):
        return len(acts) == 2 and all(graph.t(n).shape == y.shape for n in acts)
    if op.kind == "pad":
        p = op.attrs["paddings"]
        if len(p) != 4 or tuple(p[0]) != (0, 0) or tuple(p[3]) != (0, 0):
            return False
    if op.kind == "depthwise_conv2d" and op.attrs.get("depth_multiplier", 1) < 1:
        return False
    return len(acts) == 1 and len(graph.t(acts[0]).shape) == 4


def activation_inputs(graph: Graph, op: Op) -> list[str]:
    return [n for n in op.inputs if n and not graph.t(n).is_const]


@dataclass
class AxisAnalysis:
    """One band of the stage output along one axis: the span of every stage tensor that is
    computed, and the window each (step, input position) reads."""

    spans: dict[str, Span]
    windows: dict[tuple[int, int], Window]


AxisPrep = list[tuple[int, str, bool, Geometry1D, list[tuple[int, str, int]]]]


def axis_prep(graph: Graph, steps: list[int], axis: int) -> AxisPrep:
    """What `analyze_axis` reads of each step, once per stage and axis (a search analyses many
    bands of one stage): (step, output, spatial?, geometry, [(input position, input, size)])
    in reverse step order."""
    out = []
    for i in reversed(steps):
        op = graph.ops[i]
        ins = [(k, x, graph.t(x).shape[1 + axis]) for k, x in enumerate(activation_inputs(graph, op))]
        out.append((i, op.outputs[0], op.kind in SPATIAL, op_geometry(graph, op, axis), ins))
    return out


def analyze_axis(
    graph: Graph, steps: list[int], output: str, axis: int, band: Span, prep: AxisPrep | None = None
) -> AxisAnalysis:
    """Walk the stage's ops (graph.ops[i] for i in steps, topological) backwards from the
    stage output band along `axis` (0 rows, 1 columns). prep: `axis_prep(graph, steps, axis)`."""
    spans: dict[str, Span] = {output: band}
    windows: dict[tuple[int, int], Window] = {}
    for i, y, spatial, geo, ins in prep if prep is not None else axis_prep(graph, steps, axis):
        out = spans.get(y, Span(0, 0))
        for k, x, size in ins:
            w = input_window(geo, out, size) if spatial else Window(out, 0, 0)
            windows[(i, k)] = w
            prev = spans.get(x)
            spans[x] = w.span.union(prev) if prev is not None else w.span
    return AxisAnalysis(spans, windows)


def bands(size: int, parts: int) -> list[Span]:
    """Split [0, size) into `parts` near-equal consecutive spans."""
    edges = [round(i * size / parts) for i in range(parts + 1)]
    return [Span(edges[i], edges[i + 1]) for i in range(parts)]


def receptive_field(graph: Graph, steps: list[int], output: str) -> tuple[int, int]:
    """Rows and columns of the stage input that one output pixel (in the interior) depends on."""
    out = graph.t(output).shape
    r = analyze_axis(graph, steps, output, 0, Span(out[1] // 2, out[1] // 2 + 1))
    c = analyze_axis(graph, steps, output, 1, Span(out[2] // 2, out[2] // 2 + 1))
    first = activation_inputs(graph, graph.ops[steps[0]])[0]
    return r.spans[first].n, c.spans[first].n
