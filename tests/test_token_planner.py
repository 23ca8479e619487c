"""The token-overwriting planner: pattern matching, knobs, memory, and bit-exactness.

`run_plan(plan, x)` runs a token plan's stages on a simulated arena with the reference kernels on
the same row groups, offsets and strides the generated C uses; it must equal `reference.run`
for every knob setting (grouping must not change the arithmetic, and no two live buffers may
overlap). The QEMU test runs one small ViT's token plan on stm32f746g-disco.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_firmware

from compiler.core.ir import Op, QParams, Tensor
from compiler.errors import BudgetError
from compiler.golden import reference
from compiler.models.vit_builder import ViTConfig, build_vit
from compiler.schedule.execute import run_plan
from compiler.schedule.layer import plan_layer
from compiler.schedule.select import candidate_plans, choose_plan, plan_peak
from compiler.schedule.token import TokenStage, match_units, plan_token

SMALL = ViTConfig(img_size=24, patch=6, in_chans=3, embed_dim=24, depth=2, heads=3, mlp_ratio=2, num_classes=5, seed=3)


@pytest.fixture(scope="module")
def small():
    return build_vit(SMALL)


def image(g, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=g.t(g.inputs[0]).shape).astype(np.int8)


def test_matches_every_block(small) -> None:
    kinds = [u.kind for u in match_units(small)]
    assert kinds == ["embed"] + ["attention", "mlp"] * SMALL.depth


@pytest.mark.parametrize("group,qblock", [(1, 1), (2, 3), (4, 16), (7, 5), (17, 17), (64, 2)])
def test_execute_equals_reference(small, group: int, qblock: int) -> None:
    plan = plan_token(small, "arena", group, qblock)
    for seed in range(2):
        x = image(small, seed)
        np.testing.assert_array_equal(run_plan(plan, [x])[0], reference.run(small, [x])[0])


@pytest.mark.parametrize("seed", range(3))
def test_random_vits(seed: int) -> None:
    rng = np.random.default_rng(seed)
    heads = int(rng.choice([1, 2, 4]))
    cfg = ViTConfig(img_size=16, patch=int(rng.choice([4, 8])), in_chans=3, embed_dim=8 * heads, depth=1, heads=heads,
                    mlp_ratio=int(rng.choice([2, 4])), seed=seed)  # fmt: skip
    g = build_vit(cfg)
    grp, qb = (int(v) for v in rng.integers(1, cfg.tokens + 1, size=2))
    x = image(g, seed)
    np.testing.assert_array_equal(run_plan(plan_token(g, "arena", grp, qb), [x])[0], reference.run(g, [x])[0])


def test_io_external(small) -> None:
    plan = plan_token(small, "external", 4, 4)
    x = image(small)
    np.testing.assert_array_equal(run_plan(plan, [x])[0], reference.run(small, [x])[0])


def test_smaller_than_layer_and_knobs_trade_memory_for_calls() -> None:
    g = build_vit(ViTConfig(in_chans=3, img_size=64, patch=8, embed_dim=48, depth=1, heads=3, mlp_ratio=4))
    layer = plan_layer(g)
    plans = candidate_plans(g, "token")
    assert len(plans) > 1
    assert min(p.arena_bytes for p in plans) < layer.arena_bytes
    # Pareto front: cheaper plans need more memory
    by_cost = sorted(plans, key=lambda p: p.detail["cost"])
    assert all(a.arena_bytes > b.arena_bytes for a, b in zip(by_cost, by_cost[1:], strict=False))
    # the choice under a budget is the cheapest plan that fits
    mid = sorted(p.arena_bytes for p in plans)[len(plans) // 2]
    chosen = choose_plan(g, mid, "token")
    assert plan_peak(chosen) <= mid
    assert chosen.detail["cost"] == min(p.detail["cost"] for p in plans if plan_peak(p) <= mid)


def test_nothing_fits_reports_smallest_peak(small) -> None:
    smallest = min(p.arena_bytes for p in candidate_plans(small, "token"))
    with pytest.raises(BudgetError, match=f"smallest peak any plan reaches is {smallest} B"):
        choose_plan(small, smallest - 1, "token")


def test_dump_shows_stages(small) -> None:
    text = plan_token(small, "arena", 2, 3).dump()
    for word in ("token_embed", "token_attention", "token_mlp", "row-wise attention", "token-wise MLP",
                 "overwrites its input tokens", "patch embedding"):  # fmt: skip
        assert word in text


def test_no_overwrite_when_input_is_read_later(small) -> None:
    """A later reader of a block's input forbids overwriting it; the rest still plans."""
    g = build_vit(SMALL)
    units = match_units(g)
    x_in = units[1].x_in  # attention of block 0 reads the embedding output
    y = g.ops[-1].outputs[0]
    g.add_tensor(Tensor("extra", g.t(x_in).shape, "int8", g.t(x_in).quant))
    g.add_op(Op("add", "extra", [x_in, x_in], ["extra"], {"activation": "none"}))
    g.outputs = [y]
    plan = plan_token(g, "arena", 3, 3)
    att = next(s for s in plan.steps if s.op.kind == "token_attention")
    assert isinstance(att.stage, TokenStage) and att.stage.kind == "attention" and att.stage.overwrite is False
    x = image(g)
    np.testing.assert_array_equal(run_plan(plan, [x])[0], reference.run(g, [x])[0])


