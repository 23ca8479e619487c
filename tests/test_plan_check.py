"""Plan.check(), Plan.render() and the one live-bytes loop, on random lifetimes (hypothesis)
and on every candidate the planners propose for small CNNs and ViTs.

Properties after `layer.place` (TFLite-Micro's greedy_memory_planner_test and TVM USMP's
algorithm tests, extended): no two buffers live at one step share a byte, every buffer lies in
the arena, offsets keep the 4-byte alignment, the arena is at least the largest live set and at
most the sum of all buffers (the linear planner). `buffer_problems` agrees with a brute-force
pairwise oracle on arbitrary (also broken) placements.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.models.builder import tiny_cnn
from compiler.models.vit_builder import ViTConfig, build_vit
from compiler.schedule.layer import lower_bound, place
from compiler.schedule.plan import Buffer, PlanError, buffer_problems, live_bytes, render_buffers
from compiler.schedule.select import candidate_plans

N_STEPS = 12


@st.composite
def lifetimes(draw, placed: bool = False) -> list[Buffer]:
    n = draw(st.integers(1, 14))
    out = []
    for k in range(n):
        first = draw(st.integers(-1, N_STEPS - 1))
        last = draw(st.integers(max(first, 0), N_STEPS))
        size = 4 * draw(st.integers(1, 64))
        region = draw(st.sampled_from(["arena", "arena", "scratch", "input"]))
        offset = 4 * draw(st.integers(0, 80)) if placed else 0
        out.append(Buffer(name=f"b{k}", size=size, first=first, last=last, region=region, offset=offset))
    return out


def _brute(buffers: list[Buffer], pool: int) -> bool:
    """True when the placement is broken: pairwise, as TFLite-Micro's DoAnyBuffersOverlap."""
    live = [b for b in buffers if b.region in ("arena", "scratch") and b.first <= b.last and b.size > 0]
    if any(b.offset < 0 or b.offset + b.size > pool for b in live):
        return True
    return any(a.overlaps_in_time(b) and a.overlaps_in_space(b) for i, a in enumerate(live) for b in live[i + 1 :])


@settings(max_examples=200, deadline=None)
@given(lifetimes())
def test_place_is_valid_and_between_bounds(buffers: list[Buffer]) -> None:
    arena = place(buffers)
    assert buffer_problems(buffers, arena) == []
    movable = [b for b in buffers if b.region in ("arena", "scratch")]
    assert all(b.offset % 4 == 0 for b in movable)
    assert lower_bound(buffers, N_STEPS + 1) <= arena <= sum(b.size for b in movable)
    text = render_buffers(buffers, N_STEPS + 1, arena)
    assert "!" not in text and len([r for r in text.splitlines() if "|" in r]) == N_STEPS + 1


@settings(max_examples=300, deadline=None)
@given(lifetimes(placed=True), st.integers(0, 400))
def test_problems_agree_with_pairwise_oracle(buffers: list[Buffer], pool: int) -> None:
    assert bool(buffer_problems(buffers, pool)) == _brute(buffers, pool)


@settings(max_examples=200, deadline=None)
@given(lifetimes(placed=True))
def test_live_bytes_is_the_naive_sum(buffers: list[Buffer]) -> None:
    want = [
        sum(b.size for b in buffers if b.region in ("arena", "scratch") and b.first <= i <= b.last)
        for i in range(N_STEPS)
    ]
    assert live_bytes(buffers, N_STEPS) == want


@pytest.fixture(scope="module")
def plans():
    cnn = tiny_cnn()
    cfg = ViTConfig(img_size=24, patch=6, in_chans=3, embed_dim=24, depth=2, heads=3, mlp_ratio=2, num_classes=5,
                    seed=3)  # fmt: skip
    vit = build_vit(cfg)
    out = []
    for g in (cnn, vit):
        for io in ("arena", "external"):
            out += candidate_plans(g, "auto", io)
    return out


def test_every_candidate_checks_and_renders(plans) -> None:
    assert {p.schedule for p in plans} == {"layer", "patch", "token"}
    for p in plans:
        p.check()
        text = p.render(width=48)
        rows = [r for r in text.splitlines() if "|" in r]
        assert len(rows) == len(p.steps) and "!" not in text
        kb = [float(r.rsplit("|", 1)[1].split()[0]) for r in rows]
        assert kb == [round(v / 1024, 1) for v in p.live_bytes_per_step()]


def test_check_catches_an_overlap_and_an_overflow(plans) -> None:
    p = next(p for p in plans if p.schedule == "layer")
    a, b = next(
        (a, b)
        for a in p.buffers
        for b in p.buffers
        if a is not b and a.region == b.region == "arena" and a.overlaps_in_time(b) and a.first <= a.last
    )
    saved = b.offset
    b.offset = a.offset
    with pytest.raises(PlanError, match="share bytes"):
        p.check()
    assert "!" in p.render()
    b.offset = saved
    p.check()
    p.arena_bytes -= 4
    with pytest.raises(PlanError, match="outside the arena"):
        p.check()
    p.arena_bytes += 4


def test_stages_are_typed_records_on_the_plan_and_its_steps(plans) -> None:
    """Patch and token stages are typed (`PatchStage`, `TokenStage`): the plan lists them in step
    order and every step they cover points at its stage; layer steps have none."""
    from compiler.schedule.patch import PatchPlan, PatchStage
    from compiler.schedule.token import AttentionInfo, EmbedInfo, MlpInfo, TokenStage

    kinds = {"layer": type(None), "patch": PatchStage, "token": TokenStage}
    for p in plans:
        covered = {i: stage for stage in p.stages for i in stage.steps}
        assert [s.stage for s in p.steps] == [covered.get(i) for i in range(len(p.steps))]
        assert all(isinstance(stage, kinds[p.schedule]) for stage in p.stages)
        assert (p.schedule == "layer") == (not p.stages)
        assert isinstance(p, PatchPlan) == (p.schedule == "patch")
        for stage in p.stages:
            assert stage.steps == [i for i, s in enumerate(p.steps) if s.stage is stage]
            if isinstance(stage, TokenStage):
                info = {"embed": EmbedInfo, "attention": AttentionInfo, "mlp": MlpInfo}[stage.kind]
                assert isinstance(stage.unit.info, info) and p.steps[stage.steps[0]].op.kind == f"token_{stage.kind}"
                assert stage.group <= stage.unit.info.T and stage.qblock <= stage.unit.info.T


def test_one_executor_runs_every_plan(plans) -> None:
    """`compiler.schedule.execute.run_plan` runs layer, patch and token plans (junk in free
    arena bytes) and gives `reference.run`'s bytes."""
    import numpy as np

    from compiler.golden import reference
    from compiler.schedule.execute import run_plan

    seen = set()
    for k, p in enumerate(plans):
        g = p.graph
        t = g.t(g.inputs[0])
        x = np.random.default_rng(k).integers(-128, 128, t.shape).astype(t.dtype)
        want = reference.run(g, [x])
        got = run_plan(p, [x], seed=k)
        assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)), p.schedule
        seen.add(p.schedule)
    assert seen == {"layer", "patch", "token"}


def test_dump_names_each_stage_once(plans) -> None:
    for p in plans:
        text = p.dump()
        assert text.count(" stage: ") == len(p.stages), p.schedule
        for stage in p.stages:
            assert stage.describe() in text
