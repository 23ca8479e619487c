"""The Cortex-M DSP kernels (runtime_c/mt_nn_fast.h) vs the golden model, byte for byte.

Host part: the kernels are built three ways and each compared with `compiler.golden.reference` on
random convolution / depthwise / fully-connected / add cases in views inside larger
buffers (the patch-plan contract), with the filters and records packed by
`codegen.kernels` exactly as the firmware gets them (int8 and int16-widened):
  - `plain`: a host build, the kernels' portable C paths;
  - `simd`:  -DMT_EMULATE_ACLE, the SIMD code paths over runtime_c/mt_acle_host.h;
  - `simd_asan`: the same under ASan + UBSan (a subprocess; UB aborts).
Emulator part: the four shared MLPerf Tiny models on both boards with the fast kernels,
bit-exact, using them, and not slower than the portable kernels (small ones on M7).
"""

from __future__ import annotations

import ctypes as C
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_kernels import (
    CC,
    RUNTIME,
    Dims,
    View,
    Window,
    act_tensor,
    conv_case,
    one_op,
    out_size,
    ptr,
    rand_act,
    rand_i8,
    seeds,
)

from codegen import kernels as K
from compiler.core.ir import QParams, Tensor
from compiler.core.lower import lower
from compiler.golden.reference import run
from compiler.schedule import kernels_table as T
from compiler.target import hostlib

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models"
N = int(os.environ.get("MT_FAST_CASES", "20"))
FLAGS = ["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]


def build(out: Path, variant: str) -> Path:
    srcs = sorted(str(p) for p in RUNTIME.glob("*.c"))
    extra = [] if variant == "plain" else ["-DMT_EMULATE_ACLE"]
    if variant == "simd_asan":
        extra += SAN
    subprocess.run([CC, *FLAGS, *extra, f"-I{RUNTIME}", *srcs, "-o", str(out)], check=True)
    return out


class Pad(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("top", "bottom", "left", "right")]


class FastParams(C.Structure):
    _fields_ = (
        [(n, C.c_int32) for n in ("input_zp", "output_offset", "act_min", "act_max", "stride_h", "stride_w")]
        + [(n, C.c_int32) for n in ("dilation_h", "dilation_w")]
        + [("pad", Pad), ("wide", C.c_int32)]
    )


class FastQuant(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("bias", "mult", "lshift", "rnd", "rshift")]


class AddFastParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input1_offset", "input2_offset", "output_offset", "act_min", "act_max")] + [
        ("q1", FastQuant),
        ("q2", FastQuant),
        ("qo", FastQuant),
    ]


def host_lib(request, tmp_path_factory, env_var: str, stem: str) -> C.CDLL:
    """The kernel library for a `plain`/`simd` parametrized fixture, or the prebuilt
    (sanitized) one named by `env_var` in the sanitizer rerun."""
    path = os.environ.get(env_var)
    if path:
        if request.param != "simd":
            pytest.skip("sanitized run covers the SIMD build only")
        return C.CDLL(path)
    if CC is None:
        pytest.skip("no host C compiler")
    return C.CDLL(str(build(tmp_path_factory.mktemp(stem) / f"libmt_{request.param}.so", request.param)))


@pytest.fixture(scope="module", params=["plain", "simd"])
def lib(request, tmp_path_factory) -> C.CDLL:
    return host_lib(request, tmp_path_factory, "MT_FAST_LIB", "fast")


def fparams(q: dict, stride, dil, pads, wide: bool) -> FastParams:
    return FastParams(
        -q["input_offset"], q["output_offset"], q["act_min"], q["act_max"], *stride, *dil, Pad(*pads), int(wide)
    )


def _choose(g, op) -> T.KernelCall | None:
    """The DSP kernel the table picks for op on a Cortex-M4, or None (portable)."""
    c = T.choose_call(g, op, T.KernelOptions(core="cortex-m4"))
    return c if c.dsp else None


def cols_choice(g, op) -> T.KernelCall:
    """mt_depthwise_conv_3x3_cols_s8_dsp for a 3x3 layer whatever its shape (the predicate
    table picks it only for tall narrow outputs)."""
    oh, sh = g.t(op.outputs[0]).shape[1], op.attrs["stride"][0]
    scratch = hostlib.buffer_size("mt_depthwise_conv_3x3_cols_s8_dsp", oh, sh)
    return T.KernelCall("mt_depthwise_conv_3x3_cols_s8_dsp", scratch, T.KernelParams("dw3x3_t"), dsp=True)


