"""Run a microtile model in Renode: ``microtile run --emulator renode`` and a command-line script.

The firmware is linked for the real part (``render_board_files(target="part")``: the STM32F746 at
its own flash address 0x08000000, not QEMU mps2-an500's 0x0), built with the UART console and the
inputs compiled in (``-DMT_CONSOLE_UART -DMT_EMBEDDED_INPUTS``), and run by ``renode-test`` with
``renode/microtile.robot``, which checks ``MT_RESULT <i> rc=0`` for every input and ``MT_DONE``
and has Renode copy the console UART to a file. That file is parsed like QEMU's output and every
output byte is compared with the reference.

Renode is not installed on the machines this project's CI runs on; there this module says so
(``RenodeNotFound``) and QEMU is the executed path.

    python renode/run_renode.py MODEL --board stm32f405 --out DIR [--random N] [--seed S]
    python renode/run_renode.py MODEL --board stm32f746g-disco --out DIR --build-only
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

RENODE_DIR = Path(__file__).resolve().parent
ROOT = RENODE_DIR.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from compiler.core.ir import Graph  # noqa: E402
from compiler.errors import MicrotileError  # noqa: E402
from compiler.target.boards import load_board, write_board_files  # noqa: E402
from compiler.target.firmware import build_project, model_memory  # noqa: E402

ROBOT_SUITE = RENODE_DIR / "microtile.robot"
RENODE_TEST = "renode-test"
# Boards with a Renode machine script: renode/<board>-machine.resc (+ <board>.resc).
RENODE_BOARDS = ("stm32f405", "stm32f746g-disco", "stm32h743")
# Platform description each machine script loads (Renode's own files, relative to its install).
RENODE_PLATFORMS = {
    "stm32f405": "platforms/cpus/stm32f4.repl",
    "stm32f746g-disco": "platforms/cpus/stm32f746.repl",
    "stm32h743": "platforms/cpus/stm32h743.repl",
}
# The SVD each stock platform's `sysbus init` fetches over the network (None: it fetches none):
# the machine scripts replace that init (renode/README.md).
RENODE_STOCK_SVD = {"stm32f405": "STM32F40x.svd.gz", "stm32f746g-disco": "STM32F7x6.svd.gz", "stm32h743": None}
# Robot variables run_renode passes (all defined in microtile.robot's *** Variables ***).
ROBOT_VARIABLES = ("ELF", "BOARD", "INPUTS", "TIMEOUT", "UART_LOG", "SYSTICK_HZ", "MIPS")
# Emulated instructions per virtual microsecond: one per ns, QEMU's -icount shift=0 convention,
# so the firmware's ticks * 1e9 / MT_SYSTICK_CLOCK_HZ is the instruction count.
RENODE_MIPS = 1000
UART_FLAGS = "-DMT_CONSOLE_UART -DMT_EMBEDDED_INPUTS"
NOT_FOUND = (
    "renode not found ({tool} is not on PATH); the Renode scripts in renode/ are for machines with "
    "Renode installed; QEMU runs here (microtile run --emulator qemu)"
)


class RenodeNotFound(MicrotileError):
    """renode-test is not on PATH."""


def renode_path(path: Path | str) -> str:
    """A path as Renode's monitor reads it: '@' and every space escaped ('\\ ', its PathToken)."""
    return "@" + str(path).replace(" ", "\\ ")


def find_renode_test() -> str:
    path = shutil.which(RENODE_TEST)
    if path is None:
        raise RenodeNotFound(NOT_FOUND.format(tool=RENODE_TEST))
    return path


def build_for_renode(graph: Graph, out: Path, opts: Any, xs: np.ndarray, log=print) -> tuple[Any, Path]:
    """Compile ``graph`` into ``out`` for the real part with the UART console and ``xs`` embedded;
    returns (the ``CompileResult``, the ELF). ``opts`` is a ``compiler.pipeline.CompileOptions``."""
    from compiler.pipeline import compile_graph, write_embedded_inputs

    if opts.board not in RENODE_BOARDS:
        raise MicrotileError(
            f"no Renode machine for board {opts.board!r}; Renode scripts exist for {', '.join(RENODE_BOARDS)}"
        )
    opts.build = False
    res = compile_graph(graph, out, opts, log)
    write_board_files(res.board, out, stack_bytes=opts.stack_bytes, target="part")
    write_embedded_inputs(out, xs)
    extra = UART_FLAGS + (" -DMT_PROFILE" if opts.profile else "")
    log(f"[microtile] building firmware for the real {res.board.name} (UART console, {len(xs)} embedded inputs) ...")
    return res, build_project(out, extra_cflags=extra)


