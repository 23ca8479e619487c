"""Planning time: how long `plan_for` takes to choose the plan, before and after a change.

    python benchmarks/plan_time.py                     # this tree, 5 runs per model
    python benchmarks/plan_time.py --before 85de0bb    # also time that revision (git archive)
    python benchmarks/plan_time.py --record FILE       # write every model's plan signature
    python benchmarks/plan_time.py --check FILE        # compare the signatures with FILE

Writes benchmarks/results/plan_time.md and .json: per model the median wall time of
`compiler.planner.choose_for` (model import excluded) over --runs runs, and the chosen plan's
peak. Each model is timed in a fresh subprocess (`--worker NAME`) with PYTHONPATH set to the
tree under test, so a revision exported with `git archive` is timed by the same driver.

The signature of a choice (`signature`) is every candidate's schedule, peak, MACs, cost,
detail and a digest of its whole buffer layout (name, size, lifetime, region, offset), plus
the chosen plan's kernels and scratch: equal signatures mean the same plans byte for byte.
tests/test_plan_speed.py checks the small models against tests/data/plan_signatures.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODELS_DIR = ROOT.parent / "shared" / "models"

# name -> (model: a shared .tflite file or "mbv2:<width>:<resolution>", board, --sram or None, io).
# --sram bounds the whole measured peak; the plan gets it less STACK_RESERVE (compiler/planner.py),
# so the budgets below are the plan budgets the signatures were recorded with + STACK_RESERVE.
_R = 1024  # compiler.planner.STACK_RESERVE (tests/test_plan_speed.py checks it)
MODELS: dict[str, tuple[str, str, int | None, str]] = {
    "vww": ("vww_96_int8.tflite", "stm32f405", 40448 + _R, "arena"),
    "kws": ("kws_ref_model.tflite", "stm32f405", None, "arena"),
    "resnet": ("pretrainedResnet_quant.tflite", "stm32f405", None, "arena"),
    "mbv2_w0.35_144": ("mbv2:0.35:144", "stm32f746g-disco", None, "arena"),
    "mbv2_w1.0_224": ("mbv2:1.0:224", "stm32f746g-disco", 330_000 + _R, "external"),
    # small ones tests/test_plan_speed.py replays (M7 fast kernels, external I/O, two stages)
    "vww_f746_external": ("vww_96_int8.tflite", "stm32f746g-disco", 30_000 + 27_648 + 2 + _R, "external"),
    "mbv2_w0.35_96": ("mbv2:0.35:96", "stm32f746g-disco", 60_000 + _R, "external"),
}
BENCH = ["vww", "kws", "resnet", "mbv2_w0.35_144", "mbv2_w1.0_224"]


def load(name: str):
    """The graph of MODELS[name]."""
    src = MODELS[name][0]
    if src.startswith("mbv2:"):
        from compiler.models.builder import mobilenet_v2

        _, w, r = src.split(":")
        return mobilenet_v2(float(w), int(r))
    from compiler.pipeline import load_model

    return load_model(str(MODELS_DIR / src), None, lambda *a: None)


def _layout(plan) -> list:
    bufs = sorted(plan.buffers, key=lambda b: (b.region, b.offset, b.name))
    return [[b.name, b.size, b.first, b.last, b.region, b.offset, list(b.tensors)] for b in bufs]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def signature(choice) -> dict:
    """What must not change when the planner gets faster: every candidate (in order) and the
    chosen plan's layout, steps and kernels (JSON-able)."""
    from compiler.schedule.select import plan_cost, plan_peak

    def cand(p) -> dict:
        return {
            "schedule": p.schedule,
            "peak": plan_peak(p),
            "arena": p.arena_bytes,
            "lower_bound": p.lower_bound,
            "macs": p.macs,
            "cost": plan_cost(p),
            "detail": json.loads(json.dumps(p.detail, default=str)),
            "layout": _digest(_layout(p)),
        }

    plan = choice.plan
    steps = []
    for s in plan.steps:
        k = s.kernel if s.kernel is not None and s.kernel.dsp else None  # the DSP kernels, as recorded
        sc = None if s.scratch is None else [s.scratch.offset, s.scratch.size]
        steps.append([s.op.name, s.macs, s.in_place, sc, None if k is None else k.describe()])
    return {
        "budget": choice.budget,
        "candidates": [cand(p) for p in choice.candidates],
        "chosen": choice.candidates.index(plan) if plan in choice.candidates else -1,
        "peak": plan_peak(plan),
        "layout": _layout(plan),
        "steps": steps,
    }


