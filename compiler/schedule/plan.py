"""The Plan: what the firmware will do, step by step, and where every byte lives.

A planner (layer, patch, token) returns a Plan; codegen only writes it down. `Plan.dump()`
prints it so a reader can see every buffer's offset and lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compiler.ir import Graph, Op, op_macs

ALIGN = 4


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


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
        out = []
        for i in range(len(self.steps)):
            out.append(sum(b.size for b in self.buffers if b.region in ("arena", "scratch") and b.first <= i <= b.last))
        return out

    def render(self, width: int = 64) -> str:
        """The arena over time as text, like TFLite-Micro's `PrintMemoryPlan`
        (`tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc`): one row per step,
        `width` columns spanning the arena (each column `arena_bytes / width` bytes), a letter per
        buffer live at that step where it sits, `!` where two live buffers share a column's bytes
        (only in-place reuse may), `.` free; then the live KB (1 KB = 1024 B) and the step.
        A legend names the tensors behind each letter."""
        arena = [b for b in self.buffers if b.region in ("arena", "scratch")]
        total = max(self.arena_bytes, max((b.offset + b.size for b in arena), default=0), 1)
        symbols = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        letter = {id(b): symbols[k % len(symbols)] for k, b in enumerate(sorted(arena, key=lambda b: b.first))}
        live = self.live_bytes_per_step()
        lines = [f"arena over steps: {total:,} B, {width} columns of {total / width:,.0f} B"]
        for i, step in enumerate(self.steps):
            row = ["."] * width
            owner: list[Buffer | None] = [None] * width
            for b in arena:
                if not b.first <= i <= b.last or b.size == 0:
                    continue
                lo = b.offset * width // total
                hi = max(lo + 1, -(-(b.offset + b.size) * width // total))
                for c in range(lo, min(hi, width)):
                    prev = owner[c]
                    if prev is not None and prev.overlaps_in_space(b):
                        row[c] = "!"
                    elif row[c] == ".":
                        row[c] = letter[id(b)]
                    owner[c] = b
            lines.append(f"{i:>3d} {''.join(row)} {live[i] / 1024:7.1f} KB  {step.op.kind} {step.op.name}")
        lines.append("legend:")
        for b in sorted(arena, key=lambda b: b.first):
            lines.append(
                f"  {letter[id(b)]} {b.region:7s} @{b.offset:>7d} {b.size:>7d} B  steps {b.first}..{b.last}  "
                f"{', '.join(b.tensors)[:80]}"
            )
        return "\n".join(lines)

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
