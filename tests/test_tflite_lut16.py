"""int16 LOGISTIC, TANH and SOFTMAX and int8 SVDF against TFLite-Micro, byte for byte.

Like tests/test_tflite_support.py: a hand-written IR graph, written with
`compiler.frontend.tflite_writer`, imported through the op declarations
(`compiler/core/ops_support.py`) and run in `compiler.golden.reference` and the `tflite-micro`
interpreter. LOGISTIC and TANH are checked on every int16 input value (one tensor of all
65,536), over power-of-two and other input scales; SOFTMAX over row lengths, scales and
betas; SVDF over ranks, memory sizes, zero points and several invokes (its state persists).
The C kernels are checked against the same reference in tests/test_kernels_lut16.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler.core import lut16
from compiler.core.ir import Graph
from compiler.core.ops_support import UnsupportedSchemeError
from compiler.errors import ModelError
from compiler.frontend.tflite import parse_tflite
from compiler.frontend.tflite_writer import write_tflite
from tests.test_tflite_support import G, needs_tflm, oracle

ALL16 = np.arange(-32768, 32768, dtype=np.int64)


def _every_int16(g: Graph) -> None:
    """Run the one-input graph g on all 65,536 int16 values (input shape (1, 256, 256))."""
    from compiler.golden import reference
    from compiler.golden.tflm import TflmModel

    buf = write_tflite(g)
    imported = parse_tflite(buf, name=g.name)
    x = ALL16.astype(np.int16).reshape(imported.t(imported.inputs[0]).shape)
    want = np.asarray(TflmModel(buf).invoke(x)[0]).reshape(-1)
    got = reference.run(imported, [x])[0].reshape(-1)
    bad = np.flatnonzero(want != got)
    assert bad.size == 0, (
        f"{g.name}: {bad.size} of 65536 differ, first x={ALL16[bad[0]]}: tflm {want[bad[0]]} ref {got[bad[0]]}"
    )


SIGMOID_SCALES = [2.0**-12, 2.0**-11, 2.0**-10, 2.0**-15, 1e-4, 3.0518e-5, 4.7e-4, 1.7e-3, 0.01, 0.37, 2.5, 2.0**-20]


@needs_tflm
@pytest.mark.parametrize("kind", ["logistic", "tanh"])
@pytest.mark.parametrize("scale", SIGMOID_SCALES)
def test_logistic_tanh_16(kind: str, scale: float) -> None:
    """Every int16 input, power-of-two scales (2^-12 and, for TANH, 2^-11: the kernel's own
    multiplier 3 << shift) and others (multiplier and left shift from Prepare)."""
    b = G(f"{kind}16")
    x = b.input((1, 256, 256), "int16", scale, 0)
    y = b.t((1, 256, 256), "int16", 2.0**-15, 0)
    b.op(kind, [x], y)
    _every_int16(b.output(y))
    m, _ = lut16.sigmoid16_params(kind, scale)
    pot = scale in (2.0**-12,) or (kind == "tanh" and scale == 2.0**-11)
    assert (m == 0) == pot


@needs_tflm
@pytest.mark.parametrize(
    "shape,scale,beta",
    [((1, 10), 3e-4, 1.0), ((2, 3, 17), 1e-3, 1.0), ((1, 4, 4, 8), 1.5e-4, 0.5), ((3, 1), 2e-3, 1.0),
     ((1, 64), 3.05e-5, 2.0), ((4, 100), 6e-3, 1.0), ((1, 7), 0.02, 0.25), ((2, 5), 1e-6, 1.0)],
)
def test_softmax_16(shape, scale: float, beta: float) -> None:
    """int16 SOFTMAX (input zero point 0, output 1/32768): rows of 1 to 100, scales putting a
    row's span anywhere from far below to far beyond the exp LUT's [-10, 0]."""
    b = G("softmax16")
    x = b.input(shape, "int16", scale, 0)
    y = b.t(shape, "int16", 1 / 32768, 0)
    b.op("softmax", [x], y, beta=beta)
    g = oracle(b.output(y), n=4, seed=len(shape))
    # rows spanning 0, 50 and 2000 steps (the middle of the exp LUT, not only its ends)
    rng = np.random.default_rng(len(shape) + 1)
    sets = [[(rng.integers(-span, span + 1, shape) + rng.integers(-30000, 30000 - span)).astype(np.int16)]
            for span in (0, 50, 2000)]
    _check_first_invokes(g, write_tflite(g), sets)


def lut16_graph() -> Graph:
    """int16 TANH (power-of-two input 2^-12) -> LOGISTIC (input 2^-15: multiplier path) and
    SOFTMAX (beta 1); LOGISTIC of the input (power of two); int8 in and out via QUANTIZE; and
    an int8 SVDF on a second input, requantized to int16, into TANH; SOFTMAX int8 -> int16; an
    SVDF with int8 time weights and state (zero point -3) on the second input."""
    b = G("lut16")
    x8 = b.input((1, 6, 24), "int8", 0.06, 3)
    x = b.t((1, 6, 24), "int16", 2.0**-12, 0)
    b.op("quantize", [x8], x)
    t = b.t((1, 6, 24), "int16", 2.0**-15, 0)
    b.op("tanh", [x], t)
    lg = b.t((1, 6, 24), "int16", 2.0**-15, 0)
    b.op("logistic", [t], lg)
    sm = b.t((1, 6, 24), "int16", 1 / 32768, 0)
    b.op("softmax", [t], sm, beta=1.0)
    l2 = b.t((1, 6, 24), "int16", 2.0**-15, 0)
    b.op("logistic", [x], l2)
    y = b.t((1, 6, 24), "int8", 1 / 256, -128)
    b.op("quantize", [l2], y)
    # a second input: int8 SVDF (rank 2, memory 4) -> int16 -> TANH (a non-power-of-two scale)
    rng = np.random.default_rng(5)
    xs = b.input((1, 20), "int8", 0.03, -3)
    wf = b.t((12, 20), "int8", 0.01, 0, rng.integers(-127, 128, (12, 20)).astype(np.int8))
    wt = b.t((12, 4), "int16", 3e-4, 0, rng.integers(-32767, 32768, (12, 4)).astype(np.int16))
    bias = b.t((6,), "int32", float(np.float32(np.float32(0.004) * np.float32(3e-4))), 0,
               rng.integers(-(1 << 18), 1 << 18, 6).astype(np.int32))
    sv = b.t((1, 6), "int8", 0.05, 4)
    b.op("svdf", [xs, wf, wt, bias], sv, rank=2, activation="none", state_scale=0.004, state_zp=0)
    sv16 = b.t((1, 6), "int16", 2.5e-4, 0)
    b.op("quantize", [sv], sv16)
    th = b.t((1, 6), "int16", 2.0**-15, 0)
    b.op("tanh", [sv16], th)
    s8 = b.t((1, 6, 24), "int16", 1 / 65536, -32768)  # SOFTMAX int8 -> int16
    b.op("softmax", [x8], s8, beta=1.0)
    wt8 = b.t((5, 3), "int8", 0.002, 0, rng.integers(-127, 128, (5, 3)).astype(np.int8))  # SVDF, int8 state
    wf8 = b.t((5, 20), "int8", 0.01, 0, rng.integers(-127, 128, (5, 20)).astype(np.int8))
    bias8 = b.t((5,), "int32", float(np.float32(np.float32(1.0) * np.float32(0.002))), 0,
                rng.integers(-1000, 1000, 5).astype(np.int32))
    sv8 = b.t((1, 5), "int8", 0.3, -2)
    b.op("svdf", [xs, wf8, wt8, bias8], sv8, rank=1, activation="relu", state_scale=1.0, state_zp=-3)
    return b.output(lg, sm, y, th, s8, sv8)


@needs_tflm
@pytest.mark.parametrize("shape,scale,zp,beta", [((1, 10), 0.05, 3, 1.0), ((2, 3, 17), 0.1, -128, 1.0),
                                                 ((1, 4, 4, 8), 0.02, 0, 0.5), ((3, 1), 0.2, 10, 1.0),
                                                 ((1, 100), 0.3, -5, 2.0)])
def test_softmax_8_16(shape, scale: float, zp: int, beta: float) -> None:
    """SOFTMAX int8 -> int16 (output 1/65536, zero point -32768): the int8 arithmetic, 16 bits."""
    b = G("softmax8_16")
    x = b.input(shape, "int8", scale, zp)
    y = b.t(shape, "int16", 1 / 65536, -32768)
    b.op("softmax", [x], y, beta=beta)
    oracle(b.output(y), n=4, seed=len(shape))
    b = G("softmax8_16_bad")  # any other int16 output quantization is refused (TFLM refuses it)
    x = b.input(shape, "int8", scale, zp)
    y = b.t(shape, "int16", 1 / 32768, 0)
    b.op("softmax", [x], y, beta=beta)
    with pytest.raises(ModelError, match="1/65536"):
        parse_tflite(write_tflite(b.output(y)), name="m")


def first_invokes(buf: bytes, input_sets: list[list[np.ndarray]], n_outputs: int) -> list[list[np.ndarray]]:
    """TFLM's outputs for each input set, the interpreter reset before each (SVDF's state 0)."""
    from compiler.golden.tflm import TflmModel

    model = TflmModel(buf)
    outs = []
    for xs in input_sets:
        model.interp.reset()
        outs.append(model.invoke(*xs, n_outputs=n_outputs))
    return outs


def _check_first_invokes(g: Graph, buf: bytes, input_sets: list[list[np.ndarray]]) -> None:
    from compiler.golden import reference

    for k, (xs, want) in enumerate(zip(input_sets, first_invokes(buf, input_sets, len(g.outputs)), strict=True)):
        for name, w, r in zip(g.outputs, want, reference.run(g, xs), strict=True):
            w = np.asarray(w).reshape(r.shape)
            assert w.dtype == r.dtype and np.array_equal(w, r), f"set {k}, output {name}: tflm {w} ref {r}"


@needs_tflm
def test_lut16_graph_oracle() -> None:
    from tests.test_tflite_support import random_input

    buf = write_tflite(lut16_graph())
    g = parse_tflite(buf, name="lut16")
    rng = np.random.default_rng(1)
    _check_first_invokes(g, buf, [[random_input(g.t(n), rng) for n in g.inputs] for _ in range(4)])


def test_lut16_graph_in_qemu(tmp_path) -> None:
    """The graph above as firmware in QEMU (three invokes in one run: the SVDF state is zeroed
    at each): bit-exact with the reference, and the reference with TFLM's first invoke on the
    same inputs."""
    from compiler.golden.tflm import tflm_available
    from compiler.pipeline import CompileOptions, make_input_sets, run_model
    from tests.conftest import have_firmware_tools

    why = have_firmware_tools()
    if why is not None:
        pytest.skip(why)
    if not tflm_available():
        pytest.skip("tflite-micro package not installed")
    buf = write_tflite(lut16_graph())
    path = tmp_path / "lut16.tflite"
    path.write_bytes(buf)
    report = run_model(path, tmp_path / "out", CompileOptions(board="stm32f405"), n_random=3)
    assert report["bit_exact"], report
    assert len(report["model_outputs"]) == 6
    g = parse_tflite(buf, name="lut16")
    _check_first_invokes(g, buf, [list(xs) for xs in make_input_sets(g, None, 3)])


def _refused(kind: str, s_x: float, z_x: int, s_y: float, z_y: int, cls: type = ModelError, **attrs) -> str:
    b = G(f"{kind}_refused")
    x = b.input((1, 8), "int16", s_x, z_x)
    y = b.t((1, 8), "int16", s_y, z_y)
    b.op(kind, [x], y, **attrs)
    with pytest.raises(cls) as e:
        parse_tflite(write_tflite(b.output(y)), name="m")
    msg = str(e.value)
    assert "\n" not in msg and f"({kind}" in msg.lower()
    return msg


@needs_tflm
def test_int16_refusals_match_tflm() -> None:
    """What TFLM's int16 Prepare refuses is refused at import with one line (and TFLM does refuse
    it: the interpreter fails to allocate or invoke)."""
    from compiler.golden.tflm import TflmModel

    cases = [("logistic", 1e-3, 0, 1.5 / 32768, 0, ModelError, {}),  # output scale not 2^-15
             ("tanh", 1e-3, 0, 2.0**-14, 0, ModelError, {}),
             ("softmax", 1e-3, 0, 1 / 65536, 0, ModelError, {"beta": 1.0}),  # output scale not 1/32768
             ("logistic", 1e-3, 5, 2.0**-15, 0, UnsupportedSchemeError, {}),  # zero points (TFLM: 0)
             ("softmax", 1e-3, 0, 1 / 32768, 3, UnsupportedSchemeError, {"beta": 1.0})]
    for kind, s_x, z_x, s_y, z_y, cls, attrs in cases:
        _refused(kind, s_x, z_x, s_y, z_y, cls, **attrs)
        b = G("t")
        x = b.input((1, 8), "int16", s_x, z_x)
        y = b.t((1, 8), "int16", s_y, z_y)
        b.op(kind, [x], y, **attrs)
        with pytest.raises(Exception):  # noqa: B017 (TFLM raises RuntimeError-like errors)
            TflmModel(write_tflite(b.output(y))).invoke(np.zeros((1, 8), np.int16))
    # beyond TFLM's DCHECK: a multiplier above 32767 would overflow its int32 product
    msg = _refused("logistic", 3.0, 0, 2.0**-15, 0)
    assert "overflows" in msg


# -- SVDF ------------------------------------------------------------------------------------


def svdf_graph(batches: int, n_in: int, units: int, rank: int, memory: int, z_x: int, z_st: int, z_y: int,
               act: str = "none", seed: int = 0, s_st: float = 0.004, dtype: str = "int16") -> Graph:
    """One int8 SVDF (`dtype` time weights and state) with random weights and bias."""
    rng = np.random.default_rng(seed)
    f = units * rank
    b = G("svdf", seed)
    x = b.input((batches, n_in), "int8", 0.03, z_x)
    wf = b.t((f, n_in), "int8", 0.01, 0, rng.integers(-127, 128, (f, n_in)).astype(np.int8))
    s_wt = 3e-4 if dtype == "int16" else 0.002
    lo, hi = (-32767, 32768) if dtype == "int16" else (-127, 128)
    wt = b.t((f, memory), dtype, s_wt, 0, rng.integers(lo, hi, (f, memory)).astype(dtype))
    bias_scale = float(np.float32(np.float32(s_st) * np.float32(s_wt)))
    hi = 1 << (20 if dtype == "int16" else 10)  # a bias of a few output steps
    bias = b.t((units,), "int32", bias_scale, 0, rng.integers(-hi, hi, units).astype(np.int32))
    y = b.t((batches, units), "int8", 0.5, z_y)
    b.op("svdf", [x, wf, wt, bias], y, rank=rank, activation=act, state_scale=s_st, state_zp=z_st)
    return b.output(y)


SVDF_CASES = [(1, 16, 4, 1, 5, 0, 0, 0, "none"), (1, 10, 3, 2, 8, -5, 0, 7, "none"),
              (2, 7, 5, 3, 1, 12, 0, -20, "none"), (1, 32, 8, 1, 10, 0, 3, -128, "relu"),
              (3, 5, 2, 4, 3, -128, -7, 0, "relu"), (1, 40, 16, 2, 4, 3, 0, 2, "none")]


@needs_tflm
@pytest.mark.parametrize("dtype", ["int16", "int8"])
@pytest.mark.parametrize("batches,n_in,units,rank,memory,z_x,z_st,z_y,act", SVDF_CASES)
def test_svdf(batches, n_in, units, rank, memory, z_x, z_st, z_y, act, dtype: str) -> None:
    """int8 SVDF with int16 or int8 time weights and state = TFLM's first invoke (the state as
    TFLM resets it: 0, or the zero point for int8), over ranks 1-4, memory 1-10, batches 1-3
    and zero points (input, state, output); then four more invokes of the reference's
    svdf_step chained on its state against TFLM's streaming (the state persists in TFLM)."""
    from compiler.core.lower import lower
    from compiler.golden import reference
    from compiler.golden.tflm import TflmModel

    for s_st in (0.004, 0.0005):
        s_st = s_st if dtype == "int16" else s_st * 256
        g = svdf_graph(batches, n_in, units, rank, memory, z_x, z_st, z_y, act, n_in + memory, s_st, dtype)
        buf = write_tflite(g)
        imported = parse_tflite(buf, name="svdf")
        op = imported.ops[0]
        p = lower(imported, op)
        wf, wt, bias = (imported.t(n).data for n in op.inputs[1:4])
        model = TflmModel(buf)
        rng = np.random.default_rng(memory)
        state = np.full((batches, units * rank * memory), p["state_reset"], dtype)
        outs = []
        for k in range(5):
            x = rng.integers(-128, 128, (batches, n_in)).astype(np.int8)
            want = np.asarray(model.invoke(x)[0]).reshape(batches, units)
            got, state = reference.svdf_step(p, x, wf, wt, bias, state)
            assert np.array_equal(want, got), f"invoke {k}: tflm {want} ref {got}"
            if k == 0:
                assert np.array_equal(reference.run(imported, [x])[0], want)
            outs.append(got)
        assert len({o.tobytes() for o in outs}) > 1  # the outputs move (the test can fail)
        if act == "relu" and z_y > -128:  # TFLM's integer SVDF applies no activation: neither do we
            assert any((o < z_y).any() for o in outs)


def test_svdf_refusals() -> None:
    g = svdf_graph(1, 8, 2, 1, 3, 0, 0, 0)
    g.ops[0].attrs["activation"] = "relu6"
    with pytest.raises(ModelError, match=r"svdf.*relu6"):
        parse_tflite(write_tflite(g), name="m")
    g = svdf_graph(1, 8, 2, 1, 3, 0, 0, 0)
    g.t(g.ops[0].inputs[3]).quant.scale[:] = 1.0  # bias scale != state x time scales (TFLM refuses)
    with pytest.raises(ModelError, match="bias scale"):
        parse_tflite(write_tflite(g), name="m")
    g = svdf_graph(1, 8, 2, 1, 3, 0, 0, 0)
    g.t(g.ops[0].inputs[2]).quant.zero_point[:] = 4  # a time-weights zero point (TFLM ignores it)
    with pytest.raises(UnsupportedSchemeError, match="SVDF"):
        parse_tflite(write_tflite(g), name="m")
