"""NAS vs the best hand-scaled MobileNetV2 under 64 KB SRAM / 256 KB flash on the STM32F405.

    python benchmarks/nas_vs_mobilenet.py [--n 3000 --size 80 --epochs 6 --trials 12 --finetune-epochs 3]

Task: `nas.data.small_object_task` (seeded, made here: one 10-15 px shape among half the default
clutter in an 80 px scene, 4 classes; cached as OUT/task.npz), split 65 / 15 / 20 % into train /
val (search) / test (held out, never seen by the search or the choice of baseline). Sized so that
small nets learn it in a few CPU epochs while resolution still matters (at 48 px the objects are
6-9 px and the shapes blur; a from-scratch MobileNetV2 w0.35 gets about 0.43 at 40 px and 0.61 at
60 px after 4 epochs), and 80 px inputs do not fit 64 KB with the layer plan.

Protocol (the same for every model, so the architecture is the only difference):
1. one MCUNet-style supernet (`nas.space_cnn.CnnSpace`, resolutions up to --size) trained with
   the sandwich rule on train;
2. NAS: Optuna NSGA-II over the space, every candidate's int8 export planned by `choose_for` on the
   stm32f405 (peak plan SRAM + 2 KB stack margin <= 64 KB, constants <= 256 KB); winner = the most
   accurate feasible candidate on val (inherited weights);
3. hand-scaled MobileNetV2 = the space's k3/e6 full-depth architecture at width w x resolution r
   (a grid), each scored by the same planner under the same budget; per width the largest
   resolution that fits is the hand-scaled choice (MobileNet's own recipe: scale the input up
   until the budget binds), so the grid is walked from the largest resolution down per width;
4. every model (NAS winner, each hand-scaled MobileNetV2) is taken from the supernet with its
   inherited weights and fine-tuned the same way (--finetune-epochs, distillation from the
   largest subnet) with 3 seeds; held-out test accuracy, float and int8 (every seed, PTQ as
   deployed, run by the reference executor, which is bit-exact with the firmware); the best
   hand-scaled model is the one with the best int8 mean;
5. the NAS winner (seed 0) is compiled and run in QEMU: bit-exact, measured peak SRAM.

With --optimize-space N, step 2 is MCUNet's two-stage TinyNAS instead (`nas.space_opt`): N random
subnets per (resolution, width) of --space-res x --space-widths, scored by the planner under the
same budget; the space whose fitting subnets have the largest mean MACs is kept; a second supernet
(same epochs and sandwich rule, so its smallest subnet is that space's smallest) is trained over that
space only, and NSGA-II searches it. The MobileNetV2 grid still inherits from the first supernet;
--mbv2-in-space adds the MobileNetV2 of the chosen (resolution, width) taken from the second one.

Every stage caches its result in --out, so a rerun continues. Writes
benchmarks/results/nas_vs_mobilenet.md and .json (--run-seed S: an independent replicate, another
task draw, split, supernets and search, written to nas_vs_mobilenet_seedS.*).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from compiler.pipeline import CompileOptions, run_model  # noqa: E402
from nas.data import load_dir, resize, save_npz, small_object_task, split  # noqa: E402
from nas.loop import int8_accuracy, md, plot_front  # noqa: E402
from nas.score import STACK_MARGIN, CostModel, plan_sram, quantize_module  # noqa: E402
from nas.search import Budget, best, evaluate, pareto_front, run_search  # noqa: E402
from nas.space_cnn import CnnSpace, mobilenetv2_arch  # noqa: E402
from nas.space_opt import optimize_space, restrict  # noqa: E402
from nas.train import TrainConfig, accuracy, export_subnet, finetune, recalibrate_bn, subnet, train_supernet  # noqa: E402

BOARD = "stm32f405"
SRAM = 64 * 1024
FLASH = 256 * 1024
# Flash the model needs besides its constant data: its invoke code and the runtime kernels it links
# (measured from the linker map: 29,856 B for an r80 w0.75 NAS subnet, 6,360 B in model.o + 23,496 B of
# kernels); the constants as emitted (packed DSP filters included) must fit FLASH less this.
CODE_MARGIN = 32 * 1024


def cached(path: Path, fn):  # type: ignore[no-untyped-def]
    if path.exists():
        return json.loads(path.read_text())
    v = fn()
    path.write_text(json.dumps(v, indent=1, default=str) + "\n")
    return v


def summarise(label: str, rec: dict, runs: list[dict]) -> dict:
    """One table row: float and int8 held-out accuracy, mean and (population) std over the seeds."""
    f = [r["test_float"] for r in runs]
    q = [r["test_int8"] for r in runs if "test_int8" in r]
    row = {"label": label, "record": rec, "runs": runs, "mean": float(np.mean(f)), "std": float(np.std(f))}
    if len(q) == len(runs):
        row |= {"int8_mean": float(np.mean(q)), "int8_std": float(np.std(q))}
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--size", type=int, default=80)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--object-px", type=int, nargs=2, default=[10, 16], help="object width range (hi exclusive)")
    ap.add_argument("--clutter", type=float, default=0.5, help="clutter scale of small_object_task")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--n-random", type=int, default=2, help="random subnets per supernet step (sandwich rule)")
    ap.add_argument(
        "--no-distill",
        action="store_true",
        help="fine-tune every model on the labels only (no teacher forward: cheaper on a CPU)",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rank-epochs", type=int, default=0,
                    help="also pick a second NAS winner: every feasible candidate fine-tuned this many epochs (seed 0) "
                    "and ranked by val accuracy instead of inherited-weight val accuracy (0: off)")  # fmt: skip
    # the space's widths and the MobileNetV2 grid's (MobileNetV2 w >= 0.75 is over 256 KB of flash at any
    # resolution: 285,776 B at w0.75 in the previous run, so it cannot be the baseline)
    ap.add_argument("--widths", type=float, nargs="+", default=[0.35, 0.5])
    ap.add_argument("--optimize-space", type=int, default=0, metavar="N",
                    help="MCUNet's search-space optimisation first: N random subnets per (resolution, width) of "
                    "--space-res x --space-widths scored by the planner; the NAS supernet and search then run in "
                    "the space whose fitting subnets have the largest mean MACs (0: off, one supernet over the "
                    "whole space)")  # fmt: skip
    ap.add_argument("--space-res", type=int, nargs="+", default=[48, 56, 64, 72, 80])
    ap.add_argument("--space-widths", type=float, nargs="+", default=[0.35, 0.5, 0.75])
    ap.add_argument("--mbv2-in-space", action="store_true",
                    help="with --optimize-space: also fine-tune the MobileNetV2 of the chosen (resolution, width) "
                    "from the optimised-space supernet (if it fits): both arms inherit from one supernet")  # fmt: skip
    ap.add_argument("--mbv2-own-space", action="store_true",
                    help="with --optimize-space: also train a supernet over the best hand-scaled MobileNetV2's own "
                    "(resolution, width) space (same epochs, sandwich rule) and fine-tune it from there")  # fmt: skip
    ap.add_argument("--int8-test", type=int, default=0,
                    help="int8 test accuracy (every seed) on the first N held-out scenes (0: all of them)")  # fmt: skip
    ap.add_argument("--run-seed", type=int, default=0,
                    help="seeds the task's scenes, the split, the supernets, the space sampling and the search: an "
                    "independent replicate of the whole protocol (results to nas_vs_mobilenet_seedS.*; 0: the "
                    "default files)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench_nas")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    log = lambda m: print(f"[{time.time() - t0:6.0f} s] {m}", flush=True)  # noqa: E731
    S = args.run_seed
    task = out / (f"task_{args.n}_{args.size}_{args.classes}_{args.object_px[0]}-{args.object_px[1]}_{args.clutter}"
                  + (f"_s{S}" if S else "") + ".npz")  # fmt: skip
    if not task.exists():
        save_npz(small_object_task(args.n, args.size, args.classes, seed=S, object_px=tuple(args.object_px),
                                   clutter=args.clutter), task)  # fmt: skip
    data = load_dir(task)
    train, val, test = split(data, seed=S)
    res = tuple(r for r in (48, 64, 80, 96, 112, 128, 144, 160) if r <= args.size)
    space = CnnSpace(num_classes=args.classes, resolutions=res, widths=tuple(args.widths))
    log(f"space {space}\ntrain {len(train)} val {len(val)} test {len(test)}")
    cfg = TrainConfig(epochs=args.epochs, augment=True, n_random=args.n_random, seed=S)
    net, hist = train_supernet("cnn", space, train, cfg, out / "supernet.pt", log)
    rng = np.random.default_rng(S)
    bn_x = train.x[rng.permutation(len(train))[:512]]
    calib_x = train.x[rng.permutation(len(train))[:32]]
    budget = Budget(BOARD, SRAM, FLASH - CODE_MARGIN)
    nas_space, nas_net, space_rows, chosen, hist_opt = space, net, [], None, None
    if args.optimize_space:  # MCUNet Sec. 3.1: pick (r, w) by the MACs of the subnets that fit, then search in it
        full = CnnSpace(num_classes=args.classes, resolutions=tuple(args.space_res), widths=tuple(args.space_widths))
        grid_rw = (tuple(args.space_res), tuple(args.space_widths))
        chosen, space_rows = optimize_space(full, *grid_rw, args.optimize_space, BOARD, SRAM, budget.flash, S,
                                            out / "space_scores.json", log=log)  # fmt: skip
        nas_space = restrict(full, *chosen)
        log(f"optimised space: r{chosen[0]} w{chosen[1]}: {nas_space}")
        nas_net, hist_opt = train_supernet("cnn", nas_space, train, cfg, out / "supernet_opt.pt", log)
    records = run_search("cnn", nas_space, nas_net, val, bn_x, calib_x, budget, args.trials,
                         f"sqlite:///{(out / 'study.db').resolve()}",
                         "bench_opt" if args.optimize_space else "bench", S, out, log)  # fmt: skip
    win = best(records)
    assert win is not None, "no NAS candidate fits"
    cost = CostModel.load()

    def grid() -> list[dict]:
        rows = []
        for w in args.widths:  # per width, from the largest resolution down until one fits
            for r in sorted(res, reverse=True):
                rec = evaluate("cnn", space, net, mobilenetv2_arch(space, w, r), val, bn_x, calib_x, budget, cost, out)
                rec["feasible"] = rec["fits"] and rec["plan_peak"] + STACK_MARGIN <= SRAM
                log(f"MobileNetV2 w{w} r{r}: peak {rec['plan_peak']:,} ({rec['schedule']}) flash {rec['flash_bytes']:,}"
                    f" -> {rec['reason']}; inherited val acc {rec['accuracy']:.3f}")  # fmt: skip
                rows.append(rec)
                if rec["feasible"]:
                    break
        return rows

    baseline_grid = cached(out / "mbv2_grid.json", grid)
    hand = []
    for w in args.widths:
        fit = [r for r in baseline_grid if r["arch"]["width"] == w and r["feasible"]]
        if fit:
            hand.append(max(fit, key=lambda r: r["arch"]["res"]))
    teacher_arch = space.largest()
    teacher = recalibrate_bn(export_subnet("cnn", net, teacher_arch), bn_x, teacher_arch["res"])
    tres = teacher_arch["res"]

    distill = None if args.no_distill else (lambda x: teacher(resize(x, tres)))

    own_nets: dict[str, torch.nn.Module] = {}

    def tune(rec: dict, seed: int, label: str) -> dict:
        arch = rec["arch"]
        src = own_nets[rec["own_net"]] if "own_net" in rec else nas_net if rec.get("from_opt") else net
        m = finetune(subnet("cnn", src, arch, bn_x), arch["res"], train, args.finetune_epochs, seed=seed,
                     teacher=distill, augment=True)  # fmt: skip
        r = {"seed": seed, "test_float": accuracy(m, test, arch["res"])}
        if seed == args.seeds[0]:
            torch.save(m, out / f"tuned_{label.replace(' ', '_')}.pt")
        # the deployed model: PTQ int8, run by the reference executor (bit-exact with the firmware)
        g = quantize_module(m, resize(torch.from_numpy(calib_x), arch["res"]).numpy())
        r["test_int8"] = int8_accuracy(g, test, arch["res"], args.int8_test or len(test))
        log(f"  {rec['describe']} seed {seed}: test {r['test_float']:.3f}"
            + (f" int8 {r['test_int8']:.3f}" if "test_int8" in r else ""))  # fmt: skip
        return r

    win = {**win, "from_opt": bool(args.optimize_space)}
    models = [("NAS", win)] + [(f"MobileNetV2 w{r['arch']['width']} r{r['arch']['res']}", r) for r in hand]
    if args.optimize_space and args.mbv2_in_space:

        def in_space() -> dict:
            rec = evaluate("cnn", nas_space, nas_net, mobilenetv2_arch(nas_space, *chosen[::-1]), val, bn_x, calib_x,
                           budget, cost, out)  # fmt: skip
            rec["feasible"] = rec["fits"] and rec["plan_peak"] + STACK_MARGIN <= SRAM
            return rec

        rec = cached(out / "mbv2_in_space.json", in_space)
        if rec["feasible"]:
            label = f"MobileNetV2 w{chosen[1]} r{chosen[0]} (optimised-space supernet)"
            models.append((label, {**rec, "from_opt": True}))
        else:
            log(f"MobileNetV2 w{chosen[1]} r{chosen[0]} does not fit: {rec['reason']}")

    def rerank() -> list[dict]:
        ranked, seen = [], set()
        for rec in records:
            key = json.dumps(rec["arch"], sort_keys=True)
            if not rec["feasible"] or key in seen:
                continue
            seen.add(key)
            arch = rec["arch"]
            m = finetune(subnet("cnn", nas_net, arch, bn_x), arch["res"], train, args.rank_epochs, seed=0, augment=True)
            ranked.append({**rec, "ranked_accuracy": accuracy(m, val, arch["res"])})
            acc = ranked[-1]["ranked_accuracy"]
            log(f"ranked ({args.rank_epochs} fine-tune epochs): {rec['describe']}: val {acc:.3f}")
        return ranked

    if args.rank_epochs:  # the final fine-tune below restarts from inherited weights, as for every other model
        ranked = cached(out / f"ranked_{args.rank_epochs}.json", rerank)
        models.insert(
            1, (f"NAS ranked by {args.rank_epochs}-epoch fine-tune",
                {**max(ranked, key=lambda r: r["ranked_accuracy"]), "from_opt": bool(args.optimize_space)}),
        )  # fmt: skip
    rows = []
    for label, rec in models:
        key = out / f"tuned_{label.replace(' ', '_')}.json"
        runs = cached(key, lambda rec=rec, label=label: [tune(rec, s, label) for s in args.seeds])
        rows.append(summarise(label, rec, runs))

    hand_now = [r for r in rows if r["label"].startswith("MobileNetV2")]
    if args.optimize_space and args.mbv2_own_space and hand_now:  # the best hand-scaled model, NAS arm's treatment
        bh = max(hand_now, key=lambda r: (r.get("int8_mean", 0.0), r["mean"]))["record"]
        w, r_ = bh["arch"]["width"], bh["arch"]["res"]
        own_space = restrict(full, r_, w)
        name = f"supernet_mbv2_r{r_}_w{w}"
        own_nets[name], _ = train_supernet("cnn", own_space, train, cfg, out / f"{name}.pt", log)
        own = cached(out / f"{name}.json", lambda: evaluate("cnn", own_space, own_nets[name], mobilenetv2_arch(
            own_space, w, r_), val, bn_x, calib_x, budget, cost, out))  # fmt: skip
        own = {**own, "feasible": bh["feasible"], "own_net": name}
        label = f"MobileNetV2 w{w} r{r_} (own r{r_} w{w} supernet)"
        runs = cached(out / f"tuned_{label.replace(' ', '_')}.json", lambda: [tune(own, s, label) for s in args.seeds])
        rows.append(summarise(label, own, runs))

    def qemu() -> dict:
        arch = win["arch"]
        m = torch.load(out / "tuned_NAS.pt", weights_only=False)  # seed 0's fine-tuned winner, as scored above
        g = quantize_module(m, resize(torch.from_numpy(calib_x), arch["res"]).numpy(), out / "nas_winner.onnx")
        np.save(out / "qemu_inputs.npy", resize(torch.from_numpy(test.x[:3]), arch["res"]).numpy())
        rep = run_model(g, out / "fw", CompileOptions(board=BOARD, sram=plan_sram(SRAM), widen=False),
                        input_path=out / "qemu_inputs.npy", log=log)  # fmt: skip
        keep = ("schedule", "schedule_detail", "bit_exact", "max_abs_diff", "inputs", "instructions", "peak_sram_bytes",
                "arena_bytes", "stack_bytes", "flash_bytes", "weights_bytes", "macs")  # fmt: skip
        return {k: rep.get(k) for k in keep}

    fw = cached(out / "qemu.json", qemu)
    stem = "nas_vs_mobilenet" + (f"_seed{S}" if S else "")
    args.results.mkdir(parents=True, exist_ok=True)
    front = pareto_front(records)
    plot_front(records, front, args.results / f"{stem}.png", type("C", (), {"board": BOARD, "sram": SRAM})())
    hand_rows = [r for r in rows if r["label"].startswith("MobileNetV2")]
    best_hand = max(hand_rows, key=lambda r: (r.get("int8_mean", 0.0), r["mean"])) if hand_rows else None
    lines = [
        "# NAS vs hand-scaled MobileNetV2 on the procedural small-object task (STM32F405, 64 KB SRAM, 256 KB flash)",
        "",
        f"Command: `python benchmarks/nas_vs_mobilenet.py --n {args.n} --size {args.size} --classes {args.classes} "
        f"--object-px {args.object_px[0]} {args.object_px[1]} --clutter {args.clutter} --epochs {args.epochs} "
        f"--trials {args.trials} --finetune-epochs {args.finetune_epochs} --n-random {args.n_random}"
        + (" --no-distill" if args.no_distill else "")
        + (f" --rank-epochs {args.rank_epochs}" if args.rank_epochs else "")
        + (f" --optimize-space {args.optimize_space} --space-res {' '.join(map(str, args.space_res))} --space-widths "
           f"{' '.join(map(str, args.space_widths))}" if args.optimize_space else "")
        + (" --mbv2-in-space" if args.mbv2_in_space else "")
        + (" --mbv2-own-space" if args.mbv2_own_space else "")
        + (f" --run-seed {S}" if S else "")
        + f" --int8-test {args.int8_test} --widths {' '.join(map(str, args.widths))}` "
        f"({(time.time() - t0) / 60:.0f} min on a shared 2-core CPU, cached stages not counted).",
        f"Data: {args.n} seeded scenes of {args.size} px, {args.classes} classes (objects {args.object_px[0]}-"
        f"{args.object_px[1] - 1} px, clutter x{args.clutter}); {len(train)} train / {len(val)} val / "
        f"{len(test)} held-out test. Budget: plan peak + {STACK_MARGIN} B stack margin <= {SRAM:,} B; constants "
        f"+ {CODE_MARGIN:,} B code margin <= {FLASH:,} B (constants as the generated C stores them, DSP-packed "
        f"filters included). Supernet: {args.epochs} epochs (sandwich rule); search: {len(records)} candidates "
        f"({sum(r['feasible'] for r in records)} fit). Every model below: inherited weights + {args.finetune_epochs} "
        "fine-tune epochs" + (" (labels only)" if args.no_distill else " (+ distillation from the largest subnet)")
        + ", seeds " + ", ".join(map(str, args.seeds))
        + f"; sandwich rule with {args.n_random} random subnets per step."
        + ("" if not args.optimize_space else
           f" NAS: MCUNet's search-space optimisation first ({args.optimize_space} random subnets per (resolution, "
           f"width), random weights, each planned by `choose_for` under the same budget; the space whose fitting "
           f"subnets have the largest mean MACs wins: r{chosen[0]} w{chosen[1]}); then a second supernet over that "
           f"space only ({args.epochs} epochs, same sandwich rule: its smallest subnet is the space's smallest, at "
           f"r{chosen[0]}) and the NSGA-II search in it. The MobileNetV2 rows inherit from the first supernet "
           "(the whole space, resolutions " + ", ".join(map(str, res)) + ", widths "
           + ", ".join(map(str, args.widths)) + ") unless marked."),
        "",
        "| model | architecture | plan | plan peak B | flash B | MACs | instr. (cost model) | val acc (inherited) | "
        "float test acc per seed | float mean +- std | int8 test acc per seed | int8 mean +- std |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        rec = r["record"]
        per_seed = ", ".join(format(x["test_float"], ".3f") for x in r["runs"])
        i8_seed = ", ".join(format(x["test_int8"], ".3f") for x in r["runs"] if "test_int8" in x) or "-"
        i8s = f"{r['int8_mean']:.3f} +- {r['int8_std']:.3f}" if "int8_mean" in r else "-"
        lines.append(
            f"| {r['label']} | {md(rec['describe'])} | {rec['schedule']} | {rec['plan_peak']:,} | "
            f"{rec['flash_bytes']:,} | {rec['macs']:,} | {rec['instructions']:,} | {rec['accuracy']:.3f} | "
            f"{per_seed} | {r['mean']:.3f} +- {r['std']:.3f} | {i8_seed} | {i8s} |"
        )
    lines += ["", "MobileNetV2 grid (same planner, same budget; inherited weights, val accuracy):", "",
              "| width | res | plan | plan peak B | flash B | fits |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in baseline_grid:
        lines.append(f"| {r['arch']['width']} | {r['arch']['res']} | {r['schedule']} | {r['plan_peak']:,} | "
                     f"{r['flash_bytes']:,} | {'yes' if r['feasible'] else 'no: ' + r['reason'][:60]} |")  # fmt: skip
    if space_rows:
        lines += [
            "",
            f"Search-space optimisation (MCUNet Sec. 3.1; {args.optimize_space} random subnets per space, "
            "random weights; MACs of the subnets that fit 64 KB / 256 KB with the planner's chosen plan):",
            "",
            "| res | width | fit | mean MACs of fitting | p25 | p50 | p75 |",
            "|---|---|---|---|---|---|---|",
        ]
        for sr in space_rows:
            mark = " **chosen**" if (sr["res"], sr["width"]) == tuple(chosen) else ""
            lines.append(f"| {sr['res']} | {sr['width']}{mark} | {sr['fit']}/{sr['n']} | {sr['mean_macs']:,.0f} | "
                         f"{sr['p25_macs']:,} | {sr['p50_macs']:,} | {sr['p75_macs']:,} |")  # fmt: skip
    verdict = "n/a"
    if best_hand is not None:  # the best hand-scaled model is the one with the best deployed (int8) mean
        d = rows[0]["mean"] - best_hand["mean"]
        verdict = (f"float: NAS {rows[0]['mean']:.3f} vs best hand-scaled ({best_hand['label']}) "
                   f"{best_hand['mean']:.3f}: {d:+.3f} mean held-out accuracy")  # fmt: skip
        if "int8_mean" in rows[0] and "int8_mean" in best_hand:
            d8 = rows[0]["int8_mean"] - best_hand["int8_mean"]
            paired = [a["test_int8"] - b["test_int8"] for a, b in zip(rows[0]["runs"], best_hand["runs"], strict=True)]
            verdict += (f"; int8 (as deployed): NAS {rows[0]['int8_mean']:.3f} vs {best_hand['int8_mean']:.3f}: "
                        f"{d8:+.3f} (paired per seed: " + ", ".join(f"{x:+.3f}" for x in paired) + ")")  # fmt: skip
        for r in rows[1:]:
            if r["label"].startswith("NAS"):
                d = r["mean"] - best_hand["mean"]
                verdict += f"; {r['label']} {r['mean']:.3f}: {d:+.3f}"
    lines += ["", f"Result: {verdict}.", "",
              f"NAS winner in QEMU ({BOARD}, seed 0): bit-exact {fw['bit_exact']} over {fw['inputs']} test images, "
              f"schedule {fw['schedule']}, measured peak SRAM {fw['peak_sram_bytes']:,} B "
              f"({'within' if fw['peak_sram_bytes'] <= SRAM else 'OVER'} {SRAM:,}), {fw['instructions']:,} "
              f"instructions (cost model {win['instructions']:,}), model flash {fw['flash_bytes']:,} B "
              f"({'within' if fw['flash_bytes'] <= FLASH else 'OVER'} {FLASH:,}: code + data)."]  # fmt: skip
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.md").write_text("\n".join(lines) + "\n")
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "supernet_history": hist, "rows": rows,
               "grid": baseline_grid, "firmware": fw, "trials": records, "supernet_opt_history": hist_opt,
               "space_optimisation": {"chosen": chosen, "rows": space_rows}}  # fmt: skip
    (args.results / f"{stem}.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
