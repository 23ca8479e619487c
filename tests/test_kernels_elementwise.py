"""runtime_c kernels of SQUARED_DIFFERENCE, PRELU, ELU, RSQRT, L2_NORMALIZATION vs the golden model.

Like tests/test_kernels_mixed.py: a one-op graph, `compiler.golden.reference.run` for the expected
bytes, `compiler.core.lower.lower` for the integer parameters, the C kernel called through ctypes on
a host build with guard bytes around the output; `test_sanitized_run` reruns this file against
an ASan + UBSan build. Skipped when no C compiler exists.
"""

from __future__ import annotations

import ctypes as C
import os

import numpy as np
import pytest

from codegen.emit import _bcast_strides
from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.core.lower import lower
from compiler.golden.reference import run
from tests.test_kernels import AddParams, Broadcast, run_sanitized
from tests.test_kernels_mixed import _RANGE, _check, _vp, guarded, lib  # noqa: F401  (lib: the fixture)

N_CASES = int(os.environ.get("MT_KERNEL_CASES", "12"))
BCAST = [((1, 3, 4, 5), (1, 3, 4, 5)), ((1, 3, 4, 5), (1, 1, 1, 5)), ((1, 3, 1, 5), (1, 1, 4, 1)), ((2, 6), (1, 6)),
         ((1, 1, 1, 5), (1, 3, 4, 5))]


class PreluParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_offset", "alpha_offset", "output_offset", "output_multiplier_1",
                                         "output_shift_1", "output_multiplier_2", "output_shift_2")]


class RsqrtParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_zp", "output_zp", "multiplier", "shift")]


def _pad4(s) -> tuple[int, ...]:
    return (1,) * (4 - len(s)) + tuple(s)


def _bc(sa, sb, out) -> Broadcast:
    return Broadcast((C.c_int32 * 4)(*_pad4(out)), (C.c_int32 * 4)(*_bcast_strides(_pad4(sa), _pad4(out))),
                     (C.c_int32 * 4)(*_bcast_strides(_pad4(sb), _pad4(out))))


def _sfx(dtype: str) -> str:
    return "s16" if dtype == "int16" else "s8"


@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_squared_difference(lib, dtype: str) -> None:  # noqa: F811
    rng = np.random.default_rng(81 if dtype == "int8" else 82)
    for case in range(N_CASES):
        sa, sb = BCAST[case % len(BCAST)]
        out_shape = tuple(np.broadcast_shapes(sa, sb))
        base = 3e-4 if dtype == "int16" else 0.05
        s1, s2 = (float(v) * base for v in rng.uniform(0.3, 3, 2))
        so = base * base * (65536 if dtype == "int16" else 256) * float(10 ** rng.uniform(-7, 0.5))
        zs = [0, 0, 0] if dtype == "int16" else [int(v) for v in rng.integers(-128, 128, 3)]
        g = Graph("sqd")
        g.add_tensor(Tensor("a", sa, dtype, QParams(s1, zs[0])))
        g.add_tensor(Tensor("b", sb, dtype, QParams(s2, zs[1])))
        g.add_tensor(Tensor("y", out_shape, dtype, QParams(so, zs[2])))
        g.add_op(Op("squared_difference", "o", ["a", "b"], ["y"], {}))
        g.inputs, g.outputs = ["a", "b"], ["y"]
        a = rng.integers(*_RANGE[dtype], sa).astype(dtype)
        b = rng.integers(*_RANGE[dtype], sb).astype(dtype)
        want = run(g, [a, b])[0]
        q = lower(g, g.ops[0])
        params = AddParams(*(int(q[f[0]]) for f in AddParams._fields_))
        out, optr = guarded(want.size, dtype)
        bc = _bc(sa, sb, out_shape)
        assert getattr(lib, f"mt_squared_difference_{_sfx(dtype)}")(C.byref(params), C.byref(bc), _vp(a), _vp(b),
                                                                     optr) == 0
        _check(out, want, f"squared_difference {dtype} case {case}")


@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_prelu(lib, dtype: str) -> None:  # noqa: F811
    rng = np.random.default_rng(83 if dtype == "int8" else 84)
    shapes = [((1, 3, 4, 5), (1, 1, 5)), ((1, 3, 4, 5), (5,)), ((1, 3, 4, 5), (1, 3, 4, 5)), ((2, 7), (1,)),
              ((1, 3, 4, 5), (3, 1, 5))]
    for case in range(N_CASES):
        sx_shape, sa_shape = shapes[case % len(shapes)]
        s_x, s_a, s_y = (float(10 ** v) for v in rng.uniform(-2.5, -0.5, 3))
        if dtype == "int16":
            s_x, s_y = s_x / 256, s_y / 256
        z_x, z_y = (0, 0) if dtype == "int16" else (int(v) for v in rng.integers(-128, 128, 2))
        z_a = int(rng.integers(-128, 128))
        g = Graph("prelu")
        g.add_tensor(Tensor("x", sx_shape, dtype, QParams(s_x, z_x)))
        g.add_tensor(Tensor("a", sa_shape, "int8", QParams(s_a, z_a)))
        g.add_tensor(Tensor("y", sx_shape, dtype, QParams(s_y, z_y)))
        g.add_op(Op("prelu", "o", ["x", "a"], ["y"], {}))
        g.inputs, g.outputs = ["x", "a"], ["y"]
        x = rng.integers(*_RANGE[dtype], sx_shape).astype(dtype)
        a = rng.integers(-128, 128, sa_shape).astype(np.int8)
        want = run(g, [x, a])[0]
        q = lower(g, g.ops[0])
        params = PreluParams(*(int(q[f[0]]) for f in PreluParams._fields_))
        out, optr = guarded(want.size, dtype)
        bc = _bc(sx_shape, sa_shape, sx_shape)
        assert getattr(lib, f"mt_prelu_{_sfx(dtype)}")(C.byref(params), C.byref(bc), _vp(x), _vp(a), optr) == 0
        _check(out, want, f"prelu {dtype} case {case}")


