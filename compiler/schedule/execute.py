"""Execute any Plan in numpy, byte for byte as the firmware will: the tests' bit-exactness oracle.

One arena array (plus the caller's input/output buffers for io="external"); every tensor is read
and written at the offsets and strides the plan gives. Layer-by-layer steps run their op on
whole tensors; a patch stage (`PatchStage`) runs patch by patch on the kernel calls of
`PatchPlan.patches()` (with their halo-cache copies); a token stage (`TokenStage`) runs its
loops over token groups and query blocks in its workspace, through the same offsets and strides
the generated C uses (`codegen/token.py`).

Each op is computed by the golden `compiler.golden.reference` function on the exact window and
per-edge padding of its call, so a plan is right when `run_plan(plan, x)` equals
`reference.run(graph, x)`. Before every step, arena bytes that no live buffer owns (and the
step's scratch) are overwritten with junk, so a lifetime or placement error shows up as a
wrong output here instead of only in the emulator.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from compiler.core.ir import VIEW_OPS, Graph, Op, Tensor
from compiler.golden import reference
from compiler.schedule.patch import PatchPlan, PatchStage
from compiler.schedule.plan import Plan, Step
from compiler.schedule.token import AttentionInfo, EmbedInfo, MlpInfo, TokenStage


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


def execute_plan(plan: Plan, inputs: Sequence[np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """Run `plan` (layer, patch or token) on `inputs` (one array per graph input, its shape or
    flat); returns every activation as it was right after the step that produced it (a patch
    stage's output after its last patch, a token stage's output), graph outputs included.
    `seed` picks the junk written into free arena bytes."""
    g = plan.graph
    mem = _Memory(plan, seed)
    for name, x in zip(g.inputs, inputs, strict=True):
        t = g.t(name)
        mem.tensor(name)[:] = np.asarray(x).astype(t.dtype).reshape(-1).view(np.int8)
    seen: dict[str, np.ndarray] = {}
    patch_stages = plan.patch_stages if isinstance(plan, PatchPlan) else []
    for i, step in enumerate(plan.steps):
        st = step.stage
        if isinstance(st, PatchStage):
            assert isinstance(plan, PatchPlan)
            if i == st.steps[0]:
                _run_stage(plan, mem, patch_stages.index(st))
                seen[st.output] = _value(g, mem, st.output)
            continue
        mem.clobber(i)
        if isinstance(st, TokenStage):
            _run_token_stage(g, mem, step, st)
            seen[st.unit.x_out] = _value(g, mem, st.unit.x_out)
            continue
        op = step.op
        y = op.outputs[0]
        if op.kind not in VIEW_OPS:  # a view shares its source's bytes
            env = {n: _value(g, mem, n) for n in op.inputs if n and not g.t(n).is_const}
            out = np.asarray(reference._OPS[op.kind](g, op, env)).astype(g.t(y).dtype).reshape(-1)
            mem.tensor(y)[:] = out.view(np.int8)
        seen[y] = _value(g, mem, y)
    for n in g.outputs:
        seen[n] = _value(g, mem, n)
    return seen


def run_plan(plan: Plan, inputs: Sequence[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """The graph outputs of `execute_plan`, in the graph's order (what `reference.run` returns)."""
    seen = execute_plan(plan, inputs, seed)
    return [seen[n] for n in plan.graph.outputs]


def _value(g: Graph, mem: _Memory, name: str) -> np.ndarray:
    """A tensor's current bytes as an array of its dtype and shape (a copy)."""
    t = g.t(name)
    return mem.tensor(name).copy().view(np.dtype(t.dtype)).reshape(t.shape)


def _run_stage(plan: PatchPlan, mem: _Memory, k: int) -> None:
    g = plan.graph
    for calls in plan.patches(k):
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


# -- token stages (compiler.schedule.token): the loops codegen/token.py writes in C -------------


