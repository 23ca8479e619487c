"""`microtile nas`: the subcommand's arguments and its entry point (no torch import until it runs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Log = Callable[[str], None]


def add_parser(sub: Any, size: Callable[[str], int]) -> None:
    """The `microtile nas` subcommand's arguments (compiler/cli.py calls this)."""
    import argparse

    sp = sub.add_parser(
        "nas",
        help="search an architecture under the board's budget, scored with the planner",
        description="Train a weight-sharing supernet (sandwich rule), search it with Optuna NSGA-II scoring every "
        "candidate's int8 export with the real planner (peak SRAM over layer/patch/token plans, flash, cost-model "
        "instructions), fine-tune the winner, quantize it and run it bit-exact in QEMU. Rerun the same command to "
        "resume. Writes OUT/nas.json, pareto.md, pareto.png, trials.json, winner.onnx and the firmware in OUT/fw.",
        epilog="examples:\n"
        "  microtile nas --data digits --board stm32f405 --sram 64K --flash 256K --epochs 2 --trials 8 --out nas1\n"
        "      a quick try on scikit-learn's digits (minutes on a laptop CPU)\n"
        "  microtile nas --space cnn --data images/ --board stm32f405 --sram 64K --flash 256K --out nas_cnn\n"
        "      images/: a subfolder per class; or --data x.npz: x [N,H,W(,C)] uint8 or float in [-1,1], y [N] int\n"
        "  microtile nas --space vit --data images/ --board stm32f746g-disco --sram 320K --out nas_vit\n"
        "  torchrun --nproc_per_node 4 -m compiler.cli nas ...   supernet training on 4 GPUs/processes (DDP)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sp.add_argument("--space", choices=["cnn", "vit"], default="cnn", help="MCUNet-style CNN or MCUFormer-style ViT")
    sp.add_argument(
        "--data", required=True, help="image folder (a subfolder per class), .npz (x, y), 'digits' or 'task'"
    )
    sp.add_argument("--board", default="stm32f405", help="target board (`microtile boards`; default stm32f405)")
    sp.add_argument("--sram", type=size, default=None, metavar="BYTES", help="peak SRAM budget (plan + stack margin)")
    sp.add_argument("--flash", type=size, default=None, metavar="BYTES", help="flash budget for the model's constants")
    sp.add_argument("--latency-ms", type=float, default=None, help="latency budget (cost-model instructions / clock)")
    sp.add_argument("--out", required=True, type=Path, help="output folder (resumable: rerun to continue)")
    sp.add_argument("--epochs", type=int, default=10, help="supernet epochs (default 10)")
    sp.add_argument("--finetune-epochs", type=int, default=5, help="winner's fine-tune epochs (default 5)")
    sp.add_argument("--trials", type=int, default=30, help="candidates to score (default 30)")
    sp.add_argument("--batch", type=int, default=64, help="training batch size (default 64)")
    sp.add_argument("--seed", type=int, default=0, help="seeds the split, training and search (default 0)")
    sp.add_argument("--storage", default=None, help="Optuna RDB URL shared by several machines (default OUT/study.db)")
    sp.add_argument("--study", default=None, help="Optuna study name (default: from the space and the budgets)")
    sp.add_argument("--space-json", type=Path, default=None, help="JSON object overriding fields of the space")
    sp.add_argument("--augment", action="store_true", help="random horizontal flips (flip-invariant data only)")
    sp.add_argument("--no-run", action="store_true", help="stop after PTQ (no firmware build / QEMU run)")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")


def main_from_args(args: Any, log: Log) -> int:
    """`microtile nas`: run the loop, print the summary lines; exit 0, or 1 when the run is not bit-exact."""
    from nas.loop import NasConfig, run_nas

    over = json.loads(args.space_json.read_text()) if args.space_json else {}
    cfg = NasConfig(kind=args.space, data=args.data, board=args.board, out=args.out, sram=args.sram,
                    flash=args.flash, latency_ms=args.latency_ms, epochs=args.epochs,
                    finetune_epochs=args.finetune_epochs, trials=args.trials, batch=args.batch, seed=args.seed,
                    storage=args.storage, study=args.study, space=over, augment=args.augment,
                    progress=not args.quiet, run_firmware=not args.no_run)  # fmt: skip
    s = run_nas(cfg, log)
    if "rank" in s:
        return 0
    w = s["winner"]
    print(f"winner     {w['describe']}  (trial {w['trial']} of {s['trials']}, {s['feasible']} fit the budget)")
    print(f"plan       {w['schedule']}  peak {w['plan_peak']:,} B  flash {w['flash_bytes']:,} B  "
          f"~{w['instructions']:,} instructions (cost model)")  # fmt: skip
    key8, acc8 = next((k, v) for k, v in s.items() if k.startswith("test_accuracy_int8"))
    n8 = key8.removeprefix("test_accuracy_int8_first")
    print(f"accuracy   held-out float {s['test_accuracy_float']:.3f}, int8 {acc8:.3f} (first {n8} held-out images)")
    fw = s.get("firmware")
    if fw:
        print(f"firmware   bit-exact {'yes' if fw['bit_exact'] else 'NO'}, peak SRAM {fw['peak_sram_bytes']:,} B, "
              f"{fw['instructions']:,} instructions in QEMU")  # fmt: skip
    print(f"report     {args.out / 'nas.json'}  (pareto.md, pareto.png, trials.json)")
    return 0 if not fw or fw["bit_exact"] else 1
