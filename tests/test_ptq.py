"""Post-training quantization of float ONNX CNNs: the scheme, the fidelity bounds, SQNR, calibration
files, and the CLI/pipeline road (bit-exact in QEMU on stm32f405).

Fidelity bounds (int8 `compiler.golden.reference` dequantized vs float onnxruntime, 64 inputs from the
calibration distribution): top-1 agreement >= 90 % (measured 95.3 %: random weights, close logits),
max |difference| <= 16 output LSB (measured 11.8; the logits span ~256 LSB), every layer's SQNR
>= 25 dB against float onnxruntime.
Needs the `onnx` extra.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the `onnx` extra is not installed (pip install 'microtile[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'microtile[onnx]')")

from conftest import needs_firmware  # noqa: E402
from onnx_models import float_cnn, inputs  # noqa: E402

from compiler.cli import main as cli_main  # noqa: E402
from compiler.errors import ModelError  # noqa: E402
from compiler.frontend.onnx import load_onnx  # noqa: E402
from compiler.golden import reference  # noqa: E402
from compiler.golden.float_ref import dequantize  # noqa: E402
from compiler.passes.quantize import (  # noqa: E402
    load_calibration,
    quantize_graph,
    quantize_input,
    sqnr_report,
    to_ir_layout,
)
from compiler.pipeline import CompileOptions, load_model, run_model  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("ptq")
    path = float_cnn(d / "cnn.onnx", softmax=False)
    g = load_onnx(path)
    calib = inputs(64, seed=1)
    q = quantize_graph(g, [to_ir_layout(g, calib)])
    return {"path": path, "float": g, "int8": q, "calib": calib, "dir": d}


def test_scheme_is_tflite_compatible(model) -> None:
    q = model["int8"]
    for op in q.ops:
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            w, b = q.t(op.inputs[1]), q.t(op.inputs[2])
            assert w.dtype == "int8" and w.quant.per_channel and not w.quant.zero_point.any()
            assert w.quant.axis == (3 if op.kind == "depthwise_conv2d" else 0)
            assert int(np.abs(w.data.astype(int)).max()) <= 127
            in_s = np.float32(q.t(op.inputs[0]).quant.s)
            assert b.dtype == "int32"
            np.testing.assert_allclose(b.quant.scale, in_s * w.quant.scale, rtol=1e-6)
        if op.kind == "logistic":
            oq = q.t(op.outputs[0]).quant
            assert (oq.s, oq.zp) == (np.float32(1 / 256), -128)
        if op.kind in ("max_pool2d", "reshape"):
            a, b = q.t(op.inputs[0]).quant, q.t(op.outputs[0]).quant
            assert (a.s, a.zp) == (b.s, b.zp)
        for n in op.outputs:
            assert q.t(n).dtype == "int8" and not q.t(n).quant.per_channel


def test_ptq_fidelity_vs_float_onnxruntime(model) -> None:
    g, q = model["float"], model["int8"]
    xs = inputs(64, seed=7)  # held-out inputs from the calibration distribution
    sess = ort.InferenceSession(str(model["path"]), providers=["CPUExecutionProvider"])
    ref = np.concatenate([sess.run(None, {"x": xs[i : i + 1]})[0] for i in range(len(xs))])
    oq = q.t(q.outputs[0])
    xi = to_ir_layout(g, xs)
    got = np.concatenate([dequantize(oq, reference.run(q, [quantize_input(q, xi[i : i + 1])])[0]) for i in range(64)])
    agree = float(np.mean(ref.argmax(1) == got.argmax(1)))
    lsb = float(np.abs(ref - got).max() / oq.quant.s)
    print(f"top-1 agreement {agree:.3f}, max |diff| {lsb:.2f} output LSB")
    assert agree >= 0.90
    assert lsb <= 16


def test_sqnr_report_per_layer(model) -> None:
    calib = to_ir_layout(model["float"], model["calib"])
    info: dict = {}
    rows = sqnr_report(model["float"], model["int8"], [calib], max_samples=8, info=info)
    assert info["float_reference"] == "onnxruntime"
    names = [r[0] for r in rows]
    assert any("[conv2d]" in n for n in names) and any("[fully_connected]" in n for n in names)
    assert len(rows) >= 10
    for name, db in rows:
        assert db >= 25, (name, db)
    # the float executor agrees with onnxruntime, so the table is the same without it
    rows2 = sqnr_report(model["float"], model["int8"], [calib], max_samples=8, use_onnx=False)
    for (n1, a), (n2, b) in zip(rows, rows2, strict=True):
        assert n1 == n2 and abs(a - b) < 0.5


def test_calibration_files(model, tmp_path) -> None:
    g = model["float"]
    folder = tmp_path / "calib"
    folder.mkdir()
    np.save(folder / "a.npy", model["calib"][:10])
    np.save(folder / "b.npy", model["calib"][10])  # a single sample without the batch axis
    data = load_calibration(folder, g)
    assert data.shape == (11, 16, 16, 3)
    np.testing.assert_array_equal(data[0], model["calib"][0].transpose(1, 2, 0))
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 16, 16, 4), np.float32))
    with pytest.raises(ModelError) as e:
        load_calibration(bad, g)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ModelError, match="--calib"):
        load_model(model["path"])


def test_cli_compile_writes_quantization_report(model, tmp_path, capsys) -> None:
    calib = tmp_path / "calib.npy"
    np.save(calib, model["calib"][:16])
    out = tmp_path / "proj"
    assert cli_main(["compile", str(model["path"]), "--calib", str(calib), "--out", str(out), "--no-build"]) == 0
    cap = capsys.readouterr()
    assert "SQNR" in cap.err and "quantized" in cap.out
    rep = json.loads((out / "report.json").read_text())
    qz = rep["quantization"]
    assert qz["calibration_samples"] == 16 and qz["float_reference"] == "onnxruntime"
    assert all(layer["sqnr_db"] > 20 for layer in qz["layers"])


@needs_firmware
def test_ptq_cnn_bit_exact_in_qemu(model, tmp_path) -> None:
    calib = tmp_path / "calib.npy"
    np.save(calib, model["calib"])
    xs = tmp_path / "x.npy"
    np.save(xs, inputs(3, seed=11))
    report = run_model(model["path"], tmp_path / "fw", CompileOptions(board="stm32f405"), input_path=xs, calib=calib)
    assert report["bit_exact"] and report["max_abs_diff"] == 0 and report["inputs"] == 3
    assert "quantization" in report
