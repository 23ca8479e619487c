"""runtime_c kernels for uint8 model edges and int16 activations vs the golden model.

Like tests/test_kernels.py: a one-op graph, `compiler.reference.run` for the expected bytes,
`compiler.lower.lower` for the integer parameters, the C kernel called through ctypes on a
host build, with guard bytes around the output. `test_sanitized_run` reruns this file
against an ASan+UBSan build. Skipped when no C compiler exists.
"""

from __future__ import annotations

import ctypes as C
import os
import subprocess
import sys

import numpy as np
import pytest

from compiler.ir import Graph, Op, QParams, Tensor
from compiler.lower import lower
from compiler.reference import run
from tests.test_kernels import CC, ROOT, build_library

N_CASES = int(os.environ.get("MT_KERNEL_CASES", "12"))


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> C.CDLL:
    path = os.environ.get("MT_KERNEL_LIB")
    if not path:
        if CC is None:
            pytest.skip("no host C compiler (cc/gcc/clang) found: kernel tests need one")
        path = str(build_library(tmp_path_factory.mktemp("mtlib") / "libmt.so"))
    return C.CDLL(path)


class RequantParams(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("input_zp", "output_zp", "multiplier", "shift")]


_RANGE = {"int8": (-128, 128), "uint8": (0, 256), "int16": (-32768, 32768)}
_ZP = {"int8": (-128, 128), "uint8": (0, 256), "int16": (0, 1)}


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


@pytest.mark.skipif("MT_KERNEL_LIB" in os.environ, reason="already inside the sanitized run")
def test_sanitized_run(tmp_path) -> None:
    """Reruns this file against an ASan + UBSan build (UB aborts)."""
    if CC is None:
        pytest.skip("no host C compiler (cc/gcc/clang) found: kernel tests need one")
    so = build_library(tmp_path / "libmt_asan.so", sanitize=True)
    libasan = subprocess.run([CC, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip(f"{CC} has no libasan.so to preload")
    env = dict(
        os.environ,
        MT_KERNEL_LIB=str(so),
        MT_KERNEL_CASES="3",
        LD_PRELOAD=libasan,
        ASAN_OPTIONS="detect_leaks=0",
        UBSAN_OPTIONS="print_stacktrace=1",
    )
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "runtime error" not in r.stderr and "AddressSanitizer" not in r.stderr, r.stderr[-4000:]
