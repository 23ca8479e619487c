"""Execute a Plan in numpy, byte for byte as the firmware will: one arena array, every
tensor read and written at the offsets and strides the plan gives, the patch stage run
patch by patch on the kernel calls of `PatchPlan.patches()` (with their halo-cache copies).

Each op is computed by the golden `compiler.reference` function on the exact window and
per-edge padding of its call, so a plan is right when `execute_plan(plan, x)` equals
`reference.run(graph, x)`. Before every step, arena bytes that no live buffer owns (and the
step's scratch) are overwritten with junk, so a lifetime or placement error shows up as a
wrong output here instead of only in the emulator.
"""

from __future__ import annotations

import copy

import numpy as np
from numpy.lib.stride_tricks import as_strided

from compiler import reference
from compiler.ir import Graph, Op, Tensor
from compiler.schedule.plan import Plan


class _Memory:
    def __init__(self, plan: Plan, seed: int) -> None:
        g = plan.graph
        self.plan = plan
        self.rng = np.random.default_rng(seed)
        self.regions = {
            "arena": self.rng.integers(-128, 128, max(plan.arena_bytes, 1), dtype=np.int8),
            "input": np.zeros(max(1, sum(g.t(n).nbytes for n in g.inputs)), np.int8),
            "output": np.zeros(max(1, sum(g.t(n).nbytes for n in g.outputs)), np.int8),
        }

    def region(self, name: str) -> np.ndarray:
        return self.regions["arena" if name == "scratch" else name]

    def view(self, region: str, offset: int, h: int, w: int, c: int, rs: int, cs: int) -> np.ndarray:
        buf = self.region(region)
        if h * w * c == 0:
            return np.zeros((h, w, c), np.int8)
        last = offset + (h - 1) * rs + (w - 1) * cs + c
        assert 0 <= offset and last <= buf.size, f"window [{offset}, {last}) outside {region} ({buf.size} B)"
        return as_strided(buf[offset:], shape=(h, w, c), strides=(rs, cs, 1), writeable=True)

    def tensor(self, name: str) -> np.ndarray:
        t = self.plan.graph.t(name)
        b = self.plan.tensor_buffer[name]
        off = b.offset if b.region in ("arena", "scratch") else 0
        return self.region(b.region)[off : off + t.nbytes]

    def clobber(self, step: int) -> None:
        """Junk into arena bytes no buffer live at `step` owns, and into the step's scratch."""
        arena = self.regions["arena"]
        keep = np.zeros(arena.size, bool)
        for b in self.plan.buffers:
            if b.region == "arena" and b.first <= step <= b.last:
                keep[b.offset : b.offset + b.size] = True
        junk = self.rng.integers(-128, 128, arena.size, dtype=np.int8)
        arena[~keep] = junk[~keep]
        s = self.plan.steps[step].scratch
        if s is not None:
            arena[s.offset : s.offset + s.size] = junk[s.offset : s.offset + s.size]


def execute_plan(plan: Plan, inputs: list[np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """Run `plan`; returns every activation as it was right after the step that produced it
    (the patch stage's output after its last patch), graph outputs included."""
    g = plan.graph
    mem = _Memory(plan, seed)
    for name, x in zip(g.inputs, inputs, strict=True):
        mem.tensor(name)[:] = np.asarray(x, np.int8).reshape(-1)
    seen: dict[str, np.ndarray] = {}
    stages = getattr(plan, "stages", None) or []
    stage_of = {i: k for k, st in enumerate(stages) for i in st.steps}
    for i, step in enumerate(plan.steps):
        if i in stage_of:
            st = stages[stage_of[i]]
            if i == st.steps[0]:
                _run_stage(plan, mem, stage_of[i])
                seen[st.output] = mem.tensor(st.output).copy().reshape(g.t(st.output).shape)
            continue
        mem.clobber(i)
        op = step.op
        env = {n: mem.tensor(n).copy().reshape(g.t(n).shape) for n in op.inputs if n and not g.t(n).is_const}
        y = op.outputs[0]
        out = np.asarray(reference._OPS[op.kind](g, op, env)).astype(g.t(y).dtype).reshape(-1)
        mem.tensor(y)[:] = out.view(np.int8) if out.dtype.itemsize == 1 else out[: g.t(y).nbytes]
        seen[y] = mem.tensor(y).copy().reshape(g.t(y).shape)
    for n in g.outputs:
        seen[n] = mem.tensor(n).copy().reshape(g.t(n).shape)
    return seen


def _run_stage(plan: Plan, mem: _Memory, k: int) -> None:
    g = plan.graph
    for calls in plan.patches(k):  # type: ignore[attr-defined]
        for call in calls:
            mem.clobber(call.step)
            op = g.ops[call.step]
            env: dict[str, np.ndarray] = {}
            for o in call.inputs:
                env[o.tensor] = mem.view(o.region, o.offset, o.h, o.w, o.c, o.row_stride, o.col_stride).copy()[None]
            o = call.output
            out = _window_op(g, op, call.pads, (1, o.h, o.w, o.c), env)
            mem.view(o.region, o.offset, o.h, o.w, o.c, o.row_stride, o.col_stride)[:] = out.reshape(o.h, o.w, o.c)
            for copy_ in (call.load, call.save):  # halo cache: cached columns in, shared ones out
                if copy_ is not None:
                    a, b = copy_
                    src = mem.view(a.region, a.offset, a.h, a.w, a.c, a.row_stride, a.col_stride).copy()
                    mem.view(b.region, b.offset, b.h, b.w, b.c, b.row_stride, b.col_stride)[:] = src


def _window_op(g: Graph, op: Op, pads: tuple[int, int, int, int], out_shape: tuple[int, ...], env) -> np.ndarray:
    """The reference op on a window: the op with the call's padding and output extent."""
    sub = copy.copy(g)
    sub.tensors = dict(g.tensors)
    y = op.outputs[0]
    t = g.t(y)
    sub.tensors[y] = Tensor(y, out_shape, t.dtype, t.quant)
    wop = Op(op.kind, op.name, list(op.inputs), list(op.outputs), dict(op.attrs))
    if op.kind == "pad":
        wop.attrs["paddings"] = [(0, 0), (pads[0], pads[1]), (pads[2], pads[3]), (0, 0)]
    elif "pads" in op.attrs:
        wop.attrs["pads"] = tuple(pads)
    if out_shape[1] * out_shape[2] == 0:
        return np.zeros(out_shape, np.int8)
    return np.asarray(reference._OPS[op.kind](sub, wop, env)).astype(np.int8).reshape(out_shape)
