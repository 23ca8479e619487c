"""Layer-by-layer arena vs TFLite-Micro's, on the MLPerf Tiny models (issue: layer planner).

    python benchmarks/arena_vs_tflm.py            # planning only (seconds)
    python benchmarks/arena_vs_tflm.py --run      # also build + run in QEMU on both boards

Writes benchmarks/results/arena_vs_tflm.md and .json. TFLM numbers are measured here with the
tflite-micro package (`print_allocations()`, 64-bit host build) when it is installed, else taken
from ../shared/models/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler.frontend.tflite import load_tflite  # noqa: E402
from compiler.pipeline import CompileOptions, run_model  # noqa: E402
from compiler.schedule.layer import plan_layer  # noqa: E402

MODELS_DIR = ROOT.parent / "shared" / "models"
MODELS = ["vww_96_int8", "pretrainedResnet_quant", "kws_ref_model", "ad01_int8"]
README_HEAD = {"vww_96_int8": 73728, "pretrainedResnet_quant": 49152, "kws_ref_model": 16000, "ad01_int8": 768}
README_TOTAL = {"vww_96_int8": 103680, "pretrainedResnet_quant": 55984, "kws_ref_model": 24272, "ad01_int8": 3984}


def tflm_arena(path: Path) -> tuple[int, int, str]:
    """(head, total, source) of TFLM's arena for a model."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except Exception:
        return README_HEAD[path.stem], README_TOTAL[path.stem], "shared/models/README.md"
    interp = runtime.Interpreter.from_file(str(path), arena_size=4 << 20)
    # print_allocations() writes to the C stderr: capture fd 2
    with tempfile.TemporaryFile(mode="w+") as tmp:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
            with contextlib.redirect_stderr(io.StringIO()):
                interp.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()
    head = re.search(r"\[RecordingMicroAllocator\] Arena allocation head (\d+)", text)
    total = re.search(r"\[RecordingMicroAllocator\] Arena allocation total (\d+)", text)
    if head and total:
        return int(head.group(1)), int(total.group(1)), "tflite-micro print_allocations()"
    return README_HEAD[path.stem], README_TOTAL[path.stem], "shared/models/README.md"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="store_true", help="also build and run each model in QEMU on both boards")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    rows = []
    for m in MODELS:
        path = MODELS_DIR / f"{m}.tflite"
        g = load_tflite(path)
        plan = plan_layer(g)
        head, total, src = tflm_arena(path)
        row = {
            "model": m,
            "tflm_arena_head": head,
            "tflm_arena_total": total,
            "tflm_source": src,
            "arena_bytes": plan.arena_bytes,
            "lower_bound": plan.lower_bound,
            "arena_vs_head": round(plan.arena_bytes / head, 3),
            "macs": plan.macs,
        }
        if args.run:
            for board in ("stm32f405", "stm32f746g-disco"):
                with tempfile.TemporaryDirectory() as d:
                    r = run_model(path, Path(d) / "p", CompileOptions(board=board), n_random=3)
                row[board] = {k: r[k] for k in ("bit_exact", "peak_sram_bytes", "stack_bytes", "flash_bytes",
                                                "instructions", "instructions_per_mac")}
                print(f"{m} on {board}: {row[board]}", file=sys.stderr)
        rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "arena_vs_tflm.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "# Layer-by-layer arena vs TFLite-Micro",
        "",
        "Command: `python benchmarks/arena_vs_tflm.py" + (" --run" if args.run else "") + "`. The arena holds every",
        "activation including the model's input and output (as TFLM's does); the lower bound is the",
        "largest set of tensors live at once.",
        "",
        "| model | TFLM arena head | microtile arena | lower bound | arena / head | TFLM arena total |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['tflm_arena_head']:,} | {r['arena_bytes']:,} | {r['lower_bound']:,} | "
            f"{r['arena_vs_head']:.2f} | {r['tflm_arena_total']:,} |"
        )
    if args.run:
        lines += [
            "",
            "Measured in QEMU (`-icount shift=0`), 3 seeded random inputs each; peak SRAM = arena + model static",
            "data + painted stack high-water mark during invoke.",
            "",
            "| model | board | bit-exact | peak SRAM | stack | flash | instructions | instr/MAC |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            for board in ("stm32f405", "stm32f746g-disco"):
                b = r[board]
                lines.append(
                    f"| {r['model']} | {board} | {'yes' if b['bit_exact'] else 'NO'} | {b['peak_sram_bytes']:,} | "
                    f"{b['stack_bytes']:,} | {b['flash_bytes']:,} | {b['instructions']:,} | "
                    f"{b['instructions_per_mac']} |"
                )
    lines.append("")
    lines.append(f"TFLM numbers from: {rows[0]['tflm_source']}.")
    (args.out / "arena_vs_tflm.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
