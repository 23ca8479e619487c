"""Patch-based planning (MCUNetV2): run the first stage of a CNN patch by patch.

The stage is graph.ops[0..split]. Its output map is cut into an n x m grid; for each patch
the receptive-field analysis (`compiler.schedule.receptive`) gives the box of every stage
tensor that must be computed and every op's input window and per-edge padding. The patch's
intermediate tensors live in per-patch buffers (sized for the largest patch, reused by every
patch); the stage reads its input map in place (no window copy) and writes each output patch
straight into the stage's full output map. The rest of the network runs layer by layer.

One arena holds it all, placed by the layer planner's first-fit machinery: within a patch
the stage's buffers have layer-by-layer lifetimes (steps 0..split), the stage input and
output maps are live across the whole stage, and the tail keeps its layer lifetimes.
Depthwise and elementwise ops overwrite inputs that die at them (in the stage and the
tail), so the per-patch buffers shrink further.

`plan_patch(graph, split, grid)` builds one plan; `patch_candidates(graph, io)` searches
split point and grid (n x m, not only square) and returns the plans on the
(peak SRAM, MACs) Pareto front; `select.choose_plan` picks among them and the layer plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compiler.core.ir import Graph, op_macs
from compiler.schedule.inplace import (
    ELEMENTWISE_IN_PLACE,
    apply_in_place,
    dw_in_place_ok,
    dw_ring_bytes,
)
from compiler.schedule.layer import ScratchFn, build_buffers, lower_bound, place
from compiler.schedule.plan import Buffer, Plan, Stage, Step, align, live_bytes, plan_cost, plan_peak
from compiler.schedule.receptive import (
    SPATIAL,
    AxisAnalysis,
    Span,
    Window,
    activation_inputs,
    analyze_axis,
    axis_prep,
    bands,
    input_window,
    op_geometry,
    patchable,
)

MAX_GRID = 8  # largest patch count per axis the search tries
MAX_GRID_SECOND = 4  # ... for a second stage
MAX_SECOND_OPS = 16  # longest second stage (ops) the search tries
CALL_OVERHEAD = 400  # MAC-equivalents per kernel call or cache copy (as compiler.schedule.token)
HALO_CACHE = True  # patch_candidates' default: also try every single-stage plan with column caches


@dataclass(frozen=True)
class Operand:
    """A window of one tensor as a kernel sees it: base (region + byte offset of its first
    element) and an mt_view (h, w, c, row_stride, col_stride in elements)."""

    tensor: str
    region: str  # "arena" | "input" | "output"
    offset: int
    h: int
    w: int
    c: int
    row_stride: int
    col_stride: int


@dataclass(frozen=True)
class PatchCall:
    """One kernel call of one patch: its activation inputs, output and per-edge padding."""

    step: int
    inputs: tuple[Operand, ...]
    output: Operand
    pads: tuple[int, int, int, int]  # top, bottom, left, right of this call
    in_place: bool
    macs: int
    # halo cache (columns): after the call, copy the output's cached columns in (cache ->
    # window), then the columns the next patch shares out (window -> cache); (src, dst)
    load: tuple[Operand, Operand] | None = None
    save: tuple[Operand, Operand] | None = None


@dataclass
class PatchStage(Stage):
    """Graph ops steps[0..-1] run patch by patch: their output map cut into an n x m `grid`."""

    output: str
    grid: tuple[int, int]
    rows: list[AxisAnalysis]  # one per row band of the stage output
    cols: list[AxisAnalysis]  # one per column band
    alias: dict[str, tuple[int, int]]  # in-place: tensor -> (step, input position) it overwrites
    inputs: set[str]  # stage input maps (read in place)
    scratch: dict[int, Buffer] = field(default_factory=dict)  # step -> in-place ring
    halo: dict[str, tuple[Buffer, int]] = field(default_factory=dict)  # column cache: tensor -> (buffer, cols)
    _patches: list[list[PatchCall]] | None = None

    @property
    def row_bands(self) -> list[Span]:
        return [a.spans[self.output] for a in self.rows]

    @property
    def col_bands(self) -> list[Span]:
        return [a.spans[self.output] for a in self.cols]

    @property
    def n_patches(self) -> int:
        return len(self.rows) * len(self.cols)

    def describe(self) -> str:
        halo = ", column halo cache" if self.halo else ""
        return f"patch stage: steps {self.steps[0]}..{self.steps[-1]} on a {self.grid[0]}x{self.grid[1]} grid{halo}"


@dataclass
class PatchPlan(Plan):
    """A plan with patch stages (`stages`: PatchStage, in step order, disjoint); every step of a
    stage has `Step.stage` set to it."""

    @property
    def patch_stages(self) -> list[PatchStage]:
        return [st for st in self.stages if isinstance(st, PatchStage)]

    @property
    def stage(self) -> PatchStage | None:
        """The first stage (the one that reads the graph input)."""
        stages = self.patch_stages
        return stages[0] if stages else None

    def patches(self, k: int = 0) -> list[list[PatchCall]]:
        """[patch (row-major)][stage step] kernel calls of stage k with their buffers' final offsets."""
        st = self.patch_stages[k]
        if st._patches is None:
            cols = [None, *st.cols, None]
            st._patches = [
                _patch_calls(self.graph, st, r, q, self.tensor_buffer, cols[j], cols[j + 2])
                for r in st.rows
                for j, q in enumerate(st.cols)
            ]
        return st._patches


