"""Layer-by-layer planning: tensor lifetimes and byte offsets in one static arena.

Each activation gets a buffer that lives from the step that writes it to the last step that
reads it; views (reshape) share their source's buffer. Buffers are placed by a greedy
first-fit over several orders (TFLite-Micro's GreedyMemoryPlanner uses one: size, largest
first) and the smallest arena wins. The graph input and output live where the caller keeps
them, outside the arena.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.core.ir import VIEW_OPS, Graph
from compiler.errors import ModelError
from compiler.schedule.plan import Buffer, Plan, Step, align, live_bytes, step_macs

ScratchFn = Callable[[Graph, int], int]


def _no_scratch(graph: Graph, step: int) -> int:
    return 0


def portable_scratch(graph: Graph, step: int) -> int:
    """Scratch bytes the portable kernel of a step needs whatever kernel table is in use
    (mt_lstm_s8_get_buffer_size: one int16 cell-state row); 0 for the others."""
    op = graph.ops[step]
    if op.kind == "lstm":
        from compiler.core.lstm import scratch_bytes

        return scratch_bytes(graph, op)
    return 0


def build_buffers(
    graph: Graph, scratch: ScratchFn = _no_scratch, io: str = "arena"
) -> tuple[list[Buffer], dict[str, Buffer]]:
    """Buffers with lifetimes (unplaced) for the layer-by-layer order of graph.ops.

    io="arena": the graph input and output are buffers in the arena like any other (the
    caller writes the input at its offset; its bytes are reused once it is consumed).
    io="external": they stay where the caller keeps them (a camera buffer, flash).
    """
    if io not in ("arena", "external"):
        raise ValueError(f"io must be 'arena' or 'external', not {io!r}")
    root: dict[str, str] = {}
    for op in graph.ops:
        if op.kind in VIEW_OPS:
            src = op.inputs[0]
            root[op.outputs[0]] = root.get(src, src)
    buffers: dict[str, Buffer] = {}
    tensor_buffer: dict[str, Buffer] = {}
    n = len(graph.ops)

    def buf_for(t: str) -> Buffer | None:
        r = root.get(t, t)
        tensor = graph.t(r)
        if tensor.is_const:
            return None
        if r not in buffers:
            is_input = r in graph.inputs
            region = "input" if is_input and io == "external" else "arena"
            buffers[r] = Buffer(name=r, size=align(tensor.nbytes), first=0 if is_input else n, last=-1, region=region)
        b = buffers[r]
        if t not in b.tensors:
            b.tensors.append(t)
        tensor_buffer[t] = b
        return b

    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            if t:
                b = buf_for(t)
                if b is not None:
                    b.last = max(b.last, i)
        for t in op.outputs:
            b = buf_for(t)
            if b is not None:
                b.first = min(b.first, i)
                b.last = max(b.last, i)
    for t in graph.inputs:
        buf_for(t)
    for t in graph.outputs:
        b = buf_for(t)
        if b is None:
            raise ModelError(f"graph output {t!r} is a constant")
        if b.name in graph.inputs:
            raise ModelError(f"graph output {t!r} is the graph input itself: nothing to compute")
        if io == "external":
            b.region = "output"
        b.last = n - 1
    out = list(buffers.values())
    for i in range(n):
        s = max(scratch(graph, i), portable_scratch(graph, i))
        if s > 0:
            sb = Buffer(name=f"scratch{i}", size=align(s), first=i, last=i, region="scratch")
            out.append(sb)
    return out, tensor_buffer


def place(buffers: list[Buffer]) -> int:
    """Assign offsets to arena/scratch buffers; returns the arena size. Tries several orders."""
    movable = [b for b in buffers if b.region in ("arena", "scratch")]
    orders: list[Callable[[Buffer], tuple]] = [
        lambda b: (-b.size, b.first),
        lambda b: (b.first, -b.size),
        lambda b: (-(b.last - b.first + 1) * b.size, b.first),
        lambda b: (-(b.last - b.first), -b.size),
    ]
    best: tuple[int, dict[str, int]] | None = None
    for key in orders:
        offsets = _first_fit(sorted(movable, key=key))
        size = max((offsets[b.name] + b.size for b in movable), default=0)
        if best is None or size < best[0]:
            best = (size, offsets)
    assert best is not None
    for b in movable:
        b.offset = best[1][b.name]
    return best[0]


def _first_fit(order: list[Buffer]) -> dict[str, int]:
    placed: list[tuple[Buffer, int]] = []
    offsets: dict[str, int] = {}
    for b in order:
        conflicts = sorted((off, off + p.size) for p, off in placed if p.overlaps_in_time(b))
        offset = 0
        for start, end in conflicts:
            if offset + b.size <= start:
                break
            offset = max(offset, end)
        offsets[b.name] = offset
        placed.append((b, offset))
    return offsets


def lower_bound(buffers: list[Buffer], n_steps: int) -> int:
    """The largest set of arena buffers live at once: no placement can beat it."""
    return max(live_bytes(buffers, n_steps), default=0)


def plan_layer(graph: Graph, scratch: ScratchFn = _no_scratch, io: str = "arena", in_place: bool | str = False) -> Plan:
    """in_place=True: depthwise/elementwise ops overwrite an input that dies at them
    (see compiler.schedule.inplace); same arithmetic, smaller arena."""
    buffers, tensor_buffer = build_buffers(graph, scratch, io)
    inplace_steps: dict[int, Buffer | None] = {}
    if in_place:
        from compiler.schedule.inplace import apply_in_place

        inplace_steps = apply_in_place(
            graph, buffers, tensor_buffer, depthwise="all" if in_place == "all" else "binding"
        )
    arena = place(buffers)
    steps = []
    for i, op in enumerate(graph.ops):
        sb = next((b for b in buffers if b.region == "scratch" and b.first == i), None)
        steps.append(Step(op=op, macs=step_macs(graph, op), scratch=sb, in_place=i in inplace_steps))
    return Plan(
        graph=graph,
        schedule="layer",
        steps=steps,
        buffers=buffers,
        tensor_buffer=tensor_buffer,
        arena_bytes=arena,
        lower_bound=lower_bound(buffers, len(steps)),
        io=io,
        detail={"in_place": len(inplace_steps)} if in_place else {},
    )
