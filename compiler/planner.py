"""`plan_for(graph, target, options) -> Plan`: the one way to get the plan the compiler would pick.

`microtile plan`, `compile` and `run`, the benchmarks and `nas/` all call it, so they all see
the same decision and the same errors:

1. the kernels: per op, the first row of its kernel table that applies (`compiler/schedule/kernels_table.py`:
   a Cortex-M DSP kernel where the core has one and it is exact, else the portable one), their
   scratch bytes from the kernels' own C size queries;
2. the candidates of every planner asked for (`compiler/schedule/select.py`: layer, patch,
   token), each sized with that scratch;
3. the cheapest candidate (fewest MACs plus modelled loop overhead) whose peak fits the
   budget; when none fits with the fast kernels' scratch, the same choice with portable
   kernels; when none fits one memory and the board has several (and no --sram was given), the
   cheapest layer plan spread over its memory pools (`compiler.schedule.pools`); when none fits
   at all, `BudgetError` naming the smallest peak and its binding step;
4. every step of the chosen plan records the kernel call it runs (`Step.kernel`, and
   `Step.kernels` for the ops of a token stage): the table's where the step can run it (out of
   place, with the scratch it asked for), else the portable kernel. Codegen only prints it.

Raises `BudgetError` (no plan fits), `MicrotileError` (unknown schedule).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.core.ir import Graph
from compiler.errors import BudgetError, MicrotileError
from compiler.passes.split_qkv import split_fused_qkv
from compiler.schedule.kernels_table import (
    KernelCall,
    KernelOptions,
    any_dsp,
    attach_kernels,
    attach_stage_kernels,
    choose_call,
    kernel_calls,
    lost_to_in_place,
    scratch_fn,
)
from compiler.schedule.plan import Plan
from compiler.schedule.pools import place_pools, pools_for
from compiler.schedule.select import candidate_plans, pick_plan, plan_cost, plan_peak
from compiler.target.boards import Board, load_board

# RAM the test harness and newlib need besides the arena, the stack and the heap: their
# .data/.bss measured from the linker map (about 2.8 KB on both boards) plus margin.
RUNTIME_RESERVE = 4096

# An explicit --sram N bounds the whole measured peak (DESIGN.md): the plan (arena + I/O kept
# outside it) + the model's static data + the stack of invoke. Planning reserves STACK_RESERVE
# of N for the stack and static data (measured: 200-488 B of stack, 0 B of static data on the
# MLPerf Tiny models, benchmarks/results/); after the build, compiler/target/stack.py bounds the stack
# from GCC's call graph and the pipeline checks plan + static + that bound <= N.
STACK_RESERVE = 1024


@dataclass
class PlanOptions:
    """What the user asked for. sram: budget in bytes for the whole peak (plan + static data +
    stack; `plan_budget` gives the plan's share); None = the board's SRAM less stack, heap and
    RUNTIME_RESERVE."""

    sram: int | None = None
    schedule: str = "auto"  # auto | layer | patch | token
    io: str = "arena"  # "arena": input/output inside the arena; "external": the caller's buffers
    kernels: str = "fast"  # "fast": DSP kernels where the core has them; "portable"
    widen: bool = True  # pre-widen fast-kernel filters to int16 while flash allows
    stack_bytes: int | None = None  # stack reserved on the board (None: the board's default)


@dataclass
class PlanChoice:
    """Everything `plan_for` weighed: the chosen plan, every candidate (same kernels and scratch
    as the chosen one), the budget in bytes and the kernel call per op (op name -> call; the
    portable ones when no plan fit with the DSP kernels' scratch)."""

    plan: Plan
    candidates: list[Plan]
    budget: int
    kernels: dict[str, KernelCall] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def default_budget(board: Board, stack_bytes: int | None = None) -> int:
    """Bytes of SRAM a plan may use on `board`: its SRAM less stack, heap and RUNTIME_RESERVE."""
    stack = board.stack_bytes if stack_bytes is None else stack_bytes
    return board.sram.size - stack - board.heap_bytes - RUNTIME_RESERVE


def plan_budget(board: Board, options: PlanOptions) -> int:
    """Bytes the plan's peak (arena + I/O kept outside it) may use: an explicit `sram` less
    STACK_RESERVE, else `default_budget`. Raises MicrotileError when nothing is left."""
    if options.sram is None:
        return default_budget(board, options.stack_bytes)
    if options.sram <= STACK_RESERVE:
        raise MicrotileError(
            f"--sram {options.sram} B leaves nothing for the plan: {STACK_RESERVE} B of it are kept for the "
            "stack and static data"
        )
    return options.sram - STACK_RESERVE


def _board(target: Board | str) -> Board:
    return load_board(target) if isinstance(target, str) else target


def choose_for(graph: Graph, target: Board | str, options: PlanOptions | None = None) -> PlanChoice:
    """`plan_for` with everything it weighed (for `microtile plan`'s table). The plans are of
    the graph as compiled (`plan.graph`: fused qkv projections split). Raises BudgetError
    (naming the budget as the user gave it) when no plan fits."""
    opts = options or PlanOptions()
    try:
        return _choose_for(graph, target, opts)
    except BudgetError as e:
        if opts.sram is not None and "SRAM budget of" in str(e) and "--sram" not in str(e):
            why = f"the plan budget is --sram {opts.sram} B less {STACK_RESERVE} B for stack and static data"
            e.args = (f"{e} ({why})",)
        raise


def _choose_for(graph: Graph, target: Board | str, opts: PlanOptions) -> PlanChoice:
    board = _board(target)
    graph = split_fused_qkv(graph)  # fused qkv projections -> q, k, v (exact; the token planner's pattern)
    budget = plan_budget(board, opts)
    if budget <= 0:
        raise MicrotileError(f"SRAM budget must be positive, got {budget} B")
    kopts = KernelOptions(fast=opts.kernels == "fast", widen=opts.widen, core=board.core)
    kernels = kernel_calls(graph, board.flash.size, kopts)
    fast = any_dsp(kernels)
    notes: list[str] = []
    plans = candidate_plans(graph, opts.schedule, opts.io, scratch=scratch_fn(kernels) if fast else None)
    first = (plans, kernels)
    try:
        plan = pick_plan(plans, budget, opts.schedule)
    except BudgetError as e:
        spread = None if fast else _spread(plans, board, budget, opts)
        if spread is None and not fast:
            e.candidates = plans  # type: ignore[attr-defined]  # for `microtile plan`'s table
            raise
        if spread is not None:
            plan = spread
            notes.append(f"no plan fits one memory: layer plan over the pools {plan.detail['pools']}")
        else:
            notes.append("no plan fits with the fast kernels' scratch: portable kernels")
            portable = KernelOptions(fast=False, widen=opts.widen, core=board.core)
            kernels = kernel_calls(graph, board.flash.size, portable)
            plans = candidate_plans(graph, opts.schedule, opts.io)
            try:
                plan = pick_plan(plans, budget, opts.schedule)
            except BudgetError as e:
                # last resort: one plan spread over the board's memories (fast kernels first)
                spread = _spread(first[0], board, budget, opts)
                if spread is not None:
                    plans, kernels = first
                    plan = spread
                    notes[-1] = f"no plan fits one memory: layer plan over the pools {plan.detail['pools']}"
                else:
                    spread = _spread(plans, board, budget, opts)
                    if spread is None:
                        e.candidates = plans  # type: ignore[attr-defined]  # for `microtile plan`'s table
                        raise
                    plan = spread
                    notes.append(f"no plan fits one memory: layer plan over the pools {plan.detail['pools']}")
    if fast and not notes:
        plan, plans, kernels = _keep_fast_depthwise(graph, plan, plans, kernels, kopts, budget, opts)
    attach_kernels(plan, kernels)
    attach_stage_kernels(plan, kernels)
    plan.check()  # PlanError: a planner bug (two live buffers share bytes, one outside the arena)
    return PlanChoice(plan=plan, candidates=plans, budget=budget, kernels=kernels, notes=notes)


def _keep_fast_depthwise(
    graph: Graph, plan: Plan, plans: list[Plan], kernels: dict[str, KernelCall], kopts: KernelOptions,
    budget: int, opts: PlanOptions,
) -> tuple[Plan, list[Plan], dict[str, KernelCall]]:
    """When the picked plan runs depthwise steps in place that had a DSP kernel (their scratch
    made the step bind the peak, and the in-place portable kernel is ~15x slower), plan again
    with those ops on their next kernel-table row (e.g. the 3x3 row kernel instead of the plane
    kernel, whose scratch is larger) and keep that plan if it fits and loses fewer steps."""
    for _ in range(3):  # each round moves the lost ops one row down the table
        lost = lost_to_in_place(plan, kernels)
        if not lost:
            break
        k2 = dict(kernels)
        for s in lost:
            c = kernels[s.op.name]
            k2[s.op.name] = choose_call(graph, s.op, kopts, skip=(c.name,))
            k2[s.op.name].params.note = c.params.note
        plans2 = candidate_plans(graph, opts.schedule, opts.io, scratch=scratch_fn(k2))
        try:
            plan2 = pick_plan(plans2, budget, opts.schedule)
        except BudgetError:
            break
        if len(lost_to_in_place(plan2, k2)) >= len(lost):
            break
        plan, plans, kernels = plan2, plans2, k2
    return plan, plans, kernels


def _spread(plans: list[Plan], board: Board, budget: int, opts: PlanOptions) -> Plan | None:
    """The cheapest layer plan that fits across the board's memory pools (compiler.schedule.pools)
    when none fits the single [sram] arena: only with the board's own budget (no --sram, which
    bounds the whole peak) and only where the board has several memories for activations."""
    if opts.sram is not None:
        return None
    pools = pools_for(board, budget)
    if len(pools) < 2:
        return None
    for p in sorted((p for p in plans if p.schedule == "layer"), key=lambda p: (plan_cost(p), plan_peak(p))):
        try:
            place_pools(p, pools)
        except BudgetError:
            continue
        if "pools" in p.detail:
            return p
    return None


def plan_for(graph: Graph, target: Board | str, options: PlanOptions | None = None) -> Plan:
    """The plan the compiler would pick for `graph` on `target` (a Board or a board name).

    Returns a Plan whose steps carry their kernel call (`step.kernel`, `step.kernels`) and whose
    peak (`plan_peak`, bytes) fits the budget. Raises BudgetError when nothing fits."""
    return choose_for(graph, target, options).plan


__all__ = [
    "PlanChoice",
    "PlanOptions",
    "RUNTIME_RESERVE",
    "STACK_RESERVE",
    "choose_for",
    "default_budget",
    "plan_budget",
    "plan_for",
    "plan_peak",
]
