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
from compiler.resources import data_dir

BOARDS_DIR: Path = data_dir("boards")
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

# UART register layouts the board support can drive (``[console] kind``):
#   stm32-usart     STM32F1/F2/F4 USART: SR 0x00, DR 0x04, BRR 0x08, CR1 0x0C (UE = CR1 bit 13)
#   stm32-usart-v2  STM32F0/F3/F7/L4 USART: CR1 0x00 (UE = bit 0), BRR 0x0C, ISR 0x1C, TDR 0x28
#   cmsdk-uart      Arm CMSDK APB UART (MPS2 boards): DATA 0x00, STATE 0x04, CTRL 0x08, BAUDDIV 0x10
CONSOLE_KINDS = ("stm32-usart", "stm32-usart-v2", "cmsdk-uart")
_STM32_KINDS = ("stm32-usart", "stm32-usart-v2")

# What a generated project is linked for: "emulator" = the board's own TOML memories and the
# emulator's console UART (QEMU); "part" = the real part's addresses ([emulator] flash_origin /
# sram_origin) and its own console UART ([console]), for Renode and real hardware.
TARGETS = ("emulator", "part")


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


# What a memory is ([[memory]] speed): fastest first, the order the pool planner prefers.
MEMORY_SPEEDS = ("tcm", "sram", "flash", "external-flash", "sdram")
# What may live in a memory ([[memory]] holds).
MEMORY_USES = ("activations", "scratch", "weights", "stack")


@dataclass(frozen=True)
class Memory:
    """One memory of the part (a pool the planner may place buffers in): ``[[memory]]`` in the
    board TOML. origin: where the firmware is linked, the emulator's address (None: the emulator
    has no such memory); part_origin: where the real part has it. Sizes are the part's."""

    name: str
    origin: int | None
    part_origin: int
    size: int
    speed: str  # one of MEMORY_SPEEDS
    holds: frozenset[str]  # subset of MEMORY_USES

    @property
    def end(self) -> int | None:
        return None if self.origin is None else self.origin + self.size

    def describe(self) -> str:
        kib = f"{self.size // 1024} KiB" if self.size < 1 << 20 else f"{self.size >> 20} MiB"
        where = f"0x{self.part_origin:08X}"
        if self.origin != self.part_origin:
            where += " (emulator " + ("none" if self.origin is None else f"0x{self.origin:08X}") + ")"
        return f"{self.name} {kib} {self.speed} @{where}: {', '.join(u for u in MEMORY_USES if u in self.holds)}"


