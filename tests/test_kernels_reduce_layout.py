"""runtime_c kernels of the TFLite layout and reduction ops vs the golden model, on the host.

Like tests/test_kernels_mixed.py: a random one-op graph, `compiler.golden.reference.run` for the
expected bytes, `compiler.core.lower.lower` and the emitter's walks (`codegen.emit`) for the kernel
arguments, the C kernel called through ctypes with guard bytes around the output.
`test_sanitized_run` reruns this file against an ASan + UBSan build. Skipped without a C compiler.
Covers: mt_copy_strided_s8/_s16 for STRIDED_SLICE (negative strides), DEPTH_TO_SPACE and
SPACE_TO_DEPTH; mt_reduce_sum_s8/_s16, mt_reduce_max_s8, mt_arg_min_max_s8,
mt_resize_bilinear_s8, mt_batch_matmul_s16.
"""

from __future__ import annotations

import ctypes as C
import os

import numpy as np
import pytest

from codegen.emit import block_walk, reduce_walk, strided_slice_walk
from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.core.lower import lower
from compiler.golden.reference import run
from tests.test_kernels import CC, View, build_library, run_sanitized
from tests.test_transformer_kernels import BmmDims, BmmParams

N_CASES = int(os.environ.get("MT_KERNEL_CASES", "12"))
GUARD = 16


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> C.CDLL:
    path = os.environ.get("MT_KERNEL_LIB")
    if not path:
        if CC is None:
            pytest.skip("no host C compiler (cc/gcc/clang) found: kernel tests need one")
        path = str(build_library(tmp_path_factory.mktemp("mtlib") / "libmt.so"))
    return C.CDLL(path)


class Strided(C.Structure):
    _fields_ = [("shape", C.c_int32 * 4), ("in_stride", C.c_int32 * 4), ("out_stride", C.c_int32 * 4)]


class ReduceDims(C.Structure):
    _fields_ = [(n, C.c_int32 * 4) for n in ("shape", "stride", "rshape", "rstride")]


class ReduceParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_zp", "output_zp", "count", "multiplier", "shift")]


_RANGE = {"int8": (-128, 128), "int16": (-32768, 32768)}


def one_op(kind: str, xs, ys, dtype: str, attrs: dict, sx=0.05, zx=0, sy=0.05, zy=0, ydtype=None) -> Graph:
    g = Graph(kind)
    g.add_tensor(Tensor("x", tuple(xs), dtype, QParams(sx, zx)))
    yq = None if ydtype == "int32" else QParams(sy, zy)
    g.add_tensor(Tensor("y", tuple(ys), ydtype or dtype, yq))
    g.add_op(Op(kind, "op", ["x"], ["y"], attrs))
    g.inputs, g.outputs = ["x"], ["y"]
    return g


def guarded(n: int, dtype: str) -> tuple[np.ndarray, C.c_void_p]:
    buf = np.full(n + 2 * GUARD, 0x5A, dtype=dtype)
    return buf, C.c_void_p(buf.ctypes.data + GUARD * buf.itemsize)


def check(out: np.ndarray, want: np.ndarray, what: str) -> None:
    n = want.size
    assert np.array_equal(out[GUARD : GUARD + n], want.reshape(-1)), what
    assert (out[:GUARD] == out[-1]).all() and (out[GUARD + n :] == out[-1]).all(), f"{what}: wrote outside"


def ptr(a: np.ndarray, offset: int = 0) -> C.c_void_p:
    return C.c_void_p(a.ctypes.data + offset * a.itemsize)


def strided(shape, in_strides) -> Strided:
    shape, in_strides = list(shape), list(in_strides)
    pad = 4 - len(shape)
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return Strided((C.c_int32 * 4)(*([1] * pad + shape)), (C.c_int32 * 4)(*([0] * pad + in_strides)),
                   (C.c_int32 * 4)(*([0] * pad + list(reversed(out)))))


