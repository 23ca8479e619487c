"""PTQ wall time: calibration through the numpy float executor (before) vs onnxruntime (after).

    python benchmarks/ptq_time.py                 # 100 calibration samples per model
    python benchmarks/ptq_time.py --samples 32    # quicker

Three models written in plain PyTorch (`compiler/models/zoo.py`, `compiler/models/vit.py`, random
weights, opset 17): MobileNetV2-0.35 at 96x96, a small ViT (64x64, patch 8, width 64, depth 4) and
the Conv1d KWS net on [40 MFCC x 49 frames]. For each: the seconds `calibrate` takes with
engine="numpy" and engine="onnxruntime" (same ranges: tests/test_onnx_patterns.py checks equality),
and the whole `quantize_for_compile` (calibration, int8 emission, per-layer SQNR and top-1 on 16
samples through `compiler.golden.reference`) with each engine. Wall-clock numbers on this machine, best
of `--repeat`; the table says what ran.

Writes benchmarks/results/ptq_time.md and .json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from compiler.frontend.onnx import load_onnx  # noqa: E402
from compiler.frontend.torch import export_onnx  # noqa: E402
from compiler.models.vit import ViT, ViTConfig  # noqa: E402
from compiler.models.zoo import KWSConv1d, MobileNetV2  # noqa: E402
from compiler.passes.quantize import calibrate, quantize_for_compile, to_ir_layout  # noqa: E402

MODELS = {
    "MobileNetV2-0.35 @96": (lambda: MobileNetV2(0.35, 10), (1, 3, 96, 96)),
    "ViT 64px p8 w64 d4": (
        lambda: ViT(ViTConfig(img_size=64, patch=8, in_chans=3, embed_dim=64, depth=4, heads=4)),
        (1, 3, 64, 64),
    ),
    "KWS Conv1d 40x49": (KWSConv1d, (1, 40, 49)),
}


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(label: str, samples: int, repeat: int, d: Path) -> dict:
    factory, shape = MODELS[label]
    torch.manual_seed(0)
    m = factory().eval()
    path = export_onnx(m, torch.randn(*shape), d / f"{label.split()[0].lower()}.onnx")
    g = load_onnx(path)
    x = np.random.default_rng(0).normal(size=(samples,) + shape[1:]).astype(np.float32)
    data = to_ir_layout(g, x)
    row = {"model": label, "ops": len(g.ops), "samples": samples}
    for engine in ("numpy", "onnxruntime"):
        row[f"calibrate_{engine}_s"] = round(best(lambda e=engine: calibrate(g, [data], engine=e), repeat), 3)
        row[f"ptq_{engine}_s"] = round(best(lambda e=engine: quantize_for_compile(g, data, engine=e), 1), 3)
    row["calibrate_speedup"] = round(row["calibrate_numpy_s"] / row["calibrate_onnxruntime_s"], 1)
    row["ptq_speedup"] = round(row["ptq_numpy_s"] / row["ptq_onnxruntime_s"], 1)
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    import onnxruntime

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label in MODELS:
            rows.append(measure(label, args.samples, args.repeat, Path(tmp)))
    env = (
        f"python {platform.python_version()}, numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"torch {torch.__version__}, {platform.machine()}, best of {args.repeat}"
    )
    lines = [
        "# PTQ time: numpy float executor (before) vs onnxruntime (after)",
        "",
        f"`python benchmarks/ptq_time.py --samples {args.samples}`; {env}. Seconds of wall time.",
        "`calibrate`: activation ranges only; `PTQ`: `quantize_for_compile` (calibration, int8 emission,",
        "per-layer SQNR and top-1 agreement on 16 samples run through `compiler.golden.reference`).",
        "",
        "| model | IR ops | samples | calibrate numpy | calibrate onnxruntime | speed-up | PTQ numpy | PTQ onnxruntime "
        "| speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['ops']} | {r['samples']} | {r['calibrate_numpy_s']} | {r['calibrate_onnxruntime_s']} "
            f"| {r['calibrate_speedup']}x | {r['ptq_numpy_s']} | {r['ptq_onnxruntime_s']} | {r['ptq_speedup']}x |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ptq_time.md").write_text("\n".join(lines) + "\n")
    (args.out / "ptq_time.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
