"""The UART console and the embedded-inputs harness.

A firmware built with ``CONSOLE=uart`` (``-DMT_CONSOLE_UART``) prints through the board's UART
(stm32f405: USART1 on QEMU netduinoplus2; stm32f746g-disco: the MPS2's CMSDK UART0 on QEMU
mps2-an500, the part's USART1 when linked for the real part) and takes its inputs from
``mt_inputs.c`` (``-DMT_EMBEDDED_INPUTS``). Its outputs must be the very bytes of the semihosting
run, and of the reference.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import BOARDS, needs_firmware, shared_model

from compiler.golden import reference
from compiler.pipeline import (
    CompileOptions,
    compile_graph,
    load_model,
    make_inputs,
    parse_harness_output,
    write_embedded_inputs,
)
from compiler.target.boards import FAULT_EXIT_CODE, load_board, qemu_machine_args, render_board_files, write_board_files
from compiler.target.emulator import _uart_stop, run_qemu
from compiler.target.firmware import build_project

UART_FLAGS = "-DMT_CONSOLE_UART -DMT_EMBEDDED_INPUTS"

# board -> (UART kind, base) of a build for the emulator and for the real part
EXPECTED_CONSOLE = {
    "stm32f405": (("stm32-usart", 0x40011000), ("stm32-usart", 0x40011000)),
    "stm32f746g-disco": (("cmsdk-uart", 0x40004000), ("stm32-usart-v2", 0x40011000)),
}


# -- no toolchain needed ----------------------------------------------------------------------


@pytest.mark.parametrize("board", BOARDS)
def test_console_tables(board: str) -> None:
    b = load_board(board)
    (emu_kind, emu_base), (part_kind, part_base) = EXPECTED_CONSOLE[board]
    emu, part = b.console_for("emulator"), b.console_for("part")
    assert emu is not None and part is not None
    assert (emu.kind, emu.uart_base) == (emu_kind, emu_base)
    assert (part.kind, part.uart_base) == (part_kind, part_base)
    assert b.emulator.console_serial == 0
    # 16 MHz HSI (STM32 reset clock) or the MPS2's 25 MHz, at 115200 baud
    assert emu.divisor == round(emu.clock_hz / emu.baud)


def test_part_target_links_at_the_real_addresses() -> None:
    f746 = load_board("stm32f746g-disco")
    emu = render_board_files(f746)
    part = render_board_files(f746, target="part")
    assert "FLASH (rx)  : ORIGIN = 0x00000000" in emu["linker.ld"]
    assert "FLASH (rx)  : ORIGIN = 0x08000000" in part["linker.ld"]
    assert "0x40004000u" in emu["mt_board.c"] and "0x40011000u" not in emu["mt_board.c"]
    assert "0x40011000u" in part["mt_board.c"] and "MT_REG(0x28u)" in part["mt_board.c"]  # TDR
    f405 = render_board_files(load_board("stm32f405"))
    assert "MT_REG(0x04u)" in f405["mt_board.c"]  # F4 DR
    with pytest.raises(ValueError, match="not a real part"):
        render_board_files(load_board("mps2-an500-large"), target="part")
    with pytest.raises(ValueError, match="unknown target"):
        render_board_files(f746, target="hardware")


def test_qemu_args_per_console() -> None:
    board = load_board("stm32f405")
    semi = qemu_machine_args(board)
    uart = qemu_machine_args(board, console="uart")
    assert semi[semi.index("-serial") + 1] == "none"
    assert uart[uart.index("-serial") + 1] == "stdio"
    with pytest.raises(ValueError):
        qemu_machine_args(board, console="swo")


def test_makefile_console_switch() -> None:
    text = render_board_files(load_board("stm32f405"))["Makefile"]
    assert "CONSOLE ?= semihosting" in text
    assert "--specs=nosys.specs" in text and "--specs=rdimon.specs" in text
    assert "-serial stdio" in text and "filter -DMT_CONSOLE_UART" in text


def test_uart_stop_lines() -> None:
    assert _uart_stop("MT_DONE\r") == 0
    assert _uart_stop("MT_EXIT 3") == 3
    assert _uart_stop("*** MT FAULT: HardFault pc=0x08000123") == FAULT_EXIT_CODE
    assert _uart_stop("MT_RESULT 0 rc=0 instructions=1 stack=2") is None


def test_write_embedded_inputs(tmp_path: Path) -> None:
    xs = np.arange(-128, 128, dtype=np.int8).reshape(2, 8, 16)
    text = write_embedded_inputs(tmp_path, xs).read_text()
    assert "const int8_t mt_test_inputs[2][128] = {" in text
    assert "const uint32_t mt_test_input_count = 2u;" in text
    assert "const uint32_t mt_test_input_size = 128u;" in text
    values = [int(v) for v in re.findall(r"-?\d+(?=,)", text.split("= {", 1)[1])]
    assert values == xs.reshape(-1).tolist()
    with pytest.raises(ValueError):
        write_embedded_inputs(tmp_path, xs.astype(np.int16))


# -- firmware in QEMU -------------------------------------------------------------------------


def _kws_project(board: str, out: Path, n: int = 3, seed: int = 11):
    graph = load_model(shared_model("kws_ref_model"))
    res = compile_graph(graph, out, CompileOptions(board=board, build=False))
    xs = make_inputs(graph, None, n_random=n, seed=seed)
    (out / "input.bin").write_bytes(xs.tobytes())
    write_embedded_inputs(out, xs)
    return graph, res, xs


def _run(out: Path, board, flags: str, console: str, shape):
    elf = build_project(out, extra_cflags=flags)
    er = run_qemu(elf, board, cwd=out, timeout_s=300, console=console)
    assert not er.timed_out and er.exit_code == 0, er.stdout[-2000:] + er.stderr[-2000:]
    assert er.stdout.splitlines()[-1].strip() == "MT_DONE"
    return er, parse_harness_output(er.stdout, shape)


@needs_firmware
@pytest.mark.parametrize("board", BOARDS)
def test_kws_uart_console_matches_semihosting(board: str, tmp_path: Path) -> None:
    out = tmp_path / "proj"
    graph, res, xs = _kws_project(board, out)
    shape = graph.t(graph.outputs[0]).shape
    semi_log, semi = _run(out, res.board, "", "semihosting", shape)
    uart_log, uart = _run(out, res.board, UART_FLAGS, "uart", shape)
    assert "console=semihosting" in semi_log.stdout
    name = {"stm32f405": "USART1", "stm32f746g-disco": "UART0"}[board]
    assert f"console=uart:{name}" in uart_log.stdout
    assert len(semi.outputs) == len(uart.outputs) == len(xs)
    for x, a, b in zip(xs, semi.outputs, uart.outputs, strict=True):
        assert a.tobytes() == b.tobytes()
        assert a.tobytes() == reference.run(graph, [x])[0].tobytes()
    # The same code runs invoke: counts agree to SysTick's granularity (one tick: 1e9 / clock
    # instructions, 40 on the mps2 machines' 25 MHz; where invoke starts in a tick differs between
    # the two builds), stack exactly.
    assert uart.stack == semi.stack
    tick = 1e9 / res.board.systick_clock_hz
    for i_semi, i_uart in zip(semi.instructions, uart.instructions, strict=True):
        assert abs(i_semi - i_uart) <= max(1e-5 * i_semi, tick)


@needs_firmware
def test_embedded_inputs_with_semihosting_still_exit(tmp_path: Path) -> None:
    out = tmp_path / "proj"
    graph, res, xs = _kws_project("stm32f405", out, n=2)
    (out / "input.bin").unlink()  # the embedded harness must not need it
    er, run = _run(out, res.board, "-DMT_EMBEDDED_INPUTS", "semihosting", graph.t(graph.outputs[0]).shape)
    assert len(run.outputs) == 2 and "MT_END 2" in er.stdout


MAIN_C = """
#include <stdint.h>
#include <stdio.h>

