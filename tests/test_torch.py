"""PyTorch -> ONNX -> microtile: the project ViT imports exactly, a digits-trained ViT quantizes within
the stated bounds, and modules run bit-exact in QEMU from one call.

Bounds: float import `run_float` vs onnxruntime within 1e-4 absolute (opset 17 LayerNormalization and
opset 14's decomposed ReduceMean/Sub/Pow/Sqrt/Div LayerNorm, Erf GELU); int8 ViT (PTQ, 128
calibration images) vs float onnxruntime on 120 held-out digits: top-1 agreement >= 90 % (measured
99.2 %), max |difference| <= 32 output LSB (measured 17.4), output SQNR >= 20 dB
(measured ~29 dB). Needs the `torch` and `onnx` extras; skipped with the reason otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the `torch` extra is not installed (pip install 'microtile[torch]')")
ort = pytest.importorskip("onnxruntime", reason="the `onnx` extra is not installed (pip install 'microtile[onnx]')")

from conftest import needs_firmware  # noqa: E402

from compiler.frontend.onnx import load_onnx  # noqa: E402
from compiler.frontend.torch import export_onnx, from_torch, quantize_torch, run_torch  # noqa: E402
from compiler.golden import reference  # noqa: E402
from compiler.golden.float_ref import dequantize, run_float  # noqa: E402
from compiler.models.vit import ViT, ViTConfig  # noqa: E402
from compiler.passes.quantize import quantize_input, to_ir_layout  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _ort(path, xs: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: xs[i : i + 1]})[0] for i in range(len(xs))])


@pytest.mark.parametrize("opset", [17, 14])
def test_vit_float_import_matches_onnxruntime(tmp_path, opset) -> None:
    torch.manual_seed(0)
    m = ViT(ViTConfig(img_size=32, patch=8, embed_dim=32, depth=2, heads=2)).eval()
    path = export_onnx(m, torch.randn(1, 1, 32, 32), tmp_path / "vit.onnx", opset=opset)
    g = load_onnx(path)
    kinds = [op.kind for op in g.ops]
    assert kinds.count("layer_norm") == 5 and kinds.count("gelu") == 2 and kinds.count("batch_matmul") == 4
    assert "mul" not in kinds  # 1/sqrt(d) became softmax's beta; GELU's muls folded
    assert all(op.attrs["beta"] == 0.25 for op in g.ops if op.kind == "softmax")
    xs = np.random.default_rng(0).normal(size=(4, 1, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(run_float(g, [to_ir_layout(g, xs)])[0], _ort(path, xs), atol=1e-4, rtol=0)


def test_from_torch_cnn_float(tmp_path) -> None:
    torch.manual_seed(0)
    m = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU6(),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 5),
    ).eval()  # fmt: skip
    x = torch.randn(3, 3, 8, 8)
    g = from_torch(m, x[:1], tmp_path / "seq.onnx")
    with torch.no_grad():
        want = m(x).numpy()
    np.testing.assert_allclose(run_float(g, [to_ir_layout(g, x.numpy())])[0], want, atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def digits_vit(tmp_path_factory):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install 'microtile[torch]')")
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from train_vit_digits import train
    finally:
        sys.path.remove(str(ROOT / "examples"))
    model, _, (tx, _, vx, vy), acc = train(epochs=15, log=lambda _msg: None)
    d = tmp_path_factory.mktemp("vit")
    return {"model": model, "calib": tx[:128], "test_x": vx[:120], "test_y": vy[:120], "acc": acc, "dir": d}


def test_vit_ptq_fidelity(digits_vit) -> None:
    m, d = digits_vit["model"], digits_vit["dir"]
    assert digits_vit["acc"] >= 0.85
    q = quantize_torch(m, torch.from_numpy(digits_vit["calib"][:1]), digits_vit["calib"], d / "vit.onnx")
    assert {"layer_norm", "gelu", "batch_matmul", "softmax", "transpose", "slice"} <= {op.kind for op in q.ops}
    qz = q.meta["quantization"]
    assert qz["float_reference"] == "onnxruntime" and qz["output_sqnr_db"] >= 20
    xs = digits_vit["test_x"]
    ref = _ort(d / "vit.onnx", xs)
    oq = q.t(q.outputs[0])
    xi = to_ir_layout(q, xs)
    got = np.concatenate(
        [dequantize(oq, reference.run(q, [quantize_input(q, xi[i : i + 1])])[0]) for i in range(len(xs))]
    )
    agree = float(np.mean(ref.argmax(1) == got.argmax(1)))
    lsb = float(np.abs(ref - got).max() / oq.quant.s)
    acc_q = float(np.mean(got.argmax(1) == digits_vit["test_y"]))
    print(f"ViT: top-1 agreement {agree:.3f}, int8 accuracy {acc_q:.3f}, max |diff| {lsb:.1f} LSB")
    assert agree >= 0.90
    assert lsb <= 32


@needs_firmware
def test_run_torch_cnn_bit_exact_in_qemu(tmp_path) -> None:
    torch.manual_seed(0)
    m = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.Hardswish(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4), torch.nn.Softmax(-1),
    ).eval()  # fmt: skip
    calib = torch.rand(32, 1, 16, 16) * 2 - 1
    report = run_torch(m, calib[:1], calib, board="stm32f405", out=tmp_path / "fw", inputs=calib[:3])
    assert report["bit_exact"] and report["max_abs_diff"] == 0 and report["inputs"] == 3


@needs_firmware
def test_vit_bit_exact_in_qemu_f746(digits_vit, tmp_path) -> None:
    report = run_torch(
        digits_vit["model"], digits_vit["calib"][:1], digits_vit["calib"], board="stm32f746g-disco",
        out=tmp_path / "vit_fw", inputs=digits_vit["test_x"][:4],
    )  # fmt: skip
    assert report["bit_exact"] and report["max_abs_diff"] == 0 and report["inputs"] == 4
