"""Memory pools: a plan's arena buffers spread over several memories, each with its own budget.

Real parts have several SRAM regions (the STM32H743: DTCM 128 KB, AXI SRAM 512 KB, SRAM1-3
288 KB, SRAM4 64 KB; `compiler.boards.Memory`). A plan whose peak exceeds the largest region may
still fit across them: a buffer must lie inside one region, but buffers live at the same step may
sit in different ones. The data model follows TVM's USMP (`PoolInfo` name + size, a buffer's pool
candidates, `PoolAllocation(pool, byte_offset)`); the placement is greedy first-fit, as the
layer planner's (`compiler.schedule.layer.place`), per pool.

`place_pools(plan, pools)`:
1. when the plan's one arena fits the first pool that can hold all of it, nothing moves (every
   buffer stays in pool "arena" at its offset): single-pool plans stay byte-identical;
2. otherwise every arena/scratch buffer gets a pool and an offset: buffers by size, largest
   first (ties: longer lifetime, then earlier first step), each into the first pool in its
   preference order where first fit leaves it inside the pool's budget. Small buffers (at most a
   quarter of the fastest pool) prefer the fastest pools ("hot, small buffers in TCM"); larger ones
   the largest pools ("large maps where they fit").
   `plan.detail["pools"]` = pool -> bytes used, `plan.arena_bytes` their sum; `Plan.check()`
   then checks every pool.
Raises BudgetError naming the first buffer no pool can take.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.errors import BudgetError
from compiler.schedule.plan import ARENA_REGIONS, Buffer, Plan

SPEED_ORDER = ("tcm", "sram", "sdram", "flash", "external-flash")


@dataclass(frozen=True)
class Pool:
    """A memory the arena may use: its name, the bytes the plan may take in it (its budget) and
    its speed class (compiler.boards.MEMORY_SPEEDS)."""

    name: str
    size: int
    speed: str = "sram"


def pools_for(board, budget: int, target: str = "emulator") -> list[Pool]:
    """The activation pools of `board` (compiler.boards.Board): every memory that holds
    activations; the one holding the single-pool arena ([sram], which also keeps the stack, heap
    and static data) gets `budget` bytes, the others their whole size."""
    out = []
    for m in board.pools("activations", target):
        main = m.origin is not None and board.sram.origin <= m.origin < board.sram.end
        out.append(Pool(m.name, min(budget, m.size) if main else m.size, m.speed))
    return out


def place_pools(plan: Plan, pools: list[Pool]) -> dict[str, int]:
    """Give every arena/scratch buffer of `plan` a pool and an offset (see the module docstring);
    returns pool -> bytes used (also in plan.detail["pools"] when more than one pool is used)."""
    if not pools:
        raise ValueError("no pools to place in")
    fits = [p for p in pools if p.size >= plan.arena_bytes]
    if fits:
        return {"arena": plan.arena_bytes}
    movable = [b for b in plan.buffers if b.region in ARENA_REGIONS and b.first <= b.last]
    fastest = min(pools, key=lambda p: SPEED_ORDER.index(p.speed))
    by_speed = sorted(pools, key=lambda p: (SPEED_ORDER.index(p.speed), p.size))
    by_size = sorted(pools, key=lambda p: (-p.size, SPEED_ORDER.index(p.speed)))
    placed: dict[str, list[Buffer]] = {p.name: [] for p in pools}
    for b in sorted(movable, key=lambda b: (-b.size, -(b.last - b.first), b.first, b.name)):
        order = by_speed if b.size * 4 <= fastest.size else by_size
        for p in order:
            offset = _first_fit(placed[p.name], b)
            if offset + b.size <= p.size:
                b.pool, b.offset = p.name, offset
                placed[p.name].append(b)
                break
        else:
            raise BudgetError(
                f"buffer {b.name} ({b.size} B, steps {b.first}..{b.last}) fits no memory pool: "
                + ", ".join(f"{p.name} {p.size} B" for p in pools)
            )
    used = {name: max((b.offset + b.size for b in bs), default=0) for name, bs in placed.items() if bs}
    plan.detail["pools"] = used
    plan.arena_bytes = sum(used.values())  # every pool's bytes: what plan_peak counts
    return used


def _first_fit(placed: list[Buffer], b: Buffer) -> int:
    """The lowest offset where `b` overlaps no buffer of `placed` live at the same time."""
    offset = 0
    for start, end in sorted((p.offset, p.offset + p.size) for p in placed if p.overlaps_in_time(b)):
        if offset + b.size <= start:
            break
        offset = max(offset, end)
    return offset