#include "mt_board.h"

int main(void)
{
    mt_board_init();
    printf("console %s\\n", MT_CONSOLE_NAME);
#ifdef MT_TEST_FAULT
    volatile uint32_t *bad = (volatile uint32_t *)0xF0000000u;
    return (int)*bad;
#else
    return 3;
#endif
}
"""


@needs_firmware
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("fault", [False, True])
def test_uart_run_stops_on_exit_status_and_fault(board: str, fault: bool, tmp_path: Path) -> None:
    b = load_board(board)
    write_board_files(b, tmp_path)
    (tmp_path / "main.c").write_text(MAIN_C)
    flags = "-DMT_CONSOLE_UART" + (" -DMT_TEST_FAULT" if fault else "")
    er = run_qemu(build_project(tmp_path, extra_cflags=flags), b, timeout_s=60, console="uart")
    assert not er.timed_out
    assert "console uart:" in er.stdout
    if fault:
        assert er.faulted and er.exit_code == FAULT_EXIT_CODE, er.stdout
    else:
        assert er.exit_code == 3 and "MT_EXIT 3" in er.stdout


@needs_firmware
def test_f746_part_build_uses_usart1_at_flash_0x08000000(tmp_path: Path) -> None:
    """The real-part build (what Renode runs) compiles with -Werror, links at the part's flash,
    and drives USART1 with the F7 register layout (not run here: QEMU has no STM32F7)."""
    out = tmp_path / "proj"
    graph = load_model(shared_model("kws_ref_model"))
    board = load_board("stm32f746g-disco")
    compile_graph(graph, out, CompileOptions(board=board.name, build=False))
    write_board_files(board, out, target="part")
    write_embedded_inputs(out, make_inputs(graph, None, n_random=1))
    elf = build_project(out, extra_cflags=UART_FLAGS)
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    table = {line.split()[-1]: int(line.split()[0], 16) for line in symbols.splitlines() if len(line.split()) == 3}
    assert table["mt_vector_table"] == 0x08000000
    assert "initialise_monitor_handles" not in table and "mt_test_inputs" in table