def stage_ok(graph: Graph, split: int, start: int = 0) -> bool:
    """Can graph.ops[start..split] run patch by patch with ops[split]'s output as the only
    tensor that leaves the stage? (Its inputs are full maps computed before `start`.)"""
    if not 0 <= start <= split < len(graph.ops):
        return False
    ops = graph.ops[start : split + 1]
    if not all(patchable(graph, op) for op in ops):
        return False
    out = ops[-1].outputs[0]
    if out in graph.outputs or len(graph.t(out).shape) != 4:
        return False
    if not any(out in op.inputs for op in graph.ops[split + 1 :]):
        return False
    for op in ops[:-1]:
        y = op.outputs[0]
        if y in graph.outputs or any(y in later.inputs for later in graph.ops[split + 1 :]):
            return False
    return True


def valid_splits(graph: Graph, start: int = 0, cache: dict | None = None) -> list[int]:
    """Every split s >= start with ops[start..s] a valid stage (cache: a search's memo)."""
    if cache is None:
        return [s for s in range(start, len(graph.ops)) if stage_ok(graph, s, start)]
    key = ("splits", start)
    if key not in cache:
        cache[key] = [s for s in range(start, len(graph.ops)) if _stage_ok(graph, s, start, cache)]
    return cache[key]


def _stage_ok(graph: Graph, split: int, start: int, cache: dict) -> bool:
    key = ("stage_ok", start, split)
    if key not in cache:
        cache[key] = stage_ok(graph, split, start)
    return cache[key]


def _op_macs(graph: Graph, cache: dict) -> list[int]:
    """op_macs of every op, memoized in a search's cache."""
    if "macs" not in cache:
        cache["macs"] = [op_macs(graph, op) for op in graph.ops]
    return cache["macs"]


@dataclass
class _Storage:
    region: str
    base: int
    row_stride: int
    col_stride: int
    origin: tuple[int, int]  # map coordinate (row, col) of the element at `base`

    def at(self, r: int, c: int) -> int:
        return self.base + (r - self.origin[0]) * self.row_stride + (c - self.origin[1]) * self.col_stride


StageSpec = tuple[int, int, tuple[int, int]]  # (first op, last op, (n, m) grid of its output)


def plan_patch(
    graph: Graph,
    split: int,
    grid: tuple[int, int],
    io: str = "arena",
    in_place: bool | str = True,
    do_place: bool = True,
    cache: dict | None = None,
    scratch: ScratchFn | None = None,
    more: list[StageSpec] | tuple[StageSpec, ...] = (),
    halo_cache: bool = False,
) -> PatchPlan:
    """The patch plan for stage ops[0..split] on an n x m grid of its output map
    (do_place=False: buffers sized and timed but not placed, arena_bytes 0).

    more: further stages (start, end, grid) later in the network, each run patch by patch
    from its full input maps to its full output map (e.g. the inverted-residual blocks whose
    expanded tensors bind the layer-by-layer tail); the ops between stages run layer by layer.

    scratch: per-step kernel scratch bytes (codegen/kernels.py), reserved for every step,
    stage steps included (a fast kernel's scratch depends on its filter, not on the patch,
    so one buffer live at that step serves the largest patch; the 3x3 depthwise's grows with
    the output width: sized for the widest patch call).

    halo_cache: StreamNet column caching in every stage (`PatchStage.halo`; `detail["halo_cache"]`): each
    intermediate keeps the columns the next patch of its row band shares, in a cache live
    across the stage, so halo columns are computed once (rows shared between bands still are
    recomputed); no in-place depthwise inside such a stage."""
    return plan_stages(graph, [(0, split, grid), *more], io, in_place, do_place, cache, scratch, halo_cache)


