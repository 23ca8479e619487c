"""UNIDIRECTIONAL_SEQUENCE_LSTM (int8 x int8 -> int16 cell): the golden model against TFLite-Micro,
the importer's refusals, the portable C kernel on the host and the firmware in QEMU.

Models come from `compiler.core.lstm` (random float weights quantized as the TFLite converter does)
through `compiler.frontend.tflite_writer` (24 inputs, variable state tensors); TFLM's
interpreter is the oracle, on its first invoke (the reset state microtile's `invoke` uses).
"""

from __future__ import annotations

import ctypes as C
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_firmware
from test_kernels import CC, CFLAGS, SANITIZE, kernel_library, run_sanitized

from compiler.core.lower import lower
from compiler.core.lstm import kws_lstm_graph, lstm_graph, scratch_bytes
from compiler.errors import ModelError
from compiler.frontend.tflite import load_tflite, parse_tflite
from compiler.frontend.tflite_writer import write_tflite
from compiler.golden import reference
from compiler.golden.tflm import tflm_available

ROOT = Path(__file__).resolve().parents[1]
needs_tflm = pytest.mark.skipif(not tflm_available(), reason="tflite-micro package not installed")
N_CASES = int(os.environ.get("MT_KERNEL_CASES", "40"))


def _case(k: int) -> dict:
    """Case k of the sweep: batch 1-2, 1-8 steps, 3-16 inputs, 4-16 units, clip or not, both layouts."""
    r = np.random.default_rng(7000 + k)
    return {
        "batch": int(r.integers(1, 3)),
        "steps": int(r.integers(1, 9)),
        "n_in": int(r.integers(3, 17)),
        "units": int(r.integers(4, 17)),
        "seed": k,
        "time_major": bool(k % 3 == 2),
        "cell_clip": float(r.uniform(0.5, 6.0)) if k % 2 else 0.0,
        "cell_power": int(r.integers(-15, -7)),
    }


def _input(g, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, g.t(g.inputs[0]).shape).astype(np.int8)


@needs_tflm
@pytest.mark.parametrize("k", range(N_CASES))
def test_lstm_tflm(k: int) -> None:
    """Reference == TFLM interpreter byte for byte; the model imported back gives the same graph."""
    from compiler.golden.tflm import TflmModel

    g = lstm_graph(**_case(k))
    buf = write_tflite(g)
    x = _input(g, k)
    want = TflmModel(buf).invoke(x)[0]
    got = reference.run(g, [x])[0]
    assert got.dtype == np.int8 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    g2 = parse_tflite(buf, source="lstm.tflite")
    np.testing.assert_array_equal(reference.run(g2, [x])[0], want)


@needs_tflm
def test_lstm_state_per_invoke() -> None:
    """TFLM keeps h and c between invokes; microtile's reference (and firmware) is its first
    invoke, or any invoke after `reset()`."""
    from compiler.golden.tflm import TflmModel

    g = lstm_graph(batch=1, steps=5, n_in=6, units=8, seed=3)
    x = _input(g, 3)
    m = TflmModel(write_tflite(g))
    first, second = m.invoke(x)[0], m.invoke(x)[0]
    m.interp.reset()
    third = m.invoke(x)[0]
    ref = reference.run(g, [x])[0]
    np.testing.assert_array_equal(first, ref)
    np.testing.assert_array_equal(third, ref)
    assert not np.array_equal(second, ref)  # the carried state changes the second sequence


@needs_tflm
def test_output_quant_differs_from_hidden() -> None:
    """TFLM copies the hidden state's bytes to the output: an output tensor quantized unlike the
    hidden state gets the hidden state's bytes (the golden model does the same)."""
    from compiler.core.ir import QParams
    from compiler.golden.tflm import TflmModel

    g = lstm_graph(batch=2, steps=4, n_in=5, units=6, seed=9)
    g.t(g.outputs[0]).quant = QParams(0.02, 7)
    x = _input(g, 9)
    want = TflmModel(write_tflite(g)).invoke(x)[0]
    np.testing.assert_array_equal(reference.run(g, [x])[0], want)


def test_cell_clip_matters() -> None:
    """The clip is applied: a tight clip changes the outputs of a case whose cell grows."""
    base = dict(batch=1, steps=8, n_in=12, units=12, seed=11, cell_power=-11)
    g0, g1 = lstm_graph(**base), lstm_graph(**base, cell_clip=0.25)
    x = _input(g0, 1)
    assert not np.array_equal(reference.run(g0, [x])[0], reference.run(g1, [x])[0])
    assert lower(g1, g1.ops[0])["cell_clip"] == int(0.25 * 2**11)


