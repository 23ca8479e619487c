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
layer-by-layer graph computes (`compiler.schedule.execute.run_plan` checks it in Python, the
emulator tests in QEMU).

Knobs: `group` (tokens per MLP / K-V group) and `qblock` (queries per attention block). The
planner proposes the plans on the Pareto front of (estimated cost, peak): cost = MACs + a loop
overhead of `CALL_OVERHEAD` MAC-equivalents per kernel call (smaller groups make more calls);
`choose_plan` takes the cheapest that fits `--sram`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from compiler.core.ir import VIEW_OPS, Graph, Op, op_macs
from compiler.errors import ModelError
from compiler.passes.split_qkv import split_fused_qkv
from compiler.schedule.layer import ScratchFn, lower_bound, place
from compiler.schedule.plan import Buffer, Plan, Stage, Step, align, plan_cost

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
class EmbedInfo:
    """An embed unit: conv (kernel = stride, no padding) on the image -> reshape to tokens ->
    [concat with constant tokens] -> [add of a constant position embedding]."""

    conv: Op
    T: int  # tokens of the output
    D: int  # features per token
    hp: int  # rows of patches (conv output height)
    token_offset: int = 0  # first token the conv's patches fill
    consts: list[tuple[str, int]] = field(default_factory=list)  # constant token tensors, first token
    concat: Op | None = None
    pos: Op | None = None  # the position-embedding add


@dataclass
class AttentionInfo:
    """A pre-norm attention unit: x -> layer_norm -> q/k/v -> scores -> softmax -> attn -> proj -> add(x, .).
    The operand strides (`a` q, `bk` k, `bv` v, `yo` the merged output) are relative to the
    [T, d] buffers the projections write; head split/merge become these strides."""

    ln: Op
    q: Op
    k: Op
    v: Op
    scores: Op  # batch_matmul(q, k)
    softmax: Op
    attn: Op  # batch_matmul(., v)
    proj: Op
    add: Op
    heads: int
    T: int
    D: int
    dq: int  # features of q, k, v and the merged output
    dk: int
    dv: int
    dm: int
    dh: int  # per-head q/k features
    dvh: int  # per-head v features
    a: Stride3
    bk: Stride3
    bv: Stride3
    yo: Stride3
    # factorised (low-rank) q / k / v / proj: name of the second FC (the one in q, k, v, proj) ->
    # (first FC, workspace part "Rq" / "Rk" / "Rv" / "Rproj" holding its rank-r rows, rank)
    lowrank: dict[str, tuple[Op, str, int]] = field(default_factory=dict)


@dataclass
class MlpInfo:
    """A pre-norm MLP unit: x -> layer_norm -> fc1 -> gelu* -> fc2 -> add(x, .)."""

    ln: Op
    fc1: Op
    acts: list[Op]  # the gelu ops between fc1 and fc2
    fc2: Op
    add: Op
    T: int
    D: int
    hidden: int  # fc1 output features
    # factorised (low-rank) fc1 / fc2: name of the second FC -> (first FC, workspace part "Rfc1" / "Rfc2", rank)
    lowrank: dict[str, tuple[Op, str, int]] = field(default_factory=dict)


@dataclass
class Unit:
    kind: str  # "embed" | "attention" | "mlp"
    ops: list[Op]
    lo: int  # index range in graph.ops (inclusive)
    hi: int
    x_in: str
    x_out: str
    info: EmbedInfo | AttentionInfo | MlpInfo


@dataclass
class TokenStage(Stage):
    """One token-plan stage step (its op is `token_<unit.kind>`): the unit's ops run as loops over
    `group` tokens / `qblock` queries, in the step's scratch buffer laid out as `workspace`."""

    unit: Unit
    group: int  # tokens per group (MLP, K/V, LayerNorm), <= T
    qblock: int  # queries per attention block, <= T
    overwrite: bool  # the output is written over the input tokens (nothing later reads them)
    workspace: dict[str, tuple[int, int]]  # sub-buffer name -> (byte offset, bytes) in Step.scratch

    @property
    def kind(self) -> str:
        return self.unit.kind

    def describe(self) -> str:
        return f"token {self.kind} stage: group={self.group} qblock={self.qblock}" + (
            ", overwrites its input" if self.overwrite else ""
        )

    def ws_offset(self, name: str) -> int:
        """Byte offset of workspace sub-buffer `name` in the step's scratch."""
        return self.workspace[name][0]


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
    info = MlpInfo(ln, fc1, acts, fc2, add, t, d, g.t(fc1.outputs[0]).shape[-1],
                   lowrank=_lowrank_info(g, {"fc1": lin1, "fc2": lin2}))  # fmt: skip
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
    info = AttentionInfo(
        ln=ln, q=fq, k=fk, v=fv, scores=s_bmm, softmax=softmax, attn=o_bmm, proj=proj, add=add, heads=heads,
        T=t, D=td[1], dq=dq, dk=dk, dv=dv, dm=dm,
        dh=g.t(s_bmm.inputs[0]).shape[-1], dvh=g.t(o_bmm.outputs[0]).shape[-1], a=a, bk=bk, bv=bv, yo=yo,
        lowrank=_lowrank_info(g, lin),
    )  # fmt: skip
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
    info = EmbedInfo(conv, hp * wp, d, hp)
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
                info.token_offset = off
            elif g.t(n).is_const:
                info.consts.append((n, off))
            else:
                return None
            off += nt[0]
        info.concat = nxt
        ops.append(nxt)
        t = nxt.outputs[0]
        nxt = G.only(t)
    if nxt is not None and nxt.kind == "add" and nxt.attrs.get("activation", "none") == "none":
        other = [n for n in nxt.inputs if n != t]
        if len(other) == 1 and g.t(other[0]).is_const and g.t(other[0]).shape == g.t(t).shape:
            info.pos = nxt
            ops.append(nxt)
            t = nxt.outputs[0]
    info.T, info.D = _tokens(g.t(t).shape)  # type: ignore[misc]
    return _unit(G, "embed", ops, conv.inputs[0], t, info)


