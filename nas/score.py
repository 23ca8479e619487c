"""Score a candidate with the compiler that will run it: int8 export -> `choose_for` -> numbers.

`score_module(module, example, calib, board, budget)`:
1. PyTorch -> ONNX -> int8 PTQ on `calib` (`compiler.frontend.torch.quantize_torch`);
2. `compiler.planner.choose_for(graph, board, PlanOptions(sram=..., widen=False))`: the plan the
   compiler would pick, and every candidate it weighed (layer, patch with its split and grid,
   token); the smallest peak of each plan kind is kept, so a table can show e.g. that only the
   token plan fits. Filters stay int8 (`widen=False`) so the flash figure is the one a
   `--flash` budget constrains;
3. flash = bytes of constant data the generated C keeps in flash for the chosen plan
   (`codegen.emit.render_model`: weights, biases, requantization records, and the DSP kernels'
   packed filters, which can be wider than the int8 weights); `weights_bytes` = the graph's int8
   constants alone. The firmware adds the model's invoke code and the runtime kernels (measured from
   the linker map after the run; about 30 KB for a MobileNetV2-like subnet on the M4);
4. instructions from `CostModel`: per step, instructions per MAC of its kernel (conv, depthwise,
   FC, batch matmul; DSP or portable) times the step's MACs (patch steps include the recomputed
   halo), per element read and written for ops without MACs, plus the planner's modelled loop overhead;
   latency = instructions / the board's clock (one instruction per cycle, an optimistic bound on
   the M4; the M7 dual-issues some pairs).

The cost model's coefficients come from emulator runs: `nas/calibrate.py` compiles a few subnets
of the spaces with per-step counters (`--profile`), runs them in QEMU (-icount shift=0: one
virtual ns per instruction) and fits instructions / work per kernel (a ratio of sums). They are
stored in `nas/cost_model.json` with the command, the models and the date.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codegen.emit import CodegenOptions, render_model
from compiler.core.ir import Graph, Op, op_macs
from compiler.errors import BudgetError, MicrotileError
from compiler.planner import STACK_RESERVE, PlanOptions, choose_for
from compiler.schedule.plan import Plan, Step
from compiler.schedule.select import plan_peak
from compiler.schedule.token import TokenStage
from compiler.target.boards import Board, load_board

COST_MODEL = Path(__file__).resolve().parent / "cost_model.json"
# Bytes the finished firmware adds to the plan's peak besides the arena: the stack high-water
# mark of invoke and the model's static data (about 0.6-1.5 KB measured in QEMU on the
# digits / task models); the search keeps plan peak <= --sram minus this so the measured peak
# SRAM of `run` stays within --sram.
STACK_MARGIN = 2048


def plan_sram(sram: int | None) -> int | None:
    """The `sram` to give PlanOptions / CompileOptions (a budget for the whole measured peak, of
    which the planner keeps `compiler.planner.STACK_RESERVE` for stack and static data) so that the
    plan's own peak is at most `sram - STACK_MARGIN` bytes; None stays None (the board's budget)."""
    return None if sram is None else sram - STACK_MARGIN + STACK_RESERVE


def step_key(step: Step) -> tuple[str, str]:
    """(cost-model key, work unit) of a plan step: key = op kind + ':' + kernel (C function of
    the fast kernel, or 'portable'); unit = 'mac' for ops with MACs, else 'elem' (elements read and written)."""
    k = step.kernel
    name = k.name if k is not None and k.dsp else "portable"
    return f"{step.op.kind}:{name}", ("mac" if step.macs > 0 else "elem")


def op_work(g: Graph, op: Op, macs: int) -> int:
    """MACs, or for an op without MACs the elements it reads and writes (non-constant tensors)."""
    if macs > 0:
        return int(macs)
    ts = [t for t in (*op.inputs, *op.outputs) if t and t in g.tensors and g.t(t).data is None]
    return int(sum(int(np.prod(g.t(t).shape)) for t in ts))


def step_work(g: Graph, step: Step) -> int:
    return op_work(g, step.op, step.macs)


@dataclass
class CostModel:
    """Instructions per unit of work per kernel key, per core ('cortex-m4', 'cortex-m7')."""

    coef: dict[str, dict[str, float]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def load(path: Path = COST_MODEL) -> CostModel:
        if not path.exists():
            return CostModel()
        d = json.loads(path.read_text())
        return CostModel(coef=d["coef"], provenance=d.get("provenance", {}))

    def save(self, path: Path = COST_MODEL) -> None:
        path.write_text(json.dumps({"coef": self.coef, "provenance": self.provenance}, indent=2, sort_keys=True) + "\n")

    def lookup(self, core: str, key: str, unit: str) -> float:
        """The coefficient of `key`; else the mean of the same op kind's kernels; else the
        core's mean over keys of the same unit; else 2.0 per MAC / 4.0 per element."""
        c = self.coef.get(core, {})
        if key in c:
            return c[key]
        kind = key.split(":")[0] + ":"
        same = [v for k, v in c.items() if k.startswith(kind)]
        if same:
            return float(np.mean(same))
        units = self.provenance.get("units", {})
        same_unit = [v for k, v in c.items() if units.get(k) == unit and not k.startswith("token_")]
        if same_unit:
            return float(np.mean(same_unit))
        return 2.0 if unit == "mac" else 4.0

    def instructions(self, plan: Plan, core: str) -> int:
        """Estimated instructions of one inference of `plan` on `core`."""
        g = plan.graph
        total = 0.0
        for st in plan.steps:
            if isinstance(st.stage, TokenStage):  # its ops, each with its kernel where the stage uses a fast one
                ks = st.kernels
                for op in st.stage.unit.ops:
                    m = op_macs(g, op)
                    name = ks[op.name].name if op.name in ks and ks[op.name].dsp else "portable"
                    total += self.lookup(core, f"{op.kind}:{name}", "mac" if m > 0 else "elem") * op_work(g, op, m)
                continue
            key, unit = step_key(st)
            total += self.lookup(core, key, unit) * step_work(g, st)
        total += self.lookup(core, "loop_overhead", "mac") * float(plan.loop_overhead)
        return int(total)


