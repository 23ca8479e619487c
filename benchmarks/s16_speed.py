"""16x8 speed: instructions per MAC of a 16x8 block, portable vs DSP kernels, M4 and M7.

    python benchmarks/s16_speed.py [--hw 32 --c 16]   # -> benchmarks/results/s16_speed.{md,json}

The model is `tests/test_kernels_s16_dsp.py::s16_model` (QUANTIZE to int16, conv 3x3 c->c,
depthwise 3x3, conv 1x1 c->2c, conv 3x3 stride 2 with an int32 bias, FC to 10, QUANTIZE back)
at hw x hw x c. Each run is `microtile run --profile` on stm32f405 (Cortex-M4, QEMU
netduinoplus2) and stm32f746g-disco (Cortex-M7, mps2-an500) with `--kernels portable` and the
default (the 16x8 DSP kernels), bit-exact with the reference; instructions from QEMU
-icount shift=0 (deterministic for a given ELF). Per layer: instructions / MACs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_kernels_s16_dsp import s16_model  # noqa: E402

from compiler.core.ir import op_macs  # noqa: E402
from compiler.frontend.tflite import load_tflite  # noqa: E402
from compiler.frontend.tflite_writer import write_tflite  # noqa: E402
from compiler.pipeline import CompileOptions, run_model  # noqa: E402

BOARDS = ("stm32f405", "stm32f746g-disco")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", type=int, default=32)
    ap.add_argument("--c", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    a = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"s16_block_{a.hw}x{a.hw}x{a.c}.tflite"
        path.write_bytes(write_tflite(s16_model(a.hw, a.c)))
        g = load_tflite(path)
        macs = {op.name: op_macs(g, op) for op in g.ops}
        for board in BOARDS:
            for kernels in ("portable", "fast"):
                opts = CompileOptions(board=board, kernels=kernels, profile=True)
                r = run_model(path, Path(tmp) / f"{board}_{kernels}", opts, n_random=1)
                assert r["bit_exact"], (board, kernels)
                layers = {s["name"].split()[0]: s["instructions"] for s in r["per_step"]}
                results.append({"board": board, "kernels": kernels, "instructions": r["instructions"],
                                "instructions_per_mac": r["instructions_per_mac"], "macs": r["macs"],
                                "fast": r["kernels"]["fast"],
                                "layers": {n: {"instructions": v, "macs": macs.get(n, 0)} for n, v in layers.items()}})
                print(f"{board:18s} {kernels:9s} {r['instructions']:>12,} {r['instructions_per_mac']:.3f}/MAC")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "s16_speed.json").write_text(json.dumps(results, indent=1) + "\n")
    names = [n for n in results[0]["layers"] if results[0]["layers"][n]["macs"] > 0]
    lines = [f"# 16x8 block {a.hw}x{a.hw}x{a.c}: portable vs DSP kernels", "",
             f"`python benchmarks/s16_speed.py --hw {a.hw} --c {a.c}`; instructions per inference in QEMU "
             "(-icount shift=0), all bit-exact.", "",
             "| board | kernels | instructions | instr/MAC | " + " | ".join(names) + " |",
             "|---|---|---:|---:|" + "---:|" * len(names)]
    for r in results:
        per = [f"{r['layers'][n]['instructions'] / r['layers'][n]['macs']:.2f}" for n in names]
        lines.append(f"| {r['board']} | {r['kernels']} | {r['instructions']:,} | {r['instructions_per_mac']:.3f} | "
                     + " | ".join(per) + " |")
    lines += ["", "Per-layer columns: instructions per MAC of that layer."]
    (a.out / "s16_speed.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
