"""int16 LOGISTIC, TANH and SOFTMAX and int8 SVDF against TFLite-Micro, byte for byte.

Like tests/test_tflite_support.py: a hand-written IR graph, written with
`compiler.frontend.tflite_writer`, imported through the op declarations
(`compiler/ops_support.py`) and run in `compiler.reference` and the `tflite-micro`
interpreter. LOGISTIC and TANH are checked on every int16 input value (one tensor of all
65,536), over power-of-two and other input scales; SOFTMAX over row lengths, scales and
betas; SVDF over ranks, memory sizes, zero points and several invokes (its state persists).
The C kernels are checked against the same reference in tests/test_kernels_lut16.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler import lut16
from compiler.errors import ModelError
from compiler.frontend.tflite import parse_tflite
from compiler.frontend.tflite_writer import write_tflite
from compiler.ir import Graph
from compiler.ops_support import UnsupportedSchemeError
from tests.test_tflite_support import G, needs_tflm, oracle

ALL16 = np.arange(-32768, 32768, dtype=np.int64)


def _every_int16(g: Graph) -> None:
    """Run the one-input graph g on all 65,536 int16 values (input shape (1, 256, 256))."""
    from compiler import reference
    from compiler.tflm import TflmModel

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
    oracle(b.output(y), n=6, seed=len(shape))


def lut16_graph() -> Graph:
    """int16 TANH (power-of-two input 2^-12) -> LOGISTIC (input 2^-15: multiplier path) and
    SOFTMAX (beta 1); LOGISTIC of the input (power of two); int8 in and out via QUANTIZE."""
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
    return b.output(lg, sm, y)


@needs_tflm
def test_lut16_graph_oracle() -> None:
    oracle(lut16_graph(), n=4)


def test_lut16_graph_in_qemu(tmp_path) -> None:
    """The graph above as firmware in QEMU: bit-exact with the reference (and the reference
    with TFLM on the same inputs)."""
    from tests.test_tflite_support import qemu_exact

    report = qemu_exact(write_tflite(lut16_graph()), tmp_path)
    assert len(report["model_outputs"]) == 3


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
    from compiler.tflm import TflmModel

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
