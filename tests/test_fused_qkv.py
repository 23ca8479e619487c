"""timm-style ViT blocks (one fused qkv Linear, reshape to [B, N, 3, H, hd], permute, `unbind`,
`q * scale` before q @ k^T) through `compiler.frontend.torch`: the ONNX Split imports as
slices, `q * scale` becomes softmax's beta, `split_fused_qkv` splits the projection exactly,
and the token planner matches every block; float import == onnxruntime, token plan == reference
(Python executor), and the token plan runs bit-exact in QEMU with the fast kernels.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the `torch` extra is not installed (pip install 'microtile[torch]')")
ort = pytest.importorskip("onnxruntime", reason="the `onnx` extra is not installed (pip install 'microtile[onnx]')")

from conftest import needs_firmware  # noqa: E402
from torch import nn  # noqa: E402

from compiler.frontend.torch import export_onnx, from_torch, quantize_torch  # noqa: E402
from compiler.golden import reference  # noqa: E402
from compiler.golden.float_ref import run_float  # noqa: E402
from compiler.passes.quantize import to_ir_layout  # noqa: E402
from compiler.passes.split_qkv import split_fused_qkv  # noqa: E402
from compiler.schedule.execute import run_plan  # noqa: E402
from compiler.schedule.token import match_units, plan_token  # noqa: E402


class TimmAttention(nn.Module):
    """timm.models.vision_transformer.Attention (the non-fused-SDPA path)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = q * self.scale
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class TimmBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = TimmAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TimmViT(nn.Module):
    def __init__(self, img: int = 24, patch: int = 6, dim: int = 24, depth: int = 2, heads: int = 3) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(1, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (img // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*(TimmBlock(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TimmViT().eval()


def calib(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 1, 24, 24)).astype(np.float32)


def test_float_import_matches_onnxruntime(model, tmp_path) -> None:
    path = export_onnx(model, torch.from_numpy(calib(1)), tmp_path / "timm.onnx")
    g = from_torch(model, torch.from_numpy(calib(1)), tmp_path / "timm2.onnx")
    kinds = [op.kind for op in g.ops]
    assert "mul" not in kinds and kinds.count("slice") == 3 * 2 + 1  # q/k/v per block, class token
    assert all(op.attrs["beta"] == pytest.approx(8**-0.5) for op in g.ops if op.kind == "softmax")
    xs = calib(3)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: xs[i : i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(run_float(g, [to_ir_layout(g, xs)])[0], want, atol=1e-4, rtol=0)


def test_split_is_exact_and_token_planner_matches(model, tmp_path) -> None:
    g = quantize_torch(model, torch.from_numpy(calib(1)), calib(), tmp_path / "timm.onnx")
    assert "attention" not in [u.kind for u in match_units(g)]  # fused: not the attention pattern
    s = split_fused_qkv(g)
    assert s is not g and [u.kind for u in match_units(s)] == ["embed"] + ["attention", "mlp"] * 2
    assert split_fused_qkv(s) is s
    assert sum(op.kind == "fully_connected" for op in s.ops) == sum(op.kind == "fully_connected" for op in g.ops) + 4
    x = np.random.default_rng(1).integers(-128, 128, size=g.t(g.inputs[0]).shape).astype(np.int8)
    ref = reference.run(g, [x])[0]
    np.testing.assert_array_equal(reference.run(s, [x])[0], ref)
    for grp, qb in ((1, 1), (4, 3), (17, 17)):
        np.testing.assert_array_equal(run_plan(plan_token(g, "arena", grp, qb), [x])[0], ref)


@needs_firmware
def test_token_plan_bit_exact_in_qemu(model, tmp_path) -> None:
    from compiler.pipeline import CompileOptions, run_model

    g = quantize_torch(model, torch.from_numpy(calib(1)), calib(), tmp_path / "timm.onnx")
    r = run_model(g, tmp_path / "out", CompileOptions(board="stm32f746g-disco", schedule="token"), n_random=2)
    assert r["schedule"] == "token" and r["bit_exact"], r
    assert r["schedule_detail"]["stages"].count("attention") == 2
    assert any("mt_batch_matmul_s8_dsp" in k for k in r["kernels"]["fast"]), r["kernels"]