def plan_stages(
    graph: Graph,
    specs: list[StageSpec],
    io: str = "arena",
    in_place: bool | str = True,
    do_place: bool = True,
    cache: dict | None = None,
    scratch: ScratchFn | None = None,
    halo_cache: bool = False,
) -> PatchPlan:
    """A plan with patch stages ops[start..end] (disjoint, in order) and layer-by-layer
    steps between and after them."""
    g = graph
    cache = {} if cache is None else cache  # shared by the search: per-axis analyses, layer buffers
    prev_end = -1
    for start, end, _ in specs:
        if start <= prev_end or not _stage_ok(g, end, start, cache):
            raise ValueError(f"ops[{start}..{end}] cannot run as a patch stage")
        prev_end = end
    buffers, tb = _copy_buffers(*_base_buffers(g, io, scratch, cache))

    stages = [_stage(g, s, e, grid, buffers, tb, cache, bool(in_place), halo_cache) for s, e, grid in specs]
    need = _window_scratch(g, stages, buffers, scratch)
    in_stage = {i: st for st in stages for i in st.steps}
    layer_steps = [i for i in range(len(g.ops)) if i not in in_stage]
    dw_mode = "all" if in_place == "all" else "binding"
    tail: dict[int, Buffer | None] = {}
    while in_place:  # until neither the tail nor a stage has a depthwise left that binds the peak
        tail.update(apply_in_place(g, buffers, tb, layer_steps, depthwise=dw_mode))
        if not _dw_in_place(g, stages, buffers, tb, dw_mode):
            break
    alias = {y: a for st in stages for y, a in st.alias.items()}
    rings = {i: b for st in stages for i, b in st.scratch.items()}
    kernel_scratch = {b.first: b for b in buffers if b.region == "scratch"}

    plan_steps = []
    op_mac = _op_macs(g, cache)
    stage_mac = {i: m for st in stages for i, m in _stage_macs(g, st, op_mac, cache).items()}
    for i, op in enumerate(g.ops):
        if i in in_stage:
            y = op.outputs[0]
            macs = stage_mac[i]
            sb = rings.get(i) or kernel_scratch.get(i)
            plan_steps.append(
                Step(op=op, macs=macs, scratch=sb, in_place=y in alias, stage=in_stage[i], kernel_scratch=need.get(i))
            )
        else:
            sb = tail.get(i) or kernel_scratch.get(i)
            plan_steps.append(Step(op=op, macs=op_mac[i], scratch=sb, in_place=i in tail))
    base = sum(op_mac)
    total = sum(s.macs for s in plan_steps)
    first = stages[0]
    detail: dict = {
        "split": g.ops[first.steps[-1]].name,
        "grid": f"{first.grid[0]}x{first.grid[1]}",
    }
    if len(stages) > 1:
        detail["stages"] = [
            f"{g.ops[st.steps[0]].name}..{g.ops[st.steps[-1]].name} {st.grid[0]}x{st.grid[1]}" for st in stages
        ]
    if halo_cache:
        detail["halo_cache"] = "columns"
    detail["mac_overhead"] = round((total - base) / max(base, 1), 4)
    loop_overhead = sum(_loop_overhead(st) for st in stages)
    detail["loop_overhead"] = loop_overhead
    detail["in_place"] = len(alias) + len(tail)
    plan = PatchPlan(
        graph=g,
        schedule="patch",
        steps=plan_steps,
        buffers=buffers,
        tensor_buffer=tb,
        arena_bytes=0,
        lower_bound=lower_bound(buffers, len(plan_steps)),
        io=io,
        detail=detail,
        stages=list(stages),
        loop_overhead=loop_overhead,
    )
    if do_place:
        plan.arena_bytes = place(buffers)
    return plan


def _base_buffers(g: Graph, io: str, scratch: ScratchFn | None, cache: dict) -> tuple[list[Buffer], dict[str, Buffer]]:
    """The layer-by-layer buffers every patch plan starts from (memoized; callers copy them)."""
    bkey = ("buffers", io, scratch is not None)
    if bkey not in cache:
        cache[bkey] = build_buffers(g, scratch, io) if scratch is not None else build_buffers(g, io=io)
    return cache[bkey]


def _stage_macs(g: Graph, st: PatchStage, op_mac: list[int], cache: dict) -> dict[int, int]:
    """MACs of every step of stage `st`, summed over its patches (halo rows and columns
    recomputed; with a column cache only the new columns): step -> MACs."""
    out = {}
    rows = _span_stats(st, 0, cache)
    cols = None if st.halo else _span_stats(st, 1, cache)
    for i in st.steps:
        y = g.ops[i].outputs[0]
        full = g.t(y).shape
        per_pixel = op_mac[i] // max(1, full[1] * full[2])
        out[i] = per_pixel * rows[y][0] * (cols[y][0] if cols is not None else stage_cols(st, y))
    return out


def _span_stats(st: PatchStage, axis: int, cache: dict) -> dict[str, tuple[int, int]]:
    """Per stage tensor: (sum, max) of its span lengths over the stage's row (axis 0) or
    column (1) bands, memoized per stage and band count."""
    key = ("stats", st.steps[0], st.steps[-1], axis, st.grid[axis])
    if key not in cache:
        bands_ = st.rows if axis == 0 else st.cols
        ns = {t: [a.spans[t].n for a in bands_] for t in bands_[0].spans}
        cache[key] = {t: (sum(v), max(v)) for t, v in ns.items()}
    return cache[key]


def _loop_overhead(st: PatchStage) -> int:
    """Per-call cost the MACs do not show, in MAC-equivalents: every patch calls every stage op
    (the layer schedule calls it once), plus the halo-cache copies; the choice adds it to the MACs."""
    return CALL_OVERHEAD * ((st.n_patches - 1) * len(st.steps) + 2 * len(st.halo) * st.n_patches)


def _analyses(g: Graph, start: int, split: int, grid: tuple[int, int], cache: dict):
    """Row and column band analyses of stage ops[start..split] on an n x m grid (memoized)."""
    steps = list(range(start, split + 1))
    output = g.ops[split].outputs[0]
    _, out_h, out_w, _ = g.t(output).shape
    n, m = grid
    if not (1 <= n <= out_h and 1 <= m <= out_w):
        raise ValueError(f"grid {n}x{m} does not fit the {out_h}x{out_w} stage output")
    return _axis(g, steps, output, 0, n, out_h, cache), _axis(g, steps, output, 1, m, out_w, cache)


def _axis(g: Graph, steps: list[int], output: str, axis: int, n: int, size: int, cache: dict) -> list[AxisAnalysis]:
    """The n band analyses of one axis; bands shared between grids are analysed once."""
    key = (steps[0], steps[-1], axis, n)
    if key not in cache:
        pkey = ("prep", steps[0], steps[-1], axis)
        if pkey not in cache:
            cache[pkey] = axis_prep(g, steps, axis)
        out = []
        for b in bands(size, n):
            bkey = ("band", steps[0], steps[-1], axis, b.lo, b.hi)
            if bkey not in cache:
                cache[bkey] = analyze_axis(g, steps, output, axis, b, cache[pkey])
            out.append(cache[bkey])
        cache[key] = out
    return cache[key]


