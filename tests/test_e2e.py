"""The whole road on the real MLPerf Tiny models: TFLite -> plan -> C -> ELF -> QEMU, byte for byte.

Every output byte of the firmware must equal compiler.golden.reference (itself bit-exact with
TFLite-Micro, see test_tflm_ops.py), on both boards, for seeded random inputs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import BOARDS, MODELS, needs_firmware, shared_model

from compiler.frontend.tflite import load_tflite
from compiler.pipeline import CompileOptions, parse_harness_output, run_model
from compiler.schedule.layer import plan_layer
from compiler.target.boards import load_board
from compiler.target.emulator import run_qemu

# TFLite-Micro's arena head (tensors only, 64-bit host build) from ../shared/models/README.md
TFLM_ARENA_HEAD = {
    "vww_96_int8": 73_728,
    "pretrainedResnet_quant": 49_152,
    "kws_ref_model": 16_000,
    "ad01_int8": 768,
}


@pytest.mark.parametrize("model", MODELS)
def test_layer_arena_at_most_tflm_head(model: str) -> None:
    g = load_tflite(shared_model(model))
    plan = plan_layer(g)  # input and output inside the arena, as TFLM has them
    assert plan.lower_bound <= plan.arena_bytes <= TFLM_ARENA_HEAD[model]
    for a in plan.buffers:  # no two buffers live at the same time share a byte
        for b in plan.buffers:
            if a is not b and a.region == b.region == "arena" and a.overlaps_in_time(b):
                assert not a.overlaps_in_space(b), (a, b)


@needs_firmware
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("model", MODELS)
def test_firmware_bit_exact(model: str, board: str, tmp_path) -> None:
    out = tmp_path / "proj"
    report = run_model(shared_model(model), out, CompileOptions(board=board), n_random=4, seed=7)
    assert report["bit_exact"], report
    assert report["max_abs_diff"] == 0
    assert report["inputs"] == 4
    on_disk = json.loads((out / "report.json").read_text())
    for key in ("model", "board", "schedule", "macs", "arena_bytes", "peak_sram_bytes", "flash_bytes",
                "bit_exact", "max_abs_diff", "instructions", "stack_bytes", "emulator"):
        assert key in on_disk, key
    # peak SRAM counts the arena and the measured stack
    assert on_disk["peak_sram_bytes"] >= on_disk["arena_bytes"] + on_disk["stack_bytes"]
    assert 0 < on_disk["stack_bytes"] < 8192
    # instructions are deterministic under -icount: the same ELF on the same inputs gives the same
    # count for every input, run again (and no model beats the SMLAD limit of 2 MACs/instruction)
    assert on_disk["instructions"] > on_disk["macs"] / 2
    again = run_qemu(out / "build" / "firmware.elf", load_board(board), cwd=out, timeout_s=900)
    assert again.exit_code == 0 and not again.timed_out
    shape = load_tflite(shared_model(model)).t(load_tflite(shared_model(model)).outputs[0]).shape
    emu = parse_harness_output(again.stdout, shape)
    assert emu.instructions == on_disk["instructions_per_input"]
    assert on_disk["flash_bytes"] >= on_disk["weights_bytes"]


@needs_firmware
def test_run_with_npy_input_and_profile(tmp_path) -> None:
    path = shared_model("kws_ref_model")
    g = load_tflite(path)
    x = np.random.default_rng(3).integers(-128, 128, size=(2, *g.t(g.inputs[0]).shape), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    report = run_model(path, tmp_path / "p", CompileOptions(board="stm32f405", profile=True),
                       input_path=tmp_path / "x.npy")
    assert report["bit_exact"] and report["inputs"] == 2
    steps = report["per_step"]
    assert len(steps) == len(g.ops)
    # the per-step counters add up to (almost) the whole inference
    assert 0.9 * report["instructions"] <= sum(s["instructions"] for s in steps) <= 1.1 * report["instructions"]
