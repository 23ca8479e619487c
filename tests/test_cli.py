"""The CLI's contract: clear one-line errors (exit 2) for bad input, nothing half-written left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_firmware, shared_model

from compiler import cli
from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.frontend import tflite_writer
from compiler.frontend.tflite_writer import write_tflite

ROOT = Path(__file__).resolve().parents[1]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("[microtile]")]
    assert len(lines) == 1, err
    assert lines[0].startswith("microtile: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _tiny_int8_graph(kind: str = "logistic", fc_in: int = 8, fc_out: int = 4) -> Graph:
    g = Graph(name="tiny")
    q = QParams(0.05, -3)
    g.add_tensor(Tensor("x", (1, fc_in), "int8", q))
    g.add_tensor(Tensor("w", (fc_out, fc_in), "int8", QParams(0.01, 0),
                        np.random.default_rng(0).integers(-127, 128, (fc_out, fc_in))))
    g.add_tensor(Tensor("b", (fc_out,), "int32", QParams(0.0005, 0), np.arange(fc_out)))
    g.add_tensor(Tensor("h", (1, fc_out), "int8", QParams(0.1, 2)))
    g.add_op(Op("fully_connected", "fc", ["x", "w", "b"], ["h"], {"activation": "none"}))
    g.add_tensor(Tensor("y", (1, fc_out), "int8", QParams(1 / 256, -128)))
    g.add_op(Op(kind, "act", ["h"], ["y"], {}))
    g.inputs, g.outputs = ["x"], ["y"]
    return g


def test_help_teaches(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("--board", "--sram", "--schedule", "--out", "--input", "examples:"):
        assert word in out


def test_boards_lists_both_real_boards(capsys) -> None:
    rc, out, _ = _run(capsys, "boards")
    assert rc == 0
    assert "stm32f405" in out and "stm32f746g-disco" in out
    assert "not a real part" in out  # the emulator-only large board says so
    # every board with [[memory]] tables lists its regions
    assert "dtcm 64 KiB tcm @0x20000000" in out and "qspi 16 MiB external-flash @0x90000000" in out
    assert "axi_sram 512 KiB sram @0x24000000 (emulator 0x20020000)" in out and "ccm 64 KiB tcm" in out
    # the headline: the default arena and, for a part with several SRAM regions, their sum (TCM+SRAM)
    assert "SRAM arena  512 KiB of 992 KiB in 4 regions" in out  # H743: 128+64+288+512
    assert "SRAM arena  128 KiB of 192 KiB in 3 regions" in out  # F405: 64 CCM + 112 + 16


def test_truncated_model(tmp_path, capsys) -> None:
    data = shared_model("kws_ref_model").read_bytes()
    bad = tmp_path / "trunc.tflite"
    bad.write_bytes(data[: len(data) // 3])
    rc, _, err = _run(capsys, "compile", str(bad), "--board", "stm32f405", "--out", str(tmp_path / "o"))
    assert rc == 2
    line = _one_error_line(err)
    assert "truncated" in line and "trunc.tflite" in line and "unpack_from" not in line
    assert not (tmp_path / "o").exists()


def test_not_a_tflite_file(tmp_path, capsys) -> None:
    bad = tmp_path / "notes.tflite"
    bad.write_text("this is not a model\n" * 10)
    rc, _, err = _run(capsys, "compile", str(bad), "--out", str(tmp_path / "o"))
    assert rc == 2
    assert "not a TFLite flatbuffer" in _one_error_line(err)
    assert not (tmp_path / "o").exists()


def test_float_model_refused(tmp_path, capsys) -> None:
    g = Graph(name="float")
    g.add_tensor(Tensor("x", (1, 4, 4, 1), "float32"))
    g.add_tensor(Tensor("w", (2, 1, 1, 1), "float32", data=np.ones((2, 1, 1, 1))))
    g.add_tensor(Tensor("y", (1, 4, 4, 2), "float32"))
    g.add_op(Op("conv2d", "c", ["x", "w"], ["y"],
                {"stride": (1, 1), "dilation": (1, 1), "pads": (0, 0, 0, 0), "activation": "none"}))
    g.inputs, g.outputs = ["x"], ["y"]
    path = tmp_path / "float.tflite"
    path.write_bytes(write_tflite(g))
    rc, _, err = _run(capsys, "compile", str(path), "--out", str(tmp_path / "o"))
    assert rc == 2
    line = _one_error_line(err)
    assert "float32" in line and "int8" in line
    assert not (tmp_path / "o").exists()


def test_unsupported_op_names_node_and_supported_list(tmp_path, capsys, monkeypatch) -> None:
    # write a LOGISTIC op under the LOG builtin code: a real TFLite op microtile does not support
    monkeypatch.setattr(tflite_writer.BO, "LOGISTIC", tflite_writer.BO.LOG)
    path = tmp_path / "log.tflite"
    path.write_bytes(write_tflite(_tiny_int8_graph("logistic")))
    monkeypatch.undo()
    rc, _, err = _run(capsys, "compile", str(path), "--out", str(tmp_path / "o"))
    assert rc == 2
    line = _one_error_line(err)
    assert "unsupported op LOG" in line
    assert "op1_log" in line  # the node
    assert "CONV_2D" in line and "SOFTMAX" in line  # the supported list
    assert not (tmp_path / "o").exists()


def test_unknown_board(tmp_path, capsys) -> None:
    rc, _, err = _run(capsys, "compile", str(shared_model("kws_ref_model")), "--board", "stm32f999",
                      "--out", str(tmp_path / "o"))
    assert rc == 2
    line = _one_error_line(err)
    assert "stm32f999" in line and "stm32f405" in line and "stm32f746g-disco" in line
    assert not (tmp_path / "o").exists()


def test_budget_no_plan_fits_says_smallest_peak_and_binding_layer(tmp_path, capsys) -> None:
    rc, _, err = _run(capsys, "compile", str(shared_model("vww_96_int8")), "--schedule", "layer",
                      "--sram", "20000", "--out", str(tmp_path / "o"))
    assert rc == 2
    line = _one_error_line(err)
    assert "smallest peak" in line and "55296 B" in line and "step" in line and "conv2d" in line
    assert not (tmp_path / "o").exists()


def test_weights_too_big_for_flash(tmp_path, capsys) -> None:
    path = tmp_path / "big.tflite"
    path.write_bytes(write_tflite(_tiny_int8_graph("logistic", fc_in=1200, fc_out=1000)))
    rc, _, err = _run(capsys, "compile", str(path), "--board", "stm32f405", "--out", str(tmp_path / "o"))
    assert rc == 2
    line = _one_error_line(err)
    assert "flash" in line and "1204000 B" in line and "1048576 B" in line
    assert not (tmp_path / "o").exists()


def test_arena_too_big_for_sram(tmp_path, capsys) -> None:
    # an explicit budget above what the board has: the board check catches it before any build
    rc, _, err = _run(capsys, "compile", str(shared_model("vww_96_int8")), "--board", "stm32f405",
                      "--sram", "1M", "--stack", "80K", "--out", str(tmp_path / "o"))
    assert rc == 2
    line = _one_error_line(err)
    assert "SRAM" in line and "131072 B" in line
    assert not (tmp_path / "o").exists()


def test_bad_input_array(tmp_path, capsys) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 7), dtype=np.int8))
    rc, _, err = _run(capsys, "run", str(shared_model("kws_ref_model")), "--out", str(tmp_path / "o"),
                      "--input", str(tmp_path / "x.npy"))
    assert rc == 2
    assert "x.npy" in _one_error_line(err)


@needs_firmware
def test_compile_then_run_summary(tmp_path, capsys) -> None:
    model = str(shared_model("kws_ref_model"))
    rc, out, err = _run(capsys, "compile", model, "--out", str(tmp_path / "c"))
    assert rc == 0, err
    assert "arena" in out and "flash" in out
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert report["schedule"] == "layer" and report["flash_bytes"] > report["weights_bytes"]
    assert (tmp_path / "c" / "build" / "firmware.elf").exists()
    rc, out, err = _run(capsys, "run", model, "--out", str(tmp_path / "r"), "--random", "2")
    assert rc == 0, err
    assert "bit-exact  yes" in out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    # latency: an estimate at the part's clock (168 MHz on the STM32F405), labelled as one
    assert report["cpu_clock_hz"] == 168_000_000
    assert report["latency_ms_estimate"] == round(report["instructions"] / 168e6 * 1e3, 3)
    assert "ms at 168 MHz (estimate" in out
    assert "[microtile]" in err  # progress on long work goes to stderr


# -- microtile plan: the same decision as compile ------------------------------------------

TINY_CNN = ROOT / "examples" / "models" / "tiny_cnn.tflite"


def test_plan_marks_the_row_compile_picks_and_dumps_that_plan(tmp_path, capsys) -> None:
    rc, out, err = _run(capsys, "plan", str(TINY_CNN), "--sram", "15000", "--dump")
    assert rc == 0, err
    rows = [ln for ln in out.splitlines() if ln.startswith("* ")]
    assert len(rows) == 1, out  # exactly one row is marked
    dump = out[out.index("\nplan tiny_cnn:") + 1 :]
    rc, _, err = _run(capsys, "compile", str(TINY_CNN), "--sram", "15000", "--no-build", "--out", str(tmp_path / "c"))
    assert rc == 0, err
    assert dump.strip() == (tmp_path / "c" / "plan.txt").read_text().strip()  # --dump = what compile wrote
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert rows[0].split()[1] == report["schedule"]
    assert f"{report['arena_bytes']:,}" in rows[0]


def test_plan_nothing_fits_exits_2_with_compiles_message(tmp_path, capsys) -> None:
    rc, out, err = _run(capsys, "plan", str(TINY_CNN), "--sram", "3000")
    assert rc == 2
    line = _one_error_line(err)
    assert "smallest peak" in line
    assert not any(ln.startswith("* ") for ln in out.splitlines())  # nothing is marked
    rc, _, err2 = _run(capsys, "compile", str(TINY_CNN), "--sram", "3000", "--no-build", "--out", str(tmp_path / "c"))
    assert rc == 2 and _one_error_line(err2) == line


def test_plan_detail_column_is_wrapped_not_cut(capsys) -> None:
    rc, out, _ = _run(capsys, "plan", str(TINY_CNN), "--sram", "15000")
    assert rc == 0
    # a two-stage patch plan's detail is longer than one line: every stage is printed whole
    assert "'op5_conv_2d..op7_conv_2d 1x3']" in out
    assert max(len(ln) for ln in out.splitlines()) <= 120


def test_plan_into_a_closed_pipe_is_quiet() -> None:
    cmd = f"{sys.executable} -m compiler.cli plan {TINY_CNN} --sram 15000 | head -3"
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert len(r.stdout.splitlines()) == 3
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


# -- --out: only ever microtile's own files ------------------------------------------------

KWS = "kws_ref_model"


def _compile(capsys, out, *extra: str) -> tuple[int, str, str]:
    return _run(capsys, "compile", str(shared_model(KWS)), "--no-build", "--out", str(out), *extra)


def test_out_foreign_folder_refused_force_adds_beside(tmp_path, capsys) -> None:
    user = tmp_path / "user"
    (user / "runtime").mkdir(parents=True)
    (user / "runtime" / "mine.c").write_text("int mine;\n")
    (user / "myapp.c").write_text("#error not microtile's\n")
    rc, _, err = _compile(capsys, user)
    assert rc == 2 and "--force" in _one_error_line(err)
    assert sorted(p.name for p in user.rglob("*")) == ["mine.c", "myapp.c", "runtime"]
    rc, _, err = _compile(capsys, user, "--force")
    assert rc == 0, err
    assert (user / "runtime" / "mine.c").read_text() == "int mine;\n"
    assert (user / "myapp.c").read_text() == "#error not microtile's\n"
    sources = (user / "sources.mk").read_text()
    assert "model.c" in sources and "myapp.c" not in sources and "mine.c" not in sources
    manifest = json.loads((user / ".microtile-manifest.json").read_text())
    assert manifest["complete"] and "myapp.c" not in manifest["files"] and "model.c" in manifest["files"]
    # a later run (manifest present) still never deletes them, and drops the stale prefix's files
    rc, _, err = _compile(capsys, user, "--prefix", "kws")
    assert rc == 0, err
    assert (user / "myapp.c").exists() and (user / "runtime" / "mine.c").exists()
    assert not (user / "model.c").exists() and (user / "kws.c").exists()
    assert "model.c" not in (user / "sources.mk").read_text()


def test_out_force_never_overwrites_a_foreign_file(tmp_path, capsys) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "main.c").write_text("/* my own main */\n")
    rc, _, err = _compile(capsys, user, "--force")
    assert rc == 2 and "main.c" in _one_error_line(err)
    assert (user / "main.c").read_text() == "/* my own main */\n"
    # the folder is as it was: nothing half-written left, no manifest claiming it for microtile
    assert sorted(p.name for p in user.iterdir()) == ["main.c"]


@pytest.mark.parametrize("out", [".", "compiler", "runtime_c", "runtime_c/new", ".."])
def test_out_inside_the_source_tree_refused(out, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    before = sorted(str(p) for p in (ROOT / "compiler").iterdir())
    rc, _, err = _compile(capsys, out)
    assert rc == 2 and "source tree" in _one_error_line(err)
    assert sorted(str(p) for p in (ROOT / "compiler").iterdir()) == before
    assert not (ROOT / "model.c").exists() and not (ROOT / "runtime_c" / "new").exists()


def test_out_naming_a_file(tmp_path, capsys) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("keep\n")
    for out in (f, f / "sub"):
        rc, _, err = _compile(capsys, out)
        line = _one_error_line(err)
        assert rc == 2 and ("is a file" in line or "existing file" in line)
    assert f.read_text() == "keep\n"


@pytest.mark.parametrize("prefix", ["bad-name", "1model", "int", "main", ""])
def test_prefix_must_be_a_c_identifier(tmp_path, capsys, prefix) -> None:
    rc, _, err = _compile(capsys, tmp_path / "o", "--prefix", prefix)
    assert rc == 2 and "--prefix" in _one_error_line(err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("created", [True, False])
def test_failed_run_leaves_no_final_report(tmp_path, capsys, monkeypatch, created) -> None:
    from compiler import pipeline
    from compiler.target.firmware import ToolchainError

    out = tmp_path / "o"
    if not created:
        rc, _, err = _compile(capsys, out)
        assert rc == 0 and (out / "report.json").exists(), err

    def broken_build(project, extra_cflags=""):
        raise ToolchainError("firmware build failed (injected)")

    monkeypatch.setattr(pipeline, "find_toolchain", lambda: "arm-none-eabi-gcc")
    monkeypatch.setattr(pipeline, "build_project", broken_build)
    rc, _, err = _run(capsys, "run", str(shared_model(KWS)), "--out", str(out), "--random", "1")
    assert rc == 2 and "injected" in _one_error_line(err)
    if created:
        assert not out.exists()  # microtile made it in this run: removed
    else:
        assert not (out / "report.json").exists()
        assert (out / ".incomplete").exists()
        assert json.loads((out / ".microtile-manifest.json").read_text())["complete"] is False


@needs_firmware
def test_make_builds_manifest_only_and_make_run_works(tmp_path, capsys) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "myapp.c").write_text("#error this file is not part of the project\n")
    rc, _, err = _run(capsys, "compile", str(shared_model(KWS)), "--force", "--out", str(user))
    assert rc == 0, err
    r = subprocess.run(["make", "-s", "run"], cwd=user, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MT_RESULT 0 rc=0" in r.stdout and "MT_DONE" in r.stdout


# -- --sram: one unit rule, the whole measured peak ------------------------------------------


@pytest.mark.parametrize("text,value", [("65536", 65536), ("64K", 65536), ("64k", 65536), ("64KiB", 65536),
                                        ("1M", 1 << 20), ("1MiB", 1 << 20), ("2.5K", 2560)])
def test_sram_units(text, value) -> None:
    assert cli._size(text) == value


@pytest.mark.parametrize("text,why", [("64KB", "ambiguous"), ("1MB", "ambiguous"), ("-5", "positive"),
                                      ("0", "positive"), ("1.5", "whole number"), ("64 parsecs", "unit"),
                                      ("lots", "not a byte count")])
def test_sram_refused(text, why, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["plan", str(TINY_CNN), f"--sram={text}"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert why in err
    assert _one_error_line(err).startswith("microtile: error: argument --sram")  # no usage block


def test_argument_errors_are_one_line(capsys) -> None:
    for argv in (["plan"], ["run", str(TINY_CNN)], ["compile", str(TINY_CNN), "--out", "x", "--stack", "abc"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
        assert _one_error_line(capsys.readouterr().err).startswith("microtile: error: ")


def test_out_that_cannot_be_created_is_one_line(capsys) -> None:
    rc, _, err = _run(capsys, "compile", str(TINY_CNN), "--no-build", "--out", "/proc/microtile-out")
    assert rc == 2 and "cannot create the folder" in _one_error_line(err)


def test_input_and_random_are_alternatives(tmp_path, capsys) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.int8))
    rc, _, err = _run(capsys, "run", str(TINY_CNN), "--input", str(tmp_path / "x.npy"), "--random", "2",
                      "--out", str(tmp_path / "o"))
    assert rc == 2 and "alternatives" in _one_error_line(err) and not (tmp_path / "o").exists()


def test_help_states_the_unit_rule_and_what_sram_bounds(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["plan", "--help"])
    out = capsys.readouterr().out
    assert "K/KiB = 1024" in out and "KB and MB are refused" in out
    assert "static data" in out and "stack" in out


def test_plan_budget_leaves_the_stack_reserve(capsys) -> None:
    from compiler.planner import STACK_RESERVE

    rc, out, _ = _run(capsys, "plan", str(TINY_CNN), "--sram", "16000")
    assert rc == 0
    assert f"plan budget {16000 - STACK_RESERVE:,} B (--sram 16,000 B less" in out.splitlines()[0]
    chosen = next(ln for ln in out.splitlines() if ln.startswith("* "))
    assert int(chosen.split()[2].replace(",", "")) <= 16000 - STACK_RESERVE


@needs_firmware
@pytest.mark.parametrize("sram", [16400, 17000])
def test_sram_bounds_the_measured_peak(sram, tmp_path, capsys) -> None:
    """kws: its layer plan needs 16,256 B and invoke ~330 B of stack. Under the old rule
    --sram 16400 picked it and measured more than 16,400 B; now a plan chosen under --sram N
    measures at most N in QEMU, or compile says no plan fits."""
    rc, out, err = _run(capsys, "run", str(shared_model(KWS)), "--sram", str(sram), "--random", "1",
                        "--out", str(tmp_path / "o"))
    if rc == 2:
        assert sram == 16400 and "fits" in _one_error_line(err)
        return
    assert rc == 0, err
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["peak_sram_bytes"] <= sram, report
    assert report["stack_bytes"] <= report["stack_bound_bytes"]  # the call-graph bound holds
    assert report["sram_budget_bytes"] == sram


# -- what the summary and the project tell ---------------------------------------------------


def test_plan_render_is_a_timeline_of_the_arena() -> None:
    from compiler.pipeline import load_model
    from compiler.planner import PlanOptions, plan_for

    plan = plan_for(load_model(TINY_CNN), "stm32f405", PlanOptions(schedule="layer"))
    text = plan.render(width=32)
    rows = [r for r in text.splitlines() if "|" in r]
    assert len(rows) == len(plan.steps)
    live = plan.live_bytes_per_step()
    for i, row in enumerate(rows):
        assert len(row.split("|")[1]) == 32 and f"{live[i] / 1024:.1f} KB" in row
    assert "!" not in text.split("legend:")[0]  # the layer planner never overlaps live buffers
    assert "legend:" in text and text.startswith("arena over steps")


def test_compile_writes_timeline_and_plot(tmp_path, capsys) -> None:
    rc, _, err = _run(capsys, "compile", str(TINY_CNN), "--no-build", "--out", str(tmp_path / "c"))
    assert rc == 0, err
    text = (tmp_path / "c" / "plan.txt").read_text()
    assert "arena over steps" in text and "legend:" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not (tmp_path / "c" / "plan.png").exists()
    else:
        assert (tmp_path / "c" / "plan.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (tmp_path / "c" / "plan.svg").read_bytes()[:400]


def test_a_tampered_manifest_never_reaches_outside(tmp_path, capsys) -> None:
    out = tmp_path / "o"
    rc, _, err = _compile(capsys, out)
    assert rc == 0, err
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    manifest = json.loads((out / ".microtile-manifest.json").read_text())
    manifest["files"] += ["../victim.txt", str(victim)]
    (out / ".microtile-manifest.json").write_text(json.dumps(manifest))
    rc, _, err = _compile(capsys, out)
    assert rc == 0, err
    assert victim.read_text() == "mine\n"


def test_sram_beyond_the_board_warns(capsys) -> None:
    """--sram larger than the board's arena plans as asked, with one warning line naming the board."""
    rc, out, err = _run(capsys, "plan", str(shared_model("kws_ref_model")), "--sram", "4M")
    assert rc == 0 and "plan budget 4,193,280 B" in out
    warn = [ln for ln in err.splitlines() if ln.startswith("warning: --sram")]
    assert len(warn) == 1 and "stm32f405's SRAM arena (131072 B)" in warn[0]
    rc, _, err = _run(capsys, "plan", str(shared_model("kws_ref_model")), "--sram", "96K")
    assert rc == 0 and "warning" not in err


