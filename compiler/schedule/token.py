"""Token-overwriting planning for vision transformers (MCUFormer's memory schedule).

The planner recognizes three patterns in the IR and runs each as one *stage* step; everything
it does not recognize runs layer by layer (so any graph still gets a plan):

- ``embed``: conv2d (kernel = stride, no padding) on the graph input -> reshape to tokens ->
  [concat with constant tokens] -> [add of a constant (position embedding)]. **Patch-embedding
  decomposition**: the convolution is computed one row of patches at a time straight into the
  token buffer X (each patch is one token), the class token is copied in, and the position
  embedding is added in place: no full-resolution intermediate, no conv/concat/add buffers.
- ``attention`` (pre-norm): x -> layer_norm -> q/k/v fully_connected -> head split (reshape /
  transpose) -> batch_matmul(q, k) -> softmax -> batch_matmul(., v) -> head merge -> proj
  fully_connected -> add(x, .). **Operator integration**: the LayerNorm output exists only for
  the token group being consumed (never [T, D]); head split/merge transposes become strides of
  the batch_matmul kernel (no copies). K and V are computed for all tokens, `group` tokens at a
  time; then **row-wise attention**: for each block of `qblock` queries and each head, the score
  rows [qblock, T] are computed, soft-maxed in place and multiplied with V. **Token
  overwriting**: the residual add writes the block's result over its own input rows of X.
- ``mlp`` (pre-norm): x -> layer_norm -> fully_connected -> gelu -> fully_connected -> add(x, .):
  **token-wise MLP**: the hidden [group, ratio*D] exists for `group` tokens at a time, and the
  result overwrites those tokens of X.

A factorised (low-rank) projection, MCUFormer's in -> r -> out linear (two fully_connected ops,
the first's output read only by the second), may stand for any of q, k, v, proj, fc1, fc2: the
stage calls both FCs per row group, the r-wide rows living in workspace parts idle at that point
(`_place_lowrank`), so a low-rank block keeps the stage's memory (Liang et al., "MCUFormer",
NeurIPS 2023).

A fused qkv projection (timm / `nn.MultiheadAttention` style: one Linear of 3*D outputs, reshaped
and split into q, k, v) is first split into three projections by the exact rewrite
`compiler.passes.split_qkv.split_fused_qkv`, so it matches the attention pattern too.

Overwriting X is only done when nothing after the stage reads the stage's input; otherwise the
stage writes a separate output buffer (same loops). Every stage computes exactly the bytes the
layer-by-layer graph computes (`execute` checks it in Python, the emulator tests in QEMU).

Knobs: `group` (tokens per MLP / K-V group) and `qblock` (queries per attention block). The
planner proposes the plans on the Pareto front of (estimated cost, peak): cost = MACs + a loop
overhead of `CALL_OVERHEAD` MAC-equivalents per kernel call (smaller groups make more calls);
`choose_plan` takes the cheapest that fits `--sram`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.errors import ModelError
from compiler.ir import VIEW_OPS, Graph, Op, op_macs
from compiler.passes.split_qkv import split_fused_qkv
from compiler.schedule.layer import ScratchFn, lower_bound, place
from compiler.schedule.plan import Buffer, Plan, Step, align

CALL_OVERHEAD = 400  # MAC-equivalents per kernel call (call, argument setup, loop bookkeeping)
KNOB_VALUES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
STAGE_KINDS = ("token_embed", "token_attention", "token_mlp")


@dataclass
class Stride3:
    """Element (b, i, j) of an operand lives at offset b*batch + i*row + j*col of its buffer."""

    batch: int
    row: int
    col: int


@dataclass
class Unit:
    kind: str  # "embed" | "attention" | "mlp"
    ops: list[Op]
    lo: int  # index range in graph.ops (inclusive)
    hi: int
    x_in: str
    x_out: str
    info: dict[str, Any] = field(default_factory=dict)


# -- pattern matching ---------------------------------------------------------------------


class _Graph:
    def __init__(self, g: Graph) -> None:
        self.g = g
        self.index = {id(op): i for i, op in enumerate(g.ops)}
        self.prod: dict[str, Op] = {}
        self.cons: dict[str, list[Op]] = {}
        for op in g.ops:
            for t in op.outputs:
                self.prod[t] = op
            for t in op.inputs:
                if t:
                    self.cons.setdefault(t, []).append(op)

    def only(self, t: str) -> Op | None:
        c = self.cons.get(t, [])
        return c[0] if len(c) == 1 and t not in self.g.outputs else None

    def views_to(self, t: str, stop: str) -> tuple[list[Op], Op | None]:
        """Follow single-consumer reshape/transpose ops from t to the first op of kind `stop`."""
        chain: list[Op] = []
        op = self.only(t)
        while op is not None and op.kind in ("reshape", "transpose"):
            chain.append(op)
            op = self.only(op.outputs[0])
        return chain, (op if op is not None and op.kind == stop else None)


def _tokens(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(T, D) of a [1.., T, D] token tensor."""
    if len(shape) < 2 or any(d != 1 for d in shape[:-2]):
        return None
    return shape[-2], shape[-1]