def _unit(
    G: _Graph, kind: str, ops: list[Op], x_in: str, x_out: str, info: EmbedInfo | AttentionInfo | MlpInfo
) -> Unit | None:
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
    i = u.info
    if isinstance(i, AttentionInfo):
        t, d = i.T, i.D
        parts = [
            ("K", t * i.dk),
            ("V", t * i.dv),
            ("L", max(min(group, t), min(qblock, t)) * max(d, i.dm)),  # LN rows; later proj rows
            ("Q", min(qblock, t) * i.dq),
            ("S", min(qblock, t) * t),
            ("O", min(qblock, t) * i.dm),
        ]
    elif isinstance(i, MlpInfo):
        t, d = i.T, i.D
        parts = [("L", min(group, t) * d), ("H", min(group, t) * i.hidden)]
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
    lr = u.info.lowrank if isinstance(u.info, AttentionInfo | MlpInfo) else {}
    if not lr:
        return end
    t = u.info.T
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
    if isinstance(i, EmbedInfo):
        return i.hp + len(i.consts) + 1
    t = i.T
    lr = [key for _, key, _ in i.lowrank.values()]  # one more FC call per factorised linear
    if isinstance(i, AttentionInfo):
        kv, qp = sum(k in ("Rk", "Rv") for k in lr), sum(k in ("Rq", "Rproj") for k in lr)
        return math.ceil(t / group) * (3 + kv) + math.ceil(t / qblock) * (4 + qp + 3 * i.heads)
    return math.ceil(t / group) * (4 + len(i.acts) + len(lr))


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
            stage = TokenStage([len(steps)], u, min(group, u.info.T), min(qblock, u.info.T), over, ws)
            name = u.ops[-1].name if u.kind != "embed" else u.ops[0].name
            op = Op(f"token_{u.kind}", f"{name}@{u.kind}", [u.x_in], [u.x_out])
            macs = sum(op_macs(g, o) for o in u.ops)
            steps.append(Step(op=op, macs=macs, stage=stage, notes=_notes(u, group, qblock, over) + _lowrank_notes(u)))
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
            if isinstance(s.stage, TokenStage):
                s.scratch.tensors = [f"{n}@+{o}:{sz}" for n, (o, sz) in s.stage.workspace.items()]
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
        stages=[s.stage for s in steps if s.stage is not None],
        loop_overhead=overhead,
    )


def _notes(u: Unit, group: int, qblock: int, over: bool) -> list[str]:
    i = u.info
    w = "overwrites its input tokens" if over else "writes a new token buffer (input still read later)"
    if isinstance(i, EmbedInfo):
        return [
            f"patch embedding by rows of patches: {i.hp} conv calls write tokens "
            f"{i.token_offset}.. of X [{i.T}x{i.D}] directly"
            + (f"; {len(i.consts)} constant token(s) copied" if i.consts else "")
            + ("; position embedding added in place" if i.pos is not None else "")
        ]
    t = i.T
    g, q = min(group, t), min(qblock, t)
    if isinstance(i, AttentionInfo):
        return [
            f"K,V [{t}x{i.dk}], [{t}x{i.dv}] for all tokens, {g} tokens per group (LayerNorm fused per group)",
            f"row-wise attention: {math.ceil(t / q)} blocks of {q} queries x {i.heads} heads, "
            f"scores [{q}x{t}] per head (softmax in place); head split/merge as strides",
            f"proj + residual add per query block: {w}",
        ]
    return [f"token-wise MLP: {math.ceil(t / g)} groups of {g} tokens, hidden [{g}x{i.hidden}]; {w}"]


def _lowrank_notes(u: Unit) -> list[str]:
    lr = u.info.lowrank if isinstance(u.info, AttentionInfo | MlpInfo) else {}
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
    t = max(u.info.T for u in units)
    values = sorted({v for v in KNOB_VALUES if v < t} | {t})
    plans = []
    for grp in values:
        for qb in values:
            plans.append(plan_token(graph, io, grp, qb, units, scratch))
    plans.sort(key=lambda p: (plan_cost(p), p.arena_bytes))
    front: list[Plan] = []
    for p in plans:
        if not front or p.arena_bytes < front[-1].arena_bytes:
            front.append(p)
    return front