def worker(name: str, runs: int) -> dict:
    """Time choose_for on MODELS[name] `runs` times in this process; the last run's signature."""
    from compiler.planner import PlanOptions, choose_for

    _, board, sram, io = MODELS[name]
    graph = load(name)
    times, cpu = [], []
    choice = None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        choice = choose_for(graph, board, PlanOptions(sram=sram, io=io))
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    assert choice is not None
    return {"times": times, "cpu": cpu, "signature": signature(choice)}


def run_tree(src: Path, name: str, runs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--runs", str(runs)],
        env=env,
        cwd=src,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name} in {src}: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def export(rev: str, into: Path) -> Path:
    """`git archive rev` unpacked under `into` (the boards and runtime come with it)."""
    tar = into / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(tar), rev], check=True)
    with tarfile.open(tar) as t:
        t.extractall(into / "src", filter="data")
    return into / "src"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--models", nargs="*", default=BENCH, choices=list(MODELS))
    ap.add_argument("--before", help="git revision to time as 'before'")
    ap.add_argument("--record", type=Path, help="write the signatures of this tree to FILE")
    ap.add_argument("--check", type=Path, help="compare this tree's signatures with FILE")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.worker, a.runs)))
        return 0
    rows: list[dict] = []
    sigs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        before_src = export(a.before, Path(tmp)) if a.before else None
        for name in a.models:
            after = run_tree(ROOT, name, a.runs)
            sigs[name] = after["signature"]
            row = {
                "model": name,
                "board": MODELS[name][1],
                "sram": MODELS[name][2],
                "io": MODELS[name][3],
                "after_s": round(statistics.median(after["times"]), 3),
                "after_cpu_s": round(statistics.median(after["cpu"]), 3),
                "peak": after["signature"]["peak"],
                "schedule": after["signature"]["candidates"][after["signature"]["chosen"]]["schedule"],
            }
            if before_src is not None:
                before = run_tree(before_src, name, a.runs)
                row["before_s"] = round(statistics.median(before["times"]), 3)
                row["before_cpu_s"] = round(statistics.median(before["cpu"]), 3)
                row["before_peak"] = before["signature"]["peak"]
                row["same_plans"] = before["signature"] == after["signature"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    if a.record:
        a.record.write_text(json.dumps(sigs, indent=1, sort_keys=True) + "\n")
    status = 0
    if a.check:
        want = json.loads(a.check.read_text())
        for name, sig in sigs.items():
            if name in want and want[name] != sig:
                print(f"{name}: plans differ from {a.check}", file=sys.stderr)
                status = 1
    if a.record or a.check:
        return status
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "plan_time.json").write_text(json.dumps({"before": a.before, "runs": a.runs, "rows": rows}, indent=2))
    lines = [
        "# Planning time",
        "",
        f"`python benchmarks/plan_time.py --runs {a.runs}"
        + (f" --before {a.before}`" if a.before else "`")
        + ": median wall time of `compiler.planner.choose_for` "
        "(model import excluded) in a fresh process per model; the host is shared, so compare columns "
        "of one run, not across runs.",
        "",
        "| model | board | budget B | io | before s | after s | speed-up | chosen | peak B | same plans |",
        "|---|---|---:|---|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        b, bc = r.get("before_s"), r.get("before_cpu_s")
        speed = f"{b / r['after_s']:.1f}x ({bc / r['after_cpu_s']:.1f}x)" if b and bc else "-"
        before = f"{b} ({bc})" if b is not None else "-"
        lines.append(
            f"| {r['model']} | {r['board']} | {r['sram'] or 'default'} | {r['io']} | {before} | "
            f"{r['after_s']} ({r['after_cpu_s']}) | {speed} | {r['schedule']} | {r['peak']:,} | "
            f"{r.get('same_plans', '-')} |"
        )
    (a.out / "plan_time.md").write_text("\n".join(lines) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