def _stage(
    g: Graph,
    start: int,
    split: int,
    grid: tuple[int, int],
    buffers: list[Buffer],
    tb: dict[str, Buffer],
    cache: dict,
    in_place: bool,
    halo_cache: bool = False,
) -> PatchStage:
    """Analyze stage ops[start..split] and rewrite its buffers (in `buffers`/`tb`): per-patch
    buffers for its intermediates, in-place aliases and rings inside it."""
    steps = list(range(start, split + 1))
    output = g.ops[split].outputs[0]
    rows, cols = _analyses(g, start, split, grid, cache)

    produced = {g.ops[i].outputs[0] for i in steps}
    inter = [g.ops[i].outputs[0] for i in steps if g.ops[i].outputs[0] != output]
    stage_inputs = {x for i in steps for x in activation_inputs(g, g.ops[i]) if x not in produced}

    last_use = {t: max(i for i in steps if t in g.ops[i].inputs) for t in inter}
    for t in inter:  # per-patch buffers replace the layer buffers of stage intermediates
        buffers.remove(tb[t])
        c = g.t(t).shape[3]
        size = max(a.spans[t].n for a in rows) * max(a.spans[t].n for a in cols) * c
        producer = next(i for i in steps if g.ops[i].outputs[0] == t)
        tb[t] = Buffer(name=f"{t}[patch]", size=align(size), first=producer, last=last_use[t], tensors=[t])
        buffers.append(tb[t])
    tb[output].first = min(tb[output].first, start)
    for x in stage_inputs:
        tb[x].last = max(tb[x].last, split)

    # in-place inside the stage: elementwise outputs over an intermediate input that dies
    # there (as fast in place); depthwise later, only where it binds the peak (_dw_in_place)
    st = PatchStage(steps, output, grid, rows, cols, {}, stage_inputs, {})
    if halo_cache:
        st.halo = _halo_buffers(g, st, inter)
        buffers.extend(b for b, _ in st.halo.values())
    if in_place:
        for i in steps:
            if g.ops[i].kind in ELEMENTWISE_IN_PLACE:
                _stage_merge(g, st, buffers, tb, i)
    return st


def _halo_buffers(g: Graph, st: PatchStage, inter: list[str]) -> dict[str, tuple[Buffer, int]]:
    """StreamNet column caches: per intermediate tensor, the columns neighbouring patches of a
    row band share (live across the stage), so each patch computes only its new columns.
    Needs every tensor's column spans to move right strictly from patch to patch."""
    out: dict[str, tuple[Buffer, int]] = {}
    first, last = st.steps[0], st.steps[-1]
    for t in inter:
        spans = [q.spans[t] for q in st.cols]
        for a, b in zip(spans, spans[1:], strict=False):
            if not (b.lo >= a.lo and b.hi > a.hi and b.n > 0):
                raise ValueError(f"halo cache: column spans of {t} are not monotonic")
        w = max((max(0, a.hi - b.lo) for a, b in zip(spans, spans[1:], strict=False)), default=0)
        if w > 0:
            size = w * max(r.spans[t].n for r in st.rows) * g.t(t).shape[3]
            out[t] = (Buffer(name=f"{t}[halo]", size=align(size), first=first, last=last, tensors=[]), w)
    return out


def _new_cols(st: PatchStage, y: str, q: AxisAnalysis, prev: AxisAnalysis | None) -> Span:
    """The columns of y patch q computes: all of its span, or with a halo cache those right
    of the previous patch's."""
    s = q.spans[y]
    if prev is None or y not in st.halo:
        return s
    return Span(max(s.lo, prev.spans[y].hi), s.hi)


def stage_cols(st: PatchStage, y: str) -> int:
    """Columns of y computed per row band, summed over the band's patches."""
    if y not in st.halo:
        return sum(q.spans[y].n for q in st.cols)
    return sum(_new_cols(st, y, q, p).n for p, q in zip([None, *st.cols], st.cols, strict=False))


def _stage_merge(g: Graph, st: PatchStage, buffers: list[Buffer], tb: dict[str, Buffer], i: int) -> bool:
    """Stage step i writes its output over an intermediate input that dies there (depthwise:
    the in-place kernel, its ring as the step's scratch). False when it cannot."""
    op = g.ops[i]
    y = op.outputs[0]
    if y == st.output or y in st.alias or (st.halo and op.kind == "depthwise_conv2d"):
        return False
    acts = activation_inputs(g, op)
    if op.kind == "depthwise_conv2d" and dw_in_place_ok(g, op):
        cands = [0]
    elif op.kind in ELEMENTWISE_IN_PLACE:
        cands = list(range(len(acts)))
    else:
        return False
    produced = {g.ops[j].outputs[0] for j in st.steps}
    rows, cols = st.rows, st.cols
    for k in cands:
        x = acts[k]
        if x not in produced or x == st.output or tb[x].last != i or len(set(acts)) != len(acts):
            continue
        if op.kind == "depthwise_conv2d" and not all(a.windows[(i, 0)].span.n >= a.spans[y].n for a in rows + cols):
            continue
        bx, by = tb[x], tb[y]
        bx.last = max(bx.last, by.last)
        bx.tensors.append(y)
        buffers.remove(by)
        tb[y] = bx
        st.alias[y] = (i, k)
        if op.kind == "depthwise_conv2d":  # in-place kernel: no fast kernel scratch, a ring
            buffers[:] = [b for b in buffers if not (b.region == "scratch" and b.first == i)]
            kh, kw = g.t(op.inputs[1]).shape[1:3]
            c = g.t(y).shape[3]
            ring = max(
                dw_ring_bytes((kh, kw), r.windows[(i, 0)].pad_lo, q.windows[(i, 0)].pad_lo, q.spans[y].n, c)
                for r in rows
                for q in cols
            )
            if ring > 0:
                st.scratch[i] = Buffer(name=f"scratch{i}", size=align(ring), first=i, last=i, region="scratch")
                buffers.append(st.scratch[i])
        return True
    return False


