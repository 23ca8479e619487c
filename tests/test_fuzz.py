"""Importers are fuzz-clean: corrupted models end in exit 2 with one line, never a traceback.

The shared cases (`../shared/cases/fuzz_*`) each stand for a kind of corruption; the mutation
test runs a few hundred seeded structure-aware mutants of a small TFLite and a small ONNX model
(`benchmarks/fuzz.py`, which runs many more) and a few of the accepted ones in QEMU, bit-exact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import have_firmware_tools

from compiler import cli

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT.parent / "shared" / "cases"
sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz  # noqa: E402

SHARED = {
    "fuzz_conv_stride0.onnx": "strides",
    "fuzz_truncated_head.onnx": "pads",
    "fuzz_flipped_bytes.onnx": "invalid",
    "fuzz_kws_output_shape_huge.tflite": "declared with shape [1, 1048576], the op gives [1, 12]",
}


@pytest.mark.parametrize("command", ["plan", "compile"])
@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_fuzz_cases_exit_2_with_one_line(name, command, tmp_path, capsys) -> None:
    path = CASES / name
    if not path.exists():
        pytest.skip(f"{path} not found (read ../shared/cases in place)")
    if path.suffix == ".onnx":
        pytest.importorskip("onnx")
    argv = [command, str(path), "--board", "stm32f405"]
    if path.suffix == ".onnx":
        argv += ["--calib", str(CASES / "fuzz_onnx_calib.npy")]
    if command == "compile":
        argv += ["--no-build", "--out", str(tmp_path / "o")]
    rc = cli.main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("[microtile]")]
    assert rc == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"microtile: error: {path}") and SHARED[name] in lines[0]
    assert not (tmp_path / "o").exists()


def test_onnxruntime_errors_in_ptq_are_one_line(tmp_path, capsys) -> None:
    """A model the importer accepts but onnxruntime cannot run (here: a Conv whose kernel_shape
    disagrees with its weights, which the importer ignores) fails PTQ in one line."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import numpy as np

    blob, calib = fuzz.seed_onnx()
    m = onnx.ModelProto()
    m.ParseFromString(blob)
    conv = m.graph.node[3]  # the 1x1 conv
    for a in conv.attribute:
        if a.name == "kernel_shape":
            a.ints[:] = [3, 3]
    path = tmp_path / "bad_kernel_shape.onnx"
    path.write_bytes(m.SerializeToString())
    np.save(tmp_path / "calib.npy", calib)
    rc = cli.main(["plan", str(path), "--calib", str(tmp_path / "calib.npy")])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("[microtile]")]
    assert rc == 2 and len(lines) == 1, err
    assert "onnxruntime cannot run the model" in lines[0] and "kernel_shape" in lines[0]


@pytest.mark.parametrize("fmt,seed", [("tflite", 101), ("onnx", 202)])
def test_mutants_exit_0_or_2(fmt, seed, tmp_path) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
    qemu = 2 if have_firmware_tools() is None else 0
    res = fuzz.fuzz(fmt, 150, seed, tmp_path, qemu=qemu)
    assert not res["failures"], res["failures"][:5]
    assert sum(res["counts"].values()) == 150
    assert res["counts"].get("exit 0", 0) >= 10 and res["counts"].get("exit 2", 0) >= 10  # both kinds occur
    if qemu:
        assert res["qemu"] == {"exit 0": qemu}  # accepted mutants run bit-exact
