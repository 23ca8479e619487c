"""Speed benchmark: instructions per inference of the shared MLPerf Tiny models, fast (DSP)
vs portable kernels, on the Cortex-M4 (stm32f405) and Cortex-M7 (stm32f746g-disco) boards.

    python benchmarks/speed.py            # all four models, both boards -> benchmarks/results/speed.{md,json}
    python benchmarks/speed.py --small    # kws + ad01 on stm32f405 (well under a minute; CI)

Every run is `microtile run --profile` (QEMU -icount shift=0: instructions = SysTick ticks x
1e9 / clock, deterministic), checked bit-exact against the reference. Reported per model and
board: instructions per inference and per MAC (the SMLAD limit is 0.5), the TFLite-Micro +
CMSIS-NN baseline and the goal (half of it; measured by the project on cortex-m4+fp, QEMU
mps2-an386, -O2, one Invoke after warm-up), peak SRAM, flash, and the five most expensive
layers. On the M4 the fast build is also run with int8 filters (--no-widen) to show what
pre-widening costs in flash and buys in instructions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler.ir import op_macs  # noqa: E402
from compiler.pipeline import CompileOptions, load_model, run_model  # noqa: E402

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


def run_one(model: str, board: str, kernels: str, widen: bool, work: Path) -> dict[str, Any]:
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
        "seconds": round(time.time() - t0, 1),
    }


def _top5(res: dict[str, Any]) -> str:
    top = sorted(res["per_step"], key=lambda s: -s["instructions"])[:5]
    return "; ".join(
        f"{s['name'].split()[0]} ({s['name'].split()[-1]}) {s['instructions']:,} / {s['macs']:,} MAC" for s in top
    )


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
        lines += [
            "",
            "Flash for speed: int16 pre-widened filters (default) vs int8 filters (`--no-widen`), stm32f405:",
            "",
            "| model | widened instr. | int8-filter instr. | widened flash B | int8-filter flash B | extra flash |",
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
                    results.append(run_one(m, b, kernels, True, work))
                    r = results[-1]
                    print(f"{m:7s} {b:17s} {kernels:8s} {r['instructions']:>12,d} instr  bit-exact={r['bit_exact']}")
            if not args.small:
                results.append(run_one(m, "stm32f405", "fast", False, work))
    args.out.mkdir(parents=True, exist_ok=True)
    name = "speed_small" if args.small else "speed"
    (args.out / f"{name}.json").write_text(json.dumps({"command": command, "results": results}, indent=1) + "\n")
    (args.out / f"{name}.md").write_text(render(results, command))
    print(f"wrote {args.out / (name + '.md')}")
    return 0 if all(r["bit_exact"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
