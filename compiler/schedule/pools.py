"""Memory pools: a plan's arena buffers spread over several memories, each with its own budget.

Real parts have several SRAM regions (the STM32H743: DTCM 128 KB, AXI SRAM 512 KB, SRAM1-3
288 KB, SRAM4 64 KB; `compiler.target.boards.Memory`). A plan whose peak exceeds the largest region may
still fit across them: a buffer must lie inside one region, but buffers live at the same step may
sit in different ones. The data model follows TVM's USMP (`PoolInfo` name + size, a buffer's pool
candidates, `PoolAllocation(pool, byte_offset)`); the placement is greedy first-fit, as the
layer planner's (`compiler.schedule.layer.place`), per pool.

`place_pools(plan, pools)`:
1. when the plan's one arena fits the main pool (the board's [sram], the caller's arena), nothing
   moves (every buffer stays in pool "arena" at its offset): single-pool plans stay byte-identical;
2. otherwise every arena/scratch buffer gets a pool and an offset: buffers by size, largest
   first (ties: longer lifetime, then earlier first step), each into the first pool in its
   preference order where first fit leaves it inside the pool's budget. Small buffers (at most a
   quarter of the fastest pool) prefer the fastest pools ("hot, small buffers in TCM"); larger ones
   the largest pools ("large maps where they fit"). The graph input and output stay in the main
   pool (the API gives their offsets in the caller's arena).
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
    """A memory the arena may use: its name, the bytes the plan may take in it (its budget), its
    speed class (compiler.target.boards.MEMORY_SPEEDS), whether it is the main pool (the board's [sram],
    where the caller's arena, the stack and static data live) and its address when linked."""

    name: str
    size: int
    speed: str = "sram"
    main: bool = False
    origin: int | None = None


def pools_for(board, budget: int, target: str = "emulator") -> list[Pool]:
    """The activation pools of `board` (compiler.target.boards.Board): the memories that hold
    activations. Those inside [sram] form the main pool (named by them, "+"-joined), which gets
    `budget` bytes (the arena's share once stack, heap and static data are set aside); every
    other memory is a pool of its whole size."""
    out, main = [], []
    for m in board.pools("activations", target):
        origin = m.origin if target == "emulator" else m.part_origin
        sram = board.memories_for(target)[1]
        if origin is not None and sram.origin <= origin < sram.end:
            main.append(m)
        else:
            out.append(Pool(m.name, m.size, m.speed, False, origin))
    if main:
        main.sort(key=lambda m: m.origin or 0)
        slowest = max(main, key=lambda m: SPEED_ORDER.index(m.speed)).speed
        out.append(Pool("+".join(m.name for m in main), budget, slowest, True, board.memories_for(target)[1].origin))
    return out


def main_pool_bytes(plan: Plan) -> int:
    """Bytes of the caller's arena (the main pool): arena_bytes for a single-pool plan."""
    pools = plan.detail.get("pools")
    return plan.arena_bytes if not pools else int(pools.get(plan.detail.get("main_pool"), 0))


def place_pools(plan: Plan, pools: list[Pool]) -> dict[str, int]:
    """Give every arena/scratch buffer of `plan` a pool and an offset (see the module docstring);
    returns pool -> bytes used (also in plan.detail["pools"] when more than one pool is used)."""
    if not pools:
        raise ValueError("no pools to place in")
    main = next((p for p in pools if p.main), None)
    if (main.size if main is not None else max(p.size for p in pools)) >= plan.arena_bytes:
        return {"arena": plan.arena_bytes}  # the one arena fits: nothing moves
    movable = [b for b in plan.buffers if b.region in ARENA_REGIONS and b.first <= b.last]
    fastest = min(pools, key=lambda p: SPEED_ORDER.index(p.speed))
    by_speed = sorted(pools, key=lambda p: (SPEED_ORDER.index(p.speed), p.size))
    by_size = sorted(pools, key=lambda p: (-p.size, SPEED_ORDER.index(p.speed)))
    io = set(plan.graph.inputs) | set(plan.graph.outputs) if plan.graph is not None else set()
    placed: dict[str, list[tuple[Buffer, int]]] = {p.name: [] for p in pools}
    where: dict[int, tuple[str, int]] = {}
    # the graph input and output stay in the caller's arena (the main pool): the API's offsets
    pinned = [b for b in movable if main is not None and io & set(b.tensors)]
    rest = [b for b in movable if not (main is not None and io & set(b.tensors))]
    key = lambda b: (-b.size, -(b.last - b.first), b.first, b.name)  # noqa: E731
    for b in sorted(pinned, key=key) + sorted(rest, key=key):
        order = [main] if b in pinned else (by_speed if b.size * 4 <= fastest.size else by_size)
        for p in order:
            assert p is not None
            offset = _first_fit(placed[p.name], b)
            if offset + b.size <= p.size:
                where[id(b)] = (p.name, offset)
                placed[p.name].append((b, offset))
                break
        else:
            raise BudgetError(
                f"buffer {b.name} ({b.size} B, steps {b.first}..{b.last}) fits no memory pool: "
                + ", ".join(f"{p.name} {p.size} B" for p in pools)
            )
    for b in movable:  # all placed: apply (a refused placement leaves the plan as it was)
        b.pool, b.offset = where[id(b)]
    used = {p.name: max(o + b.size for b, o in placed[p.name]) for p in pools if placed[p.name]}
    plan.detail["pools"] = used
    if main is not None:
        plan.detail["main_pool"] = main.name
    plan.arena_bytes = sum(used.values())  # every pool's bytes: what plan_peak counts
    return used


def _first_fit(placed: list[tuple[Buffer, int]], b: Buffer) -> int:
    """The lowest offset where `b` overlaps no (buffer, offset) of `placed` live at the same time."""
    offset = 0
    for start, end in sorted((o, o + p.size) for p, o in placed if p.overlaps_in_time(b)):
        if offset + b.size <= start:
            break
        offset = max(offset, end)
    return offset