def _dw_in_place(g: Graph, stages: list[PatchStage], buffers: list[Buffer], tb: dict[str, Buffer], mode) -> int:
    """In-place depthwise inside the stages: every eligible step (mode "all") or, as
    `apply_in_place` does for the layer-by-layer steps, only steps that bind the peak (the
    in-place kernel is portable and much slower than the fast depthwise), while that lowers it."""
    by_step = {i: st for st in stages for i in st.steps if g.ops[i].kind == "depthwise_conv2d"}
    if mode == "all":
        return sum(_stage_merge(g, st, buffers, tb, i) for i, st in by_step.items())
    tried: set[int] = set()
    merged = 0
    while True:
        live = live_bytes(buffers, len(g.ops))
        peak = max(live, default=0)
        binding = [i for i in by_step if live[i] == peak and i not in tried]
        if not binding:
            return merged
        for i in binding:
            tried.add(i)
            merged += _stage_merge(g, by_step[i], buffers, tb, i)


def _window_scratch(g: Graph, stages: list[PatchStage], buffers: list[Buffer], scratch) -> dict[int, int]:
    """Kernel scratch of stage steps sized for the widest patch call, where the kernel's
    scratch depends on its output width (scratch.window, codegen/kernels.py); step -> bytes."""
    window = getattr(scratch, "window", None)
    need: dict[int, int] = {}
    if window is None:
        return need
    for st in stages:
        for i in st.steps:
            b = next((b for b in buffers if b.region == "scratch" and b.first == i), None)
            if b is None:
                continue
            y = g.ops[i].outputs[0]
            n = int(window(g, i, max(q.spans[y].n for q in st.cols)))
            if n < b.size:
                b.size = align(n)
                need[i] = n
    return need


def _copy_buffers(buffers: list[Buffer], tb: dict[str, Buffer]) -> tuple[list[Buffer], dict[str, Buffer]]:
    new = {id(b): Buffer(b.name, b.size, b.first, b.last, b.region, b.offset, list(b.tensors)) for b in buffers}
    return list(new.values()), {t: new[id(b)] for t, b in tb.items()}


def _patch_calls(
    g: Graph,
    st: PatchStage,
    r: AxisAnalysis,
    q: AxisAnalysis,
    tb: dict[str, Buffer],
    prev: AxisAnalysis | None = None,
    nxt: AxisAnalysis | None = None,
) -> list[PatchCall]:
    """The calls of patch (r, q); prev/nxt: the column bands left and right of q (halo cache)."""
    steps, output, alias = st.steps, st.output, st.alias

    def full_storage(t: str) -> _Storage:
        b = tb[t]
        _, _, w, c = g.t(t).shape
        return _Storage(b.region, b.offset if b.region in ("arena", "scratch") else 0, w * c, c, (0, 0))

    def operand(t: str, s: _Storage, rows: Span, cols: Span) -> Operand:
        return Operand(t, s.region, s.at(rows.lo, cols.lo), rows.n, cols.n, g.t(t).shape[3], s.row_stride, s.col_stride)

    store: dict[str, _Storage] = {t: full_storage(t) for t in st.inputs}
    store[output] = full_storage(output)
    calls = []
    for i in steps:
        op = g.ops[i]
        y = op.outputs[0]
        acts = activation_inputs(g, op)
        yr, yc = r.spans[y], q.spans[y]
        new = _new_cols(st, y, q, prev)
        if new == yc:
            wins = [q.windows[(i, k)] for k in range(len(acts))]
        else:  # only the columns right of the cached ones
            geo = op_geometry(g, op, 1)
            wins = [input_window(geo, new, g.t(x).shape[2]) if op.kind in SPATIAL else Window(new, 0, 0) for x in acts]
        ins = tuple(operand(x, store[x], r.windows[(i, k)].span, wins[k].span) for k, x in enumerate(acts))
        cy = g.t(y).shape[3]
        if y in alias:
            _, k = alias[y]
            sx = store[acts[k]]
            base = sx.at(r.windows[(i, k)].span.lo, q.windows[(i, k)].span.lo)
            store[y] = _Storage(sx.region, base, sx.row_stride, sx.col_stride, (yr.lo, yc.lo))
        elif y != output:
            store[y] = _Storage("arena", tb[y].offset, yc.n * cy, cy, (yr.lo, yc.lo))
        s = store[y]
        load = save = None
        if y in st.halo:
            hb, hw = st.halo[y]
            if new.lo > yc.lo:
                n = Span(yc.lo, new.lo)
                cached = Operand(y, "arena", hb.offset, yr.n, n.n, cy, hw * cy, cy)
                load = (cached, operand(y, s, yr, n))
            if nxt is not None and yc.hi > nxt.spans[y].lo:
                n = Span(nxt.spans[y].lo, yc.hi)
                save = (operand(y, s, yr, n), Operand(y, "arena", hb.offset, yr.n, n.n, cy, hw * cy, cy))
        w0r = r.windows[(i, 0)]
        full = g.t(y).shape
        per_pixel = op_macs(g, op) // max(1, full[1] * full[2])
        calls.append(
            PatchCall(
                step=i,
                inputs=ins,
                output=operand(y, s, yr, new),
                pads=(w0r.pad_lo, w0r.pad_hi, wins[0].pad_lo, wins[0].pad_hi),
                in_place=y in alias,
                macs=per_pixel * yr.n * new.n,
                load=load,
                save=save,
            )
        )
    return calls


