"""Speed benchmark: instructions per inference of the shared MLPerf Tiny models, fast (DSP)
vs portable kernels, on the Cortex-M4 (stm32f405) and Cortex-M7 (stm32f746g-disco) boards.

    python benchmarks/speed.py            # all four models, both boards -> benchmarks/results/speed.{md,json}
    python benchmarks/speed.py --small    # kws + ad01 on stm32f405 (well under a minute; CI)

Every run is `microtile run --profile` (QEMU -icount shift=0: instructions = SysTick ticks x
1e9 / clock, deterministic), checked bit-exact against the reference. Reported per model and
board: instructions per inference and per MAC (the SMLAD limit is 0.5), the TFLite-Micro +
CMSIS-NN baseline and the goal (half of it; measured by the project on cortex-m4+fp, QEMU
mps2-an386, -O2, one Invoke after warm-up), peak SRAM, flash, and the five most expensive
layers. On the M4 the fast build is also run with int8 filters only (--no-widen: no extra
flash; goal 0.50x TFLite-Micro + CMSIS-NN, the default per-layer choice 0.40x), the default
build is rebuilt at -Os and -O0 (the same project, `make OPT=...`; the fast kernels build as
at -O2 whatever the level, runtime_c/mt_simd.h), and a table gives instructions per MAC per
kind of layer (conv 1x1, conv kxk, first conv, depthwise, FC; elementwise per element).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from compiler.core.ir import Graph, Op, op_macs  # noqa: E402
from compiler.pipeline import (  # noqa: E402
    CompileOptions,
    compare_with_reference,
    load_model,
    parse_harness_output,
    run_model,
)
from compiler.target.boards import load_board  # noqa: E402
from compiler.target.emulator import run_qemu  # noqa: E402

MODELS = ROOT.parent / "shared" / "models"
SHARED = {
    "vww": "vww_96_int8",
    "resnet": "pretrainedResnet_quant",
    "kws": "kws_ref_model",
    "ad01": "ad01_int8",
}
# TFLite-Micro + CMSIS-NN, cortex-m4+fp, -O2, QEMU mps2-an386 -icount shift=0, one Invoke.
BASELINE = {"vww": 24_104_120, "resnet": 29_861_840, "kws": 7_701_240, "ad01": 583_520}
GOAL = {"vww": 12_052_000, "resnet": 14_930_000, "kws": 3_850_000, "ad01": 292_000}
BOARDS = {"stm32f405": "M4", "stm32f746g-disco": "M7"}
INT8_GOAL, DEFAULT_GOAL = 0.50, 0.40  # x TFLite-Micro + CMSIS-NN, M4
KINDS = ("conv 1x1", "conv kxk", "first conv", "depthwise", "FC", "elementwise")


def op_class(g: Graph, op: Op) -> str | None:
    """The speed table's kind of a layer (None: not tabulated). The first conv is a conv
    that reads the model input (3 channels for an image)."""
    if op.kind == "conv2d":
        if op.inputs[0] in g.inputs:
            return "first conv"
        w = g.t(op.inputs[1]).shape
        return "conv 1x1" if (w[1], w[2]) == (1, 1) else "conv kxk"
    if op.kind == "depthwise_conv2d":
        return "depthwise"
    if op.kind == "fully_connected":
        return "FC"
    if op.kind in ("add", "mul", "relu", "hard_swish", "logistic", "requantize", "quantize"):
        return "elementwise"
    return None


def kind_table(g: Graph, per_step: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per kind: instructions, MACs (elementwise: output elements) summed over the layers."""
    out: dict[str, dict[str, int]] = {}
    for s in per_step:
        op = g.ops[s["step"]]
        k = op_class(g, op)
        if k is None:
            continue
        n = op_macs(g, op) if k != "elementwise" else int(np.prod(g.t(op.outputs[0]).shape))
        e = out.setdefault(k, {"instructions": 0, "macs": 0})
        e["instructions"] += s["instructions"]
        e["macs"] += n
    return out


