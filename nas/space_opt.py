"""Search-space optimisation before the search (MCUNet's TinyNAS, first stage).

Lin et al., "MCUNet: Tiny Deep Learning on IoT Devices", NeurIPS 2020, Sec. 3.1 "Automated search
space optimization": a memory budget admits very different models depending on the input
resolution r and width multiplier w of the space. For each candidate space (r, w), sample random
subnets, keep those that satisfy the memory constraints, and look at the distribution (CDF) of
their FLOPs; pick the space whose satisfying models have the largest FLOPs (MCUNet compares the
spaces by the mean FLOPs of the satisfying models, Fig. 3), because "the design space that is more
likely to produce high FLOPs models under the memory constraint gives higher model capacity, thus
more likely to achieve high accuracy". This needs no trained supernet: weights do not change a
model's plan peak, flash or MACs, so each sampled subnet is scored with random weights.

Here the constraint is the compiler's own: each sample is exported int8 and planned by
`compiler.planner.choose_for` on the board (`nas.score.score_module`: plan peak + `STACK_MARGIN`
<= sram, int8 constants <= flash), and FLOPs are the network's MACs (`compiler.core.ir.graph_macs` of
the int8 graph, without a patch plan's recomputed halo, so the plan kind does not inflate them).
One addition to MCUNet's rule, off by default: `min_fit` drops spaces where under that fraction of
the samples fit (a space where almost nothing fits leaves the search mostly infeasible candidates).

Scores are cached in a JSON file keyed by (board, budgets, arch), so a rerun rescores nothing.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compiler.core.ir import graph_macs
from nas.score import STACK_MARGIN, CostModel, score_module
from nas.space_cnn import CnnSpace, CnnSupernet, export_cnn

Log = Callable[[str], None]


def restrict(space: CnnSpace, res: int, width: float) -> CnnSpace:
    """The sub-space of `space` with one input resolution and one width multiplier (every other
    elastic dimension kept: kernel, expand, depth, redistribution)."""
    return dataclasses.replace(space, resolutions=(res,), widths=(width,))


def sample_space(
    space: CnnSpace, n: int, board: str, sram: int, flash: int, seed: int = 0,
    cache: dict[str, Any] | None = None, cost: CostModel | None = None, log: Log = lambda _m: None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Score `n` random subnets of `space` (random weights) with the planner under the budget.

    Returns per sample {"arch", "fits" (plan peak + STACK_MARGIN <= sram and int8 constants <= flash),
    "plan_peak" (bytes, the chosen plan's), "min_peak" (bytes, the smallest of any plan), "flash_bytes"
    (bytes), "macs" (network MACs), "schedule"}. `cache` (a dict,
    updated in place) maps a key of board, budgets and arch to an earlier sample's record."""
    cache = {} if cache is None else cache
    cost = cost or CostModel.load()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    net = CnnSupernet(space).eval()
    res = space.resolutions[0]
    calib = np.random.default_rng(seed).random((2, space.in_chans, res, res), dtype=np.float32)
    out = []
    for _ in range(n):
        arch = space.sample(rng)
        key = json.dumps({"board": board, "sram": sram, "flash": flash, "arch": arch}, sort_keys=True)
        if key not in cache:
            sc, g = score_module(export_cnn(net, arch), calib[:, :, : arch["res"], : arch["res"]], board,
                                 sram, flash, None, cost)  # fmt: skip
            fits = sc.fits and sc.plan_peak + STACK_MARGIN <= sram
            cache[key] = {"arch": arch, "fits": fits, "plan_peak": sc.plan_peak, "flash_bytes": sc.flash_bytes,
                          "macs": int(graph_macs(g)), "schedule": sc.schedule,
                          "min_peak": min(sc.peak_by_kind.values(), default=sc.plan_peak)}  # fmt: skip
            r = cache[key]
            log(f"[space] {space.describe(arch)}: peak {r['plan_peak']:,} B ({r['schedule'] or 'no plan'}) "
                f"flash {r['flash_bytes']:,} B {r['macs']:,} MACs fits {fits}")  # fmt: skip
        out.append(cache[key])
    return out


def space_stats(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Fraction fitting, mean and quartiles of the MACs of the fitting samples (0 when none fit)."""
    macs = sorted(s["macs"] for s in samples if s["fits"])
    q = (lambda p: int(np.percentile(macs, p))) if macs else (lambda p: 0)
    return {"n": len(samples), "fit": len(macs), "fit_fraction": len(macs) / max(len(samples), 1),
            "mean_macs": float(np.mean(macs)) if macs else 0.0, "p25_macs": q(25), "p50_macs": q(50),
            "p75_macs": q(75), "macs_sorted": macs}  # fmt: skip


def optimize_space(
    space: CnnSpace, resolutions: tuple[int, ...], widths: tuple[float, ...], n: int, board: str, sram: int,
    flash: int, seed: int = 0, cache_path: Path | None = None, min_fit: float = 0.0, log: Log = lambda _m: None,
) -> tuple[tuple[int, float], list[dict[str, Any]]]:  # fmt: skip
    """MCUNet's space optimisation: for each (resolution, width), `n` random subnets scored by the
    planner on `board` under `sram` / `flash` bytes; returns ((res, width) whose fitting subnets have
    the largest mean MACs, one stats row per space). Ties go to the earlier space in the grid order.

    Raises ValueError when no space has a fitting sample (with at least `min_fit` of them fitting)."""
    cache: dict[str, Any] = {}
    if cache_path is not None and cache_path.exists():
        cache = json.loads(cache_path.read_text())
    rows = []
    cost = CostModel.load()
    for r in resolutions:
        for w in widths:
            samples = sample_space(restrict(space, r, w), n, board, sram, flash, seed, cache, cost, log)
            if cache_path is not None:
                cache_path.write_text(json.dumps(cache) + "\n")
            st = space_stats(samples)
            rows.append({"res": r, "width": w, **st})
            log(f"[space] r{r} w{w}: {st['fit']}/{st['n']} fit, mean MACs of those {st['mean_macs']:,.0f}")
    ok = [row for row in rows if row["fit"] > 0 and row["fit_fraction"] >= min_fit]
    if not ok:
        raise ValueError(f"no (resolution, width) space has a subnet that fits {sram} B SRAM / {flash} B flash")
    top = max(ok, key=lambda row: row["mean_macs"])  # max keeps the first of equal means
    return (top["res"], top["width"]), rows