def _fit3(off: np.ndarray) -> Stride3 | None:
    """Strides of an offset array of shape [..batch, M, N] (batch flattened), or None."""
    o = off.reshape(-1, off.shape[-2], off.shape[-1])
    if o.flat[0] != 0:
        return None
    sb = int(o[1, 0, 0]) if o.shape[0] > 1 else 0
    sr = int(o[0, 1, 0]) if o.shape[1] > 1 else 0
    sc = int(o[0, 0, 1]) if o.shape[2] > 1 else 0
    b, i, j = np.meshgrid(*(np.arange(n) for n in o.shape), indexing="ij")
    if not np.array_equal(o, b * sb + i * sr + j * sc):
        return None
    return Stride3(sb, sr, sc)


def _forward(g: Graph, root: str, chain: list[Op]) -> np.ndarray:
    idx = np.arange(g.t(root).size).reshape(g.t(root).shape)
    for op in chain:
        idx = (
            np.transpose(idx, tuple(op.attrs["perm"]))
            if op.kind == "transpose"
            else idx.reshape(g.t(op.outputs[0]).shape)
        )
    return idx


def _backward(g: Graph, root: str, chain: list[Op]) -> np.ndarray:
    """Offsets in `root` (the chain's last output) of the chain's first input's elements."""
    idx = np.arange(g.t(root).size).reshape(g.t(root).shape)
    for op in reversed(chain):
        if op.kind == "transpose":
            idx = np.transpose(idx, tuple(int(a) for a in np.argsort(op.attrs["perm"])))
        else:
            idx = idx.reshape(g.t(op.inputs[0]).shape)
    return idx


def _is_fc(op: Op | None, x: str) -> bool:
    return op is not None and op.kind == "fully_connected" and op.inputs[0] == x


def _residual(G: _Graph, t: str, x: str) -> Op | None:
    add = G.only(t)
    if add is None or add.kind != "add" or set(add.inputs) != {t, x} or add.inputs[0] == add.inputs[1]:
        return None
    g = G.g
    if g.t(add.outputs[0]).shape != g.t(x).shape or add.attrs.get("activation", "none") != "none":
        return None
    return add


def _factored(G: _Graph, fc: Op, first: dict[int, Op]) -> Op:
    """A factorised (low-rank) linear, MCUFormer's in -> r -> out: `fc` whose output's only
    consumer is a second fully_connected on it. Returns that second FC (recording `fc` as its
    first in `first`), or `fc` itself when it is one dense linear."""
    nxt = G.only(fc.outputs[0])
    if not _is_fc(nxt, fc.outputs[0]):
        return fc
    assert nxt is not None
    first[id(nxt)] = fc
    return nxt


def _mlp_runs(G: _Graph, lo: str) -> tuple[list[Op], list[Op], list[Op]] | None:
    """The MLP after LayerNorm output `lo` as (fc1 run, activations, fc2 run): a run is one FC or
    two (a factorised linear). Without activations, 3 FCs are read as a factorised fc1 + fc2."""
    seq: list[Op] = []
    t = lo
    op = G.only(t)
    while op is not None and (_is_fc(op, t) or op.kind == "gelu"):
        seq.append(op)
        t = op.outputs[0]
        op = G.only(t)
    kinds = "".join("f" if o.kind == "fully_connected" else "a" for o in seq)
    head = len(kinds) - len(kinds.lstrip("f"))
    tail = len(kinds) - len(kinds.rstrip("f"))
    if "a" not in kinds:
        if not 2 <= len(kinds) <= 4:
            return None
        head, tail = len(kinds) - len(kinds) // 2, len(kinds) // 2
    if not (1 <= head <= 2 and 1 <= tail <= 2) or "f" in kinds[head : len(kinds) - tail]:
        return None
    return seq[:head], seq[head : len(seq) - tail], seq[len(seq) - tail :]


def _lowrank_info(g: Graph, lin: dict[str, list[Op]]) -> dict[str, tuple[Op, str, int]]:
    """Factorised linears of a unit: name of the second FC -> (first FC, name of the workspace
    part holding the rank-r intermediate rows ("R" + role), r)."""
    return {ops[-1].name: (ops[0], "R" + role, _tokens(g.t(ops[0].outputs[0]).shape)[1])  # type: ignore[index]
            for role, ops in lin.items() if len(ops) == 2}  # fmt: skip


