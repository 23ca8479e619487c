"""Board memories ([[memory]] in boards/*.toml): the regions of the real parts, checked when a
board loads, and the STM32H743 (four SRAM regions) running on QEMU's mps2-an500 at its sizes."""

from __future__ import annotations

import pytest
from conftest import needs_firmware, shared_model

from compiler.pipeline import CompileOptions, run_model
from compiler.target.boards import BoardConfigError, _board_from_toml, load_board

KiB, MiB = 1024, 1024 * 1024


def _regions(name: str) -> dict[str, tuple[int | None, int, int, str]]:
    return {m.name: (m.origin, m.part_origin, m.size, m.speed) for m in load_board(name).memories}


def test_the_parts_regions() -> None:
    assert _regions("stm32f405") == {
        "ccm": (0x10000000, 0x10000000, 64 * KiB, "tcm"),
        "sram1": (0x20000000, 0x20000000, 112 * KiB, "sram"),
        "sram2": (0x2001C000, 0x2001C000, 16 * KiB, "sram"),
        "flash": (0x08000000, 0x08000000, 1 * MiB, "flash"),
    }
    f746 = _regions("stm32f746g-disco")
    assert {k: v[2] for k, v in f746.items()} == {
        "dtcm": 64 * KiB,
        "sram1": 240 * KiB,
        "sram2": 16 * KiB,
        "flash": 1 * MiB,
        "qspi": 16 * MiB,
        "sdram": 8 * MiB,
    }
    assert f746["qspi"][:2] == (0x60000000, 0x90000000) and f746["sdram"][0] is None
    h743 = _regions("stm32h743")
    assert {k: (v[1], v[2]) for k, v in h743.items()} == {
        "dtcm": (0x20000000, 128 * KiB),
        "axi_sram": (0x24000000, 512 * KiB),
        "sram123": (0x30000000, 288 * KiB),
        "sram4": (0x38000000, 64 * KiB),
        "flash": (0x08000000, 2 * MiB),
    }
    b = load_board("stm32h743")
    assert b.cpu_clock_hz == 480_000_000 and b.core == "cortex-m7"
    # the single-pool arena is the largest region, at its emulator address
    assert (b.sram.origin, b.sram.size) == (h743["axi_sram"][0], 512 * KiB)
    assert b.memories_for("part")[1].origin == 0x24000000


def test_pools_fastest_first_and_per_target() -> None:
    b = load_board("stm32f746g-disco")
    assert [m.name for m in b.pools("activations")] == ["dtcm", "sram2", "sram1"]
    assert [m.name for m in b.pools("activations", target="part")] == ["dtcm", "sram2", "sram1", "sdram"]
    assert [m.name for m in b.pools("weights")] == ["flash", "qspi"]
    with pytest.raises(ValueError, match="unknown use"):
        b.pools("code")


@pytest.mark.parametrize(
    "edit, message",
    [
        (('speed = "tcm"', 'speed = "fast"'), "speed 'fast'"),
        (('name = "sram2"', 'name = "sram1"'), "names repeat"),
        (("origin = 0x2001C000", "origin = 0x2001B000"), "overlap"),
        (('holds = ["weights"]', 'holds = ["code"]'), "holds must list"),
        (("size = 0x00004000         # 16 KB", "size = 0x00002000"), "not covered"),
    ],
)
def test_bad_memory_tables_are_refused(tmp_path, edit, message) -> None:
    src = load_board("stm32f405").path
    assert src is not None
    text = src.read_text()
    assert edit[0] in text
    bad = tmp_path / "stm32f405.toml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(BoardConfigError, match=message):
        _board_from_toml(bad)


@needs_firmware
def test_h743_runs_bit_exact_in_qemu(tmp_path) -> None:
    report = run_model(shared_model("kws_ref_model"), tmp_path / "out", CompileOptions(board="stm32h743"), n_random=2)
    assert report["bit_exact"] and report["max_abs_diff"] == 0
    assert report["emulator"].startswith("qemu-system-arm -M mps2-an500")


@needs_firmware
def test_f746_weights_beyond_internal_flash_run_from_qspi(tmp_path) -> None:
    """MobileNetV2 w1.0 @32 (10 classes) has 2.27 MB of weights, more than the F746's 1 MB flash:
    the constants that do not fit stay in section .mt_weights.qspi, linked at the QSPI pool's
    emulator address (mps2-an500's RAM at 0x60000000, loaded with the ELF), and the run is
    bit-exact. (A 1000-class softmax hid zeroed weights behind a max |diff| of 2: 10 classes.)"""
    from compiler.models.builder import mobilenet_v2

    g = mobilenet_v2(1.0, 32, num_classes=10, n_calib=1)
    out = tmp_path / "out"
    report = run_model(g, out, CompileOptions(board="stm32f746g-disco"), n_random=2)
    assert report["bit_exact"] and report["max_abs_diff"] == 0
    assert report["external_weights_pool"] == "qspi" and report["weights_bytes"] > 1 * MiB
    assert report["flash_bytes"] < 1 * MiB
    linker = (out / "linker.ld").read_text()
    assert "POOL_QSPI (r) : ORIGIN = 0x60000000, LENGTH = 0x01000000" in linker
    assert "KEEP(*(.mt_weights.qspi))" in linker
    assert 'section(".mt_weights.qspi")' in (out / "model.c").read_text()
