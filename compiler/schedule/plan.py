"""The Plan: what the firmware will do, step by step, and where every byte lives.

A planner (layer, patch, token) returns a Plan; codegen only writes it down. `Plan.dump()`
prints it so a reader can see every buffer's offset and lifetime.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from compiler.core.ir import Graph, Op, op_macs

ALIGN = 4


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


ARENA_REGIONS = ("arena", "scratch")


def live_bytes(buffers: Iterable[Buffer], n_steps: int) -> list[int]:
    """Arena bytes live during each of `n_steps` steps: the sum of the sizes of the arena and
    scratch buffers with first <= step <= last (the curve MCUNetV2 plots; its maximum is a lower
    bound no placement can beat). O(buffers + steps) with a difference array; the one copy of
    this loop (layer, patch, in-place and token planners, Plan.live_bytes_per_step)."""
    d = [0] * (n_steps + 1)
    for b in buffers:
        if b.region in ARENA_REGIONS:
            lo, hi = max(b.first, 0), min(b.last, n_steps - 1)
            if lo <= hi:
                d[lo] += b.size
                d[hi + 1] -= b.size
    return list(accumulate(d[:n_steps]))


@dataclass
class Buffer:
    """A block of memory holding one or more tensors (views alias their source)."""

    name: str
    size: int
    first: int  # first step that writes it (-1: before the first step)
    last: int  # last step that reads it (len(steps): after the last)
    region: str = "arena"  # "arena" | "input" | "output" | "scratch"
    offset: int = 0
    tensors: list[str] = field(default_factory=list)
    pool: str = "arena"  # the memory an arena/scratch buffer lives in (compiler.schedule.pools); offset is in it

    def overlaps_in_time(self, other: Buffer) -> bool:
        return not (self.last < other.first or other.last < self.first)

    def overlaps_in_space(self, other: Buffer) -> bool:
        return not (self.offset + self.size <= other.offset or other.offset + other.size <= self.offset)


class PlanError(Exception):
    """A Plan that breaks its own invariants (two live buffers share bytes, a buffer outside its
    pool): a planner bug, never a user error."""


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def buffer_problems(buffers: list[Buffer], pool_bytes: int | dict[str, int]) -> list[str]:
    """What is wrong with a placement: pairs of arena/scratch buffers of one pool live at one step
    that share bytes, and buffers outside [0, size of their pool). pool_bytes: the arena size (one
    pool, "arena") or pool name -> size. Buffers never live (first > last) are ignored. Sweep over
    start offsets per pool (O(n log n + overlaps)); TFLite-Micro's DoAnyBuffersOverlap checks the
    same for one pool."""
    sizes = pool_bytes if isinstance(pool_bytes, dict) else {"arena": pool_bytes}
    placed = [b for b in buffers if b.region in ARENA_REGIONS and b.first <= b.last and b.size > 0]
    out = []
    for b in placed:
        if b.pool not in sizes:
            out.append(f"{b.name} lies in an unknown pool {b.pool!r}")
        elif b.offset < 0 or b.offset + b.size > sizes[b.pool]:
            what = "the arena" if b.pool == "arena" else f"pool {b.pool}"
            out.append(f"{b.name} [{b.offset}, {b.offset + b.size}) lies outside {what} of {sizes[b.pool]} B")
    for name in sizes:
        out += _overlaps([b for b in placed if b.pool == name])
    return out


def _overlaps(placed: list[Buffer]) -> list[str]:
    out = []
    placed.sort(key=lambda b: b.offset)
    active: list[Buffer] = []  # buffers whose address range may still reach the next start
    for b in placed:
        active = [a for a in active if a.offset + a.size > b.offset]
        for a in active:
            if a.overlaps_in_time(b):
                out.append(
                    f"{a.name} [{a.offset}, {a.offset + a.size}) steps {a.first}..{a.last} and "
                    f"{b.name} [{b.offset}, {b.offset + b.size}) steps {b.first}..{b.last} share bytes"
                )
        active.append(b)
    return out


def render_buffers(
    buffers: list[Buffer],
    n_steps: int,
    pool_bytes: int,
    labels: list[str] | None = None,
    width: int = 64,
    tails: list[str] | None = None,
) -> str:
    """A text timeline of a placement, as TFLite-Micro's PrintMemoryPlan draws it: one row per
    step, `width` columns spanning [0, pool_bytes), each live buffer's columns filled with its
    letter ('.' free, '!' where two live buffers share bytes), then the live KB
    (1 KB = 1024 B) and the step's `tails` text (its kernel). A legend maps letters to buffers
    (offset, size, steps)."""
    placed = sorted(
        (b for b in buffers if b.region in ARENA_REGIONS and b.first <= b.last and b.size > 0),
        key=lambda b: (b.offset, b.first, b.name),
    )
    letter = {id(b): _LETTERS[k % len(_LETTERS)] for k, b in enumerate(placed)}
    scale = max(pool_bytes, max((b.offset + b.size for b in placed), default=0), 1)
    live = live_bytes(placed, n_steps)
    rows = []
    for i in range(n_steps):
        line = ["."] * width
        owner: list[Buffer | None] = [None] * width
        for b in placed:
            if not b.first <= i <= b.last:
                continue
            lo = min(b.offset * width // scale, width - 1)
            hi = max(lo + 1, (b.offset + b.size) * width // scale)
            for c in range(lo, min(hi, width)):
                o = owner[c]
                if o is None:
                    line[c], owner[c] = letter[id(b)], b
                elif o.overlaps_in_space(b):  # a column two buffers merely share stays its first owner's
                    line[c] = "!"
        label = f" {labels[i]}" if labels else ""
        tail = f"  {tails[i]}" if tails and tails[i] else ""
        rows.append(f"{i:>4d}{label} |{''.join(line)}| {live[i] / 1024:7.1f} KB{tail}")
    legend = [
        f"  {letter[id(b)]} @{b.offset:>7d} {b.size:>7d} B  steps {max(b.first, 0)}..{b.last}  {b.name}" for b in placed
    ]
    head = f"arena over steps: {pool_bytes} B, 1 column = {scale / width:.0f} B"
    return "\n".join([head, *rows, "legend:", *legend])


@dataclass
class Stage:
    """Base of the typed stage records: graph ops the firmware runs as one loop nest instead of
    layer by layer. `compiler.schedule.patch.PatchStage` (ops run patch by patch, one Step
    each) and `compiler.schedule.token.TokenStage` (a transformer block as one Step) extend it;
    a reader tells them apart with isinstance."""

    steps: list[int]  # the plan steps it covers, in order

    def describe(self) -> str:
        """One line for `Plan.dump()`, printed on the stage's first step."""
        return f"stage of steps {self.steps[0]}..{self.steps[-1]}"


