"""compiler.models.builder: determinism, TFLite-style quantization, model factories, the demo model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from compiler.core.ir import graph_macs
from compiler.frontend.tflite_writer import write_tflite
from compiler.golden import reference
from compiler.golden.tflm import TflmModel, tflm_available
from compiler.models.builder import BuilderError, GraphBuilder, mobilenet_v1, mobilenet_v2, tiny_cnn

ROOT = Path(__file__).resolve().parents[1]


def _make_models():
    spec = importlib.util.spec_from_file_location("make_models", ROOT / "examples" / "make_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- determinism -------------------------------------------------------------------------------


def test_tiny_cnn_is_deterministic() -> None:
    assert write_tflite(tiny_cnn()) == write_tflite(tiny_cnn())
    assert write_tflite(tiny_cnn(seed=1)) != write_tflite(tiny_cnn())


def test_shipped_demo_model_matches_a_fresh_build() -> None:
    mm = _make_models()
    shipped = ROOT / "examples" / "models" / "tiny_cnn.tflite"
    assert shipped.read_bytes() == mm.model_bytes("tiny_cnn.tflite"), "run python examples/make_models.py"
    assert mm.main(["--check"]) == 0


def test_make_models_writes_same_bytes(tmp_path: Path) -> None:
    mm = _make_models()
    assert mm.main(["--out", str(tmp_path / "a")]) == 0
    assert mm.main(["--out", str(tmp_path / "b")]) == 0
    a, b = (tmp_path / d / "tiny_cnn.tflite" for d in "ab")
    assert a.read_bytes() == b.read_bytes()


# -- the demo model ---------------------------------------------------------------------------


def test_tiny_cnn_budget() -> None:
    g = tiny_cnn()
    weights = sum(t.nbytes for t in g.constants())
    largest = max(t.nbytes for t in g.activations())
    assert weights < 100_000
    assert largest < 25_000
    assert 1_000_000 < graph_macs(g) < 5_000_000
    assert [op.kind for op in g.ops].count("add") == 1
    assert g.t(g.inputs[0]).shape == (1, 48, 48, 3)
    assert g.t(g.outputs[0]).shape == (1, 10)


@pytest.mark.skipif(not tflm_available(), reason="tflite-micro package not installed")
def test_tiny_cnn_bit_exact_with_tflm() -> None:
    g = tiny_cnn()
    m = TflmModel(write_tflite(g))
    rng = np.random.default_rng(7)
    for _ in range(10):
        x = rng.integers(-128, 128, (1, 48, 48, 3), dtype=np.int8)
        want = np.asarray(m.invoke(x)[0])
        got = reference.run(g, [x])[0]
        assert np.array_equal(want.reshape(got.shape), got)


# -- quantization rules ------------------------------------------------------------------------


def test_quantization_follows_tflite_conventions() -> None:
    b = GraphBuilder("q", seed=0)
    x = b.input((1, 8, 8, 3))
    c = b.conv2d(x, 6, 3, activation="relu6")
    d = b.depthwise_conv2d(c, 3, depth_multiplier=2)
    p = b.max_pool2d(d, 2)
    r = b.reshape(p, (1, -1))
    f = b.fully_connected(r, 5)
    b.output(b.softmax(f))
    g = b.build()
    conv, dw, pool, resh, fc, sm = g.ops
    for op, axis, n in ((conv, 0, 6), (dw, 3, 12), (fc, 0, 1)):
        w, bias = g.t(op.inputs[1]), g.t(op.inputs[2])
        assert w.dtype == "int8" and bias.dtype == "int32"
        assert w.quant.scale.size == n and w.quant.axis == axis and not w.quant.zero_point.any()
        assert np.abs(w.data).max() == 127 and w.data.min() >= -127
        in_s = g.t(op.inputs[0]).quant.scale[0]
        want = np.broadcast_to(np.float32(in_s) * w.quant.scale, bias.quant.scale.shape)
        assert np.array_equal(bias.quant.scale, want)
    # relu6-fused output: range [0, <=6] -> zero point -128
    assert g.t(conv.outputs[0]).quant.zp == -128
    # max pool and reshape move int8 values: same quantization as their input
    for op in (pool, resh):
        assert g.t(op.outputs[0]).quant.s == g.t(op.inputs[0]).quant.s
        assert g.t(op.outputs[0]).quant.zp == g.t(op.inputs[0]).quant.zp
    q = g.t(sm.outputs[0]).quant
    assert q.s == np.float32(1 / 256) and q.zp == -128


def test_concat_shares_one_quantization() -> None:
    b = GraphBuilder("cat", seed=0)
    x = b.input((1, 4, 4, 2))
    a = b.conv2d(x, 3, 1)
    c = b.conv2d(x, 5, 1, activation="relu")
    b.output(b.concat([a, c, b.softmax(x)], axis=3))
    g = b.build()
    cat = g.ops[-1]
    qs = {(g.t(n).quant.s, g.t(n).quant.zp) for n in cat.inputs + cat.outputs}
    assert len(qs) == 1
    assert g.ops[-2].kind == "quantize"  # the softmax output is requantized first


def test_given_weights_and_float_agreement() -> None:
    """With given weights the int8 graph approximates the float graph."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (4, 3, 3, 2)).astype(np.float32)
    bias = rng.normal(0, 0.1, 4).astype(np.float32)
    b = GraphBuilder("given", seed=0)
    x = b.input((1, 6, 6, 2))
    y = b.conv2d(x, 4, 3, weights=w, bias=bias, activation="relu")
    y = b.fully_connected(y, 3)
    b.output(y)
    calib = rng.uniform(-1, 1, (8, 6, 6, 2)).astype(np.float32)
    g = b.build(calib)
    assert np.array_equal(b.nodes[0].params["w"], w)  # given weights are not BN-folded
    xq = g.t(g.inputs[0]).quant
    yq = g.t(g.outputs[0]).quant
    for i in range(3):
        xi = calib[i : i + 1]
        ref_f = b.run_float([xi])[y]
        q = np.clip(np.round(xi / xq.s) + xq.zp, -128, 127).astype(np.int8)
        out = (reference.run(g, [q])[0].astype(np.float32) - yq.zp) * yq.s
        assert np.abs(out - ref_f).max() < 0.1 * (np.abs(ref_f).max() + 1e-3) + 3 * yq.s