@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_strided_slice_copy(lib, dtype: str) -> None:
    rng = np.random.default_rng(1)
    for _ in range(N_CASES):
        rank = int(rng.integers(1, 5))
        xs = tuple(int(v) for v in rng.integers(1, 7, rank))
        steps = tuple(int(v) for v in rng.choice([-3, -2, -1, 1, 2, 3], rank))
        begin, size = [], []
        for n, s in zip(xs, steps, strict=True):
            b = int(rng.integers(0, n))
            cnt = len(range(b, n if s > 0 else -1, s))
            begin.append(b)
            size.append(int(rng.integers(1, cnt + 1)))
        attrs = {"begin": tuple(begin), "steps": steps, "size": tuple(size)}
        g = one_op("strided_slice", xs, size, dtype, attrs)
        x = rng.integers(*_RANGE[dtype], xs).astype(dtype)
        want = run(g, [x])[0]
        shape, st, base = strided_slice_walk(xs, attrs)
        out, optr = guarded(want.size, dtype)
        fn = getattr(lib, f"mt_copy_strided_{'s16' if dtype == 'int16' else 's8'}")
        assert fn(C.byref(strided(shape, st)), ptr(x, base), optr) == 0
        check(out, want, f"strided_slice {xs} {attrs}")


@pytest.mark.parametrize("kind", ("depth_to_space", "space_to_depth"))
def test_depth_space_copy(lib, kind: str) -> None:
    rng = np.random.default_rng(2)
    for _ in range(N_CASES):
        b = int(rng.integers(1, 4))
        n, h, w, c = (int(v) for v in rng.integers(1, 4, 4))
        if kind == "depth_to_space":
            xs, ys = (n, h, w, c * b * b), (n, h * b, w * b, c)
        else:
            xs, ys = (n, h * b, w * b, c), (n, h, w, c * b * b)
        g = one_op(kind, xs, ys, "int8", {"block_size": b})
        x = rng.integers(-128, 128, xs).astype(np.int8)
        want = run(g, [x])[0]
        shape, st = block_walk(kind, xs, b)
        out, optr = guarded(want.size, "int8")
        assert lib.mt_copy_strided_s8(C.byref(strided(shape, st)), ptr(x), optr) == 0
        check(out, want, f"{kind} {xs} block {b}")


def rdims(d: dict) -> ReduceDims:
    return ReduceDims(*((C.c_int32 * 4)(*d[k]) for k in ("shape", "stride", "rshape", "rstride")))


def _reduce_case(rng: np.random.Generator):
    rank = int(rng.integers(1, 5))
    xs = tuple(int(v) for v in rng.integers(1, 7, rank))
    axes = tuple(sorted(set(int(a) for a in rng.integers(0, rank, int(rng.integers(1, rank + 1))))))
    keep = bool(rng.integers(0, 2))
    ys = tuple(1 if d in axes else n for d, n in enumerate(xs)) if keep else tuple(
        n for d, n in enumerate(xs) if d not in axes)
    return xs, ys, {"axes": axes, "keep_dims": keep}


@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_reduce_sum(lib, dtype: str) -> None:
    rng = np.random.default_rng(3)
    for case in range(N_CASES):
        xs, ys, attrs = _reduce_case(rng)
        n = int(np.prod([xs[a] for a in attrs["axes"]]))
        zx, zy = (0, 0) if dtype == "int16" else (int(rng.integers(-128, 128)), int(rng.integers(-128, 128)))
        sx = float(rng.uniform(1e-3, 0.1))
        sy = sx * float(rng.choice([np.sqrt(n), 1.0, 0.4, n * 0.9]))
        g = one_op("reduce_sum", xs, ys, dtype, attrs, sx, zx, sy, zy)
        x = rng.integers(*_RANGE[dtype], xs).astype(dtype)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        d = reduce_walk(xs, attrs["axes"])
        p = ReduceParams(q["input_zp"], q["output_zp"], q["count"], int(q["multiplier"]), int(q["shift"]))
        out, optr = guarded(want.size, dtype)
        fn = getattr(lib, f"mt_reduce_sum_{'s16' if dtype == 'int16' else 's8'}")
        assert fn(C.byref(p), C.byref(rdims(d)), ptr(x), optr) == 0
        check(out, want, f"sum {xs} {attrs} case {case}")


def test_reduce_max(lib) -> None:
    rng = np.random.default_rng(4)
    for case in range(N_CASES):
        xs, ys, attrs = _reduce_case(rng)
        g = one_op("reduce_max", xs, ys, "int8", attrs, 0.05, -3, 0.05, -3)
        x = rng.integers(-128, 128 if case % 2 else -120, xs).astype(np.int8)
        want = run(g, [x])[0]
        d = reduce_walk(xs, attrs["axes"])
        out, optr = guarded(want.size, "int8")
        assert lib.mt_reduce_max_s8(C.byref(rdims(d)), ptr(x), optr) == 0
        check(out, want, f"reduce_max {xs} {attrs}")


