"""runtime_c int16 LOGISTIC/TANH/SOFTMAX and int8 SVDF kernels vs the golden model.

Like tests/test_kernels_mixed.py: a one-op graph, `compiler.golden.reference.run` for the expected
values, `compiler.core.lower.lower` for the integer parameters, the C kernel through ctypes on a
host build, guard bytes around the output. `test_sanitized_run` reruns this file against an
ASan + UBSan build. Skipped when no C compiler exists.
"""

from __future__ import annotations

import ctypes as C
import os
from pathlib import Path

import numpy as np
import pytest

from compiler.core import lut16
from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.core.lower import lower
from compiler.golden.reference import run
from tests.test_kernels import kernel_library, run_sanitized

ROOT = Path(__file__).resolve().parents[1]
N_CASES = int(os.environ.get("MT_KERNEL_CASES", "8"))


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> C.CDLL:
    return kernel_library(tmp_path_factory)


class Lut16Params(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_multiplier", "input_left_shift")]


def guarded(n: int, dtype: str, guard: int = 16) -> tuple[np.ndarray, C.c_void_p]:
    buf = np.full(n + 2 * guard, 0x5A, dtype=dtype)
    return buf, C.c_void_p(buf.ctypes.data + guard * buf.itemsize)


def check_guard(buf: np.ndarray, n: int, guard: int = 16) -> np.ndarray:
    assert (buf[:guard] == 0x5A).all() and (buf[guard + n :] == 0x5A).all(), "kernel wrote outside its output"
    return buf[guard : guard + n]


def one_op(kind: str, shape: tuple[int, ...], s_x: float, s_y: float, **attrs) -> Graph:
    g = Graph(kind)
    g.add_tensor(Tensor("x", shape, "int16", QParams(np.float32(s_x), 0)))
    g.add_tensor(Tensor("y", shape, "int16", QParams(np.float32(s_y), 0)))
    g.add_op(Op(kind, "op", ["x"], ["y"], attrs))
    g.inputs, g.outputs = ["x"], ["y"]
    return g


def test_lut_tables_are_generated() -> None:
    """runtime_c/mt_lut16.c is `python -m compiler.core.lut16` output (the tables the reference uses)."""
    assert (ROOT / "runtime_c" / "mt_lut16.c").read_text() == lut16.c_source()


@pytest.mark.parametrize("kind", ["logistic", "tanh"])
@pytest.mark.parametrize("scale", [2.0**-12, 2.0**-11, 1e-4, 4.7e-4, 0.37, 2.5, 2.0**-20])
def test_logistic_tanh_s16(lib, kind: str, scale: float) -> None:
    """Every int16 input value through mt_<kind>_s16 equals the reference."""
    x = np.arange(-32768, 32768, dtype=np.int16)
    g = one_op(kind, (x.size,), scale, 2.0**-15)
    want = run(g, [x])[0]
    q = lower(g, g.ops[0])
    p = Lut16Params(q["input_multiplier"], q["input_left_shift"])
    buf, out = guarded(x.size, "int16")
    fn = getattr(lib, f"mt_{kind}_s16")
    assert fn(C.byref(p), x.ctypes.data_as(C.c_void_p), out, C.c_int32(x.size)) == 0
    got = check_guard(buf, x.size)
    assert np.array_equal(got, want), f"{np.flatnonzero(got != want).size} differ"


def test_softmax_s16(lib) -> None:
    rng = np.random.default_rng(3)
    for case in range(N_CASES):
        rows, depth = int(rng.integers(1, 5)), int(rng.integers(1, 70))
        scale = float(10.0 ** rng.uniform(-6, -1.5))
        beta = float(rng.choice([1.0, 0.5, 2.0]))
        g = one_op("softmax", (rows, depth), scale, 1 / 32768, beta=beta)
        span = int(rng.choice([32768, 2000, 50]))
        x = rng.integers(-span, span, (rows, depth)).astype(np.int16)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        p = Lut16Params(q["input_multiplier"], q["input_left_shift"])
        buf, out = guarded(x.size, "int16")
        assert lib.mt_softmax_s16(C.byref(p), x.ctypes.data_as(C.c_void_p), C.c_int32(rows), C.c_int32(depth), out) == 0
        got = check_guard(buf, x.size).reshape(rows, depth)
        assert np.array_equal(got, want), f"case {case}: {rows}x{depth} scale {scale} beta {beta}"
        # in place (out == in), as the kernel documents
        y = x.copy()
        assert lib.mt_softmax_s16(C.byref(p), y.ctypes.data_as(C.c_void_p), C.c_int32(rows), C.c_int32(depth),
                                  y.ctypes.data_as(C.c_void_p)) == 0
        assert np.array_equal(y, want)


class SoftmaxParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_multiplier", "input_left_shift", "diff_min")]


def test_softmax_s8_s16(lib) -> None:
    """mt_softmax_s8_s16 (int8 in, int16 out 1/65536 zero point -32768) equals the reference."""
    rng = np.random.default_rng(4)
    for case in range(N_CASES):
        rows, depth = int(rng.integers(1, 5)), int(rng.integers(1, 70))
        s_x, z_x = float(10.0 ** rng.uniform(-2.5, -0.3)), int(rng.integers(-128, 128))
        g = Graph("sm")
        g.add_tensor(Tensor("x", (rows, depth), "int8", QParams(np.float32(s_x), z_x)))
        g.add_tensor(Tensor("y", (rows, depth), "int16", QParams(np.float32(1 / 65536), -32768)))
        g.add_op(Op("softmax", "op", ["x"], ["y"], {"beta": float(rng.choice([1.0, 0.5]))}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(-128, 128, (rows, depth)).astype(np.int8)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        p = SoftmaxParams(q["input_multiplier"], q["input_left_shift"], q["diff_min"])
        buf, out = guarded(x.size, "int16")
        assert lib.mt_softmax_s8_s16(C.byref(p), x.ctypes.data_as(C.c_void_p), C.c_int32(rows), C.c_int32(depth),
                                     out) == 0
        assert np.array_equal(check_guard(buf, x.size).reshape(rows, depth), want), f"case {case}"


class SvdfParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("batches", "input_size", "units", "rank", "memory", "input_zp", "state_zp",
                                          "output_zp", "multiplier1", "shift1", "multiplier2", "shift2")]


@pytest.mark.parametrize("dtype", ["int16", "int8"])
def test_svdf_s8(lib, dtype: str) -> None:
    """mt_svdf_s8 / mt_svdf_state8_s8 against compiler.golden.reference.svdf_step: with reset_state
    (what the generated code passes: every call = TFLM's first invoke) and streaming."""
    from compiler.golden.reference import svdf_step
    from tests.test_tflite_lut16 import SVDF_CASES, svdf_graph

    fn = lib.mt_svdf_s8 if dtype == "int16" else lib.mt_svdf_state8_s8
    for case in SVDF_CASES[: max(2, N_CASES)]:
        batches, n_in, units, rank, memory, z_x, z_st, z_y, act = case
        s_st = 0.004 if dtype == "int16" else 1.0
        g = svdf_graph(batches, n_in, units, rank, memory, z_x, z_st, z_y, act, n_in, s_st, dtype)
        op = g.ops[0]
        q = lower(g, op)
        p = SvdfParams(*(q[n] for n, _ in SvdfParams._fields_))
        wf, wt, bias = (np.ascontiguousarray(g.t(n).data) for n in op.inputs[1:4])
        rng = np.random.default_rng(memory)
        state_ref = np.full((batches, units * rank * memory), q["state_reset"], dtype)
        sbuf, sptr = guarded(state_ref.size, dtype)
        for k in range(4):
            x = rng.integers(-128, 128, (batches, n_in)).astype(np.int8)
            want, state_ref = svdf_step(q, x, wf, wt, bias, state_ref)
            buf, out = guarded(batches * units, "int8")
            args = [C.byref(p), x.ctypes.data_as(C.c_void_p), wf.ctypes.data_as(C.c_void_p),
                    wt.ctypes.data_as(C.c_void_p), bias.ctypes.data_as(C.c_void_p), sptr]
            assert fn(*args, C.c_int32(1 if k == 0 else 0), out) == 0
            assert np.array_equal(check_guard(buf, batches * units).reshape(batches, units), want), f"{case} call {k}"
            assert np.array_equal(check_guard(sbuf, state_ref.size), state_ref.reshape(-1))
            if k == 0:
                assert np.array_equal(want, run(g, [x])[0])
        # reset_state 1 on a used state: the first invoke again
        buf, out = guarded(batches * units, "int8")
        assert fn(*args, C.c_int32(1), out) == 0
        assert np.array_equal(check_guard(buf, batches * units).reshape(batches, units), run(g, [x])[0])


def test_bad_arguments(lib) -> None:
    x = np.zeros(4, np.int16)
    xp = x.ctypes.data_as(C.c_void_p)
    assert lib.mt_logistic_s16(C.byref(Lut16Params(40000, 0)), xp, xp, C.c_int32(4)) != 0
    assert lib.mt_tanh_s16(C.byref(Lut16Params(0, 13)), xp, xp, C.c_int32(4)) != 0
    assert lib.mt_softmax_s16(C.byref(Lut16Params(1 << 30, 0)), xp, C.c_int32(1), C.c_int32(0), xp) != 0


@pytest.mark.skipif("MT_KERNEL_LIB" in os.environ, reason="already inside the sanitized run")
def test_sanitized_run(tmp_path) -> None:
    """Reruns this file against an ASan + UBSan build (UB aborts)."""
    run_sanitized(__file__, tmp_path, cases=3)
