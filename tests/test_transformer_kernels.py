"""Transformer kernels (layer_norm, gelu, batch_matmul, transpose/slice) vs the golden model.

Each case builds a one-op graph with random shapes and quantization, runs
`compiler.golden.reference.run`, and calls the C kernel (host build via ctypes) with the integer
parameters of `compiler.core.lower.lower`; outputs must match byte for byte, and the bytes around
the output must stay untouched. The integer LayerNorm and the GELU table are also checked
against the float functions of `compiler.core.transformer_ops` (error in output LSBs).
"""

from __future__ import annotations

import ctypes as C
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from compiler.core import transformer_ops as F
from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.core.lower import lower
from compiler.golden import reference

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime_c"
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
N_CASES = int(os.environ.get("MT_KERNEL_CASES", "20"))
KERNELS = ("mt_layer_norm_s8", "mt_lut_s8", "mt_batch_matmul_s8", "mt_copy_strided_s8")


class LayerNormParams(C.Structure):
    _fields_ = [("eps_term", C.c_int64), ("dim", C.c_int32), ("out_shift", C.c_int32), ("output_zp", C.c_int32)]


class BmmParams(C.Structure):
    _fields_ = [
        (n, C.c_int32) for n in ("a_offset", "b_offset", "output_offset", "multiplier", "shift", "act_min", "act_max")
    ]


class BmmDims(C.Structure):
    _fields_ = [
        (n, C.c_int32)
        for n in ("batches", "m", "k", "n", "a_batch", "a_row", "b_batch", "b_k", "b_n", "y_batch", "y_row")
    ]


class Strided(C.Structure):
    _fields_ = [("shape", C.c_int32 * 4), ("in_stride", C.c_int32 * 4), ("out_stride", C.c_int32 * 4)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> C.CDLL:
    if CC is None:
        pytest.skip("no host C compiler found")
    out = tmp_path_factory.mktemp("mtx") / "libmtx.so"
    sources = [str(RUNTIME / f"{k}.c") for k in KERNELS]
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]
    subprocess.run([CC, *flags, f"-I{RUNTIME}", *sources, "-o", str(out)], check=True)
    return C.CDLL(str(out))


def ptr(a: np.ndarray, offset: int = 0) -> C.c_void_p:
    return C.c_void_p(a.ctypes.data + offset * a.itemsize)


def one_op(kind: str, ins: list[Tensor], out: Tensor, attrs: dict) -> Graph:
    g = Graph(name=kind)
    for t in [*ins, out]:
        g.add_tensor(t)
    g.add_op(Op(kind, kind, [t.name for t in ins], [out.name], attrs))
    g.inputs = [t.name for t in ins if not t.is_const]
    g.outputs = [out.name]
    return g


def act(name: str, shape, rng: np.random.Generator, scale: float | None = None, zp: int | None = None) -> Tensor:
    s = float(rng.uniform(0.005, 0.2)) if scale is None else scale
    z = int(rng.integers(-30, 30)) if zp is None else zp
    return Tensor(name, tuple(shape), "int8", QParams(s, z))


def guarded(size: int, rng: np.random.Generator, guard: int = 16) -> np.ndarray:
    return rng.integers(-128, 128, size=size + 2 * guard, dtype=np.int8)


def check_guarded(buf: np.ndarray, before: np.ndarray, expected: np.ndarray, guard: int = 16) -> None:
    np.testing.assert_array_equal(buf[guard:-guard], expected.reshape(-1))
    np.testing.assert_array_equal(buf[:guard], before[:guard])
    np.testing.assert_array_equal(buf[-guard:], before[-guard:])


def ln_case(rng: np.random.Generator, dim: int | None = None) -> tuple[Graph, np.ndarray]:
    d = int(dim or rng.choice([1, 3, 8, 16, 33, 64, 192, 384]))
    rows = int(rng.integers(1, 6))
    x = act("x", (rows, d), rng)
    gamma = Tensor("gamma", (d,), "float32", data=rng.normal(1.0, 0.4, d).astype(np.float32))
    beta = Tensor("beta", (d,), "float32", data=rng.normal(0.0, 0.5, d).astype(np.float32))
    y = act("y", (rows, d), rng, scale=float(rng.uniform(0.01, 0.08)))
    eps = float(rng.choice([1e-5, 1e-6, 1e-3]))
    g = one_op("layer_norm", [x, gamma, beta], y, {"axis": -1, "epsilon": eps})
    spread = int(rng.integers(0, 128))
    zx = x.quant.zp
    xs = np.clip(rng.integers(-spread, spread + 1, size=(rows, d)) + zx, -128, 127).astype(np.int8)
    return g, xs


