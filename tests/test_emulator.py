"""Build tiny firmwares from the board templates and run them in QEMU.

Checks: -Werror build, semihosting printf/fopen/exit status, SysTick instruction counts
(deterministic under -icount shift=0), stack painting, fault reporting, and RAM overflow at link
time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.target.boards import FAULT_EXIT_CODE, load_board, write_board_files
from compiler.target.emulator import EmulatorNotFound, qemu_command, run_qemu

_MISSING = [tool for tool in ("arm-none-eabi-gcc", "make", "qemu-system-arm") if shutil.which(tool) is None]
needs_toolchain = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"needs arm-none-eabi-gcc, make and qemu-system-arm; missing: {', '.join(_MISSING)}",
)

BOARDS = ["stm32f405", "stm32f746g-disco", "mps2-an500-large"]
LOOP_ITERATIONS = 1_000_000
STACK_ARRAY_BYTES = 2048

MAIN_C = f"""
#include <stdint.h>
#include <stdio.h>

#include "mt_board.h"

static uint8_t file_buf[4096];

__attribute__((noinline)) static uint32_t use_stack(uint32_t seed)
{{
    volatile uint8_t buf[{STACK_ARRAY_BYTES}];
    for (uint32_t i = 0; i < sizeof buf; ++i) {{
        buf[i] = (uint8_t)(seed + i);
    }}
    uint32_t sum = 0;
    for (uint32_t i = 0; i < sizeof buf; i += 64) {{
        sum += buf[i];
    }}
    return sum;
}}

int main(void)
{{
    mt_board_init();
    volatile uint32_t acc = 0;
    uint64_t t0 = mt_board_ticks();
    for (uint32_t i = 0; i < {LOOP_ITERATIONS}u; ++i) {{
        acc += i;
    }}
    uint64_t t1 = mt_board_ticks();
    mt_stack_paint();
    uint32_t s = use_stack(acc);
    uint32_t stack = mt_stack_used();
    printf("instructions=%lu stack=%lu s=%lu\\n",
           (unsigned long)mt_board_ticks_to_instructions(t1 - t0), (unsigned long)stack,
           (unsigned long)s);

    FILE *f = fopen("input.bin", "rb");
    if (f == NULL) {{
        printf("fopen failed\\n");
        return 1;
    }}
    uint32_t checksum = 0;
    unsigned long total = 0;
    size_t n;
    while ((n = fread(file_buf, 1, sizeof file_buf, f)) > 0) {{
        for (size_t i = 0; i < n; ++i) {{
            checksum = checksum * 31u + file_buf[i];
        }}
        total += (unsigned long)n;
    }}
    fclose(f);
    printf("bytes=%lu checksum=%lu heap=%lu\\n", total, (unsigned long)checksum,
           (unsigned long)mt_board_heap_used());
    volatile float x = 1.25f;
    x = x * (float)(total & 0xFFu) + 0.5f; /* hard-float code: traps unless the FPU is on */
    printf("board=%s fpu=%d\\n", MT_BOARD_NAME, (int)(x * 4.0f));
    return 3;
}}
"""

FAULT_C = """
#include <stdint.h>
#include <stdio.h>

#include "mt_board.h"

int main(void)
{
    printf("before fault\\n");
    volatile uint32_t *bad = (volatile uint32_t *)0xF0000000u;
    return (int)*bad;
}
"""

OVERFLOW_C = """
#include <stdint.h>

#include "mt_board.h"

static volatile uint8_t big[200 * 1024];

