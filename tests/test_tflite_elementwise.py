"""SQUARED_DIFFERENCE, PRELU, ELU, RSQRT, L2_NORMALIZATION (and the refused NEG, EXP) against
TFLite-Micro, byte for byte.

Like tests/test_tflite_support.py: a hand-built IR graph is written with
`compiler.frontend.tflite_writer`, re-imported (so `compiler/core/ops_support.py` checks it as `plan`,
`compile` and `run` do), and `compiler.golden.reference` is compared with the `tflite-micro`
interpreter. Sweeps: shapes and 4-D broadcasting, zero points at the ends of the range, scales
that make the requantization multipliers smaller and larger than one, outputs that saturate.
The int8 table ops (ELU, RSQRT) are compared on all 256 input values. One small graph of these
ops runs in QEMU (`test_elementwise_graph_in_qemu`).
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler.core.ir import Graph
from compiler.core.ops_support import UnsupportedSchemeError
from compiler.errors import ModelError
from compiler.frontend.tflite import parse_tflite
from compiler.frontend.tflite_writer import write_tflite
from compiler.golden import reference
from compiler.golden.tflm import TflmModel, tflm_available
from tests.test_tflite_support import G, oracle, qemu_exact

needs_tflm = pytest.mark.skipif(not tflm_available(), reason="tflite-micro package not installed")


def exact(g: Graph, inputs: list[list[np.ndarray]]) -> Graph:
    """Like `oracle`, on the given input sets."""
    buf = write_tflite(g)
    imported = parse_tflite(buf, name=g.name)
    model = TflmModel(buf)
    for k, xs in enumerate(inputs):
        want = model.invoke(*xs, n_outputs=len(imported.outputs))
        got = reference.run(imported, xs)
        for w, r in zip(want, got, strict=True):
            w = np.asarray(w).reshape(r.shape)
            assert w.dtype == r.dtype
            bad = np.flatnonzero(w != r)
            assert bad.size == 0, f"{g.name} set {k}: {bad.size} differ, first {bad[0]}: tflm {w.flat[bad[0]]} " \
                                  f"ref {r.flat[bad[0]]}"
    return imported


def _shape_out(sa, sb) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(tuple(sa), tuple(sb)))


# -- SQUARED_DIFFERENCE -------------------------------------------------------------------------

SQD_SHAPES = [((1, 4, 5, 6), (1, 4, 5, 6)), ((1, 4, 5, 6), (1, 1, 1, 6)), ((1, 3, 1, 5), (1, 1, 4, 1)),
              ((2, 9), (1, 9)), ((1, 4, 5, 6), (6,)), ((1, 1, 1, 6), (1, 4, 5, 6)), ((7,), (7,))]
# (s1, s2, s_out, z1, z2, z_out): input scales as multiples of the dtype's base scale, the output's
# relative to the one whose range holds the largest square; int16 zero points are 0 (TFLM's rule)
SQD_QUANT = [
    (1.0, 1.0, 1.0, 0, 0, -128),
    (1.0, 0.6, 0.3, -128, 127, -128),  # zero points at both ends
    (2.0, 0.5, 0.05, 5, -3, 100),  # saturating
    (0.3, 3.0, 4.0, 127, -128, -20),
    (1.0, 1.0, 1e-7, 0, 0, 127),  # output multiplier > 1 (all others < 1), saturating
]


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize("sa,sb", SQD_SHAPES)
def test_squared_difference(dtype: str, sa, sb) -> None:
    base = 0.05 if dtype == "int8" else 3e-4
    for k, (m1, m2, mo, z1, z2, zo) in enumerate(SQD_QUANT):
        if dtype == "int16":
            z1 = z2 = zo = 0
        s_out = mo * base * base * (256 if dtype == "int8" else 65536)
        b = G(f"sqd_{dtype}", seed=k)
        x = b.input(sa, dtype, m1 * base, z1)
        y = b.input(sb, dtype, m2 * base, z2)
        o = b.t(_shape_out(sa, sb), dtype, s_out, zo)
        b.op("squared_difference", [x, y], o)
        oracle(b.output(o), n=3, seed=k)


@needs_tflm
def test_squared_difference_constant_operand() -> None:
    rng = np.random.default_rng(3)
    for dtype, base, z in (("int8", 0.05, -9), ("int16", 3e-4, 0)):
        b = G(f"sqd_const_{dtype}")
        x = b.input((1, 3, 4, 5), dtype, base, z)
        info = np.iinfo(dtype)
        c = b.t((1, 1, 1, 5), dtype, base * 1.5, z, rng.integers(info.min, info.max + 1, (1, 1, 1, 5)).astype(dtype))
        o = b.t((1, 3, 4, 5), dtype, base * base * 60, z)
        b.op("squared_difference", [c, x], o)
        oracle(b.output(o), n=3)


# -- PRELU -------------------------------------------------------------------------------------

PRELU_SHAPES = [((1, 4, 5, 6), (1, 1, 6)), ((1, 4, 5, 6), (6,)), ((1, 4, 5, 6), (1, 4, 5, 6)), ((1, 4, 5, 6), (1,)),
                ((3, 8), (8,)), ((1, 4, 5, 6), (4, 1, 6))]
# (s_x, s_alpha, s_y, z_x, z_alpha, z_y): multipliers s_x/s_y and s_x s_a/s_y below and above one
PRELU_QUANT = [(0.05, 0.01, 0.05, 0, 0, 0), (0.05, 0.004, 0.02, -128, 127, 127), (0.02, 0.02, 0.1, 127, -128, -128),
               (0.1, 0.05, 0.003, 30, -7, 5), (0.01, 0.5, 0.001, -3, 60, -100)]


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize("shape,ashape", PRELU_SHAPES)
def test_prelu(dtype: str, shape, ashape) -> None:
    rng = np.random.default_rng(len(shape) * 7 + len(ashape))
    for k, (s_x, s_a, s_y, z_x, z_a, z_y) in enumerate(PRELU_QUANT):
        if dtype == "int16":
            s_x, s_y, z_x, z_y = s_x / 256, s_y / 256, 0, 0
        b = G(f"prelu_{dtype}", seed=k)
        x = b.input(shape, dtype, s_x, z_x)
        if k == 3:  # alpha a graph input (TFLM reads any int8 tensor)
            al = b.input(ashape, "int8", s_a, z_a)
        else:
            al = b.t(ashape, "int8", s_a, z_a, rng.integers(-128, 128, ashape).astype(np.int8))
        o = b.t(shape, dtype, s_y, z_y)
        b.op("prelu", [x, al], o)
        oracle(b.output(o), n=3, seed=k)


# -- ELU, RSQRT: every input value ---------------------------------------------------------------

ELU_QUANT = [(0.05, 0.05, 0, 0), (0.1, 0.02, -128, 127), (0.02, 0.1, 127, -128), (0.2, 0.008, 30, 60),
             (0.0039, 1 / 128, -5, -100), (1.0, 0.03, 0, -1), (0.003, 0.5, 10, 3)]


@needs_tflm
@pytest.mark.parametrize("s_x,s_y,z_x,z_y", ELU_QUANT)
def test_elu(s_x: float, s_y: float, z_x: int, z_y: int) -> None:
    b = G("elu")
    x = b.input((2, 128), "int8", s_x, z_x)
    o = b.t((2, 128), "int8", s_y, z_y)
    b.op("elu", [x], o)
    every = np.arange(-128, 128, dtype=np.int8).reshape(2, 128)
    exact(b.output(o), [[every], [every[::-1].copy()]])


# output multiplier 1 / (sqrt(s_x) s_y): > 1 but for (4.0, 1.0); int16 (1e-6, 1e-4): shift above 20
RSQRT_QUANT_8 = [(0.05, 0.05, -128, -128), (0.01, 0.1, -128, 0), (0.1, 0.002, 0, -128), (0.5, 0.5, 100, 5),
                 (0.002, 0.9, -60, 127), (4.0, 1 / 128, 127, -3), (4.0, 1.0, -128, 0)]
# (1.508e-6, 3.7535664e-4): the output multiplier must be derived in double (float32 differs on 14 inputs)
RSQRT_QUANT_16 = [(3e-4, 3e-4), (1e-5, 1e-3), (1e-2, 1e-4), (0.25, 3e-5), (1e-6, 1e-4),
                  (1.5080001817200548e-06, 0.00037535663869088417)]


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_rsqrt(dtype: str) -> None:
    """Every valid input (q >= z_x, int8; 0..32767, int16); an input below the zero point fails
    TFLM's invoke and the reference alike."""
    cases = RSQRT_QUANT_8 if dtype == "int8" else [(a, c, 0, 0) for a, c in RSQRT_QUANT_16]
    for s_x, s_y, z_x, z_y in cases:
        b = G(f"rsqrt_{dtype}")
        n = 256 if dtype == "int8" else 32768
        x = b.input((1, n), dtype, s_x, z_x)
        o = b.t((1, n), dtype, s_y, z_y)
        b.op("rsqrt", [x], o)
        g = b.output(o)
        if dtype == "int8":
            valid = np.arange(z_x, 128)
            sets = [np.resize(valid, n).astype(np.int8).reshape(1, n)]
        else:
            sets = [np.arange(n, dtype=np.int16).reshape(1, n)]
        imported = exact(g, [[s] for s in sets])
        if z_x > -128 or dtype == "int16":
            bad = sets[0].copy()
            bad[0, 3] = z_x - 1
            with pytest.raises(RuntimeError):
                TflmModel(write_tflite(g)).invoke(bad)
            with pytest.raises(ModelError, match="below the zero point"):
                reference.run(imported, [bad])


