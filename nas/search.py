"""Multi-objective search with Optuna's NSGA-II sampler, each candidate scored by the compiler.

Objectives: maximize top-1 accuracy on the validation split with weights inherited from the
supernet (BN statistics re-estimated), minimize the chosen plan's peak SRAM, minimize the cost
model's instructions. Constraints (NSGA-II's constrained domination, Deb et al. 2002; Optuna's
`Trial.set_constraint`): plan peak <= --sram (less `STACK_MARGIN`), flash <= --flash, estimated latency
<= --latency-ms; a candidate no plan fits gets the smallest peak any plan reaches.

The study lives in an Optuna RDB storage (default `sqlite:///OUT/study.db`); pass a shared URL
(e.g. postgresql://...) and the same OUT (the supernet checkpoint) to let several machines add
trials to one study. Re-running continues the study up to `n_trials` finished trials; a
candidate seen before is not scored twice (its numbers are read from the earlier trial).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.data import Split, resize
from nas.score import STACK_MARGIN, CostModel, score_module
from nas.train import accuracy, subnet

Log = Callable[[str], None]


@dataclass
class Budget:
    board: str
    sram: int | None = None  # bytes of peak SRAM (the plan's peak + STACK_MARGIN)
    flash: int | None = None  # bytes of constants
    latency_ms: float | None = None


def suggest_arch(trial: Any, kind: str, space: Any) -> dict[str, Any]:
    """A fixed set of categorical parameters (so NSGA-II's crossover sees one search space),
    mapped to a valid arch of `space` (redistribution's constraints applied)."""
    if kind == "cnn":
        red = trial.suggest_categorical("redistribute", list(space.redistribute))
        depths = []
        for i in range(len(space.stages)):
            v = trial.suggest_categorical(f"depth{i}", list(range(1, space.slots[i] + 1)))
            allowed = space.depth_choices(i, red)
            depths.append(min(max(v, min(allowed)), max(allowed)))
        n = sum(space.slots)
        return space.normalize({
            "res": trial.suggest_categorical("res", list(space.resolutions)),
            "width": trial.suggest_categorical("width", list(space.widths)),
            "redistribute": red, "depths": depths,
            "kernels": [trial.suggest_categorical(f"k{j}", list(space.kernels)) for j in range(n)],
            "expands": [trial.suggest_categorical(f"e{j}", list(space.expands)) for j in range(n)],
        })  # fmt: skip
    a = {
        "res": trial.suggest_categorical("res", list(space.resolutions)),
        "patch": trial.suggest_categorical("patch", list(space.patches)),
        "embed": trial.suggest_categorical("embed", list(space.embed_dims)),
        "depth": trial.suggest_categorical("depth", list(space.depths)),
        "heads": trial.suggest_categorical("heads", list(space.heads)),
        "mlp_ratio": trial.suggest_categorical("mlp_ratio", list(space.mlp_ratios)),
        "rank": trial.suggest_categorical("rank", list(space.rank_ratios)),
    }
    return space.normalize(a)  # ValueError: the trial is pruned


def evaluate(
    kind: str, space: Any, net: torch.nn.Module, arch: dict[str, Any], val: Split, bn_x: np.ndarray,
    calib_x: np.ndarray, budget: Budget, cost: CostModel, work: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Accuracy with inherited weights + the compiler's score of the int8 subnet (a JSON-able dict)."""
    m = subnet(kind, net, arch, bn_x)
    acc = accuracy(m, val, arch["res"])
    calib = resize(torch.from_numpy(calib_x), arch["res"]).numpy()
    sc, _ = score_module(m, calib, budget.board, budget.sram, budget.flash, budget.latency_ms, cost,
                         None if work is None else work / "candidate.onnx")  # fmt: skip
    return {"arch": arch, "describe": space.describe(arch), "accuracy": acc, **sc.to_dict()}


def constraints(r: dict[str, Any], budget: Budget) -> list[float]:
    """Optuna constraint values (<= 0 is feasible): SRAM, flash, latency, plus 1 when no plan fits."""
    sram = (r["plan_peak"] + STACK_MARGIN - budget.sram) if budget.sram is not None else 0.0
    fl = (r["flash_bytes"] - budget.flash) if budget.flash is not None else 0.0
    lat = (r["latency_ms"] - budget.latency_ms) if budget.latency_ms is not None else 0.0
    return [float(sram), float(fl), float(lat), 0.0 if r["schedule"] is not None else 1.0]


def run_search(
    kind: str, space: Any, net: torch.nn.Module, val: Split, bn_x: np.ndarray, calib_x: np.ndarray,
    budget: Budget, n_trials: int, storage: str, study_name: str = "nas", seed: int = 0,
    work: Path | None = None, log: Log = lambda _m: None, progress: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """Run (or continue) the study to `n_trials` finished trials; returns every finished trial's record."""
    import optuna
    from tqdm import tqdm

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cost = CostModel.load()
    sampler = optuna.samplers.NSGAIISampler(population_size=max(4, min(50, n_trials // 3)), seed=seed)
    study = optuna.create_study(
        study_name=study_name, storage=storage, load_if_exists=True, sampler=sampler,
        directions=["maximize", "minimize", "minimize"],
    )  # fmt: skip
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    seen = {t.user_attrs["key"]: t.user_attrs["record"] for t in done if "key" in t.user_attrs}
    left = max(0, n_trials - len(done))
    if done:
        log(f"[nas] study {study_name!r}: {len(done)} trials already finished, {left} to go")
    bar = tqdm(total=n_trials, initial=len(done), desc="candidates scored", disable=not progress)

    def objective(trial: Any) -> tuple[float, float, float]:
        try:
            arch = suggest_arch(trial, kind, space)
        except ValueError as e:
            raise optuna.TrialPruned(str(e)) from None
        key = json.dumps(arch, sort_keys=True)
        rec = seen.get(key)
        repeat = rec is not None
        if rec is None:
            rec = evaluate(kind, space, net, arch, val, bn_x, calib_x, budget, cost, work)
            seen[key] = rec
        trial.set_user_attr("key", key)
        trial.set_user_attr("record", rec)
        cons = constraints(rec, budget)
        trial.set_user_attr("constraints", cons)
        for name, value in zip(("sram", "flash", "latency", "no_plan"), cons, strict=True):
            trial.set_constraint(name, value)  # NSGA-II's constrained domination reads these
        log(f"[nas] trial {trial.number}: {rec['describe']}: acc {rec['accuracy']:.3f} peak {rec['plan_peak']:,} B "
            f"({rec['schedule'] or 'no plan fits'}) flash {rec['flash_bytes']:,} B ~{rec['instructions']:,} instr "
            f"-> {rec['reason']}" + (" (an architecture already scored: its record reused, not rescored)"
                                    if repeat else ""))  # fmt: skip
        bar.update(1)
        return rec["accuracy"], float(rec["plan_peak"]), float(rec["instructions"])

    if left:
        study.optimize(objective, n_trials=left)
    bar.close()
    out = []
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE and "record" in t.user_attrs:
            r = dict(t.user_attrs["record"])
            r["trial"] = t.number
            r["feasible"] = all(c <= 0 for c in t.user_attrs["constraints"])
            out.append(r)
    return out


def pareto_front(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feasible records not dominated in (accuracy up, plan peak down, instructions down)."""
    feas = [r for r in records if r["feasible"]]

    def dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
        ge = (
            a["accuracy"] >= b["accuracy"]
            and a["plan_peak"] <= b["plan_peak"]
            and a["instructions"] <= b["instructions"]
        )
        gt = a["accuracy"] > b["accuracy"] or a["plan_peak"] < b["plan_peak"] or a["instructions"] < b["instructions"]
        return ge and gt

    front = [r for r in feas if not any(dominates(o, r) for o in feas)]
    uniq: dict[str, dict[str, Any]] = {}
    for r in sorted(front, key=lambda r: (-r["accuracy"], r["plan_peak"])):
        uniq.setdefault(r["describe"], r)
    return list(uniq.values())


def best(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The feasible record of highest accuracy (then fewest instructions)."""
    feas = [r for r in records if r["feasible"]]
    return min(feas, key=lambda r: (-r["accuracy"], r["instructions"])) if feas else None