def test_refusals(tmp_path: Path) -> None:
    """One line naming op, node and tensor for each variant not implemented."""

    g = lstm_graph(batch=1, steps=3, n_in=4, units=4, seed=5)
    g.ops[0].attrs["tflite_activation"] = 1  # RELU
    p = tmp_path / "relu.tflite"
    p.write_bytes(write_tflite(g))
    with pytest.raises(ModelError, match=r"node op0_unidirectional_sequence_lstm .*cell activation RELU"):
        load_tflite(p)
    del g.ops[0].attrs["tflite_activation"]
    # a peephole weight present (slot 9): refused by the declaration
    from compiler.frontend.tflite_writer import _Writer

    w = _Writer(g, "t")
    orig = w.lstm

    def with_peephole(op, ins, outs):
        r = orig(op, ins, outs)
        r[1][9] = ins[1]
        return r

    w.lstm = with_peephole  # type: ignore[method-assign]
    with pytest.raises(ModelError, match=r"node op0_unidirectional_sequence_lstm \(UNIDIRECTIONAL_SEQUENCE_LSTM\): "
                       r"input 9 't1' is int8 .*supported: absent \(-1\)"):
        parse_tflite(w.run(), source="peephole.tflite")

    # CIFG (no input gate: weights 1, 5 and bias 12 absent): TFLM's kernel requires the input gate
    def cifg(op, ins, outs):
        r = orig(op, ins, outs)
        for k in (1, 5, 12):
            r[1][k] = -1
        return r

    w = _Writer(g, "t")
    orig = w.lstm
    w.lstm = cifg  # type: ignore[method-assign]
    with pytest.raises(ModelError, match=r"UNIDIRECTIONAL_SEQUENCE_LSTM\): input 1 is absent \(required\)"):
        parse_tflite(w.run(), source="cifg.tflite")

    # a cell state whose scale is not a power of two
    g.ops[0].attrs["cell_scale"] = 0.0003
    with pytest.raises(ModelError, match=r"cell state .* scale 0.0003 is not a power of two"):
        parse_tflite(write_tflite(g), source="pot.tflite")


def test_scratch_in_plan() -> None:
    """The layer planner reserves the kernel's scratch (one int16 cell row) for the LSTM step."""
    from compiler.planner import plan_for

    g = kws_lstm_graph()
    plan = plan_for(g, "stm32f405")
    st = next(s for s in plan.steps if s.op.kind == "lstm")
    assert st.scratch is not None and st.scratch.size >= scratch_bytes(g, st.op) == 32
    plan.check()
    from compiler.schedule.execute import execute_plan

    x = _input(g, 0)
    np.testing.assert_array_equal(execute_plan(plan, [x])[g.outputs[0]], reference.run(g, [x])[0])


# -- the portable C kernel on the host (ctypes), and under ASan/UBSan -------------------------


class LstmParams(C.Structure):
    _fields_ = [(n, C.c_int32 * 4) for n in ("in_mult", "in_shift", "rec_mult", "rec_shift")] + [
        (n, C.c_int32)
        for n in ("fc_mult", "fc_shift", "ig_mult", "ig_shift", "h_mult", "h_shift", "hidden_zp", "tanh_mult",
                  "tanh_shift", "clip_on", "cell_clip")
    ]


class LstmDims(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("batches", "steps", "input", "units", "time_major")]


class LstmWeights(C.Structure):
    _fields_ = [("in_", C.c_void_p * 4), ("rec", C.c_void_p * 4), ("in_bias", C.c_void_p * 4),
                ("rec_bias", C.c_void_p * 4)]