# -- L2_NORMALIZATION ------------------------------------------------------------------------------


@needs_tflm
@pytest.mark.parametrize("shape", [(1, 4, 5, 16), (3, 7), (1, 1, 1, 1), (2, 300), (1, 6, 2), (1, 2, 2, 2048)])
@pytest.mark.parametrize("z_x", (0, -128, 127, 17))
def test_l2_norm(shape, z_x: int) -> None:
    b = G("l2")
    x = b.input(shape, "int8", 0.05, z_x)
    o = b.t(shape, "int8", 1 / 128, 0)
    b.op("l2_norm", [x], o)
    g = b.output(o)
    rng = np.random.default_rng(abs(z_x) + len(shape))
    rows = int(np.prod(shape[:-1]))
    sets = [rng.integers(-128, 128, shape).astype(np.int8)]
    corner = rng.integers(-128, 128, (rows, shape[-1]))
    corner[0] = z_x  # a zero row (sum 0: TFLM's x <= 1 case)
    if rows > 1:
        corner[1] = z_x
        corner[1, 0] = z_x + (1 if z_x < 127 else -1)  # sum 1
    if rows > 2:
        corner[2] = -128 if z_x > 0 else 127  # the largest row sum
    sets.append(corner.astype(np.int8).reshape(shape))
    sets.append(np.clip(z_x + rng.integers(-2, 3, shape), -128, 127).astype(np.int8))  # tiny norms
    exact(g, [[s] for s in sets])


