"""The 16x8 Cortex-M DSP kernels (runtime_c/mt_conv_s16_dsp.c, mt_depthwise_conv_s16_dsp.c,
mt_fully_connected_s16_dsp.c) against the portable 16x8 kernels and TFLite-Micro.

Host part: `tests/kernels/s16_dsp_check.c` runs each DSP kernel (its SIMD path over the
emulated intrinsics of runtime_c/mt_acle_host.h) and the portable kernel on the same random
cases (shapes, strides, dilation, per-edge padding, views inside larger buffers, every bias
form, int16 / int8 over their whole ranges) and on the overflow corners (every activation -32768
or 32767, every weight -128, K up to 5003 and 511 depthwise taps, so the int32 partials would
overflow without their flushes), byte for byte, under ASan + UBSan.
Selection: on a DSP core the compiler picks the three kernels for a 16x8 model (and their scratch).
Emulator part: a 16x8 model and the corner model run in QEMU on the F405 with the DSP kernels,
bit-exact with the reference and with TFLite-Micro, in fewer instructions than the portable ones.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_tflite_support import G, _bias, _w8

from compiler.core.ir import Graph
from compiler.frontend.tflite import load_tflite
from compiler.frontend.tflite_writer import write_tflite
from compiler.golden import reference
from compiler.golden.tflm import TflmModel, tflm_available

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime_c"
CHECK = ROOT / "tests" / "kernels" / "s16_dsp_check.c"
SOURCES = [RUNTIME / f"{k}.c" for k in ("mt_conv_s16", "mt_conv_s16_dsp", "mt_depthwise_conv_s16",
                                        "mt_depthwise_conv_s16_dsp", "mt_fully_connected_s16",
                                        "mt_fully_connected_s16_dsp")]
FLAGS = ["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror"]
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
DSP_KERNELS = {"mt_conv_s16_dsp", "mt_depthwise_conv_s16_dsp", "mt_fully_connected_s16_dsp"}


def s16_model(hw: int = 16, c: int = 16, seed: int = 0) -> Graph:
    """A 16x8 block: QUANTIZE int8->int16, conv 3x3 (c->c, int64 bias, relu), depthwise 3x3,
    conv 1x1 (c->2c), conv 3x3 stride 2 (2c->c, int32 bias, relu6), RESHAPE, FC (->10),
    QUANTIZE back to int8."""
    rng = np.random.default_rng(seed)
    b = G("s16_block", seed)
    x8 = b.input((1, hw, hw, c), "int8", 0.05, -3)
    x = b.t((1, hw, hw, c), "int16", 2.5e-4, 0)
    b.op("quantize", [x8], x)
    s = 6.0 * np.sqrt(9 * c) / 32768
    c1 = b.t((1, hw, hw, c), "int16", s, 0)
    b.op("conv2d", [x, _w8(b, (c, 3, 3, c), 0, rng), *_bias(b, c, "int64", rng)], c1, stride=(1, 1),
         dilation=(1, 1), pads=(1, 1, 1, 1), activation="relu")
    d = b.t((1, hw, hw, c), "int16", s * 2, 0)
    b.op("depthwise_conv2d", [c1, _w8(b, (1, 3, 3, c), 3, rng), *_bias(b, c, "int64", rng)], d, stride=(1, 1),
         dilation=(1, 1), pads=(1, 1, 1, 1), activation="none", depth_multiplier=1)
    e = b.t((1, hw, hw, 2 * c), "int16", s * 3, 0)
    b.op("conv2d", [d, _w8(b, (2 * c, 1, 1, c), 0, rng), *_bias(b, 2 * c, "int64", rng)], e, stride=(1, 1),
         dilation=(1, 1), pads=(0, 0, 0, 0), activation="none")
    h2 = hw // 2
    f = b.t((1, h2, h2, c), "int16", s * 4, 0)
    b.op("conv2d", [e, _w8(b, (c, 3, 3, 2 * c), 0, rng), *_bias(b, c, "int32", rng)], f, stride=(2, 2),
         dilation=(1, 1), pads=(0, 1, 0, 1), activation="relu6")
    n = h2 * h2 * c
    r = b.t((1, n), "int16", s * 4, 0)
    b.op("reshape", [f], r)
    o = b.t((1, 10), "int16", 0.03, 0)
    b.op("fully_connected", [r, b.t((10, n), "int8", 0.01, 0, rng.integers(-127, 128, (10, n)).astype(np.int8)),
                             *_bias(b, 10, "int64", rng)], o, activation="none")
    y = b.t((1, 10), "int8", 4.0, 2)
    b.op("quantize", [o], y)
    return b.output(y)


def corner_model(ic: int = 600) -> Graph:
    """int16 input (1, 3, 3, ic) into a 1x1 conv (K = ic), a 3x3 depthwise and an FC over the
    flattened input (K = 9 ic), every weight -128, scales chosen so that all -32768 (or 32767)
    inputs give unsaturated outputs: the int32 partials' flush is what keeps them exact."""
    b = G("s16_corner")
    s_x, s_w = 1e-4, 0.01
    x = b.input((1, 3, 3, ic), "int16", s_x, 0)
    full = lambda shape: np.full(shape, -128, np.int8)  # noqa: E731
    wq = lambda shape, axis: b.t(shape, "int8", np.full(shape[axis], s_w), np.zeros(shape[axis], np.int64),  # noqa: E731
                                 full(shape), axis=axis)
    big = float(1 << 22) * s_x * s_w  # one worst-case product, real units
    c = b.t((1, 3, 3, 4), "int16", ic * big / 16000, 0)
    b.op("conv2d", [x, wq((4, 1, 1, ic), 0), b.t((4,), "int64", None, 0, np.array([0, 1, -1, 1 << 30]))], c,
         stride=(1, 1), dilation=(1, 1), pads=(0, 0, 0, 0), activation="none")
    d = b.t((1, 3, 3, ic), "int16", 9 * big / 16000, 0)
    b.op("depthwise_conv2d", [x, wq((1, 3, 3, ic), 3)], d, stride=(1, 1), dilation=(1, 1), pads=(1, 1, 1, 1),
         activation="none", depth_multiplier=1)
    r = b.t((1, 9 * ic), "int16", s_x, 0)
    b.op("reshape", [x], r)
    f = b.t((1, 4), "int16", 9 * ic * big / 16000, 0)
    b.op("fully_connected", [r, b.t((4, 9 * ic), "int8", s_w, 0, full((4, 9 * ic))),
                             b.t((4,), "int64", None, 0, np.array([0, 5, -5, -(1 << 33)]))], f, activation="none")
    return b.output(c, d, f)


