"""Run a firmware ELF in QEMU (``qemu-system-arm``) with semihosting.

The firmware's printf goes to QEMU's stdout, its ``fopen`` opens files relative to the working
directory QEMU runs in (``cwd``), and its exit status (``mt_board_exit``) is QEMU's. The machine
runs with ``-icount shift=0``: 1 ns of virtual time per instruction, so SysTick-based counts are
instruction counts and identical on every host.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from compiler.boards import FAULT_EXIT_CODE, Board, qemu_machine_args

QEMU_BINARY = "qemu-system-arm"

# exit_code when QEMU was killed for running past the timeout.
TIMEOUT_EXIT_CODE = -1


class EmulatorNotFound(RuntimeError):
    """qemu-system-arm is not installed (or not on PATH)."""


@dataclass
class EmuResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    command: list[str]

    @property
    def faulted(self) -> bool:
        """The firmware took a HardFault or an unexpected exception (see startup.c); the
        "*** MT FAULT" line is written with SYS_WRITE0, which QEMU sends to its stderr."""
        return self.exit_code == FAULT_EXIT_CODE or "*** MT FAULT" in self.stdout + self.stderr


def find_qemu() -> str:
    path = shutil.which(QEMU_BINARY)
    if path is None:
        raise EmulatorNotFound(
            f"{QEMU_BINARY} not found on PATH; install QEMU's Arm system emulator "
            "(Debian/Ubuntu: apt-get install qemu-system-arm)"
        )
    return path


def qemu_command(elf: Path, board: Board) -> list[str]:
    """The full QEMU command line that runs ``elf`` on ``board``'s emulated machine."""
    return [find_qemu(), *qemu_machine_args(board), "-kernel", str(Path(elf).resolve())]


def run_qemu(elf: Path, board: Board, *, cwd: Path | None = None, timeout_s: float = 300) -> EmuResult:
    """Run ``elf`` to completion; semihosting file I/O is relative to ``cwd``.

    A run past ``timeout_s`` is killed and reported with ``timed_out=True`` and
    ``exit_code=TIMEOUT_EXIT_CODE``; output produced until then is kept.
    """
    elf = Path(elf)
    if not elf.is_file():
        raise FileNotFoundError(f"firmware ELF not found: {elf}")
    command = qemu_command(elf, board)
    try:
        proc = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return EmuResult(
            exit_code=TIMEOUT_EXIT_CODE,
            stdout=_text(exc.stdout),
            stderr=_text(exc.stderr),
            timed_out=True,
            command=command,
        )
    return EmuResult(
        exit_code=proc.returncode,
        stdout=_text(proc.stdout),
        stderr=_text(proc.stderr),
        timed_out=False,
        command=command,
    )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="replace")