# -- refusals --------------------------------------------------------------------------------------


def _retag(buf: bytes, old: int, new: int) -> bytes:
    """`buf` with operator code `old` replaced by builtin `new` (both code fields, in place)."""
    import tflite

    out = bytearray(buf)
    model = tflite.Model.GetRootAsModel(out, 0)
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        if code.BuiltinCode() != old:
            continue
        tab = code._tab
        for field, size in ((4, 1), (10, 4)):  # deprecated_builtin_code int8, builtin_code int32
            o = tab.Offset(field)
            assert o, "the writer stores both code fields"
            out[tab.Pos + o: tab.Pos + o + size] = int(new).to_bytes(size, "little", signed=True)
    return bytes(out)


def _one(kind: str, dtype: str, s_x=0.05, s_y=0.05, z_x=0, z_y=0, shape=(1, 8)) -> Graph:
    b = G(f"{kind}_{dtype}")
    x = b.input(shape, dtype, s_x, z_x)
    o = b.t(shape, dtype, s_y, z_y)
    b.op(kind, [x], o)
    return b.output(o)


def test_neg_exp_refused() -> None:
    """NEG and EXP: TFLite-Micro computes them in float32 only, so a quantized one has no oracle
    and is refused with one line naming the op, node and tensor (and TFLM fails on it too)."""
    from tflite.BuiltinOperator import BuiltinOperator as BO

    for code, name in ((BO.NEG, "NEG"), (BO.EXP, "EXP")):
        for dtype in ("int8", "int16"):
            buf = _retag(write_tflite(_one("abs", dtype)), BO.ABS, code)
            with pytest.raises(UnsupportedSchemeError) as e:
                parse_tflite(buf)
            msg = str(e.value)
            assert "\n" not in msg and f"node op0_{name.lower()} ({name}): input 0 't0' is {dtype}" in msg
            assert "float32 only" in msg
            if tflm_available():
                with pytest.raises(RuntimeError):
                    TflmModel(buf).invoke(np.zeros((1, 8), dtype))


