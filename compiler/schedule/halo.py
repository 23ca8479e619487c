"""Halo caching (StreamNet) for patch stages: what it would save and cost, measured on a plan.

A patch stage recomputes the halo: neighbouring patches' windows of every intermediate
tensor overlap. StreamNet keeps the overlap instead of recomputing it:

- "columns": patches of a row band run left to right; each intermediate keeps the columns
  the next patch shares with this one (a cache of overlap x band rows x channels per
  tensor, live for the whole stage). Rows shared between bands are still recomputed.
- "2d": also keep the rows the next row band shares (overlap rows x full width x channels
  per tensor): every stage pixel is computed exactly once, no MAC overhead left.

`halo_cache_estimate(plan)` returns MACs and peak for the plan as it is, and with each kind
of cache added as extra buffers live across the stage (re-placed with the layer planner's
first-fit; per-patch windows keep their size, since the kernels still read whole windows).
An estimate: "columns" is built as code by `plan_patch(..., halo_cache=True)` (see
compiler/schedule/patch.py; its cache buffers are the ones sized here); "2d" is not.
"""

from __future__ import annotations

from dataclasses import replace

from compiler.core.ir import graph_macs, op_macs
from compiler.schedule.layer import place
from compiler.schedule.plan import Buffer, align, plan_peak

KINDS = ("recompute", "columns", "2d")


def _union(spans) -> int:
    spans = [s for s in spans if s.n > 0]
    return max(s.hi for s in spans) - min(s.lo for s in spans) if spans else 0


def _overlap(spans) -> int:
    return max((max(0, a.hi - b.lo) for a, b in zip(spans, spans[1:], strict=False)), default=0)


def halo_cache_estimate(plan) -> dict[str, dict[str, int]]:
    """kind -> {"macs", "mac_overhead", "peak", "cache_bytes"} for the plan (a PatchPlan)."""
    g = plan.graph
    base_macs = plan.macs
    out: dict[str, dict[str, int]] = {"recompute": {"macs": base_macs, "peak": plan_peak(plan), "cache_bytes": 0}}
    for kind in KINDS[1:]:
        macs = base_macs
        extra: list[Buffer] = []
        for k, st in enumerate(plan.patch_stages):
            for i in st.steps:
                op = g.ops[i]
                y = op.outputs[0]
                full = g.t(y).shape
                per_pixel = op_macs(g, op) // max(1, full[1] * full[2])
                rows = [a.spans[y] for a in st.rows]
                cols = [a.spans[y] for a in st.cols]
                now = per_pixel * sum(r.n for r in rows) * sum(c.n for c in cols)
                if kind == "columns":
                    new = per_pixel * sum(r.n for r in rows) * _union(cols)
                else:
                    new = per_pixel * _union(rows) * _union(cols)
                macs += new - now
                if y == st.output:
                    continue
                c = g.t(y).shape[3]
                size = _overlap(cols) * max(r.n for r in rows) * c
                if kind == "2d":
                    size += _overlap(rows) * _union(cols) * c
                if size:
                    first, last = st.steps[0], st.steps[-1]
                    extra.append(Buffer(f"{y}[halo{k}]", align(size), first, last, tensors=[y]))
        buffers = [replace(b) for b in plan.buffers] + extra
        arena = place(buffers)
        io = plan_peak(plan) - plan.arena_bytes
        out[kind] = {"macs": macs, "peak": arena + io, "cache_bytes": sum(b.size for b in extra)}
    g_macs = graph_macs(g)
    for v in out.values():
        v["mac_overhead"] = round((v["macs"] - g_macs) / max(g_macs, 1), 4)
    return out
