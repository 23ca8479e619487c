"""Patch-based (MCUNetV2) vs layer-by-layer peak SRAM (issue: patch-based inference).

    python benchmarks/patch_memory.py            # vww + MobileNetV2 w0.35@96 in QEMU, MobileNetV2 planning (~3 min)
    python benchmarks/patch_memory.py --no-qemu  # planning only

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

import compiler.schedule.patch as patch_mod  # noqa: E402
from compiler.core.ir import Graph, graph_macs  # noqa: E402
from compiler.models.builder import mobilenet_v2  # noqa: E402
from compiler.pipeline import CompileOptions, load_model, run_model  # noqa: E402
from compiler.planner import STACK_RESERVE, PlanOptions, plan_for  # noqa: E402
from compiler.schedule.halo import halo_cache_estimate  # noqa: E402
from compiler.schedule.layer import plan_layer  # noqa: E402
from compiler.schedule.patch import patch_candidates, plan_patch  # noqa: E402
from compiler.schedule.plan import Plan  # noqa: E402
from compiler.schedule.select import choose_plan, plan_peak  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
VWW = ROOT.parent / "shared" / "models" / "vww_96_int8.tflite"
TFLM_VWW_TOTAL = 103_680
MBV2_GOAL = 172_000  # MCUNetV2's patch-based peak for MobileNetV2 w1.0 @224 (kB = 1000 B)


def _detail(p: Plan) -> str:
    d = p.detail
    if p.schedule == "patch" and "stages" in d:
        return "stages " + "; ".join(d["stages"])
    if p.schedule == "patch":
        return f"split {d['split']}, grid {d['grid']}" + (", halo cache (columns)" if d.get("halo_cache") else "")
    return "in-place" if d.get("in_place") else "-"


def _scratch(g: Graph, core: str, board: str):
    from compiler.schedule.kernels_table import KernelOptions, kernel_calls, scratch_fn
    from compiler.target.boards import load_board

    return scratch_fn(kernel_calls(g, load_board(board).flash.size, KernelOptions(core=core)))


def vww_rows(qemu: bool, work: Path) -> tuple[list[dict], dict[str, list[int]]]:
    g = load_model(VWW)
    goal = int(0.40 * TFLM_VWW_TOTAL)  # --sram goal: the whole measured peak
    sf = _scratch(g, "cortex-m4", "stm32f405")
    rows = []
    curves = {}
    for label, kernels, schedule, halo in (
        ("layer-by-layer", "portable", "layer", True),
        ("layer-by-layer", "fast", "layer", True),
        ("patch-based", "portable", "patch", True),
        ("patch-based, no halo cache", "fast", "patch", False),
        ("patch-based", "fast", "patch", True),
    ):
        patch_mod.HALO_CACHE = halo  # the planner's default (the run below plans again)
        sram = goal if schedule == "patch" else None
        # the plan the compiler picks (compiler.planner.plan_for), as the run below does
        plan = plan_for(g, "stm32f405", PlanOptions(sram=sram, schedule=schedule, kernels=kernels))
        opts = CompileOptions(board="stm32f405", schedule=schedule, kernels=kernels, sram=sram)
        row = {
            "model": "vww_96_int8",
            "plan": label,
            "kernels": kernels,
            "detail": _detail(plan),
            "arena_bytes": plan.arena_bytes,
            "macs": plan.macs,
            "mac_overhead": round((plan.macs - graph_macs(g)) / graph_macs(g), 4),
            "tflm_arena_total": TFLM_VWW_TOTAL,
        }
        if schedule == "patch" and not plan.detail.get("halo_cache"):
            row["halo_cache"] = halo_cache_estimate(plan)
            row["halo_built"] = _halo_built(plan, sf if kernels == "fast" else None)
        if qemu:
            r = run_model(g, work / f"{label}-{kernels}".replace(" ", "_").replace(",", ""), opts, n_random=3)
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
        if kernels == "fast":
            curves[f"{label} ({_detail(plan)})"] = plan.live_bytes_per_step()
    patch_mod.HALO_CACHE = True
    return rows, curves


def _halo_built(p: Plan, scratch=None, x_bytes: int = 0) -> dict | None:
    """The same single-stage split and grid planned with the generated column caches."""
    if p.schedule != "patch" or len(p.stages) != 1 or p.detail.get("halo_cache"):
        return None
    st = p.stages[0]
    try:
        q = plan_patch(p.graph, st.steps[-1], st.grid, p.io, scratch=scratch, halo_cache=True)
    except ValueError:
        return None
    base = graph_macs(p.graph)
    return {"peak": plan_peak(q) - x_bytes, "macs": q.macs, "mac_overhead": round((q.macs - base) / base, 4)}


def mbv2_rows(width: float, res: int) -> list[dict]:
    g: Graph = mobilenet_v2(width, res)
    x_bytes = g.t(g.inputs[0]).nbytes
    base = graph_macs(g)
    t0 = time.time()
    layer = min((plan_layer(g, io="external"), plan_layer(g, io="external", in_place=True)), key=plan_peak)
    plain = plan_layer(g, io="external")
    single = patch_candidates(g, io="external", keep=10**6, second_stage=False, halo_cache=False)
    t1 = time.time()
    single_halo = patch_candidates(g, io="external", keep=10**6, second_stage=False, halo_cache=True)
    t_halo = round(time.time() - t1, 1)
    t1 = time.time()
    patches = patch_candidates(g, io="external", keep=10**6)
    secs = {"single": round(t1 - t0 - t_halo, 1), "halo": t_halo, "two": round(time.time() - t1, 1)}
    name = f"mobilenet_v2 w{width:g} @{res}"
    rows = []

    def row(label: str, p: Plan, which: str = "single") -> dict:
        r = {
            "model": name,
            "plan": label,
            "detail": _detail(p),
            "activation_peak_bytes": plan_peak(p) - x_bytes,
            "macs": p.macs,
            "mac_overhead": round((p.macs - base) / base, 4),
            "planning_s": secs[which],
        }
        if p.schedule == "patch" and not p.detail.get("halo_cache"):
            est = halo_cache_estimate(p)
            r["halo_cache"] = {k: {**v, "peak": v["peak"] - x_bytes} for k, v in est.items()}
            r["halo_built"] = _halo_built(p, x_bytes=x_bytes)
        return r

    rows.append(row("layer-by-layer", plain))
    if layer is not plain:
        rows.append(row("layer-by-layer + in-place", layer))
    rows.append(row("patch, one stage (smallest peak)", min(single, key=plan_peak)))
    cheap1 = [p for p in single if (p.macs - base) / base <= 0.15]
    if cheap1:
        rows.append(row("patch, one stage (smallest peak, MAC overhead <= 15%)", min(cheap1, key=plan_peak)))
    refs = {r["activation_peak_bytes"]: r for r in (rows[-2:] if cheap1 else rows[-1:])}
    for ref in refs.values():  # halo cache: fewest MACs at most at that peak
        peak = ref["activation_peak_bytes"] + x_bytes
        fit = [p for p in single_halo if plan_peak(p) <= peak]
        if fit:
            rows.append(
                row(
                    f"patch, one stage + halo cache (fewest MACs, peak <= {peak - x_bytes:,} B)",
                    min(fit, key=lambda p: (p.macs, plan_peak(p))),
                    "halo",
                )
            )
    rows.append(row("patch, up to two stages (smallest peak)", min(patches, key=plan_peak), "two"))
    cheap = [p for p in patches if (p.macs - base) / base <= 0.15]
    if cheap:
        label = "patch, up to two stages (smallest peak, MAC overhead <= 15%)"
        rows.append(row(label, min(cheap, key=plan_peak), "two"))
    if width == 1.0 and res == 224:
        fit = [p for p in patches if plan_peak(p) - x_bytes <= MBV2_GOAL]
        if fit:
            rows.append(row(f"patch (fewest MACs with peak <= {MBV2_GOAL:,} B)", min(fit, key=lambda p: p.macs), "two"))
    return rows


def mbv2_qemu_row(work: Path) -> dict:
    """MobileNetV2 w0.35 @96 (10 classes) on the F746 (Cortex-M7, fast kernels) in QEMU, with a
    budget just below every one-stage plan's peak: the planner takes a two-stage plan."""
    g = mobilenet_v2(0.35, 96, num_classes=10)
    sf = _scratch(g, "cortex-m7", "stm32f746g-disco")
    single = min(plan_peak(p) for p in patch_candidates(g, io="external", scratch=sf, second_stage=False))
    layer = plan_peak(choose_plan(g, 10**9, "layer", io="external", scratch=sf))
    # --sram bounds the whole peak; the plan gets it less STACK_RESERVE: a plan budget of single - 1
    opts = CompileOptions(board="stm32f746g-disco", schedule="patch", io="external", sram=single - 1 + STACK_RESERVE)
    r = run_model(g, work / "mbv2", opts, n_random=2)
    x_bytes = g.t(g.inputs[0]).nbytes
    return {
        "model": "mobilenet_v2 w0.35 @96",
        "board": "stm32f746g-disco (QEMU mps2-an500)",
        "layer_activation_peak_bytes": layer - x_bytes,
        "one_stage_activation_peak_bytes": single - x_bytes,
        "detail": "; ".join(r["schedule_detail"].get("stages", [])),
        "activation_peak_bytes": r["arena_bytes"] + g.t(g.outputs[0]).nbytes,
        "peak_sram_bytes": r["peak_sram_bytes"],
        "mac_overhead": r["mac_overhead"],
        "instructions": r["instructions"],
        "bit_exact": r["bit_exact"],
    }


