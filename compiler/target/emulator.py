"""Run a firmware ELF in QEMU (``qemu-system-arm``) with semihosting.

The firmware's printf goes to QEMU's stdout, its ``fopen`` opens files relative to the working
directory QEMU runs in (``cwd``), and its exit status (``mt_board_exit``) is QEMU's. The machine
runs with ``-icount shift=0``: 1 ns of virtual time per instruction, so SysTick-based counts are
instruction counts and identical on every host.

A firmware built with the UART console (``make CONSOLE=uart``) runs with ``console="uart"``: the
board's console UART is QEMU's stdout and, since such a firmware never exits (a real board has
nowhere to exit to), QEMU is stopped once a line starts with ``MT_DONE`` or ``MT_EXIT`` or says
``*** MT FAULT``.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.target.boards import FAULT_EXIT_CODE, Board, qemu_machine_args

QEMU_BINARY = "qemu-system-arm"

# exit_code when QEMU was killed for running past the timeout.
TIMEOUT_EXIT_CODE = -1

# Lines that end a UART-console run (the firmware itself never exits).
UART_DONE = "MT_DONE"
UART_EXIT = "MT_EXIT"
FAULT_MARK = "*** MT FAULT"


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


def qemu_command(elf: Path, board: Board, console: str = "semihosting") -> list[str]:
    """The full QEMU command line that runs ``elf`` on ``board``'s emulated machine."""
    return [find_qemu(), *qemu_machine_args(board, console), "-kernel", str(Path(elf).resolve())]


def run_qemu(
    elf: Path,
    board: Board,
    *,
    cwd: Path | None = None,
    timeout_s: float = 300,
    console: str = "semihosting",
) -> EmuResult:
    """Run ``elf`` to completion; semihosting file I/O is relative to ``cwd``.

    A run past ``timeout_s`` is killed and reported with ``timed_out=True`` and
    ``exit_code=TIMEOUT_EXIT_CODE``; output produced until then is kept. ``console="uart"`` is
    for firmware built with ``CONSOLE=uart`` (see the module docstring).
    """
    elf = Path(elf)
    if not elf.is_file():
        raise FileNotFoundError(f"firmware ELF not found: {elf}")
    command = qemu_command(elf, board, console)
    if console == "uart":
        return _run_until_done(command, cwd, timeout_s)
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


def _uart_stop(line: str) -> int | None:
    """The exit code a UART-console line stands for, or None when the run goes on."""
    text = line.strip()
    if text.startswith(UART_DONE):
        return 0
    if text.startswith(UART_EXIT):
        parts = text.split()
        try:
            return int(parts[1]) if len(parts) > 1 else 1
        except ValueError:
            return 1
    if FAULT_MARK in text:
        return FAULT_EXIT_CODE
    return None


def _run_until_done(command: list[str], cwd: Path | None, timeout_s: float) -> EmuResult:
    """Run QEMU, reading the console from its stdout line by line, and stop it at the first line
    that ends the run (``_uart_stop``) or at the timeout."""
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    pending = b""
    exit_code: int | None = None
    timed_out = False
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            try:
                while exit_code is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        timed_out = True
                        break
                    if not sel.select(timeout=min(left, 1.0)):
                        continue
                    data = os.read(fd, 65536)
                    if not data:  # QEMU exited by itself
                        break
                    chunks.append(data)
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        exit_code = _uart_stop(_text(line))
                        if exit_code is not None:
                            break
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                proc.stdout.close()
        if exit_code is None and not timed_out:
            exit_code = _uart_stop(_text(pending))
            if exit_code is None:
                exit_code = proc.returncode
        err.seek(0)
        stderr = _text(err.read())
    return EmuResult(
        exit_code=TIMEOUT_EXIT_CODE if timed_out else int(exit_code if exit_code is not None else -1),
        stdout=_text(b"".join(chunks)),
        stderr=stderr,
        timed_out=timed_out,
        command=command,
    )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="replace")