def _match_mlp(G: _Graph, ln: Op) -> Unit | None:
    g = G.g
    x, lo = ln.inputs[0], ln.outputs[0]
    if _tokens(g.t(x).shape) is None:
        return None
    runs = _mlp_runs(G, lo)
    if runs is None:
        return None
    lin1, acts, lin2 = runs
    fc1, fc2 = lin1[-1], lin2[-1]
    add = _residual(G, fc2.outputs[0], x)
    if add is None:
        return None
    ops = [ln, *lin1, *acts, *lin2, add]
    t, d = _tokens(g.t(x).shape)  # type: ignore[misc]
    info = {"ln": ln, "fc1": fc1, "acts": acts, "fc2": fc2, "add": add, "T": t, "D": d,
            "lowrank": _lowrank_info(g, {"fc1": lin1, "fc2": lin2})}  # fmt: skip
    return _unit(G, "mlp", ops, x, add.outputs[0], info)


def _match_attention(G: _Graph, ln: Op) -> Unit | None:
    g = G.g
    x, lo = ln.inputs[0], ln.outputs[0]
    td = _tokens(g.t(x).shape)
    fcs = G.cons.get(lo, [])
    if td is None or len(fcs) != 3 or not all(_is_fc(f, lo) for f in fcs):
        return None
    first: dict[int, Op] = {}  # the second FC of a factorised projection -> its first FC
    fcs = [_factored(G, f, first) for f in fcs]
    chains: dict[int, tuple[list[Op], Op, int]] = {}
    for f in fcs:
        chain, bmm = G.views_to(f.outputs[0], "batch_matmul")
        if bmm is None:
            return None
        last = chain[-1].outputs[0] if chain else f.outputs[0]
        chains[id(f)] = (chain, bmm, bmm.inputs.index(last))
    # the scores matmul takes q (operand 0) and k (operand 1); the output matmul takes v (operand 1)
    by_role: dict[str, Op] = {}
    for f in fcs:
        _, bmm, pos = chains[id(f)]
        sm = G.only(bmm.outputs[0])
        if sm is not None and sm.kind == "softmax":
            by_role["q" if pos == 0 else "k"] = f
        elif pos == 1:
            by_role["v"] = f
    if set(by_role) != {"q", "k", "v"}:
        return None
    fq, fk, fv = by_role["q"], by_role["k"], by_role["v"]
    s_bmm = chains[id(fq)][1]
    if chains[id(fk)][1] is not s_bmm:
        return None
    softmax = G.only(s_bmm.outputs[0])
    assert softmax is not None
    o_bmm = G.only(softmax.outputs[0])
    if o_bmm is None or o_bmm.kind != "batch_matmul" or o_bmm.inputs[0] != softmax.outputs[0]:
        return None
    if chains[id(fv)][1] is not o_bmm:
        return None
    merge, proj = G.views_to(o_bmm.outputs[0], "fully_connected")
    if proj is None:
        return None
    proj = _factored(G, proj, first)
    om = merge[-1].outputs[0] if merge else o_bmm.outputs[0]
    add = _residual(G, proj.outputs[0], x)
    if add is None:
        return None
    t = td[0]
    tq, tk, tv, to = (_tokens(g.t(n).shape) for n in (fq.outputs[0], fk.outputs[0], fv.outputs[0], om))
    if None in (tq, tk, tv, to) or {tq[0], tk[0], tv[0], to[0]} != {t}:  # type: ignore[index]
        return None
    dq, dk, dv, dm = tq[1], tk[1], tv[1], to[1]  # type: ignore[index]
    # operand strides relative to the [T, D] buffers each one lives in
    a = _fit3(_forward(g, fq.outputs[0], chains[id(fq)][0]))
    bk = _fit3(_forward(g, fk.outputs[0], chains[id(fk)][0]))
    bv = _fit3(_forward(g, fv.outputs[0], chains[id(fv)][0]))
    yo = _fit3(_backward(g, om, merge))
    if a is None or bk is None or bv is None or yo is None:
        return None
    if s_bmm.attrs.get("transpose_b", False):  # B is [.., N, K]: (b, k, n) at b*batch + n*row + k*col
        bk = Stride3(bk.batch, bk.col, bk.row)
    if o_bmm.attrs.get("transpose_b", False):
        bv = Stride3(bv.batch, bv.col, bv.row)
    heads = int(np.prod(g.t(s_bmm.outputs[0]).shape[:-2]))
    # the token axis must be the row axis of q and of the output, the column axis of k^T, the
    # row axis of v; the head/feature axes must stay inside one token row
    ok = (
        a.row == dq and a.col == 1 and bk.col == dk and bv.row == dv and yo.row == dm and yo.col == 1
        and _inside_row(a.batch, 1, heads, g.t(s_bmm.inputs[0]).shape[-1], dq)
        and _inside_row(bk.batch, bk.row, heads, g.t(s_bmm.inputs[0]).shape[-1], dk)
        and _inside_row(bv.batch, bv.col, heads, g.t(o_bmm.outputs[0]).shape[-1], dv)
        and _inside_row(yo.batch, 1, heads, g.t(o_bmm.outputs[0]).shape[-1], dm)
    )  # fmt: skip
    if not ok:
        return None
    ops = [ln, *first.values(), fq, fk, fv, *chains[id(fq)][0], *chains[id(fk)][0], *chains[id(fv)][0]]
    ops += [s_bmm, softmax, o_bmm, *merge, proj, add]
    lin = {role: ([first[id(f)]] if id(f) in first else []) + [f] for role, f in
           (("q", fq), ("k", fk), ("v", fv), ("proj", proj))}  # fmt: skip
    info = {
        "ln": ln, "q": fq, "k": fk, "v": fv, "scores": s_bmm, "softmax": softmax, "attn": o_bmm,
        "proj": proj, "add": add, "heads": heads, "T": t, "D": td[1], "dq": dq, "dk": dk, "dv": dv, "dm": dm,
        "dh": g.t(s_bmm.inputs[0]).shape[-1], "dvh": g.t(o_bmm.outputs[0]).shape[-1],
        "a": a, "bk": bk, "bv": bv, "yo": yo, "lowrank": _lowrank_info(g, lin),
    }  # fmt: skip
    return _unit(G, "attention", ops, x, add.outputs[0], info)


