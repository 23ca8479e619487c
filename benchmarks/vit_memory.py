"""ViT peak SRAM: layer-by-layer vs the token-overwriting plan (MCUFormer's schedule).

    python benchmarks/vit_memory.py            # planning only (seconds)
    python benchmarks/vit_memory.py --run      # also build + run in QEMU, compare with the reference

ViTs are built by `compiler.models.vit_builder` (seeded random weights, calibrated int8). For each
configuration: the layer plan's arena, the token plan chosen for the STM32F746's budget (320 KB
SRAM less stack, heap and the pipeline's RUNTIME_RESERVE for the harness's static RAM; the fast
kernels' scratch included), its knobs, and with --run the emulator's numbers (peak SRAM
= arena + stack high-water + static RAM, flash, instructions, bit-exactness). Weights of width
192 exceed the F746's 1 MB flash beyond one block, so deeper models run on `mps2-an500-large`
(Cortex-M7, 4 MB flash) with the SRAM budget still the F746's; the table says which board ran.

Writes benchmarks/results/vit_memory.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler.errors import BudgetError  # noqa: E402
from compiler.models.vit_builder import ViTConfig, build_vit  # noqa: E402
from compiler.pipeline import CompileOptions, default_budget, run_model  # noqa: E402
from compiler.planner import STACK_RESERVE  # noqa: E402
from compiler.schedule.kernels_table import KernelOptions, kernel_calls, scratch_fn  # noqa: E402
from compiler.schedule.layer import plan_layer  # noqa: E402
from compiler.schedule.select import candidate_plans, choose_plan, plan_peak  # noqa: E402
from compiler.target.boards import load_board  # noqa: E402

F746 = "stm32f746g-disco"
LARGE = "mps2-an500-large"


def _cfg(img: int, patch: int, embed: int, depth: int, heads: int) -> ViTConfig:
    """An RGB ViT with a 4x MLP (DeiT / MCUFormer shapes)."""
    return ViTConfig(img_size=img, patch=patch, in_chans=3, embed_dim=embed, depth=depth, heads=heads, mlp_ratio=4)


# (label, config, board for the token plan, board for the layer plan (None: plan only))
CONFIGS = [
    ("tiny", _cfg(32, 8, 64, 2, 2), F746, F746),
    ("mcuformer-240-w192-l1", _cfg(240, 16, 192, 1, 3), F746, LARGE),
    ("mcuformer-240-w192-l4", _cfg(240, 16, 192, 4, 3), LARGE, None),
    ("vit-160-p16-w192-l12", _cfg(160, 16, 192, 12, 3), None, None),
    ("vit-224-p32-w192-l12", _cfg(224, 32, 192, 12, 3), None, None),
    ("deit-tiny-240-w192-l12", _cfg(240, 16, 192, 12, 3), None, None),
]


def weights_bytes(g) -> int:
    return sum(t.nbytes for t in g.constants())


def measure(label: str, cfg: ViTConfig, board: str | None, layer_board: str | None, run: bool) -> dict:
    g = build_vit(cfg)
    f746 = load_board(F746)
    budget = default_budget(f746)  # 320 KB less stack, heap and RUNTIME_RESERVE (the harness's .data/.bss)
    layer = plan_layer(g)
    # the token plan as the pipeline picks it: with the fast kernels' scratch (Cortex-M7 of the F746)
    scratch = scratch_fn(kernel_calls(g, f746.flash.size, KernelOptions(core=f746.core)))
    row: dict = {
        "label": label,
        "config": cfg.name,
        "tokens": cfg.tokens,
        "macs": layer.macs,
        "weights_bytes": weights_bytes(g),
        "f746_budget_bytes": budget,
        "layer_arena_bytes": layer.arena_bytes,
    }
    try:
        tok = choose_plan(g, budget, "token", scratch=scratch)
        row.update(
            token_arena_bytes=tok.arena_bytes, group=tok.detail["group"], qblock=tok.detail["qblock"],
            token_fits=True, loop_overhead=tok.detail["loop_overhead"],
        )  # fmt: skip
    except BudgetError as e:
        row.update(token_fits=False, token_error=str(e))
    row["layer_fits"] = plan_peak(layer) <= budget
    row["token_min_arena_bytes"] = min(p.arena_bytes for p in candidate_plans(g, "token", scratch=scratch))
    if run and board is not None:
        for sched, bd in (("token", board), ("layer", layer_board)):
            if bd is None:
                continue
            # --sram bounds the whole peak and gives the plan that less STACK_RESERVE: the plan budget is `budget`
            sram = budget + STACK_RESERVE if sched == "token" or bd == F746 else None
            with tempfile.TemporaryDirectory() as d:
                t0 = time.time()
                r = run_model(g, Path(d) / "out", CompileOptions(board=bd, schedule=sched, sram=sram), n_random=1)
                n_instr = int(r["instructions"])
                row[f"{sched}_run"] = {
                    "board": bd,
                    "bit_exact": r["bit_exact"],
                    "peak_sram_bytes": r["peak_sram_bytes"],
                    "arena_bytes": r["arena_bytes"],
                    "stack_bytes": r["stack_bytes"],
                    "flash_bytes": r.get("flash_bytes"),
                    "group": r["schedule_detail"].get("group"),
                    "qblock": r["schedule_detail"].get("qblock"),
                    "fast_kernels": r["kernels"]["fast"],
                    "instructions": n_instr,
                    "instructions_per_mac": round(n_instr / layer.macs, 3),
                    "wall_s": round(time.time() - t0, 1),
                }
            print(f"  {label} {sched}: {row[f'{sched}_run']}", flush=True)
    return row


def kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:,.1f}"


def write(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "vit_memory.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "# ViT peak SRAM: layer-by-layer vs token-overwriting plan",
        "",
        "Generated by `python benchmarks/vit_memory.py --run` (random seeded weights, calibrated int8;",
        "`compiler/models/vit_builder.py`). Budget: STM32F746 320 KB SRAM less stack (8 KB), heap (6 KB) and the",
        "pipeline's 4 KB RUNTIME_RESERVE for the harness's own static RAM (`compiler/pipeline.py`)",
        f"= {rows[0]['f746_budget_bytes']:,} B for the plan. KB = 1024 B. Arena = planned activation bytes",
        "(input image and the fast kernels' scratch included); measured peak = arena + stack high-water +",
        "static RAM (QEMU). Both plans run the Cortex-M DSP kernels `compiler/schedule/kernels_table.py` "
        "selects (FC, conv,",
        "add, batch matmul), token stages included.",
        "",
        "| model | T | MACs | weights KB | layer arena KB | fits F746 | token min KB | token arena KB | group / qblock "
        "| board run | bit-exact | measured peak KB | flash KB | instructions | instr/MAC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tr = r.get("token_run", {})
        lines.append(
            f"| {r['label']} | {r['tokens']} | {r['macs'] / 1e6:,.1f} M | {kb(r['weights_bytes'])} "
            f"| {kb(r['layer_arena_bytes'])} | {'yes' if r['layer_fits'] else 'no'} "
            f"| {kb(r['token_min_arena_bytes'])} | {kb(r.get('token_arena_bytes'))} "
            f"| {r.get('group', '-')} / {r.get('qblock', '-')} "
            f"| {tr.get('board', 'plan only')} | {tr.get('bit_exact', '-')} | {kb(tr.get('peak_sram_bytes'))} "
            f"| {kb(tr.get('flash_bytes'))} | {tr.get('instructions', 0) / 1e6:,.1f} M "
            f"| {tr.get('instructions_per_mac', '-')} |"
        )
    lr = [r for r in rows if "layer_run" in r]
    if lr:
        lines += ["", "Layer plan runs (same board, for instruction comparison):", ""]
        lines += [
            "| model | board | bit-exact | measured peak KB | flash KB | instructions | instr/MAC "
            "| token / layer instr |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in lr:
            x = r["layer_run"]
            t = r.get("token_run", {}).get("instructions")
            ratio = f"{t / x['instructions']:.3f}" if t else "-"
            lines.append(
                f"| {r['label']} | {x['board']} | {x['bit_exact']} | {kb(x['peak_sram_bytes'])} "
                f"| {kb(x.get('flash_bytes'))} | {x['instructions'] / 1e6:,.1f} M | {x['instructions_per_mac']} "
                f"| {ratio} |"
            )
    lines += [
        "",
        "Notes: width-192 blocks hold 442 KB of int8 weights each, so only one block fits the F746's 1 MB",
        "flash; deeper models run on `mps2-an500-large` (Cortex-M7, QEMU mps2-an500, 4 MB flash) with the",
        "plan still limited to the F746 budget. The peak of either plan does not depend on depth (the",
        "token buffer is overwritten block after block), so the one-block F746 run shows the fit; `plan only`",
        "rows are too large for any board's flash here. Instructions: QEMU -icount.",
        "Before the token stages called the DSP kernels (portable kernels in every stage, 12 KB harness",
        "workaround in the budget), the 240 px one-block token plan took 1,539.3 M instructions",
        "(10.08 instr/MAC) vs 428.2 M for the layer plan with DSP kernels; with portable kernels on both",
        "plans, 1,537.6 M (layer) vs 1,539.3 M (token).",
        "The 240 px one-block token run on the F746 leaves one FC filter int8 (its 1 MB flash cannot hold",
        "every filter widened to int16); the layer run on mps2-an500-large widens all. The same token plan",
        "on mps2-an500-large (all widened) took 280.1 M instructions, vs 285.5 M for the layer plan.",
        "Token-plan runs use the F746 budget on both boards.",
    ]
    (out / "vit_memory.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="store_true", help="build and run in QEMU")
    ap.add_argument("--only", help="comma-separated labels")
    args = ap.parse_args()
    rows = []
    for label, cfg, board, layer_board in CONFIGS:
        if args.only and label not in args.only.split(","):
            continue
        print(f"[vit_memory] {label} ...", flush=True)
        rows.append(measure(label, cfg, board, layer_board, args.run))
        r = rows[-1]
        print(f"  layer {r['layer_arena_bytes']:,} B  token {r.get('token_arena_bytes')} B", flush=True)
    write(rows, ROOT / "benchmarks" / "results")


if __name__ == "__main__":
    main()
