"""Round trips through compiler.frontend.tflite_writer: parse_tflite(write_tflite(g)) == g."""

from __future__ import annotations

import numpy as np
import pytest
import tflite
from conftest import MODELS as CONFTEST_MODELS
from conftest import shared_model

from compiler.core.ir import Graph, Op, Tensor
from compiler.frontend.tflite import load_tflite, parse_tflite
from compiler.frontend.tflite_writer import WriterError, write_tflite
from compiler.models.builder import GraphBuilder, tiny_cnn

SHARED = CONFTEST_MODELS


def _same_tensor(a: Tensor, b: Tensor, where: str) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype, where
    assert (a.quant is None) == (b.quant is None), where
    if a.quant is not None:
        assert np.array_equal(a.quant.scale, b.quant.scale), where
        assert np.array_equal(a.quant.zero_point, b.quant.zero_point), where
        if a.quant.per_channel:
            assert a.quant.axis == b.quant.axis, where
    assert (a.data is None) == (b.data is None), where
    if a.data is not None:
        assert np.array_equal(a.data, b.data), where


def assert_equivalent(g: Graph, h: Graph) -> None:
    """Same ops, attrs, tensor shapes/quantization/data, in the same order (names may differ)."""
    assert len(g.ops) == len(h.ops)
    assert len(g.inputs) == len(h.inputs) and len(g.outputs) == len(h.outputs)
    for a, b in zip(g.inputs + g.outputs, h.inputs + h.outputs, strict=True):
        _same_tensor(g.t(a), h.t(b), f"graph io {a}")
    for x, y in zip(g.ops, h.ops, strict=True):
        assert x.kind == y.kind, (x.name, y.name)
        assert _norm(x) == _norm(y), (x.describe(), y.describe())
        assert len(x.inputs) == len(y.inputs) and len(x.outputs) == len(y.outputs), x.name
        for a, b in zip(x.inputs + x.outputs, y.inputs + y.outputs, strict=True):
            assert (a == "") == (b == ""), x.name
            if a:
                _same_tensor(g.t(a), h.t(b), f"{x.name}: {a}")


def _norm(op: Op) -> dict:
    return {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in op.attrs.items()}


def _every_op_graph() -> Graph:
    b = GraphBuilder("every_op", seed=3)
    x = b.input((1, 12, 12, 3))
    y = b.conv2d(x, 8, 3, stride=2, padding="valid", dilation=1, activation="relu6")
    y = b.depthwise_conv2d(y, 3, dilation=2, depth_multiplier=2, activation="relu")
    y = b.pad(y, ((0, 0), (1, 1), (0, 1), (0, 0)))
    y = b.max_pool2d(y, 2, 1, "same")
    z = b.avg_pool2d(y, 3, 1, "same", activation="relu6")
    y = b.add(y, z)
    y = b.mul(y, b.logistic(b.mean(y, (1, 2), keep_dims=True)))
    y = b.concat([b.hard_swish(y), b.relu(y), b.relu6(y)], axis=3)
    y = b.quantize(y, 1.2)
    y = b.reshape(y, (1, -1))
    y = b.softmax(b.fully_connected(y, 7, per_channel=True), beta=0.5)
    b.output(y)
    return b.build()


def test_round_trip_builder_graph() -> None:
    g = _every_op_graph()
    kinds = {op.kind for op in g.ops}
    assert {
        "conv2d",
        "depthwise_conv2d",
        "pad",
        "max_pool2d",
        "avg_pool2d",
        "add",
        "mul",
        "mean",
        "logistic",
        "concat",
        "hard_swish",
        "relu",
        "quantize",
        "reshape",
        "fully_connected",
        "softmax",
    } <= kinds
    buf = write_tflite(g)
    assert buf[4:8] == b"TFL3"
    assert_equivalent(g, parse_tflite(buf))
    assert write_tflite(g) == buf  # deterministic


def test_round_trip_tiny_cnn_twice() -> None:
    g = tiny_cnn()
    buf = write_tflite(g)
    h = parse_tflite(buf)
    assert_equivalent(g, h)
    assert write_tflite(h) == write_tflite(parse_tflite(write_tflite(h)))


@pytest.mark.parametrize("name", SHARED)
def test_round_trip_shared_models(name: str) -> None:
    g = load_tflite(shared_model(name))  # skips, with the reason, when ../shared/models is absent
    assert_equivalent(g, parse_tflite(write_tflite(g)))


def test_schema_fields() -> None:
    buf = bytearray(write_tflite(_every_op_graph()))
    base = np.frombuffer(buf, np.uint8).ctypes.data
    m = tflite.Model.GetRootAsModel(buf, 0)
    assert m.Version() == 3 and m.SubgraphsLength() == 1
    b0 = m.Buffers(0)
    assert b0.DataLength() == 0
    for i in range(m.OperatorCodesLength()):
        c = m.OperatorCodes(i)
        assert c.DeprecatedBuiltinCode() == min(c.BuiltinCode(), 127)
    sg = m.Subgraphs(0)
    per_channel_dims = set()
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        q = t.Quantization()
        if t.Buffer() != 0:
            data = m.Buffers(t.Buffer()).DataAsNumpy()
            assert (data.ctypes.data - base) % 16 == 0, "constant data must be 16-byte aligned"
        if q is not None and q.ScaleLength() > 1:
            per_channel_dims.add(q.QuantizedDimension())
    assert per_channel_dims == {0, 3}  # conv/fc/bias on axis 0, depthwise on axis 3


def test_unexpressible_pads_are_refused() -> None:
    g = tiny_cnn()
    conv = next(op for op in g.ops if op.kind == "conv2d")
    conv.attrs["pads"] = (1, 1, 1, 1)  # 48 -> 24 with stride 2, kernel 3: SAME is (0, 1, 0, 1)
    with pytest.raises(WriterError, match="neither TFLite SAME"):
        write_tflite(g)


def test_tflm_runs_written_model() -> None:
    tflm = pytest.importorskip("compiler.golden.tflm")
    if not tflm.tflm_available():
        pytest.skip("tflite-micro not installed")
    from compiler.golden import reference

    g = _every_op_graph()
    m = tflm.TflmModel(write_tflite(g))
    x = np.random.default_rng(0).integers(-128, 128, g.t(g.inputs[0]).shape, dtype=np.int8)
    want = np.asarray(m.invoke(x)[0])
    got = reference.run(g, [x])[0]
    assert np.array_equal(want.reshape(got.shape), got)