def _inside_row(batch_stride: int, inner_stride: int, heads: int, inner: int, width: int) -> bool:
    return (heads - 1) * batch_stride + (inner - 1) * inner_stride < width and batch_stride >= 0 and inner_stride >= 0


def _match_embed(G: _Graph, conv: Op) -> Unit | None:
    g = G.g
    a = conv.attrs
    w = g.t(conv.inputs[1])
    if conv.inputs[0] not in g.inputs or len(g.t(conv.inputs[0]).shape) != 4:
        return None
    if tuple(a["stride"]) != tuple(w.shape[1:3]) or tuple(a["pads"]) != (0, 0, 0, 0) or tuple(a["dilation"]) != (1, 1):
        return None
    ih, iw = g.t(conv.inputs[0]).shape[1:3]
    _, hp, wp, d = g.t(conv.outputs[0]).shape
    if hp * w.shape[1] != ih or wp * w.shape[2] != iw:
        return None
    rs = G.only(conv.outputs[0])
    if rs is None or rs.kind != "reshape" or _tokens(g.t(rs.outputs[0]).shape) != (hp * wp, d):
        return None
    ops, t = [conv, rs], rs.outputs[0]
    info: dict[str, Any] = {"conv": conv, "token_offset": 0, "consts": [], "pos": None}
    nxt = G.only(t)
    if nxt is not None and nxt.kind == "concat" and _tokens(g.t(nxt.outputs[0]).shape) is not None:
        axis = nxt.attrs["axis"] % len(g.t(nxt.outputs[0]).shape)
        if axis != len(g.t(nxt.outputs[0]).shape) - 2:
            return None
        off = 0
        for n in nxt.inputs:
            nt = _tokens(g.t(n).shape)
            if nt is None:
                return None
            if n == t:
                info["token_offset"] = off
            elif g.t(n).is_const:
                info["consts"].append((n, off))
            else:
                return None
            off += nt[0]
        info["concat"] = nxt
        ops.append(nxt)
        t = nxt.outputs[0]
        nxt = G.only(t)
    if nxt is not None and nxt.kind == "add" and nxt.attrs.get("activation", "none") == "none":
        other = [n for n in nxt.inputs if n != t]
        if len(other) == 1 and g.t(other[0]).is_const and g.t(other[0]).shape == g.t(t).shape:
            info["pos"] = nxt
            ops.append(nxt)
            t = nxt.outputs[0]
    info["T"], info["D"] = _tokens(g.t(t).shape)  # type: ignore[misc]
    return _unit(G, "embed", ops, conv.inputs[0], t, info)


def _unit(G: _Graph, kind: str, ops: list[Op], x_in: str, x_out: str, info: dict[str, Any]) -> Unit | None:
    idx = sorted(G.index[id(op)] for op in ops)
    lo, hi = idx[0], idx[-1]
    if hi - lo + 1 != len(ops):  # some other op runs in the middle of the pattern
        return None
    return Unit(kind, ops, lo, hi, x_in, x_out, info)


def match_units(g: Graph) -> list[Unit]:
    """The embed / attention / mlp units of a graph, in op order, non-overlapping."""
    G = _Graph(g)
    units: list[Unit] = []
    i = 0
    while i < len(g.ops):
        op = g.ops[i]
        u = None
        if op.kind == "layer_norm":
            u = _match_attention(G, op) or _match_mlp(G, op)
        elif op.kind == "conv2d":
            u = _match_embed(G, op)
        if u is not None and u.lo == i:
            units.append(u)
            i = u.hi + 1
        else:
            i += 1
    return units


