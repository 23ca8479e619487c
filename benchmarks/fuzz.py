"""Fuzz the importers: structure-aware mutants of a small TFLite and a small ONNX model.

    python benchmarks/fuzz.py [--n 2000] [--seed 0] [--qemu 10] [--out benchmarks/results]

Every mutant goes through `microtile compile --no-build` in-process (the CLI's own `main`),
and must end in exit 0, or exit 2 with one line `microtile: error: ...`; anything else (an
uncaught exception, a traceback, several lines, another exit status, a time-out) is a
failure. Up to `--qemu` exit-0 mutants per format are then run in QEMU (`microtile run`)
and must be bit-exact (exit 0). Writes `fuzz.md` (outcome counts, every failure) and
`fuzz.json`; exits 1 when any mutant failed.

Mutations are structure-aware, in place:
- TFLite: the flatbuffer is walked with the `tflite` reader classes to find each field's byte
  offset (tensor shapes, types, buffer indices, quantization scales, zero points and axis,
  operator opcodes, inputs/outputs, builtin options such as strides, padding, filter sizes,
  activations, subgraph inputs/outputs, weight bytes), and one field is overwritten with an
  interesting value (0, -1, 1, a large number, NaN, ...); a few mutants flip random bytes or
  truncate the file.
- ONNX: the protobuf is edited (attribute integers, initializer dims and data, graph input
  dims, node inputs renamed or dropped, op types swapped, nodes or attributes deleted,
  Reshape targets, quantization scales), then serialized; a few are truncated.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import signal
import struct
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INTS = (0, 1, -1, 2, 3, 5, 7, 8, 16, 255, 256, 65536, 1 << 20, 2**31 - 1, -(2**31))
FLOATS = (0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e-30, 1e30, 1e-3, 10.0)


# -- seed models -------------------------------------------------------------------------


def seed_tflite() -> bytes:
    """A small int8 CNN (conv, depthwise, pad, add, max pool, mean, FC, softmax) on 8x8x3."""
    from compiler.frontend.tflite_writer import write_tflite
    from compiler.models.builder import GraphBuilder

    b = GraphBuilder("fuzz_seed", seed=3)
    x = b.input((1, 8, 8, 3), name="input")
    y = b.conv2d(x, 8, 3, stride=2, activation="relu6", name="conv")  # 4x4x8
    h = b.depthwise_conv2d(y, 3, activation="relu", name="dw")
    y = b.add(y, h, name="add")
    y = b.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0]], name="pad")  # 6x6x8
    y = b.max_pool2d(y, 2, stride=2, name="pool")  # 3x3x8
    y = b.mean(y, axes=(1, 2), name="mean")
    y = b.fully_connected(y, 5, name="fc")
    b.output(b.softmax(y, name="softmax"))
    return write_tflite(b.build(n_calib=4))


def seed_onnx() -> tuple[bytes, np.ndarray]:
    """A small float CNN (Conv+Relu, MaxPool, Conv, GlobalAveragePool, Reshape, Gemm) on 1x3x8x8
    and 8 calibration inputs."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)

    def init(name: str, a: np.ndarray) -> Any:
        return numpy_helper.from_array(np.asarray(a), name)

    inits = [
        init("w1", rng.normal(0, 0.4, (6, 3, 3, 3)).astype(np.float32)),
        init("b1", rng.normal(0, 0.1, 6).astype(np.float32)),
        init("w2", rng.normal(0, 0.4, (8, 6, 1, 1)).astype(np.float32)),
        init("b2", rng.normal(0, 0.1, 8).astype(np.float32)),
        init("shape", np.array([1, 8], np.int64)),
        init("wf", rng.normal(0, 0.4, (5, 8)).astype(np.float32)),
        init("bf", rng.normal(0, 0.1, 5).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], strides=[1, 1], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
        helper.make_node("Reshape", ["g", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "fuzz_seed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    calib = rng.uniform(-1, 1, (8, 3, 8, 8)).astype(np.float32)
    return model.SerializeToString(), calib


# -- TFLite: field sites in the flatbuffer -----------------------------------------------

# builtin options tables: vtable slot -> struct format of the field (tflite schema)
_OPTION_FIELDS = {
    "Conv2DOptions": {4: "b", 6: "i", 8: "i", 10: "b", 12: "i", 14: "i"},
    "DepthwiseConv2DOptions": {4: "b", 6: "i", 8: "i", 10: "i", 12: "b", 14: "i", 16: "i"},
    "Pool2DOptions": {4: "b", 6: "i", 8: "i", 10: "i", 12: "i", 14: "b"},
    "FullyConnectedOptions": {4: "b", 6: "b", 8: "B", 10: "B"},
    "SoftmaxOptions": {4: "f"},
    "AddOptions": {4: "b", 6: "B"},
    "ConcatenationOptions": {4: "i", 6: "b"},
    "ReducerOptions": {4: "B"},
}


def _scalar(tab: Any, slot: int, fmt: str, what: str, out: list) -> None:
    o = tab.Offset(slot)
    if o:
        out.append((tab.Pos + o, fmt, what))


def _vector(tab: Any, slot: int, fmt: str, what: str, out: list, limit: int = 64) -> None:
    o = tab.Offset(slot)
    if o:
        start, n = tab.Vector(o), tab.VectorLen(o)
        size = struct.calcsize(fmt)
        for j in range(min(n, limit)):
            out.append((start + j * size, fmt, f"{what}[{j}]"))


def tflite_sites(buf: bytes) -> list[tuple[int, str, str]]:
    """(byte offset, struct format, description) of every field a structured mutation may change."""
    import tflite
    from tflite.BuiltinOptions import BuiltinOptions

    opt_names = {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}
    m = tflite.Model.GetRootAsModel(bytearray(buf), 0)
    sites: list[tuple[int, str, str]] = []
    for i in range(m.OperatorCodesLength()):
        c = m.OperatorCodes(i)
        _scalar(c._tab, 4, "b", f"opcode{i}.deprecated_builtin_code", sites)
        _scalar(c._tab, 10, "i", f"opcode{i}.builtin_code", sites)
    for i in range(m.BuffersLength()):
        _vector(m.Buffers(i)._tab, 4, "B", f"buffer{i}.data", sites, limit=8)
    sg = m.Subgraphs(0)
    _vector(sg._tab, 6, "i", "subgraph.inputs", sites)
    _vector(sg._tab, 8, "i", "subgraph.outputs", sites)
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        _vector(t._tab, 4, "i", f"tensor{i}.shape", sites)
        _scalar(t._tab, 6, "b", f"tensor{i}.type", sites)
        _scalar(t._tab, 8, "I", f"tensor{i}.buffer", sites)
        q = t.Quantization()
        if q is not None:
            _vector(q._tab, 8, "f", f"tensor{i}.scale", sites, limit=4)
            _vector(q._tab, 10, "q", f"tensor{i}.zero_point", sites, limit=4)
            _scalar(q._tab, 16, "i", f"tensor{i}.quantized_dimension", sites)
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        _scalar(op._tab, 4, "I", f"op{i}.opcode_index", sites)
        _vector(op._tab, 6, "i", f"op{i}.inputs", sites)
        _vector(op._tab, 8, "i", f"op{i}.outputs", sites)
        name = opt_names.get(op.BuiltinOptionsType(), "")
        table = op.BuiltinOptions()
        if table is not None and name in _OPTION_FIELDS:
            for slot, fmt in _OPTION_FIELDS[name].items():
                _scalar(table, slot, fmt, f"op{i}.{name}@{slot}", sites)
        if table is not None and name == "ReshapeOptions":
            _vector(table, 4, "i", f"op{i}.new_shape", sites)
    return sites


def _interesting(fmt: str, old: Any, rng: np.random.Generator) -> Any:
    if fmt == "f":
        return float(rng.choice([*FLOATS, old * 2, old / 2, -old]))
    lo, hi = {"b": (-128, 127), "B": (0, 255), "i": (-(2**31), 2**31 - 1), "I": (0, 2**32 - 1),
              "q": (-(2**63), 2**63 - 1)}[fmt]
    cands = [v for v in (*INTS, old + 1, old - 1, old * 2) if lo <= v <= hi and v != old]
    return int(rng.choice(cands)) if cands else old


def mutate_tflite(buf: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    data = bytearray(buf)
    r = rng.random()
    if r < 0.05:
        n = int(rng.integers(8, len(data)))
        return bytes(data[:n]), f"truncated to {n} bytes"
    if r < 0.12:
        k = int(rng.integers(1, 4))
        for _ in range(k):
            data[int(rng.integers(8, len(data)))] ^= 1 << int(rng.integers(0, 8))
        return bytes(data), f"{k} random bit flip(s)"
    sites = tflite_sites(buf)
    pos, fmt, what = sites[int(rng.integers(len(sites)))]
    (old,) = struct.unpack_from("<" + fmt, data, pos)
    new = _interesting(fmt, old, rng)
    struct.pack_into("<" + fmt, data, pos, new)
    return bytes(data), f"{what}: {old} -> {new}"


# -- ONNX: protobuf edits ----------------------------------------------------------------


def mutate_onnx(blob: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    import onnx
    from onnx import numpy_helper

    if rng.random() < 0.05:
        n = int(rng.integers(1, len(blob)))
        return blob[:n], f"truncated to {n} bytes"
    m = onnx.ModelProto()
    m.ParseFromString(blob)
    g = m.graph
    names = [v.name for v in g.input] + [i.name for i in g.initializer] + [o for n in g.node for o in n.output]
    kind = rng.choice(["attr", "init_dims", "init_data", "input_dims", "rename", "drop_input", "op_type",
                       "delete_node", "delete_attr"])
    if kind == "attr":
        cands = [(n, a) for n in g.node for a in n.attribute if len(a.ints) or a.type == onnx.AttributeProto.INT]
        n, a = cands[int(rng.integers(len(cands)))]
        if len(a.ints):
            j = int(rng.integers(len(a.ints) + 1))
            if j == len(a.ints):
                a.ints.pop()
                desc = f"{n.op_type}.{a.name}: last element dropped"
            else:
                old = a.ints[j]
                a.ints[j] = int(rng.choice(INTS[:11]))
                desc = f"{n.op_type}.{a.name}[{j}]: {old} -> {a.ints[j]}"
        else:
            old = a.i
            a.i = int(rng.choice(INTS[:11]))
            desc = f"{n.op_type}.{a.name}: {old} -> {a.i}"
    elif kind == "init_dims":
        t = g.initializer[int(rng.integers(len(g.initializer)))]
        j = int(rng.integers(len(t.dims)))
        old = t.dims[j]
        t.dims[j] = int(rng.choice([0, 1, 2, old + 1, old * 2]))
        desc = f"initializer {t.name}.dims[{j}]: {old} -> {t.dims[j]}"
    elif kind == "init_data":
        i = int(rng.integers(len(g.initializer)))
        t = g.initializer[i]
        a = numpy_helper.to_array(t).copy()
        flat = a.reshape(-1)
        j = int(rng.integers(flat.size))
        new = rng.choice(FLOATS) if a.dtype.kind == "f" else int(rng.choice(INTS[:11]))
        flat[j] = new
        g.initializer[i].CopyFrom(numpy_helper.from_array(a, t.name))
        desc = f"initializer {t.name}[{j}] = {new}"
    elif kind == "input_dims":
        d = g.input[0].type.tensor_type.shape.dim
        j = int(rng.integers(len(d)))
        old = d[j].dim_value
        d[j].dim_value = int(rng.choice([0, 1, 2, 5, 64, old + 1]))
        desc = f"input dims[{j}]: {old} -> {d[j].dim_value}"
    elif kind == "rename":
        n = g.node[int(rng.integers(len(g.node)))]
        j = int(rng.integers(len(n.input)))
        old = n.input[j]
        n.input[j] = str(rng.choice([*names, "missing"]))
        desc = f"{n.op_type}.input[{j}]: {old} -> {n.input[j]}"
    elif kind == "drop_input":
        n = g.node[int(rng.integers(len(g.node)))]
        old = n.input.pop()
        desc = f"{n.op_type}: input {old} dropped"
    elif kind == "op_type":
        n = g.node[int(rng.integers(len(g.node)))]
        old = n.op_type
        n.op_type = str(rng.choice(["Relu", "Conv", "MaxPool", "AveragePool", "Add", "Mul", "Reshape", "Gemm",
                                    "Softmax", "Sigmoid", "Flatten", "Transpose", "Concat", "Identity"]))
        desc = f"op_type {old} -> {n.op_type}"
    elif kind == "delete_node":
        j = int(rng.integers(len(g.node)))
        desc = f"node {g.node[j].op_type} deleted"
        del g.node[j]
    else:
        cands = [n for n in g.node if len(n.attribute)]
        n = cands[int(rng.integers(len(cands)))]
        j = int(rng.integers(len(n.attribute)))
        desc = f"{n.op_type}.{n.attribute[j].name} deleted"
        del n.attribute[j]
    return m.SerializeToString(), desc


# -- running mutants ---------------------------------------------------------------------


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def run_cli(argv: list[str], timeout_s: int = 120) -> tuple[str, str]:
    """(outcome, stderr) of `microtile argv` run in-process. Outcomes: "exit 0", "exit 2",
    and the failures "exit 2 (N lines)", "exit N", "crash: <Exception>", "timeout"."""
    from compiler import cli

    err, out = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = cli.main(argv)
    except _Timeout:
        return "timeout", err.getvalue()
    except SystemExit as e:  # argparse
        rc = e.code if isinstance(e.code, int) else 2
    except Exception as e:  # noqa: BLE001 - the point: any uncaught exception is a finding
        import traceback

        where = traceback.extract_tb(e.__traceback__)[-1]
        return f"crash: {type(e).__name__}", f"{type(e).__name__}: {e} at {Path(where.filename).name}:{where.lineno}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    text = err.getvalue()
    lines = [ln for ln in text.strip().splitlines() if not ln.startswith("[microtile]") and ln.strip()]
    if rc == 2:
        ok = len(lines) == 1 and lines[0].startswith("microtile: error: ") and "Traceback" not in text
        return ("exit 2" if ok else f"exit 2 ({len(lines)} lines)"), text
    return f"exit {rc}", text


FAIL_FREE = ("exit 0", "exit 2")


def fuzz(
    fmt: str, n: int, seed: int, work: Path, qemu: int = 0, log: Any = None, keep: Path | None = None
) -> dict[str, Any]:
    """Run `n` mutants of the `fmt` ("tflite" | "onnx") seed model; returns counts and failures
    (the failing mutant files are copied into `keep` when given)."""
    rng = np.random.default_rng(seed)
    work.mkdir(parents=True, exist_ok=True)
    calib_path = None
    if fmt == "tflite":
        blob, mutate, suffix = seed_tflite(), mutate_tflite, ".tflite"
    else:
        blob, calib = seed_onnx()
        mutate, suffix = mutate_onnx, ".onnx"
        calib_path = work / "calib.npy"
        np.save(calib_path, calib)
    extra = ["--calib", str(calib_path)] if calib_path else []
    counts: Counter[str] = Counter()
    failures: list[dict[str, str]] = []
    passed: list[tuple[Path, str]] = []
    for k in range(n):
        data, desc = mutate(blob, rng)
        path = work / f"m{k}{suffix}"
        path.write_bytes(data)
        out = work / f"o{k}"
        outcome, err = run_cli(["compile", str(path), "--no-build", "--out", str(out), *extra])
        counts[outcome] += 1
        if outcome not in FAIL_FREE:
            failures.append({"mutant": k, "mutation": desc, "outcome": outcome, "stderr": err.strip()[-400:]})
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, keep / f"{fmt}_{seed}_{k}{suffix}")
        elif outcome == "exit 0" and data != blob:
            passed.append((path, desc))
        shutil.rmtree(out, ignore_errors=True)
        if outcome != "exit 0" or data == blob:
            path.unlink()
        if log and (k + 1) % 100 == 0:
            log(f"{fmt}: {k + 1}/{n} {dict(counts)}")
    qemu_counts: Counter[str] = Counter()
    have_tools = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")
    for path, desc in passed[:qemu if have_tools else 0]:
        out = work / f"run_{path.stem}"
        outcome, err = run_cli(["run", str(path), "--out", str(out), "--random", "2", *extra], timeout_s=600)
        qemu_counts[outcome] += 1
        if outcome != "exit 0":
            failures.append({"mutant": path.stem, "mutation": desc, "outcome": f"run in QEMU: {outcome}",
                             "stderr": err.strip()[-400:]})
        shutil.rmtree(out, ignore_errors=True)
    return {"format": fmt, "mutants": n, "seed": seed, "counts": dict(counts), "qemu": dict(qemu_counts),
            "failures": failures}


def _table(results: list[dict[str, Any]], command: str) -> str:
    outcomes = sorted({o for r in results for o in r["counts"]}, key=lambda o: (o not in FAIL_FREE, o))
    lines = [
        "# Importer fuzzing",
        "",
        f"`{command}`: structure-aware mutants of a small TFLite and a small ONNX model through",
        "`microtile compile --no-build`; exit 0 or exit 2 with one line are the only right outcomes;",
        "a sample of the exit-0 mutants is run in QEMU and must be bit-exact.",
        "",
        "| format | mutants | " + " | ".join(outcomes) + " | exit-0 mutants run in QEMU (bit-exact / all) |",
        "|---|---:|" + "---:|" * len(outcomes) + "---:|",
    ]
    for r in results:
        cells = " | ".join(str(r["counts"].get(o, 0)) for o in outcomes)
        q = r["qemu"]
        lines.append(f"| {r['format']} | {r['mutants']} | {cells} | {q.get('exit 0', 0)} / {sum(q.values())} |")
    fails = [f for r in results for f in r["failures"]]
    lines += ["", f"Failures: {len(fails)}", ""]
    for f in fails[:50]:
        lines.append(f"- mutant {f['mutant']} ({f['mutation']}): {f['outcome']}: `{f['stderr'][-200:]}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="mutants per format (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--qemu", type=int, default=10, help="exit-0 mutants per format run in QEMU (default 10)")
    ap.add_argument("--formats", default="tflite,onnx")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--keep", type=Path, default=None, help="copy failing mutants (and the ONNX calib.npy) here")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as d:
        for i, fmt in enumerate(args.formats.split(",")):
            results.append(fuzz(fmt, args.n, args.seed + i, Path(d) / fmt, args.qemu, log=print, keep=args.keep))
            if args.keep is not None and fmt == "onnx":
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(d) / fmt / "calib.npy", args.keep / "calib.npy")
    command = f"python benchmarks/fuzz.py --n {args.n} --qemu {args.qemu} --seed {args.seed}"  # paths left out
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz.md").write_text(_table(results, command.strip()))
    (args.out / "fuzz.json").write_text(json.dumps(results, indent=1) + "\n")
    print(_table(results, command.strip()))
    return 1 if any(r["failures"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