def test_unsupported_forms_refused() -> None:
    """The int16 forms TFLM lacks (ELU, L2_NORMALIZATION), an L2 output scale other than 1/128,
    int16 zero points and shapes that do not broadcast are refused at import, one line each."""
    for kind, name in (("elu", "ELU"), ("l2_norm", "L2_NORMALIZATION")):
        buf = write_tflite(_one(kind, "int16", 3e-4, 1 / 128))
        with pytest.raises(UnsupportedSchemeError, match=rf"node op0_{name.lower()} \({name}\): input 0 't0' is int16"):
            parse_tflite(buf)
        if tflm_available():  # TFLM has no int16 form either: no oracle
            with pytest.raises(RuntimeError):
                TflmModel(buf).invoke(np.ones((1, 8), np.int16))
    with pytest.raises(ModelError, match=r"\(L2_NORMALIZATION\): output 0 't1' has scale 0.05; supported: 1/128"):
        parse_tflite(write_tflite(_one("l2_norm", "int8", 0.05, 0.05)))
    with pytest.raises(UnsupportedSchemeError, match=r"\(RSQRT\): input 0 't0' is int16 per-tensor zero point 3"):
        parse_tflite(write_tflite(_one("rsqrt", "int16", 3e-4, 3e-4, 3, 0)))
    b = G("sqd_bad")
    x = b.input((1, 4, 5), "int8", 0.05, 0)
    y = b.input((1, 3, 5), "int8", 0.05, 0)
    o = b.t((1, 4, 5), "int8", 0.05, 0)
    b.op("squared_difference", [x, y], o)
    with pytest.raises(ModelError, match=r"\(SQUARED_DIFFERENCE\): inputs \[1, 4, 5\] and \[1, 3, 5\] do not"):
        parse_tflite(write_tflite(b.output(o)))
    b = G("prelu_big_alpha")
    x = b.input((1, 5), "int8", 0.05, 0)
    al = b.t((4, 5), "int8", 0.05, 0, np.ones((4, 5), np.int8))
    o = b.t((4, 5), "int8", 0.05, 0)
    b.op("prelu", [x, al], o)
    with pytest.raises(ModelError, match=r"\(PRELU\): .*alpha must broadcast to the input's shape"):
        parse_tflite(write_tflite(b.output(o)))


# -- one small graph of these ops in the emulator ---------------------------------------------------


def elementwise_graph(seed: int = 0) -> Graph:
    """int8: SQUARED_DIFFERENCE (broadcast) -> RSQRT (its input is never below the zero point)
    -> PRELU (constant per-channel alpha) -> ELU -> L2_NORMALIZATION; and int16: QUANTIZE ->
    SQUARED_DIFFERENCE -> RSQRT -> PRELU -> QUANTIZE back to int8."""
    rng = np.random.default_rng(seed)
    b = G("elementwise", seed)
    x = b.input((1, 4, 5, 8), "int8", 0.05, -3)
    m = b.input((1, 1, 1, 8), "int8", 0.04, 6)
    d = b.t((1, 4, 5, 8), "int8", 0.02, -128)
    b.op("squared_difference", [x, m], d)
    r = b.t((1, 4, 5, 8), "int8", 0.03, -100)
    b.op("rsqrt", [d], r)
    c = b.t((1, 4, 5, 8), "int8", 0.03, 10)
    b.op("squared_difference", [r, x], c)
    al = b.t((1, 1, 8), "int8", 0.01, -4, rng.integers(-128, 128, (1, 1, 8)).astype(np.int8))
    p = b.t((1, 4, 5, 8), "int8", 0.05, 20)
    b.op("prelu", [c, al], p)
    e = b.t((1, 4, 5, 8), "int8", 0.04, -30)
    b.op("elu", [p], e)
    n = b.t((1, 4, 5, 8), "int8", 1 / 128, 0)
    b.op("l2_norm", [e], n)
    w = b.t((1, 4, 5, 8), "int16", 4e-4, 0)
    b.op("quantize", [x], w)
    d16 = b.t((1, 4, 5, 8), "int16", 2e-4, 0)
    b.op("squared_difference", [w, b.t((1, 1, 5, 1), "int16", 3e-4, 0,
                                        rng.integers(-9000, 9000, (1, 1, 5, 1)).astype(np.int16))], d16)
    r16 = b.t((1, 4, 5, 8), "int16", 3e-3, 0)
    b.op("rsqrt", [d16], r16)
    a16 = b.t((8,), "int8", 0.02, 3, rng.integers(-128, 128, (8,)).astype(np.int8))
    p16 = b.t((1, 4, 5, 8), "int16", 2e-3, 0)
    b.op("prelu", [r16, a16], p16)
    y16 = b.t((1, 4, 5, 8), "int8", 0.5, -128)
    b.op("quantize", [p16], y16)
    return b.output(n, y16)


@needs_tflm
def test_elementwise_graph_oracle() -> None:
    oracle(elementwise_graph(), n=6)


def test_elementwise_graph_in_qemu(tmp_path) -> None:
    """The graph above in one firmware on stm32f405 (QEMU): bit-exact with the reference, which
    is bit-exact with TFLM on the same inputs."""
    report = qemu_exact(write_tflite(elementwise_graph()), tmp_path)
    assert report["bit_exact"]
