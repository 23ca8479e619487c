"""Fit `nas/cost_model.json` (instructions per MAC / per output element, per kernel) from QEMU runs.

    PYTHONPATH=. python -m nas.calibrate [--boards stm32f405 stm32f746g-disco] [--out nas/cost_model.json]

For each board: a few subnets of the CNN and ViT spaces (random weights: the instruction count
of these kernels depends on shapes, not values, except for saturation branches) are exported,
quantized, compiled with the layer schedule and per-step counters (`profile=True`), run in QEMU
(-icount shift=0) and checked bit-exact; each step's instructions are attributed to its kernel
key (`nas.score.step_key`) and the coefficient of a key is sum(instructions) / sum(work) over
all runs (work = MACs, or elements read and written for ops without MACs). The file records the boards,
the architectures, the date and each model's measured vs estimated total.
"""

from __future__ import annotations

import argparse
import datetime
import random
import tempfile
from pathlib import Path

import torch

from compiler.pipeline import CompileOptions, run_model
from compiler.planner import PlanOptions, choose_for
from compiler.target.boards import load_board
from nas.score import COST_MODEL, CostModel, quantize_module, step_key, step_work
from nas.space_cnn import CnnSpace, CnnSupernet, export_cnn
from nas.space_vit import VitSpace, VitSupernet, export_vit
from nas.train import recalibrate_bn


def calibration_models(seed: int = 0) -> list[tuple[str, torch.nn.Module, int]]:
    torch.manual_seed(seed)
    cs = CnnSpace(num_classes=4, resolutions=(48, 64))
    cnet = CnnSupernet(cs).eval()
    vs = VitSpace(num_classes=4, resolutions=(32, 64), patches=(8, 16))
    vnet = VitSupernet(vs).eval()
    rng = random.Random(seed)
    out: list[tuple[str, torch.nn.Module, int]] = []
    x = torch.rand(64, 1, 64, 64).numpy() * 2 - 1
    for arch in (cs.sample(rng), {**cs.sample(rng), "width": 0.5}):
        arch = cs.normalize(arch)
        m = recalibrate_bn(export_cnn(cnet, arch), x, arch["res"])
        out.append((cs.describe(arch), m, arch["res"]))
    vits = (
        {"res": 32, "patch": 8, "embed": 32, "depth": 1, "heads": 2, "mlp_ratio": 2.0, "rank": 0.5},
        {"res": 64, "patch": 16, "embed": 48, "depth": 1, "heads": 4, "mlp_ratio": 2.0, "rank": 1.0},
    )
    for arch in vits:
        out.append((vs.describe(arch), export_vit(vnet, arch), arch["res"]))
    return out


def calibrate(boards: list[str], out: Path, work: Path) -> CostModel:
    sums: dict[str, dict[str, list[float]]] = {}
    units: dict[str, str] = {}
    runs = []
    for bname in boards:
        board = load_board(bname)
        s = sums.setdefault(board.core, {})
        for i, (desc, module, res) in enumerate(calibration_models()):
            calib = (torch.rand(16, 1, res, res) * 2 - 1).numpy()
            g = quantize_module(module, calib, work / f"{bname}_{i}.onnx")
            opts = CompileOptions(board=bname, schedule="layer", profile=True, widen=False)
            rep = run_model(g, work / f"{bname}_{i}", opts, n_random=1)
            plan = choose_for(g, board, PlanOptions(schedule="layer", widen=False)).plan
            per = {p["step"]: p["instructions"] for p in rep.get("per_step", [])}
            for k, st in enumerate(plan.steps):
                if k not in per:
                    continue
                key, unit = step_key(st)
                units[key] = unit
                acc = s.setdefault(key, [0.0, 0.0])
                acc[0] += per[k]
                acc[1] += max(step_work(plan.graph, st), 1)
            runs.append({"board": bname, "model": desc, "bit_exact": rep["bit_exact"],
                         "instructions": rep["instructions"], "plan": plan, "core": board.core})  # fmt: skip
            print(f"{bname} {desc}: {rep['instructions']:,} instructions, bit_exact={rep['bit_exact']}", flush=True)
    cm = CostModel(coef={core: {k: round(v[0] / v[1], 4) for k, v in d.items()} for core, d in sums.items()})
    cm.provenance = {
        "command": "PYTHONPATH=. python -m nas.calibrate --boards " + " ".join(boards),
        "date": datetime.date.today().isoformat(),
        "method": "QEMU -icount shift=0 per-step counters (--profile), layer schedule, ratio of sums per kernel",
        "units": units,
        "runs": [],
    }
    for r in runs:
        est = cm.instructions(r["plan"], r["core"])
        cm.provenance["runs"].append({"board": r["board"], "model": r["model"], "bit_exact": r["bit_exact"],
                                      "measured": r["instructions"], "estimated": est,
                                      "error": round(est / r["instructions"] - 1, 4)})  # fmt: skip
    cm.save(out)
    return cm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["stm32f405", "stm32f746g-disco"])
    ap.add_argument("--out", type=Path, default=COST_MODEL)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="nas_calib_") as d:
        cm = calibrate(args.boards, args.out, Path(d))
    for r in cm.provenance["runs"]:
        print(f"{r['board']:18s} {r['model']:60s} measured {r['measured']:>12,} estimated {r['estimated']:>12,} "
              f"({r['error']:+.1%})")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