@dataclass(frozen=True)
class ConsoleConfig:
    """A UART the firmware prints through when built with ``CONSOLE=uart`` (transmit only)."""

    kind: str  # one of CONSOLE_KINDS
    uart: str  # the peripheral's name on the part, e.g. "USART1"
    uart_base: int
    clock_hz: int  # the clock feeding the UART's baud generator (the reset clock: no PLL set up)
    baud: int = 115_200
    # STM32 only: (register address, mask) pairs OR-ed in to clock the GPIO port and the USART,
    # then the TX pin switched to its alternate function.
    rcc_enable: tuple[tuple[int, int], ...] = ()
    tx_gpio_base: int | None = None
    tx_pin: int | None = None
    tx_af: int | None = None

    @property
    def divisor(self) -> int:
        """BRR (STM32, 16x oversampling) or BAUDDIV (CMSDK): the UART clock over the baud rate."""
        return (self.clock_hz + self.baud // 2) // self.baud


@dataclass(frozen=True)
class EmulatorConfig:
    qemu_machine: str
    systick_clock_hz: int
    semihosting: bool = True
    # Where the real part has its flash/SRAM (documentation; the ELF is linked at Board.flash/sram).
    flash_origin: int | None = None
    sram_origin: int | None = None
    # The console UART when it differs from the part's own ([emulator.console]), and the index of
    # the QEMU serial port (-serial, in order) that carries it.
    console: ConsoleConfig | None = None
    console_serial: int = 0


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
    console: ConsoleConfig | None = None
    path: Path | None = None
    memories: tuple[Memory, ...] = ()  # [[memory]]: every memory of the part (pools), fastest first

    def pools(self, use: str, target: str = "emulator") -> list[Memory]:
        """Memories that may hold ``use`` (one of MEMORY_USES), fastest first; for an emulator
        build only those the emulator has."""
        if use not in MEMORY_USES:
            raise ValueError(f"unknown use {use!r}; expected one of {', '.join(MEMORY_USES)}")
        return [m for m in self.memories if use in m.holds and (target == "part" or m.origin is not None)]

    @property
    def qemu_machine(self) -> str:
        return self.emulator.qemu_machine

    @property
    def systick_clock_hz(self) -> int:
        return self.emulator.systick_clock_hz

    def systick_clock_for(self, target: str = "emulator") -> int:
        """The clock SysTick counts at in a build for ``target``: the emulator's ([emulator]
        systick_clock_hz) or the part's own core clock (cpu_clock_hz; Renode's machine scripts set
        ``sysbus.nvic Frequency`` to it, renode/README.md)."""
        return self.cpu_clock_hz if target == "part" else self.systick_clock_hz

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

    def console_for(self, target: str = "emulator") -> ConsoleConfig | None:
        """The UART console of a build for ``target`` ("emulator": QEMU's, "part": the part's)."""
        if target == "emulator" and self.emulator.console is not None:
            return self.emulator.console
        return self.console

    def memories_for(self, target: str = "emulator") -> tuple[MemoryRegion, MemoryRegion]:
        """(flash, sram) a build for ``target`` is linked at: the real part's addresses for "part"."""
        if target == "emulator":
            return self.flash, self.sram
        if target != "part":
            raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
        if not self.real_part:
            raise ValueError(f"{self.name} is not a real part: it can only be built for the emulator")
        flash_origin = self.emulator.flash_origin
        sram_origin = self.emulator.sram_origin
        flash = MemoryRegion(self.flash.origin if flash_origin is None else flash_origin, self.flash.size)
        sram = MemoryRegion(self.sram.origin if sram_origin is None else sram_origin, self.sram.size)
        return flash, sram

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


def _memories(data: dict[str, Any], where: str, flash: MemoryRegion, sram: MemoryRegion) -> tuple[Memory, ...]:
    """``[[memory]]`` tables, checked: known speeds and uses, unique names, no two overlapping in
    either address space, [flash] one of them and [sram] (the single-pool arena) covered by
    memories that hold activations. Sorted fastest first (MEMORY_SPEEDS), then by size."""
    tables = data.get("memory", [])
    if not isinstance(tables, list):
        raise BoardConfigError(f"{where}: [[memory]] must be an array of tables")
    out = []
    for k, t in enumerate(tables):
        at = f"{where} [[memory]] #{k + 1}"
        name = _require(t, "name", str, at)
        origin = t.get("origin")
        part = t.get("part_origin", origin)
        speed = _require(t, "speed", str, at)
        holds = _require(t, "holds", list, at)
        size = _require(t, "size", int, at)
        if speed not in MEMORY_SPEEDS:
            raise BoardConfigError(f"{at}: speed {speed!r} is not one of {', '.join(MEMORY_SPEEDS)}")
        if not holds or any(u not in MEMORY_USES for u in holds):
            raise BoardConfigError(f"{at}: holds must list some of {', '.join(MEMORY_USES)}")
        if not isinstance(part, int) or not (origin is None or isinstance(origin, int)):
            raise BoardConfigError(f"{at}: origin / part_origin must be integers")
        if size <= 0 or part < 0 or part + size > 1 << 32 or (origin is not None and origin + size > 1 << 32):
            raise BoardConfigError(f"{at}: not a valid 32-bit region")
        out.append(Memory(name, origin, part, size, speed, frozenset(holds)))
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise BoardConfigError(f"{where}: [[memory]] names repeat: {names}")
    for key in ("origin", "part_origin"):
        spans = sorted((getattr(m, key), getattr(m, key) + m.size, m.name) for m in out if getattr(m, key) is not None)
        for (_, end, a), (lo, _, b) in zip(spans, spans[1:], strict=False):
            if lo < end:
                raise BoardConfigError(f"{where}: [[memory]] {a} and {b} overlap ({key})")
    if out:
        if not any(m.origin == flash.origin and m.size == flash.size and "weights" in m.holds for m in out):
            raise BoardConfigError(f"{where}: [flash] is not one of the [[memory]] tables (holding weights)")
        pos = sram.origin
        for m in sorted((m for m in out if m.origin is not None), key=lambda m: m.origin or 0):
            if m.origin == pos and pos < sram.end and "activations" in m.holds:
                pos = m.origin + m.size
        if pos < sram.end:
            raise BoardConfigError(f"{where}: [sram] is not covered by [[memory]] tables that hold activations")
    return tuple(sorted(out, key=lambda m: (MEMORY_SPEEDS.index(m.speed), m.size)))


def _console(table: dict[str, Any], where: str) -> ConsoleConfig:
    kind = _require(table, "kind", str, where)
    if kind not in CONSOLE_KINDS:
        raise BoardConfigError(f"{where}: kind {kind!r} is not one of {', '.join(CONSOLE_KINDS)}")
    rcc = table.get("rcc_enable", [])
    if not isinstance(rcc, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int) for v in pair) for pair in rcc
    ):
        raise BoardConfigError(f"{where}: rcc_enable must be a list of [address, mask] pairs")
    console = ConsoleConfig(
        kind=kind,
        uart=_require(table, "uart", str, where),
        uart_base=_require(table, "uart_base", int, where),
        clock_hz=_require(table, "clock_hz", int, where),
        baud=int(table.get("baud", 115_200)),
        rcc_enable=tuple((int(a), int(m)) for a, m in rcc),
        tx_gpio_base=table.get("tx_gpio_base"),
        tx_pin=table.get("tx_pin"),
        tx_af=table.get("tx_af"),
    )
    if console.baud <= 0 or not 1 <= console.divisor <= 0xFFFF:
        raise BoardConfigError(f"{where}: clock_hz / baud gives an impossible divisor ({console.divisor})")
    if kind in _STM32_KINDS:
        if console.tx_gpio_base is None or console.tx_pin is None or console.tx_af is None:
            raise BoardConfigError(f"{where}: an STM32 USART needs tx_gpio_base, tx_pin and tx_af")
        if not (0 <= console.tx_pin < 16 and 0 <= console.tx_af < 16):
            raise BoardConfigError(f"{where}: tx_pin and tx_af must be 0..15")
    return console


