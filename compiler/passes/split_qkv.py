"""split_fused_qkv: a fused q/k/v projection becomes three fully-connected ops (exact rewrite).

timm's and PyTorch's attention compute q, k and v with one Linear of 3*D outputs, then
`reshape(B, N, 3, H, hd)` and split the "3" axis (`unbind`, `chunk`, `split`); the ONNX
importer turns the split into one `slice` per part. Output features of a fully-connected op
are independent rows of its weight, and a slice of its output along the first axis the
feature axis was reshaped into is a contiguous block of rows. So

    fc(W[3D, K]) -> reshape [.., N, 3, ...] -> slice (part i) -> ...

becomes, per part, `fc(W[rows of part i]) -> reshape` to the slice's output, with the same
quantization (per-channel scales split with the rows, the output keeps the fused tensor's).
Every output byte is the one the fused graph computes, and the token planner's attention
pattern (three projections of the LayerNorm output) then matches. Returns a new graph; the
input graph is not modified; a graph without the pattern is returned as is.
"""

from __future__ import annotations

import copy

import numpy as np

from compiler.core.ir import Graph, Op, QParams, Tensor


def _rows(q: QParams | None, lo: int, hi: int) -> QParams | None:
    if q is None or not q.per_channel:
        return q
    return QParams(q.scale[lo:hi], q.zero_point[lo:hi] if q.zero_point.size > 1 else q.zero_point, q.axis)


def _parts(g: Graph, fc: Op, cons: dict[str, list[Op]]) -> tuple[Op, list[tuple[Op, int, int]]] | None:
    """(reshape, [(slice, first row, last row + 1)]) of a fused projection, or None."""
    out = g.t(fc.outputs[0])
    users = cons.get(fc.outputs[0], [])
    if len(users) != 1 or users[0].kind != "reshape" or fc.outputs[0] in g.outputs:
        return None
    rs = users[0]
    lead, feat = out.shape[:-1], out.shape[-1]
    shape = g.t(rs.outputs[0]).shape
    j = len(lead)  # the first axis the feature axis is reshaped into
    if len(shape) <= j + 1 or shape[:j] != lead or int(np.prod(shape[j:])) != feat or rs.outputs[0] in g.outputs:
        return None
    inner = feat // shape[j]
    slices = cons.get(rs.outputs[0], [])
    if len(slices) < 2 or any(s.kind != "slice" for s in slices):
        return None
    parts = []
    for s in slices:
        begin, size = list(s.attrs["begin"]), list(s.attrs["size"])
        if any(begin[a] != 0 or size[a] != shape[a] for a in range(len(shape)) if a != j):
            return None
        parts.append((s, begin[j] * inner, (begin[j] + size[j]) * inner))
    return rs, parts


def split_fused_qkv(graph: Graph) -> Graph:
    """The graph with every fused projection + slices split into per-part projections."""
    cons: dict[str, list[Op]] = {}
    for op in graph.ops:
        for t in op.inputs:
            if t:
                cons.setdefault(t, []).append(op)
    found = []
    for op in graph.ops:
        if op.kind == "fully_connected" and graph.t(op.inputs[1]).data is not None:
            p = _parts(graph, op, cons)
            if p is not None:
                found.append((op, *p))
    if not found:
        return graph
    g = copy.copy(graph)
    g.tensors = dict(graph.tensors)
    g.ops = list(graph.ops)
    for fc, rs, parts in found:
        w, out = g.t(fc.inputs[1]), g.t(fc.outputs[0])
        b = g.t(fc.inputs[2]) if len(fc.inputs) > 2 and fc.inputs[2] else None
        new: list[Op] = []
        for s, lo, hi in parts:
            part = s.outputs[0]
            wn = g.add_tensor(Tensor(g.unique_name(f"{w.name}_{part}"), (hi - lo, w.shape[1]), w.dtype,
                                     _rows(w.quant, lo, hi), w.data[lo:hi]))  # fmt: skip
            ins = [fc.inputs[0], wn.name]
            if b is not None:
                bn = g.add_tensor(Tensor(g.unique_name(f"{b.name}_{part}"), (hi - lo,), b.dtype,
                                         _rows(b.quant, lo, hi), b.data[lo:hi]))  # fmt: skip
                ins.append(bn.name)
            y = g.add_tensor(Tensor(g.unique_name(f"{part}_fc"), (*out.shape[:-1], hi - lo), out.dtype, out.quant))
            new.append(Op("fully_connected", f"{fc.name}:{part}", ins, [y.name], dict(fc.attrs)))
            new.append(Op("reshape", f"{s.name}:reshape", [y.name], [part], {}))
        k = g.ops.index(fc)
        g.ops[k : k + 1] = new
        for s, _, _ in parts:
            g.ops.remove(s)
        g.ops.remove(rs)
    g.verify()
    return g