# -- host ----------------------------------------------------------------------------------------


def _cc() -> str:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler")
    return cc


@pytest.mark.parametrize("variant", ["simd_asan", "plain"])
def test_dsp_kernels_equal_portable_on_host(tmp_path, variant) -> None:
    """simd_asan: the SIMD paths (emulated intrinsics) under ASan + UBSan, 400 random cases per
    kernel plus the overflow corners; plain: a host build without them (the portable fallback)."""
    cc = _cc()
    exe = tmp_path / "check"
    extra = ["-DMT_EMULATE_ACLE", *SAN] if variant == "simd_asan" else []
    r = subprocess.run([cc, *FLAGS, *extra, f"-I{RUNTIME}", str(CHECK), *map(str, SOURCES), "-o", str(exe)],
                       capture_output=True, text=True)
    if r.returncode != 0 and variant == "simd_asan" and "sanitize" in r.stderr:
        pytest.skip(f"{cc} cannot build with sanitizers: {r.stderr[-300:]}")
    assert r.returncode == 0, r.stderr
    run = subprocess.run([str(exe), "400", "7"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr, run.stderr[-4000:]
    counts = dict(zip(*[iter(run.stdout.split()[1:])] * 2, strict=True))
    assert int(counts["conv"]) >= 400 and int(counts["depthwise"]) >= 400 and int(counts["fully_connected"]) >= 400


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7"])
def test_cortex_m_build(tmp_path, cpu) -> None:
    """The DSP paths compile warning-free for the cores, SMLAD in the object code."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    for src in SOURCES[1::2]:
        obj = tmp_path / f"{src.stem}.o"
        subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-Os", f"-mcpu={cpu}", "-mthumb", "-Wall", "-Wextra",
                        "-Werror", f"-I{RUNTIME}", "-c", str(src), "-o", str(obj)], check=True)
        dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], capture_output=True, text=True).stdout
        assert ("smlad" in dis) or ("smlabb" in dis), src.name


# -- selection -----------------------------------------------------------------------------------


def test_selected_on_dsp_cores_only() -> None:
    from compiler.schedule.kernels_table import KernelOptions, kernel_calls

    def dsp(core: str, fast: bool = True) -> dict:
        calls = kernel_calls(g, 1 << 20, KernelOptions(fast=fast, core=core))
        return {n: c for n, c in calls.items() if c.dsp}

    g = load_tflite_bytes(write_tflite(s16_model(8, 8)))
    assert {c.name for c in dsp("cortex-m4").values()} == DSP_KERNELS
    conv = next(c for n, c in dsp("cortex-m7").items() if "conv_2d" in n)
    assert conv.scratch_bytes == 24 * ((3 * 3 * 8 + 3) // 4) + 36 * 8 and conv.params.filter_bytes == 0
    assert dsp("cortex-m0") == {}
    assert dsp("cortex-m4", fast=False) == {}


def load_tflite_bytes(buf: bytes) -> Graph:
    from compiler.frontend.tflite import parse_tflite

    return parse_tflite(buf, name="m")


# -- emulator ------------------------------------------------------------------------------------


def _qemu_run(tmp_path: Path, g: Graph, kernels: str, inputs: np.ndarray | None = None) -> dict:
    from compiler.pipeline import CompileOptions, run_model
    from tests.conftest import have_firmware_tools

    why = have_firmware_tools()
    if why is not None:
        pytest.skip(why)
    if not tflm_available():
        pytest.skip("tflite-micro package not installed")
    path = tmp_path / f"{g.name}.tflite"
    path.write_bytes(write_tflite(g))
    out = tmp_path / f"out_{kernels}"
    report = run_model(path, out, CompileOptions(board="stm32f405", kernels=kernels), input_path=inputs, n_random=2)
    assert report["bit_exact"], report
    imported = load_tflite(path)
    tflm = TflmModel(path)
    from compiler.pipeline import make_input_sets

    for xs in make_input_sets(imported, inputs, 2):
        want = tflm.invoke(*xs, n_outputs=len(imported.outputs))
        for w, r in zip(want, reference.run(imported, xs), strict=True):
            assert np.array_equal(np.asarray(w).reshape(r.shape), r), "reference != TFLite-Micro"
    return report


def test_s16_model_in_qemu(tmp_path) -> None:
    """The 16x8 block on the F405 with the DSP kernels: bit-exact with the reference and TFLM,
    every conv / depthwise / FC on a DSP kernel, fewer instructions than the portable kernels."""
    g = s16_model(8, 8)
    fast = _qemu_run(tmp_path, g, "fast")
    used = {k.split()[0] for k in fast["kernels"]["fast"]}
    assert used == DSP_KERNELS, fast["kernels"]
    port = _qemu_run(tmp_path, g, "portable")
    assert port["kernels"]["fast"] == {}
    assert fast["instructions"] < port["instructions"], (fast["instructions"], port["instructions"])


def test_overflow_corner_in_qemu(tmp_path) -> None:
    """All -32768 / all 32767 / random int16 inputs x all -128 weights, K = 600 (conv), 5400 (FC):
    bit-exact on the core (real SMLAD) with the reference and TFLM."""
    g = corner_model()
    shape = g.t(g.inputs[0]).shape
    rng = np.random.default_rng(3)
    xs = np.stack([np.full(shape, -32768), np.full(shape, 32767), rng.integers(-32768, 32768, shape)])
    r = _qemu_run(tmp_path, g, "fast", xs.astype(np.int16))
    assert {k.split()[0] for k in r["kernels"]["fast"]} == DSP_KERNELS, r["kernels"]
    assert r["max_abs_diff"] == 0
