"""Build a generated project with arm-none-eabi-gcc and read what the ELF costs.

`build_project` runs `make`; `memory_from_map` reads the linker map to attribute every
byte of flash and RAM to the model (model.c + runtime kernels) or to the test harness.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import BoardFitError, MicrotileError


class ToolchainError(MicrotileError):
    """arm-none-eabi-gcc or make is missing, or the build failed."""


@dataclass
class SectionSizes:
    text: int = 0  # .text + .rodata (flash only)
    data: int = 0  # .data (flash image + RAM copy)
    bss: int = 0  # .bss (RAM)

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss


def find_toolchain() -> str:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise ToolchainError(
            "arm-none-eabi-gcc not found on PATH (Debian: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
        )
    if shutil.which("make") is None:
        raise ToolchainError("make not found on PATH (Debian: apt-get install make)")
    return gcc


def build_project(project: Path, extra_cflags: str = "", jobs: int = 2) -> Path:
    """Run make in a generated project; returns the ELF path. Raises ToolchainError on failure."""
    find_toolchain()
    cmd = ["make", "-s", f"-j{jobs}", "-C", str(project)]
    if extra_cflags:
        cmd.append(f"EXTRA_CFLAGS={extra_cflags}")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        text = r.stdout + r.stderr
        over = re.findall(r"region `(\w+)' overflowed by (\d+) bytes", text)
        if over:  # the model does not fit the part: a user's problem, one line
            parts = ", ".join(f"{region} by {int(n):,} B" for region, n in over)
            raise BoardFitError(
                f"the firmware does not fit the board's memory ({parts} too many, linker map in {project}/build); "
                "try --no-widen, a smaller model, or a board with more memory"
            )
        tail = "\n".join(text.strip().splitlines()[-25:])
        raise ToolchainError(f"firmware build failed in {project}:\n{tail}")
    return project / "build" / "firmware.elf"


_SEC = re.compile(r"^\s(\.[\w.$]+)?\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S+)$")


def memory_from_map(map_path: Path) -> dict[str, SectionSizes]:
    """Per-object section sizes kept after --gc-sections, keyed by object file path."""
    text = map_path.read_text(errors="replace")
    start = text.find("Linker script and memory map")
    lines = text[start:].splitlines() if start >= 0 else []
    out: dict[str, SectionSizes] = {}
    pending: str | None = None
    for line in lines:
        m = _SEC.match(line)
        if m is None:
            s = line.strip()
            pending = s if (line.startswith(" .") and len(s.split()) == 1) else None
            continue
        name = m.group(1) or pending
        pending = None
        if name is None:
            continue
        size = int(m.group(3), 16)
        obj = m.group(4)
        if not (obj.endswith(".o") or obj.endswith(".o)")) or size == 0:
            continue
        sizes = out.setdefault(obj, SectionSizes())
        if name.startswith((".text", ".rodata")):
            sizes.text += size
        elif name.startswith(".data"):
            sizes.data += size
        elif name.startswith((".bss", "COMMON")):
            sizes.bss += size
    return out


def model_memory(project: Path, prefix: str) -> tuple[SectionSizes, SectionSizes]:
    """(model + runtime kernels, everything in the ELF) section sizes from the map file."""
    per_obj = memory_from_map(project / "build" / "firmware.map")
    model = SectionSizes()
    total = SectionSizes()
    for obj, s in per_obj.items():
        total.text += s.text
        total.data += s.data
        total.bss += s.bss
        if obj.endswith(f"build/{prefix}.o") or "/runtime/" in obj or obj.startswith("build/runtime/"):
            model.text += s.text
            model.data += s.data
            model.bss += s.bss
    return model, total