def _halo_rows(rows: list[dict]) -> list[str]:
    out = []
    seen = set()
    for r in rows:
        h = r.get("halo_cache")
        if not h or (r["model"], r["detail"]) in seen:
            continue
        seen.add((r["model"], r["detail"]))
        key = "activation" if "activation_peak_bytes" in r else "arena"
        cells = [f"{h[k]['peak']:,} B, +{100 * h[k]['mac_overhead']:.1f} %" for k in ("recompute", "columns", "2d")]
        b = r.get("halo_built")
        cells.insert(2, f"{b['peak']:,} B, +{100 * b['mac_overhead']:.1f} %" if b else "-")
        out.append(f"| {r['model']} | {r['detail']} ({key}) | " + " | ".join(cells) + " |")
    return out


def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else "-"


def write_md(vww: list[dict], mbv2: list[dict], qemu: bool, mq: dict | None) -> str:
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
        "Kernels `fast`: the Cortex-M DSP kernels of `runtime_c/mt_nn_fast.h` wherever",
        "`compiler/schedule/kernels_table.py` picks them, in the patch stage's loop too "
        "(their scratch reserved by the plan).",
        "",
        "| plan | kernels | detail | arena B | peak SRAM B | % of TFLM | MACs | MAC overhead | instructions "
        "| bit-exact |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in vww:
        lines.append(
            f"| {r['plan']} | {r['kernels']} | {r['detail']} | {r['arena_bytes']:,} | {r['peak_sram_bytes']:,} | "
            f"{r['pct_of_tflm']} % | {r['macs']:,} | {100 * r['mac_overhead']:.1f} % | "
            f"{_n(r.get('instructions'))} | {r.get('bit_exact', '-')} |"
        )
    lines += [
        "",
        "## MobileNetV2 (builder, seeded random weights), planning",
        "",
        "Activation peak with the input image excluded (io=external: the image stays in the camera",
        "buffer), as MCUNetV2 reports it; its w1.0 @224 patch-based figure is 172 kB. A one-stage",
        "plan is bound by the layer-by-layer tail (28x28 inverted residuals: skip + 6x expanded",
        "tensor + output, 200,704 B; 175,616 B even with every op in place); a second patch stage",
        "over those blocks (`patch_candidates`, `_two_stage_recipes`) removes that floor.",
        "",
        "| model | plan | detail | activation peak B | MACs | MAC overhead | planning s |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in mbv2:
        lines.append(
            f"| {r['model']} | {r['plan']} | {r['detail']} | {r['activation_peak_bytes']:,} | {r['macs']:,} | "
            f"{100 * r['mac_overhead']:.1f} % | {r['planning_s']} |"
        )
    if mq:
        lines += [
            "",
            f"Two-stage plan in QEMU: {mq['model']} on {mq['board']}, fast kernels, budget just below every",
            "one-stage plan's peak:",
            "",
            "| model | layer peak B | best one-stage peak B | two-stage plan | activation peak B | "
            "peak SRAM B (+ input, static, stack) | MAC overhead | instructions | bit-exact |",
            "|---|---:|---:|---|---:|---:|---:|---:|---|",
            f"| {mq['model']} | {mq['layer_activation_peak_bytes']:,} | {mq['one_stage_activation_peak_bytes']:,} | "
            f"{mq['detail']} | {mq['activation_peak_bytes']:,} | {mq['peak_sram_bytes']:,} | "
            f"{100 * mq['mac_overhead']:.1f} % | {mq['instructions']:,} | {mq['bit_exact']} |",
        ]
    lines += [
        "",
        "## Halo caching (StreamNet)",
        "",
        "`compiler/schedule/halo.py` estimates the same plans with the halo kept instead of recomputed,",
        "as extra buffers live across each stage (re-placed): `columns` caches the columns the next",
        "patch of a row band shares, `2d` also the rows the next band shares (no MAC overhead left).",
        "`columns, built` is `plan_patch(..., halo_cache=True)` for the same split and grid: generated",
        "code (each patch computes only its new columns; row runs copied into / out of the caches;",
        "no in-place depthwise in the stage), bit-exact in the executor and in QEMU (vww row above).",
        "`patch_candidates` offers every single-stage plan with and without it; the front keeps it",
        "where it wins. Peak (vww: arena; MobileNetV2: activation peak) and MAC overhead.",
        "",
        "| model | plan | recompute (as built) | columns cache (estimate) | columns cache (built) "
        "| 2-D cache (estimate) |",
        "|---|---|---|---|---|---|",
        *_halo_rows(vww),
        *_halo_rows(mbv2),
        "",
    ]
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
        mq = mbv2_qemu_row(Path(tmp)) if qemu else None
    mbv2 = mbv2_rows(1.0, 224) + mbv2_rows(0.35, 144)
    md = write_md(vww, mbv2, qemu, mq)
    (RESULTS / "patch_memory.md").write_text(md)
    (RESULTS / "patch_memory.json").write_text(
        json.dumps({"vww": vww, "mobilenet_v2": mbv2, "mobilenet_v2_qemu": mq, "curves": curves}, indent=2)
    )
    plot(curves, RESULTS / "patch_memory.png")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