def test_plan_explains_its_detail_keys(capsys) -> None:
    """Every detail key `microtile plan` prints for a patch candidate has a legend line."""
    rc, out, _ = _run(capsys, "plan", str(shared_model("vww_96_int8")))
    assert rc == 0
    legend = out.split("  detail:\n", 1)[1]
    for key in ("split", "grid", "loop_overhead", "in_place", "halo_cache"):
        assert f"{key}=" in out and f"    {key} " in legend


@needs_firmware
def test_stack_below_the_bound_is_refused(tmp_path, capsys) -> None:
    """--stack under invoke's stack bound would overflow into the arena: one line, nothing left."""
    rc, _, err = _run(capsys, "compile", str(shared_model("kws_ref_model")), "--stack", "104",
                      "--out", str(tmp_path / "o"))  # fmt: skip
    assert rc == 2
    line = _one_error_line(err)
    assert "--stack 104 B is less than invoke's stack bound" in line
    assert not (tmp_path / "o").exists()


def test_stack_not_a_multiple_of_8(tmp_path, capsys) -> None:
    rc, _, err = _run(capsys, "compile", str(shared_model("kws_ref_model")), "--stack", "100", "--no-build",
                      "--out", str(tmp_path / "a" / "o"))  # fmt: skip
    assert rc == 2
    assert "positive multiple of 8" in _one_error_line(err)
    assert not (tmp_path / "a" / "o").exists()
