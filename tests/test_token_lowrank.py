"""Token plans of ViTs with factorised (low-rank) projections, MCUFormer's in -> r -> out linears.

nas.space_vit exports a low-rank linear as two fully_connected ops (no bias, then bias). The token
planner must run them inside its attention and MLP stages (two FC calls per row group through
r-wide rows in the stage workspace), not fall back to layer-by-layer for those blocks:

- every q/k/v/out and fc1/fc2 projection of a `lowrank="all"` ViT is recognised, and the stages
  cover the whole blocks (no layer-by-layer op inside a block);
- `run_plan` (the plan's own memory layout) equals the reference for several knob settings, and
  every plan passes `Plan.check()`;
- the smallest token plan is no larger than the dense (rank 1.0) ViT's and below its layer plan;
- the generated C is bit-exact in QEMU (stm32f746g-disco) with the token plan.
Needs torch and onnxruntime (the ViT is exported from nas.space_vit); skipped with the reason otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_firmware

torch = pytest.importorskip("torch", reason="the `torch` extra is not installed")
pytest.importorskip("onnxruntime", reason="the `onnx` extra is not installed")

from compiler.golden import reference  # noqa: E402
from compiler.schedule.execute import run_plan  # noqa: E402
from compiler.schedule.layer import plan_layer  # noqa: E402
from compiler.schedule.token import (  # noqa: E402
    AttentionInfo,
    MlpInfo,
    TokenStage,
    candidates,
    match_units,
    plan_token,
)
from nas.score import quantize_module  # noqa: E402
from nas.space_vit import VitSpace, VitSupernet, export_vit  # noqa: E402

torch.set_num_threads(1)
SPACE = VitSpace(num_classes=4, embed_dims=(32,), depths=(2,), heads=(2,), mlp_ratios=(2.0,), patches=(8,),
                 resolutions=(32,), rank_ratios=(0.25, 1.0), lowrank="all")  # fmt: skip


def vit(rank: float):
    torch.manual_seed(0)
    net = VitSupernet(SPACE).eval()
    a = SPACE.normalize({"res": 32, "patch": 8, "embed": 32, "depth": 2, "heads": 2, "mlp_ratio": 2.0, "rank": rank})
    calib = np.random.default_rng(0).uniform(-1, 1, (8, 1, 32, 32)).astype(np.float32)
    return quantize_module(export_vit(net, a), calib)


@pytest.fixture(scope="module")
def lowrank():
    return vit(0.25)


@pytest.fixture(scope="module")
def dense():
    return vit(1.0)


def image(g, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=g.t(g.inputs[0]).shape).astype(np.int8)


def test_factorised_projections_are_stages(lowrank) -> None:
    units = match_units(lowrank)
    assert [u.kind for u in units] == ["embed"] + ["attention", "mlp"] * 2
    r = SPACE.rank(0.25, 32, 32)
    for u in units[1:]:
        assert isinstance(u.info, AttentionInfo if u.kind == "attention" else MlpInfo)
        roles = sorted(key for _, key, _ in u.info.lowrank.values())
        assert roles == (["Rk", "Rproj", "Rq", "Rv"] if u.kind == "attention" else ["Rfc1", "Rfc2"])
        assert {rank for _, _, rank in u.info.lowrank.values()} == {r}
    fcs = [op for op in lowrank.ops if op.kind == "fully_connected"]
    in_stage = {id(op) for u in units for op in u.ops}
    assert len(fcs) == 2 * 12 + 1 and sum(id(op) in in_stage for op in fcs) == 24  # all but the head
    for u in units[1:]:  # the first FC of each factorised projection is one of the unit's ops
        assert all(any(pre is op for op in u.ops) for pre, _, _ in u.info.lowrank.values())


def test_stage_records_both_fc_kernels(lowrank) -> None:
    """With the F746's fast kernels: every stage records the call of both FCs of each factorised
    projection (`Step.kernels`, what codegen/token.py emits), its workspace holds the rank-r rows
    and the "F" scratch the largest of them asks, its notes say so, and the plan computes the
    reference's bytes."""
    from compiler.schedule.kernels_table import KernelOptions, attach_stage_kernels, kernel_calls, scratch_fn

    calls = kernel_calls(lowrank, 1 << 20, KernelOptions(core="cortex-m7"))
    plan = plan_token(lowrank, "arena", 4, 3, scratch=scratch_fn(calls))
    plan.check()
    attach_stage_kernels(plan, calls)
    stages = [s for s in plan.steps if isinstance(s.stage, TokenStage) and s.stage.kind != "embed"]
    assert len(stages) == 4
    for s in stages:
        st = s.stage
        assert isinstance(st, TokenStage) and isinstance(st.unit.info, AttentionInfo | MlpInfo)
        lr = st.unit.info.lowrank
        for second, (pre, key, rank) in lr.items():
            assert s.kernels[second] is not None and s.kernels[pre.name] is not None
            if calls[pre.name].dsp:
                assert s.kernels[pre.name] is calls[pre.name]
            off, size = st.workspace[key]
            rows = st.qblock if key in ("Rq", "Rproj") else st.group
            assert size == rows * rank and off + size <= s.scratch.size
        assert st.workspace["F"][1] == max(calls[o.name].scratch_bytes for o in st.unit.ops)
        assert any(n.startswith("low-rank projections") for n in s.notes)
    x = image(lowrank, 3)
    np.testing.assert_array_equal(run_plan(plan, [x])[0], reference.run(lowrank, [x])[0])


@pytest.mark.parametrize("group,qblock", [(1, 1), (2, 3), (4, 16), (17, 17), (16, 1)])
def test_execute_equals_reference(lowrank, group: int, qblock: int) -> None:
    plan = plan_token(lowrank, "arena", group, qblock)
    plan.check()
    for seed in range(2):
        x = image(lowrank, seed)
        np.testing.assert_array_equal(run_plan(plan, [x], seed)[0], reference.run(lowrank, [x])[0])


def test_as_small_as_dense(lowrank, dense) -> None:
    lr, de = candidates(lowrank), candidates(dense)
    for p in lr:
        p.check()
    assert min(p.arena_bytes for p in lr) <= min(p.arena_bytes for p in de)
    assert min(p.arena_bytes for p in lr) < plan_layer(lowrank).arena_bytes
    consts = [sum(t.nbytes for t in g.tensors.values() if t.is_const) for g in (lowrank, dense)]
    assert consts[0] < consts[1]  # and the point of low rank: fewer weight bytes


@needs_firmware
def test_lowrank_token_plan_bit_exact_in_qemu(tmp_path, lowrank) -> None:
    from compiler.pipeline import CompileOptions, run_model
    from compiler.planner import STACK_RESERVE
    from compiler.schedule.kernels_table import KernelOptions, kernel_calls, scratch_fn

    scratch = scratch_fn(kernel_calls(lowrank, 1 << 20, KernelOptions(core="cortex-m7")))  # the F746's fast kernels
    budget = min(p.arena_bytes for p in candidates(lowrank, scratch=scratch))  # the smallest groups
    sram = budget + STACK_RESERVE
    r = run_model(lowrank, tmp_path / "vit", CompileOptions(board="stm32f746g-disco", schedule="token", sram=sram),
                  n_random=2)  # fmt: skip
    assert r["schedule"] == "token" and r["bit_exact"], r
    assert r["arena_bytes"] <= budget and r["peak_sram_bytes"] <= sram
    # both FCs of all 12 factorised projections and the head run the F746's DSP FC kernel (Step.kernels)
    assert sum(n for k, n in r["kernels"]["fast"].items() if k.startswith("mt_fully_connected_s8_dsp")) == 25