@pytest.mark.parametrize("seed", range(N_CASES))
def test_layer_norm(lib, seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    g, x = ln_case(rng)
    op = g.ops[0]
    ref = reference.run(g, [x])[0]
    p = lower(g, op)
    lp = LayerNormParams(p["eps_term"], p["dim"], p["out_shift"], p["output_zp"])
    gq = np.ascontiguousarray(p["gamma_q"], dtype=np.int32)
    bq = np.ascontiguousarray(p["beta_q"], dtype=np.int32)
    out = guarded(ref.size, rng)
    before = out.copy()
    rows = x.shape[0]
    assert lib.mt_layer_norm_s8(C.byref(lp), ptr(gq), ptr(bq), ptr(x), rows, ptr(out, 16)) == 0
    check_guarded(out, before, ref)


def test_layer_norm_vs_float() -> None:
    """The integer LayerNorm is within 1 output LSB of float LayerNorm (then rounded) everywhere."""
    rng = np.random.default_rng(7)
    n_total = n_off = 0
    worst = 0
    for _ in range(150):
        g, x = ln_case(rng)
        xq, yq = g.t("x").quant, g.t("y").quant
        got = reference.run(g, [x])[0].astype(np.int64)
        f = F.layer_norm(
            xq.s * (x.astype(np.float64) - xq.zp), g.t("gamma").data, g.t("beta").data, g.ops[0].attrs["epsilon"]
        )
        want = np.clip(np.round(f / yq.s) + yq.zp, -128, 127)
        diff = np.abs(got - want)
        worst = max(worst, int(diff.max()))
        n_total += diff.size
        n_off += int((diff != 0).sum())
    assert worst <= 1
    assert n_off / n_total < 0.01  # off-by-one only at rounding boundaries


def test_layer_norm_constant_row(lib) -> None:
    """A constant row (zero variance) normalizes to 0: the output is beta."""
    rng = np.random.default_rng(3)
    g, _ = ln_case(rng, dim=16)
    g.ops[0].attrs["epsilon"] = 0.0
    x = np.full(g.t("x").shape, 5, dtype=np.int8)
    ref = reference.run(g, [x])[0]
    yq = g.t("y").quant
    want = np.clip(np.round(g.t("beta").data / yq.s) + yq.zp, -128, 127)
    np.testing.assert_array_equal(ref[0], want)
    p = lower(g, g.ops[0])
    lp = LayerNormParams(p["eps_term"], p["dim"], p["out_shift"], p["output_zp"])
    gq, bq = p["gamma_q"].astype(np.int32), p["beta_q"].astype(np.int32)
    out = np.zeros(ref.size, dtype=np.int8)
    assert lib.mt_layer_norm_s8(C.byref(lp), ptr(gq), ptr(bq), ptr(x), x.shape[0], ptr(out)) == 0
    np.testing.assert_array_equal(out, ref.reshape(-1))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("seed", range(4))
def test_gelu(lib, seed: int, approximate: str) -> None:
    rng = np.random.default_rng(2000 + seed)
    x = act("x", (3, 100), rng)
    y = act("y", (3, 100), rng, scale=float(rng.uniform(0.005, 0.1)))
    g = one_op("gelu", [x], y, {"approximate": approximate})
    xs = np.concatenate([np.arange(-128, 128), rng.integers(-128, 128, 44)]).astype(np.int8).reshape(3, 100)
    ref = reference.run(g, [xs])[0]
    lut = np.ascontiguousarray(lower(g, g.ops[0])["lut"], dtype=np.int8)
    out = guarded(ref.size, rng)
    before = out.copy()
    assert lib.mt_lut_s8(ptr(lut), ptr(xs), ptr(out, 16), ref.size) == 0
    check_guarded(out, before, ref)
    # the table is the float function rounded: exact to half an LSB (before clamping)
    f = F.gelu(x.quant.s * (xs.astype(np.float64) - x.quant.zp), approximate)
    want = np.clip(f / y.quant.s + y.quant.zp, -128, 127)
    assert np.abs(ref.astype(np.float64) - want).max() <= 0.5 + 1e-9


@pytest.mark.parametrize("seed", range(N_CASES))
def test_batch_matmul(lib, seed: int) -> None:
    rng = np.random.default_rng(3000 + seed)
    batch = tuple(int(v) for v in rng.integers(1, 4, size=int(rng.integers(1, 3))))
    m, k, n = (int(v) for v in rng.integers(1, 24, size=3))
    tb = bool(rng.integers(0, 2))
    a = act("a", (*batch, m, k), rng)
    b = act("b", (*batch, n, k) if tb else (*batch, k, n), rng)
    y = act("y", (*batch, m, n), rng, scale=float(a.quant.s * b.quant.s * np.sqrt(k) * rng.uniform(2, 20)))
    g = one_op("batch_matmul", [a, b], y, {"transpose_b": tb})
    xa = rng.integers(-128, 128, size=a.shape, dtype=np.int8)
    xb = rng.integers(-128, 128, size=b.shape, dtype=np.int8)
    ref = reference.run(g, [xa, xb])[0]
    p = lower(g, g.ops[0])
    # A rows and Y rows live inside wider rows (strides larger than tight)
    pad_a, pad_y = int(rng.integers(0, 5)), int(rng.integers(0, 5))
    bt = p["batches"]
    abuf = rng.integers(-128, 128, size=(bt, m, k + pad_a), dtype=np.int8)
    abuf[:, :, :k] = xa.reshape(bt, m, k)
    ybuf = rng.integers(-128, 128, size=(bt, m, n + pad_y), dtype=np.int8)
    ybefore = ybuf.copy()
    bbuf = np.ascontiguousarray(xb.reshape(bt, *b.shape[-2:]))
    dims = BmmDims(
        bt,
        m,
        k,
        n,
        m * (k + pad_a),
        k + pad_a,
        bbuf[0].size,
        1 if tb else n,
        k if tb else 1,
        m * (n + pad_y),
        n + pad_y,
    )
    bp = BmmParams(
        p["a_offset"], p["b_offset"], p["output_offset"], p["multiplier"], p["shift"], p["act_min"], p["act_max"]
    )
    assert lib.mt_batch_matmul_s8(C.byref(bp), C.byref(dims), ptr(abuf), ptr(bbuf), ptr(ybuf)) == 0
    np.testing.assert_array_equal(ybuf[:, :, :n], ref.reshape(bt, m, n))
    np.testing.assert_array_equal(ybuf[:, :, n:], ybefore[:, :, n:])


def strides_of(shape: tuple[int, ...]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return list(reversed(out))


@pytest.mark.parametrize("seed", range(N_CASES))
def test_transpose_and_slice(lib, seed: int) -> None:
    rng = np.random.default_rng(4000 + seed)
    rank = int(rng.integers(2, 5))
    shape = tuple(int(v) for v in rng.integers(1, 7, size=rank))
    x = act("x", shape, rng)
    if seed % 2 == 0:
        perm = tuple(int(v) for v in rng.permutation(rank))
        y = Tensor("y", tuple(shape[i] for i in perm), "int8", x.quant)
        g = one_op("transpose", [x], y, {"perm": perm})
        xs = rng.integers(-128, 128, size=shape, dtype=np.int8)
        ref = reference.run(g, [xs])[0]
        st = strides_of(shape)
        in_st, out_shape, base = [st[i] for i in perm], list(y.shape), 0
    else:
        begin = [int(rng.integers(0, d)) for d in shape]
        size = [int(rng.integers(1, d - b + 1)) for d, b in zip(shape, begin, strict=True)]
        y = Tensor("y", tuple(size), "int8", x.quant)
        g = one_op("slice", [x], y, {"begin": begin, "size": size})
        xs = rng.integers(-128, 128, size=shape, dtype=np.int8)
        ref = reference.run(g, [xs])[0]
        in_st, out_shape = strides_of(shape), size
        base = int(np.dot(begin, in_st))
    pad = 4 - rank
    s = Strided(
        (C.c_int32 * 4)(*([1] * pad + out_shape)),
        (C.c_int32 * 4)(*([0] * pad + in_st)),
        (C.c_int32 * 4)(*([0] * pad + strides_of(tuple(out_shape)))),
    )
    out = guarded(ref.size, rng)
    before = out.copy()
    xs = np.ascontiguousarray(xs)
    assert lib.mt_copy_strided_s8(C.byref(s), ptr(xs, base), ptr(out, 16)) == 0
    check_guarded(out, before, ref)