@pytest.mark.parametrize("kind", ("arg_max", "arg_min"))
def test_arg_min_max(lib, kind: str) -> None:
    rng = np.random.default_rng(5)
    for case in range(N_CASES):
        rank = int(rng.integers(1, 5))
        xs = tuple(int(v) for v in rng.integers(1, 7, rank))
        axis = int(rng.integers(0, rank))
        g = one_op(kind, xs, xs[:axis] + xs[axis + 1 :], "int8", {"axis": axis}, ydtype="int32")
        lo = int(rng.integers(-128, 120))
        x = rng.integers(lo, lo + (3 if case % 2 else 8), xs).astype(np.int8)  # ties
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        out, optr = guarded(want.size, "int32")
        assert lib.mt_arg_min_max_s8(ptr(x), q["outer"], q["axis_size"], q["inner"], int(kind == "arg_max"), optr) == 0
        check(out, want, f"{kind} {xs} axis {axis}")


def test_resize_bilinear(lib) -> None:
    rng = np.random.default_rng(6)
    for case in range(N_CASES):
        h, w, oh, ow = (int(v) for v in rng.integers(1, 10, 4))
        c = int(rng.integers(1, 5))
        ac = bool(case % 3 == 1)
        hp = bool(case % 3 == 2)
        g = one_op("resize_bilinear", (1, h, w, c), (1, oh, ow, c), "int8", {"align_corners": ac,
                                                                              "half_pixel_centers": hp})
        x = rng.integers(-128, 128, (1, h, w, c)).astype(np.int8)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        ymap, xmap = np.ascontiguousarray(q["y_map"]), np.ascontiguousarray(q["x_map"])
        out, optr = guarded(want.size, "int8")
        rc = lib.mt_resize_bilinear_s8(ptr(x), C.byref(View(h, w, c, w * c, c)), ptr(ymap), ptr(xmap), optr,
                                       C.byref(View(oh, ow, c, ow * c, c)))
        assert rc == 0
        check(out, want, f"resize_bilinear {h}x{w}->{oh}x{ow} ac={ac} hp={hp}")


def test_batch_matmul_s16(lib) -> None:
    rng = np.random.default_rng(7)
    for case in range(N_CASES):
        bt, m, k, n = (int(v) for v in rng.integers(1, 7, 4))
        tb = bool(case % 2)
        g = Graph("bmm16")
        sa, sb = float(rng.uniform(1e-4, 1e-3)), float(rng.uniform(1e-4, 1e-3))
        g.add_tensor(Tensor("a", (bt, m, k), "int16", QParams(sa, 0)))
        g.add_tensor(Tensor("b", (bt, n, k) if tb else (bt, k, n), "int16", QParams(sb, 0)))
        g.add_tensor(Tensor("y", (bt, m, n), "int16", QParams(sa * sb * float(rng.uniform(1, 3e4)) * np.sqrt(k), 0)))
        g.add_op(Op("batch_matmul", "bmm", ["a", "b"], ["y"], {"transpose_b": tb}))
        g.inputs, g.outputs = ["a", "b"], ["y"]
        a = rng.integers(-32768, 32768, g.t("a").shape).astype(np.int16)
        b = rng.integers(-32768, 32768, g.t("b").shape).astype(np.int16)
        want = run(g, [a, b])[0]
        q = lower(g, g.ops[0])
        p = BmmParams(q["a_offset"], q["b_offset"], q["output_offset"], int(q["multiplier"]), int(q["shift"]),
                      q["act_min"], q["act_max"])
        d = BmmDims(bt, m, k, n, m * k, k, k * n, 1 if tb else n, k if tb else 1, m * n, n)
        out, optr = guarded(want.size, "int16")
        assert lib.mt_batch_matmul_s16(C.byref(p), C.byref(d), ptr(a), ptr(b), optr) == 0
        check(out, want, f"bmm16 case {case}")


@pytest.mark.skipif("MT_KERNEL_LIB" in os.environ, reason="already inside the sanitized run")
def test_sanitized_run(tmp_path) -> None:
    """Reruns a few cases of every test above against an ASan + UBSan build (UB aborts)."""
    run_sanitized(__file__, tmp_path, cases=4)
