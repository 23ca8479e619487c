"""runtime_c kernels for uint8 model edges and int16 activations vs the golden model.

Like tests/test_kernels.py: a one-op graph, `compiler.golden.reference.run` for the expected bytes,
`compiler.core.lower.lower` for the integer parameters, the C kernel called through ctypes on a
host build, with guard bytes around the output. `test_sanitized_run` reruns this file
against an ASan+UBSan build. Skipped when no C compiler exists.
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
from tests.test_kernels import (
    AddParams,
    Broadcast,
    ConvParams,
    Dims,
    FcParams,
    MulParams,
    Pad,
    PcQuant,
    PoolParams,
    View,
    kernel_library,
    run_sanitized,
)

N_CASES = int(os.environ.get("MT_KERNEL_CASES", "12"))


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> C.CDLL:
    return kernel_library(tmp_path_factory)


class RequantParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_zp", "output_zp", "multiplier", "shift")]


_RANGE = {"int8": (-128, 128), "uint8": (0, 256), "int16": (-32768, 32768)}
_ZP = {"int8": (-128, 128), "uint8": (0, 256), "int16": (0, 1)}  # int16: symmetric


def guarded(n: int, dtype: str, guard: int = 16) -> tuple[np.ndarray, C.c_void_p]:
    buf = np.full(n + 2 * guard, 0x5A, dtype=dtype)
    return buf, C.c_void_p(buf.ctypes.data + guard * buf.itemsize)


@pytest.mark.parametrize(
    "src,dst,fn",
    [
        ("uint8", "int8", "mt_requantize_u8_s8"),
        ("int8", "uint8", "mt_requantize_s8_u8"),
        ("int8", "int16", "mt_requantize_s8_s16"),
        ("int16", "int8", "mt_requantize_s16_s8"),
        ("int16", "int16", "mt_requantize_s16"),
    ],
)
def test_requantize(lib, src: str, dst: str, fn: str) -> None:
    rng = np.random.default_rng(hash((src, dst)) % 1000)
    for case in range(N_CASES):
        n = int(rng.integers(1, 300))
        s_in = float(np.float32(10 ** rng.uniform(-4, 0)))
        s_out = float(np.float32(s_in * 10 ** rng.uniform(-1.5, 1.5))) if case else s_in
        z_in, z_out = (int(rng.integers(*_ZP[d])) for d in (src, dst))
        g = Graph("rq")
        g.add_tensor(Tensor("x", (n,), src, QParams(s_in, z_in)))
        g.add_tensor(Tensor("y", (n,), dst, QParams(s_out, z_out)))
        g.add_op(Op("quantize", "q", ["x"], ["y"], {}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(*_RANGE[src], n).astype(src)
        want = run(g, [x])[0]
        p = lower(g, g.ops[0])
        params = RequantParams(p["input_zp"], p["output_zp"], int(p["multiplier"]), int(p["shift"]))
        out, optr = guarded(n, dst)
        rc = getattr(lib, fn)(C.byref(params), C.c_void_p(x.ctypes.data), optr, C.c_int32(n))
        assert rc == 0
        assert np.array_equal(out[16 : 16 + n], want), f"{fn} case {case}"
        assert (out[:16] == np.asarray(0x5A).astype(dst)).all() and (out[16 + n :] == out[0]).all()


def _conv16_case(rng: np.random.Generator, bias: str) -> Graph:
    h, w, ic, oc = (int(v) for v in rng.integers(1, 9, 4))
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    sh, sw, dh, dw = (int(v) for v in rng.integers(1, 3, 4))
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    top, bottom, left, right = (int(v) for v in rng.integers(0, 2, 4))
    oh = (h + top + bottom - eh) // sh + 1
    ow = (w + left + right - ew) // sw + 1
    if oh < 1 or ow < 1:
        top = bottom = left = right = 0
        h, w = max(h, eh), max(w, ew)
        oh, ow = (h - eh) // sh + 1, (w - ew) // sw + 1
    s_x, s_y = 1e-4, float(rng.uniform(3e-5, 2e-4)) * np.sqrt(kh * kw * ic)
    g = Graph("c16")
    g.add_tensor(Tensor("x", (1, h, w, ic), "int16", QParams(s_x, 0)))
    wq = QParams(rng.uniform(0.002, 0.02, oc).astype(np.float32), np.zeros(oc, np.int64), 0)
    g.add_tensor(Tensor("w", (oc, kh, kw, ic), "int8", wq, rng.integers(-127, 128, (oc, kh, kw, ic))))
    ins = ["x", "w"]
    if bias != "none":
        hi = 1 << (24 if bias == "int64" else 16)
        g.add_tensor(Tensor("b", (oc,), bias, None, rng.integers(-hi, hi, oc)))
        ins.append("b")
    g.add_tensor(Tensor("y", (1, oh, ow, oc), "int16", QParams(s_y, 0)))
    act = ("none", "relu", "relu6")[int(rng.integers(0, 3))]
    attrs = {"stride": (sh, sw), "dilation": (dh, dw), "pads": (top, bottom, left, right), "activation": act}
    g.add_op(Op("conv2d", "c", ins, ["y"], attrs))
    g.inputs, g.outputs = ["x"], ["y"]
    return g


@pytest.mark.parametrize("bias", ("int64", "int32", "none"))
def test_conv_s16(lib, bias: str) -> None:
    rng = np.random.default_rng({"int64": 1, "int32": 2, "none": 3}[bias])
    for case in range(N_CASES):
        g = _conv16_case(rng, bias)
        op = g.ops[0]
        x = rng.integers(-32768, 32768, g.t("x").shape).astype(np.int16)
        want = run(g, [x])[0]
        q = lower(g, op)
        t, bo, le, ri = op.attrs["pads"]
        params = ConvParams(0, q["output_offset"], *op.attrs["stride"], *op.attrs["dilation"], Pad(t, bo, le, ri),
                            q["act_min"], q["act_max"])
        mult = q["multiplier"].astype(np.int32)
        shift = q["shift"].astype(np.int32)
        quant = PcQuant(mult.ctypes.data, shift.ctypes.data)
        _, h, w, c = x.shape
        _, oh, ow, oc = want.shape
        in_v, out_v = View(h, w, c, w * c, c), View(oh, ow, oc, ow * oc, oc)
        wt = g.t("w").data
        fd = Dims(*wt.shape)
        b = g.t("b").data if bias != "none" else None
        b64 = C.c_void_p(b.ctypes.data) if bias == "int64" else None
        b32 = C.c_void_p(b.ctypes.data) if bias == "int32" else None
        out, optr = guarded(want.size, "int16")
        rc = lib.mt_conv_s16(C.byref(params), C.byref(quant), C.c_void_p(x.ctypes.data), C.byref(in_v),
                             C.c_void_p(wt.ctypes.data), C.byref(fd), b64, b32, optr, C.byref(out_v))
        assert rc == 0
        assert np.array_equal(out[16 : 16 + want.size].reshape(want.shape), want), f"case {case}: {g.dump()}"
        assert (out[:16] == 0x5A).all() and (out[16 + want.size :] == 0x5A).all()


def _vp(a: np.ndarray | None) -> C.c_void_p | None:
    return None if a is None else C.c_void_p(a.ctypes.data)


def _check(out: np.ndarray, want: np.ndarray, what: str) -> None:
    assert np.array_equal(out[16 : 16 + want.size].reshape(want.shape), want), what
    assert (out[:16] == 0x5A).all() and (out[16 + want.size :] == 0x5A).all(), f"{what}: guard bytes"


def test_depthwise_conv_s16(lib) -> None:
    rng = np.random.default_rng(7)
    for case in range(N_CASES):
        h, w, c = (int(v) for v in rng.integers(1, 8, 3))
        m, kh, kw, sh, sw, dh, dw = (int(v) for v in rng.integers(1, 3, 7))
        top, left = (int(v) for v in rng.integers(0, 2, 2))
        h, w = max(h, (kh - 1) * dh + 1), max(w, (kw - 1) * dw + 1)
        oh, ow = (h + top - (kh - 1) * dh - 1) // sh + 1, (w + left - (kw - 1) * dw - 1) // sw + 1
        oc = c * m
        g = Graph("dw16")
        g.add_tensor(Tensor("x", (1, h, w, c), "int16", QParams(1e-4, 0)))
        wq = QParams(rng.uniform(0.002, 0.02, oc).astype(np.float32), np.zeros(oc, np.int64), 3)
        g.add_tensor(Tensor("w", (1, kh, kw, oc), "int8", wq, rng.integers(-127, 128, (1, kh, kw, oc))))
        ins = ["x", "w"]
        if case % 3:
            g.add_tensor(Tensor("b", (oc,), "int64", None, rng.integers(-(1 << 24), 1 << 24, oc)))
            ins.append("b")
        g.add_tensor(Tensor("y", (1, oh, ow, oc), "int16", QParams(float(rng.uniform(1e-4, 6e-4)) * kh * kw, 0)))
        act = ("none", "relu", "relu6")[case % 3]
        attrs = {"stride": (sh, sw), "dilation": (dh, dw), "pads": (top, 0, left, 0), "activation": act,
                 "depth_multiplier": m}
        g.add_op(Op("depthwise_conv2d", "d", ins, ["y"], attrs))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(-32768, 32768, (1, h, w, c)).astype(np.int16)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        params = ConvParams(0, q["output_offset"], sh, sw, dh, dw, Pad(top, 0, left, 0), q["act_min"], q["act_max"])
        mult, shift = q["multiplier"].astype(np.int32), q["shift"].astype(np.int32)
        quant = PcQuant(mult.ctypes.data, shift.ctypes.data)
        wt = g.t("w").data
        bias = g.t("b").data if "b" in g.tensors else None
        out, optr = guarded(want.size, "int16")
        rc = lib.mt_depthwise_conv_s16(C.byref(params), C.byref(quant), C.c_int32(m), _vp(x),
                                       C.byref(View(h, w, c, w * c, c)), _vp(wt), C.byref(Dims(*wt.shape)),
                                       _vp(bias), optr, C.byref(View(oh, ow, oc, ow * oc, oc)))
        assert rc == 0
        _check(out, want, f"dw16 case {case}")


@pytest.mark.parametrize("bias", ("int64", "int32", "none"))
def test_fully_connected_s16(lib, bias: str) -> None:
    rng = np.random.default_rng(len(bias))
    for case in range(N_CASES):
        batches, n_in, n_out = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 10))
        per_channel = bool(case % 2)
        g = Graph("fc16")
        g.add_tensor(Tensor("x", (batches, n_in), "int16", QParams(1e-4, 0)))
        ws = rng.uniform(0.002, 0.02, n_out if per_channel else 1).astype(np.float32)
        g.add_tensor(Tensor("w", (n_out, n_in), "int8", QParams(ws, np.zeros(ws.size, np.int64), 0),
                            rng.integers(-127, 128, (n_out, n_in))))
        ins = ["x", "w"]
        if bias != "none":
            hi = 1 << (26 if bias == "int64" else 18)
            g.add_tensor(Tensor("b", (n_out,), bias, None, rng.integers(-hi, hi, n_out)))
            ins.append("b")
        g.add_tensor(Tensor("y", (batches, n_out), "int16", QParams(float(rng.uniform(1e-4, 3e-4)) * n_in, 0)))
        g.add_op(Op("fully_connected", "f", ins, ["y"], {"activation": ("none", "relu")[case % 2]}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(-32768, 32768, (batches, n_in)).astype(np.int16)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        params = FcParams(0, q["weights_offset"], q["output_offset"], q["act_min"], q["act_max"])
        mult, shift = q["multiplier"].astype(np.int32), q["shift"].astype(np.int32)
        quant = PcQuant(mult.ctypes.data, shift.ctypes.data)
        b = g.t("b").data if bias != "none" else None
        out, optr = guarded(want.size, "int16")
        rc = lib.mt_fully_connected_s16(C.byref(params), C.byref(quant), C.c_int32(int(per_channel)), _vp(x),
                                        C.c_int32(batches), C.c_int32(n_in), _vp(g.t("w").data),
                                        _vp(b) if bias == "int64" else None, _vp(b) if bias == "int32" else None,
                                        C.c_int32(n_out), optr)
        assert rc == 0
        _check(out, want, f"fc16 {bias} case {case}")


BCAST = [((1, 3, 4, 5), (1, 3, 4, 5)), ((1, 3, 4, 5), (1, 1, 1, 5)), ((1, 3, 1, 5), (1, 1, 4, 1)), ((2, 6), (1, 6))]


@pytest.mark.parametrize("kind,dtype", [("add", "int16"), ("mul", "int16"), ("sub", "int16"), ("sub", "int8"),
                                        ("maximum", "int8"), ("minimum", "int8"), ("maximum", "int16"),
                                        ("minimum", "int16")])
def test_binary_bcast(lib, kind: str, dtype: str) -> None:
    rng = np.random.default_rng(len(kind) * 10 + len(dtype))
    for case in range(N_CASES):
        sa, sb = BCAST[case % len(BCAST)]
        out_shape = tuple(max(p, q) for p, q in zip(sa, sb, strict=True))
        base = 1e-4 if dtype == "int16" else 0.02
        s1, s2 = (float(v) * base for v in rng.uniform(1, 4, 2))
        so = float(rng.uniform(1, 4)) * base if kind != "mul" else s1 * s2 * 32768 * float(rng.uniform(1, 8))
        zs = [0, 0, 0] if dtype == "int16" else [int(v) for v in rng.integers(-128, 128, 3)]
        g = Graph("b")
        g.add_tensor(Tensor("a", sa, dtype, QParams(s1, zs[0])))
        g.add_tensor(Tensor("b", sb, dtype, QParams(s2, zs[1])))
        g.add_tensor(Tensor("y", out_shape, dtype, QParams(so, zs[2])))
        attrs = {} if kind in ("maximum", "minimum") else {"activation": ("none", "relu", "relu6")[case % 3]}
        g.add_op(Op(kind, "o", ["a", "b"], ["y"], attrs))
        g.inputs, g.outputs = ["a", "b"], ["y"]
        a = rng.integers(*_RANGE[dtype], sa).astype(dtype)
        b = rng.integers(*_RANGE[dtype], sb).astype(dtype)
        want = run(g, [a, b])[0]
        q = lower(g, g.ops[0])
        pad = lambda s: (1,) * (4 - len(s)) + tuple(s)  # noqa: E731
        bc = Broadcast((C.c_int32 * 4)(*pad(out_shape)), (C.c_int32 * 4)(*_bcast_strides(pad(sa), pad(out_shape))),
                       (C.c_int32 * 4)(*_bcast_strides(pad(sb), pad(out_shape))))
        out, optr = guarded(want.size, dtype)
        fn = getattr(lib, f"mt_{kind}_{'s16' if dtype == 'int16' else 's8'}")
        if kind in ("maximum", "minimum"):
            rc = fn(C.byref(bc), _vp(a), _vp(b), optr)
        else:
            cls = MulParams if kind == "mul" else AddParams
            params = cls(*(int(q[f[0]]) for f in cls._fields_))
            rc = fn(C.byref(params), C.byref(bc), _vp(a), _vp(b), optr)
        assert rc == 0
        _check(out, want, f"{kind} {dtype} case {case}")


class LeakyParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_zp", "output_zp", "identity_multiplier", "identity_shift",
                                         "alpha_multiplier", "alpha_shift")]


@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_leaky_relu(lib, dtype: str) -> None:
    rng = np.random.default_rng(31 if dtype == "int8" else 32)
    for case in range(N_CASES):
        n = int(rng.integers(1, 200))
        s_x, s_y = (float(v) for v in rng.uniform(0.01, 0.1, 2))
        z_x, z_y = (0, 0) if dtype == "int16" else (int(v) for v in rng.integers(-128, 128, 2))
        g = Graph("lr")
        g.add_tensor(Tensor("x", (n,), dtype, QParams(s_x, z_x)))
        g.add_tensor(Tensor("y", (n,), dtype, QParams(s_y, z_y)))
        g.add_op(Op("leaky_relu", "l", ["x"], ["y"], {"alpha": float(rng.uniform(0, 1))}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(*_RANGE[dtype], n).astype(dtype)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        params = LeakyParams(*(int(q[f[0]]) for f in LeakyParams._fields_))
        out, optr = guarded(n, dtype)
        fn = getattr(lib, f"mt_leaky_relu_{'s16' if dtype == 'int16' else 's8'}")
        assert fn(C.byref(params), _vp(x), optr, C.c_int32(n)) == 0
        _check(out, want, f"leaky {dtype} case {case}")


def test_gather_s8(lib) -> None:
    rng = np.random.default_rng(41)
    for case in range(N_CASES):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(1, 6, rank))
        axis = int(rng.integers(0, rank))
        idx = rng.integers(0, shape[axis], int(rng.integers(1, 7))).astype(np.int32)
        g = Graph("ga")
        g.add_tensor(Tensor("x", shape, "int8", QParams(0.1, 0)))
        out_shape = shape[:axis] + (idx.size,) + shape[axis + 1 :]
        g.add_tensor(Tensor("y", out_shape, "int8", QParams(0.1, 0)))
        g.add_op(Op("gather", "g", ["x"], ["y"], {"axis": axis, "indices": idx.tolist()}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(-128, 128, shape).astype(np.int8)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        out, optr = guarded(want.size, "int8")
        rc = lib.mt_gather_s8(_vp(x), C.c_int32(q["outer"]), C.c_int32(q["axis_size"]), C.c_int32(q["inner"]),
                              _vp(q["indices"]), C.c_int32(idx.size), optr)
        assert rc == 0
        _check(out, want, f"gather case {case}")


@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_resize_nearest(lib, dtype: str) -> None:
    rng = np.random.default_rng(51)
    for case in range(N_CASES):
        h, w, c, oh, ow = (int(v) for v in rng.integers(1, 9, 5))
        g = Graph("rs")
        g.add_tensor(Tensor("x", (1, h, w, c), dtype, QParams(0.1, 0)))
        g.add_tensor(Tensor("y", (1, oh, ow, c), dtype, QParams(0.1, 0)))
        attrs = {"align_corners": bool(case % 2), "half_pixel_centers": bool(case % 3 == 0) and not case % 2}
        g.add_op(Op("resize_nearest", "r", ["x"], ["y"], attrs))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(*_RANGE[dtype], (1, h, w, c)).astype(dtype)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        out, optr = guarded(want.size, dtype)
        fn = getattr(lib, f"mt_resize_nearest_{'s16' if dtype == 'int16' else 's8'}")
        rc = fn(_vp(x), C.byref(View(h, w, c, w * c, c)), _vp(q["y_map"]), _vp(q["x_map"]), optr,
                C.byref(View(oh, ow, c, ow * c, c)))
        assert rc == 0
        _check(out, want, f"resize {dtype} case {case}")


class LogisticParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_zp", "input_multiplier", "input_left_shift", "input_range_radius")]


def test_tanh_s8(lib) -> None:
    rng = np.random.default_rng(61)
    for case in range(N_CASES):
        g = Graph("th")
        s_x, z_x = float(10 ** rng.uniform(-3, -0.5)), int(rng.integers(-128, 128))
        g.add_tensor(Tensor("x", (256,), "int8", QParams(s_x, z_x)))
        g.add_tensor(Tensor("y", (256,), "int8", QParams(1 / 128, 0)))
        g.add_op(Op("tanh", "t", ["x"], ["y"], {}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = np.arange(-128, 128, dtype=np.int8)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        params = LogisticParams(*(int(q[f[0]]) for f in LogisticParams._fields_))
        out, optr = guarded(256, "int8")
        assert lib.mt_tanh_s8(C.byref(params), _vp(x), optr, C.c_int32(256)) == 0
        _check(out, want, f"tanh case {case}")


class AbsParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_zp", "output_zp", "rescale", "multiplier", "shift")]


@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_abs(lib, dtype: str) -> None:
    rng = np.random.default_rng(71)
    for case in range(N_CASES):
        n = int(rng.integers(1, 200))
        s_x = float(rng.uniform(0.01, 0.1))
        s_y = s_x if case % 3 == 0 else float(rng.uniform(0.01, 0.1))
        z_x, z_y = (0, 0) if dtype == "int16" else (int(v) for v in rng.integers(-128, 128, 2))
        g = Graph("ab")
        g.add_tensor(Tensor("x", (n,), dtype, QParams(s_x, z_x)))
        g.add_tensor(Tensor("y", (n,), dtype, QParams(s_y, z_y)))
        g.add_op(Op("abs", "a", ["x"], ["y"], {}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(*_RANGE[dtype], n).astype(dtype)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        params = AbsParams(*(int(q[f[0]]) for f in AbsParams._fields_))
        out, optr = guarded(n, dtype)
        fn = getattr(lib, f"mt_abs_{'s16' if dtype == 'int16' else 's8'}")
        assert fn(C.byref(params), _vp(x), optr, C.c_int32(n)) == 0
        _check(out, want, f"abs {dtype} case {case}")


class MeanParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_zp", "output_zp", "multiplier", "shift")]


def test_mean_hw_s16(lib) -> None:
    rng = np.random.default_rng(81)
    for case in range(N_CASES):
        h, w, c = (int(v) for v in rng.integers(1, 9, 3))
        g = Graph("mn")
        g.add_tensor(Tensor("x", (1, h, w, c), "int16", QParams(float(rng.uniform(1e-4, 5e-4)), 0)))
        g.add_tensor(Tensor("y", (1, 1, 1, c), "int16", QParams(float(rng.uniform(1e-4, 5e-4)), 0)))
        g.add_op(Op("mean", "m", ["x"], ["y"], {"axes": (1, 2), "keep_dims": True}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(-32768, 32768, (1, h, w, c)).astype(np.int16)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        params = MeanParams(*(int(q[f[0]]) for f in MeanParams._fields_))
        out, optr = guarded(c, "int16")
        assert lib.mt_mean_hw_s16(C.byref(params), _vp(x), C.byref(View(h, w, c, w * c, c)), optr) == 0
        _check(out, want, f"mean16 case {case}")


class ReluParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("rescale", "input_zp", "output_zp", "output_multiplier", "output_shift",
                                         "act_min", "act_max")]


def test_relu_s16(lib) -> None:
    rng = np.random.default_rng(91)
    for case in range(N_CASES):
        n = int(rng.integers(1, 200))
        s_x = float(rng.uniform(1e-4, 5e-4))
        hi = 6.0 if case % 2 else float("inf")
        s_y = s_x if hi == 6.0 else float(rng.uniform(1e-4, 5e-4))
        g = Graph("r16")
        g.add_tensor(Tensor("x", (n,), "int16", QParams(s_x, 0)))
        g.add_tensor(Tensor("y", (n,), "int16", QParams(s_y, 0)))
        g.add_op(Op("relu", "r", ["x"], ["y"], {"min": 0.0, "max": hi}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(-32768, 32768, n).astype(np.int16)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        rescale = int(q["mode"] == "rescale")
        params = ReluParams(rescale, *(int(q.get(k, 0)) for k in ("input_zp", "output_zp", "output_multiplier",
                                                                    "output_shift", "act_min", "act_max")))
        out, optr = guarded(n, "int16")
        assert lib.mt_relu_s16(C.byref(params), _vp(x), optr, C.c_int32(n)) == 0
        _check(out, want, f"relu16 case {case}")


@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_transpose_conv(lib, dtype: str) -> None:
    rng = np.random.default_rng(101 if dtype == "int8" else 102)
    s16 = dtype == "int16"
    for case in range(N_CASES):
        h, w, ic, oc = (int(v) for v in rng.integers(1, 6, 4))
        kh, kw, sh, sw = (int(v) for v in rng.integers(1, 4, 4))
        pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
        oh, ow = (h - 1) * sh + kh - pt - int(rng.integers(0, kh - pt + 1)), (w - 1) * sw + kw - pl
        oh = max(oh, 1)
        g = Graph("tc")
        xq = QParams(2e-4, 0) if s16 else QParams(0.05, int(rng.integers(-128, 128)))
        g.add_tensor(Tensor("x", (1, h, w, ic), dtype, xq))
        wq = QParams(rng.uniform(0.005, 0.02, oc).astype(np.float32), np.zeros(oc, np.int64), 0)
        g.add_tensor(Tensor("w", (oc, kh, kw, ic), "int8", wq, rng.integers(-127, 128, (oc, kh, kw, ic))))
        g.add_tensor(Tensor("b", (oc,), "int64" if s16 else "int32", None, rng.integers(-3000, 3000, oc)))
        yq = QParams(float(rng.uniform(2e-4, 8e-4)), 0) if s16 else QParams(float(rng.uniform(0.05, 0.2)), 3)
        g.add_tensor(Tensor("y", (1, oh, ow, oc), dtype, yq))
        attrs = {"stride": (sh, sw), "pads": (pt, 0, pl, 0), "activation": "none", "dilation": (1, 1)}
        g.add_op(Op("transpose_conv", "t", ["x", "w", "b"], ["y"], attrs))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(*_RANGE[dtype], (1, h, w, ic)).astype(dtype)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        params = ConvParams(q["input_offset"], q["output_offset"], sh, sw, 1, 1, Pad(pt, 0, pl, 0), q["act_min"],
                            q["act_max"])
        mult, shift = q["multiplier"].astype(np.int32), q["shift"].astype(np.int32)
        quant = PcQuant(mult.ctypes.data, shift.ctypes.data)
        wt, bias = g.t("w").data, g.t("b").data
        out, optr = guarded(want.size, dtype)
        fn = getattr(lib, f"mt_transpose_conv_{'s16' if s16 else 's8'}")
        rc = fn(C.byref(params), C.byref(quant), _vp(x), C.byref(View(h, w, ic, w * ic, ic)), _vp(wt),
                C.byref(Dims(*wt.shape)), _vp(bias), optr, C.byref(View(oh, ow, oc, ow * oc, oc)))
        assert rc == 0
        _check(out, want, f"transpose_conv case {case}")


def test_copy_strided_s16(lib) -> None:
    rng = np.random.default_rng(21)
    for case in range(N_CASES):
        rank = int(rng.integers(2, 5))
        shape = tuple(int(v) for v in rng.integers(1, 6, rank))
        perm = tuple(int(v) for v in rng.permutation(rank))
        g = Graph("t16")
        g.add_tensor(Tensor("x", shape, "int16", QParams(1e-3, 0)))
        g.add_tensor(Tensor("y", tuple(shape[p] for p in perm), "int16", QParams(1e-3, 0)))
        g.add_op(Op("transpose", "t", ["x"], ["y"], {"perm": perm}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(-32768, 32768, shape).astype(np.int16)
        want = run(g, [x])[0]
        st = np.cumprod((1,) + shape[::-1])[:-1][::-1]  # contiguous element strides
        pad = 4 - rank
        spec = Strided((C.c_int32 * 4)(*([1] * pad + list(want.shape))),
                       (C.c_int32 * 4)(*([0] * pad + [int(st[p]) for p in perm])),
                       (C.c_int32 * 4)(*([0] * pad + [int(v) for v in np.cumprod((1,) + want.shape[::-1])[:-1][::-1]])))
        out, optr = guarded(want.size, "int16")
        assert lib.mt_copy_strided_s16(C.byref(spec), _vp(x), optr) == 0
        _check(out, want, f"transpose16 case {case}")


class Strided(C.Structure):
    _fields_ = [("shape", C.c_int32 * 4), ("in_stride", C.c_int32 * 4), ("out_stride", C.c_int32 * 4)]


@pytest.mark.parametrize("kind", ("avg_pool2d", "max_pool2d"))
def test_pool_s16(lib, kind: str) -> None:
    rng = np.random.default_rng(13)
    for case in range(N_CASES):
        h, w, c = (int(v) for v in rng.integers(1, 9, 3))
        kh, kw, sh, sw = (int(v) for v in rng.integers(1, 4, 4))
        top, left = int(rng.integers(0, min(kh, 2))), int(rng.integers(0, min(kw, 2)))
        h, w = max(h, kh), max(w, kw)
        oh, ow = (h + top - kh) // sh + 1, (w + left - kw) // sw + 1
        g = Graph("p16")
        g.add_tensor(Tensor("x", (1, h, w, c), "int16", QParams(3e-4, 0)))
        g.add_tensor(Tensor("y", (1, oh, ow, c), "int16", QParams(3e-4, 0)))
        attrs = {"kernel": (kh, kw), "stride": (sh, sw), "pads": (top, 0, left, 0),
                 "activation": ("none", "relu", "relu6")[case % 3]}
        g.add_op(Op(kind, "p", ["x"], ["y"], attrs))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(-32768, 32768, (1, h, w, c)).astype(np.int16)
        want = run(g, [x])[0]
        q = lower(g, g.ops[0])
        params = PoolParams(kh, kw, sh, sw, Pad(top, 0, left, 0), q["act_min"], q["act_max"])
        out, optr = guarded(want.size, "int16")
        fn = getattr(lib, f"mt_{kind.removesuffix('2d')}_s16")
        rc = fn(C.byref(params), _vp(x), C.byref(View(h, w, c, w * c, c)), optr, C.byref(View(oh, ow, c, ow * c, c)))
        assert rc == 0
        _check(out, want, f"{kind}16 case {case}")


@pytest.mark.skipif("MT_KERNEL_LIB" in os.environ, reason="already inside the sanitized run")
def test_sanitized_run(tmp_path) -> None:
    """Reruns this file against an ASan + UBSan build (UB aborts)."""
    run_sanitized(__file__, tmp_path, cases=3)