# -- planning -----------------------------------------------------------------------------


def _overwrites(g: Graph, u: Unit) -> bool:
    """The stage may write its output over its input: nothing after it reads the input."""
    if u.kind == "embed" or u.x_in in g.inputs or u.x_in in g.outputs:
        return False
    later = [op for op in g.ops[u.hi + 1 :] if u.x_in in op.inputs]
    return not later


def _workspace(u: Unit, group: int, qblock: int, kernel_scratch: int = 0) -> dict[str, tuple[int, int]]:
    """Sub-buffers of a stage's workspace: name -> (offset, size) in bytes. "F" is the scratch
    the stage's fast kernels share (one kernel call at a time): the largest any of them asks."""
    parts: list[tuple[str, int]] = []
    if u.kind == "attention":
        i = u.info
        t, d = i["T"], i["D"]
        parts = [
            ("K", t * i["dk"]),
            ("V", t * i["dv"]),
            ("L", max(min(group, t), min(qblock, t)) * max(d, i["dm"])),  # LN rows; later proj rows
            ("Q", min(qblock, t) * i["dq"]),
            ("S", min(qblock, t) * t),
            ("O", min(qblock, t) * i["dm"]),
        ]
    elif u.kind == "mlp":
        i = u.info
        t, d = i["T"], i["D"]
        hid = i["fc1"].outputs[0]
        parts = [("L", min(group, t) * d), ("H", min(group, t) * i["hidden"])]
        del hid
    out: dict[str, tuple[int, int]] = {}
    off = 0
    for name, size in parts:
        out[name] = (off, size)
        off += align(size)
    off = _place_lowrank(u, group, qblock, out, off)
    if kernel_scratch > 0:
        out["F"] = (off, kernel_scratch)
    return out


def _place_lowrank(u: Unit, group: int, qblock: int, ws: dict[str, tuple[int, int]], end: int) -> int:
    """Add the rank-r intermediate rows of each factorised linear to the workspace layout `ws`
    (parts ending at `end`); returns the new end. In attention they reuse parts idle in that phase:
    K/V projections (group rows) the Q..O parts, the q projection (query block rows) S..O, the
    output projection Q..S (each read before the next kernel writes). What does not fit there, and
    the MLP's, share one extra part "R" (the factorised linears of a stage run one after another)."""
    lr = u.info.get("lowrank") or {}
    if not lr:
        return end
    t = u.info["T"]
    g, q = min(group, t), min(qblock, t)

    def span(a: str, b: str) -> tuple[int, int]:
        return ws[a][0], ws[b][0] + ws[b][1] - ws[a][0]

    free = {"Rk": (g, *span("Q", "O")), "Rv": (g, *span("Q", "O")), "Rq": (q, *span("S", "O")),
            "Rproj": (q, *span("Q", "S"))} if u.kind == "attention" else {}  # fmt: skip
    rows = {"Rfc1": g, "Rfc2": g}
    extra = 0
    pending: list[tuple[str, int]] = []
    for _, key, rank in lr.values():
        size = (free[key][0] if key in free else rows[key]) * rank
        if key in free and size <= free[key][2]:
            ws[key] = (free[key][1], size)
        else:
            pending.append((key, size))
            extra = max(extra, size)
    for key, size in pending:
        ws[key] = (end, size)
    return end + align(extra) if extra else end


def _calls(u: Unit, group: int, qblock: int) -> int:
    i = u.info
    if u.kind == "embed":
        return int(i["hp"]) + len(i["consts"]) + 1
    t = i["T"]
    lr = [key for _, key, _ in (i.get("lowrank") or {}).values()]  # one more FC call per factorised linear
    if u.kind == "attention":
        kv, qp = sum(k in ("Rk", "Rv") for k in lr), sum(k in ("Rq", "Rproj") for k in lr)
        return math.ceil(t / group) * (3 + kv) + math.ceil(t / qblock) * (4 + qp + 3 * i["heads"])
    return math.ceil(t / group) * (4 + len(i["acts"]) + len(lr))


