"""compiler.schedule.pools: a plan spread over a board's memories, one budget per pool.

A single-pool plan that fits stays exactly as it is; one whose arena exceeds the largest region
(MobileNetV2 w0.35 @192 layer by layer: 552,960 B > the H743's 512 KB AXI SRAM) is spread over the
H743's DTCM, AXI SRAM, SRAM1-3 and SRAM4 with every pool inside its budget and no two live buffers
of one pool sharing bytes (Plan.check). Random lifetimes and pools: valid or BudgetError, never a
broken placement.
"""

from __future__ import annotations

import pytest
from conftest import needs_firmware
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen.emit import render_model
from compiler.errors import BudgetError, MicrotileError
from compiler.models.builder import mobilenet_v2, tiny_cnn
from compiler.pipeline import CompileOptions, run_model
from compiler.planner import PlanOptions, choose_for, default_budget
from compiler.schedule.layer import place, plan_layer
from compiler.schedule.plan import Buffer, Plan, buffer_problems
from compiler.schedule.pools import Pool, place_pools, pools_for
from compiler.target.boards import load_board


def test_single_pool_plan_is_untouched() -> None:
    plan = plan_layer(tiny_cnn())
    before = [(b.name, b.offset, b.pool) for b in plan.buffers]
    arena = plan.arena_bytes
    assert place_pools(plan, pools_for(load_board("stm32h743"), 500_000)) == {"arena": arena}
    assert [(b.name, b.offset, b.pool) for b in plan.buffers] == before and plan.arena_bytes == arena
    assert "pools" not in plan.detail
    plan.check()


def test_h743_activations_beyond_the_largest_region() -> None:
    board = load_board("stm32h743")
    plan = plan_layer(mobilenet_v2(0.35, 192, num_classes=10, n_calib=1))
    largest = max(m.size for m in board.pools("activations"))
    assert plan.arena_bytes > largest  # does not fit any one region
    pools = pools_for(board, default_budget(board))
    assert {p.name for p in pools} == {"dtcm", "axi_sram", "sram123", "sram4"}
    used = place_pools(plan, pools)
    assert len(used) >= 2 and all(used[p.name] <= p.size for p in pools if p.name in used)
    assert plan.detail["pools"] == used and plan.arena_bytes == sum(used.values())
    plan.check()
    names = {p.name for p in pools}
    assert all(b.pool in names for b in plan.buffers if b.region in ("arena", "scratch") and b.first <= b.last)
    text = plan.render(width=40)
    assert all(f"pool {name}:" in text for name in used) and "!" not in text
    # small buffers went to the TCM first
    dtcm = [b for b in plan.buffers if b.pool == "dtcm"]
    assert dtcm and max(b.size for b in dtcm) * 4 <= 128 * 1024
    # codegen prints layer plans over pools; patch/token plans over pools it refuses
    plan.detail["main_pool"] = "axi_sram"
    files, _ = render_model(plan)
    assert "#define MODEL_POOL_DTCM_SIZE" in files["model.h"] or "dtcm" not in used
    plan.schedule = "patch"
    with pytest.raises(MicrotileError, match="several memory pools"):
        render_model(plan)


def test_plan_for_spreads_only_without_sram_and_only_when_nothing_fits() -> None:
    g = mobilenet_v2(0.35, 192, num_classes=10, n_calib=1)
    choice = choose_for(g, "stm32h743", PlanOptions(schedule="layer"))
    assert len(choice.plan.detail["pools"]) >= 2 and choice.plan.detail["main_pool"] == "axi_sram"
    assert any("over the pools" in n for n in choice.notes)
    choice.plan.check()
    with pytest.raises(BudgetError):  # an explicit --sram bounds the whole peak: no spreading
        choose_for(g, "stm32h743", PlanOptions(schedule="layer", sram=505_856))
    # when a single-pool plan fits (auto: a patch plan), nothing is spread
    assert "pools" not in choose_for(tiny_cnn(), "stm32h743").plan.detail


def test_no_pool_takes_it() -> None:
    plan = plan_layer(mobilenet_v2(0.35, 192, num_classes=10, n_calib=1))
    with pytest.raises(BudgetError, match="fits no memory pool"):
        place_pools(plan, [Pool("a", 300_000), Pool("b", 200_000, "tcm")])


@st.composite
def case(draw):
    n = draw(st.integers(1, 12))
    bufs = []
    for k in range(n):
        first = draw(st.integers(0, 9))
        bufs.append(Buffer(f"b{k}", 4 * draw(st.integers(1, 40)), first, draw(st.integers(first, 10))))
    pools = [
        Pool(f"p{k}", 4 * draw(st.integers(1, 80)), draw(st.sampled_from(["tcm", "sram"])))
        for k in range(draw(st.integers(1, 4)))
    ]
    return bufs, pools


@settings(max_examples=200, deadline=None)
@given(case())
def test_random_pools_valid_or_refused(c) -> None:
    bufs, pools = c
    plan = Plan(graph=None, schedule="layer", steps=[], buffers=bufs, tensor_buffer={}, arena_bytes=0, lower_bound=0)  # type: ignore[arg-type]
    plan.arena_bytes = place(bufs)
    try:
        used = place_pools(plan, pools)
    except BudgetError:
        return
    sizes = {p.name: p.size for p in pools} if "pools" in plan.detail else {"arena": plan.arena_bytes}
    assert buffer_problems(bufs, sizes) == []
    assert all(v <= sizes[k] for k, v in used.items()) or used == {"arena": plan.arena_bytes}


@needs_firmware
def test_multi_pool_plan_runs_bit_exact_in_qemu(tmp_path) -> None:
    """Done-when of the memory pools: activations beyond the H743's largest region (552,960 B layer
    by layer > 512 KB AXI SRAM) compile to a plan over DTCM, AXI SRAM and SRAM1-3 (one linker
    section per extra pool, its size as a #define) and run bit-exact on mps2-an500."""
    g = mobilenet_v2(0.35, 192, num_classes=10, n_calib=1)
    out = tmp_path / "out"
    report = run_model(g, out, CompileOptions(board="stm32h743", schedule="layer"), n_random=1)
    assert report["bit_exact"] and report["max_abs_diff"] == 0
    pools = report["schedule_detail"]["pools"]
    assert report["memory_pools"] == pools
    assert len(pools) >= 2 and report["arena_bytes"] == sum(pools.values()) > 512 * 1024
    header, linker = (out / "model.h").read_text(), (out / "linker.ld").read_text()
    for name in pools:
        if name != "axi_sram":
            assert f"MODEL_POOL_{name.upper()}_SIZE {pools[name]}u" in header
            assert f".mt_pool.{name} (NOLOAD)" in linker and f"> POOL_{name.upper()}" in linker
    assert f"#define MODEL_ARENA_SIZE {pools['axi_sram']}u" in header
