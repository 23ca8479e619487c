"""Boards: one TOML file per board in the repository's ``boards/`` folder, and the board files
(linker script, startup, board support, Makefile) of a generated C project.

A board says what the part is (core, FPU, clock, flash and SRAM) and how it runs in the emulator
(QEMU machine, the clock SysTick counts at there). Memory origins are the addresses the firmware
is LINKED at, i.e. the emulator's; ``[emulator] flash_origin/sram_origin`` document where the real
part has them when that differs (the STM32F746 runs on QEMU's mps2-an500).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from compiler.errors import MicrotileError

BOARDS_DIR: Path = Path(__file__).resolve().parent.parent / "boards"
TEMPLATES_DIR: Path = BOARDS_DIR / "templates"

# Exit status of a firmware that took a HardFault or any unexpected exception.
FAULT_EXIT_CODE = 125

# Files render_board_files() returns, and the template each comes from.
BOARD_FILES: dict[str, str] = {
    "linker.ld": "linker.ld.j2",
    "startup.c": "startup.c.j2",
    "mt_board.c": "mt_board.c.j2",
    "mt_board.h": "mt_board.h.j2",
    "Makefile": "Makefile.j2",
}

_CORES_WITH_FPU = {"cortex-m4", "cortex-m7"}


class UnknownBoardError(MicrotileError, ValueError):
    """A board name with no ``boards/<name>.toml``."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name, self.known = name, tuple(known)
        super().__init__(f"unknown board {name!r}; known boards: {', '.join(known) or '(none)'}")


class BoardConfigError(MicrotileError, ValueError):
    """A board TOML file with a missing or ill-typed field."""


@dataclass(frozen=True)
class MemoryRegion:
    origin: int
    size: int

    @property
    def end(self) -> int:
        return self.origin + self.size


@dataclass(frozen=True)
class EmulatorConfig:
    qemu_machine: str
    systick_clock_hz: int
    semihosting: bool = True
    # Where the real part has its flash/SRAM (documentation; the ELF is linked at Board.flash/sram).
    flash_origin: int | None = None
    sram_origin: int | None = None


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    real_part: bool
    core: str
    fpu: str
    float_abi: str
    cpu_clock_hz: int
    flash: MemoryRegion
    sram: MemoryRegion
    stack_bytes: int
    heap_bytes: int
    num_irqs: int
    emulator: EmulatorConfig
    path: Path | None = None

    @property
    def qemu_machine(self) -> str:
        return self.emulator.qemu_machine

    @property
    def systick_clock_hz(self) -> int:
        return self.emulator.systick_clock_hz

    @property
    def has_fpu(self) -> bool:
        return self.fpu not in ("", "none") and self.float_abi != "soft"

    def gcc_cpu_flags(self) -> list[str]:
        """``-mcpu -mthumb -mfpu -mfloat-abi`` for arm-none-eabi-gcc (compile and link)."""
        flags = [f"-mcpu={self.core}", "-mthumb"]
        if self.has_fpu:
            flags += [f"-mfpu={self.fpu}", f"-mfloat-abi={self.float_abi}"]
        else:
            flags += ["-mfloat-abi=soft"]
        return flags

    def instructions_from_ticks(self, ticks: int) -> int:
        """Same integer math as the firmware's ``mt_board_ticks_to_instructions``."""
        return ticks * 1_000_000_000 // self.systick_clock_hz