def plan_token(
    graph: Graph,
    io: str = "arena",
    group: int = 8,
    qblock: int = 8,
    units: list[Unit] | None = None,
    scratch: ScratchFn | None = None,
) -> Plan:
    """The token plan of `graph` with the given knobs (see the module docstring). `scratch`:
    per-op kernel scratch bytes (codegen/kernels.py); a stage reserves the largest of its ops'.
    A fused qkv projection is split first (`split_fused_qkv`); the plan's graph is then the split one."""
    if units is None:
        graph = split_fused_qkv(graph)
        units = match_units(graph)
    if not units:
        raise ModelError(f"{graph.name}: no transformer pattern found for the token planner")
    g = graph
    for u in units:
        if u.kind == "mlp":
            u.info["hidden"] = g.t(u.info["fc1"].outputs[0]).shape[-1]
        if u.kind == "embed":
            u.info["hp"] = g.t(u.info["conv"].outputs[0]).shape[1]
    start = {u.lo: u for u in units}
    index = {id(op): k for k, op in enumerate(g.ops)}
    # step list: (op or stage, reads, writes)
    steps: list[Step] = []
    rw: list[tuple[list[str], list[str]]] = []
    alias: dict[str, str] = {}
    ws_sizes: list[int] = []
    overhead = 0
    i = 0
    while i < len(g.ops):
        if i in start:
            u = start[i]
            over = _overwrites(g, u)
            if over:
                alias[u.x_out] = u.x_in
            ks = max((scratch(g, index[id(o)]) for o in u.ops), default=0) if scratch is not None else 0
            ws = _workspace(u, group, qblock, ks)
            notes = _notes(u, group, qblock, over) + _lowrank_notes(u)
            detail = {"unit": u, "group": min(group, u.info["T"]), "qblock": min(qblock, u.info["T"]),
                      "overwrite": over, "ws": ws, "notes": notes}  # fmt: skip
            name = u.ops[-1].name if u.kind != "embed" else u.ops[0].name
            op = Op(f"token_{u.kind}", f"{name}@{u.kind}", [u.x_in], [u.x_out])
            steps.append(Step(op=op, macs=sum(op_macs(g, o) for o in u.ops), detail=detail))
            rw.append(([u.x_in], [u.x_out]))
            ws_sizes.append(max((o + align(s) for o, s in ws.values()), default=0))  # parts may share bytes
            overhead += _calls(u, group, qblock) * CALL_OVERHEAD
            i = u.hi + 1
        else:
            op = g.ops[i]
            if op.kind in VIEW_OPS:
                alias[op.outputs[0]] = op.inputs[0]
            steps.append(Step(op=op, macs=op_macs(g, op)))
            rw.append(([t for t in op.inputs if t], list(op.outputs)))
            ws_sizes.append(align(scratch(g, i)) if scratch is not None else 0)
            overhead += CALL_OVERHEAD
            i += 1
    buffers, tensor_buffer = _buffers(g, rw, alias, ws_sizes, io)
    for k, s in enumerate(steps):
        if ws_sizes[k]:
            s.scratch = next(b for b in buffers if b.name == f"ws{k}")
            if "ws" in s.detail:
                s.scratch.tensors = [f"{n}@+{o}:{sz}" for n, (o, sz) in s.detail["ws"].items()]
    arena = place(buffers)
    detail = {
        "group": group,
        "qblock": qblock,
        "stages": ", ".join(f"{u.kind}[{u.lo}..{u.hi}]" for u in units),
        "loop_overhead": overhead,
        "cost": sum(s.macs for s in steps) + overhead,
    }
    return Plan(
        graph=g,
        schedule="token",
        steps=steps,
        buffers=buffers,
        tensor_buffer=tensor_buffer,
        arena_bytes=arena,
        lower_bound=lower_bound(buffers, len(steps)),
        io=io,
        detail=detail,
    )


def _notes(u: Unit, group: int, qblock: int, over: bool) -> list[str]:
    i = u.info
    w = "overwrites its input tokens" if over else "writes a new token buffer (input still read later)"
    if u.kind == "embed":
        return [
            f"patch embedding by rows of patches: {i['hp']} conv calls write tokens "
            f"{i['token_offset']}.. of X [{i['T']}x{i['D']}] directly"
            + (f"; {len(i['consts'])} constant token(s) copied" if i["consts"] else "")
            + ("; position embedding added in place" if i["pos"] is not None else "")
        ]
    t = i["T"]
    g, q = min(group, t), min(qblock, t)
    if u.kind == "attention":
        return [
            f"K,V [{t}x{i['dk']}], [{t}x{i['dv']}] for all tokens, {g} tokens per group (LayerNorm fused per group)",
            f"row-wise attention: {math.ceil(t / q)} blocks of {q} queries x {i['heads']} heads, "
            f"scores [{q}x{t}] per head (softmax in place); head split/merge as strides",
            f"proj + residual add per query block: {w}",
        ]
    return [f"token-wise MLP: {math.ceil(t / g)} groups of {g} tokens, hidden [{g}x{i['hidden']}]; {w}"]


def _lowrank_notes(u: Unit) -> list[str]:
    lr = u.info.get("lowrank") or {}
    if not lr:
        return []
    parts = ", ".join(f"{key[1:]} (rank {rank})" for _, key, rank in lr.values())
    return [f"low-rank projections {parts}: two FC calls per row group through rank-r rows in the workspace"]


