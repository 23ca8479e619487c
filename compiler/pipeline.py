"""The road a model travels: load -> passes -> plan -> C project -> ELF -> emulator -> report.

`compile_model` and `run_model` are what the CLI calls; tests call them directly.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codegen.emit import CodegenOptions, render_model
from compiler.core.ir import Graph
from compiler.errors import BoardFitError, BudgetError, MicrotileError, ModelError
from compiler.golden import reference
from compiler.inputs import InputError, check_input, check_inputs, read_input_file
from compiler.outdir import OutDir, adopt
from compiler.passes.io_quant import strip_io_quant
from compiler.plan_plot import plan_text, plot_plan
from compiler.planner import (  # noqa: F401  default_budget: re-exported for benchmarks
    RUNTIME_RESERVE,
    STACK_RESERVE,
    PlanOptions,
    choose_for,
    default_budget,
    plan_budget,
)
from compiler.resources import data_dir
from compiler.schedule.kernels_table import FLASH_CODE_RESERVE, kernel_summary
from compiler.schedule.plan import Plan
from compiler.schedule.pools import main_pool_bytes
from compiler.schedule.select import plan_peak
from compiler.target.boards import Board, load_board, render_board_files
from compiler.target.emulator import run_qemu
from compiler.target.firmware import build_project, find_toolchain, model_memory
from compiler.target.stack import CALLGRAPH_FLAGS, stack_bound

RUNTIME_DIR = data_dir("runtime_c")

Log = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class CompileOptions:
    board: str = "stm32f405"
    sram: int | None = None  # budget for the whole peak (plan + static + stack); default: board SRAM less reserves
    schedule: str = "auto"
    io: str = "arena"  # "arena": input/output inside the arena; "external": caller's buffers
    prefix: str = "model"
    profile: bool = False
    stack_bytes: int | None = None
    build: bool = True  # build the ELF when arm-none-eabi-gcc is available
    # "fast": DSP kernels where the core has them (compiler/schedule/kernels_table.py); "portable"
    kernels: str = "fast"
    widen: bool = True  # pre-widen fast-kernel filters to int16 while flash allows (flash for speed)
    force: bool = False  # write into a non-empty folder microtile did not make (never deleting its files)


# file names of the generated project besides <prefix>.c/.h: a prefix must not collide with them
_PROJECT_NAMES = {"main", "startup", "mt_board", "mt_inputs", "sources", "plan", "report", "input", "runtime"}
_C_KEYWORDS = set(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Bool _Complex _Imaginary".split()
)


def check_prefix(prefix: str) -> None:
    """`--prefix` must be a C identifier (it names `<prefix>_invoke` and `<prefix>.c`), not a C
    keyword nor a name the project already uses. Raises MicrotileError."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", prefix or ""):
        raise MicrotileError(
            f"--prefix {prefix!r}: must be a C identifier (letters, digits, _; not starting with a digit; "
            "at most 32 characters)"
        )
    if prefix in _C_KEYWORDS or prefix in _PROJECT_NAMES or prefix.startswith("mt_"):
        raise MicrotileError(f"--prefix {prefix!r}: a C keyword or a name the generated project uses itself")


@dataclass
class CompileResult:
    graph: Graph
    plan: Plan
    board: Board
    out: Path
    report: dict[str, Any] = field(default_factory=dict)
    elf: Path | None = None


