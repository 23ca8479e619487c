"""The Plan: what the firmware will do, step by step, and where every byte lives.

A planner (layer, patch, token) returns a Plan; codegen only writes it down. `Plan.dump()`
prints it so a reader can see every buffer's offset and lifetime.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from compiler.ir import Graph, Op, op_macs

ALIGN = 4


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


ARENA_REGIONS = ("arena", "scratch")


def live_bytes(buffers: Iterable[Buffer], n_steps: int) -> list[int]:
    """Arena bytes live during each of `n_steps` steps: the sum of the sizes of the arena and
    scratch buffers with first <= step <= last (the curve MCUNetV2 plots; its maximum is a lower
    bound no placement can beat). O(buffers + steps) with a difference array; the one copy of
    this loop (layer, patch, in-place and token planners, Plan.live_bytes_per_step)."""
    d = [0] * (n_steps + 1)
    for b in buffers:
        if b.region in ARENA_REGIONS:
            lo, hi = max(b.first, 0), min(b.last, n_steps - 1)
            if lo <= hi:
                d[lo] += b.size
                d[hi + 1] -= b.size
    return list(accumulate(d[:n_steps]))


@dataclass
class Buffer:
    """A block of memory holding one or more tensors (views alias their source)."""

    name: str
    size: int
    first: int  # first step that writes it (-1: before the first step)
    last: int  # last step that reads it (len(steps): after the last)
    region: str = "arena"  # "arena" | "input" | "output" | "scratch"
    offset: int = 0
    tensors: list[str] = field(default_factory=list)

    def overlaps_in_time(self, other: Buffer) -> bool:
        return not (self.last < other.first or other.last < self.first)

    def overlaps_in_space(self, other: Buffer) -> bool:
        return not (self.offset + self.size <= other.offset or other.offset + other.size <= self.offset)


@dataclass
class Step:
    op: Op
    macs: int
    scratch: Buffer | None = None
    in_place: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    graph: Graph
    schedule: str
    steps: list[Step]
    buffers: list[Buffer]
    tensor_buffer: dict[str, Buffer]
    arena_bytes: int
    lower_bound: int
    io: str = "arena"  # where the graph input/output live: "arena" or "external"
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.steps)

    @property
    def input_bytes(self) -> int:
        return sum(self.graph.t(n).nbytes for n in self.graph.inputs)

    @property
    def output_bytes(self) -> int:
        return sum(self.graph.t(n).nbytes for n in self.graph.outputs)

    def location(self, tensor: str) -> tuple[str, int]:
        """(region, byte offset) of a tensor: region is arena, input or output."""
        b = self.tensor_buffer[tensor]
        return b.region, b.offset

    def live_bytes_per_step(self) -> list[int]:
        """Arena bytes live during each step (the curve MCUNetV2 plots)."""
        return live_bytes(self.buffers, len(self.steps))

    def dump(self) -> str:
        g = self.graph
        lines = [
            f"plan {g.name}: schedule={self.schedule} arena={self.arena_bytes} B "
            f"(lower bound {self.lower_bound} B) io={self.io} macs={self.macs}",
        ]
        for k, v in self.detail.items():
            lines.append(f"  {k}: {v}")
        lines.append("  buffers (offset, size, live steps, tensors):")
        for b in sorted(self.buffers, key=lambda b: (b.region, b.offset)):
            lines.append(
                f"    {b.region:7s} @{b.offset:>7d} {b.size:>7d} B  [{b.first:>3d}..{b.last:<3d}]  "
                f"{', '.join(b.tensors)}"
            )
        lines.append("  steps:")
        live = self.live_bytes_per_step()
        for i, s in enumerate(self.steps):
            extra = " in-place" if s.in_place else ""
            if s.scratch is not None:
                extra += f" scratch@{s.scratch.offset}+{s.scratch.size}"
            if "kernel" in s.detail:
                extra += f" kernel={s.detail['kernel'].describe()}"
            lines.append(f"    {i:>3d} {s.op.kind:18s} {s.op.name:28s} macs={s.macs:>9d} live={live[i]:>7d}{extra}")
            for note in s.detail.get("notes", ()):
                lines.append(f"          {note}")
        return "\n".join(lines)


def step_macs(g: Graph, op: Op) -> int:
    return op_macs(g, op)