def _unary(kind: str, dtype: str, shape, s_x: float, s_y: float, z_x: int, z_y: int) -> Graph:
    g = Graph(kind)
    g.add_tensor(Tensor("x", shape, dtype, QParams(s_x, z_x)))
    g.add_tensor(Tensor("y", shape, dtype, QParams(s_y, z_y)))
    g.add_op(Op(kind, "o", ["x"], ["y"], {}))
    g.inputs, g.outputs = ["x"], ["y"]
    return g


def test_elu_lut(lib) -> None:  # noqa: F811
    """ELU through mt_lut_s8 on the compiler's table, every input value."""
    rng = np.random.default_rng(85)
    x = np.arange(-128, 128, dtype=np.int8)
    for case in range(N_CASES):
        s_x, s_y = (float(10 ** v) for v in rng.uniform(-2.5, 0, 2))
        z_x, z_y = (int(v) for v in rng.integers(-128, 128, 2))
        g = _unary("elu", "int8", (256,), s_x, s_y, z_x, z_y)
        want = run(g, [x])[0]
        lut = np.ascontiguousarray(lower(g, g.ops[0])["lut"])
        out, optr = guarded(256, "int8")
        assert lib.mt_lut_s8(_vp(lut), _vp(x), optr, C.c_int32(256)) == 0
        _check(out, want, f"elu case {case}")


@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_rsqrt(lib, dtype: str) -> None:  # noqa: F811
    rng = np.random.default_rng(86 if dtype == "int8" else 87)
    for case in range(N_CASES):
        if dtype == "int8":
            s_x, s_y = (float(10 ** v) for v in rng.uniform(-2.5, 0.5, 2))
            z_x, z_y = (int(v) for v in rng.integers(-128, 128, 2))
            x = np.arange(z_x, 128, dtype=np.int8)
        else:
            s_x, s_y = float(10 ** rng.uniform(-6, -1)), float(10 ** rng.uniform(-5, -2))
            z_x = z_y = 0
            x = np.concatenate([np.arange(0, 64), rng.integers(0, 32768, 200)]).astype(np.int16)
        g = _unary("rsqrt", dtype, x.shape, s_x, s_y, z_x, z_y)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        out, optr = guarded(x.size, dtype)
        assert _rsqrt_call(lib, dtype, q, x, optr) == 0
        _check(out, want, f"rsqrt {dtype} case {case}")
        if z_x > -128 or dtype == "int16":  # an input below the zero point fails, as TFLM's invoke
            bad = x.copy()
            bad[-1] = z_x - 1
            assert _rsqrt_call(lib, dtype, q, bad, guarded(x.size, dtype)[1]) != 0


def _rsqrt_call(lib: C.CDLL, dtype: str, q: dict, x: np.ndarray, optr: C.c_void_p) -> int:  # noqa: F811
    if dtype == "int8":
        lut = np.ascontiguousarray(q["lut"])
        return lib.mt_rsqrt_s8(_vp(lut), C.c_int32(q["input_zp"]), _vp(x), optr, C.c_int32(x.size))
    params = RsqrtParams(*(int(q[f[0]]) for f in RsqrtParams._fields_))
    return lib.mt_rsqrt_s16(C.byref(params), _vp(x), optr, C.c_int32(x.size))


def test_l2_norm(lib) -> None:  # noqa: F811
    rng = np.random.default_rng(88)
    shapes = [(1, 3, 4, 16), (5, 7), (1, 1), (2, 300), (1, 2, 2048)]
    for case in range(N_CASES):
        shape = shapes[case % len(shapes)]
        z_x = int(rng.integers(-128, 128))
        g = _unary("l2_norm", "int8", shape, float(rng.uniform(0.01, 0.1)), 1 / 128, z_x, 0)
        x = rng.integers(-128, 128, shape)
        if case % 2:  # rows of sum 0 and 1, and tiny norms
            rows = x.reshape(-1, shape[-1])
            rows[0] = z_x
            rows[-1] = np.clip(z_x + rng.integers(-1, 2, shape[-1]), -128, 127)
        x = x.astype(np.int8)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        out, optr = guarded(x.size, "int8")
        assert lib.mt_l2_norm_s8(C.c_int32(q["input_zp"]), C.c_int32(q["outer"]), C.c_int32(q["depth"]), _vp(x),
                                 optr) == 0
        _check(out, want, f"l2_norm case {case}")


@pytest.mark.skipif("MT_KERNEL_LIB" in os.environ, reason="already inside the sanitized run")
def test_sanitized_run(tmp_path) -> None:
    """Reruns this file against an ASan + UBSan build (UB aborts)."""
    run_sanitized(__file__, tmp_path, cases=4)
