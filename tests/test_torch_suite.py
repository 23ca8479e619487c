"""PyTorch modules as people write them (`compiler/models/zoo.py`): PyTorch -> ONNX (opset 17,
TorchScript exporter) -> microtile IR -> int8 PTQ -> firmware in QEMU, bit-exact with the reference,
with the top-1 agreement against the float model reported.

Bounds: float import vs onnxruntime within 1e-4 absolute; int8 (reference) vs float on the 16
SQNR samples of 24 random calibration inputs: top-1 agreement (argmax along the last axis: per
sample for classifiers, per token for attention blocks) >= 0.8 and output SQNR >= 25 dB
(measured: agreement 0.96-1.0, SQNR 33-54 dB; seeded, so the numbers are reproducible). Firmware
runs are kept to the modules the issue names (both MultiheadAttention layouts and a causal mask, an encoder layer,
the MobileNetV3 block, the SqueezeNet fire, the Conv1d KWS net, the MobileViT block).
Needs torch and the `onnx` extra; skipped with the reason otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the `torch` extra is not installed (pip install 'microtile[torch]')")
ort = pytest.importorskip("onnxruntime", reason="the `onnx` extra is not installed (pip install 'microtile[onnx]')")

from conftest import needs_firmware  # noqa: E402

from compiler.frontend.onnx import load_onnx  # noqa: E402
from compiler.frontend.torch import export_onnx, quantize_torch, run_torch  # noqa: E402
from compiler.golden import reference  # noqa: E402
from compiler.golden.float_ref import run_float  # noqa: E402
from compiler.models.zoo import CASES, make  # noqa: E402
from compiler.passes.split_qkv import split_fused_qkv  # noqa: E402
from compiler.schedule.execute import run_plan  # noqa: E402
from compiler.schedule.token import match_units, plan_token  # noqa: E402

# attention as PyTorch writes it -> the token planner's units (post-norm encoder layers and
# MobileViT's per-patch-position batch are not token-planner patterns: they run layer by layer)
TOKEN_UNITS = {
    "mha_batch_first": ["attention"],
    "mha_seq_first": ["attention"],
    "encoder_pre_gelu": ["attention", "mlp"],
    "timm_attention_unbind": ["attention"],
    "timm_attention_gather": ["attention"],
    "sdpa_attention": ["attention"],
}
TOKEN_QEMU = ("mha_batch_first", "mha_seq_first", "encoder_pre_gelu")
QEMU_CASES = (
    "mha_batch_first",
    "mha_causal_mask",
    "mha_seq_first",
    "encoder_pre_gelu",
    "mbv3_block_hardsigmoid_se",
    "squeezenet_fire_ceil_mode",
    "kws_conv1d",
    "mobilevit_block",
    "shufflenet_grouped",
)


def _calib(shape: tuple[int, ...], n: int = 24) -> torch.Tensor:
    """n random samples in the module's layout (sequence-first [T, N, D] when the input is [T, 1, D])."""
    g = torch.Generator().manual_seed(1)
    if len(shape) == 3 and shape[0] != 1 and shape[1] == 1:
        return torch.randn(shape[0], n, shape[2], generator=g)
    return torch.randn((n,) + shape[1:], generator=g)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float_import_matches_onnxruntime(name, tmp_path) -> None:
    m, shape = make(name)
    x = torch.randn(*shape)
    path = export_onnx(m, x, tmp_path / f"{name}.onnx")
    g = load_onnx(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    got = run_float(g, [np.transpose(x.numpy(), g.meta["input_perms"][g.inputs[0]])])[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-4, rtol=0)
    with torch.no_grad():
        np.testing.assert_allclose(want, m(x).numpy(), atol=1e-4, rtol=0)
    if "attention" in name or "mha" in name or "encoder" in name:
        kinds = [op.kind for op in g.ops]
        assert kinds.count("batch_matmul") == 2 and "softmax" in kinds
    if name == "mha_causal_mask":  # one softmax per distinct attended range (per row here), padded back
        assert [op.kind for op in g.ops].count("softmax") == 10


@pytest.mark.parametrize("name", sorted(CASES))
def test_ptq_agrees_with_float(name, tmp_path) -> None:
    m, shape = make(name)
    q = quantize_torch(m, torch.randn(*shape), _calib(shape), tmp_path / f"{name}.onnx")
    assert all(t.dtype in ("int8", "int32", "float32") for t in q.tensors.values())
    qz = q.meta["quantization"]
    print(f"{name}: top-1 agreement {qz['top1_agreement']}, output SQNR {qz['output_sqnr_db']} dB")
    assert qz["calibration_engine"] == "onnxruntime" and qz["float_reference"] == "onnxruntime"
    assert qz["top1_agreement"] >= 0.8
    assert qz["output_sqnr_db"] >= 25


@pytest.mark.parametrize("name", sorted(TOKEN_UNITS))
def test_attention_maps_to_token_plan(name, tmp_path) -> None:
    m, shape = make(name)
    g = quantize_torch(m, torch.randn(*shape), _calib(shape, 8), tmp_path / f"{name}.onnx")
    assert [u.kind for u in match_units(split_fused_qkv(g))] == TOKEN_UNITS[name]
    x = np.random.default_rng(2).integers(-128, 128, size=g.t(g.inputs[0]).shape).astype(np.int8)
    ref = reference.run(g, [x])[0]
    for grp, qb in ((1, 1), (4, 3)):
        np.testing.assert_array_equal(run_plan(plan_token(g, "arena", grp, qb), [x])[0], ref)


@needs_firmware
@pytest.mark.parametrize("name", QEMU_CASES)
def test_bit_exact_in_qemu(name, tmp_path) -> None:
    m, shape = make(name)
    schedule = "token" if name in TOKEN_QEMU else "auto"
    report = run_torch(
        m, torch.randn(*shape), _calib(shape), board="stm32f405", out=tmp_path / "fw", n_random=2, schedule=schedule
    )
    assert report["bit_exact"] and report["max_abs_diff"] == 0
    assert report["schedule"] == ("token" if name in TOKEN_QEMU else report["schedule"])
    assert report["quantization"]["top1_agreement"] is not None