def test_unmatched_graph_falls_back(small) -> None:
    """Breaking a pattern (different quantization on one op) leaves that part layer by layer."""
    g = build_vit(SMALL)
    mlp = [u for u in match_units(g) if u.kind == "mlp"][0]
    gelu = mlp.info.acts[0]
    gelu.kind = "relu"
    gelu.attrs = {"min": 0.0, "max": float("inf")}
    g.t(gelu.outputs[0]).quant = QParams(0.05, -128)
    kinds = [u.kind for u in match_units(g)]
    assert kinds.count("mlp") == SMALL.depth - 1
    plan = plan_token(g, "arena", 4, 4)
    x = image(g)
    np.testing.assert_array_equal(run_plan(plan, [x])[0], reference.run(g, [x])[0])


def test_graph_without_transformer_has_no_token_plan() -> None:
    from compiler.core.ir import Graph
    from compiler.errors import MicrotileError
    from compiler.schedule.token import candidates

    g = Graph(name="fc")
    g.add_tensor(Tensor("x", (1, 8), "int8", QParams(0.1, 0)))
    g.add_tensor(Tensor("w", (4, 8), "int8", QParams(0.01, 0), data=np.ones((4, 8))))
    g.add_tensor(Tensor("y", (1, 4), "int8", QParams(0.1, 0)))
    g.add_op(Op("fully_connected", "fc", ["x", "w"], ["y"], {"activation": "none"}))
    g.inputs, g.outputs = ["x"], ["y"]
    assert candidates(g) == []
    assert [p.schedule for p in candidate_plans(g, "auto")] == ["layer"]
    with pytest.raises(MicrotileError, match="token planner found nothing"):
        candidate_plans(g, "token")


@needs_firmware
def test_token_plan_bit_exact_in_qemu(tmp_path) -> None:
    from compiler.pipeline import CompileOptions, run_model
    from compiler.planner import STACK_RESERVE

    g = build_vit(ViTConfig(in_chans=3, img_size=24, patch=6, embed_dim=24, depth=1, heads=3, mlp_ratio=2, seed=1))
    from compiler.schedule.kernels_table import KernelOptions, kernel_calls, scratch_fn

    scratch = scratch_fn(kernel_calls(g, 1 << 20, KernelOptions(core="cortex-m7")))  # the F746's fast kernels
    budget = sorted(p.arena_bytes for p in candidate_plans(g, "token", scratch=scratch))[1]  # small groups
    sram = budget + STACK_RESERVE  # --sram bounds the whole peak: the plan's share is sram - STACK_RESERVE
    r = run_model(g, tmp_path / "vit", CompileOptions(board="stm32f746g-disco", schedule="token", sram=sram),
                  n_random=2)  # fmt: skip
    assert r["schedule"] == "token" and r["bit_exact"], r
    assert r["schedule_detail"]["group"] < 17 or r["schedule_detail"]["qblock"] < 17
    assert r["arena_bytes"] <= budget and r["peak_sram_bytes"] <= sram
    # the stages call the DSP kernels compiler/schedule/kernels_table.py picks (FC, patch conv, adds, both matmuls)
    fast = " ".join(r["kernels"]["fast"])
    for k in ("mt_fully_connected_s8_dsp", "mt_conv_s8_dsp", "mt_add_s8_dsp", "mt_batch_matmul_s8_dsp"):
        assert k in fast, r["kernels"]


def test_stage_kernel_scratch(small) -> None:
    """With the fast kernels' scratch, every stage reserves the largest its ops ask ("F") and the
    plan still computes the reference's bytes."""
    from compiler.schedule.kernels_table import KernelOptions, attach_stage_kernels, kernel_calls, scratch_fn

    choices = kernel_calls(small, 1 << 20, KernelOptions(core="cortex-m7"))
    plan = plan_token(small, "arena", 4, 3, scratch=scratch_fn(choices))
    attach_stage_kernels(plan, choices)
    stages = [s for s in plan.steps if s.op.kind.startswith("token_")]
    assert stages and plan.stages == [s.stage for s in stages]
    for s in stages:
        ts = s.stage
        assert isinstance(ts, TokenStage) and ts.steps == [plan.steps.index(s)]
        ops = ts.unit.ops
        need = max(choices[o.name].scratch_bytes for o in ops)
        assert ts.workspace["F"][1] == need and set(s.kernels) == {o.name for o in ops}
        assert all(s.kernels[o.name] is choices[o.name] for o in ops if choices[o.name].dsp)
    assert plan.arena_bytes > plan_token(small, "arena", 4, 3).arena_bytes
    x = image(small, 4)
    np.testing.assert_array_equal(run_plan(plan, [x])[0], reference.run(small, [x])[0])


def test_onnx_imported_vit_matches_and_is_exact(tmp_path) -> None:
    """The planner recognizes the ViT the PyTorch/ONNX frontend imports (transpose_b forms)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from compiler.frontend.torch import quantize_torch
    from compiler.models.vit import ViT

    torch.manual_seed(0)
    m = ViT(ViTConfig(img_size=32, patch=8, embed_dim=32, depth=2, heads=2)).eval()
    calib = np.random.default_rng(0).normal(size=(4, 1, 32, 32)).astype(np.float32)
    g = quantize_torch(m, torch.from_numpy(calib[:1]), calib, tmp_path / "vit.onnx")
    assert [u.kind for u in match_units(g)] == ["embed"] + ["attention", "mlp"] * 2
    x = image(g)
    for grp, qb in ((1, 1), (3, 5), (17, 17)):
        np.testing.assert_array_equal(run_plan(plan_token(g, "arena", grp, qb), [x])[0], reference.run(g, [x])[0])