int main(void)
{
    for (uint32_t i = 0; i < sizeof big; i += 1024) {
        big[i] = (uint8_t)i;
    }
    return big[1024];
}
"""


def _checksum(data: bytes) -> int:
    value = 0
    for byte in data:
        value = (value * 31 + byte) & 0xFFFFFFFF
    return value


def _project(tmp_path: Path, board_name: str, main_c: str) -> Path:
    out = tmp_path / board_name
    write_board_files(load_board(board_name), out)
    (out / "main.c").write_text(main_c)
    return out


def _make(project: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", *targets], cwd=project, capture_output=True, text=True, timeout=180, check=False
    )


@needs_toolchain
@pytest.mark.parametrize("board_name", BOARDS)
def test_firmware_runs(tmp_path: Path, board_name: str) -> None:
    board = load_board(board_name)
    project = _project(tmp_path, board_name, MAIN_C)
    build = _make(project)
    assert build.returncode == 0, build.stdout + build.stderr
    elf = project / "build" / "firmware.elf"
    assert elf.is_file()

    payload = bytes((i * 7 + 3) & 0xFF for i in range(20 * 1024 + 17))
    (project / "input.bin").write_bytes(payload)

    first = run_qemu(elf, board, cwd=project, timeout_s=60)
    assert not first.timed_out
    assert first.exit_code == 3, first.stdout + first.stderr
    match = re.search(r"instructions=(\d+) stack=(\d+)", first.stdout)
    assert match, first.stdout
    instructions, stack = int(match.group(1)), int(match.group(2))
    # 1,000,000 iterations of load/add/store + increment/compare/branch: about 6 per iteration
    # (the SysTick resolution is 6 instructions at 168 MHz, 40 at 25 MHz).
    assert 3 * LOOP_ITERATIONS <= instructions <= 10 * LOOP_ITERATIONS, instructions
    assert STACK_ARRAY_BYTES <= stack <= STACK_ARRAY_BYTES + 1024, stack
    assert f"bytes={len(payload)} checksum={_checksum(payload)} " in first.stdout
    expected_fpu = int(((len(payload) & 0xFF) * 1.25 + 0.5) * 4)
    assert f"board={board_name} fpu={expected_fpu}" in first.stdout
    heap = int(re.search(r"heap=(\d+)", first.stdout).group(1))  # type: ignore[union-attr]
    assert 0 < heap <= board.heap_bytes

    second = run_qemu(elf, board, cwd=project, timeout_s=60)
    assert second.exit_code == 3
    assert second.stdout == first.stdout  # -icount shift=0: the same count on every run


@needs_toolchain
def test_semihosting_reads_large_file(tmp_path: Path) -> None:
    """The harness reads e.g. 20 x 27,648 bytes of input through fopen/fread."""
    board = load_board("stm32f405")
    project = _project(tmp_path, board.name, MAIN_C)
    assert _make(project).returncode == 0
    payload = bytes((i * 13 + i // 251) & 0xFF for i in range(20 * 27_648))
    (project / "input.bin").write_bytes(payload)
    result = run_qemu(project / "build" / "firmware.elf", board, cwd=project, timeout_s=60)
    assert result.exit_code == 3, result.stdout + result.stderr
    assert f"bytes={len(payload)} checksum={_checksum(payload)} " in result.stdout


@needs_toolchain
@pytest.mark.parametrize("board_name", ["stm32f405", "stm32f746g-disco"])
def test_fault_exits_nonzero(tmp_path: Path, board_name: str) -> None:
    board = load_board(board_name)
    project = _project(tmp_path, board_name, FAULT_C)
    build = _make(project)
    assert build.returncode == 0, build.stdout + build.stderr
    result = run_qemu(project / "build" / "firmware.elf", board, cwd=project, timeout_s=60)
    assert not result.timed_out
    assert "before fault" in result.stdout
    assert "*** MT FAULT: HardFault" in result.stdout + result.stderr
    assert result.exit_code == FAULT_EXIT_CODE
    assert result.faulted


@needs_toolchain
def test_make_run_target(tmp_path: Path) -> None:
    project = _project(tmp_path, "stm32f405", MAIN_C)
    (project / "input.bin").write_bytes(b"abc")
    result = _make(project, "run")
    assert "instructions=" in result.stdout
    assert f"bytes=3 checksum={_checksum(b'abc')} " in result.stdout
    assert result.returncode != 0  # make reports the firmware's non-zero status (3)
    size = _make(project, "size")
    assert size.returncode == 0 and "firmware.elf" in size.stdout
    assert _make(project, "clean").returncode == 0
    assert not (project / "build").exists()


@needs_toolchain
def test_ram_overflow_fails_at_link_time(tmp_path: Path) -> None:
    project = _project(tmp_path, "stm32f405", OVERFLOW_C)
    build = _make(project)
    assert build.returncode != 0
    output = build.stdout + build.stderr
    assert re.search(r"RAM'? overflow", output), output
    assert (project / "build" / "main.o").is_file()  # compiled fine; only the link failed
    assert not (project / "build" / "firmware.elf").exists()


@needs_toolchain
def test_stack_reserve_counts_against_ram(tmp_path: Path) -> None:
    """A .bss that fits alone but not with the stack reserve still fails to link."""
    board = load_board("stm32f405")
    out = tmp_path / "p"
    write_board_files(board, out, stack_bytes=16 * 1024)
    (out / "main.c").write_text(OVERFLOW_C.replace("200 * 1024", "110 * 1024"))
    build = _make(out)
    assert build.returncode != 0
    assert "microtile: RAM overflow" in build.stdout + build.stderr


def test_qemu_command_shape(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a stand-in qemu-system-arm on PATH: the command's shape does not need the real emulator
    fake = tmp_path / "bin" / "qemu-system-arm"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    board = load_board("stm32f405")
    cmd = qemu_command(tmp_path / "x.elf", board)
    assert Path(cmd[0]).name == "qemu-system-arm"
    assert cmd[1:3] == ["-M", "netduinoplus2"]
    assert "shift=0" in cmd and "enable=on,target=native" in cmd
    assert cmd[-2] == "-kernel" and cmd[-1].endswith("x.elf")


def test_emulator_not_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmulatorNotFound, match="qemu-system-arm"):
        qemu_command(tmp_path / "x.elf", load_board("stm32f405"))


def test_flash_overflow_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A model the linker cannot fit is the user's problem: BoardFitError, one line, naming the region."""
    import subprocess

    from compiler.errors import BoardFitError
    from compiler.target import firmware

    text = "ld: region `FLASH' overflowed by 2084 bytes\ncollect2: error: ld returned 1 exit status\n"
    monkeypatch.setattr(firmware, "find_toolchain", lambda: "arm-none-eabi-gcc")
    monkeypatch.setattr(firmware.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 2, "", text))
    with pytest.raises(BoardFitError) as e:
        firmware.build_project(tmp_path)
    assert "\n" not in str(e.value) and "FLASH by 2,084 B" in str(e.value)