def _board_from_toml(path: Path) -> Board:
    where = str(path)
    with path.open("rb") as f:
        data = tomllib.load(f)
    emu = _require(data, "emulator", dict, where)
    flash, sram = _region(data, "flash", where), _region(data, "sram", where)
    console = _console(data["console"], f"{where} [console]") if "console" in data else None
    emu_console = _console(emu["console"], f"{where} [emulator.console]") if "console" in emu else None
    board = Board(
        name=_require(data, "name", str, where),
        description=_require(data, "description", str, where),
        real_part=_require(data, "real_part", bool, where),
        core=_require(data, "core", str, where),
        fpu=str(data.get("fpu", "none")),
        float_abi=str(data.get("float_abi", "soft")),
        cpu_clock_hz=_require(data, "cpu_clock_hz", int, where),
        flash=flash,
        sram=sram,
        stack_bytes=int(data.get("stack_bytes", 8192)),
        heap_bytes=int(data.get("heap_bytes", 4096)),
        num_irqs=int(data.get("num_irqs", 32)),
        emulator=EmulatorConfig(
            qemu_machine=_require(emu, "qemu_machine", str, f"{where} [emulator]"),
            systick_clock_hz=_require(emu, "systick_clock_hz", int, f"{where} [emulator]"),
            semihosting=bool(emu.get("semihosting", True)),
            flash_origin=emu.get("flash_origin"),
            sram_origin=emu.get("sram_origin"),
            console=emu_console,
            console_serial=int(emu.get("console_serial", 0)),
        ),
        console=console,
        path=path,
        memories=_memories(data, where, flash, sram),
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


def qemu_machine_args(board: Board, console: str = "semihosting") -> list[str]:
    """QEMU options (no ``-kernel``) that run a firmware for ``board``: no monitor or display,
    ``-icount shift=0`` (1 ns per instruction) and semihosting (exit status, and the console when
    ``console="semihosting"``). With ``console="uart"`` the serial port that carries the board's
    console UART (``[emulator] console_serial``) goes to QEMU's stdout; the others are unconnected."""
    if console not in ("semihosting", "uart"):
        raise ValueError(f"console must be 'semihosting' or 'uart', got {console!r}")
    serial = ["-serial", "none"]
    if console == "uart":
        serial = ["-serial", "null"] * board.emulator.console_serial + ["-serial", "stdio"]
    args = [
        "-M",
        board.emulator.qemu_machine,
        "-nographic",
        "-monitor",
        "none",
        *serial,
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


def _console_context(console: ConsoleConfig | None) -> dict[str, Any]:
    if console is None:
        return {"console_kind": "", "console_uart": ""}
    ctx: dict[str, Any] = {
        "console_kind": console.kind,
        "console_uart": console.uart,
        "console_base": _hex(console.uart_base),
        "console_clock_hz": console.clock_hz,
        "console_baud": console.baud,
        "console_divisor": console.divisor,
        "console_rcc_enable": [(_hex(a), _hex(m)) for a, m in console.rcc_enable],
    }
    if console.kind in _STM32_KINDS:
        assert console.tx_gpio_base is not None and console.tx_pin is not None and console.tx_af is not None
        pin = console.tx_pin
        ctx.update(
            {
                "console_gpio_base": _hex(console.tx_gpio_base),
                "console_tx_pin": pin,
                "console_tx_af": console.tx_af,
                "console_moder_shift": 2 * pin,
                "console_afr_offset": "0x20u" if pin < 8 else "0x24u",
                "console_afr_shift": 4 * (pin % 8),
            }
        )
    return ctx


def board_template_context(
    board: Board,
    *,
    stack_bytes: int | None = None,
    target: str = "emulator",
    pools: tuple[str, ...] = (),
    weight_pools: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Every value the board templates print, computed here (templates do no arithmetic).
    pools: memories ([[memory]] names) a multi-pool plan uses besides [sram]: one linker region
    and one section (.mt_pool.<name>) each; weight_pools: external flashes holding constants
    (section .mt_weights.<name>, loaded with the ELF)."""
    flash, sram = board.memories_for(target)
    stack = board.stack_bytes if stack_bytes is None else stack_bytes
    if stack <= 0 or stack % 8:
        raise BoardConfigError(f"--stack {stack} B: the stack must be a positive multiple of 8 bytes")
    if stack + board.heap_bytes > board.sram.size:
        raise BoardConfigError(
            f"--stack {stack} B + heap {board.heap_bytes} B exceed {board.name}'s SRAM ({board.sram.size} B)"
        )
    return {
        "board_name": board.name,
        "core": board.core,
        "has_fpu": board.has_fpu,
        "cpu_clock_hz": board.cpu_clock_hz,
        "systick_clock_hz": board.systick_clock_for(target),
        "target": target,
        "flash_origin": _hex(flash.origin),
        "flash_size": _hex(flash.size),
        "sram_origin": _hex(sram.origin),
        "sram_size": _hex(sram.size),
        "sram_size_bytes": sram.size,
        "stack_bytes": stack,
        "heap_bytes": board.heap_bytes,
        "num_irqs": board.num_irqs,
        "fault_exit_code": FAULT_EXIT_CODE,
        "cpu_flags": " ".join(board.gcc_cpu_flags()),
        "qemu_machine": board.qemu_machine,
        "qemu_flags": " ".join(qemu_machine_args(board)),
        "qemu_flags_uart": " ".join(qemu_machine_args(board, console="uart")),
        "board_static_ram_note": "16 bytes of .bss (SysTick wraps, paint SP, heap top)",
        "pools": [_pool_context(board, name, target) for name in pools],
        "weight_pools": [_pool_context(board, name, target) for name in weight_pools],
        **_console_context(board.console_for(target)),
    }


def _pool_context(board: Board, name: str, target: str) -> dict[str, Any]:
    mem = next((m for m in board.memories if m.name == name), None)
    if mem is None:
        raise BoardConfigError(f"{board.name} has no memory {name!r}")
    origin = mem.part_origin if target == "part" else mem.origin
    if origin is None:
        raise BoardConfigError(f"{board.name}'s memory {name} has no address in the emulator")
    c = "".join(ch if ch.isalnum() else "_" for ch in name)
    return {"name": c, "NAME": c.upper(), "origin": _hex(origin), "size": _hex(mem.size)}


def render_board_files(
    board: Board,
    *,
    stack_bytes: int | None = None,
    target: str = "emulator",
    pools: tuple[str, ...] = (),
    weight_pools: tuple[str, ...] = (),
) -> dict[str, str]:
    """Filename -> text of ``linker.ld``, ``startup.c``, ``mt_board.c``, ``mt_board.h`` and
    ``Makefile`` for a project built for ``board`` (stack reserve defaults to the board's).

    ``target="emulator"`` (default) links for the QEMU machine; ``"part"`` for the real part's
    addresses and console UART (Renode, hardware). The console itself (semihosting or UART) is
    chosen when building: ``make CONSOLE=uart`` or ``EXTRA_CFLAGS=-DMT_CONSOLE_UART``."""
    context = board_template_context(
        board, stack_bytes=stack_bytes, target=target, pools=pools, weight_pools=weight_pools
    )
    env = _environment()
    return {out: env.get_template(tpl).render(context) for out, tpl in BOARD_FILES.items()}


def write_board_files(
    board: Board, out_dir: Path, *, stack_bytes: int | None = None, target: str = "emulator"
) -> list[Path]:
    """Render the board files into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_board_files(board, stack_bytes=stack_bytes, target=target).items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written