DW3X3_FORMS = ("rows", "cols", "plane")


def dw3x3_choice(g, op, form: str) -> T.KernelCall:
    """One of the 3x3 depthwise kernels for a 3x3 layer whatever its shape (the kernel table
    picks each for some shapes only): the row, column or plane form."""
    if form == "cols":
        return cols_choice(g, op)
    (oh, ow), (sh, sw) = g.t(op.outputs[0]).shape[1:3], op.attrs["stride"]
    if form == "rows":
        name = "mt_depthwise_conv_3x3_s8_dsp"
        return T.KernelCall(name, hostlib.buffer_size(name, ow, sw), T.KernelParams("dw3x3"), dsp=True)
    name = "mt_depthwise_conv_3x3_plane_s8_dsp"
    return T.KernelCall(name, hostlib.buffer_size(name, oh, ow, sh, sw), T.KernelParams("dw3x3"), dsp=True)


def run_fast(
    lib, g, op, xw: Window, yw: Window, wide: bool | str, pads=None, out_hw=None, generic=False, cols=False, form=None
) -> int:
    """wide: False (plain int8 filter), True (int16) or "s8p" (the paired int8 form, which
    the predicate table must have found exact). form: a 3x3 depthwise kernel (DW3X3_FORMS)
    instead of the table's choice (cols: "cols")."""
    c = _choose(g, op)
    assert c is not None, "the predicate table should accept this case"
    if cols:
        form = "cols"
    if form is not None:
        c = dw3x3_choice(g, op, form)
    if generic and c.dw3x3:  # the any-shape depthwise kernel instead
        c = T.KernelCall("mt_depthwise_conv_s8_dsp", 0, T.KernelParams("s8"), dsp=True)
    if wide == "s8p":
        assert c.paired, "the paired form should be exact for this case"
    elif not c.dw3x3:  # the 3x3 kernels have their own int16 form
        c.params.filter = "w16" if wide is True else "s8"
    wide = c.form()
    fp = K.fast_params(g, op, c)
    packed = np.ascontiguousarray(fp["packed"])
    fq = np.ascontiguousarray(fp["fq"])
    q = fp["q"]
    scratch = np.zeros(max(c.scratch_bytes, 4) // 4 + 1, np.int32)
    if op.kind == "fully_connected":
        p = fparams(q, (1, 1), (1, 1), (0, 0, 0, 0), wide)
        x = xw
        nout, nin = g.t(op.inputs[1]).shape
        return lib.mt_fully_connected_s8_dsp(
            C.byref(p), ptr(fq), ptr(x), x.size // nin, nin, ptr(packed), nout, ptr(yw), ptr(scratch)
        )
    p = fparams(q, op.attrs["stride"], op.attrs["dilation"], pads or op.attrs["pads"], wide)
    ov = yw.view()
    if out_hw is not None:
        ov.h, ov.w = out_hw
    fd = Dims(*g.t(op.inputs[1]).shape)
    fn = getattr(lib, c.name)
    args = (C.byref(p), ptr(fq), xw.ptr(), C.byref(xw.view()), ptr(packed), C.byref(fd), yw.ptr(), C.byref(ov))
    return fn(*args, ptr(scratch))


# (kind, filter form): the paired int8 form ("s8p") exists for conv and fully connected only
_CONV_FORMS = [
    (kind, wide)
    for kind in ("conv2d", "conv1x1", "depthwise_conv2d", "depthwise_generic")
    for wide in (False, "s8p", True)
    if not (wide == "s8p" and kind.startswith("depthwise"))
]


@pytest.mark.parametrize(
    ("kind", "wide"), _CONV_FORMS, ids=[f"{k}-{ {False: 'int8', True: 'int16'}.get(w, w)}" for k, w in _CONV_FORMS]
)
@pytest.mark.parametrize("seed", seeds("fastconv", N))
def test_conv(lib, seed: int, kind: str, wide: bool | str) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(50):
        g, x = conv_case(rng, kind.startswith("depthwise"))
        op = g.ops[0]
        w = g.t(op.inputs[1]).data
        if wide == "s8p":
            w[w == -128] = -127  # TFLite's symmetric int8 weights; -128 may rule the form out
        if kind == "conv1x1" and (w.shape[1], w.shape[2]) != (1, 1):
            continue
        if _choose(g, op) is not None:
            break
    else:
        pytest.skip("no case the fast kernel covers")
    (ref,) = run(g, [x])
    _, h, w_, c = x.shape
    xw = Window(rng, h, w_, c, x)
    yw = Window(rng, *ref.shape[1:])
    assert run_fast(lib, g, op, xw, yw, wide, generic=kind == "depthwise_generic") == 0
    yw.check(ref[0])
    xw.check(x[0])


def dw3x3_case(rng: np.random.Generator):
    """A 3x3 depthwise layer of the shapes mt_depthwise_conv_3x3_s8_dsp takes: stride 1 or 2,
    odd and even widths, any padding, channel counts with and without a partial group of 4."""
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    pads = tuple(int(v) for v in rng.integers(0, 3, size=4))
    h, w = int(rng.integers(max(1, 3 - pads[0] - pads[1]), 11)), int(rng.integers(max(1, 3 - pads[2] - pads[3]), 14))
    c = int(rng.choice([1, 3, 4, 5, 8, 12, 13]))
    oh, ow = out_size(h, 3, sh, 1, pads[0], pads[1]), out_size(w, 3, sw, 1, pads[2], pads[3])
    in_s, in_zp = float(rng.uniform(0.02, 0.1)), int(rng.integers(-128, 60))
    w_s = rng.uniform(0.001, 0.02, size=c).astype(np.float32)
    out_s = float(in_s * np.median(w_s) * 3 * 4900 / 40 * rng.uniform(0.5, 2.0))
    act = rand_act(rng)
    out_zp = -128 if act in ("relu", "relu6") and rng.random() < 0.5 else int(rng.integers(-30, 30))
    wq = QParams(w_s, np.zeros(c, dtype=np.int64), axis=3)
    weights = Tensor("w", (1, 3, 3, c), "int8", wq, rand_i8(rng, (1, 3, 3, c)))
    weights.data[..., 0] = 0 if rng.random() < 0.3 else weights.data[..., 0]  # a constant channel
    bias = Tensor("b", (c,), "int32", None, rng.integers(-20000, 20000, size=c).astype(np.int32))
    attrs = {"stride": (sh, sw), "dilation": (1, 1), "pads": pads, "activation": act, "depth_multiplier": 1}
    y = act_tensor("y", (1, oh, ow, c), out_s, out_zp)
    g = one_op("depthwise_conv2d", [act_tensor("x", (1, h, w, c), in_s, in_zp)], y, attrs, [weights, bias])
    return g, rand_i8(rng, (1, h, w, c))


@pytest.mark.parametrize("form", DW3X3_FORMS)
@pytest.mark.parametrize("seed", seeds("fastdw3x3", 2 * N))
def test_dw3x3(lib, seed: int, form: str) -> None:
    rng = np.random.default_rng(seed)
    g, x = dw3x3_case(rng)
    op = g.ops[0]
    c = _choose(g, op)
    assert c is not None and c.name.startswith("mt_depthwise_conv_3x3_")
    (ref,) = run(g, [x])
    xw = Window(rng, *x.shape[1:], x)
    yw = Window(rng, *ref.shape[1:])
    assert run_fast(lib, g, op, xw, yw, False, form=form) == 0
    yw.check(ref[0])
    xw.check(x[0])


@pytest.mark.parametrize("kind", ["conv2d", "depthwise_conv2d", "dw3x3", *(f"dw3x3_{f}" for f in DW3X3_FORMS)])
@pytest.mark.parametrize("seed", seeds("fastpatch", max(2, N // 3)))
def test_patches(lib, seed: int, kind: str) -> None:
    """Output bands from clipped input windows with per-edge padding (the patch contract)."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        g, x = conv_case(rng, kind == "depthwise_conv2d") if not kind.startswith("dw3x3") else dw3x3_case(rng)
        if _choose(g, g.ops[0]) is not None:
            break
    op = g.ops[0]
    (ref,) = run(g, [x])
    sh = op.attrs["stride"][0]
    dh = op.attrs["dilation"][0]
    kh = g.t(op.inputs[1]).shape[1]
    top, bottom, left, right = op.attrs["pads"]
    oh = ref.shape[1]
    split = oh // 2
    got = np.zeros_like(ref[0])
    for y0, y1 in ((0, split), (split, oh)):
        if y1 <= y0:
            continue
        iy0 = y0 * sh - top
        iy1 = (y1 - 1) * sh - top + (kh - 1) * dh + 1
        lo, hi = max(iy0, 0), min(iy1, x.shape[1])
        xs = x[0, lo:hi]
        xw = Window(rng, *xs.shape, xs)
        yw = Window(rng, y1 - y0, ref.shape[2], ref.shape[3])
        pads = (lo - iy0, iy1 - hi, left, right)
        c0 = _choose(g, op)
        forms: list[bool | str] = [False, True, *(["s8p"] if c0 is not None and c0.paired else [])]
        wide = forms[int(rng.integers(0, len(forms)))]
        form = kind.removeprefix("dw3x3_") if kind.startswith("dw3x3_") else None
        assert run_fast(lib, g, op, xw, yw, wide, pads=pads, form=form) == 0
        got[y0:y1] = yw.inner
    np.testing.assert_array_equal(got, ref[0])


@pytest.mark.parametrize("wide", [False, "s8p", True], ids=["int8", "s8p", "int16"])
@pytest.mark.parametrize("seed", seeds("fastfc", N))
def test_fully_connected(lib, seed: int, wide: bool | str) -> None:
    rng = np.random.default_rng(seed)
    batches, nin, nout = int(rng.integers(1, 3)), int(rng.integers(1, 80)), int(rng.integers(1, 20))
    in_s, in_zp = float(rng.uniform(0.02, 0.1)), int(rng.integers(-128, 60))
    per_channel = bool(rng.random() < 0.5)
    w_s = rng.uniform(0.001, 0.02, size=nout).astype(np.float32) if per_channel else np.float32(0.01)
    w_zp = np.zeros(nout, np.int64) if per_channel else 0
    out_s = float(in_s * np.median(w_s) * np.sqrt(nin) * 4900 / 40 * rng.uniform(0.5, 2))
    weights = Tensor("w", (nout, nin), "int8", QParams(w_s, w_zp), rand_i8(rng, (nout, nin)))
    if wide == "s8p":
        weights.data[weights.data == -128] = -127  # TFLite's symmetric int8 weights
    bias = Tensor("b", (nout,), "int32", None, rng.integers(-20000, 20000, size=nout).astype(np.int32))
    act = str(rng.choice(["none", "relu", "relu6"]))
    g = one_op(
        "fully_connected",
        [act_tensor("x", (batches, nin), in_s, in_zp)],
        act_tensor("y", (batches, nout), out_s, int(rng.integers(-30, 30))),
        {"activation": act},
        [weights, bias],
    )
    x = rand_i8(rng, (batches, nin))
    (ref,) = run(g, [x])
    out = np.zeros(batches * nout + 8, np.int8)
    assert run_fast(lib, g, g.ops[0], np.ascontiguousarray(x), out, wide) == 0
    np.testing.assert_array_equal(out[: batches * nout], ref.reshape(-1))
    assert not out[batches * nout :].any()


@pytest.mark.parametrize("seed", seeds("fastadd", N))
def test_add(lib, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (1, int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 9)))
    ts = [act_tensor(n, shape, float(rng.uniform(0.01, 0.2)), int(rng.integers(-128, 127))) for n in ("a", "b", "y")]
    g = one_op("add", ts[:2], ts[2], {"activation": str(rng.choice(["none", "relu", "relu6"]))})
    a, b = rand_i8(rng, shape), rand_i8(rng, shape)
    n = min(2, a.size)  # the extremes, where the shape has room
    a.reshape(-1)[:n], b.reshape(-1)[:n] = (-128, 127)[:n], (127, -128)[:n]
    (ref,) = run(g, [a, b])
    q = lower(g, g.ops[0])
    recs = T.add_records(q)
    assert recs is not None
    p = AddFastParams(
        q["input1_offset"], q["input2_offset"], q["output_offset"], q["act_min"], q["act_max"],
        *(FastQuant(*r) for r in recs),
    )  # fmt: skip
    out = np.zeros(a.size, np.int8)
    assert lib.mt_add_s8_dsp(C.byref(p), ptr(a), ptr(b), ptr(out), a.size) == 0
    np.testing.assert_array_equal(out, ref.reshape(-1))


def test_exactness_guard() -> None:
    """A layer whose accumulator could exceed the fast requantization's range keeps the
    portable kernel; an all-zero filter channel becomes an exact constant record."""
    q = {"input_offset": 128, "multiplier": np.array([1 << 30]), "shift": np.array([3]), "output_offset": 0}
    q |= {"act_min": -128, "act_max": 127}
    big = np.full((1, 4096), 127, np.int8)
    assert T.fast_quant(big, np.zeros(1, np.int32), q, 1) is None
    zero = np.zeros((1, 8), np.int8)
    rec = T.fast_quant(zero, np.array([1000], np.int32), q, 1)
    assert rec is not None and rec[0, 1] == 0 and rec[0, 4] == 1 and rec[0, 3] >> 1 == 127  # the constant 127
    # a right shift that rounds every reachable accumulator to 0: constant zero point
    q2 = q | {"shift": np.array([-30]), "multiplier": np.array([1 << 30]), "output_offset": -5}
    rec = T.fast_quant(np.ones((1, 2), np.int8), np.zeros(1, np.int32), q2, 1)
    assert rec is not None and rec[0, 1] == 0 and rec[0, 3] >> 1 == -5
    # a positive shift (no right shift to fold the zero point into) keeps the portable kernel
    q3 = q | {"shift": np.array([1]), "multiplier": np.array([1 << 30])}
    assert T.fast_quant(np.ones((1, 2), np.int8), np.zeros(1, np.int32), q3, 1) is None


def test_buffer_sizes(lib) -> None:
    """The host build's size queries (compiler.target.hostlib, what the planner reserves) answer as the
    kernels built here do."""
    for dims in ((8, 1, 1, 3), (16, 1, 1, 64), (32, 3, 3, 16), (64, 10, 4, 1)):
        fd = Dims(*dims)
        k = (dims[1] * dims[2] * dims[3] + 3) // 4
        if dims[1] == dims[2] == 1:
            assert lib.mt_conv_1x1_s8_dsp_get_buffer_size(C.byref(fd)) == 16 * k
        assert lib.mt_conv_s8_dsp_get_buffer_size(C.byref(fd)) == 20 * k
        assert lib.mt_depthwise_conv_s8_dsp_get_buffer_size(C.byref(fd)) == 0
    for ow, sw in ((1, 1), (5, 1), (48, 1), (24, 2), (3, 2)):
        for name in ("mt_depthwise_conv_3x3_s8_dsp", "mt_depthwise_conv_3x3_cols_s8_dsp"):
            assert getattr(lib, f"{name}_get_buffer_size")(ow, sw) == hostlib.buffer_size(name, ow, sw)
        for oh, sh in ((1, 1), (6, 2), (25, 1)):
            name = "mt_depthwise_conv_3x3_plane_s8_dsp"
            assert lib.mt_depthwise_conv_3x3_plane_s8_dsp_get_buffer_size(oh, ow, sh, sw) == hostlib.buffer_size(
                name, oh, ow, sh, sw)
    assert lib.mt_fully_connected_s8_dsp_get_buffer_size(640) == 8 * 160


def test_rejects_bad_args(lib) -> None:
    fd = Dims(4, 3, 3, 2)
    v = View(4, 4, 3, 12, 3)
    p = FastParams()
    buf = np.zeros(64, np.int8)
    assert lib.mt_conv_s8_dsp(C.byref(p), ptr(buf), ptr(buf), C.byref(v), ptr(buf), C.byref(fd), ptr(buf),
                              C.byref(v), ptr(buf)) != 0  # fmt: skip


@pytest.mark.skipif("MT_FAST_LIB" in os.environ, reason="already inside the sanitized run")
def test_sanitized_run(tmp_path) -> None:
    """The SIMD code paths (emulated intrinsics) under ASan + UBSan."""
    if CC is None:
        pytest.skip("no host C compiler")
    so = build(tmp_path / "libmt_asan.so", "simd_asan")
    libasan = subprocess.run([CC, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip(f"{CC} has no libasan.so to preload")
    env = dict(os.environ, MT_FAST_LIB=str(so), MT_FAST_CASES="4", LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0")
    sel = "not emulator and not opt_level"  # QEMU runs do not belong under an ASan preload
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k", sel, __file__]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "runtime error" not in r.stderr and "AddressSanitizer" not in r.stderr, r.stderr[-4000:]


def test_cortex_m_build(tmp_path) -> None:
    """The fast kernels compile warning-free (-Wconversion -pedantic) with the DSP paths."""
    import shutil

    arm = shutil.which("arm-none-eabi-gcc")
    if arm is None:
        pytest.skip("arm-none-eabi-gcc not found")
    srcs = [str(p) for p in sorted(RUNTIME.glob("*_dsp.c"))] + [str(RUNTIME / "mt_mat_2col_s8.c")]
    # -O2/-O3 with the register-pinned asm runs (MT_FAST_ASM, as the generated Makefile sets
    # it), and the other levels without, hard-float ABI included
    for cpu, fpu in (("cortex-m4", "-mfpu=fpv4-sp-d16"), ("cortex-m7", "-mfpu=fpv5-d16")):
        for opt in ("-O2 -DMT_FAST_ASM", "-O3 -DMT_FAST_ASM", "-O2", "-O1", "-Os", "-Og"):
            cmd = [arm, f"-mcpu={cpu}", "-mthumb", fpu, "-mfloat-abi=hard", "-std=c99", *opt.split()]
            cmd += ["-Wall", "-Wextra", "-Werror", "-Wconversion", "-pedantic"]
            subprocess.run([*cmd, f"-I{RUNTIME}", "-c", *srcs], check=True, cwd=tmp_path)


# -- emulator: the shared models -----------------------------------------------------------------

SHARED = ["vww_96_int8", "pretrainedResnet_quant", "kws_ref_model", "ad01_int8"]


def _toolchain() -> None:
    import shutil

    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed")


@pytest.mark.parametrize("board", ["stm32f405", "stm32f746g-disco"])
@pytest.mark.parametrize("model", SHARED)
def test_emulator_models(tmp_path, model: str, board: str) -> None:
    _toolchain()
    path = MODELS / f"{model}.tflite"
    if not path.exists():
        pytest.skip(f"{path} missing")
    from compiler.pipeline import CompileOptions, run_model

    r = run_model(path, tmp_path / "fast", CompileOptions(board=board), n_random=2)
    assert r["bit_exact"], r
    assert r["kernels"]["fast"], "no fast kernel was used"
    assert r["instructions_per_mac"] < 3.0


@pytest.mark.parametrize("model", ["kws_ref_model", "ad01_int8"])
def test_emulator_m7_not_slower(tmp_path, model: str) -> None:
    _toolchain()
    from compiler.pipeline import CompileOptions, run_model

    path = MODELS / f"{model}.tflite"
    fast = run_model(path, tmp_path / "f", CompileOptions(board="stm32f746g-disco"), n_random=1)
    port = run_model(path, tmp_path / "p", CompileOptions(board="stm32f746g-disco", kernels="portable"), n_random=1)
    assert fast["bit_exact"] and port["bit_exact"]
    assert port["kernels"]["fast"] == {}
    assert fast["instructions"] < port["instructions"]


@pytest.mark.parametrize("widen", [False], ids=["int8"])
def test_speed_independent_of_opt_level(tmp_path, widen: bool) -> None:
    """The same model (examples/models/tiny_cnn.tflite: first conv, depthwise 3x3, 1x1 convs,
    add, FC; int8 filters, so the paired kernels) built by the generated Makefile at -O2, -Os
    and -O0 (`make OPT=...`): bit-exact each time, and the QEMU instruction counts
    (deterministic) stay close, since the fast kernels build as at -O2 whatever the level."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import speed

    from compiler.pipeline import CompileOptions, load_model, run_model

    model = ROOT / "examples" / "models" / "tiny_cnn.tflite"
    out = tmp_path / "tiny"
    r = run_model(model, out, CompileOptions(board="stm32f405", widen=widen, profile=True), n_random=1)
    assert r["bit_exact"]
    assert any(" s8p" in k for k in r["kernels"]["fast"]), r["kernels"]
    g = load_model(model)
    o2 = speed.rerun_at(out, g, "stm32f405", "-O2")
    assert o2["instructions"] == r["instructions"] and o2["bit_exact"], (o2, r["instructions"])
    os_ = speed.rerun_at(out, g, "stm32f405", "-Os")
    o0 = speed.rerun_at(out, g, "stm32f405", "-O0")
    assert os_["bit_exact"] and o0["bit_exact"]
    # the steps that run a fast kernel (plan.txt names them); the portable kernels and the
    # model's own code do follow the project's level
    fast = [i for i, op in enumerate(g.ops) if any(f" {op.name} " in ln for ln in speed.plan_kernels(out))]
    assert len(fast) >= 10, fast

    def kernels(run: dict) -> int:
        return sum(run["per_step"][i] for i in fast)

    print(
        f"tiny_cnn int8 filters, whole model: -O2 {o2['instructions']:,}  -Os {os_['instructions']:,}  "
        f"-O0 {o0['instructions']:,}; fast-kernel steps: -O2 {kernels(o2):,}  -Os {kernels(os_):,}  "
        f"-O0 {kernels(o0):,}"
    )
    assert os_["instructions"] <= 1.10 * o2["instructions"]
    assert kernels(os_) <= 1.10 * kernels(o2)
    assert kernels(o0) <= 1.10 * kernels(o2)


def test_widen_choice_under_flash_budget() -> None:
    """kernel_calls widens the layers that save the most instructions per extra flash byte
    first, never past the flash it is given, says so per layer, and --no-widen never widens."""
    from compiler.pipeline import load_model

    g = load_model(ROOT / "examples" / "models" / "tiny_cnn.tflite")
    full = {n: c for n, c in T.kernel_calls(g, 1 << 30).items() if c.dsp}
    none = {n: c for n, c in T.kernel_calls(g, 1 << 30, T.KernelOptions(widen=False)).items() if c.dsp}
    ops = {op.name: op for op in g.ops}
    cand = {n: c for n, c in full.items() if c.wide}
    assert len(cand) >= 5
    # the gain of the int8 form (paired where exact) per extra flash byte
    rate = {n: T.widen_gain(g, ops[n], none[n]) / none[n].params.filter_bytes for n in cand}
    order = sorted(rate, key=lambda n: (-rate[n], n))
    base = sum(t.nbytes for t in g.constants()) + T.FLASH_CODE_RESERVE
    budget = sum(full[n].params.filter_bytes // 2 for n in order[:3])  # room for the three best exactly
    part = {n: c for n, c in T.kernel_calls(g, base + budget).items() if c.dsp}
    wide = {n for n, c in part.items() if c.wide}
    assert wide == set(order[:3]), (wide, order)
    assert sum(part[n].params.filter_bytes // 2 for n in wide) <= budget
    for n in order[3:]:
        assert "int8: widening would save" in part[n].describe(), part[n].describe()
    assert all("widened: ~" in part[n].describe() for n in wide)
    assert not any(c.wide for c in none.values())
    assert all("--no-widen" in none[n].describe() for n in cand)


def test_emulator_pointwise_shapes(tmp_path) -> None:
    """The pointwise matrix core's Thumb-2 runs (mt_mat_pairs_w16_full, mt_pw_run_w16_full)
    and their fallbacks on Cortex-M4: an odd number of input groups (12 channels), an odd
    pixel count, a strided 1x1 conv (pixel pairs not consecutive), odd output channels, a
    reduction past the unrolled run (160 channels), a 3x3 conv on the same core; int16
    filters (the default widen), bit-exact against TFLite-Micro's reference."""
    _toolchain()
    from compiler.models.builder import GraphBuilder
    from compiler.pipeline import CompileOptions, run_model

    b = GraphBuilder("pw_shapes", seed=3)
    x = b.input((1, 5, 3, 12))
    y = b.conv2d(x, 10, kernel=1, activation="relu")  # k_groups 3, 15 pixels
    y = b.conv2d(y, 8, kernel=1)  # 10 channels: not whole groups, no activation
    y = b.conv2d(y, 7, kernel=1, stride=2)  # strided, odd output channels
    y = b.conv2d(y, 160, kernel=1, activation="relu")
    y = b.conv2d(y, 6, kernel=1)  # k_groups 40: past the unrolled run
    y = b.conv2d(y, 12, kernel=1, activation="relu6")
    y = b.conv2d(y, 12, kernel=3, padding="same")  # im2col conv on the same core
    b.output(y)
    r = run_model(b.build(), tmp_path / "pw", CompileOptions(board="stm32f405"), n_random=2)
    assert r["bit_exact"], r
    assert r["kernels"]["fast"], "no fast kernel was used"