def patch_candidates(
    graph: Graph,
    io: str = "arena",
    max_grid: int = MAX_GRID,
    keep: int = 24,
    scratch: ScratchFn | None = None,
    second_stage: bool = True,
    halo_cache: bool | None = None,
) -> list[Plan]:
    """Patch plans over every valid split and n x m grid (n, m <= max_grid), and (second_stage)
    those plans plus a second stage over the layer-by-layer tail's binding step (see
    `_two_stage_recipes`), reduced to the (peak, cost) Pareto front (cost: MACs + modelled
    per-call overhead; at most `keep` plans, spread over the front). halo_cache (default
    HALO_CACHE): every single-stage plan also with StreamNet column caching (fewer MACs, cache
    buffers live across the stage); the front keeps it where it wins.

    The walk (branch and bound): candidates are taken by cost, ties by lower bound; a plan is
    placed only when its lower bound beats the smallest peak of every cheaper plan (else it
    cannot be on the front). Costs come from the receptive-field analyses alone; a candidate
    is sized (buffers, in-place decisions, exact lower bound) only when `_stage_bound`, a lower
    bound from full maps and per-patch outputs that no in-place decision can lower, does not
    already reject it. The result is the plan list the exhaustive walk gives, at a fraction of
    the sizing work (benchmarks/plan_time.py)."""
    if any(t.dtype != "int8" for t in graph.activations()) or len(graph.inputs) != 1 or len(graph.outputs) != 1:
        return []  # the patch stages run the int8 kernels only, on one input and one output
    cache: dict = {}
    halo_cache = HALO_CACHE if halo_cache is None else halo_cache
    sized: list[_Single] = []
    for split in valid_splits(graph, 0, cache):
        _, h, w, _ = graph.t(graph.ops[split].outputs[0]).shape
        for n in range(1, min(max_grid, h) + 1):
            for m in range(1, min(max_grid, w) + 1):
                if n * m == 1:
                    continue
                sized.append(_Single(graph, split, (n, m), io, cache, scratch, False))
                if halo_cache and m > 1:
                    try:
                        sized.append(_Single(graph, split, (n, m), io, cache, scratch, True))
                    except ValueError:  # column spans that do not move right patch by patch
                        pass
    extra = (graph.t(graph.inputs[0]).nbytes + graph.t(graph.outputs[0]).nbytes) if io == "external" else 0
    cands: list[_Cand] = [_Cand(p.cost, p.bound, p.lower_bound, p) for p in sized]
    if second_stage:
        plain = [p for p in sized if not p.halo]
        cands += _two_stage_recipes(graph, io, plain, cache, scratch)
    placed: list[PatchPlan] = []
    best = None
    cands.sort(key=lambda c: c.cost)  # stable: ties keep their order, then go by lower bound
    start = 0
    while start < len(cands):
        end = start
        while end < len(cands) and cands[end].cost == cands[start].cost:
            end += 1
        # a candidate whose bound already fails is skipped wherever it sits among its ties
        group = [c for c in cands[start:end] if best is None or c.bound + extra < best]
        start = end
        for c in sorted(group, key=lambda c: c.lb):
            if best is not None and c.lb + extra >= best:
                continue
            if isinstance(c.item, tuple):
                s1, grid1, spec2 = c.item
                p = plan_patch(graph, s1, grid1, io, do_place=False, cache=cache, scratch=scratch, more=[spec2])
                if best is not None and p.lower_bound + extra >= best:
                    continue
                p.arena_bytes = place(p.buffers)
                if p.arena_bytes > p.lower_bound:  # first fit left gaps: every depthwise in place may pack tighter
                    q = plan_patch(graph, s1, grid1, io, "all", True, cache, scratch, more=[spec2])
                    p = q if q.arena_bytes < p.arena_bytes else p
            else:
                p = c.item.plan
                p.arena_bytes = place(p.buffers)
            placed.append(p)
            best = plan_peak(p) if best is None else min(best, plan_peak(p))
    from compiler.schedule.layer import plan_layer

    kw = {"scratch": scratch} if scratch is not None else {}
    layer_peak = plan_peak(plan_layer(graph, io=io, in_place=True, **kw))
    return pareto([p for p in placed if plan_peak(p) < layer_peak], keep)


class _Lazy:
    """A number computed on first use (an exact lower bound that needs a sized plan)."""

    def __init__(self, fn) -> None:
        self._fn, self._value = fn, None

    def get(self) -> int:
        if self._value is None:
            self._value = int(self._fn())
        return self._value