def _run_token_stage(g: Graph, mem: _Memory, step: Step, st: TokenStage) -> None:
    """A token stage on the arena: reference ops on the same row groups, query blocks,
    workspace offsets and strides as the generated C."""
    arena = mem.regions["arena"]
    ws = arena[step.scratch.offset :] if step.scratch is not None else arena

    def region(t: str) -> tuple[np.ndarray, int]:
        b = mem.plan.tensor_buffer[t]
        if b.region in ("input", "output"):
            return mem.region(b.region), 0
        return arena, b.offset

    _exec_stage(g, st, region, ws)


def _rows(m: np.ndarray, off: int, rows: int, width: int) -> np.ndarray:
    return m[off : off + rows * width].reshape(rows, width)


def _strided(m: np.ndarray, off: int, shape: tuple[int, int], strides: tuple[int, int]) -> np.ndarray:
    idx = off + np.arange(shape[0])[:, None] * strides[0] + np.arange(shape[1])[None, :] * strides[1]
    return m[idx]


def _exec_stage(g: Graph, st: TokenStage, region, ws: np.ndarray) -> None:
    u = st.unit
    i = u.info
    grp, qb = st.group, st.qblock
    lay = st.workspace

    def wsv(name: str) -> tuple[np.ndarray, int]:
        return ws, lay[name][0]

    def run(op: Op, env: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(reference._OPS[op.kind](g, op, env)).astype(np.int8)

    lowrank = i.lowrank if isinstance(i, AttentionInfo | MlpInfo) else {}

    def fc(op: Op, x: np.ndarray) -> np.ndarray:
        """A projection on rows x: one FC, or a factorised (low-rank) one through its r-wide
        workspace rows (`AttentionInfo.lowrank` / `MlpInfo.lowrank`), as codegen's `fc_call`."""
        lr = lowrank.get(op.name)
        if lr is None:
            return run(op, {op.inputs[0]: x})
        pre, key, rank = lr
        rm, ro = wsv(key)
        _rows(rm, ro, len(x), rank)[...] = run(pre, {pre.inputs[0]: x})
        return run(op, {op.inputs[0]: _rows(rm, ro, len(x), rank).copy()})

    xm, xo = region(u.x_in)
    ym, yo = region(u.x_out)
    if isinstance(i, EmbedInfo):
        conv = i.conv
        img = xm[xo : xo + g.t(u.x_in).size].reshape(g.t(u.x_in).shape)
        p = g.t(conv.inputs[1]).shape[1]
        hp, wp, d, t = i.hp, g.t(conv.outputs[0]).shape[2], i.D, i.T
        for r in range(hp):
            # one row of patches: a [1, p, W, C] slice of the image -> tokens r*wp .. of X
            x = img[:, r * p : (r + 1) * p]
            out = _conv_rows(g, conv, x)
            base = yo + (i.token_offset + r * wp) * d
            ym[base : base + wp * d] = out.reshape(-1)
        for n, off in i.consts:
            c = g.t(n).data.reshape(-1)
            ym[yo + off * d : yo + off * d + c.size] = c
        if i.pos is not None:
            add = i.pos
            cur = ym[yo : yo + t * d].reshape(g.t(u.x_out).shape).copy()
            env = {n: (g.t(n).data if g.t(n).is_const else cur) for n in add.inputs}
            ym[yo : yo + t * d] = run(add, env).reshape(-1)
        return
    t, d = i.T, i.D
    if isinstance(i, MlpInfo):
        ln, fc1, fc2, add = i.ln, i.fc1, i.fc2, i.add
        hid = i.hidden
        for t0 in range(0, t, grp):
            n = min(grp, t - t0)
            x = _rows(xm, xo + t0 * d, n, d).copy()
            lm, lo = wsv("L")
            _rows(lm, lo, n, d)[...] = run(ln, {ln.inputs[0]: x})
            hm, ho = wsv("H")
            _rows(hm, ho, n, hid)[...] = fc(fc1, _rows(lm, lo, n, d).copy())
            for a in i.acts:
                _rows(hm, ho, n, hid)[...] = run(a, {a.inputs[0]: _rows(hm, ho, n, hid).copy()})
            _rows(lm, lo, n, d)[...] = fc(fc2, _rows(hm, ho, n, hid).copy())
            env = {u.x_in: x, fc2.outputs[0]: _rows(lm, lo, n, d).copy()}
            _rows(ym, yo + t0 * d, n, d)[...] = run(add, {k: env[k] for k in add.inputs})
        return
    assert isinstance(i, AttentionInfo)
    ln, fq, fk, fv, proj, add = i.ln, i.q, i.k, i.v, i.proj, i.add
    sb, sm, ob = i.scores, i.softmax, i.attn
    dq, dk, dv, dm, h = i.dq, i.dk, i.dv, i.dm, i.heads
    a, bk, bv, yo3 = i.a, i.bk, i.bv, i.yo
    lm, lo = wsv("L")
    km, ko = wsv("K")
    vm, vo = wsv("V")
    qm, qo = wsv("Q")
    sm_, so = wsv("S")
    om, oo = wsv("O")
    for t0 in range(0, t, grp):
        n = min(grp, t - t0)
        _rows(lm, lo, n, d)[...] = run(ln, {ln.inputs[0]: _rows(xm, xo + t0 * d, n, d).copy()})
        lv = _rows(lm, lo, n, d).copy()
        _rows(km, ko + t0 * dk, n, dk)[...] = fc(fk, lv)
        _rows(vm, vo + t0 * dv, n, dv)[...] = fc(fv, lv)
    dh, dvh = i.dh, i.dvh
    for t0 in range(0, t, qb):
        n = min(qb, t - t0)
        x = _rows(xm, xo + t0 * d, n, d).copy()
        _rows(lm, lo, n, d)[...] = run(ln, {ln.inputs[0]: x})
        _rows(qm, qo, n, dq)[...] = fc(fq, _rows(lm, lo, n, d).copy())
        for hh in range(h):
            qa = _strided(qm, qo + hh * a.batch, (n, dh), (a.row, a.col))
            kb = _strided(km, ko + hh * bk.batch, (dh, t), (bk.row, bk.col))
            if sb.attrs.get("transpose_b", False):
                kb = kb.T.copy()
            _rows(sm_, so, n, t)[...] = run(sb, {sb.inputs[0]: qa, sb.inputs[1]: kb})
            _rows(sm_, so, n, t)[...] = run(sm, {sm.inputs[0]: _rows(sm_, so, n, t).copy()})
            vb = _strided(vm, vo + hh * bv.batch, (t, dvh), (bv.row, bv.col))
            if ob.attrs.get("transpose_b", False):
                vb = vb.T.copy()
            res = run(ob, {ob.inputs[0]: _rows(sm_, so, n, t).copy(), ob.inputs[1]: vb})
            idx = oo + hh * yo3.batch + np.arange(n)[:, None] * yo3.row + np.arange(dvh)[None, :] * yo3.col
            om[idx] = res.reshape(n, dvh)
        _rows(lm, lo, n, dm)[...] = fc(proj, _rows(om, oo, n, dm).copy())
        env = {u.x_in: x, proj.outputs[0]: _rows(lm, lo, n, dm).copy()}
        _rows(ym, yo + t0 * d, n, d)[...] = run(add, {k: env[k] for k in add.inputs})


def _conv_rows(g: Graph, conv: Op, x: np.ndarray) -> np.ndarray:
    """The conv of one row of patches (kernel = stride, no padding): reference arithmetic."""
    p = reference.lower(g, conv)
    w = g.t(conv.inputs[1]).data.astype(np.int64)
    b = g.t(conv.inputs[2]).data.astype(np.int64) if len(conv.inputs) > 2 and conv.inputs[2] else 0
    kh, kw = w.shape[1:3]
    n, hh, ww, c = x.shape
    patches = (x.astype(np.int64) + p["input_offset"]).reshape(n, hh // kh, kh, ww // kw, kw, c)
    acc = np.einsum("nhiwjc,oijc->nhwo", patches, w + p["weights_offset"]) + b
    return reference._requant(acc, p)
