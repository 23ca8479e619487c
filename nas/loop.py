"""The whole loop behind `microtile nas`: data -> supernet -> search -> fine-tune -> PTQ -> QEMU.

Every stage writes its result into OUT and is skipped when that result is there (resumable):

    OUT/supernet.pt       supernet checkpoint (per epoch)          nas.train.train_supernet
    OUT/study.db          the Optuna study (or --storage URL)      nas.search.run_search
    OUT/trials.json       every scored candidate
    OUT/pareto.md/.png    Pareto front: accuracy vs peak SRAM vs instructions
    OUT/winner.pt         the fine-tuned winner (standalone module) and its arch
    OUT/winner.onnx       float ONNX of the winner; OUT/fw/ its C project, ELF and report.json
    OUT/nas.json          summary: budgets, winner, accuracies (float, int8), QEMU report

Data: `--data` is an image folder (one subfolder per class), an .npz (x, y), or one of the
built-in tasks `digits` (scikit-learn) and `task[:N[:SIZE]]` (nas.data.small_object_task, seeded;
default 2400 scenes of 128 px).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compiler.errors import MicrotileError
from nas.data import Split, digits, load_dir, resize, small_object_task, split
from nas.search import Budget, best, pareto_front, run_search
from nas.space_cnn import CnnSpace
from nas.space_vit import VitSpace
from nas.train import (
    TrainConfig,
    accuracy,
    export_subnet,
    finetune,
    load_checkpoint,
    recalibrate_bn,
    train_supernet,
)

Log = Callable[[str], None]


@dataclass
class NasConfig:
    kind: str = "cnn"  # cnn | vit
    data: str = "digits"
    board: str = "stm32f405"
    out: Path = Path("build/nas")
    sram: int | None = None
    flash: int | None = None
    latency_ms: float | None = None
    epochs: int = 10
    finetune_epochs: int = 5
    trials: int = 30
    batch: int = 64
    seed: int = 0
    storage: str | None = None
    study: str | None = None  # default: named after the space and the budget (one study per budget)
    calib: int = 32  # PTQ calibration images
    qemu_inputs: int = 3  # held-out images run in the emulator
    int8_test: int = 200  # held-out images scored with the int8 reference executor
    space: dict[str, Any] = field(default_factory=dict)  # overrides of the space's fields
    augment: bool = False
    progress: bool = True
    run_firmware: bool = True


def load_data(spec: str, seed: int = 0) -> Split:
    if spec == "digits":
        return digits(32)
    if spec == "task" or spec.startswith("task:"):  # task[:N[:SIZE]]
        parts = [int(v) for v in spec.split(":")[1:]]
        n, size = (parts + [2400, 128][len(parts) :])[:2]
        return small_object_task(n, size, 4, seed)
    return load_dir(spec)


def default_space(kind: str, data: Split, overrides: dict[str, Any]) -> CnnSpace | VitSpace:
    """A space sized to the data: resolutions up to the images' size, classes and channels from it."""
    size, chans, k = data.x.shape[-1], data.x.shape[1], data.num_classes
    if kind == "cnn":
        res = tuple(sorted({max(16, int(round(size * f / 8)) * 8) for f in (0.6, 0.75, 0.875, 1.0)}))
        base: dict[str, Any] = {"in_chans": chans, "num_classes": k, "resolutions": res}
        if size <= 48:  # small images (digits): three stages, stride 16 in all
            base.update(stages=((16, 1, 2), (24, 2, 2), (32, 2, 1)), patch_stages=1, widths=(0.5, 0.75, 1.0))
        base.update(overrides)
        return CnnSpace(**{**CnnSpace().to_dict(), **base, "stages": tuple(tuple(s) for s in base.get(
            "stages", CnnSpace().stages))})  # fmt: skip
    res = tuple(r for r in (size // 2, 3 * size // 4, size) if r % 16 == 0 or size <= 32) or (size,)
    base = {"in_chans": chans, "num_classes": k, "resolutions": res}
    if size <= 32:
        base.update(patches=(4, 8), embed_dims=(16, 32), depths=(1, 2), heads=(1, 2), resolutions=(16, 32))
    base.update(overrides)
    d = {**VitSpace().to_dict(), **base}
    return VitSpace.from_dict(d)


def md(text: str) -> str:
    """`text` safe inside a Markdown table cell (the CNN's describe() separates stages with '|')."""
    return text.replace("|", "\\|")


def _b(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _markdown(records: list[dict[str, Any]], cfg: NasConfig) -> str:
    head = ("| trial | architecture | val acc | plan | peak SRAM (plan) B | layer B | patch B | token B | "
            "flash B | MACs | instr. (model) | ms |")  # fmt: skip
    lim = [f"sram {cfg.sram:,} B" if cfg.sram else "", f"flash {cfg.flash:,} B" if cfg.flash else "",
           f"latency {cfg.latency_ms} ms" if cfg.latency_ms else ""]  # fmt: skip
    budget = ", ".join(x for x in lim if x) or "the board's whole SRAM and flash"
    lines = [f"Pareto front on {cfg.board} (budget: {budget})", "",
             head, "|" + "---|" * 12]  # fmt: skip
    for r in records:
        pk = r["peak_by_kind"]
        lines.append(
            f"| {r['trial']} | {md(r['describe'])} | {r['accuracy']:.3f} | {r['schedule']} | {r['plan_peak']:,} | "
            f"{_b(pk.get('layer'))} | {_b(pk.get('patch'))} | {_b(pk.get('token'))} | {r['flash_bytes']:,} | "
            f"{r['macs']:,} | {r['instructions']:,} | {r['latency_ms']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot_front(records: list[dict[str, Any]], front: list[dict[str, Any]], path: Path, cfg: NasConfig) -> Path | None:
    """Accuracy vs plan peak (colour: instructions); front marked. None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    feas = [r for r in records if r["feasible"]]
    inf = [r for r in records if not r["feasible"]]
    if inf:
        ax.scatter([r["plan_peak"] / 1024 for r in inf], [r["accuracy"] for r in inf], c="lightgrey", s=14,
                   label="over budget")  # fmt: skip
    if feas:
        sc = ax.scatter([r["plan_peak"] / 1024 for r in feas], [r["accuracy"] for r in feas],
                        c=[r["instructions"] / 1e6 for r in feas], cmap="viridis", s=22, label="fits")  # fmt: skip
        fig.colorbar(sc, ax=ax, label="instructions (M, cost model)")
    if front:
        f = sorted(front, key=lambda r: r["plan_peak"])
        ax.plot([r["plan_peak"] / 1024 for r in f], [r["accuracy"] for r in f], "r.--", label="Pareto front")
    if cfg.sram:
        ax.axvline(cfg.sram / 1024, color="k", lw=0.8, ls=":", label="--sram")
    ax.set_xlabel("peak SRAM of the chosen plan (KiB)")
    ax.set_ylabel("val accuracy (inherited weights)")
    ax.set_title(f"NAS on {cfg.board}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def int8_accuracy(graph: Any, data: Split, res: int, n: int) -> float:
    """Top-1 of the int8 graph (numpy reference executor, bit-exact with the firmware) on the
    first `n` images of `data`."""
    from compiler.golden import reference
    from compiler.passes.quantize import quantize_input, to_ir_layout

    xs = resize(torch.from_numpy(data.x[:n]), res).numpy()
    xi = to_ir_layout(graph, xs)
    hits = 0
    for i in range(len(xi)):
        out = reference.run(graph, [quantize_input(graph, xi[i : i + 1])])[0]
        hits += int(int(np.argmax(out.reshape(-1))) == int(data.y[i]))
    return hits / max(len(xi), 1)


NAS_MARKER = ".microtile-nas"


def check_nas_out(out: Path, run_firmware: bool) -> None:
    """Refuse an OUT that microtile may not write into, before any work: a file, the source tree, or a
    non-empty folder that is not an earlier `microtile nas` run (no NAS_MARKER); with the firmware run,
    an OUT/fw that is not microtile's. Raises OutputError."""
    from compiler.outdir import OutputError, check_out_path, read_manifest

    check_out_path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / NAS_MARKER).exists():
        raise OutputError(f"--out {out}: folder is not empty and is not an earlier microtile nas run "
                          f"(no {NAS_MARKER}); choose an empty or new folder")  # fmt: skip
    fw = out / "fw"
    if run_firmware and fw.exists() and (not fw.is_dir() or (any(fw.iterdir()) and read_manifest(fw) is None)):
        raise OutputError(f"--out {out}: {fw} exists and was not made by microtile; the firmware goes there")


def run_nas(cfg: NasConfig, log: Log = lambda _m: None) -> dict[str, Any]:
    """The whole loop; returns the summary also written to OUT/nas.json."""
    from compiler.pipeline import CompileOptions, run_model
    from nas.score import STACK_MARGIN, plan_sram, quantize_module

    if cfg.kind not in ("cnn", "vit"):
        raise MicrotileError(f"unknown search space {cfg.kind!r}: expected cnn or vit")
    from compiler.target.boards import load_board

    load_board(cfg.board)
    out = cfg.out
    check_nas_out(out, cfg.run_firmware)
    torch.manual_seed(cfg.seed)
    data = load_data(cfg.data, cfg.seed)
    if data.num_classes < 2:
        raise MicrotileError(f"{cfg.data}: need at least two classes")
    out.mkdir(parents=True, exist_ok=True)  # only once the arguments and the data are good: no empty OUT left behind
    (out / NAS_MARKER).write_text("a microtile nas run: rerun the same command to resume\n")
    train, val, test = split(data, seed=cfg.seed)
    space = default_space(cfg.kind, data, cfg.space)
    log(f"[nas] {cfg.kind} space: {space}")
    log(f"[nas] data {cfg.data}: {len(train)} train / {len(val)} val / {len(test)} test, {data.num_classes} classes, "
        f"{data.x.shape[1:]}")  # fmt: skip
    tc = TrainConfig(epochs=cfg.epochs, batch=cfg.batch, seed=cfg.seed, augment=cfg.augment)
    net, history = train_supernet(cfg.kind, space, train, tc, out / "supernet.pt", log, cfg.progress)
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() > 0:
        return {"rank": torch.distributed.get_rank()}  # under torchrun: rank 0 searches, the others are done
    rng = np.random.default_rng(cfg.seed)
    bn_x = train.x[rng.permutation(len(train))[: min(512, len(train))]]
    calib_x = train.x[rng.permutation(len(train))[: cfg.calib]]
    budget = Budget(cfg.board, cfg.sram, cfg.flash, cfg.latency_ms)
    storage = cfg.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    study = cfg.study or f"{cfg.kind}-{cfg.board}-sram{cfg.sram}-flash{cfg.flash}-lat{cfg.latency_ms}"
    records = run_search(cfg.kind, space, net, val, bn_x, calib_x, budget, cfg.trials, storage, study, cfg.seed,
                         out, log, cfg.progress)  # fmt: skip
    (out / "trials.json").write_text(json.dumps(records, indent=1, default=str) + "\n")
    front = pareto_front(records)
    (out / "pareto.md").write_text(_markdown(front, cfg))
    plot_front(records, front, out / "pareto.png", cfg)
    win = best(records)
    summary: dict[str, Any] = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "space": space.to_dict(), "supernet_history": history, "trials": len(records),
        "feasible": sum(r["feasible"] for r in records), "pareto": [r["trial"] for r in front],
    }  # fmt: skip
    if win is None:
        summary["winner"] = None
        (out / "nas.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        raise MicrotileError(
            f"no candidate of {len(records)} fits the budget on {cfg.board} (sram {cfg.sram}, flash {cfg.flash}, "
            f"latency {cfg.latency_ms} ms); smallest peak seen {min((r['plan_peak'] for r in records), default=0):,} B"
        )
    arch = win["arch"]
    log(f"[nas] winner (trial {win['trial']}): {win['describe']}  val acc {win['accuracy']:.3f} (inherited)")
    wpath = out / "winner.pt"
    saved = load_checkpoint(wpath) if wpath.exists() else None
    if saved is not None and saved.get("arch") == arch:
        model = saved["module"]
        log(f"[nas] fine-tuned winner read from {wpath}")
    else:
        from nas.train import subnet

        model = subnet(cfg.kind, net, arch, bn_x)
        teacher_arch = space.largest()
        teacher = export_subnet(cfg.kind, net, teacher_arch)
        if cfg.kind == "cnn":
            recalibrate_bn(teacher, bn_x, teacher_arch["res"])
        tres = teacher_arch["res"]
        model = finetune(model, arch["res"], train, cfg.finetune_epochs, batch=cfg.batch, seed=cfg.seed,
                         teacher=lambda x: teacher(resize(x, tres)), augment=cfg.augment, log=log,
                         progress=cfg.progress)  # fmt: skip
        torch.save({"arch": arch, "module": model}, wpath)
    acc_float = accuracy(model, test, arch["res"])
    calib = resize(torch.from_numpy(calib_x), arch["res"]).numpy()
    g = quantize_module(model, calib, out / "winner.onnx")
    acc_int8 = int8_accuracy(g, test, arch["res"], cfg.int8_test)
    summary.update({"winner": win, "test_accuracy_float": acc_float,
                    f"test_accuracy_int8_first{min(cfg.int8_test, len(test))}": acc_int8})  # fmt: skip
    log(f"[nas] fine-tuned winner: held-out accuracy float {acc_float:.3f}, int8 {acc_int8:.3f}")
    if cfg.run_firmware:
        np.save(out / "test_inputs.npy", resize(torch.from_numpy(test.x[: cfg.qemu_inputs]), arch["res"]).numpy())
        opts = CompileOptions(board=cfg.board, sram=plan_sram(cfg.sram), widen=False)
        if cfg.sram is not None:
            log(f"[nas] firmware: plan peak <= {cfg.sram - STACK_MARGIN:,} B, as in the search (--sram {cfg.sram:,} B "
                f"less {STACK_MARGIN} B for stack); the compiler is given --sram {opts.sram:,} B, of which it keeps "
                "its own stack reserve")  # fmt: skip
        rep = run_model(g, out / "fw", opts, input_path=out / "test_inputs.npy", log=log)
        within = cfg.sram is None or rep["peak_sram_bytes"] <= cfg.sram
        summary["firmware"] = {k: rep.get(k) for k in ("schedule", "schedule_detail", "bit_exact", "max_abs_diff",
                                                      "inputs", "instructions", "instructions_per_mac",
                                                      "peak_sram_bytes", "arena_bytes", "stack_bytes",
                                                      "flash_bytes", "weights_bytes", "macs")}  # fmt: skip
        summary["firmware"]["estimated_instructions"] = win["instructions"]
        summary["firmware"]["within_sram_budget"] = within
        log(f"[nas] QEMU: bit_exact={rep['bit_exact']} peak SRAM {rep['peak_sram_bytes']:,} B "
            f"({'within' if within else 'OVER'} --sram) {rep['instructions']:,} instructions "
            f"(cost model said {win['instructions']:,})")  # fmt: skip
    (out / "nas.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
