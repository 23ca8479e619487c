"""The worst-case stack of `<prefix>_invoke`, from GCC's call graph of the built project.

The project is built with `-fcallgraph-info=su` (GCC >= 10): beside every object GCC writes a
`.ci` file (VCG graph) with each function's frame size ("N bytes (static)") and its calls.
The bound is the heaviest call path from `<prefix>_invoke`: the sum of the frames along it
(GNAT's `-fcallgraph-info` documentation; the method of tools such as `avstack.pl`). Calls to
library functions that have no node of their own (memcpy, memset) count `LIBC_FRAME` bytes.
A recursive path or a dynamic frame (VLA, alloca) gives no bound (None). The SysTick interrupt
can fire at the deepest point: its exception frame (`EXCEPTION_FRAME`: 8 core registers plus,
with the FPU's lazy stacking, 18 FP words, and 4 B of alignment; ARMv7-M ARM B1.5.7) and its
handler's own path are added.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

CALLGRAPH_FLAGS = "-fcallgraph-info=su"
LIBC_FRAME = 64  # newlib's memcpy/memset frames are a few words; counted generously
EXCEPTION_FRAME = 4 * (8 + 18) + 4
INTERRUPTS = ("SysTick_Handler",)

_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*\\n(\d+) bytes \(([^)]*)\)')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def read_callgraph(build_dir: Path) -> tuple[dict[str, tuple[int, bool]], dict[str, set[str]]]:
    """(function -> (frame bytes, static), caller -> callees) from every `.ci` file under `build_dir`."""
    frames: dict[str, tuple[int, bool]] = {}
    calls: dict[str, set[str]] = {}
    for ci in sorted(build_dir.rglob("*.ci")):
        text = ci.read_text(errors="replace")
        for name, size, kind in _NODE.findall(text):
            frames[name] = (int(size), kind.strip() == "static")
        for src, dst in _EDGE.findall(text):
            calls.setdefault(src, set()).add(dst)
    return frames, calls


def stack_bound(build_dir: str | Path, entry: str) -> int | None:
    """Bytes of stack `entry` and everything it calls may use at most; None when unbounded
    (recursion, a dynamic frame) or when the build has no call graph for `entry`."""
    frames, calls = read_callgraph(Path(build_dir))
    if entry not in frames:
        return None

    @cache
    def worst(fn: str, depth: int) -> int | None:
        if depth > 64:
            return None  # recursion
        if fn not in frames:
            # an external function: one of ours in another file is a node there (found above);
            # what is left is the C library's leaf functions
            return LIBC_FRAME
        size, static = frames[fn]
        if not static:
            return None
        deepest = 0
        for callee in calls.get(fn, ()):
            w = worst(callee, depth + 1)
            if w is None:
                return None
            deepest = max(deepest, w)
        return size + deepest

    main = worst(entry, 0)
    if main is None:
        return None
    irq = 0
    for handler in INTERRUPTS:
        w = worst(handler, 0) if handler in frames else 0
        if w is None:
            return None
        irq = max(irq, EXCEPTION_FRAME + w)
    return main + irq
