"""Board TOML files, and the board files rendered from the templates."""

from __future__ import annotations

import pytest

from compiler.target.boards import (
    BOARDS_DIR,
    Board,
    UnknownBoardError,
    list_boards,
    load_board,
    render_board_files,
)

KiB = 1024
MiB = 1024 * KiB

EXPECTED = {
    # name: (core, flash origin, flash size, sram origin, sram size, qemu machine, systick hz)
    "stm32f405": ("cortex-m4", 0x08000000, 1 * MiB, 0x20000000, 128 * KiB, "netduinoplus2", 168_000_000),
    "stm32f746g-disco": ("cortex-m7", 0x0, 1 * MiB, 0x20000000, 320 * KiB, "mps2-an500", 25_000_000),
    "mps2-an500-large": ("cortex-m7", 0x0, 4 * MiB, 0x20000000, 4 * MiB, "mps2-an500", 25_000_000),
    "stm32h743": ("cortex-m7", 0x0, 2 * MiB, 0x20020000, 512 * KiB, "mps2-an500", 25_000_000),
}


def test_all_tomls_load() -> None:
    boards = list_boards()
    assert {b.name for b in boards} >= set(EXPECTED)
    assert len(boards) == len(list(BOARDS_DIR.glob("*.toml")))
    for board in boards:
        assert isinstance(board, Board)
        assert board.description
        assert board.stack_bytes > 0 and board.heap_bytes >= 0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_values(name: str) -> None:
    core, flash_origin, flash_size, sram_origin, sram_size, machine, systick = EXPECTED[name]
    board = load_board(name)
    assert board.core == core
    assert (board.flash.origin, board.flash.size) == (flash_origin, flash_size)
    assert (board.sram.origin, board.sram.size) == (sram_origin, sram_size)
    assert board.qemu_machine == machine
    assert board.systick_clock_hz == systick
    assert board.float_abi == "hard"
    flags = board.gcc_cpu_flags()
    assert f"-mcpu={core}" in flags and "-mthumb" in flags and "-mfloat-abi=hard" in flags
    assert f"-mfpu={board.fpu}" in flags


def test_real_parts() -> None:
    assert load_board("stm32f405").real_part
    assert load_board("stm32f746g-disco").real_part
    large = load_board("mps2-an500-large")
    assert not large.real_part
    assert "not a real part" in large.description.lower()


def test_unknown_board_lists_known_ones() -> None:
    with pytest.raises(UnknownBoardError) as info:
        load_board("stm32f999")
    message = str(info.value)
    assert "stm32f999" in message
    for name in EXPECTED:
        assert name in message
    assert isinstance(info.value, ValueError)


def test_render_board_files() -> None:
    board = load_board("stm32f405")
    files = render_board_files(board, stack_bytes=4096)
    assert set(files) == {"linker.ld", "startup.c", "mt_board.c", "mt_board.h", "Makefile"}
    assert "ORIGIN = 0x08000000, LENGTH = 0x00100000" in files["linker.ld"]
    assert "ORIGIN = 0x20000000, LENGTH = 0x00020000" in files["linker.ld"]
    assert "__mt_stack_size__ = 4096;" in files["linker.ld"]
    assert '#define MT_BOARD_NAME "stm32f405"' in files["mt_board.h"]
    assert "-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard" in files["Makefile"]
    assert "-M netduinoplus2" in files["Makefile"]
    assert "EXTRA_CFLAGS" in files["Makefile"]
    default = render_board_files(board)
    assert f"__mt_stack_size__ = {board.stack_bytes};" in default["linker.ld"]


def test_render_rejects_bad_stack() -> None:
    board = load_board("stm32f405")
    with pytest.raises(ValueError):
        render_board_files(board, stack_bytes=100)
    with pytest.raises(ValueError):
        render_board_files(board, stack_bytes=board.sram.size)