def test_builder_errors() -> None:
    b = GraphBuilder()
    x = b.input((1, 4, 4, 3))
    with pytest.raises(BuilderError):
        b.conv2d(x, 8, 7, padding="valid")
    with pytest.raises(BuilderError):
        b.conv2d(x, 8, 3, padding="full")
    with pytest.raises(BuilderError):
        b.add(x, b.input((1, 3, 4, 3)))
    with pytest.raises(BuilderError):
        b.conv2d(x, 8, 3, activation="gelu")
    with pytest.raises(BuilderError):
        b.build()


# -- model factories -----------------------------------------------------------------------------


def test_mobilenet_v2_shapes_and_macs() -> None:
    g = mobilenet_v2(1.0, 224, 1000)
    assert g.t(g.inputs[0]).shape == (1, 224, 224, 3)
    assert g.t(g.outputs[0]).shape == (1, 1000)
    kinds = [op.kind for op in g.ops]
    assert kinds.count("add") == 10  # inverted residuals with stride 1 and equal channels
    assert kinds.count("depthwise_conv2d") == 17
    assert 290e6 < graph_macs(g) < 310e6  # the published 300M
    weights = sum(t.data.size for t in g.constants() if t.dtype == "int8")
    assert 3.3e6 < weights < 3.6e6  # 3.4M parameters
    # activations stay in a sane range: no collapsed or exploding scale
    scales = [t.quant.s for t in g.activations()]
    assert min(scales) > 1e-3 and max(scales) < 1.0
    conv_out = {op.outputs[0] for op in g.ops if op.kind == "depthwise_conv2d"}
    assert {g.t(n).shape[1] for n in conv_out} == {112, 56, 28, 14, 7}


def test_mobilenet_small_variants() -> None:
    g = mobilenet_v2(0.35, 96, 2)
    assert g.t(g.outputs[0]).shape == (1, 2)
    assert 8e6 < graph_macs(g) < 14e6
    g1 = mobilenet_v1(0.25, 128, 10)
    assert 10e6 < graph_macs(g1) < 20e6
    assert g1.t(g1.outputs[0]).shape == (1, 10)
    assert mobilenet_v1(1.0, 224, 1000) is not None
