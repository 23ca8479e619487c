"""Pick the plan: every planner proposes candidates, the cheapest one that fits the budget wins.

A plan's peak is the SRAM it needs besides the stack: its arena plus the input/output
buffers that live outside the arena. Candidates that fit are ranked by MACs (patch-based
plans recompute halos), then by peak.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.core.ir import Graph
from compiler.errors import BudgetError, MicrotileError
from compiler.schedule.layer import ScratchFn, plan_layer
from compiler.schedule.plan import Plan, plan_cost, plan_peak

__all__ = ["PLANNERS", "binding_step", "candidate_plans", "choose_plan", "pick_plan", "plan_cost", "plan_peak"]

SCHEDULES = ("auto", "layer", "patch", "token")


# name -> function(graph, io) -> list of candidate plans. Other planners register here.
def _layer_candidates(graph: Graph, io: str, scratch: ScratchFn | None = None) -> list[Plan]:
    kw = {"scratch": scratch} if scratch is not None else {}
    plain = plan_layer(graph, io=io, **kw)
    ip = plan_layer(graph, io=io, in_place=True, **kw)
    return [plain, ip] if any(s.in_place for s in ip.steps) and ip.arena_bytes < plain.arena_bytes else [plain]


def _patch_candidates(graph: Graph, io: str, scratch: ScratchFn | None = None) -> list[Plan]:
    from compiler.schedule.patch import patch_candidates

    return patch_candidates(graph, io, scratch=scratch)


PLANNERS: dict[str, Callable[[Graph, str], list[Plan]]] = {
    "layer": _layer_candidates,  # plain, and with in-place depthwise/elementwise when that is smaller
    "patch": _patch_candidates,  # MCUNetV2 patch stage + layer tail (compiler.schedule.patch)
}


def _token_plans(g: Graph, io: str, scratch: ScratchFn | None = None) -> list[Plan]:
    from compiler.schedule.token import candidates

    return candidates(g, io, scratch)


PLANNERS["token"] = _token_plans


def binding_step(plan: Plan) -> tuple[int, str]:
    live = plan.live_bytes_per_step()
    if not live:
        return -1, "-"
    i = max(range(len(live)), key=lambda k: live[k])
    op = plan.steps[i].op
    return i, f"{op.name} ({op.kind})"


def candidate_plans(
    graph: Graph, schedule: str = "auto", io: str = "arena", scratch: ScratchFn | None = None
) -> list[Plan]:
    """scratch: per-step kernel scratch bytes (compiler/schedule/kernels_table.py), reserved by the layer and
    patch planners (patch: stage steps too, one buffer per step for the largest patch)."""
    if schedule not in SCHEDULES:
        raise MicrotileError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
    names = list(PLANNERS) if schedule == "auto" else [schedule]
    plans: list[Plan] = []
    for name in names:
        if name not in PLANNERS:
            raise MicrotileError(f"schedule {name!r} is not available yet; available: {', '.join(PLANNERS)}")
        if name == "layer" and scratch is not None:
            plans.extend(_layer_candidates(graph, io, scratch))
        elif name == "patch" and scratch is not None:
            plans.extend(_patch_candidates(graph, io, scratch))
        elif name == "token" and scratch is not None:
            plans.extend(_token_plans(graph, io, scratch))
        else:
            plans.extend(PLANNERS[name](graph, io))
    if not plans:
        raise MicrotileError(f"the {schedule} planner found nothing it can plan in {graph.name!r}")
    return plans


def pick_plan(plans: list[Plan], budget: int, schedule: str = "auto") -> Plan:
    """The cheapest of `plans` (fewest MACs plus modelled overhead, then smallest peak) whose
    peak fits `budget` bytes; BudgetError naming the smallest peak and its binding step if none."""
    fitting = [p for p in plans if plan_peak(p) <= budget]
    if fitting:
        return min(fitting, key=lambda p: (plan_cost(p), plan_peak(p)))
    best = min(plans, key=plan_peak)
    i, what = binding_step(best)
    raise BudgetError(
        f"no {schedule if schedule != 'auto' else ''}{' ' if schedule != 'auto' else ''}plan fits the "
        f"SRAM budget of {budget} B: the smallest peak any plan reaches is {plan_peak(best)} B "
        f"({best.schedule} schedule), bound by step {i} {what}"
    )


def choose_plan(
    graph: Graph, budget: int, schedule: str = "auto", io: str = "arena", scratch: ScratchFn | None = None
) -> Plan:
    """Planner-level choice for a given scratch function (no kernel selection): tests and the
    planners' own callers. The compiler's decision is `compiler.planner.plan_for`."""
    return pick_plan(candidate_plans(graph, schedule, io, scratch), budget, schedule)
