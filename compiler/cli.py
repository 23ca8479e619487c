"""The `microtile` command line.

  microtile boards                                  list the boards
  microtile plan MODEL --board B [--sram N]         show the candidate plans
  microtile compile MODEL --board B --out DIR       write (and build) the C project
  microtile run MODEL --board B --out DIR           ... and run it in QEMU, compare with the reference
  microtile nas --space cnn --data DIR --board B --out DIR   search the network under the budget (nas/)

Errors in the user's input print one line `microtile: error: ...` and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, NoReturn

from compiler.errors import MicrotileError

EPILOG = """\
examples:
  microtile boards
  microtile plan ../shared/models/vww_96_int8.tflite --board stm32f405
  microtile compile model.tflite --board stm32f746g-disco --out build/vww
  microtile run model.tflite --board stm32f405 --out build/vww --random 5
  microtile run model.tflite --board stm32f405 --out build/vww --input images.npy --profile
  microtile run cnn.onnx --calib calib.npy --board stm32f405 --out build/cnn

Sizes (--sram, --stack): bytes, or K/KiB = 1024 B, M/MiB = 1,048,576 B (64K = 65,536).
KB and MB are refused as ambiguous; zero and negative sizes too.

--sram N bounds the whole peak SRAM that `run` measures: the plan (arena + any input/output
buffer kept outside it) + the model's static data + the stack of invoke. Planning keeps
1,024 B of N for the stack and static data; after the build the stack is bounded from GCC's
call graph (-fcallgraph-info) and compile refuses a project whose plan + static + stack
bound exceeds N. Without --sram the plan may use the board's SRAM less the stack region,
the harness heap and a small runtime reserve.