# -- the kernel a step runs (chosen by compiler/schedule/kernels_table.py's table, set by plan_for) ----


@dataclass
class KernelParams:
    """The parts of a call beyond its name and scratch: the packed filter's form and flash bytes
    (DSP conv, depthwise and FC) and the widening decision."""

    filter: str = ""  # "" (the op's own constants), "s8", "s8p" (paired int8), "w16" (int16), "dw3x3", "dw3x3_t"
    filter_bytes: int = 0  # flash of the packed filter
    note: str = ""  # the widening decision (what int16 filters save, or why the layer kept int8)


@dataclass
class KernelCall:
    """The kernel one op runs: its C function, the scratch it asks for (bytes, from its
    `_get_buffer_size`), and its parameters. `dsp`: a kernel of mt_nn_fast.h (packed filter and
    fast requantization records, codegen/kernels.py `fast_params`). `in_place`: it may run with
    its output over its input."""

    name: str  # C function, e.g. mt_conv_1x1_s8_dsp, mt_conv_s8; "" for an op with no call (reshape, stages)
    scratch_bytes: int = 0
    params: KernelParams = field(default_factory=KernelParams)
    dsp: bool = False
    in_place: bool = False

    @property
    def wide(self) -> bool:
        return self.params.filter == "w16"

    @property
    def paired(self) -> bool:
        return self.params.filter == "s8p"

    @property
    def transposed(self) -> bool:
        """The column form of the 3x3 depthwise kernel (its filter packed transposed)."""
        return self.params.filter == "dw3x3_t"

    @property
    def dw3x3(self) -> bool:
        return self.params.filter in ("dw3x3", "dw3x3_t")

    def form(self) -> int:
        """mt_fast_params.wide: MT_FILTER_S8 0, MT_FILTER_S16 1, MT_FILTER_S8_PAIRED 2."""
        return 1 if self.wide else (2 if self.paired else 0)

    def short(self) -> str:
        """Kernel and filter form: w16 (pre-widened int16), s8p (paired int8), s8 (int8)."""
        if self.params.filter_bytes == 0 or self.dw3x3:
            return self.name or "-"
        return f"{self.name} {self.params.filter}"

    def describe(self) -> str:
        """short() plus the widening decision: what int16 filters save, in estimated
        instructions, for how many extra flash bytes, or why the layer kept int8."""
        note = self.params.note
        return f"{self.short()} ({note})" if note else self.short()


@dataclass
class Step:
    op: Op
    macs: int
    scratch: Buffer | None = None
    in_place: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    stage: Stage | None = None  # the patch or token stage that runs this step (None: layer by layer)
    kernel_scratch: int | None = None  # a patch-stage step: scratch its fast kernel needs for the widest call
    notes: list[str] = field(default_factory=list)  # lines `Plan.dump()` prints under the step
    # the kernel call the step runs (compiler/schedule/kernels_table.py, set by plan_for), and for a token
    # stage the call of each op it runs (op name -> call)
    kernel: KernelCall | None = None
    kernels: dict[str, KernelCall] = field(default_factory=dict)


