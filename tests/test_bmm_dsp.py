"""mt_batch_matmul_s8_dsp (runtime_c/mt_batch_matmul_s8_dsp.c) vs the golden model, byte for byte.

Built like tests/test_fast_kernels.py: `plain` (portable fallback), `simd` (-DMT_EMULATE_ACLE:
the SMLAD/SMLAxy paths over runtime_c/mt_acle_host.h) and, in a subprocess, the SIMD build
under ASan + UBSan. Cases are the attention layouts the token plan uses (heads inside wider
token rows: Q K^T with B contiguous along k, P V with B contiguous along n), odd k and n,
offsets at the int8 extremes, and quantization that forces the mt_mbqm fallback.
"""

from __future__ import annotations

import ctypes as C
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_fast_kernels import CC, build, host_lib
from test_transformer_kernels import BmmDims, BmmParams, act, one_op, ptr

from compiler.core.lower import lower
from compiler.golden import reference

ROOT = Path(__file__).resolve().parents[1]
N = int(os.environ.get("MT_FAST_CASES", "20"))


@pytest.fixture(scope="module", params=["plain", "simd"])
def lib(request, tmp_path_factory) -> C.CDLL:
    return host_lib(request, tmp_path_factory, "MT_BMM_LIB", "bmm")


def attention_case(rng: np.random.Generator, tb: bool, big_shift: bool = False):
    """heads x [m, k] @ [k, n] with every operand a head slice of a wider token row."""
    heads = int(rng.integers(1, 4))
    m, k, n = int(rng.integers(1, 12)), int(rng.choice([1, 3, 4, 7, 16, 33, 64, 226])), int(rng.integers(1, 19))
    a = act("a", (heads, m, k), rng, zp=int(rng.choice([-128, 127, int(rng.integers(-30, 30))])))
    b = act("b", (heads, n, k) if tb else (heads, k, n), rng, zp=int(rng.choice([-128, 127, 0])))
    ys = a.quant.s * b.quant.s * (1 / 1000 if big_shift else np.sqrt(k) * rng.uniform(2, 20))
    y = act("y", (heads, m, n), rng, scale=float(ys))
    g = one_op("batch_matmul", [a, b], y, {"transpose_b": tb})
    xa = rng.integers(-128, 128, size=a.shape, dtype=np.int8)
    xb = rng.integers(-128, 128, size=b.shape, dtype=np.int8)
    xa.reshape(-1)[:2], xb.reshape(-1)[:2] = (-128, 127), (-128, 127)
    return g, xa, xb


def run_case(lib, g, xa, xb, rng) -> None:
    (ref,) = reference.run(g, [xa, xb])
    p = lower(g, g.ops[0])
    heads, m, k = xa.shape
    n = ref.shape[-1]
    tb = bool(p["transpose_b"])
    # token buffers: [rows, heads * width + pad], head h at column h * width
    pa, pb, py = (int(v) for v in rng.integers(0, 5, size=3))
    arow, yrow = heads * k + pa, heads * n + py
    abuf = rng.integers(-128, 128, size=m * arow + 8, dtype=np.int8)
    ybuf = rng.integers(-128, 128, size=m * yrow + 8, dtype=np.int8)
    before = ybuf.copy()
    for h in range(heads):
        for i in range(m):
            abuf[i * arow + h * k : i * arow + (h + 1) * k] = xa[h, i]
    if tb:  # B^T rows = tokens: [n, heads * k], (k, j) at j * brow + kk
        brow = heads * k + pb
        bbuf = rng.integers(-128, 128, size=n * brow + 8, dtype=np.int8)
        for h in range(heads):
            for j in range(n):
                bbuf[j * brow + h * k : j * brow + (h + 1) * k] = xb[h, j]
        b_k, b_n, b_batch = 1, brow, k
    else:  # B rows = tokens: [k, heads * n], (k, j) at kk * brow + j
        brow = heads * n + pb
        bbuf = rng.integers(-128, 128, size=k * brow + 8, dtype=np.int8)
        for h in range(heads):
            for kk in range(k):
                bbuf[kk * brow + h * n : kk * brow + (h + 1) * n] = xb[h, kk]
        b_k, b_n, b_batch = brow, 1, n
    dims = BmmDims(heads, m, k, n, k, arow, b_batch, b_k, b_n, n, yrow)
    bp = BmmParams(p["a_offset"], p["b_offset"], p["output_offset"], p["multiplier"], p["shift"], p["act_min"],
                   p["act_max"])  # fmt: skip
    size = lib.mt_batch_matmul_s8_dsp_get_buffer_size(k)
    assert size >= 4 * k
    scratch = np.zeros(size // 4, np.int32)
    assert lib.mt_batch_matmul_s8_dsp(C.byref(bp), C.byref(dims), ptr(abuf), ptr(bbuf), ptr(ybuf), ptr(scratch)) == 0
    want = before.copy()
    for h in range(heads):
        for i in range(m):
            want[i * yrow + h * n : i * yrow + (h + 1) * n] = ref[h, i]
    np.testing.assert_array_equal(ybuf, want)


@pytest.mark.parametrize("tb", [True, False], ids=["qk", "pv"])
@pytest.mark.parametrize("seed", range(N))
def test_attention_layouts(lib, seed: int, tb: bool) -> None:
    rng = np.random.default_rng(7100 + seed)
    run_case(lib, *attention_case(rng, tb), rng)


@pytest.mark.parametrize("tb", [True, False], ids=["qk", "pv"])
def test_mbqm_fallback(lib, tb: bool) -> None:
    """A multiplier > 1 with a large k exceeds the fast requantization's range: exact anyway."""
    rng = np.random.default_rng(99)
    for _ in range(6):
        run_case(lib, *attention_case(rng, tb, big_shift=True), rng)


def test_other_strides_fall_back(lib) -> None:
    """Neither operand layout contiguous: the portable kernel's result."""
    rng = np.random.default_rng(5)
    g, xa, xb = attention_case(rng, False)
    (ref,) = reference.run(g, [xa, xb])
    p = lower(g, g.ops[0])
    heads, m, k = xa.shape
    n = ref.shape[-1]
    bt = np.ascontiguousarray(np.swapaxes(xb, 1, 2)).reshape(-1).repeat(2)  # every value twice
    dims = BmmDims(heads, m, k, n, m * k, k, 2 * k * n, 2, 2 * k, m * n, n)
    bp = BmmParams(p["a_offset"], p["b_offset"], p["output_offset"], p["multiplier"], p["shift"], p["act_min"],
                   p["act_max"])  # fmt: skip
    y = np.zeros(ref.size, np.int8)
    scratch = np.zeros(lib.mt_batch_matmul_s8_dsp_get_buffer_size(k) // 4, np.int32)
    a = np.ascontiguousarray(xa)
    assert lib.mt_batch_matmul_s8_dsp(C.byref(bp), C.byref(dims), ptr(a), ptr(bt), ptr(y), ptr(scratch)) == 0
    np.testing.assert_array_equal(y, ref.reshape(-1))


@pytest.mark.skipif("MT_BMM_LIB" in os.environ, reason="already inside the sanitized run")
def test_sanitized_run(tmp_path) -> None:
    if CC is None:
        pytest.skip("no host C compiler")
    so = build(tmp_path / "libmt_asan.so", "simd_asan")
    libasan = subprocess.run([CC, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip(f"{CC} has no libasan.so to preload")
    env = dict(os.environ, MT_BMM_LIB=str(so), MT_FAST_CASES="6", LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "runtime error" not in r.stderr and "AddressSanitizer" not in r.stderr, r.stderr[-4000:]
