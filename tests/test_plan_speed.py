"""The fast planner picks the same plans as the exhaustive one it replaced.

tests/data/plan_signatures.json holds, per model, the signature (`benchmarks/plan_time.py`
`signature`: every candidate's schedule, peak, MACs, cost, detail and a digest of its whole
buffer layout, plus the chosen plan's layout, steps and kernels) that revision 85de0bb (before
the branch-and-bound search) computed with `python benchmarks/plan_time.py --record FILE`.
Planning times are a benchmark (benchmarks/results/plan_time.md), never asserted here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests" / "data" / "plan_signatures.json").read_text())
sys.path.insert(0, str(ROOT / "benchmarks"))

import plan_time  # noqa: E402


def test_budgets_are_recorded_plan_budgets() -> None:
    from compiler.planner import STACK_RESERVE

    assert plan_time._R == STACK_RESERVE  # --sram N gives the plan N - STACK_RESERVE


@pytest.fixture
def kernels_of_85de0bb(monkeypatch):
    """The kernel choice as it was when the signatures were recorded: without the rows added
    since (the 3x3 plane kernel, whose scratch differs) and without plan_for's second pass that
    moves in-place depthwise ops to their next row (tests/test_kernel_table.py holds it), so
    the two searches are compared on the same scratch function."""
    from compiler import planner
    from compiler.schedule import kernels_table as T

    rows = tuple(r for r in T.TABLE["depthwise_conv2d"] if r.kernel != "mt_depthwise_conv_3x3_plane_s8_dsp")
    monkeypatch.setitem(T.TABLE, "depthwise_conv2d", rows)
    monkeypatch.setattr(planner, "_keep_fast_depthwise", lambda graph, plan, plans, kernels, *a: (plan, plans, kernels))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_same_plans_as_exhaustive_search(name: str, kernels_of_85de0bb) -> None:
    src = plan_time.MODELS[name][0]
    if not src.startswith("mbv2:") and not (plan_time.MODELS_DIR / src).exists():
        pytest.skip(f"shared model {src} missing")
    got = plan_time.worker(name, 1)["signature"]
    want = GOLDEN[name]
    assert [c["layout"] for c in got["candidates"]] == [c["layout"] for c in want["candidates"]]
    # the kernel's C function must not change; its filter form and the widening note (`describe()`
    # after the name: w16 / s8 / s8p, instructions saved per flash byte) are the kernel
    # selection's (compiler/schedule/kernels_table.py), not the planner's, and have changed since 85de0bb
    for sig in (got, want):
        sig["steps"] = [[*st[:4], None if st[4] is None else st[4].split()[0]] for st in sig["steps"]]
    assert got == want


@pytest.mark.parametrize("io", ["arena", "external"])
def test_cheap_bounds_never_exceed_exact_ones(io: str) -> None:
    """The walk rejects candidates by `_stage_bound`/`_tail_bound` without sizing them: each
    must be <= the exact lower bound of the sized plan (and of the all-in-place head)."""
    from compiler.models.builder import mobilenet_v2
    from compiler.schedule import patch as P

    g = mobilenet_v2(0.35, 64, num_classes=4, n_calib=1)
    cache: dict = {}
    n = 0
    for split in P.valid_splits(g, 0, cache)[:6]:
        for grid in ((2, 2), (3, 2), (4, 4)):
            for halo in (False, True):
                try:
                    c = P._Single(g, split, grid, io, cache, None, halo)
                except ValueError:
                    continue
                assert c.bound <= c.lower_bound.get()
                assert c.cost == P._cost(c.plan)
                if not halo:
                    assert c.stage_bound <= c.head.get()
                n += 1
    assert n >= 12
