"""What the stage writers (`codegen/patch.py`, `codegen/token.py`) share with `codegen/emit.py`:
the `StepCode` record, `c_array`, and `Emitter`, the emitter interface they call.

`codegen.emit._Emitter` implements `Emitter`; emit imports the stage writers, they import only
this module, so the codegen modules import each other without a cycle (tests/test_layout.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from compiler.core.ir import Graph, Op
from compiler.schedule.plan import KernelCall, Plan


@dataclass
class StepCode:
    """The C of one plan step: its declarations (file scope) and its body (inside invoke)."""

    index: int
    name: str
    kind: str
    comment: str
    decls: list[str] = field(default_factory=list)
    body: str = ""


def c_array(ctype: str, name: str, values: np.ndarray, align: int = 4) -> str:
    """A `static const` C array of `values` (flattened; one zero for an empty array), aligned
    to `align` bytes."""
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        flat = np.zeros(1, dtype=np.int64)
    lines = []
    per_line = 32 if flat.dtype.itemsize == 1 else 12
    items = [str(int(v)) for v in flat]
    for i in range(0, len(items), per_line):
        lines.append("    " + ", ".join(items[i : i + per_line]) + ",")
    body = "\n".join(lines)
    return f"static const {ctype} {name}[{flat.size}] __attribute__((aligned({align}))) = {{\n{body}\n}};"


class Emitter(Protocol):
    """The emitter as a stage writer sees it (`codegen.emit._Emitter`)."""

    plan: Plan
    g: Graph
    p: str  # the C prefix
    const_decls: list[str]
    flash_const_bytes: int

    def step(self, i: int, op: Op) -> StepCode:
        """The layer-by-layer C of step i (its template's declarations and call)."""
        ...

    def ptr(self, tensor: str) -> str:
        """C expression of a tensor's first byte."""
        ...

    def const(self, tensor: str, ctype: str) -> str:
        """Name of a constant tensor's C array (declared once)."""
        ...

    def array(self, name: str, ctype: str, values: np.ndarray) -> str:
        """Declare a C array `<prefix>_<name>`; returns its name."""
        ...

    def scratch_ptr(self, i: int) -> str:
        """C expression of step i's scratch buffer, or NULL."""
        ...

    def fast_kernel(self, i: int) -> KernelCall | None:
        """The DSP kernel the plan chose for step i when the step can run it."""
        ...
