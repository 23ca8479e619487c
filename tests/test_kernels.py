"""runtime_c kernels vs the golden model, byte for byte.

Each case builds a one-op `compiler.core.ir.Graph`, runs `compiler.golden.reference.run`, lowers the op
with `compiler.core.lower.lower`, and calls the C kernel (host build, through ctypes) with those
integer parameters. Inputs and outputs live in views inside larger buffers, and the bytes
around the output window must stay untouched. `test_sanitized_run` reruns a few cases of
this file against an ASan+UBSan build in a subprocess. Skipped when no C compiler exists.

Environment: MT_KERNEL_LIB (use this prebuilt library), MT_KERNEL_CASES (cases per kernel).
"""

from __future__ import annotations

import ctypes as C
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from compiler.core import quant as Q
from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.core.lower import lower
from compiler.errors import ModelError
from compiler.golden.reference import run

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime_c"
SHIM = Path(__file__).resolve().parent / "kernels" / "quant_shim.c"
CFLAGS = ["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
N_CASES = int(os.environ.get("MT_KERNEL_CASES", "30"))
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def build_library(out: Path, sanitize: bool = False) -> Path:
    sources = sorted(str(p) for p in RUNTIME.glob("*.c")) + [str(SHIM)]
    flags = CFLAGS + (SANITIZE if sanitize else [])
    subprocess.run([CC, *flags, f"-I{RUNTIME}", *sources, "-o", str(out)], check=True)
    return out


# -- ctypes mirror of mt_nn.h ------------------------------------------------------------


class View(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("h", "w", "c", "row_stride", "col_stride")]


class Pad(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("top", "bottom", "left", "right")]


class ConvParams(C.Structure):
    _fields_ = (
        [(n, C.c_int32) for n in ("input_offset", "output_offset", "stride_h", "stride_w")]
        + [(n, C.c_int32) for n in ("dilation_h", "dilation_w")]
        + [("pad", Pad), ("act_min", C.c_int32), ("act_max", C.c_int32)]
    )


class PcQuant(C.Structure):
    _fields_ = [("multiplier", C.c_void_p), ("shift", C.c_void_p)]


class Dims(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("n", "h", "w", "c")]


def _ints(*names: str) -> list[tuple[str, type]]:
    return [(n, C.c_int32) for n in names]


class FcParams(C.Structure):
    _fields_ = _ints("input_offset", "filter_offset", "output_offset", "act_min", "act_max")


class PoolParams(C.Structure):
    _fields_ = _ints("kernel_h", "kernel_w", "stride_h", "stride_w") + [("pad", Pad)] + _ints("act_min", "act_max")


class AddParams(C.Structure):
    _fields_ = _ints(
        "input1_offset",
        "input2_offset",
        "output_offset",
        "left_shift",
        "input1_multiplier",
        "input1_shift",
        "input2_multiplier",
        "input2_shift",
        "output_multiplier",
        "output_shift",
        "act_min",
        "act_max",
    )


class MulParams(C.Structure):
    _fields_ = _ints(
        "input1_offset",
        "input2_offset",
        "output_offset",
        "output_multiplier",
        "output_shift",
        "act_min",
        "act_max",
    )


class Broadcast(C.Structure):
    _fields_ = [("shape", C.c_int32 * 4), ("stride1", C.c_int32 * 4), ("stride2", C.c_int32 * 4)]


class SoftmaxParams(C.Structure):
    _fields_ = _ints("input_multiplier", "input_left_shift", "diff_min")


class LogisticParams(C.Structure):
    _fields_ = _ints("input_zp", "input_multiplier", "input_left_shift", "input_range_radius")


class HardSwishParams(C.Structure):
    _fields_ = _ints(
        "input_zp",
        "output_zp",
        "output_multiplier",
        "output_exponent",
        "reluish_multiplier",
        "reluish_exponent",
    )


class ReluParams(C.Structure):
    _fields_ = _ints("rescale", "input_zp", "output_zp", "output_multiplier", "output_shift", "act_min", "act_max")


class MeanParams(C.Structure):
    _fields_ = _ints("input_zp", "output_zp", "multiplier", "shift")


class RequantizeParams(C.Structure):
    _fields_ = _ints("input_zp", "output_zp", "multiplier", "shift")


def kernel_library(tmp_path_factory, build: Callable[[Path], Path] = build_library) -> C.CDLL:
    """The kernel library a test module calls: MT_KERNEL_LIB (set by run_sanitized's rerun) or
    `build` (the whole portable library by default) into a fresh temporary folder. Skips
    without a host C compiler."""
    path = os.environ.get("MT_KERNEL_LIB")
    if not path:
        if CC is None:
            pytest.skip("no host C compiler (cc/gcc/clang) found: kernel tests need one")
        path = str(build(tmp_path_factory.mktemp("mtlib") / "libmt.so"))
    return C.CDLL(path)


@pytest.fixture(scope="session")
def lib(tmp_path_factory) -> C.CDLL:
    return kernel_library(tmp_path_factory)


def ptr(a: np.ndarray, offset: int = 0) -> C.c_void_p:
    """Address of a's data; the caller keeps `a` alive for the duration of the C call."""
    return C.c_void_p(a.ctypes.data + offset * a.itemsize)


def i32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.int32).reshape(-1))


def ok(status: int) -> None:
    assert status == 0, f"kernel returned status {status}"


# -- views inside bigger buffers ---------------------------------------------------------


