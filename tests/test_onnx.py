"""ONNX import: float graphs against onnxruntime, QDQ int8 graphs against onnxruntime's QDQ execution,
the one-line errors, and the whole road in QEMU for a QDQ CNN.

Fidelity bounds tested here:
- float import: `run_float` matches onnxruntime within 1e-4 absolute (float32 arithmetic order);
- QDQ import: `compiler.golden.reference.run` (TFLite-Micro integer arithmetic) on the imported int8 graph
  matches onnxruntime running the QDQ model within 1 LSB on >= 99 % of the output values (measured
  with the pinned versions: 99.7 % within 1 LSB, 65-68 % exact, max 2 LSB; the rest is float vs
  fixed-point requantization rounding, compounded over the layers).

The QDQ oracle is the ONNX definition of a QDQ graph: every DequantizeLinear -> float op ->
QuantizeLinear executed as written (round half to even), which onnxruntime does with its graph
optimizations disabled (`ORT_DISABLE_ALL`). With its default optimizations onnxruntime fuses the
Q/DQ pairs into its own integer kernels (QLinearConv, MLAS u8s8 GEMM), whose result depends on the
host CPU: on x86 without VNNI (SSE4.1/AVX2/AVX-512 without VNNI, e.g. the CI machine's AMD EPYC)
the u8s8 kernels add pairs of products in saturating int16 (vpmaddubsw) and overflow, which
onnxruntime documents with its `session.x64quantprecision` option (microsoft/onnxruntime#12088).
There the fused run agreed on only 85 % (qdq_se: 50 %) within 1 LSB, max 13, with any onnxruntime
version; with `session.x64quantprecision=1` or `ORT_DISABLE_ALL` it is the 99.7 % above.
Needs the `onnx` extra (onnx, onnxruntime); skipped with the reason otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the `onnx` extra is not installed (pip install 'microtile[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'microtile[onnx]')")

from conftest import needs_firmware  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_models import float_cnn, inputs, qdq_cnn, single_node_model  # noqa: E402

from compiler.cli import main as cli_main  # noqa: E402
from compiler.errors import ModelError, UnsupportedOpError  # noqa: E402
from compiler.frontend.onnx import load_onnx  # noqa: E402
from compiler.golden import reference  # noqa: E402
from compiler.golden.float_ref import run_float  # noqa: E402
from compiler.passes.io_quant import strip_io_quant  # noqa: E402
from compiler.passes.quantize import to_ir_layout  # noqa: E402
from compiler.pipeline import CompileOptions, run_model  # noqa: E402

FLOAT_TOL = 1e-4


def _ort(path, xs: np.ndarray, name: str = "x") -> np.ndarray:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the ONNX QDQ semantics (see above)
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {name: xs[i : i + 1]})[0] for i in range(len(xs))])


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("onnx")
    calib = inputs(48, seed=1)
    paths = {"float": float_cnn(d / "cnn.onnx", softmax=False), "float_sm": float_cnn(d / "cnn_sm.onnx")}
    paths["plain"] = float_cnn(d / "plain.onnx", softmax=False, se=False)
    paths["qdq_pc"] = qdq_cnn(paths["plain"], d / "cnn_qdq_pc.onnx", calib, per_channel=True)
    paths["qdq_pt"] = qdq_cnn(paths["plain"], d / "cnn_qdq_pt.onnx", calib, per_channel=False)
    paths["qdq_u8"] = qdq_cnn(paths["plain"], d / "cnn_qdq_u8.onnx", calib, per_channel=True, uint8_acts=True)
    paths["qdq_se"] = qdq_cnn(paths["float"], d / "cnn_qdq_se.onnx", calib, per_channel=True)
    paths["calib"] = calib
    paths["dir"] = d
    return paths


@pytest.mark.parametrize("which", ["float", "float_sm"])
def test_float_cnn_matches_onnxruntime(cnn, which) -> None:
    g = load_onnx(cnn[which])
    assert all(t.dtype == "float32" for t in g.activations())
    kinds = [op.kind for op in g.ops]
    assert "depthwise_conv2d" in kinds and "hard_swish" in kinds and "logistic" in kinds
    assert "transpose" not in kinds  # NCHW flatten before the dense layer folds into its weight columns
    assert g.t(g.inputs[0]).shape == (1, 16, 16, 3)  # NHWC
    xs = inputs(8, seed=5)
    got = run_float(g, [to_ir_layout(g, xs)])[0]
    np.testing.assert_allclose(got, _ort(cnn[which], xs), atol=FLOAT_TOL, rtol=0)


@pytest.mark.parametrize(("which", "within_1", "max_lsb"), [
    ("qdq_pc", 0.99, 2), ("qdq_pt", 0.99, 2), ("qdq_u8", 0.99, 2),
    # squeeze-excite: TFLM's integer mean and logistic (then a requantize to the model's sigmoid
    # scale, as the int8 kernel's output is fixed at 1/256) round differently from onnxruntime's
    # float ops; the per-layer differences stay within 1 LSB and compound to the looser bound here
    ("qdq_se", 0.97, 3),
])  # fmt: skip
def test_qdq_matches_onnxruntime_within_one_lsb(cnn, which, within_1, max_lsb) -> None:
    g = strip_io_quant(load_onnx(cnn[which]))
    assert all(t.dtype in ("int8", "int32") for t in g.tensors.values() if t.dtype != "float32")
    qin, qout = g.t(g.inputs[0]).quant, g.t(g.outputs[0]).quant
    xs = inputs(64, seed=9)
    y = _ort(cnn[which], xs)
    y_q = np.round(y / qout.s) + qout.zp  # onnxruntime's output is DequantizeLinear of its int8
    x_q = np.clip(np.rint(to_ir_layout(g, xs) / qin.s) + qin.zp, -128, 127).astype(np.int8)
    ours = np.concatenate([reference.run(g, [x_q[i : i + 1]])[0] for i in range(len(xs))]).astype(np.int64)
    d = np.abs(ours - y_q.reshape(ours.shape))
    print(f"{which}: {d.size} outputs, exact {np.mean(d == 0):.3f}, within 1 LSB {np.mean(d <= 1):.4f}, max {d.max()}")
    assert np.mean(d <= 1) >= within_1
    assert d.max() <= max_lsb


def test_qdq_weights_keep_model_scales(cnn) -> None:
    m = onnx.load(str(cnn["qdq_pc"]))
    scales = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    g = load_onnx(cnn["qdq_pc"])
    conv = next(op for op in g.ops if op.kind == "conv2d")
    wq = g.t(conv.inputs[1]).quant
    assert wq.per_channel and wq.axis == 0 and not wq.zero_point.any()
    assert any(np.array_equal(wq.scale, s.astype(np.float32)) for s in scales.values() if s.shape == wq.scale.shape)
    dw = next(op for op in g.ops if op.kind == "depthwise_conv2d")
    assert g.t(dw.inputs[1]).quant.axis == 3


# -- one-line errors ----------------------------------------------------------------------------


def _one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg
    return msg


def test_dynamic_shape_is_refused(tmp_path) -> None:
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    p = single_node_model(tmp_path / "dyn.onnx", node, ["N", 3, 8, 8], ["N", 3, 8, 8])
    with pytest.raises(ModelError) as e:
        load_onnx(p)
    msg = _one_line(e.value)
    assert "dynamic shape" in msg and "'x'" in msg and "Relu node 'r'" in msg


def test_unsupported_op_names_node_and_supported_list(tmp_path) -> None:
    node = helper.make_node("Cos", ["x"], ["y"], name="my_cos")
    p = single_node_model(tmp_path / "cos.onnx", node, [1, 4], [1, 4])
    with pytest.raises(UnsupportedOpError) as e:
        load_onnx(p)
    msg = _one_line(e.value)
    assert "unsupported op Cos" in msg and "my_cos" in msg and "supported: Add" in msg and "Conv" in msg


@pytest.mark.parametrize(
    ("node", "inits", "out_shape", "needle"),
    [
        (
            helper.make_node("Conv", ["x", "w"], ["y"], name="grouped", group=3),  # 4 channels in 3 groups
            [("w", np.ones((3, 1, 1, 1), np.float32))],
            [1, 3, 8, 8],
            "group=3",
        ),
        (
            helper.make_node("MaxPool", ["x"], ["y"], name="dil", kernel_shape=[3, 3], dilations=[2, 2]),
            [],
            [1, 4, 4, 4],
            "dilations=",
        ),
        (
            helper.make_node("Softmax", ["x"], ["y"], name="sm1", axis=1),
            [],
            [1, 4, 8, 8],
            "axis=1",
        ),
    ],
)
def test_unsupported_attribute(tmp_path, node, inits, out_shape, needle) -> None:
    from onnx import numpy_helper

    p = single_node_model(
        tmp_path / "attr.onnx", node, [1, 4, 8, 8], out_shape, [numpy_helper.from_array(a, n) for n, a in inits]
    )
    with pytest.raises(ModelError) as e:
        load_onnx(p)
    msg = _one_line(e.value)
    assert needle in msg and node.op_type in msg and node.name in msg


def test_unmappable_qdq_patterns(cnn, tmp_path) -> None:
    # 1) a DequantizeLinear whose scale differs from its QuantizeLinear's
    m = onnx.load(str(cnn["qdq_pc"]))
    dq = next(
        n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("_QuantizeLinear_Output")
    )
    bad = onnx.numpy_helper.from_array(np.array(0.123, np.float32), "bad_scale")
    m.graph.initializer.append(bad)
    dq.input[1] = "bad_scale"
    onnx.save(m, str(tmp_path / "bad1.onnx"))
    with pytest.raises(ModelError) as e:
        load_onnx(tmp_path / "bad1.onnx")
    msg = _one_line(e.value)
    assert "QDQ pattern not supported" in msg and "DequantizeLinear node" in msg
    # 2) asymmetric uint8 weights (zero point != 128): TFLite-style kernels need symmetric weights
    m = onnx.load(str(cnn["qdq_pc"]))
    init = {i.name: i for i in m.graph.initializer}
    wdq = next(
        n
        for n in m.graph.node
        if n.op_type == "DequantizeLinear"
        and init.get(n.input[0]) is not None
        and onnx.numpy_helper.to_array(init[n.input[0]]).dtype == np.int8
    )
    w = onnx.numpy_helper.to_array(init[wdq.input[0]])
    init[wdq.input[0]].CopyFrom(onnx.numpy_helper.from_array((w.astype(np.int16) + 128).astype(np.uint8), wdq.input[0]))
    zp = onnx.numpy_helper.to_array(init[wdq.input[2]])
    init[wdq.input[2]].CopyFrom(onnx.numpy_helper.from_array(np.full(zp.shape, 100, np.uint8), wdq.input[2]))
    onnx.save(m, str(tmp_path / "bad2.onnx"))
    with pytest.raises(ModelError) as e:
        load_onnx(tmp_path / "bad2.onnx")
    msg = _one_line(e.value)
    assert "QDQ pattern not supported" in msg and "zero point" in msg


def test_cli_errors_are_one_line(cnn, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    assert cli_main(["compile", str(cnn["float"]), "--out", str(out), "--no-build"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--calib" in err and "float model" in err
    bad = tmp_path / "calib_bad.npy"
    np.save(bad, np.zeros((4, 3, 28, 28), np.float32))
    assert cli_main(["compile", str(cnn["float"]), "--calib", str(bad), "--out", str(out), "--no-build"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "(N, 3, 16, 16)" in err


@needs_firmware
def test_qdq_cnn_bit_exact_in_qemu(cnn, tmp_path) -> None:
    report = run_model(cnn["qdq_pc"], tmp_path / "fw", CompileOptions(board="stm32f405"), n_random=3, seed=3)
    assert report["bit_exact"] and report["max_abs_diff"] == 0