@dataclass
class _Cand:
    """One candidate of the walk: cost, a cheap bound <= its lower bound, the lower bound
    (lazy) and what it is: a `_Single` or a two-stage recipe (s1, grid1, (lo, hi, grid2))."""

    cost: int
    bound: int
    exact: _Lazy
    item: _Single | tuple

    @property
    def lb(self) -> int:
        return self.exact.get()


class _Single:
    """A single-stage candidate (split, grid, halo cache): cost and `bound` from the analyses,
    the sized plan (`plan`, unplaced) and its lower bounds on demand."""

    def __init__(self, g: Graph, split: int, grid, io: str, cache: dict, scratch, halo: bool) -> None:
        self.g, self.split, self.grid, self.io, self.cache = g, split, grid, io, cache
        self.scratch, self.halo = scratch, halo
        st = _stage_shape(g, 0, split, grid, cache, halo)  # ValueError: no halo cache here
        op_mac = _op_macs(g, cache)
        macs = sum(op_mac) + sum(m - op_mac[i] for i, m in _stage_macs(g, st, op_mac, cache).items())
        self.cost = macs + _loop_overhead(st)
        self.stage_bound = _stage_bound(g, st, io, scratch, cache)  # <= head
        self.bound = max(self.stage_bound, _tail_bound(g, split, io, scratch, cache))  # <= lower_bound
        self._plan: PatchPlan | None = None
        self.lower_bound = _Lazy(lambda: self.plan.lower_bound)
        self.head = _Lazy(self._head)  # live bytes in the stage with every depthwise in place

    @property
    def plan(self) -> PatchPlan:
        if self._plan is None:
            self._plan = plan_patch(
                self.g,
                self.split,
                self.grid,
                self.io,
                do_place=False,
                cache=self.cache,
                scratch=self.scratch,
                halo_cache=self.halo,
            )
        return self._plan

    def _head(self) -> int:
        q = plan_patch(self.g, self.split, self.grid, self.io, "all", False, self.cache, self.scratch)
        return int(_live(q)[: self.split + 1].max())


def _stage_shape(g: Graph, start: int, split: int, grid, cache: dict, halo: bool) -> PatchStage:
    """The stage's analyses (and halo cache widths) without buffers: enough for MACs, loop
    overhead and `_stage_bound`. ValueError as `_stage` raises it."""
    rows, cols = _analyses(g, start, split, grid, cache)
    steps = list(range(start, split + 1))
    output = g.ops[split].outputs[0]
    st = PatchStage(steps, output, grid, rows, cols, {}, set(), {})
    if halo:
        inter = [g.ops[i].outputs[0] for i in steps if g.ops[i].outputs[0] != output]
        st.halo = _halo_buffers(g, st, inter)
    return st


def _full_live(g: Graph, start: int, split: int, io: str, scratch, cache: dict) -> list[int]:
    """Per step of stage ops[start..split]: bytes of the full-map arena buffers live there
    (stage inputs held to the split, the output from the start; intermediates and kernel
    scratch left out). Memoized per stage: it does not depend on the grid."""
    key = ("full_live", io, scratch is not None, start, split)
    if key not in cache:
        buffers, tb = _base_buffers(g, io, scratch, cache)
        steps = range(start, split + 1)
        output = g.ops[split].outputs[0]
        produced = {g.ops[i].outputs[0] for i in steps}
        inter = {tb[y].name for y in produced if y != output and y in tb}
        inputs = {tb[x].name for i in steps for x in activation_inputs(g, g.ops[i]) if x not in produced and x in tb}
        live = [0] * len(steps)
        for b in buffers:
            if b.region != "arena" or b.name in inter:
                continue
            first = min(b.first, start) if b.name == tb[output].name else b.first
            last = max(b.last, split) if b.name in inputs else b.last
            for k, i in enumerate(steps):
                if first <= i <= last:
                    live[k] += b.size
        cache[key] = live
    return cache[key]


def _stage_bound(g: Graph, st: PatchStage, io: str, scratch, cache: dict) -> int:
    """A lower bound on the live bytes of any plan with stage `st` during its steps, whatever
    in-place decisions it makes: the full maps live there (in-place merges never free them: a
    merge lengthens the input buffer it writes into, and that buffer is at least as large)
    + the step's per-patch output (in place it sits in its input's per-patch buffer, whose
    spans contain the output's) + the column caches. Kernel scratch is left out (in-place
    depthwise and the widest-patch sizing change it)."""
    start, split = st.steps[0], st.steps[-1]
    full = _full_live(g, start, split, io, scratch, cache)
    halo = sum(b.size for b, _ in st.halo.values())
    rows, cols = _span_stats(st, 0, cache), _span_stats(st, 1, cache)
    best = 0
    for k, i in enumerate(st.steps):
        y = g.ops[i].outputs[0]
        pp = 0
        if y != st.output:
            pp = align(rows[y][1] * cols[y][1] * g.t(y).shape[3])
        best = max(best, full[k] + pp + halo)
    return best


