"""ViT search at the STM32F746's SRAM: a low-rank model that fits only with the token plan.

    python benchmarks/nas_vit_token.py [--n 900 --size 128 --epochs 3 --trials 8 --finetune-epochs 2]

Runs the whole `microtile nas --space vit` loop (nas.loop.run_nas) on the procedural small-object
task at --size px, on the stm32f746g-disco with its default budget (320 KB SRAM less stack, heap
and runtime reserve), over an MCUFormer-style space whose linears are low-rank (rank ratio 0.5 or
0.75 of the MLP linears, as MCUFormer searches 0.4-0.95) with up to (size/8)^2 + 1 tokens. For the
winner and every feasible candidate it shows the smallest peak of the layer plan and of the token
plan next to the budget; the winner is fine-tuned, quantized, compiled and run in QEMU (bit-exact
check, measured peak SRAM). Writes benchmarks/results/nas_vit_token.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from compiler.planner import default_budget  # noqa: E402
from compiler.target.boards import load_board  # noqa: E402
from nas.loop import NasConfig, md, run_nas  # noqa: E402

BOARD = "stm32f746g-disco"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=900)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--finetune-epochs", type=int, default=2)
    ap.add_argument("--resolutions", type=int, nargs="+", default=None, help="default: size/2, 3 size/4, size")
    ap.add_argument("--patches", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench_vit")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    s = args.size
    space = {"embed_dims": [32, 48], "depths": [1, 2], "heads": [2, 4], "mlp_ratios": [2.0, 3.0],
             "patches": args.patches,
             "resolutions": args.resolutions or [r for r in (s // 2, 3 * s // 4, s) if r % 16 == 0],
             "rank_ratios": [0.5, 0.75],
             "lowrank": "mlp"}  # fmt: skip
    cfg = NasConfig(kind="vit", data=f"task:{args.n}:{s}", board=BOARD, out=args.out, epochs=args.epochs,
                    finetune_epochs=args.finetune_epochs, trials=args.trials, space=space, progress=False,
                    int8_test=60)  # fmt: skip
    summary = run_nas(cfg, lambda m: print(m, flush=True))
    budget = default_budget(load_board(BOARD))
    recs = json.loads((args.out / "trials.json").read_text())
    w, fw = summary["winner"], summary.get("firmware", {})
    lines = [
        f"# ViT search on {BOARD}: low-rank models under the token plan",
        "",
        f"Command: `python benchmarks/nas_vit_token.py --n {args.n} --size {s} --epochs {args.epochs} "
        f"--trials {args.trials} --finetune-epochs {args.finetune_epochs} --resolutions "
        f"{' '.join(map(str, space['resolutions']))} --patches {' '.join(map(str, args.patches))}` "
        f"({(time.time() - t0) / 60:.0f} min on a "
        "shared 2-core CPU, cached stages not counted).",
        f"Plan budget {budget:,} B (320 KB SRAM less stack, heap, runtime reserve). Space: {json.dumps(space)}.",
        "",
        "| trial | architecture | val acc | chosen plan | layer plan peak B | token plan peak B | layer fits "
        "| flash B | instr. (cost model) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in sorted(recs, key=lambda r: r["trial"]):
        pk = r["peak_by_kind"]
        lay, tok = pk.get("layer"), pk.get("token")
        lines.append(
            f"| {r['trial']} | {md(r['describe'])} | {r['accuracy']:.3f} | {r['schedule'] or 'none fits'} | "
            f"{lay:,} | {'-' if tok is None else format(tok, ',')} | {'yes' if lay <= budget else 'no'} | "
            f"{r['flash_bytes']:,} | {r['instructions']:,} |"
        )
    lw = w["peak_by_kind"].get("layer", 0)
    fits = "fits" if lw <= budget else "does not fit"
    acc8 = next((v for k, v in summary.items() if k.startswith("test_accuracy_int8")), None)
    lines += [
        "",
        f"Winner: trial {w['trial']} {w['describe']}: plan {w['schedule']}, layer plan peak "
        f"{lw:,} B ({fits} the {budget:,} B budget), token plan peak {w['peak_by_kind'].get('token', 0):,} B.",
        f"Held-out accuracy after {args.finetune_epochs} fine-tune epochs: float {summary['test_accuracy_float']:.3f}, "
        f"int8 {acc8:.3f} (first 60).",
        f"QEMU: bit-exact {fw.get('bit_exact')} over {fw.get('inputs')} images, schedule {fw.get('schedule')}, "
        f"measured peak SRAM {fw.get('peak_sram_bytes', 0):,} B, {fw.get('instructions', 0):,} instructions "
        f"(cost model "
        f"{w['instructions']:,}).",
    ]  # fmt: skip
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "nas_vit_token.md").write_text("\n".join(lines) + "\n")
    (args.results / "nas_vit_token.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