@dataclass
class Plan:
    graph: Graph
    schedule: str
    steps: list[Step]
    buffers: list[Buffer]
    tensor_buffer: dict[str, Buffer]
    arena_bytes: int
    lower_bound: int
    io: str = "arena"  # where the graph input/output live: "arena" or "external"
    detail: dict[str, Any] = field(default_factory=dict)  # the planner's summary (dump, report.json)
    stages: list[Stage] = field(default_factory=list)  # patch or token stages, in step order
    loop_overhead: int = 0  # modelled per-call cost the MACs do not show, in MAC-equivalents

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.steps)

    @property
    def input_bytes(self) -> int:
        return sum(self.graph.t(n).nbytes for n in self.graph.inputs)

    @property
    def output_bytes(self) -> int:
        return sum(self.graph.t(n).nbytes for n in self.graph.outputs)

    def location(self, tensor: str) -> tuple[str, int]:
        """(region, byte offset) of a tensor: region is arena, input or output."""
        b = self.tensor_buffer[tensor]
        return b.region, b.offset

    def live_bytes_per_step(self) -> list[int]:
        """Arena bytes live during each step (the curve MCUNetV2 plots)."""
        return live_bytes(self.buffers, len(self.steps))

    def check(self) -> None:
        """Raise PlanError unless no two arena buffers live at one step share a byte and every
        buffer lies inside the arena (arena_bytes)."""
        problems = buffer_problems(self.buffers, self.pool_bytes())
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise PlanError(f"plan {self.graph.name} ({self.schedule}): " + "; ".join(problems[:3]) + more)

    def pool_bytes(self) -> dict[str, int]:
        """Pool name -> bytes it must provide: {"arena": arena_bytes} for a single-pool plan, or
        what `compiler.schedule.pools.place_pools` recorded in detail["pools"]."""
        return dict(self.detail.get("pools") or {"arena": self.arena_bytes})

    def render(self, width: int = 64) -> str:
        """The arena over time as text, like TFLite-Micro's `PrintMemoryPlan`
        (`tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc`, via `render_buffers`):
        one row per step, named by its op and ending with its kernel call; one timeline per pool
        for a plan over several pools."""
        w = max((len(s.op.name) for s in self.steps), default=0)
        labels = [f"{s.op.name:<{min(w, 28)}.28s}" for s in self.steps]
        tails = [_kernel_tail(s) for s in self.steps]
        pools = self.pool_bytes()
        if list(pools) == ["arena"]:
            return render_buffers(self.buffers, len(self.steps), self.arena_bytes, labels, width, tails)
        parts = []
        for name, size in pools.items():
            mine = [b for b in self.buffers if b.pool == name]
            parts.append(f"pool {name}:\n" + render_buffers(mine, len(self.steps), size, labels, width, tails))
        return "\n".join(parts)

    def dump(self) -> str:
        g = self.graph
        lines = [
            f"plan {g.name}: schedule={self.schedule} arena={self.arena_bytes} B "
            f"(lower bound {self.lower_bound} B) io={self.io} macs={self.macs}",
        ]
        for k, v in self.detail.items():
            lines.append(f"  {k}: {v}")
        lines.append("  buffers (offset, size, live steps, tensors):")
        for b in sorted(self.buffers, key=lambda b: (b.region, b.offset)):
            lines.append(
                f"    {b.region:7s} @{b.offset:>7d} {b.size:>7d} B  [{b.first:>3d}..{b.last:<3d}]  "
                f"{', '.join(b.tensors)}"
            )
        lines.append("  steps:")
        live = self.live_bytes_per_step()
        for i, s in enumerate(self.steps):
            extra = " in-place" if s.in_place else ""
            if s.scratch is not None:
                extra += f" scratch@{s.scratch.offset}+{s.scratch.size}"
            if s.stage is not None and s.stage.steps[0] == i:
                extra += f" [{s.stage.describe()}]"
            if s.kernel is not None and s.kernel.name:
                extra += f" kernel={s.kernel.describe()}"
            lines.append(f"    {i:>3d} {s.op.kind:18s} {s.op.name:28s} macs={s.macs:>9d} live={live[i]:>7d}{extra}")
            for note in s.notes:
                lines.append(f"          {note}")
        return "\n".join(lines)


def plan_cost(plan: Plan) -> int:
    """MACs plus the loop overhead a planner models (patch and token plans: per kernel call),
    in MAC-equivalents: what the choice ranks plans by."""
    return plan.macs + plan.loop_overhead


def plan_peak(plan: Plan) -> int:
    """SRAM bytes the plan needs besides the stack: its arena plus the graph input/output
    buffers that live outside it (io="external")."""
    extra = 0
    if plan.io == "external":
        extra = plan.input_bytes + plan.output_bytes
    return plan.arena_bytes + extra
def _kernel_tail(s: Step) -> str:
    """The kernel column of Plan.render: the step's call, or a token stage's calls."""
    if s.kernel is not None and s.kernel.name:
        return s.kernel.short()
    if s.kernels:
        fast = sum(c.dsp for c in s.kernels.values())
        return f"stage: {len(s.kernels)} ops, {fast} on DSP kernels"
    return ""


def step_macs(g: Graph, op: Op) -> int:
    return op_macs(g, op)