def load_model(
    path: str | Path,
    calib: str | Path | np.ndarray | None = None,
    log: Log = _quiet,
    board: str | None = None,
    eval_data: str | Path | np.ndarray | None = None,
) -> Graph:
    """Read a model; a float model (ONNX) is quantized with `calib` (.npy file, folder of .npy, or array),
    after checking that its int8 weights fit `board`'s flash (BoardFitError before the calibration);
    top-1 agreement and SQNR with the float model are measured on `eval_data` when given."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        from compiler.frontend.tflite import load_tflite

        graph = load_tflite(path)
    elif suffix == ".onnx":
        try:
            from compiler.frontend.onnx import load_onnx  # type: ignore[import-not-found]
        except ImportError:
            raise ModelError(f"{path}: ONNX import is not available in this build") from None
        graph = load_onnx(path)
        for note in graph.meta.get("import_notes", []):
            log(f"[microtile] {note}")
    else:
        raise ModelError(f"{path}: unknown model format {suffix!r} (expected .tflite or .onnx)")
    from compiler.passes import quantize as ptq
    from compiler.passes.validate import validate

    validate(graph, str(path))  # declared shapes, buffers, attributes, quantization: before any planning

    if ptq.is_float_graph(graph):
        if calib is None:
            shape = graph.meta.get("onnx_input_shapes", {}).get(graph.inputs[0], graph.t(graph.inputs[0]).shape)
            raise ModelError(
                f"{path}: float model; int8 post-training quantization needs calibration data: pass --calib X.npy "
                f"(N samples of shape {tuple(shape[1:])}) or --calib DIR (a folder of .npy files)"
            )
        if board is not None:
            fb = load_board(board)
            need = ptq.int8_flash_bytes(graph)
            if need > fb.flash.size:
                raise BoardFitError(
                    f"{path}: int8 weights need {need} B of flash; {fb.name} has {fb.flash.size} B "
                    "(checked before quantization)"
                )
        data = calib if isinstance(calib, np.ndarray) else ptq.load_calibration(calib, graph)
        if isinstance(calib, np.ndarray):
            data = ptq.to_ir_layout(graph, calib, "calibration array")
        ev = None
        if eval_data is not None:
            ev = (
                ptq.to_ir_layout(graph, eval_data, "eval array")
                if isinstance(eval_data, np.ndarray)
                else ptq.load_calibration(eval_data, graph)
            )
        graph = ptq.quantize_for_compile(graph, data, log=log, eval_data=ev)
    elif calib is not None:
        log(f"[microtile] {path.name} is already quantized: --calib ignored")
    return strip_io_quant(graph)


def plan_options(opts: CompileOptions) -> PlanOptions:
    """The planning part of the compile options (what `plan_for` decides on)."""
    return PlanOptions(
        sram=opts.sram,
        schedule=opts.schedule,
        io=opts.io,
        kernels=opts.kernels,
        widen=opts.widen,
        stack_bytes=opts.stack_bytes,
    )


def _weights_bytes(graph: Graph) -> int:
    return sum(t.nbytes for t in graph.constants())


def compile_graph(
    graph: Graph,
    out: Path,
    opts: CompileOptions,
    log: Log = _quiet,
    outdir: OutDir | None = None,
    final: bool = True,
) -> CompileResult:
    """Plan `graph`, write the C project into `out` (the rules of `compiler/outdir.py`), build it
    when asked and the toolchain is there; report.json is written last. With `final=False`
    (`run_model`), the caller finishes the folder `outdir` (or removes it on failure).

    Raises BudgetError, BoardFitError, OutputError, ToolchainError (one-line MicrotileErrors)."""
    check_prefix(opts.prefix)
    board = load_board(opts.board)
    budget = plan_budget(board, plan_options(opts))
    share = f", --sram {opts.sram} B less {STACK_RESERVE} B for stack and static data" if opts.sram else ""
    log(f"[microtile] {graph.name}: {len(graph.ops)} ops, planning for {board.name} (plan budget {budget} B{share})")
    choice = choose_for(graph, board, plan_options(opts))
    for note in choice.notes:
        log(f"[microtile] {note}")
    plan = choice.plan
    graph = plan.graph
    # the caller's arena (+ I/O outside it); other memory pools are checked by the linker
    peak = plan_peak(plan) - plan.arena_bytes + main_pool_bytes(plan)
    stack = board.stack_bytes if opts.stack_bytes is None else opts.stack_bytes
    ram_needed = peak + stack + board.heap_bytes + RUNTIME_RESERVE
    if ram_needed > board.sram.size:
        raise BoardFitError(
            f"model needs {peak} B of SRAM for activations plus {stack} B stack and "
            f"{board.heap_bytes + RUNTIME_RESERVE} B runtime, {ram_needed} B in all; {board.name} has "
            f"{board.sram.size} B"
        )
    weights = _weights_bytes(graph)
    # an external flash for weights (the F746 kit's QSPI, emulated): constants beyond internal flash
    ext = next((m for m in board.pools("weights") if m.speed == "external-flash"), None)
    if weights > board.flash.size + (ext.size if ext is not None else 0):
        raise BoardFitError(f"model weights need {weights} B of flash; {board.name} has {board.flash.size} B")
    files, const_bytes = render_model(plan, CodegenOptions(prefix=opts.prefix, profile=opts.profile))
    weight_pools: tuple[str, ...] = ()
    if const_bytes + FLASH_CODE_RESERVE > board.flash.size and ext is not None:  # leave room for the code
        spill = (board.flash.size - FLASH_CODE_RESERVE, ext.name)
        files, const_bytes = render_model(
            plan, CodegenOptions(prefix=opts.prefix, profile=opts.profile, weights_spill=spill)
        )
        weight_pools = (ext.name,)
        log(f"[microtile] constants beyond {spill[0]} B of internal flash go to {ext.name} ({ext.size} B)")
    if const_bytes + 16 * 1024 > board.flash.size:
        raise BoardFitError(
            f"model constants need {const_bytes} B of flash plus code; {board.name} has {board.flash.size} B"
        )
    od = outdir if outdir is not None else OutDir(out, force=opts.force)
    try:
        od.begin()
        extra_pools = tuple(n for n in plan.detail.get("pools", {}) if n != plan.detail.get("main_pool"))
        board_files = render_board_files(
            board, stack_bytes=opts.stack_bytes, pools=extra_pools, weight_pools=weight_pools
        )
        for name, text in board_files.items():
            od.write(name, text)
        for name, text in files.items():
            od.write(name, text)
        for f in sorted(RUNTIME_DIR.glob("*.[ch]")):
            od.copy(f, f"runtime/{f.name}")
        od.write("plan.txt", plan_text(plan))  # buffers, steps and the arena timeline
        for name, data in plot_plan(plan, budget).items():  # plan.png/svg when matplotlib is installed
            od.write(name, data)
        report: dict[str, Any] = {
            "model": graph.name,
            "board": board.name,
            "schedule": plan.schedule,
            "schedule_detail": plan.detail,
            "mac_overhead": plan.detail.get("mac_overhead", 0.0),
            "io": plan.io,
            "macs": plan.macs,
            "arena_bytes": plan.arena_bytes,
            "arena_lower_bound_bytes": plan.lower_bound,
            "sram_budget_bytes": opts.sram if opts.sram is not None else budget,
            "plan_budget_bytes": budget,
            "weights_bytes": weights,
            "const_bytes": const_bytes,
            **({"external_weights_pool": weight_pools[0]} if weight_pools else {}),
            **({"memory_pools": dict(plan.detail["pools"])} if "pools" in plan.detail else {}),  # pool -> bytes
            "kernels": kernel_summary(plan),
            "model_inputs": io_spec(graph, graph.inputs),
            "model_outputs": io_spec(graph, graph.outputs),
        }
        if "quantization" in graph.meta:
            report["quantization"] = graph.meta["quantization"]
        result = CompileResult(graph=graph, plan=plan, board=board, out=out, report=report)
        # a sample input (seeded random int8) so `make run` works on the project as written
        od.write("input.bin", _input_bytes(make_input_sets(graph, None, n_random=1, seed=0)))
        od.write_sources()
        if opts.build:
            try:
                find_toolchain()
                have_gcc = True
            except MicrotileError:
                have_gcc = False
                log("[microtile] arm-none-eabi-gcc not found: project written, not built")
            if have_gcc:
                log("[microtile] building firmware with arm-none-eabi-gcc ...")
                extra = CALLGRAPH_FLAGS + (" -DMT_PROFILE" if opts.profile else "")
                result.elf = build_project(out, extra_cflags=extra)
                model_mem, total_mem = model_memory(out, opts.prefix)
                report["flash_bytes"] = model_mem.flash
                report["model_static_ram_bytes"] = model_mem.ram
                report["firmware_flash_bytes"] = total_mem.flash
                report["firmware_static_ram_bytes"] = total_mem.ram
                report["stack_bound_bytes"] = stack_bound(out / "build", f"{opts.prefix}_invoke")
                _check_whole_budget(plan, opts.sram, model_mem.ram, report["stack_bound_bytes"])
                _check_stack(opts.stack_bytes, report["stack_bound_bytes"])
        report.setdefault("flash_bytes", const_bytes)
        report.update(peak_sram(plan, report.get("model_static_ram_bytes", 0), stack=0))
        report["peak_sram_estimated"] = True  # stack added when measured by `run`
        if final:  # compile alone: the project is done; `run` finishes it after the emulator
            od.finish(_report_text(report))
        return result
    except BaseException:
        if final:
            od.fail()
        raise


def _check_stack(stack: int | None, bound: int | None) -> None:
    """An explicit `--stack` below the stack bound of the built invoke would overflow into the
    arena (and the painted-stack measurement would read a wrong figure). Raises BoardFitError."""
    if stack is not None and bound is not None and stack < bound:
        raise BoardFitError(
            f"--stack {stack} B is less than invoke's stack bound of {bound} B (GCC call graph, "
            f"compiler/target/stack.py): give --stack {(bound + 7) // 8 * 8} or more"
        )


def _check_whole_budget(plan: Plan, sram: int | None, static_ram: int, bound: int | None) -> None:
    """`--sram N` bounds the whole peak: plan + static data + the stack bound of the built
    firmware (compiler/target/stack.py) must fit N. Raises BudgetError."""
    if sram is None:
        return
    if bound is None:
        raise BudgetError(
            f"--sram {sram} B: the stack of invoke has no static bound (recursion or a dynamic frame in the call graph)"
        )
    total = peak_sram(plan, static_ram, bound)["peak_sram_bytes"]
    if total > sram:
        raise BudgetError(
            f"--sram {sram} B: the plan needs {plan_peak(plan)} B + {static_ram} B static data + {bound} B stack "
            f"(bound from the call graph) = {total} B; raise --sram by {total - sram} B"
        )


def peak_sram(plan: Plan, static_ram: int, stack: int) -> dict[str, int]:
    """Peak SRAM as DESIGN.md defines it: the arena, input/output buffers kept outside it, the
    model's own .data/.bss and the stack high-water mark; and the same without the input
    (meaningful with io="external": the image stays in the caller's buffer)."""
    outside = plan.input_bytes + plan.output_bytes if plan.io == "external" else 0
    peak = plan.arena_bytes + outside + static_ram + stack
    return {
        "peak_sram_bytes": peak,
        "peak_sram_bytes_excluding_input": peak - (plan.input_bytes if plan.io == "external" else 0),
    }


def _report_text(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=_json_default) + "\n"


def _write_report(out: Path, report: dict[str, Any]) -> None:
    """Replace report.json of a finished microtile folder (the Renode runner's last step)."""
    tmp = out / "report.json.tmp"
    tmp.write_text(_report_text(report))
    tmp.replace(out / "report.json")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def compile_model(
    model: str | Path,
    out: str | Path,
    opts: CompileOptions,
    log: Log = _quiet,
    calib: str | Path | None = None,
    eval_data: str | Path | None = None,
) -> CompileResult:
    check_prefix(opts.prefix)
    od = OutDir(out, force=opts.force)  # refuse an unsafe --out before reading the model
    graph = load_model(model, calib, log, board=opts.board, eval_data=eval_data)
    return compile_graph(graph, Path(out), opts, log, outdir=od)


# -- run ----------------------------------------------------------------------------------


def make_inputs(
    graph: Graph,
    input_path: str | Path | np.ndarray | None,
    n_random: int = 3,
    seed: int = 0,
    layout: str = "model",
    arrays: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """[N, *IR input shape] inputs of a single-input model, of its dtype (int8, uint8 or int16):
    from a .npy/.npz file or an array, checked and converted by `compiler/inputs.py` (`layout`:
    "model" = the model file's layout, "ir" = NHWC), or `n_random` seeded random ones over the
    dtype's whole range. `arrays`: the file already read by `read_input_file`. Raises InputError."""
    if input_path is None:
        return _random_inputs(graph, n_random, seed)[0]
    if isinstance(input_path, np.ndarray):
        return check_input(graph, {"": input_path}, "input array", layout)
    if arrays is None:
        arrays = read_input_file(input_path)
    return check_input(graph, arrays, str(input_path), layout)


def _random_inputs(graph: Graph, n_random: int, seed: int) -> list[np.ndarray]:
    """Per graph input, n_random seeded random values [n_random, *shape] over its dtype's range."""
    if n_random < 1:
        raise InputError(f"--random {n_random}: need at least one input")
    rng = np.random.default_rng(seed)
    out = []
    for name in graph.inputs:
        t = graph.t(name)
        info = np.iinfo(t.dtype)
        out.append(rng.integers(info.min, info.max + 1, size=(n_random, *t.shape)).astype(t.dtype))
    return out


def make_input_sets(
    graph: Graph,
    input_path: str | Path | np.ndarray | None,
    n_random: int = 3,
    seed: int = 0,
    layout: str = "model",
    arrays: dict[str, np.ndarray] | None = None,
) -> list[list[np.ndarray]]:
    """Per inference, one array per graph input (in graph.inputs order). A model with several
    inputs reads a .npz (arrays named as the inputs, input0.., or np.savez's arr_0..), each
    [N, *shape]; without a file, seeded random values over each dtype's range. Raises InputError."""
    if len(graph.inputs) == 1:
        return [[x] for x in make_inputs(graph, input_path, n_random, seed, layout, arrays)]
    if input_path is None:
        per = _random_inputs(graph, n_random, seed)
    else:
        if isinstance(input_path, np.ndarray):
            arrays, source = {"": input_path}, "input array"
        else:
            arrays, source = (arrays if arrays is not None else read_input_file(input_path)), str(input_path)
        per = check_inputs(graph, arrays, source, layout)
    return [[a[i] for a in per] for i in range(len(per[0]))]


def io_spec(graph: Graph, names: list[str]) -> list[dict[str, Any]]:
    """report.json's description of the model's inputs or outputs."""
    out = []
    for n in names:
        t = graph.t(n)
        q = t.quant
        out.append(
            {"name": n, "shape": list(t.shape), "dtype": t.dtype, "scale": q.s if q is not None else None,
             "zero_point": q.zp if q is not None else None}
        )
    return out


def write_embedded_inputs(out: str | Path, xs: np.ndarray) -> Path:
    """Write ``out/mt_inputs.c``: the int8 inputs ``xs`` ([N, *input_shape]) as
    ``const int8_t mt_test_inputs[N][SIZE]`` in flash, for a harness built with
    ``-DMT_EMBEDDED_INPUTS`` (no input.bin: the UART console has no file I/O)."""
    xs = np.asarray(xs)
    if xs.dtype != np.int8 or xs.ndim < 1 or len(xs) == 0:
        raise ValueError(f"expected a non-empty int8 array of inputs, got {xs.dtype} {xs.shape}")
    flat = xs.reshape(len(xs), -1)
    n, size = flat.shape
    lines = [
        "/* mt_inputs.c -- test inputs compiled into the firmware, generated by microtile. Do not edit.",
        " * Used by main.c when built with -DMT_EMBEDDED_INPUTS (otherwise dropped by --gc-sections). */",
        "#include <stdint.h>",
        "",
        "extern const uint32_t mt_test_input_count;",
        "extern const uint32_t mt_test_input_size;",
        f"extern const int8_t mt_test_inputs[{n}][{size}];",
        "",
        f"const uint32_t mt_test_input_count = {n}u;",
        f"const uint32_t mt_test_input_size = {size}u;",
        f"const int8_t mt_test_inputs[{n}][{size}] = {{",
    ]
    for row in flat:
        lines.append("    {")
        for k in range(0, size, 16):
            lines.append("        " + ", ".join(str(int(v)) for v in row[k : k + 16]) + ",")
        lines.append("    },")
    lines.append("};")
    path = Path(out) / "mt_inputs.c"
    path.write_text("\n".join(lines) + "\n")
    if (Path(out) / ".microtile-manifest.json").exists():
        adopt(out, "mt_inputs.c")  # generated: in the manifest and in sources.mk
    return path


@dataclass
class EmulatorRun:
    outputs: list[np.ndarray]
    instructions: list[int]
    stack: list[int]
    steps: list[dict[str, Any]]
    stdout: str


def parse_harness_output(stdout: str, out_shape: tuple[int, ...], dtype: str = "int8") -> EmulatorRun:
    outs: dict[int, np.ndarray] = {}
    instr: dict[int, int] = {}
    stack: dict[int, int] = {}
    steps: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "MT_OUT":
            raw = np.frombuffer(bytes.fromhex(parts[2]), dtype=np.dtype(dtype).newbyteorder("<"))
            outs[int(parts[1])] = raw.astype(dtype).reshape(out_shape)
        elif parts[0] == "MT_RESULT":
            kv = dict(p.split("=", 1) for p in parts[2:])
            if kv.get("rc") != "0":
                raise MicrotileError(
                    f"firmware invoke returned status {kv.get('rc')} (a kernel rejected its arguments)"
                )
            instr[int(parts[1])] = int(kv["instructions"])
            stack[int(parts[1])] = int(kv["stack"])
        elif parts[0] == "MT_STEP" and parts[1] == "0":
            steps.append(
                {"step": int(parts[2]), "instructions": int(parts[3].split("=")[1]), "name": " ".join(parts[4:])}
            )
    n = len(outs)
    return EmulatorRun(
        outputs=[outs[i] for i in range(n)],
        instructions=[instr[i] for i in range(n)],
        stack=[stack[i] for i in range(n)],
        steps=steps,
        stdout=stdout,
    )


def _renode_runner() -> Any:
    """renode/run_renode.py (a script beside the Renode files, not part of the package)."""
    import importlib.util

    path = data_dir("renode") / "run_renode.py"
    spec = importlib.util.spec_from_file_location("microtile_run_renode", path)
    if spec is None or spec.loader is None:
        raise MicrotileError(f"Renode runner not found at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare_with_reference(graph: Graph, xs: np.ndarray, outputs: list[np.ndarray]) -> tuple[int, int]:
    """(max |difference|, number of inputs with any differing byte) of firmware outputs vs the golden model."""
    max_diff = 0
    mismatches = 0
    for x, y in zip(xs, outputs, strict=True):
        ref = reference.run(graph, [x])[0]
        d = int(np.abs(ref.astype(np.int32) - y.astype(np.int32)).max())
        max_diff = max(max_diff, d)
        mismatches += int(d != 0)
    return max_diff, mismatches


def _split_outputs(raw: np.ndarray, outs: list) -> list[np.ndarray]:
    """The harness's concatenated output bytes as one array per graph output (little-endian)."""
    parts, pos = [], 0
    data = np.asarray(raw, np.uint8).tobytes()
    for t in outs:
        chunk = data[pos : pos + t.nbytes]
        parts.append(np.frombuffer(chunk, np.dtype(t.dtype).newbyteorder("<")).astype(t.dtype).reshape(t.shape))
        pos += t.nbytes
    return parts


def _compare_sets(
    graph: Graph, xs: list[list[np.ndarray]], outputs: list[list[np.ndarray]]
) -> tuple[int, int, list[int]]:
    """(max |difference|, inputs with any differing byte, max |difference| per output)."""
    per = [0] * len(graph.outputs)
    mismatches = 0
    for x, ys in zip(xs, outputs, strict=True):
        refs = reference.run(graph, x)
        ds = [int(np.abs(r.astype(np.int64) - y.astype(np.int64)).max()) for r, y in zip(refs, ys, strict=True)]
        per = [max(a, b) for a, b in zip(per, ds, strict=True)]
        mismatches += int(any(ds))
    return max(per), mismatches, per


def run_model(
    model: str | Path | Graph,
    out: str | Path,
    opts: CompileOptions,
    input_path: str | Path | np.ndarray | None = None,
    n_random: int = 3,
    seed: int = 0,
    emulator: str = "qemu",
    log: Log = _quiet,
    calib: str | Path | np.ndarray | None = None,
    input_layout: str = "model",
    eval_data: str | Path | np.ndarray | None = None,
) -> dict[str, Any]:
    """Compile, build, run in the emulator, compare with the reference; returns the report.
    `--out` and `--input` are checked before anything is compiled or built."""
    if emulator == "renode":  # renode/run_renode.py: real-part build, UART console, renode-test
        return _renode_runner().run_renode(model, out, opts, input_path, n_random, seed, log, calib)
    if emulator != "qemu":
        raise MicrotileError(f"unknown emulator {emulator!r}: expected 'qemu' or 'renode'")
    out = Path(out)
    check_prefix(opts.prefix)
    od = OutDir(out, force=opts.force)  # refuse an unsafe --out before any work
    arrays = read_input_file(input_path) if isinstance(input_path, str | Path) else None
    graph = model if isinstance(model, Graph) else load_model(model, calib, log, opts.board, eval_data)
    # a bad --input fails here, before compile and build
    xs = make_input_sets(graph, input_path, n_random, seed, layout=input_layout, arrays=arrays)
    opts.build = True
    try:
        res = compile_graph(graph, out, opts, log, outdir=od, final=False)
        if res.elf is None:
            find_toolchain()  # raises the clear error
        od.write("input.bin", _input_bytes(xs))
        log(f"[microtile] running {len(xs)} input(s) in QEMU {res.board.qemu_machine} ...")
        er = run_qemu(res.elf, res.board, cwd=out, timeout_s=900)
        od.write("emulator.log", er.stdout + er.stderr)
        if er.timed_out or er.exit_code != 0:
            raise MicrotileError(
                f"firmware did not finish cleanly in QEMU (exit {er.exit_code}"
                f"{', timed out' if er.timed_out else ''}); see {out / 'emulator.log'}"
            )
        report = _run_report(graph, res, xs, er.stdout, log)
        od.finish(_report_text(report))
    except BaseException:
        od.fail()
        raise
    return report


def _input_bytes(xs: list[list[np.ndarray]]) -> bytes:
    """input.bin: per inference, every input back to back, little-endian."""
    return b"".join(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes() for s in xs for a in s)


def _run_report(graph: Graph, res: CompileResult, xs: list[list[np.ndarray]], stdout: str, log: Log) -> dict[str, Any]:
    outs = [graph.t(n) for n in graph.outputs]
    total = sum(t.nbytes for t in outs)
    emu = parse_harness_output(stdout, (total,), "uint8")  # every output back to back, raw bytes
    if len(emu.outputs) != len(xs):
        raise MicrotileError(f"firmware printed {len(emu.outputs)} outputs for {len(xs)} inputs; see emulator.log")
    got = [_split_outputs(raw, outs) for raw in emu.outputs]
    log("[microtile] comparing with the reference ...")
    max_diff, mismatches, per_output = _compare_sets(graph, xs, got)
    report = dict(res.report)
    stack = max(emu.stack)
    clock = res.board.cpu_clock_hz
    instructions = int(np.median(emu.instructions))
    static = report.get("model_static_ram_bytes", 0)
    report.update(
        {
            "emulator": f"qemu-system-arm -M {res.board.qemu_machine} -icount shift=0",
            "inputs": len(xs),
            "bit_exact": mismatches == 0,
            "mismatched_inputs": mismatches,
            "max_abs_diff": max_diff,
            "max_abs_diff_per_output": per_output,
            "instructions": int(np.median(emu.instructions)),
            "instructions_per_input": emu.instructions,
            "instructions_per_mac": (  # none for a graph without MACs
                round(float(np.median(emu.instructions)) / res.plan.macs, 3) if res.plan.macs > 0 else None
            ),
            # an estimate: one cycle per instruction at the part's clock (a real core needs more)
            "cpu_clock_hz": clock,
            "latency_ms_estimate": round(instructions / clock * 1e3, 3),
            "stack_bytes": stack,
            **peak_sram(res.plan, static, stack),
            "peak_sram_estimated": False,
        }
    )
    if emu.steps:
        report["per_step"] = [{**s, "ms_estimate": round(s["instructions"] / clock * 1e3, 4)} for s in emu.steps]
    return report