def _tail_bound(g: Graph, split: int, io: str, scratch, cache: dict) -> int:
    """A lower bound on the live bytes of the layer-by-layer steps after `split`, whatever
    in-place decisions are made there: the layer buffers live at each step (kernel scratch left
    out) less, where the step's op may run in place, its output (a merge frees the output's
    bytes only at its own step: afterwards the input buffer that holds it is at least as large).
    Memoized per split."""
    key = ("tail_bound", io, scratch is not None, split)
    if key not in cache:
        buffers, tb = _base_buffers(g, io, scratch, cache)
        n = len(g.ops)
        live = live_bytes((b for b in buffers if b.region == "arena"), n)
        best = 0
        for i in range(split + 1, n):
            op = g.ops[i]
            b = tb.get(op.outputs[0])
            may = op.kind == "depthwise_conv2d" or op.kind in ELEMENTWISE_IN_PLACE
            free = b.size if may and b is not None and b.region == "arena" and b.first == i else 0
            best = max(best, live[i] - free)
        cache[key] = best
    return cache[key]


def _live(plan: Plan) -> np.ndarray:
    """Arena bytes live at each step (Plan.live_bytes_per_step as an array)."""
    return np.asarray(live_bytes(plan.buffers, len(plan.steps)), np.int64)


def _two_stage_recipes(
    graph: Graph, io: str, sized: list[_Single], cache: dict, scratch: ScratchFn | None
) -> list[_Cand]:
    """Second stages for single-stage plans whose layer-by-layer tail binds the peak (in
    MobileNetV2 the 28x28 inverted residuals: skip + 6x expanded tensor + output).

    Per first-stage split s1, the live bytes after s1 do not depend on the first stage's
    grid, so second stages ops[lo..hi] (lo <= binding step <= hi, grid up to
    MAX_GRID_SECOND per axis) are sized once per split and kept on their own
    (tail live, extra MACs) front; each first-stage plan is then paired with them, with
    max(first-stage live, tail live) as the pair's lower-bound estimate (the first-stage live
    sized with every depthwise in place: the second stage may take the peak from the tail).
    Sizing is lazy: a second stage is sized only when `_stage_bound` cannot rule it off the
    front. Returns candidates whose item is (s1, grid1, (lo, hi, grid2)) for the caller's walk."""
    by_split: dict[int, list[_Single]] = {}
    for p in sized:
        by_split.setdefault(p.split, []).append(p)
    out: list[_Cand] = []
    op_mac = _op_macs(graph, cache)
    for s1, plans in by_split.items():
        live = _live(plans[0].plan)
        if s1 + 1 >= len(live):
            continue
        tail_peak = int(live[s1 + 1 :].max())
        if not any(p.stage_bound < tail_peak and p.head.get() < tail_peak for p in plans):
            continue  # the tail never binds after this split
        bind = s1 + 1 + int(np.argmax(live[s1 + 1 :]))
        g1 = plans[0].grid
        rest: list[tuple[_Lazy, int, int, tuple]] = []  # (tail live, its bound, extra MACs, spec)
        for lo in range(s1 + 1, bind + 1):
            for hi in valid_splits(graph, lo, cache):
                if hi < bind or hi - lo > MAX_SECOND_OPS:
                    continue
                _, h, w, _ = graph.t(graph.ops[hi].outputs[0]).shape
                for n in range(1, min(MAX_GRID_SECOND, h) + 1):
                    for m in range(1, min(MAX_GRID_SECOND, w) + 1):
                        if n * m == 1:
                            continue
                        spec = (lo, hi, (n, m))
                        st2 = _stage_shape(graph, lo, hi, (n, m), cache, False)
                        add = sum(v - op_mac[i] for i, v in _stage_macs(graph, st2, op_mac, cache).items())
                        bound = _stage_bound(graph, st2, io, scratch, cache)
                        rest.append((_Lazy(_tail_live(graph, s1, g1, io, cache, scratch, spec)), bound, add, spec))
        front: list[tuple[int, int, tuple]] = []
        rest.sort(key=lambda r: r[2])
        start = 0
        while start < len(rest):
            end = start
            while end < len(rest) and rest[end][2] == rest[start][2]:
                end += 1
            limit = front[-1][0] if front else tail_peak
            group = [r for r in rest[start:end] if r[1] < limit]  # the others cannot join the front
            start = end
            for lz, _, add, spec in sorted(group, key=lambda r: r[0].get()):
                t = lz.get()
                if t < tail_peak and (not front or t < front[-1][0]):
                    front.append((t, add, spec))
        for p in plans:
            for tail, add, spec in front:
                lo, hi, (n2, m2) = spec
                cost = p.cost + add + CALL_OVERHEAD * (n2 * m2 - 1) * (hi - lo + 1)
                exact = _Lazy(lambda p=p, tail=tail: max(p.head.get(), tail))
                out.append(_Cand(cost, max(p.stage_bound, tail), exact, (s1, p.grid, spec)))
    return out


def _tail_live(graph: Graph, s1: int, g1, io: str, cache: dict, scratch, spec):
    def fn() -> int:
        q = plan_patch(graph, s1, g1, io, "all", False, cache, scratch, more=[spec])  # lower bound: all in place
        return int(_live(q)[s1 + 1 :].max())

    return fn


_cost = plan_cost
_peak = plan_peak


def pareto(plans: list, keep: int) -> list:
    """Plans no other plan beats on both peak and cost (MACs + modelled call overhead),
    cheapest first, thinned to `keep`."""
    front = []
    for p in sorted(plans, key=lambda p: (_cost(p), _peak(p))):
        if not front or _peak(p) < _peak(front[-1]):
            front.append(p)
    if len(front) > keep:
        idx = sorted({round(k * (len(front) - 1) / (keep - 1)) for k in range(keep)})
        front = [front[k] for k in idx]
    return front