class Window:
    """An HWC tensor stored inside a larger random buffer (row and pixel strides > tight)."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, c: int, data: np.ndarray | None = None):
        self.h, self.w, self.c = h, w, c
        eh, ew, ec = (int(v) for v in rng.integers(0, 3, size=3))
        self.y0, self.x0, self.c0 = (
            int(rng.integers(0, eh + 1)),
            int(rng.integers(0, ew + 1)),
            int(rng.integers(0, ec + 1)),
        )
        self.full = rng.integers(-128, 128, size=(h + eh + 1, w + ew, c + ec), dtype=np.int8)
        self.before = None
        if data is not None:
            self.inner[...] = data.reshape(h, w, c)
        self.before = self.full.copy()

    @property
    def inner(self) -> np.ndarray:
        return self.full[self.y0 : self.y0 + self.h, self.x0 : self.x0 + self.w, self.c0 : self.c0 + self.c]

    @property
    def offset(self) -> int:
        return (self.y0 * self.full.shape[1] + self.x0) * self.full.shape[2] + self.c0

    def view(self) -> View:
        fc = self.full.shape[2]
        return View(self.h, self.w, self.c, self.full.shape[1] * fc, fc)

    def ptr(self) -> C.c_void_p:
        return ptr(self.full, self.offset)

    def check(self, expected: np.ndarray) -> None:
        got = self.inner.copy()
        np.testing.assert_array_equal(got, expected.reshape(got.shape))
        outside = np.ones(self.full.shape, dtype=bool)
        outside[self.y0 : self.y0 + self.h, self.x0 : self.x0 + self.w, self.c0 : self.c0 + self.c] = False
        np.testing.assert_array_equal(self.full[outside], self.before[outside], err_msg="wrote outside window")


# -- graph builders ------------------------------------------------------------------------


def act_tensor(name: str, shape, scale: float, zp: int) -> Tensor:
    return Tensor(name, tuple(shape), "int8", QParams(np.float32(scale), zp))


def one_op(kind: str, inputs: list[Tensor], out: Tensor, attrs: dict, consts: list[Tensor] = ()) -> Graph:
    g = Graph(name=kind)
    for t in [*inputs, *consts, out]:
        g.add_tensor(t)
    g.inputs = [t.name for t in inputs]
    g.outputs = [out.name]
    g.add_op(Op(kind, kind, [t.name for t in inputs] + [t.name for t in consts], [out.name], attrs))
    return g


def rand_i8(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def rand_act(rng: np.random.Generator) -> str:
    return str(rng.choice(["none", "none", "relu", "relu6", "relu_n1_to_1"]))


def seeds(name: str, n: int = N_CASES) -> list[int]:
    base = sum(map(ord, name)) * 1000
    return [base + i for i in range(n)]


def pc_quant(p: dict) -> tuple[PcQuant, list]:
    m, s = i32(p["multiplier"]), i32(p["shift"])
    return PcQuant(ptr(m), ptr(s)), [m, s]


def conv_params(p: dict, stride, dil, pads) -> ConvParams:
    t, b, left, r = pads
    return ConvParams(
        p["input_offset"],
        p["output_offset"],
        stride[0],
        stride[1],
        dil[0],
        dil[1],
        Pad(t, b, left, r),
        p["act_min"],
        p["act_max"],
    )


def out_size(n: int, k: int, s: int, d: int, p0: int, p1: int) -> int:
    return (n + p0 + p1 - ((k - 1) * d + 1)) // s + 1


def conv_case(rng: np.random.Generator, depthwise: bool):
    """A random conv2d / depthwise_conv2d graph with realistic scales."""
    kh, kw = int(rng.choice([1, 2, 3, 5])), int(rng.choice([1, 3, 5]))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    dh, dw = (1, 1) if rng.random() < 0.6 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    h, w = int(rng.integers(eff_h, eff_h + 9)), int(rng.integers(eff_w, eff_w + 9))
    pads = tuple(int(v) for v in rng.integers(0, [eff_h, eff_h, eff_w, eff_w]))
    cin = int(rng.integers(1, 9))
    m = int(rng.choice([1, 1, 2, 3])) if depthwise else 1
    cout = cin * m if depthwise else int(rng.integers(1, 9))
    oh, ow = out_size(h, kh, sh, dh, pads[0], pads[1]), out_size(w, kw, sw, dw, pads[2], pads[3])
    in_s, in_zp = float(rng.uniform(0.02, 0.1)), int(rng.integers(-128, 60))
    w_s = rng.uniform(0.001, 0.02, size=cout).astype(np.float32)
    taps = kh * kw * (1 if depthwise else cin)
    out_s = float(in_s * np.median(w_s) * np.sqrt(taps) * 4900 / 40 * rng.uniform(0.5, 2.0))
    act = rand_act(rng)
    out_zp = -128 if act in ("relu", "relu6") and rng.random() < 0.5 else int(rng.integers(-30, 30))
    wshape = (1, kh, kw, cout) if depthwise else (cout, kh, kw, cin)
    wq = QParams(w_s, np.zeros(cout, dtype=np.int64), axis=3 if depthwise else 0)
    weights = Tensor("w", wshape, "int8", wq, rand_i8(rng, wshape))
    bias = Tensor("b", (cout,), "int32", None, rng.integers(-20000, 20000, size=cout).astype(np.int32))
    attrs = {"stride": (sh, sw), "dilation": (dh, dw), "pads": pads, "activation": act}
    kind = "conv2d"
    if depthwise:
        attrs["depth_multiplier"] = m
        kind = "depthwise_conv2d"
    g = one_op(
        kind,
        [act_tensor("x", (1, h, w, cin), in_s, in_zp)],
        act_tensor("y", (1, oh, ow, cout), out_s, out_zp),
        attrs,
        [weights, bias],
    )
    return g, rand_i8(rng, (1, h, w, cin))


def call_conv(lib, g: Graph, x_win: Window, y_win: Window, pads=None, out_hw=None, scratch=None) -> int:
    op = g.ops[0]
    p = lower(g, op)
    w, b = g.t(op.inputs[1]).data, i32(g.t(op.inputs[2]).data)
    q, keep = pc_quant(p)
    cp = conv_params(p, op.attrs["stride"], op.attrs["dilation"], pads or op.attrs["pads"])
    ov = y_win.view()
    if out_hw is not None:
        ov.h, ov.w = out_hw
    wf = np.ascontiguousarray(w)
    if op.kind == "conv2d":
        fd = Dims(*w.shape)
        return lib.mt_conv_s8(
            C.byref(cp),
            C.byref(q),
            x_win.ptr(),
            C.byref(x_win.view()),
            ptr(wf),
            C.byref(fd),
            ptr(b),
            y_win.ptr(),
            C.byref(ov),
            scratch,
        )
    fd = Dims(*w.shape)
    return lib.mt_depthwise_conv_s8(
        C.byref(cp),
        C.byref(q),
        op.attrs["depth_multiplier"],
        x_win.ptr(),
        C.byref(x_win.view()),
        ptr(wf),
        C.byref(fd),
        ptr(b),
        y_win.ptr(),
        C.byref(ov),
        scratch,
    )


# -- fixed-point helpers -------------------------------------------------------------------


EDGE = [Q.INT32_MIN, Q.INT32_MIN + 1, -(1 << 30), -65536, -1, 0, 1, 65536, 1 << 30, Q.INT32_MAX - 1, Q.INT32_MAX]


def rand_i32(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.integers(Q.INT32_MIN, Q.INT32_MAX, size=n, endpoint=True, dtype=np.int64)
    small = rng.integers(-300, 300, size=n // 4)
    a[: n // 4] = small
    a[n // 4 : n // 4 + len(EDGE)] = EDGE
    return a


def shim(lib, name: str, *args) -> np.ndarray:
    arrs = [i32(a) for a in args]
    out = np.zeros(arrs[0].size, dtype=np.int32)
    getattr(lib, f"mt_test_{name}")(*[ptr(a) for a in arrs], ptr(out), C.c_int32(out.size))
    return out.astype(np.int64)


def test_quant_helpers(lib) -> None:
    rng = np.random.default_rng(1234)
    n = 4000
    a, b = rand_i32(rng, n), rand_i32(rng, n)
    b[:50] = Q.INT32_MIN  # srdhm's one saturating case
    a[:50] = Q.INT32_MIN
    np.testing.assert_array_equal(shim(lib, "srdhm", a, b), Q.srdhm(a, b))
    e = rng.integers(0, 32, size=n)
    e[:20] = 31
    np.testing.assert_array_equal(shim(lib, "rdbypot", a, e), Q.rdbypot(a, e))
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=n, endpoint=True)
    shift = rng.integers(-31, 32, size=n)
    shift[:30] = 31
    shift[30:60] = -31
    np.testing.assert_array_equal(shim(lib, "mbqm", a, mult, shift), Q.mbqm(a, mult, shift))
    neg = -rng.integers(0, 32, size=n)
    np.testing.assert_array_equal(
        shim(lib, "mbqm_smaller_than_one", a, mult, neg), Q.mbqm_smaller_than_one(a, mult, neg)
    )
    ls = rng.integers(0, 32, size=n)
    np.testing.assert_array_equal(
        shim(lib, "mbqm_greater_than_one", a, mult, ls),
        np.array([Q.mbqm_greater_than_one(a[i], int(mult[i]), int(ls[i])) for i in range(n)]),
    )
    for src, dst in ((0, 12), (12, 0), (4, 2), (1, 0), (0, 31), (31, 0), (5, 5)):
        np.testing.assert_array_equal(shim(lib, "rescale", a, np.full(n, src), np.full(n, dst)), Q.rescale(a, src, dst))
    nonpos = -np.abs(a)
    nonpos[nonpos < Q.INT32_MIN] = Q.INT32_MIN
    for bits in (1, 4, 5, 6, 12, 24, 29):
        np.testing.assert_array_equal(
            shim(lib, "exp_on_negative_values", nonpos, np.full(n, bits)),
            Q.exp_on_negative_values(nonpos, bits),
        )
    for bits in (1, 4, 5, 8):
        np.testing.assert_array_equal(shim(lib, "logistic_q", a, np.full(n, bits)), Q.logistic_q(a, bits))
    unit = np.abs(a) % (1 << 31)
    unit[:3] = [0, 1, Q.INT32_MAX]
    np.testing.assert_array_equal(
        shim(lib, "one_over_one_plus_x_for_x_in_0_1", unit, unit), Q.one_over_one_plus_x_for_x_in_0_1(unit)
    )
    np.testing.assert_array_equal(shim(lib, "clz32", a, a), Q.count_leading_zeros32(a))
    np.testing.assert_array_equal(shim(lib, "wrap16", a, np.ones(n)), ((a + 32768) & 0xFFFF) - 32768)
    # reciprocal of positive sums (softmax's Q12 sum of exps)
    pos = np.abs(a) % (1 << 31)
    pos[pos == 0] = 1
    out, nbits = np.zeros(n, np.int32), np.zeros(n, np.int32)
    pos32, digits = i32(pos), i32(np.full(n, 12))
    lib.mt_test_get_reciprocal(ptr(pos32), ptr(digits), ptr(out), ptr(nbits), n)
    ref, ref_bits = Q.get_reciprocal(pos, 12)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(nbits, ref_bits)


# -- convolution ---------------------------------------------------------------------------


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
@pytest.mark.parametrize("seed", seeds("conv"))
def test_conv(lib, seed: int, depthwise: bool) -> None:
    rng = np.random.default_rng(seed + depthwise * 7919)
    g, x = conv_case(rng, depthwise)
    (ref,) = run(g, [x])
    _, h, w, c = x.shape
    xw = Window(rng, h, w, c, x)
    yw = Window(rng, *ref.shape[1:])
    fd = Dims(*g.t("w").shape)
    fn = lib.mt_depthwise_conv_s8_get_buffer_size if depthwise else lib.mt_conv_s8_get_buffer_size
    assert fn(C.byref(fd), C.byref(xw.view())) == 0
    ok(call_conv(lib, g, xw, yw))
    yw.check(ref[0])
    xw.check(x[0])  # input untouched


@pytest.mark.parametrize("kind", ["conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d"])
@pytest.mark.parametrize("seed", seeds("patch", max(2, N_CASES // 3)))
def test_patches(lib, seed: int, kind: str) -> None:
    """Patch-based inference: output bands computed from clipped input windows with per-patch
    padding reassemble the full output exactly."""
    rng = np.random.default_rng(seed)
    if kind in ("conv2d", "depthwise_conv2d"):
        g, x = conv_case(rng, kind == "depthwise_conv2d")
        op = g.ops[0]
        kh, kw = g.t("w").shape[1:3]
        dil = op.attrs["dilation"]
    else:
        g, x = pool_case(rng, kind)
        op = g.ops[0]
        kh, kw = op.attrs["kernel"]
        dil = (1, 1)
    (ref,) = run(g, [x])
    stride, pads = op.attrs["stride"], op.attrs["pads"]
    _, h, w, c = x.shape
    _, oh, ow, oc = ref.shape
    out = np.zeros((oh, ow, oc), dtype=np.int8)
    ys = sorted({0, oh, *rng.integers(0, oh + 1, size=2).tolist()})
    xs = sorted({0, ow, *rng.integers(0, ow + 1, size=1).tolist()})
    for y0, y1 in zip(ys, ys[1:], strict=False):
        for x0, x1 in zip(xs, xs[1:], strict=False):
            if y1 <= y0 or x1 <= x0:
                continue
            iy_lo = y0 * stride[0] - pads[0]
            iy_hi = (y1 - 1) * stride[0] - pads[0] + (kh - 1) * dil[0] + 1
            ix_lo = x0 * stride[1] - pads[2]
            ix_hi = (x1 - 1) * stride[1] - pads[2] + (kw - 1) * dil[1] + 1
            cy0, cy1, cx0, cx1 = max(iy_lo, 0), min(iy_hi, h), max(ix_lo, 0), min(ix_hi, w)
            patch_pad = (cy0 - iy_lo, iy_hi - cy1, cx0 - ix_lo, ix_hi - cx1)
            xw = Window(rng, cy1 - cy0, cx1 - cx0, c, x[0, cy0:cy1, cx0:cx1])
            yw = Window(rng, y1 - y0, x1 - x0, oc)
            if kind in ("conv2d", "depthwise_conv2d"):
                ok(call_conv(lib, g, xw, yw, pads=patch_pad))
            else:
                ok(call_pool(lib, g, xw, yw, pads=patch_pad))
            out[y0:y1, x0:x1] = yw.inner
            yw.check(ref[0, y0:y1, x0:x1])  # this band equals the reference, nothing written outside it
    np.testing.assert_array_equal(out, ref[0])


@pytest.mark.parametrize("seed", seeds("inplace"))
def test_depthwise_inplace(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    kh, kw = int(rng.choice([1, 3, 5])), int(rng.choice([1, 3, 5]))
    dh, dw = (1, 1) if rng.random() < 0.6 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    eh, ew = (kh - 1) * dh, (kw - 1) * dw
    h, w, c = int(rng.integers(eh + 1, eh + 9)), int(rng.integers(ew + 1, ew + 9)), int(rng.integers(1, 9))
    if rng.random() < 0.7:  # "same" padding: the output has the input's extent
        t, left = int(rng.integers(0, eh + 1)), int(rng.integers(0, ew + 1))
        pads = (t, eh - t, left, ew - left)
    else:
        t, left = int(rng.integers(0, eh + 1)), int(rng.integers(0, ew + 1))
        pads = (t, int(rng.integers(0, eh - t + 1)), left, int(rng.integers(0, ew - left + 1)))
    oh, ow = h + pads[0] + pads[1] - eh, w + pads[2] + pads[3] - ew
    in_s, w_s = float(rng.uniform(0.02, 0.1)), rng.uniform(0.001, 0.02, size=c).astype(np.float32)
    out_s = float(in_s * np.median(w_s) * kh * kw * 4900 / 40 / 2)
    act = rand_act(rng)
    weights = Tensor("w", (1, kh, kw, c), "int8", QParams(w_s, np.zeros(c), axis=3), rand_i8(rng, (1, kh, kw, c)))
    bias = Tensor("b", (c,), "int32", None, rng.integers(-20000, 20000, size=c).astype(np.int32))
    attrs = {"stride": (1, 1), "dilation": (dh, dw), "pads": pads, "activation": act, "depth_multiplier": 1}
    g = one_op(
        "depthwise_conv2d",
        [act_tensor("x", (1, h, w, c), in_s, int(rng.integers(-128, 60)))],
        act_tensor("y", (1, oh, ow, c), out_s, int(rng.integers(-30, 30))),
        attrs,
        [weights, bias],
    )
    x = rand_i8(rng, (1, h, w, c))
    (ref,) = run(g, [x])
    p = lower(g, g.ops[0])
    xw = Window(rng, h, w, c, x)
    cp = conv_params(p, (1, 1), (dh, dw), pads)
    fd = Dims(1, kh, kw, c)
    ov = xw.view()
    ov.h, ov.w = oh, ow
    size = lib.mt_depthwise_conv_inplace_s8_get_buffer_size(C.byref(cp), C.byref(fd), C.byref(ov))
    assert size == (0 if kh == kw == 1 and pads[0] == pads[2] == 0 else (pads[0] + 1) * ow * c)
    guard = rand_i8(rng, size + 16)
    guard_before = guard.copy()
    q, keep = pc_quant(p)
    wf, b = np.ascontiguousarray(weights.data), i32(bias.data)
    use_generic = bool(rng.random() < 0.5)
    if use_generic:  # mt_depthwise_conv_s8 with out == in forwards to the in-place kernel
        status = lib.mt_depthwise_conv_s8(
            C.byref(cp),
            C.byref(q),
            1,
            xw.ptr(),
            C.byref(xw.view()),
            ptr(wf),
            C.byref(fd),
            ptr(b),
            xw.ptr(),
            C.byref(ov),
            ptr(guard) if size else None,
        )
    else:
        status = lib.mt_depthwise_conv_inplace_s8(
            C.byref(cp),
            C.byref(q),
            xw.ptr(),
            C.byref(xw.view()),
            C.byref(ov),
            ptr(wf),
            C.byref(fd),
            ptr(b),
            ptr(guard) if size else None,
        )
    ok(status)
    expected = x[0].copy()
    expected[:oh, :ow] = ref[0]
    xw.check(expected)
    np.testing.assert_array_equal(guard[size:], guard_before[size:], err_msg="scratch overrun")


def test_depthwise_inplace_rejects(lib) -> None:
    cp = ConvParams(0, 0, 2, 2, 1, 1, Pad(1, 1, 1, 1), -128, 127)
    buf = np.zeros(64, np.int8)
    m, s = i32([1 << 30] * 4), i32([0] * 4)
    q = PcQuant(ptr(m), ptr(s))
    v = View(4, 4, 4, 16, 4)
    fd = Dims(1, 3, 3, 4)
    w = np.zeros(36, np.int8)
    scratch = np.zeros(256, np.int8)
    assert (
        lib.mt_depthwise_conv_inplace_s8(
            C.byref(cp), C.byref(q), ptr(buf), C.byref(v), C.byref(v), ptr(w), C.byref(fd), None, ptr(scratch)
        )
        != 0
    )  # stride 2 cannot run in place
    cp.stride_h = cp.stride_w = 1
    assert (
        lib.mt_depthwise_conv_inplace_s8(
            C.byref(cp), C.byref(q), ptr(buf), C.byref(v), C.byref(v), ptr(w), C.byref(fd), None, None
        )
        != 0
    )  # scratch needed


# -- fully connected -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", seeds("fc"))
def test_fully_connected(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batches, nin, nout = int(rng.integers(1, 4)), int(rng.integers(1, 80)), int(rng.integers(1, 20))
    per_channel = bool(rng.random() < 0.5)
    in_s, in_zp = float(rng.uniform(0.02, 0.1)), int(rng.integers(-128, 60))
    if per_channel:
        w_s, w_zp = rng.uniform(0.001, 0.02, size=nout).astype(np.float32), np.zeros(nout, np.int64)
    else:
        w_s, w_zp = np.float32(rng.uniform(0.001, 0.02)), int(rng.integers(-10, 10)) * (rng.random() < 0.3)
    out_s = float(in_s * np.median(w_s) * np.sqrt(nin) * 4900 / 40 * rng.uniform(0.5, 2))
    weights = Tensor("w", (nout, nin), "int8", QParams(w_s, w_zp), rand_i8(rng, (nout, nin)))
    bias = Tensor("b", (nout,), "int32", None, rng.integers(-20000, 20000, size=nout).astype(np.int32))
    g = one_op(
        "fully_connected",
        [act_tensor("x", (batches, nin), in_s, in_zp)],
        act_tensor("y", (batches, nout), out_s, int(rng.integers(-30, 30))),
        {"activation": rand_act(rng)},
        [weights, bias],
    )
    x = rand_i8(rng, (batches, nin))
    (ref,) = run(g, [x])
    p = lower(g, g.ops[0])
    fp = FcParams(p["input_offset"], p["weights_offset"], p["output_offset"], p["act_min"], p["act_max"])
    q, keep = pc_quant(p)
    out = np.zeros(batches * nout + 8, np.int8)
    b32 = i32(bias.data)
    ok(
        lib.mt_fully_connected_s8(
            C.byref(fp),
            C.byref(q),
            int(p["per_channel"]),
            ptr(x),
            batches,
            nin,
            ptr(weights.data),
            ptr(b32),
            nout,
            ptr(out),
        )
    )
    np.testing.assert_array_equal(out[: batches * nout], ref.reshape(-1))
    assert not out[batches * nout :].any()


# -- pooling ----------------------------------------------------------------------------------


def pool_case(rng: np.random.Generator, kind: str):
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    h, w, c = int(rng.integers(kh, kh + 9)), int(rng.integers(kw, kw + 9)), int(rng.integers(1, 9))
    pads = tuple(int(v) for v in rng.integers(0, [kh, kh, kw, kw]))
    oh, ow = out_size(h, kh, sh, 1, pads[0], pads[1]), out_size(w, kw, sw, 1, pads[2], pads[3])
    s, zp = float(rng.uniform(0.02, 0.1)), int(rng.integers(-20, 20))
    attrs = {"kernel": (kh, kw), "stride": (sh, sw), "pads": pads, "activation": rand_act(rng)}
    g = one_op(kind, [act_tensor("x", (1, h, w, c), s, zp)], act_tensor("y", (1, oh, ow, c), s, zp), attrs)
    return g, rand_i8(rng, (1, h, w, c))


def call_pool(lib, g: Graph, xw: Window, yw: Window, pads=None) -> int:
    op = g.ops[0]
    p = lower(g, op)
    t, b, left, r = pads or op.attrs["pads"]
    pp = PoolParams(*op.attrs["kernel"], *op.attrs["stride"], Pad(t, b, left, r), p["act_min"], p["act_max"])
    fn = lib.mt_avg_pool_s8 if op.kind == "avg_pool2d" else lib.mt_max_pool_s8
    return fn(C.byref(pp), xw.ptr(), C.byref(xw.view()), yw.ptr(), C.byref(yw.view()))


@pytest.mark.parametrize("kind", ["avg_pool2d", "max_pool2d"])
@pytest.mark.parametrize("seed", seeds("pool"))
def test_pool(lib, seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    g, x = pool_case(rng, kind)
    (ref,) = run(g, [x])
    xw, yw = Window(rng, *x.shape[1:], x), Window(rng, *ref.shape[1:])
    ok(call_pool(lib, g, xw, yw))
    yw.check(ref[0])


# -- elementwise -----------------------------------------------------------------------------


def broadcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    shape = (1,) * (4 - len(shape)) + tuple(shape)
    dense = np.cumprod((1,) + shape[::-1])[:-1][::-1]
    return [0 if d == 1 and o != 1 else int(s) for d, o, s in zip(shape, out, dense, strict=True)]


@pytest.mark.parametrize("kind", ["add", "mul"])
@pytest.mark.parametrize("seed", seeds("elementwise"))
def test_elementwise(lib, seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed + (kind == "mul"))
    out_shape = tuple(int(v) for v in rng.integers(1, 6, size=4))
    out_shape = (1, *out_shape[1:]) if rng.random() < 0.5 else out_shape
    broadcast = bool(rng.random() < 0.5)

    def in_shape() -> tuple[int, ...]:
        if not broadcast:
            return out_shape
        return tuple(d if rng.random() < 0.5 else 1 for d in out_shape)

    s1, s2 = in_shape(), in_shape()
    s2 = tuple(o if d1 == 1 else d2 for d1, d2, o in zip(s1, s2, out_shape, strict=True))
    sc1, sc2 = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.01, 0.1))
    sco = float((sc1 + sc2) * rng.uniform(0.5, 1.5)) if kind == "add" else float(sc1 * sc2 * 128 * rng.uniform(0.3, 1))
    a = act_tensor("a", s1, sc1, int(rng.integers(-128, 60)))
    b = act_tensor("b", s2, sc2, int(rng.integers(-128, 60)))
    y = act_tensor("y", out_shape, sco, int(rng.integers(-30, 30)))
    g = one_op(kind, [a, b], y, {"activation": rand_act(rng)})
    xa, xb = rand_i8(rng, s1), rand_i8(rng, s2)
    (ref,) = run(g, [xa, xb])
    p = lower(g, g.ops[0])
    if kind == "add":
        params = AddParams(*(p[f] for f, _ in AddParams._fields_))
    else:
        params = MulParams(*(p[f] for f, _ in MulParams._fields_))
    out = np.zeros(ref.size + 8, np.int8)
    if s1 == s2 == out_shape:
        fn = lib.mt_add_s8 if kind == "add" else lib.mt_mul_s8
        ok(fn(C.byref(params), ptr(xa), ptr(xb), ptr(out), ref.size))
    else:
        bc = Broadcast(
            (C.c_int32 * 4)(*out_shape),
            (C.c_int32 * 4)(*broadcast_strides(s1, out_shape)),
            (C.c_int32 * 4)(*broadcast_strides(s2, out_shape)),
        )
        fn = lib.mt_add_broadcast_s8 if kind == "add" else lib.mt_mul_broadcast_s8
        ok(fn(C.byref(params), C.byref(bc), ptr(xa), ptr(xb), ptr(out)))
    np.testing.assert_array_equal(out[: ref.size], ref.reshape(-1))
    assert not out[ref.size :].any()


# -- activations and requantization -----------------------------------------------------------


@pytest.mark.parametrize("seed", seeds("softmax", N_CASES // 2))
def test_softmax(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows, depth = int(rng.integers(1, 5)), int(rng.choice([1, 2, 10, 12, 100, 600]))
    in_s = float(rng.uniform(0.01, 0.3))
    beta = float(rng.choice([1.0, 1.0, 0.5, 2.0]))
    g = one_op(
        "softmax",
        [act_tensor("x", (rows, depth), in_s, int(rng.integers(-128, 127)))],
        act_tensor("y", (rows, depth), 1.0 / 256, -128),
        {"beta": beta},
    )
    x = rand_i8(rng, (rows, depth))
    if rng.random() < 0.3:
        x[:] = rng.integers(-5, 5, size=(rows, depth)).astype(np.int8)  # near-uniform rows
    (ref,) = run(g, [x])
    p = lower(g, g.ops[0])
    sp = SoftmaxParams(p["input_multiplier"], p["input_left_shift"], p["diff_min"])
    out = np.zeros(x.size, np.int8)
    ok(lib.mt_softmax_s8(C.byref(sp), ptr(x), rows, depth, ptr(out)))
    np.testing.assert_array_equal(out, ref.reshape(-1))


def all_int8() -> np.ndarray:
    return np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


@pytest.mark.parametrize("seed", seeds("logistic", N_CASES // 2))
def test_logistic(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = one_op(
        "logistic",
        [act_tensor("x", (1, 256), float(rng.uniform(0.005, 0.3)), int(rng.integers(-128, 127)))],
        act_tensor("y", (1, 256), 1.0 / 256, -128),
        {},
    )
    x = all_int8()
    (ref,) = run(g, [x])
    p = lower(g, g.ops[0])
    lp = LogisticParams(p["input_zp"], p["input_multiplier"], p["input_left_shift"], p["input_range_radius"])
    out = np.zeros(256, np.int8)
    ok(lib.mt_logistic_s8(C.byref(lp), ptr(x), ptr(out), 256))
    np.testing.assert_array_equal(out, ref.reshape(-1))


@pytest.mark.parametrize("seed", seeds("hard_swish", N_CASES // 2))
def test_hard_swish(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    in_s = float(rng.uniform(0.01, 0.2))
    g = one_op(
        "hard_swish",
        [act_tensor("x", (1, 256), in_s, int(rng.integers(-128, 127)))],
        act_tensor("y", (1, 256), in_s * float(rng.uniform(0.5, 2.0)), int(rng.integers(-128, 0))),
        {},
    )
    x = all_int8()
    (ref,) = run(g, [x])
    p = lower(g, g.ops[0])
    hp = HardSwishParams(*(p[f] for f, _ in HardSwishParams._fields_))
    out = np.zeros(256, np.int8)
    ok(lib.mt_hard_swish_s8(C.byref(hp), ptr(x), ptr(out), 256))
    np.testing.assert_array_equal(out, ref.reshape(-1))


@pytest.mark.parametrize("seed", seeds("relu", N_CASES // 2))
def test_relu(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    lo, hi = [(0.0, float("inf")), (0.0, 6.0), (-1.0, 1.0)][seed % 3]
    in_s, in_zp = float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 60))
    out_s = in_s if hi == 6.0 else in_s * float(rng.uniform(0.5, 2.0))
    out_zp = in_zp if hi == 6.0 else int(rng.integers(-128, 20))
    g = one_op(
        "relu",
        [act_tensor("x", (1, 256), in_s, in_zp)],
        act_tensor("y", (1, 256), out_s, out_zp),
        {"min": lo, "max": hi},
    )
    x = all_int8()
    (ref,) = run(g, [x])
    p = lower(g, g.ops[0])
    if p["mode"] == "clamp":
        rp = ReluParams(0, 0, 0, 0, 0, p["act_min"], p["act_max"])
    else:
        rp = ReluParams(
            1, p["input_zp"], p["output_zp"], p["output_multiplier"], p["output_shift"], p["act_min"], p["act_max"]
        )
    out = np.zeros(256, np.int8)
    ok(lib.mt_relu_s8(C.byref(rp), ptr(x), ptr(out), 256))
    np.testing.assert_array_equal(out, ref.reshape(-1))


@pytest.mark.parametrize("seed", seeds("quantize", N_CASES // 2))
def test_requantize(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    in_s = float(rng.uniform(0.01, 0.1))
    g = one_op(
        "quantize",
        [act_tensor("x", (1, 256), in_s, int(rng.integers(-128, 127)))],
        act_tensor("y", (1, 256), in_s * float(rng.uniform(0.3, 3.0)), int(rng.integers(-128, 127))),
        {},
    )
    x = all_int8()
    (ref,) = run(g, [x])
    p = lower(g, g.ops[0])
    rp = RequantizeParams(p["input_zp"], p["output_zp"], p["multiplier"], p["shift"])
    out = np.zeros(256, np.int8)
    ok(lib.mt_requantize_s8(C.byref(rp), ptr(x), ptr(out), 256))
    np.testing.assert_array_equal(out, ref.reshape(-1))


# -- mean, pad, concat -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", seeds("mean", N_CASES // 2))
def test_mean_hw(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(1, 15)), int(rng.integers(1, 15)), int(rng.integers(1, 17))
    in_s = float(rng.uniform(0.02, 0.1))
    g = one_op(
        "mean",
        [act_tensor("x", (1, h, w, c), in_s, int(rng.integers(-128, 60)))],
        act_tensor("y", (1, 1, 1, c), in_s * float(rng.uniform(0.3, 1.5)), int(rng.integers(-30, 30))),
        {"axes": (1, 2), "keep_dims": True},
    )
    x = rand_i8(rng, (1, h, w, c))
    (ref,) = run(g, [x])
    p = lower(g, g.ops[0])
    mp = MeanParams(p["input_zp"], p["output_zp"], p["multiplier"], p["shift"])
    xw = Window(rng, h, w, c, x)
    out = np.zeros(c + 8, np.int8)
    ok(lib.mt_mean_hw_s8(C.byref(mp), xw.ptr(), C.byref(xw.view()), ptr(out)))
    np.testing.assert_array_equal(out[:c], ref.reshape(-1))
    assert not out[c:].any()


@pytest.mark.parametrize("seed", seeds("pad", N_CASES // 2))
def test_pad(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    t, b, left, r = (int(v) for v in rng.integers(0, 4, size=4))
    zp = int(rng.integers(-128, 127))
    g = one_op(
        "pad",
        [act_tensor("x", (1, h, w, c), 0.05, zp)],
        act_tensor("y", (1, h + t + b, w + left + r, c), 0.05, zp),
        {"paddings": ((0, 0), (t, b), (left, r), (0, 0))},
    )
    x = rand_i8(rng, (1, h, w, c))
    (ref,) = run(g, [x])
    p = lower(g, g.ops[0])
    xw, yw = Window(rng, h, w, c, x), Window(rng, *ref.shape[1:])
    ok(
        lib.mt_pad_s8(
            xw.ptr(),
            C.byref(xw.view()),
            yw.ptr(),
            C.byref(yw.view()),
            C.byref(Pad(t, b, left, r)),
            C.c_int8(p["pad_value"]),
        )
    )
    yw.check(ref[0])


@pytest.mark.parametrize("seed", seeds("concat", N_CASES // 2))
def test_concat(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    axis = int(rng.integers(1, 4))
    base = [int(v) for v in rng.integers(1, 7, size=3)]
    n = int(rng.integers(2, 4))
    shapes = []
    for _ in range(n):
        s = list(base)
        s[axis - 1] = int(rng.integers(1, 6))
        shapes.append((1, *s))
    out_shape = list(shapes[0])
    out_shape[axis] = sum(s[axis] for s in shapes)
    zp = int(rng.integers(-128, 127))
    ins = [act_tensor(f"x{i}", s, 0.05, zp) for i, s in enumerate(shapes)]
    g = one_op("concat", ins, act_tensor("y", out_shape, 0.05, zp), {"axis": axis, "activation": "none"})
    xs = [rand_i8(rng, s) for s in shapes]
    (ref,) = run(g, xs)
    lower(g, g.ops[0])
    yw = Window(rng, *out_shape[1:])
    full_view = yw.view()
    at = 0
    for x in xs:
        xw = Window(rng, *x.shape[1:], x)
        ov = View(*x.shape[1:], full_view.row_stride, full_view.col_stride)
        off = yw.offset + [0, full_view.row_stride, full_view.col_stride, 1][axis] * at
        ok(lib.mt_copy_s8(xw.ptr(), C.byref(xw.view()), ptr(yw.full, off), C.byref(ov)))
        at += x.shape[axis]
    yw.check(ref[0])
    # concat is a copy: inputs quantized differently from the output (a requantizing concat) are
    # refused at lowering, as TFLite-Micro refuses them, so no C path computes them approximately
    other = one_op("concat", [act_tensor("a", shapes[0], 0.05, zp), act_tensor("b", shapes[1], 0.07, zp)],
                   act_tensor("y2", [1, *base[:axis - 1], shapes[0][axis] + shapes[1][axis], *base[axis:]], 0.05, zp),
                   {"axis": axis, "activation": "none"})
    with pytest.raises(ModelError, match="quantization different from the output"):
        lower(other, other.ops[0])


# -- library layout -----------------------------------------------------------------------


def declared_functions() -> list[str]:
    import re

    text = (RUNTIME / "mt_nn.h").read_text()
    return re.findall(r"^(?:mt_status|int32_t)\s+(mt_\w+)\(", text, flags=re.M)


def test_one_kernel_per_file(lib) -> None:
    names = declared_functions()
    support = (RUNTIME / "SUPPORT.md").read_text()
    assert len(names) >= 20
    for name in names:
        assert hasattr(lib, name), f"{name} declared in mt_nn.h but not defined"
        kernel = name.removesuffix("_get_buffer_size")
        assert (RUNTIME / f"{kernel}.c").is_file(), f"{kernel} must live in runtime_c/{kernel}.c"
        assert f"`{kernel}`" in support, f"{kernel} missing from runtime_c/SUPPORT.md"


@pytest.mark.skipif("MT_KERNEL_LIB" in os.environ, reason="checked by the main run")
def test_cortex_m_build(tmp_path) -> None:
    """The library compiles warning-free for the boards' cores when the ARM toolchain exists."""
    arm = shutil.which("arm-none-eabi-gcc")
    if arm is None:
        pytest.skip("arm-none-eabi-gcc not found")
    sources = [str(p) for p in sorted(RUNTIME.glob("*.c"))]
    for cpu in ("cortex-m4", "cortex-m7"):
        cmd = [arm, f"-mcpu={cpu}", "-mthumb", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
        subprocess.run([*cmd, "-Wconversion", "-pedantic", f"-I{RUNTIME}", "-c", *sources], check=True, cwd=tmp_path)


# -- sanitizers --------------------------------------------------------------------------------


def run_sanitized(
    test_file: str,
    tmp_path: Path,
    cases: int,
    build: Callable[..., Path] = build_library,
    select: str | None = None,
) -> None:
    """Rerun the pytest file `test_file` (`cases` random cases per test; only the tests matching
    `select` when given, as pytest -k) against an ASan + UBSan build made by `build(path,
    sanitize=True)` (the whole kernel library by default); fails on any sanitizer report or when
    nothing passed. Skips without a host C compiler or libasan."""
    if CC is None:
        pytest.skip("no host C compiler (cc/gcc/clang) found: kernel tests need one")
    so = build(tmp_path / "libmt_asan.so", sanitize=True)
    libasan = subprocess.run([CC, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip(f"{CC} has no libasan.so to preload")
    env = dict(
        os.environ,
        MT_KERNEL_LIB=str(so),
        MT_KERNEL_CASES=str(cases),
        LD_PRELOAD=libasan,
        ASAN_OPTIONS="detect_leaks=0",
        UBSAN_OPTIONS="print_stacktrace=1",
    )
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test_file]
    cmd += ["-k", select] if select else []
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "passed" in r.stdout and "runtime error" not in r.stderr and "AddressSanitizer" not in r.stderr
    assert "runtime error" not in r.stderr and "AddressSanitizer" not in r.stderr, r.stderr[-4000:]


@pytest.mark.skipif("MT_KERNEL_LIB" in os.environ, reason="already inside the sanitized run")
def test_sanitized_run(tmp_path) -> None:
    """Reruns a few cases of every test above against an ASan + UBSan build (UB aborts)."""
    run_sanitized(__file__, tmp_path, cases=4)
