"""nas/: search spaces, supernet training, scoring with the planner, and the whole loop.

- exported subnets (weights sliced from the supernet) compute what the supernet computes for
  that arch (float, 1e-5) and import into the IR as the ops the space promises (a factorised
  linear is two fully_connected ops; the float IR matches torch within 1e-4);
- supernet training resumes from its checkpoint to the same weights as an uninterrupted run;
- `score_graph` reports the plan `plan_for` picks (same peak, same schedule) and rejects a
  candidate over --sram / --flash with the reason;
- the CI loop: `microtile nas` on digits with a tiny space, one QEMU run, bit-exact, measured
  peak SRAM within --sram; a rerun resumes (no retraining, no rescoring).
Needs torch, onnx, onnxruntime, optuna, tqdm, scikit-learn; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the `torch` extra is not installed")
pytest.importorskip("onnxruntime", reason="the `onnx` extra is not installed")
pytest.importorskip("optuna", reason="optuna is not installed")
pytest.importorskip("sklearn", reason="scikit-learn is not installed")

from conftest import needs_firmware  # noqa: E402

from compiler.cli import main  # noqa: E402
from compiler.frontend.torch import from_torch  # noqa: E402
from compiler.golden.float_ref import run_float  # noqa: E402
from compiler.passes.quantize import to_ir_layout  # noqa: E402
from compiler.planner import PlanOptions, plan_for  # noqa: E402
from compiler.schedule.select import plan_peak  # noqa: E402
from nas.data import Split, digits, load_dir, save_npz, small_object_task  # noqa: E402
from nas.score import STACK_MARGIN, CostModel, plan_sram, quantize_module, score_graph  # noqa: E402
from nas.space_cnn import CnnSpace, CnnSupernet, export_cnn, mobilenetv2_arch  # noqa: E402
from nas.space_vit import VitSpace, VitSupernet, export_vit  # noqa: E402
from nas.train import TrainConfig, train_supernet  # noqa: E402

torch.set_num_threads(1)
TINY = CnnSpace(num_classes=10, stages=((8, 1, 2), (16, 2, 2)), patch_stages=1, widths=(0.5, 1.0),
                resolutions=(16, 24), kernels=(3, 5), expands=(3, 4))  # fmt: skip


def test_cnn_subnets_export_exactly() -> None:
    torch.manual_seed(0)
    sp = CnnSpace(resolutions=(48, 64))
    net = CnnSupernet(sp).eval()
    rng = random.Random(0)
    archs = [sp.largest(), sp.smallest(), mobilenetv2_arch(sp, 0.5, 48)] + [sp.sample(rng) for _ in range(3)]
    for a in archs:
        x = torch.randn(2, 1, a["res"], a["res"])
        with torch.no_grad():
            want = net(x, a)
            got = export_cnn(net, a)(x)
        assert torch.allclose(got, want, atol=1e-5), sp.describe(a)
    red = sp.smallest()
    assert red["redistribute"] and red["depths"][: sp.patch_stages] == [1] * sp.patch_stages
    with pytest.raises(ValueError):  # redistribution forbids a deep patch stage
        sp.normalize({**sp.largest(), "redistribute": True})
    assert max(sp.depth_choices(4, True)) == sp.stages[4][1] + 1  # ... and allows one more block later


def test_cnn_subnet_imports_as_mobilenet_ops(tmp_path) -> None:
    torch.manual_seed(0)
    net = CnnSupernet(TINY).eval()
    a = TINY.normalize({**TINY.largest(), "kernels": [5, 3, 5, 3], "expands": [4, 3, 4, 3]})
    m = export_cnn(net, a)
    x = torch.randn(3, 1, 24, 24)
    g = from_torch(m, x[:1], tmp_path / "cnn.onnx")
    kinds = [op.kind for op in g.ops]
    assert kinds.count("depthwise_conv2d") == 1 + sum(a["depths"]) and "add" in kinds
    with torch.no_grad():
        want = m(x).numpy()
    np.testing.assert_allclose(run_float(g, [to_ir_layout(g, x.numpy())])[0], want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("rank,fcs_per_block", [(0.5, 4 + 2 * 2), (1.0, 6)])
def test_vit_lowrank_is_two_fcs(tmp_path, rank, fcs_per_block) -> None:
    torch.manual_seed(0)
    sp = VitSpace(num_classes=4, embed_dims=(32, 48), depths=(1, 2), heads=(2,), mlp_ratios=(2.0,), patches=(8, 16),
                  resolutions=(32, 64), rank_ratios=(0.5, 1.0))  # fmt: skip
    net = VitSupernet(sp).eval()
    a = sp.normalize({"res": 32, "patch": 8, "embed": 32, "depth": 2, "heads": 2, "mlp_ratio": 2.0, "rank": rank})
    m = export_vit(net, a)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m(x), net(x, a), atol=1e-5)
        want = m(x).numpy()
    g = from_torch(m, x[:1], tmp_path / "vit.onnx")
    fcs = [op for op in g.ops if op.kind == "fully_connected"]
    assert len(fcs) == 2 * fcs_per_block + 1  # + the head
    if rank < 1:
        r = sp.rank(rank, 32, 64)
        assert r == 16 and sum(1 for op in fcs if g.t(op.outputs[0]).shape[-1] == r) == 2 * 2
    np.testing.assert_allclose(run_float(g, [to_ir_layout(g, x.numpy())])[0], want, atol=1e-4, rtol=0)


def test_supernet_resume_equals_uninterrupted(tmp_path) -> None:
    d = digits(24)
    tr = Split(d.x[:192], d.y[:192])
    cfg = TrainConfig(epochs=2, batch=64, n_random=1, seed=3)
    straight, _ = train_supernet("cnn", TINY, tr, cfg, tmp_path / "a.pt")

    class Stop(Exception):
        pass

    def stop_after_first(msg: str) -> None:  # the run is killed right after epoch 1's checkpoint
        if "epoch 1/2" in msg:
            raise Stop

    ck = tmp_path / "b.pt"
    with pytest.raises(Stop):
        train_supernet("cnn", TINY, tr, cfg, ck, log=stop_after_first)
    assert torch.load(ck, weights_only=False)["epoch"] == 1
    msgs: list[str] = []
    resumed, hist = train_supernet("cnn", TINY, tr, cfg, ck, log=msgs.append)
    assert any("resumed supernet" in m for m in msgs) and len(hist) == 2
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_score_is_plan_for_and_budgets_reject(tmp_path) -> None:
    torch.manual_seed(0)
    net = CnnSupernet(TINY).eval()
    a = TINY.largest()
    calib = np.random.default_rng(0).uniform(-1, 1, (8, 1, a["res"], a["res"])).astype(np.float32)
    g = quantize_module(export_cnn(net, a), calib, tmp_path / "s.onnx")
    sram = 64 * 1024
    sc = score_graph(g, "stm32f405", sram=sram)
    plan = plan_for(g, "stm32f405", PlanOptions(sram=plan_sram(sram), widen=False))
    assert sc.fits and sc.schedule == plan.schedule and sc.plan_peak == plan_peak(plan)
    assert sc.peak_by_kind["layer"] >= sc.plan_peak and sc.flash_bytes > 0 and sc.instructions > sc.macs // 2
    smallest = min(sc.peak_by_kind.values())
    squeezed = score_graph(g, "stm32f405", sram=smallest + STACK_MARGIN)  # only the smallest plan fits
    assert squeezed.fits and squeezed.plan_peak == smallest
    tight = score_graph(g, "stm32f405", sram=STACK_MARGIN + 512)  # below any plan (portable kernels too)
    assert not tight.fits and tight.schedule is None and "smallest peak" in tight.reason
    small_flash = score_graph(g, "stm32f405", sram=sram, flash=sc.flash_bytes - 1)
    assert not small_flash.fits and "flash" in small_flash.reason


def test_cost_model_file_has_provenance() -> None:
    cm = CostModel.load()
    if not cm.coef:
        pytest.skip("nas/cost_model.json not generated (python -m nas.calibrate)")
    assert {"cortex-m4", "cortex-m7"} <= set(cm.coef) and "command" in cm.provenance
    assert all(r["bit_exact"] for r in cm.provenance["runs"])
    for core, c in cm.coef.items():
        conv = [v for k, v in c.items() if k.startswith(("conv2d:", "depthwise_conv2d:"))]
        assert conv and all(0.4 < v < 40 for v in conv), core


def test_data_folder_npz_and_task(tmp_path) -> None:
    from PIL import Image

    t = small_object_task(12, 96, 3, seed=5)
    assert t.x.shape == (12, 1, 96, 96) and set(t.y) <= {0, 1, 2}
    assert np.array_equal(small_object_task(12, 96, 3, seed=5).x, t.x)
    assert np.array_equal(small_object_task(12, 96, 3, seed=5, clutter=1.0).x, t.x)  # the default scenes
    bare = small_object_task(12, 96, 3, seed=5, clutter=0.0)  # no strokes, no discs: only the object is bright
    assert np.array_equal(bare.y, t.y) and ((bare.x > 0.45).sum((1, 2, 3)) < (t.x > 0.45).sum((1, 2, 3))).any()
    back = load_dir(save_npz(t, tmp_path / "t.npz"))
    assert np.array_equal(back.y, t.y) and np.abs(back.x - t.x).max() <= 1 / 127.5 + 1e-6
    for i in range(6):
        (tmp_path / "imgs" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(((t.x[i, 0] + 1) * 127.5).astype(np.uint8)).save(tmp_path / "imgs" / f"c{i % 2}" / f"{i}.png")
    f = load_dir(tmp_path / "imgs")
    assert f.x.shape == (6, 1, 96, 96) and list(f.y) == [0, 0, 0, 1, 1, 1]
    from compiler.errors import MicrotileError

    with pytest.raises(MicrotileError, match="no such file"):
        load_dir(tmp_path / "missing")


@needs_firmware
def test_cli_whole_loop_on_digits(tmp_path, capsys) -> None:
    space = tmp_path / "space.json"
    space.write_text(json.dumps({k: v for k, v in TINY.to_dict().items() if k not in ("num_classes", "in_chans")}))
    out = tmp_path / "nas"
    argv = ["nas", "--space", "cnn", "--data", "digits", "--board", "stm32f405", "--sram", "24K", "--flash", "64K",
            "--out", str(out), "--epochs", "2", "--finetune-epochs", "1", "--trials", "4", "--space-json", str(space),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    s = json.loads((out / "nas.json").read_text())
    fw = s["firmware"]
    assert fw["bit_exact"] and fw["max_abs_diff"] == 0 and fw["inputs"] == 3
    assert fw["within_sram_budget"] and fw["peak_sram_bytes"] <= 24 * 1024
    assert s["winner"]["flash_bytes"] <= 64 * 1024 and s["trials"] == 4
    assert (out / "pareto.md").read_text().count("\n| ") >= 1 and (out / "pareto.png").exists()
    assert s["test_accuracy_float"] > 0.3  # 10 classes: chance is 0.1
    capsys.readouterr()
    assert main([*argv[:-1], "--no-run"]) == 0  # rerun: resumes training and the study, nothing rescored
    err = capsys.readouterr().err
    assert "resumed supernet" in err and "4 trials already finished, 0 to go" in err and "fine-tuned winner read" in err


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    assert main(["nas", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("microtile: error:") and "no such file" in err and len(err.strip().splitlines()) == 1
    assert main(["nas", "--data", "digits", "--board", "nosuchboard", "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()  # refused before anything is written: no empty OUT left behind


def test_out_folder_not_ours_refused_and_untouched(tmp_path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "pareto.md").write_text("my notes\n")
    assert main(["nas", "--data", "digits", "--out", str(mine), "--epochs", "1", "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("microtile: error: --out") and "not an earlier microtile nas run" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in mine.iterdir()) == ["pareto.md"] and (mine / "pareto.md").read_text() == "my notes\n"


def test_unreadable_checkpoint_is_one_line(tmp_path, capsys) -> None:
    out = tmp_path / "nas"
    out.mkdir()
    (out / ".microtile-nas").write_text("")
    (out / "supernet.pt").write_bytes(b"not a checkpoint")
    assert main(["nas", "--data", "digits", "--out", str(out), "--epochs", "1", "--trials", "1", "--quiet"]) == 2
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("microtile:")]
    assert len(err) == 1 and "supernet.pt: cannot read this checkpoint" in err[0] and "delete it" in err[0]


def test_vit_loop_without_firmware(tmp_path) -> None:
    from nas.loop import NasConfig, run_nas

    space = {"embed_dims": [16], "depths": [1], "heads": [2], "mlp_ratios": [2.0], "patches": [8],
             "resolutions": [32], "rank_ratios": [0.5, 1.0]}  # fmt: skip
    cfg = NasConfig(kind="vit", data="digits", board="stm32f746g-disco", out=tmp_path / "v", epochs=1,
                    finetune_epochs=1, trials=2, space=space, progress=False, run_firmware=False,
                    int8_test=20)  # fmt: skip
    s = run_nas(cfg)
    assert s["trials"] == 2 and s["winner"]["schedule"] in ("layer", "token")
    assert {"layer", "token"} <= set(s["winner"]["peak_by_kind"]) and (tmp_path / "v" / "winner.onnx").exists()


def test_space_optimisation_picks_most_macs_that_fit(tmp_path, monkeypatch) -> None:
    """MCUNet's search-space optimisation: the (res, width) whose fitting subnets have the largest
    mean MACs; every sample scored by the planner; the cache rescores nothing; nothing fits -> ValueError."""
    import nas.space_opt as so

    res, widths, n, flash = (16, 24), (0.5, 1.0), 3, 1 << 20
    cache = tmp_path / "scores.json"
    choice, rows = so.optimize_space(TINY, res, widths, n, "stm32f405", 256 * 1024, flash, cache_path=cache)
    assert [(r["res"], r["width"]) for r in rows] == [(r, w) for r in res for w in widths]
    assert all(r["fit"] == n for r in rows)  # 256 KB: everything fits
    # the same sampled blocks in every space (one seed): more pixels and channels, more MACs
    assert choice == (24, 1.0) and rows[-1]["mean_macs"] > max(r["mean_macs"] for r in rows[:-1])
    big = rows[-1]
    scored = json.loads(cache.read_text())
    fl = {w: [s["flash_bytes"] for s in scored.values() if s["arch"]["width"] == w] for w in widths}
    tight = max(fl[0.5])  # int8 constants do not depend on the resolution: the larger w1.0 subnets stop fitting
    choice2, rows2 = so.optimize_space(TINY, res, widths, n, "stm32f405", 256 * 1024, tight, cache_path=cache)
    want_fit = {0.5: n, 1.0: sum(f <= tight for f in fl[1.0]) // len(res)}
    assert [r["fit"] for r in rows2] == [want_fit[w] for _ in res for w in widths] and want_fit[1.0] < n
    grid = [(r, w) for r in res for w in widths]
    means = {}  # the rule recomputed from the samples (each arch is in the cache once per budget: same MACs)
    for r, w in grid:
        ok = [s["macs"] for s in scored.values() if (s["arch"]["res"], s["arch"]["width"]) == (r, w)
              and s["flash_bytes"] <= tight]  # fmt: skip
        if ok:
            means[(r, w)] = sum(ok) / len(ok)
    assert choice2 == max(means, key=lambda k: means[k])
    assert rows2[grid.index(choice2)]["mean_macs"] == pytest.approx(means[choice2])
    with pytest.raises(ValueError, match="no \\(resolution, width\\) space"):
        so.optimize_space(TINY, res, widths, 1, "stm32f405", STACK_MARGIN + 256, flash)
    # cached: a rerun scores nothing and answers the same
    monkeypatch.setattr(so, "score_module", lambda *a, **k: pytest.fail("rescored a cached sample"))
    assert so.optimize_space(TINY, res, widths, n, "stm32f405", 256 * 1024, flash, cache_path=cache)[1][-1] == big
    # the restricted space keeps every other elastic dimension; its smallest subnet is at its own resolution
    sub = so.restrict(TINY, 24, 1.0)
    assert sub.resolutions == (24,) and sub.kernels == TINY.kernels and sub.smallest()["res"] == 24


def test_interrupt_says_how_to_resume(tmp_path, capsys, monkeypatch) -> None:
    import nas.cli

    def stop(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(nas.cli, "main_from_args", stop)
    assert main(["nas", "--data", "digits", "--out", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "microtile: interrupted; rerun the same command to resume"


def test_foreign_fw_folder_refused_before_training(tmp_path, capsys) -> None:
    out = tmp_path / "nas"
    (out / "fw").mkdir(parents=True)
    (out / ".microtile-nas").write_text("")
    (out / "fw" / "main.c").write_text("/* mine */\n")
    assert main(["nas", "--data", "digits", "--out", str(out), "--epochs", "1", "--trials", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "fw exists and was not made by microtile" in err and not (out / "supernet.pt").exists()
    assert (out / "fw" / "main.c").read_text() == "/* mine */\n"