def build_kernel(out: Path, sanitize: bool = False) -> Path:
    """libmt_lstm.so: runtime_c/mt_lstm_s8.c and the sigmoid table it reads (mt_lut16.c); its
    helpers are mt_quant.h and mt_lut16.h inlines."""
    flags = CFLAGS + (SANITIZE if sanitize else [])
    srcs = [str(ROOT / "runtime_c" / f) for f in ("mt_lstm_s8.c", "mt_lut16.c")]
    subprocess.run([CC, *flags, f"-I{ROOT / 'runtime_c'}", *srcs, "-o", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> C.CDLL:
    return kernel_library(tmp_path_factory, build_kernel)


def _run_c(lib: C.CDLL, g, x: np.ndarray) -> np.ndarray:
    """mt_lstm_s8 with the parameters of compiler.core.lower, guard bytes around output and scratch."""
    op = g.ops[0]
    q = lower(g, op)
    params = LstmParams()
    for n in ("in_mult", "in_shift", "rec_mult", "rec_shift"):
        getattr(params, n)[:] = [int(v) for v in q[n]]
    for n in ("fc_mult", "fc_shift", "ig_mult", "ig_shift", "h_mult", "h_shift", "tanh_mult", "tanh_shift",
              "clip_on", "cell_clip"):
        setattr(params, n, int(q[n]))
    params.hidden_zp = int(q["hidden_zp"])
    dims = LstmDims(q["batches"], q["steps"], q["input"], q["units"], q["time_major"])
    keep = [np.ascontiguousarray(g.t(n).data) for n in op.inputs[1:9]]
    keep += [np.ascontiguousarray(q["in_bias"][k]) for k in range(4)]
    keep += [np.ascontiguousarray(q["rec_bias"][k]) for k in range(4)]
    w = LstmWeights()
    for k in range(4):
        w.in_[k], w.rec[k] = keep[k].ctypes.data, keep[4 + k].ctypes.data
        w.in_bias[k], w.rec_bias[k] = keep[8 + k].ctypes.data, keep[12 + k].ctypes.data
    guard = 16
    out = np.full(g.t(op.outputs[0]).size + 2 * guard, 0x5A, dtype=np.int8)
    n_scratch = lib.mt_lstm_s8_get_buffer_size(C.c_int32(q["units"]))
    assert n_scratch == scratch_bytes(g, op)
    scratch = np.full(n_scratch // 2 + 2 * guard, 0x5A5A, dtype=np.int16)
    xc = np.ascontiguousarray(x)
    rc = lib.mt_lstm_s8(C.byref(params), C.byref(dims), C.c_void_p(xc.ctypes.data), C.byref(w),
                        C.c_void_p(out.ctypes.data + guard), C.c_void_p(scratch.ctypes.data + 2 * guard))
    assert rc == 0
    assert (out[:guard] == 0x5A).all() and (out[-guard:] == 0x5A).all(), "wrote outside the output"
    assert (scratch[:guard] == 0x5A5A).all() and (scratch[-guard:] == 0x5A5A).all(), "wrote outside the scratch"
    return out[guard:-guard].reshape(g.t(op.outputs[0]).shape)


@pytest.mark.parametrize("k", range(N_CASES))
def test_c_kernel(lib: C.CDLL, k: int) -> None:
    """mt_lstm_s8 == the golden model byte for byte (same sweep as the TFLM oracle)."""
    g = lstm_graph(**_case(k))
    x = _input(g, k)
    np.testing.assert_array_equal(_run_c(lib, g, x), reference.run(g, [x])[0])


def test_c_kernel_saturation(lib: C.CDLL) -> None:
    """Extreme inputs and a large cell scale: saturated gates, clamps and a tight clip agree."""
    for seed, power, clip in ((1, -8, 0.0), (2, -15, 0.0), (3, -9, 0.3), (4, 2, 0.0), (5, -30, 0.0)):
        g = lstm_graph(batch=2, steps=6, n_in=9, units=7, seed=seed, cell_power=power, cell_clip=clip)
        x = np.where(_input(g, seed) > 0, 127, -128).astype(np.int8)
        np.testing.assert_array_equal(_run_c(lib, g, x), reference.run(g, [x])[0])


@pytest.mark.skipif("MT_KERNEL_LIB" in os.environ, reason="already inside the sanitized run")
def test_c_kernel_sanitized(tmp_path: Path) -> None:
    """The kernel tests above rerun against an ASan + UBSan build (any report fails)."""
    run_sanitized(__file__, tmp_path, cases=12, build=build_kernel, select="c_kernel")


# -- end to end: an LSTM keyword-spotting-like model in QEMU ----------------------------------


@needs_tflm
@needs_firmware
def test_kws_lstm_qemu(tmp_path: Path, capsys) -> None:
    """LSTM -> last step -> FULLY_CONNECTED -> SOFTMAX, written as .tflite, `microtile run` on the
    default board: the firmware's outputs equal the reference's for 3 inputs, and the reference
    equals TFLite-Micro's for the same inputs (so the firmware is bit-exact with TFLM)."""
    from compiler import cli
    from compiler.golden.tflm import TflmModel

    g = kws_lstm_graph()
    model = tmp_path / "kws_lstm.tflite"
    model.write_bytes(write_tflite(g))
    xs = np.random.default_rng(42).integers(-128, 128, (3, *g.t(g.inputs[0]).shape)).astype(np.int8)
    np.save(tmp_path / "x.npy", xs)
    tflm = TflmModel(model)
    gi = load_tflite(model)
    for x in xs:
        tflm.interp.reset()
        np.testing.assert_array_equal(reference.run(gi, [x])[0], tflm.invoke(x)[0])
    rc = cli.main(["run", str(model), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["bit_exact"] is True and report["inputs"] == 3 and report["max_abs_diff"] == 0
    assert report["board"] == "stm32f405" and report["emulator"].startswith("qemu")
    assert "mt_lstm_s8(" in (tmp_path / "out" / "model.c").read_text()