@dataclass
class Score:
    """What the compiler says about one candidate (bytes, instructions, ms)."""

    fits: bool
    reason: str
    schedule: str | None  # the chosen plan's kind (None when nothing fits)
    plan_peak: int  # the chosen plan's peak, or the smallest peak of any plan when nothing fits
    peak_by_kind: dict[str, int]  # smallest peak of each plan kind among the candidates
    flash_bytes: int  # constant bytes of the generated C (packed filters included)
    macs: int
    instructions: int
    latency_ms: float
    plan_detail: dict[str, Any] = field(default_factory=dict)
    sqnr_db: float | None = None
    weights_bytes: int = 0  # the graph's int8 constants alone

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def graph_flash(g: Graph) -> int:
    return int(sum(t.nbytes for t in g.constants()))


def score_graph(
    graph: Graph, board: Board | str, sram: int | None = None, flash: int | None = None,
    latency_ms: float | None = None, cost: CostModel | None = None, schedule: str = "auto",
) -> Score:  # fmt: skip
    """Score an int8 graph on `board` under the budgets (None: the board's own)."""
    b = load_board(board) if isinstance(board, str) else board
    cost = cost or CostModel.load()
    opts = PlanOptions(sram=plan_sram(sram), schedule=schedule, widen=False)
    chosen: Plan | None = None
    try:
        choice = choose_for(graph, b, opts)
        chosen, cands = choice.plan, choice.candidates
    except BudgetError as e:
        cands = getattr(e, "candidates", [])
        reason = str(e)
    by_kind: dict[str, int] = {}
    for p in cands:
        by_kind[p.schedule] = min(by_kind.get(p.schedule, 1 << 62), plan_peak(p))
    ref = chosen if chosen is not None else min(cands, key=plan_peak)
    weights = graph_flash(ref.graph)
    try:
        fl = render_model(ref, CodegenOptions())[1]
    except MicrotileError:  # a plan the generator cannot emit (several memory pools): the graph's constants
        fl = weights
    instr = cost.instructions(ref, b.core)
    ms = instr / b.cpu_clock_hz * 1000.0
    fits = chosen is not None
    if fits:
        reason = "fits"
        if flash is not None and fl > flash:
            fits, reason = False, f"flash {fl} B > budget {flash} B"
        elif fl + 16 * 1024 > b.flash.size:
            fits, reason = False, f"flash {fl} B + code does not fit the board's {b.flash.size} B"
        elif latency_ms is not None and ms > latency_ms:
            fits, reason = False, f"estimated latency {ms:.1f} ms > budget {latency_ms} ms"
    qz = graph.meta.get("quantization", {})
    return Score(fits=fits, reason=reason, schedule=chosen.schedule if chosen else None, plan_peak=plan_peak(ref),
                 peak_by_kind=by_kind, flash_bytes=fl, macs=int(ref.macs), instructions=instr,
                 latency_ms=round(ms, 3), plan_detail={k: str(v) for k, v in ref.detail.items()},
                 sqnr_db=qz.get("output_sqnr_db"), weights_bytes=weights)  # fmt: skip


def quantize_module(module: Any, calib: np.ndarray, onnx_path: Path | None = None) -> Graph:
    """The int8 IR graph of a standalone subnet (PTQ on `calib`, [N, C, r, r] float)."""
    from compiler.frontend.torch import quantize_torch

    if onnx_path is None:
        onnx_path = Path(tempfile.mkdtemp(prefix="nas_")) / "subnet.onnx"
    return quantize_torch(module, calib[:1], calib, onnx_path)


def score_module(
    module: Any, calib: np.ndarray, board: Board | str, sram: int | None = None, flash: int | None = None,
    latency_ms: float | None = None, cost: CostModel | None = None, onnx_path: Path | None = None,
) -> tuple[Score, Graph]:  # fmt: skip
    """Export + PTQ + score. `calib` at the subnet's resolution. Returns (score, int8 graph)."""
    g = quantize_module(module, calib, onnx_path)
    return score_graph(g, board, sram, flash, latency_ms, cost), g
