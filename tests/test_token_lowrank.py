"""Token plans of ViTs with factorised (low-rank) projections, MCUFormer's in -> r -> out linears.

nas.space_vit exports a low-rank linear as two fully_connected ops (no bias, then bias). The token
planner must run them inside its attention and MLP stages (two FC calls per row group through
r-wide rows in the stage workspace), not fall back to layer-by-layer for those blocks:

- every q/k/v/out and fc1/fc2 projection of a `lowrank="all"` ViT is recognised, and the stages
  cover the whole blocks (no layer-by-layer op inside a block);
- `execute` (the plan's own memory layout) equals the reference for several knob settings, and
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

from compiler import reference  # noqa: E402
from compiler.schedule.layer import plan_layer  # noqa: E402
from compiler.schedule.token import candidates, execute, match_units, plan_token  # noqa: E402
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
        roles = sorted(key for _, key, _ in u.info["lowrank"].values())
        assert roles == (["Rk", "Rproj", "Rq", "Rv"] if u.kind == "attention" else ["Rfc1", "Rfc2"])
        assert {rank for _, _, rank in u.info["lowrank"].values()} == {r}
    fcs = [op for op in lowrank.ops if op.kind == "fully_connected"]
    in_stage = {id(op) for u in units for op in u.ops}
    assert len(fcs) == 2 * 12 + 1 and sum(id(op) in in_stage for op in fcs) == 24  # all but the head


@pytest.mark.parametrize("group,qblock", [(1, 1), (2, 3), (4, 16), (17, 17), (16, 1)])
def test_execute_equals_reference(lowrank, group: int, qblock: int) -> None:
    plan = plan_token(lowrank, "arena", group, qblock)
    plan.check()
    for seed in range(2):
        x = image(lowrank, seed)
        np.testing.assert_array_equal(execute(plan, [x])[0], reference.run(lowrank, [x])[0])


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
    from codegen.kernels import scratch_fn, select_kernels
    from compiler.pipeline import CompileOptions, run_model
    from compiler.planner import STACK_RESERVE

    scratch = scratch_fn(select_kernels(lowrank, "cortex-m7", 1 << 20))  # the F746's fast kernels
    budget = min(p.arena_bytes for p in candidates(lowrank, scratch=scratch))  # the smallest groups
    sram = budget + STACK_RESERVE
    r = run_model(lowrank, tmp_path / "vit", CompileOptions(board="stm32f746g-disco", schedule="token", sram=sram),
                  n_random=2)  # fmt: skip
    assert r["schedule"] == "token" and r["bit_exact"], r
    assert r["arena_bytes"] <= budget and r["peak_sram_bytes"] <= sram
