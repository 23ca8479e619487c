"""Small ONNX models built with onnx.helper (no torch needed) for the ONNX/PTQ tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr), name)


def float_cnn(path: Path, seed: int = 0, softmax: bool = True, res: int = 16, se: bool = True) -> Path:
    """NCHW [1, 3, res, res] -> conv3x3/s2+relu -> depthwise3x3+clip6 -> conv1x1 (+ hardswish residual)
    -> maxpool -> SE (GAP, conv1x1, sigmoid, mul) -> flatten -> gemm [10] (-> softmax).
    Without `se`: ... -> maxpool -> GAP -> flatten -> gemm."""
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[1:]))
        return (rng.normal(0, np.sqrt(2.0 / fan_in), shape)).astype(np.float32)

    def b(n: int) -> np.ndarray:
        return rng.normal(0, 0.1, n).astype(np.float32)

    h = res // 4
    inits = [
        _init("w1", w(8, 3, 3, 3)), _init("b1", b(8)),
        _init("wd", w(8, 1, 3, 3)), _init("bd", b(8)),
        _init("w2", w(16, 8, 1, 1)), _init("b2", b(16)),
        _init("wse", w(16, 16, 1, 1)), _init("bse", b(16)),
        _init("wfc", w(10, 16 * h * h) * 2.0), _init("bfc", b(10)),
        _init("lo", np.array(0.0, np.float32)), _init("hi", np.array(6.0, np.float32)),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["cd"], name="dw", pads=[1, 1, 1, 1], group=8),
        helper.make_node("Clip", ["cd", "lo", "hi"], ["rd"], name="relu6"),
        helper.make_node("Conv", ["rd", "w2", "b2"], ["c2"], name="pw"),
        helper.make_node("HardSwish", ["c2"], ["hs"], name="hswish"),
        helper.make_node("Add", ["c2", "hs"], ["a"], name="residual"),
        helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["gap"], name="gap"),
        helper.make_node("Conv", ["gap", "wse", "bse"], ["se"], name="se_conv"),
        helper.make_node("Sigmoid", ["se"], ["sg"], name="se_sigmoid"),
        helper.make_node("Mul", ["p", "sg"], ["m"], name="se_mul"),
        helper.make_node("Flatten", ["m"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "wfc", "bfc"], ["logits"], name="fc", transB=1),
    ]
    if not se:
        inits = [i for i in inits if i.name not in ("wse", "bse")]
        inits[-4] = _init("wfc", w(10, 16) * 2.0)
        nodes[9:] = [
            helper.make_node("Flatten", ["gap"], ["f"], name="flatten", axis=1),
            helper.make_node("Gemm", ["f", "wfc", "bfc"], ["logits"], name="fc", transB=1),
        ]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1))
        out = "probs"
    graph = helper.make_graph(
        nodes,
        "float_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, res, res])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def inputs(n: int, seed: int = 1, res: int = 16) -> np.ndarray:
    """Calibration-distribution inputs: smooth random images in about [-1, 1], NCHW."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(-1, 1, (n, 3, res // 4, res // 4)).astype(np.float32)
    img = np.kron(small, np.ones((1, 1, 4, 4), np.float32))
    return (img + rng.normal(0, 0.1, img.shape)).astype(np.float32)


def qdq_cnn(float_path: Path, out: Path, calib: np.ndarray, per_channel: bool, uint8_acts: bool = False) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"x": calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self):  # noqa: ANN201
            return next(self.it, None)

    quantize_static(
        str(float_path),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QUInt8 if uint8_acts else QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def single_node_model(
    path: Path, node: onnx.NodeProto, in_shape: list, out_shape: list, inits=(), opset: int = 17
) -> Path:
    graph = helper.make_graph(
        [node],
        "single",
        [helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, out_shape)],
        list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