Latency in the summary is an estimate: instructions / the board's clock, as if every
instruction took one cycle (a real core needs more: wait states, multi-cycle loads).
"""


_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1 << 20, "mib": 1 << 20}


def _size(text: str) -> int:
    """A byte count: digits, or with K/KiB (x 1024) or M/MiB (x 1,048,576). KB and MB are
    refused (1000 or 1024?), as are zero, negatives and fractions of a byte."""
    m = re.fullmatch(r"\s*([-+]?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r} (e.g. 200000, 256K, 320KiB)")
    number, unit = m.group(1), m.group(2).lower()
    if unit in ("kb", "mb"):
        whole = number.lstrip("+")
        raise argparse.ArgumentTypeError(
            f"{text!r} is ambiguous (1000 or 1024?): write {whole}K or {whole}KiB for x 1024, or the bytes"
            if unit == "kb"
            else f"{text!r} is ambiguous (10^6 or 2^20?): write {whole}M or {whole}MiB for x 2^20, or the bytes"
        )
    if unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"unknown unit in {text!r}: use no unit (bytes), K/KiB or M/MiB")
    value = float(number) * _UNITS[unit]
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number of bytes")
    return int(value)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("microtile")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    """argparse with microtile's error convention: one line `microtile: error: ...`, exit 2
    (argparse's own prints the whole usage block first)."""

    def error(self, message: str) -> NoReturn:
        sub = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        hint = f"microtile {sub} --help" if sub else "microtile --help"
        self.exit(2, f"microtile: error: {message} (see {hint})\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="microtile",
        description="TinyML compiler: int8 models to self-contained C for STM32, checked in an emulator.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"microtile {_version()}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    sub.add_parser("boards", help="list the boards microtile can target")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("model", help="model file: int8 .tflite, int8 QDQ .onnx, or float .onnx with --calib")
        sp.add_argument(
            "--board", default="stm32f405", help="target board (default: stm32f405; see `microtile boards`)"
        )
        sp.add_argument(
            "--sram",
            type=_size,
            default=None,
            metavar="BYTES",
            help="SRAM budget for the whole measured peak: plan + static data + stack; 96K = 96KiB = 98304 "
            "(KB/MB refused as ambiguous; default: board SRAM less stack and runtime)",
        )
        sp.add_argument(
            "--schedule",
            default="auto",
            choices=["auto", "layer", "patch", "token"],
            help="execution schedule (default: auto = the cheapest plan that fits)",
        )
        sp.add_argument(
            "--io",
            default="arena",
            choices=["arena", "external"],
            help="input/output buffers inside the arena (default) or kept by the caller",
        )
        sp.add_argument(
            "--calib",
            type=Path,
            default=None,
            metavar="NPY",
            help="calibration data for float ONNX models (.npy of N inputs, or a folder of .npy): int8 PTQ",
        )
        sp.add_argument(
            "--eval",
            type=Path,
            default=None,
            metavar="NPY",
            help="held-out inputs (like --calib) for the top-1 agreement and SQNR of the int8 model vs float",
        )

    sp = sub.add_parser(
        "plan",
        help="show the candidate execution plans and their peak SRAM",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(sp)
    sp.add_argument("--dump", action="store_true", help="print every buffer and step of the chosen plan")

    for name, helptext in (
        ("compile", "write the C project (and build it when arm-none-eabi-gcc is available)"),
        ("run", "compile, build, run in the emulator and compare every output byte with the reference"),
    ):
        sp = sub.add_parser(name, help=helptext, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        common(sp)
        sp.add_argument(
            "--out",
            required=True,
            type=Path,
            help="output folder: new, empty, or one microtile wrote before (it lists its files in "
            ".microtile-manifest.json and only ever replaces or deletes those); not inside microtile's source tree",
        )
        sp.add_argument(
            "--force",
            action="store_true",
            help="write into a non-empty folder microtile did not make: add the project beside your files, "
            "never deleting or overwriting them",
        )
        sp.add_argument(
            "--prefix", default="model", help="C identifier: symbol prefix and file name (default: model)"
        )
        sp.add_argument("--stack", type=_size, default=None, metavar="BYTES", help="stack reserved on the board")
        sp.add_argument("--profile", action="store_true", help="per-layer instruction counters in the firmware")
        sp.add_argument(
            "--kernels",
            default="fast",
            choices=["fast", "portable"],
            help="fast: Cortex-M DSP kernels where they apply (default); portable: plain C kernels only",
        )
        sp.add_argument(
            "--no-widen",
            dest="widen",
            action="store_false",
            help="keep fast-kernel filters int8 in flash (default: pre-widen to int16 while flash allows)",
        )
        if name == "compile":
            sp.add_argument("--no-build", action="store_true", help="only write the project")
        else:
            sp.add_argument(
                "--emulator",
                default="qemu",
                choices=["qemu", "renode"],
                help="qemu (default; installed by .ci/setup.sh) or renode (needs `renode` on PATH; renode/README.md)",
            )
            sp.add_argument(
                "--input",
                type=Path,
                default=None,
                metavar="X.npy|X.npz",
                help="inputs to run: an array (N, *shape) or one input (shape); .npz: arrays named after the "
                "model's input. float32/64 is quantized with the input's scale; integer arrays are int8 values "
                "as they are. NaN/inf, other dtypes, empty arrays and a wrong shape are refused before building",
            )
            sp.add_argument(
                "--input-layout",
                default="model",
                choices=["model", "ir"],
                help="layout of --input: model = the model file's own (NCHW for ONNX images, default); "
                "ir = microtile's NHWC",
            )
            sp.add_argument(
                "--random",
                type=int,
                default=None,
                metavar="N",
                help="number of seeded random inputs when --input is not given (default 3)",
            )
            sp.add_argument("--seed", type=int, default=0, help="seed of the --random inputs (default 0)")
    try:  # nas/ is a separate package (torch is imported only when `nas` runs)
        from nas.cli import add_parser as add_nas_parser
    except ImportError:
        return p
    add_nas_parser(sub, _size)
    return p


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def _summary(report: dict[str, Any]) -> str:
    lines = [
        f"model      {report['model']}  ->  {report['board']}  (schedule: {report['schedule']}, io: {report['io']})",
        f"MACs       {report['macs']:,}",
        f"arena      {_fmt_bytes(report['arena_bytes'])}   (this plan's lower bound "
        f"{_fmt_bytes(report['arena_lower_bound_bytes'])}: its largest live set)",
        f"flash      {_fmt_bytes(report.get('flash_bytes'))}   (weights {_fmt_bytes(report['weights_bytes'])})",
    ]
    if "quantization" in report:
        qz = report["quantization"]
        from compiler.passes.quantize import summary_line

        lines.append(
            f"quantized  int8 PTQ on {qz['calibration_samples']} calibration inputs; {summary_line(qz)} "
            f"vs {qz['float_reference']} (per-layer table above, report.json)"
        )
    fast = report.get("kernels", {}).get("fast", {})
    if fast:
        n = sum(fast.values())
        lines.append(
            f"kernels    {n} layer(s) on Cortex-M DSP kernels ({report['kernels']['widened_filter_bytes']:,} B of "
            "int16 filters), the rest portable C"
        )
    else:
        lines.append("kernels    portable C")
    detail = report.get("schedule_detail") or {}
    if detail:
        lines.append("plan       " + ", ".join(f"{k}={v}" for k, v in detail.items())[:160])
    if "bit_exact" in report:
        lines += [
            f"stack      {_fmt_bytes(report['stack_bytes'])} (painted high-water mark during invoke)",
            f"peak SRAM  {_fmt_bytes(report['peak_sram_bytes'])} (arena + I/O outside it + static + stack)",
            f"instr.     {report['instructions']:,} per inference"
            + (f", {report['instructions_per_mac']} per MAC" if report.get("instructions_per_mac") is not None else ""),
            f"latency    ~{report['latency_ms_estimate']:.2f} ms at {report['cpu_clock_hz'] / 1e6:g} MHz (estimate: "
            "instructions / clock; a real core needs more cycles than instructions)",
            f"emulator   {report['emulator']}",
            f"bit-exact  {'yes' if report['bit_exact'] else 'NO'} over {report['inputs']} input(s), "
            f"max |diff| {report['max_abs_diff']}",
        ]
    else:
        lines.append(f"peak SRAM  {_fmt_bytes(report['peak_sram_bytes'])} (estimate, stack not included)")
    return "\n".join(lines)


# What `microtile plan`'s detail keys mean (compiler/schedule/{layer,patch,token,pools}.py write them).
PLAN_DETAIL_LEGEND = {
    "split": "patch plans (MCUNetV2): the op where the patch-by-patch stage ends; the rest runs layer by layer",
    "grid": "patches of that stage, rows x columns",
    "stages": "patch plans: each stage's first..last op and grid; token plans: the blocks run token by token",
    "halo_cache": "columns: overlapping input columns are cached between neighbouring patches, not recomputed",
    "loop_overhead": "MAC-equivalents charged for calling every stage op once per patch or token group; "
    "the choice adds them to the MACs ('overhead' is the MACs alone)",
    "in_place": "ops that overwrite their input (depthwise, elementwise) instead of taking a new buffer",
    "group": "token plans (MCUFormer): tokens per group the MLP and projections run on",
    "qblock": "token plans: query rows per attention block",
    "cost": "token plans: MACs plus loop_overhead, what the choice compares",
    "pools": "bytes used per memory region when the plan is spread over the board's pools",
    "main_pool": "the pool holding the graph's inputs and outputs",
}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except MicrotileError as e:
        print(f"microtile: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resume = "; rerun the same command to resume" if getattr(args, "cmd", None) == "nas" else ""
        print(f"\nmicrotile: interrupted{resume}", file=sys.stderr)  # on its own line, below any progress bar
        return 130
    except BrokenPipeError:  # `microtile plan ... | head -3`: the reader left; stop quietly like other tools
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not raise again
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the pipe


def _dispatch(args: argparse.Namespace) -> int:
    from compiler import pipeline
    from compiler.target.boards import list_boards, load_board

    if args.cmd == "boards":
        for b in list_boards():
            tag = "" if b.real_part else "  [emulator only, not a real part]"
            act = [m for m in b.pools("activations", target="part") if m.speed in ("tcm", "sram")]
            spread = (
                f" of {sum(m.size for m in act) // 1024} KiB in {len(act)} regions" if len(act) > 1 else ""
            )
            print(
                f"{b.name:20s} {b.core:10s} flash {b.flash.size // 1024:>5d} KiB  "
                f"SRAM arena {b.sram.size // 1024:>4d} KiB{spread}  QEMU {b.qemu_machine}{tag}"
            )
            print(f"{'':20s} {b.description}")
            for m in b.memories:
                print(f"{'':20s}   {m.describe()}")
        return 0

    board = load_board(args.board)  # unknown board: clear error before reading the model
    sram = getattr(args, "sram", None)
    if args.cmd == "plan" and sram is not None and sram > board.sram.size:  # compile/run refuse such a plan
        _log(
            f"warning: --sram {sram} B is more than {board.name}'s SRAM arena ({board.sram.size} B): the plan is "
            "made for that budget, and one that uses more than the arena will not fit the part"
        )
    if args.cmd == "nas":
        from nas.cli import main_from_args

        return main_from_args(args, _log)
    if args.cmd == "plan":
        from compiler.errors import BudgetError
        from compiler.planner import STACK_RESERVE, PlanOptions, choose_for, plan_budget
        from compiler.schedule.select import binding_step, plan_peak

        board = load_board(args.board)
        graph = pipeline.load_model(args.model, args.calib, _log, board=args.board, eval_data=args.eval)
        popts = PlanOptions(sram=args.sram, schedule=args.schedule, io=args.io)
        chosen = None
        failure: BudgetError | None = None
        try:
            choice = choose_for(graph, board, popts)
            plans, budget, chosen = choice.candidates, choice.budget, choice.plan
        except BudgetError as e:
            failure = e
            plans = getattr(e, "candidates", [])
            budget = plan_budget(board, popts)
        base = min((p.macs for p in plans), default=0) or 1
        share = f" (--sram {args.sram:,} B less {STACK_RESERVE:,} B for stack and static data)" if args.sram else ""
        print(f"{graph.name} on {board.name}: plan budget {budget:,} B{share}")
        print(
            f"  {'schedule':10s} {'peak B':>10s} {'MACs':>12s} {'overhead':>8s}  fits  binds at / detail"
            "   (* = the plan compile/run pick)"
        )
        for p in sorted(plans, key=plan_peak):
            i, what = binding_step(p)
            mark = "*" if p is chosen else " "
            print(
                f"{mark} {p.schedule:10s} {plan_peak(p):>10,d} {p.macs:>12,d} "
                f"{(p.macs - base) / base:>7.1%}  {'yes ' if plan_peak(p) <= budget else 'no  '}  step {i} {what}"
            )
            detail = ", ".join(f"{k}={v}" for k, v in p.detail.items() if k != "mac_overhead")
            for line in textwrap.wrap(detail, width=100):
                print(f"{'':14s}{line}")
        shown = {k for p in plans for k in p.detail if k in PLAN_DETAIL_LEGEND}
        if shown:
            print("  detail:")
            for k in (k for k in PLAN_DETAIL_LEGEND if k in shown):
                for j, line in enumerate(textwrap.wrap(PLAN_DETAIL_LEGEND[k], width=100)):
                    print(f"    {k if j == 0 else '':13s} {line}")
        if failure is not None:
            raise failure
        if args.dump and chosen is not None:
            from compiler.plan_plot import plan_text

            print()
            print(plan_text(chosen), end="")
        return 0

    opts = pipeline.CompileOptions(
        board=args.board,
        sram=args.sram,
        schedule=args.schedule,
        io=args.io,
        prefix=args.prefix,
        profile=args.profile,
        stack_bytes=args.stack,
        kernels=args.kernels,
        widen=args.widen,
        build=not getattr(args, "no_build", False),
        force=args.force,
    )
    if args.cmd == "run" and args.input is not None and args.random is not None:
        raise MicrotileError("--input and --random are alternatives: pass one (the inputs to run)")
    if args.cmd == "compile":
        res = pipeline.compile_model(args.model, args.out, opts, log=_log, calib=args.calib, eval_data=args.eval)
        print(_summary(res.report))
        print(f"project    {args.out}  (make -C {args.out}; report.json)")
        return 0
    report = pipeline.run_model(
        args.model,
        args.out,
        opts,
        input_path=args.input,
        n_random=3 if args.random is None else args.random,
        seed=args.seed,
        emulator=args.emulator,
        log=_log,
        calib=args.calib,
        input_layout=args.input_layout,
        eval_data=args.eval,
    )
    print(_summary(report))
    if report.get("per_step"):
        top = sorted(report["per_step"], key=lambda s: -s["instructions"])[:5]
        print(
            "top steps  "
            + "; ".join(f"{s['name']} {s['instructions']:,} (~{s['ms_estimate']:.3f} ms)" for s in top)
        )
    print(f"report     {args.out / 'report.json'}")
    return 0 if report["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