def renode_test_command(elf: Path, board: str, n_inputs: int, uart_log: Path, results: Path, timeout_s: int) -> list:
    variables = {
        "ELF": str(Path(elf).resolve()),
        "BOARD": board,
        "INPUTS": str(n_inputs),
        "TIMEOUT": str(timeout_s),
        "UART_LOG": str(Path(uart_log).resolve()),
        # SysTick of a "part" build counts at the part's core clock (boards/<board>.toml)
        "SYSTICK_HZ": str(load_board(board).systick_clock_for("part")),
        "MIPS": str(RENODE_MIPS),
    }
    assert set(variables) == set(ROBOT_VARIABLES)
    command = [find_renode_test(), "-r", str(Path(results).resolve())]
    for name, value in variables.items():
        command += ["--variable", f"{name}:{value}"]
    return [*command, str(ROBOT_SUITE)]


def run_suite(elf: Path, board: str, n_inputs: int, out: Path, timeout_s: int = 600) -> str:
    """Run microtile.robot on ``elf``; returns what the console UART printed. Raises
    MicrotileError when the suite fails (an input's rc != 0, no MT_DONE, a timeout)."""
    uart_log = out / "renode-uart.log"
    if uart_log.exists():
        uart_log.unlink()
    results = out / "renode-results"
    command = renode_test_command(elf, board, n_inputs, uart_log, results, timeout_s)
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s + 300, check=False)
    (out / "emulator.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise MicrotileError(f"Renode suite failed (renode-test exit {proc.returncode}); see {results}:\n{tail}")
    if not uart_log.exists():
        raise MicrotileError(f"Renode ran but wrote no UART log at {uart_log}")
    return uart_log.read_text(errors="replace")


def run_renode(
    model: Any,
    out: str | Path,
    opts: Any,
    input_path: str | Path | None = None,
    n_random: int = 3,
    seed: int = 0,
    log=print,
    calib: Any = None,
) -> dict[str, Any]:
    """``run_model`` for ``emulator="renode"``: build for the real part, run the Robot suite,
    compare every output byte with the reference, write and return the report."""
    from compiler.pipeline import (
        _write_report,
        compare_with_reference,
        load_model,
        make_inputs,
        parse_harness_output,
        peak_sram,
    )

    find_renode_test()  # before any work: say clearly that Renode is not here
    out = Path(out)
    graph = model if isinstance(model, Graph) else load_model(model, calib, log)
    xs = make_inputs(graph, input_path, n_random, seed)
    res, elf = build_for_renode(graph, out, opts, xs, log)
    board = res.board
    log(f"[microtile] running {len(xs)} input(s) in Renode ({RENODE_PLATFORMS[board.name]}) ...")
    console = run_suite(elf, board.name, len(xs), out)
    emu = parse_harness_output(console, graph.t(graph.outputs[0]).shape)
    if len(emu.outputs) != len(xs):
        raise MicrotileError(f"firmware printed {len(emu.outputs)} outputs for {len(xs)} inputs; see {out}")
    max_diff, mismatches = compare_with_reference(graph, xs, emu.outputs)
    report = json.loads((out / "report.json").read_text())
    model_mem, total_mem = model_memory(out, opts.prefix)
    stack = max(emu.stack)
    plan = res.plan
    report.update(
        {
            "emulator": f"renode {RENODE_PLATFORMS[board.name]} (linked for the real part, UART console)",
            "flash_bytes": model_mem.flash,
            "model_static_ram_bytes": model_mem.ram,
            "firmware_flash_bytes": total_mem.flash,
            "firmware_static_ram_bytes": total_mem.ram,
            "inputs": len(xs),
            "bit_exact": mismatches == 0,
            "mismatched_inputs": mismatches,
            "max_abs_diff": max_diff,
            # SysTick-derived as under QEMU: the machine scripts run 1000 MIPS with SysTick at the
            # build's clock, so ticks * 1e9 / clock counts instructions, up to Renode's time quantum.
            "instructions": int(np.median(emu.instructions)),
            "instructions_per_input": emu.instructions,
            "instructions_exact": False,
            "stack_bytes": stack,
            **peak_sram(plan, model_mem.ram, stack),
            "peak_sram_estimated": False,
        }
    )
    _write_report(out, report)
    return report


def main(argv: list[str] | None = None) -> int:
    from compiler.pipeline import CompileOptions, load_model, make_inputs

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--board", default="stm32f405", choices=RENODE_BOARDS)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--input", type=Path, default=None, help=".npy inputs (default: seeded random)")
    ap.add_argument("--random", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--build-only", action="store_true", help="build the Renode firmware, do not run it")
    args = ap.parse_args(argv)
    try:
        opts = CompileOptions(board=args.board)
        if args.build_only:
            graph = load_model(args.model)
            xs = make_inputs(graph, args.input, args.random, args.seed)
            _, elf = build_for_renode(graph, args.out, opts, xs)
            print(f"firmware   {elf}")
            print(
                f"renode     renode -e 'set elf {renode_path(elf.resolve())}' "
                f"-e 'include {renode_path(RENODE_DIR / args.board)}.resc'"
            )
            return 0
        report = run_renode(args.model, args.out, opts, args.input, args.random, args.seed)
    except MicrotileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: report[k] for k in ("model", "board", "bit_exact", "max_abs_diff", "emulator")}))
    return 0 if report["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