def rerun_at(out: Path, graph: Graph, board: str, opt: str) -> dict[str, Any]:
    """Rebuilds the project in `out` (made with profile=True) at `opt` (`make OPT=...`, the
    user's own -O level) and runs it on the same inputs: instructions, bit-exactness and
    instructions per step (QEMU -icount, deterministic)."""
    cmd = ["make", "-s", "-j2", "-C", str(out), f"OPT={opt}", "EXTRA_CFLAGS=-DMT_PROFILE"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"build at {opt} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    er = run_qemu(out / "build" / "firmware.elf", load_board(board), cwd=out, timeout_s=900)
    emu = parse_harness_output(er.stdout, graph.t(graph.outputs[0]).shape)
    shape = graph.t(graph.inputs[0]).shape
    xs = np.frombuffer((out / "input.bin").read_bytes(), np.int8).reshape(-1, *shape)
    _, mismatches = compare_with_reference(graph, xs, emu.outputs)
    return {
        "instructions": int(np.median(emu.instructions)),
        "bit_exact": mismatches == 0 and len(emu.outputs) == len(xs),
        "per_step": {s["step"]: s["instructions"] for s in emu.steps},
    }


def run_one(
    model: str, board: str, kernels: str, widen: bool, work: Path, opts_levels: tuple[str, ...] = ()
) -> dict[str, Any]:
    path = MODELS / f"{SHARED[model]}.tflite"
    out = work / f"{model}-{board}-{kernels}{'' if widen else '-int8'}"
    opts = CompileOptions(board=board, profile=True, kernels=kernels, widen=widen)
    t0 = time.time()
    r = run_model(path, out, opts, n_random=1)
    g = load_model(path)
    macs = {i: op_macs(g, op) for i, op in enumerate(g.ops)}
    steps = [
        {"step": s["step"], "name": s["name"], "instructions": s["instructions"], "macs": macs.get(s["step"], 0)}
        for s in r.get("per_step", [])
    ]
    return {
        "model": model,
        "board": board,
        "kernels": kernels,
        "widen": widen,
        "instructions": r["instructions"],
        "macs": r["macs"],
        "instructions_per_mac": round(r["instructions"] / max(r["macs"], 1), 3),
        "bit_exact": r["bit_exact"],
        "peak_sram_bytes": r["peak_sram_bytes"],
        "flash_bytes": r.get("flash_bytes"),
        "fast_kernels": r.get("kernels", {}),
        "per_step": steps,
        "kinds": kind_table(g, steps),
        "plan_kernels": plan_kernels(out),
        "opt_levels": {o: rerun_at(out, g, board, o) for o in opts_levels},
        "seconds": round(time.time() - t0, 1),
    }


def plan_kernels(out: Path) -> list[str]:
    """The plan's per-layer kernel lines (filter form included), from plan.txt."""
    p = out / "plan.txt"
    return [ln.strip() for ln in p.read_text().splitlines() if "_dsp" in ln] if p.exists() else []


def _top5(res: dict[str, Any]) -> str:
    top = sorted(res["per_step"], key=lambda s: -s["instructions"])[:5]
    return "; ".join(
        f"{s['name'].split()[0]} ({s['name'].split()[-1]}) {s['instructions']:,} / {s['macs']:,} MAC" for s in top
    )


def _ratio(n: int, m: str) -> str:
    return f"{n / BASELINE[m]:.3f}"


def issue_table(by: dict[tuple, dict[str, Any]], models: list[str]) -> list[str]:
    """The M4 summary: default choice and int8 filters vs TFLite-Micro + CMSIS-NN, -Os/-O0."""
    lines = [
        f"M4 (stm32f405), instructions per inference, x TFLite-Micro + CMSIS-NN (goals: int8 filters <= "
        f"{INT8_GOAL:.2f}, default per-layer choice <= {DEFAULT_GOAL:.2f}); -Os / -O0: the default build",
        "rebuilt at the user's level (`make OPT=-Os`), vs -O2:",
        "",
        "| model | TFLM+CMSIS-NN | default | x | extra flash B | int8 filters | x | -Os | vs -O2 | -O0 | vs -O2 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in models:
        f, n = by.get((m, "stm32f405", "fast", True)), by.get((m, "stm32f405", "fast", False))
        if f is None or n is None:
            continue
        lv = f.get("opt_levels", {})
        os_, o0 = lv.get("-Os"), lv.get("-O0")
        cells = [
            f"{BASELINE[m]:,}",
            f"{f['instructions']:,}",
            _ratio(f["instructions"], m),
            f"{f['flash_bytes'] - n['flash_bytes']:,}",
            f"{n['instructions']:,}",
            _ratio(n["instructions"], m),
        ]
        for o in (os_, o0):
            if o is None:
                cells += ["-", "-"]
            else:
                exact = "" if o["bit_exact"] else " (NOT bit-exact)"
                cells += [f"{o['instructions']:,}{exact}", f"{o['instructions'] / f['instructions']:.2f}x"]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def kinds_section(by: dict[tuple, dict[str, Any]], models: list[str]) -> list[str]:
    """Instructions per MAC per kind of layer (limit 0.5; elementwise: per output element)."""
    cols = [(m, w) for m in models for w in (True, False) if by.get((m, "stm32f405", "fast", w))]
    if not cols:
        return []
    head = " | ".join(f"{m} {'default' if w else 'int8'}" for m, w in cols)
    lines = [
        "Instructions per MAC by kind of layer, stm32f405 (limit 0.5 = one SMLAD per 2 MACs; elementwise:",
        "instructions per output element):",
        "",
        f"| kind | {head} |",
        "|---|" + "---:|" * len(cols),
    ]
    for k in KINDS:
        cells = []
        for m, w in cols:
            e = by[(m, "stm32f405", "fast", w)].get("kinds", {}).get(k)
            cells.append(f"{e['instructions'] / max(e['macs'], 1):.2f}" if e else "-")
        if any(c != "-" for c in cells):
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines


def render(results: list[dict[str, Any]], command: str) -> str:
    by = {(r["model"], r["board"], r["kernels"], r["widen"]): r for r in results}
    models = [m for m in SHARED if any(r["model"] == m for r in results)]
    boards = [b for b in BOARDS if any(r["board"] == b for r in results)]
    lines = [
        "# Speed: fast (Cortex-M DSP) vs portable kernels",
        "",
        f"Command: `{command}`. QEMU `-icount shift=0` instruction counts per inference (deterministic),",
        "one random input, bit-exact against the reference. Limit: 0.5 instructions/MAC (SMLAD).",
        "Baseline: TFLite-Micro + CMSIS-NN on cortex-m4+fp (-O2, QEMU mps2-an386); goal: half of it.",
        "",
        "| model | board | MACs | fast instr. | instr./MAC (limit 0.5) | portable instr. | speedup | "
        "TFLM+CMSIS-NN | goal | vs goal | peak SRAM B | flash B | bit-exact |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for m in models:
        for b in boards:
            f, p = by.get((m, b, "fast", True)), by.get((m, b, "portable", True))
            if f is None:
                continue
            base = f"{BASELINE[m]:,}" if b == "stm32f405" else "-"
            goal = f"{GOAL[m]:,}" if b == "stm32f405" else "-"
            if b == "stm32f405":
                verdict = "met" if f["instructions"] <= GOAL[m] else f"missed by {f['instructions'] / GOAL[m] - 1:.0%}"
            else:
                verdict = "faster than portable" if p and f["instructions"] < p["instructions"] else "-"
            lines.append(
                f"| {m} | {b} ({BOARDS[b]}) | {f['macs']:,} | {f['instructions']:,} | {f['instructions_per_mac']} | "
                f"{p['instructions']:,} | {p['instructions'] / f['instructions']:.2f}x | {base} | {goal} | {verdict} | "
                f"{f['peak_sram_bytes']:,} | {f['flash_bytes']:,} | "
                f"{'yes' if f['bit_exact'] and (p is None or p['bit_exact']) else 'NO'} |"
                if p
                else f"| {m} | {b} | {f['macs']:,} | {f['instructions']:,} | {f['instructions_per_mac']} | - | - | "
                f"{base} | {goal} | {verdict} | {f['peak_sram_bytes']:,} | {f['flash_bytes']:,} | "
                f"{'yes' if f['bit_exact'] else 'NO'} |"
            )
    narrow = [r for r in results if not r["widen"]]
    if narrow:
        lines[6:6] = [*issue_table(by, models), ""]
        lines += [
            "",
            "Flash for speed: the default per-layer choice (int16 pre-widened filters, hottest layers first",
            "while the board's flash allows) vs int8 filters only (`--no-widen`), stm32f405:",
            "",
            "| model | default instr. | int8-filter instr. | default flash B | int8-filter flash B | extra flash |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for n in narrow:
            w = by.get((n["model"], n["board"], "fast", True))
            if w is None:
                continue
            lines.append(
                f"| {n['model']} | {w['instructions']:,} | {n['instructions']:,} | {w['flash_bytes']:,} | "
                f"{n['flash_bytes']:,} | {w['flash_bytes'] - n['flash_bytes']:,} |"
            )
    lines += ["", *kinds_section(by, models)]
    lines += ["", "Top 5 layers per model (fast kernels; instructions / MACs):", ""]
    for m in models:
        for b in boards:
            f = by.get((m, b, "fast", True))
            if f is not None:
                lines.append(f"- {m} on {b}: {_top5(f)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="kws + ad01 on stm32f405 only")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="folder for speed.md/json")
    ap.add_argument("--models", nargs="*", default=None, choices=list(SHARED))
    args = ap.parse_args(argv)
    models = args.models or (["kws", "ad01"] if args.small else list(SHARED))
    boards = ["stm32f405"] if args.small else list(BOARDS)
    command = "python benchmarks/speed.py" + (" --small" if args.small else "")
    results = []
    with tempfile.TemporaryDirectory(prefix="mt_speed_") as tmp:
        work = Path(tmp)
        for m in models:
            for b in boards:
                for kernels in ("fast", "portable"):
                    levels = ("-Os", "-O0") if kernels == "fast" and b == "stm32f405" and not args.small else ()
                    results.append(run_one(m, b, kernels, True, work, levels))
                    r = results[-1]
                    print(f"{m:7s} {b:17s} {kernels:8s} {r['instructions']:>12,d} instr  bit-exact={r['bit_exact']}")
            if not args.small:
                results.append(run_one(m, "stm32f405", "fast", False, work))
                r = results[-1]
                print(f"{m:7s} {'stm32f405':17s} int8     {r['instructions']:>12,d} instr  bit-exact={r['bit_exact']}")
    args.out.mkdir(parents=True, exist_ok=True)
    name = "speed_small" if args.small else "speed"
    (args.out / f"{name}.json").write_text(json.dumps({"command": command, "results": results}, indent=1) + "\n")
    (args.out / f"{name}.md").write_text(render(results, command))
    print(f"wrote {args.out / (name + '.md')}")
    exact = all(r["bit_exact"] and all(o["bit_exact"] for o in r["opt_levels"].values()) for r in results)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