def _require(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise BoardConfigError(f"{where}: missing field {key!r}")
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BoardConfigError(f"{where}: field {key!r} has the wrong type ({value!r})")
    return value


def _region(data: dict[str, Any], key: str, where: str) -> MemoryRegion:
    table = _require(data, key, dict, where)
    region = MemoryRegion(
        origin=_require(table, "origin", int, f"{where} [{key}]"),
        size=_require(table, "size", int, f"{where} [{key}]"),
    )
    if region.size <= 0 or region.origin < 0 or region.end > 1 << 32:
        raise BoardConfigError(f"{where}: [{key}] is not a valid 32-bit region")
    return region


def _board_from_toml(path: Path) -> Board:
    where = str(path)
    with path.open("rb") as f:
        data = tomllib.load(f)
    emu = _require(data, "emulator", dict, where)
    board = Board(
        name=_require(data, "name", str, where),
        description=_require(data, "description", str, where),
        real_part=_require(data, "real_part", bool, where),
        core=_require(data, "core", str, where),
        fpu=str(data.get("fpu", "none")),
        float_abi=str(data.get("float_abi", "soft")),
        cpu_clock_hz=_require(data, "cpu_clock_hz", int, where),
        flash=_region(data, "flash", where),
        sram=_region(data, "sram", where),
        stack_bytes=int(data.get("stack_bytes", 8192)),
        heap_bytes=int(data.get("heap_bytes", 4096)),
        num_irqs=int(data.get("num_irqs", 32)),
        emulator=EmulatorConfig(
            qemu_machine=_require(emu, "qemu_machine", str, f"{where} [emulator]"),
            systick_clock_hz=_require(emu, "systick_clock_hz", int, f"{where} [emulator]"),
            semihosting=bool(emu.get("semihosting", True)),
            flash_origin=emu.get("flash_origin"),
            sram_origin=emu.get("sram_origin"),
        ),
        path=path,
    )
    if board.name != path.stem:
        raise BoardConfigError(f"{where}: name {board.name!r} does not match the file name")
    if board.has_fpu and board.core not in _CORES_WITH_FPU:
        raise BoardConfigError(f"{where}: core {board.core} has no FPU")
    if board.stack_bytes % 8 or board.heap_bytes % 8:
        raise BoardConfigError(f"{where}: stack_bytes and heap_bytes must be multiples of 8")
    return board


def _board_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BOARDS_DIR.glob("*.toml"))}


def list_boards() -> list[Board]:
    """Every board in ``boards/``, sorted by name."""
    return [_board_from_toml(p) for p in _board_paths().values()]


def load_board(name: str) -> Board:
    """The board called ``name``; ``UnknownBoardError`` (a ValueError) lists the known ones."""
    paths = _board_paths()
    if name not in paths:
        raise UnknownBoardError(name, sorted(paths))
    return _board_from_toml(paths[name])


def qemu_machine_args(board: Board) -> list[str]:
    """QEMU options (no ``-kernel``) that run a firmware for ``board``: semihosting console and
    exit status, no monitor/serial/display, and ``-icount shift=0`` (1 ns per instruction)."""
    args = [
        "-M",
        board.emulator.qemu_machine,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-icount",
        "shift=0",
    ]
    if board.emulator.semihosting:
        args += ["-semihosting-config", "enable=on,target=native"]
    return args


_ENV: jinja2.Environment | None = None


def _environment() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        _ENV = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
    return _ENV


def _hex(value: int) -> str:
    return f"0x{value:08X}"


def board_template_context(board: Board, *, stack_bytes: int | None = None) -> dict[str, Any]:
    """Every value the board templates print, computed here (templates do no arithmetic)."""
    stack = board.stack_bytes if stack_bytes is None else stack_bytes
    if stack <= 0 or stack % 8:
        raise ValueError(f"stack_bytes must be a positive multiple of 8, got {stack}")
    if stack + board.heap_bytes > board.sram.size:
        raise ValueError(
            f"stack_bytes {stack} + heap {board.heap_bytes} exceed {board.name}'s SRAM ({board.sram.size})"
        )
    return {
        "board_name": board.name,
        "core": board.core,
        "has_fpu": board.has_fpu,
        "cpu_clock_hz": board.cpu_clock_hz,
        "systick_clock_hz": board.systick_clock_hz,
        "flash_origin": _hex(board.flash.origin),
        "flash_size": _hex(board.flash.size),
        "sram_origin": _hex(board.sram.origin),
        "sram_size": _hex(board.sram.size),
        "sram_size_bytes": board.sram.size,
        "stack_bytes": stack,
        "heap_bytes": board.heap_bytes,
        "num_irqs": board.num_irqs,
        "fault_exit_code": FAULT_EXIT_CODE,
        "cpu_flags": " ".join(board.gcc_cpu_flags()),
        "qemu_machine": board.qemu_machine,
        "qemu_flags": " ".join(qemu_machine_args(board)),
        "board_static_ram_note": "16 bytes of .bss (SysTick wraps, paint SP, heap top)",
    }


def render_board_files(board: Board, *, stack_bytes: int | None = None) -> dict[str, str]:
    """Filename -> text of ``linker.ld``, ``startup.c``, ``mt_board.c``, ``mt_board.h`` and
    ``Makefile`` for a project built for ``board`` (stack reserve defaults to the board's)."""
    context = board_template_context(board, stack_bytes=stack_bytes)
    env = _environment()
    return {out: env.get_template(tpl).render(context) for out, tpl in BOARD_FILES.items()}


def write_board_files(board: Board, out_dir: Path, *, stack_bytes: int | None = None) -> list[Path]:
    """Render the board files into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_board_files(board, stack_bytes=stack_bytes).items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written
