"""Patch-based (MCUNetV2) vs layer-by-layer peak SRAM (issue: patch-based inference).

    python benchmarks/patch_memory.py                  # vww in QEMU + MobileNetV2 planning (~1-2 min)
    python benchmarks/patch_memory.py --no-qemu        # planning only

Writes benchmarks/results/patch_memory.md, .json and patch_memory.png (live arena bytes per
step, layer vs patch, for vww; needs matplotlib: `pip install microtile[plot]`).

- vww_96_int8 on stm32f405 (QEMU netduinoplus2): peak SRAM as DESIGN.md defines it (arena
  incl. the input it holds, + static + measured stack) layer-by-layer vs the fewest-MACs
  patch plan that fits 40 % of TFLite-Micro's arena total (103,680 B) less a stack margin.
- MobileNetV2 (builder, random seeded weights) w1.0 @224 and w0.35 @144: activation peak with
  the input excluded (io=external; what MCUNetV2 reports), planning only.
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

from compiler.builder import mobilenet_v2  # noqa: E402
from compiler.ir import Graph, graph_macs  # noqa: E402
from compiler.pipeline import CompileOptions, load_model, run_model  # noqa: E402
from compiler.schedule.layer import plan_layer  # noqa: E402
from compiler.schedule.patch import patch_candidates  # noqa: E402
from compiler.schedule.plan import Plan  # noqa: E402
from compiler.schedule.select import choose_plan, plan_peak  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
VWW = ROOT.parent / "shared" / "models" / "vww_96_int8.tflite"
TFLM_VWW_TOTAL = 103_680
STACK_MARGIN = 1024  # budget left for the stack when picking the vww plan (measured afterwards)
MBV2_GOAL = 172_000  # MCUNetV2's patch-based peak for MobileNetV2 w1.0 @224 (kB = 1000 B)


def _detail(p: Plan) -> str:
    d = p.detail
    if p.schedule == "patch":
        return f"split {d['split']}, grid {d['grid']}"
    return "in-place" if d.get("in_place") else "-"


def vww_rows(qemu: bool, work: Path) -> tuple[list[dict], dict[str, list[int]]]:
    g = load_model(VWW)
    goal = int(0.40 * TFLM_VWW_TOTAL)
    budget = goal - STACK_MARGIN
    layer = choose_plan(g, 10**9, "layer")
    patch = choose_plan(g, budget, "patch")
    rows = []
    for label, plan, opts in (
        ("layer-by-layer", layer, CompileOptions(board="stm32f405", schedule="layer")),
        ("patch-based", patch, CompileOptions(board="stm32f405", schedule="patch", sram=budget)),
    ):
        row = {
            "model": "vww_96_int8",
            "plan": label,
            "detail": _detail(plan),
            "arena_bytes": plan.arena_bytes,
            "macs": plan.macs,
            "mac_overhead": round((plan.macs - graph_macs(g)) / graph_macs(g), 4),
            "tflm_arena_total": TFLM_VWW_TOTAL,
        }
        if qemu:
            r = run_model(g, work / label, opts, n_random=3)
            assert r["schedule_detail"] == plan.detail, "the run chose another plan than the benchmark"
            row.update(
                peak_sram_bytes=r["peak_sram_bytes"],
                stack_bytes=r["stack_bytes"],
                instructions=r["instructions"],
                bit_exact=r["bit_exact"],
            )
        else:
            row.update(peak_sram_bytes=plan_peak(plan), peak_sram_estimated=True)
        row["pct_of_tflm"] = round(100 * row["peak_sram_bytes"] / TFLM_VWW_TOTAL, 1)
        rows.append(row)
    curves = {"layer-by-layer": layer.live_bytes_per_step(), f"patch ({_detail(patch)})": patch.live_bytes_per_step()}
    return rows, curves


def mbv2_rows(width: float, res: int) -> list[dict]:
    g: Graph = mobilenet_v2(width, res)
    x_bytes = g.t(g.inputs[0]).nbytes
    base = graph_macs(g)
    t0 = time.time()
    layer = min((plan_layer(g, io="external"), plan_layer(g, io="external", in_place=True)), key=plan_peak)
    plain = plan_layer(g, io="external")
    patches = patch_candidates(g, io="external", keep=10**6)
    secs = time.time() - t0
    name = f"mobilenet_v2 w{width:g} @{res}"
    rows = []

    def row(label: str, p: Plan) -> dict:
        return {
            "model": name,
            "plan": label,
            "detail": _detail(p),
            "activation_peak_bytes": plan_peak(p) - x_bytes,
            "macs": p.macs,
            "mac_overhead": round((p.macs - base) / base, 4),
            "planning_s": round(secs, 1),
        }

    rows.append(row("layer-by-layer", plain))
    if layer is not plain:
        rows.append(row("layer-by-layer + in-place", layer))
    best = min(patches, key=plan_peak)
    rows.append(row("patch (smallest peak)", best))
    cheap = [p for p in patches if (p.macs - base) / base <= 0.15]
    if cheap:
        rows.append(row("patch (smallest peak, MAC overhead <= 15%)", min(cheap, key=plan_peak)))
    if width == 1.0 and res == 224:
        fit = [p for p in patches if plan_peak(p) - x_bytes <= MBV2_GOAL]
        if fit:
            rows.append(row(f"patch (fewest MACs with peak <= {MBV2_GOAL:,} B)", min(fit, key=lambda p: p.macs)))
    return rows


def write_md(vww: list[dict], mbv2: list[dict], qemu: bool) -> str:
    lines = [
        "# Patch-based vs layer-by-layer peak SRAM",
        "",
        "Generated by `python benchmarks/patch_memory.py`"
        + ("" if qemu else " --no-qemu (planning only: peak without stack)")
        + ".",
        "",
        "## vww_96_int8 on stm32f405 (QEMU netduinoplus2, 3 random inputs)",
        "",
        "Peak SRAM = arena (input inside it) + static + measured stack, as DESIGN.md defines it;",
        f"TFLite-Micro's arena total is {TFLM_VWW_TOTAL:,} B (its stack not even added). Goal: patch <= 40 %.",
        "",
        "| plan | detail | arena B | peak SRAM B | % of TFLM | MACs | MAC overhead | instructions | bit-exact |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in vww:
        lines.append(
            f"| {r['plan']} | {r['detail']} | {r['arena_bytes']:,} | {r['peak_sram_bytes']:,} | {r['pct_of_tflm']} % | "
            f"{r['macs']:,} | {100 * r['mac_overhead']:.1f} % | {r.get('instructions', '-'):,} | "
            f"{r.get('bit_exact', '-')} |".replace("| -, |", "| - |")
        )
    lines += [
        "",
        "## MobileNetV2 (builder, seeded random weights), planning only",
        "",
        "Activation peak with the input image excluded (io=external: the image stays in the camera",
        "buffer), as MCUNetV2 reports it; its w1.0 @224 patch-based figure is 172 kB. These models are",
        "not run in QEMU here (w1.0 @224 is ~300 M MACs, several billion emulated instructions).",
        "",
        "| model | plan | detail | activation peak B | MACs | MAC overhead | planning s |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in mbv2:
        lines.append(
            f"| {r['model']} | {r['plan']} | {r['detail']} | {r['activation_peak_bytes']:,} | {r['macs']:,} | "
            f"{100 * r['mac_overhead']:.1f} % | {r['planning_s']} |"
        )
    lines.append("")
    return "\n".join(lines)


def plot(curves: dict[str, list[int]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install microtile[plot])", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, ys in curves.items():
        ax.step(range(len(ys)), [y / 1024 for y in ys], where="mid", label=label)
    ax.axhline(0.4 * TFLM_VWW_TOTAL / 1024, color="gray", ls="--", lw=1, label="40 % of TFLM arena")
    ax.set_xlabel("step (layer)")
    ax.set_ylabel("live arena KiB (input included)")
    ax.set_title("vww_96_int8: live SRAM per layer")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-qemu", action="store_true", help="planning only (no build, no emulator)")
    args = ap.parse_args(argv)
    qemu = not args.no_qemu
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        vww, curves = vww_rows(qemu, Path(tmp))
    mbv2 = mbv2_rows(1.0, 224) + mbv2_rows(0.35, 144)
    md = write_md(vww, mbv2, qemu)
    (RESULTS / "patch_memory.md").write_text(md)
    (RESULTS / "patch_memory.json").write_text(
        json.dumps({"vww": vww, "mobilenet_v2": mbv2, "curves": curves}, indent=2)
    )
    plot(curves, RESULTS / "patch_memory.png")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