def _buffers(
    g: Graph, rw: list[tuple[list[str], list[str]]], alias: dict[str, str], ws_sizes: list[int], io: str
) -> tuple[list[Buffer], dict[str, Buffer]]:
    def root(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    n = len(rw)
    buffers: dict[str, Buffer] = {}
    tb: dict[str, Buffer] = {}

    def buf(t: str) -> Buffer | None:
        r = root(t)
        if g.t(r).is_const:
            return None
        if r not in buffers:
            region = "input" if r in g.inputs and io == "external" else "arena"
            size = max(g.t(x).nbytes for x in [r, *[a for a in alias if root(a) == r]])
            buffers[r] = Buffer(name=r, size=align(size), first=0 if r in g.inputs else n, last=-1, region=region)
        b = buffers[r]
        if t not in b.tensors:
            b.tensors.append(t)
        tb[t] = b
        return b

    for k, (reads, writes) in enumerate(rw):
        for t in reads:
            b = buf(t)
            if b is not None:
                b.last = max(b.last, k)
        for t in writes:
            b = buf(t)
            if b is not None:
                b.first = min(b.first, k)
                b.last = max(b.last, k)
    for t in g.outputs:
        b = buf(t)
        assert b is not None
        if io == "external":
            b.region = "output"
        b.last = n - 1
    out = list(buffers.values())
    for k, s in enumerate(ws_sizes):
        if s:
            out.append(Buffer(name=f"ws{k}", size=s, first=k, last=k, region="scratch"))
    return out, tb


def candidates(graph: Graph, io: str = "arena", scratch: ScratchFn | None = None) -> list[Plan]:
    """Token plans on the Pareto front of (cost, peak) over the knob grid; [] without a match."""
    graph = split_fused_qkv(graph)
    units = match_units(graph)
    if not any(u.kind in ("attention", "mlp") for u in units):
        return []
    t = max(u.info["T"] for u in units)
    values = sorted({v for v in KNOB_VALUES if v < t} | {t})
    plans = []
    for grp in values:
        for qb in values:
            plans.append(plan_token(graph, io, grp, qb, units, scratch))
    plans.sort(key=lambda p: (p.detail["cost"], p.arena_bytes))
    front: list[Plan] = []
    for p in plans:
        if not front or p.arena_bytes < front[-1].arena_bytes:
            front.append(p)
    return front


# -- execution in Python (the plan's own arithmetic and memory layout) --------------------


def execute(plan: Plan, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run a token plan step by step on a simulated arena with the reference kernels applied to
    the same row groups, offsets and strides the generated C uses; returns the graph outputs."""
    from compiler import reference as R

    g = plan.graph
    mem = {"arena": np.zeros(max(plan.arena_bytes, 1), np.int8)}
    for n in g.inputs:
        mem["input"] = np.zeros(g.t(n).nbytes, np.int8)
    for n in g.outputs:
        mem["output"] = np.zeros(g.t(n).nbytes, np.int8)

    def region(t: str) -> tuple[np.ndarray, int]:
        b = plan.tensor_buffer[t]
        if b.region in ("input", "output"):
            return mem[b.region], 0
        return mem["arena"], b.offset

    def read(t: str) -> np.ndarray:
        tt = g.t(t)
        if tt.data is not None:
            return tt.data
        m, off = region(t)
        return m[off : off + tt.size].reshape(tt.shape).copy()

    def write(t: str, v: np.ndarray) -> None:
        m, off = region(t)
        v = np.asarray(v, np.int8).reshape(-1)
        m[off : off + v.size] = v

    for n, x in zip(g.inputs, inputs, strict=True):
        write(n, np.asarray(x).reshape(g.t(n).shape))
    for k, s in enumerate(plan.steps):
        if s.op.kind in STAGE_KINDS:
            ws = mem["arena"][s.scratch.offset :] if s.scratch is not None else mem["arena"]
            _exec_stage(R, g, s, region, ws)
        elif s.op.kind in VIEW_OPS:
            continue
        else:
            env = {t: read(t) for t in s.op.inputs if t}
            out = R._OPS[s.op.kind](g, s.op, env)
            write(s.op.outputs[0], np.asarray(out).reshape(g.t(s.op.outputs[0]).shape).astype(np.int8))
        del k
    return [read(n) for n in g.outputs]


def _rows(m: np.ndarray, off: int, rows: int, width: int) -> np.ndarray:
    return m[off : off + rows * width].reshape(rows, width)


def _strided(m: np.ndarray, off: int, shape: tuple[int, int], strides: tuple[int, int]) -> np.ndarray:
    idx = off + np.arange(shape[0])[:, None] * strides[0] + np.arange(shape[1])[None, :] * strides[1]
    return m[idx]


def _exec_stage(R: Any, g: Graph, s: Step, region, ws: np.ndarray) -> None:
    u: Unit = s.detail["unit"]
    i = u.info
    grp, qb = s.detail["group"], s.detail["qblock"]
    lay = s.detail["ws"]

    def wsv(name: str) -> tuple[np.ndarray, int]:
        return ws, lay[name][0]

    def run(op: Op, env: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(R._OPS[op.kind](g, op, env)).astype(np.int8)

    def fc(op: Op, x: np.ndarray) -> np.ndarray:
        """A projection on rows x: one FC, or a factorised one through its workspace rows."""
        lr = (u.info.get("lowrank") or {}).get(op.name)
        if lr is None:
            return run(op, {op.inputs[0]: x})
        pre, key, rank = lr
        rm, ro = wsv(key)
        _rows(rm, ro, len(x), rank)[...] = run(pre, {pre.inputs[0]: x})
        return run(op, {op.inputs[0]: _rows(rm, ro, len(x), rank).copy()})

    xm, xo = region(u.x_in)
    ym, yo = region(u.x_out)
    if u.kind == "embed":
        conv = i["conv"]
        img = xm[xo : xo + g.t(u.x_in).size].reshape(g.t(u.x_in).shape)
        p = g.t(conv.inputs[1]).shape[1]
        hp, wp, d, t = i["hp"], g.t(conv.outputs[0]).shape[2], i["D"], i["T"]
        for r in range(hp):
            # one row of patches: a [1, p, W, C] slice of the image -> tokens r*wp .. of X
            x = img[:, r * p : (r + 1) * p]
            out = _conv_rows(R, g, conv, x)
            base = yo + (i["token_offset"] + r * wp) * d
            ym[base : base + wp * d] = out.reshape(-1)
        for n, off in i["consts"]:
            c = g.t(n).data.reshape(-1)
            ym[yo + off * d : yo + off * d + c.size] = c
        if i["pos"] is not None:
            add = i["pos"]
            cur = ym[yo : yo + t * d].reshape(g.t(u.x_out).shape).copy()
            env = {n: (g.t(n).data if g.t(n).is_const else cur) for n in add.inputs}
            ym[yo : yo + t * d] = run(add, env).reshape(-1)
        return
    t, d = i["T"], i["D"]
    if u.kind == "mlp":
        ln, fc1, fc2, add = i["ln"], i["fc1"], i["fc2"], i["add"]
        hid = i["hidden"]
        for t0 in range(0, t, grp):
            n = min(grp, t - t0)
            x = _rows(xm, xo + t0 * d, n, d).copy()
            lm, lo = wsv("L")
            _rows(lm, lo, n, d)[...] = run(ln, {ln.inputs[0]: x})
            hm, ho = wsv("H")
            _rows(hm, ho, n, hid)[...] = fc(fc1, _rows(lm, lo, n, d).copy())
            for a in i["acts"]:
                _rows(hm, ho, n, hid)[...] = run(a, {a.inputs[0]: _rows(hm, ho, n, hid).copy()})
            _rows(lm, lo, n, d)[...] = fc(fc2, _rows(hm, ho, n, hid).copy())
            env = {u.x_in: x, fc2.outputs[0]: _rows(lm, lo, n, d).copy()}
            _rows(ym, yo + t0 * d, n, d)[...] = run(add, {k: env[k] for k in add.inputs})
        return
    # attention
    ln, fq, fk, fv, proj, add = i["ln"], i["q"], i["k"], i["v"], i["proj"], i["add"]
    sb, sm, ob = i["scores"], i["softmax"], i["attn"]
    dq, dk, dv, dm, h = i["dq"], i["dk"], i["dv"], i["dm"], i["heads"]
    a, bk, bv, yo3 = i["a"], i["bk"], i["bv"], i["yo"]
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
    dh, dvh = i["dh"], i["dvh"]
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


def _conv_rows(R: Any, g: Graph, conv: Op, x: np.ndarray) -> np.ndarray:
    """The conv of one row of patches (kernel = stride, no padding): reference arithmetic."""
    p = R.lower(g, conv)
    w = g.t(conv.inputs[1]).data.astype(np.int64)
    b = g.t(conv.inputs[2]).data.astype(np.int64) if len(conv.inputs) > 2 and conv.inputs[2] else 0
    kh, kw = w.shape[1:3]
    n, hh, ww, c = x.shape
    patches = (x.astype(np.int64) + p["input_offset"]).reshape(n, hh // kh, kh, ww // kw, kw, c)
    acc = np.einsum("nhiwjc,oijc->nhwo", patches, w + p["weights_offset"]) + b
    return R._requant(acc, p)
