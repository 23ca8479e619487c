"""ONNX models as PyTorch writes them: the shared failing cases, old opsets, fixed batch N, single-op
modules against onnxruntime, and calibration through onnxruntime against the numpy executor.

Bounds: float import (`run_float`) vs onnxruntime within 1e-4 absolute; calibration ranges from
onnxruntime equal the numpy executor's within 1e-5 relative (float32 summation order); the shared
cases run bit-exact in QEMU against `compiler.reference`. Needs the `onnx` extra (and torch for the
module tests); skipped with the reason otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the `onnx` extra is not installed (pip install 'microtile[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'microtile[onnx]')")

from conftest import needs_firmware  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_models import single_node_model  # noqa: E402

from compiler.errors import ModelError  # noqa: E402
from compiler.float_ref import run_float  # noqa: E402
from compiler.frontend.onnx import load_onnx  # noqa: E402
from compiler.passes.quantize import _OnnxTensors, calibrate, float_tensors, to_ir_layout  # noqa: E402
from compiler.pipeline import CompileOptions, run_model  # noqa: E402

CASES = Path(__file__).resolve().parents[1].parent / "shared" / "cases"
FLOAT_TOL = 1e-4


def shared_case(name: str) -> Path:
    path = CASES / f"{name}.onnx"
    if not path.exists():
        pytest.skip(f"shared case {path} not found (tests read ../shared/cases in place)")
    return path


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def onnx_input_shape(path: Path) -> tuple[int, ...]:
    m = onnx.load(str(path))
    return tuple(d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim)


def check_float(path: Path, seed: int = 0) -> object:
    """Import `path`, run one random sample through run_float and onnxruntime, compare; the graph."""
    g = load_onnx(path)
    x = np.random.default_rng(seed).normal(size=onnx_input_shape(path)).astype(np.float32)
    want = ort_run(path, x)
    perm = g.meta["input_perms"][g.inputs[0]]
    got = run_float(g, [np.transpose(x, perm)])[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=FLOAT_TOL, rtol=0)
    return g


# -- the three shared cases -------------------------------------------------------------------

SHARED = {
    "gelu_tanh_opset17": ("gelu",),
    "avgpool_count_include_pad": ("pad", "avg_pool2d"),
    "torch_multihead_attention": ("batch_matmul", "softmax", "layer_norm"),
}


@pytest.mark.parametrize("case", sorted(SHARED))
def test_shared_case_float_matches_onnxruntime(case) -> None:
    g = check_float(shared_case(case))
    kinds = [op.kind for op in g.ops]
    assert all(k in kinds for k in SHARED[case])
    if case == "gelu_tanh_opset17":
        assert kinds == ["fully_connected", "gelu", "fully_connected"]
        assert g.ops[1].attrs["approximate"] == "tanh"


def _calib_for(path: Path, n: int = 16) -> np.ndarray:
    """Random samples in the IR's layout (N, *IR shape[1:])."""
    g = load_onnx(path)
    shape = g.t(g.inputs[0]).shape
    return np.random.default_rng(1).normal(size=(n,) + shape[1:]).astype(np.float32)


@needs_firmware
@pytest.mark.parametrize("case", sorted(SHARED))
def test_shared_case_bit_exact_in_qemu(case, tmp_path) -> None:
    path = shared_case(case)
    report = run_model(path, tmp_path / "fw", CompileOptions(board="stm32f405"), n_random=2, calib=_calib_for(path))
    assert report["bit_exact"] and report["max_abs_diff"] == 0


def test_mha_scores_compare_like_with_like() -> None:
    # the scale on q and k folds into softmax's beta: the IR's scores are unscaled q.k^T, onnxruntime's
    # MatMul output is scaled; the per-layer table must compare the same quantity
    path = shared_case("torch_multihead_attention")
    g = load_onnx(path)
    calib = _calib_for(path, 4)
    ref, src = float_tensors(g, [calib])
    assert src == "onnxruntime"
    mine = run_float(g, [calib], keep_all=True)
    scores = next(op.outputs[0] for op in g.ops if op.kind == "batch_matmul")
    assert scores in g.meta["onnx_scale"]
    np.testing.assert_allclose(ref[scores], mine[scores], atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", ["torch_multihead_attention", "avgpool_count_include_pad"])
def test_onnxruntime_calibration_equals_numpy(case) -> None:
    path = shared_case(case)
    g = load_onnx(path)
    calib = _calib_for(path, 40)
    fast = calibrate(g, [calib], chunk=16, engine="onnxruntime")
    slow = calibrate(g, [calib], chunk=16, engine="numpy")
    assert fast.keys() == slow.keys()
    for name, (lo, hi) in slow.items():
        assert fast[name] == pytest.approx((lo, hi), rel=1e-5, abs=1e-6), name


def test_batched_onnxruntime_equals_per_sample() -> None:
    path = shared_case("avgpool_count_include_pad")
    g = load_onnx(path)
    calib = _calib_for(path, 8)
    batched = _OnnxTensors.open(g)
    single = _OnnxTensors.open(g)
    single.batched = None
    a, b = batched.run([calib]), single.run([calib])
    assert batched.batched_ok and a.keys() == b.keys() and a
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)


# -- opsets and batch -------------------------------------------------------------------------


def _opset11_cnn(path: Path) -> Path:
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b"),
        numpy_helper.from_array(rng.normal(size=(5, 16)).astype(np.float32), "fw"),
        numpy_helper.from_array(rng.normal(size=(5,)).astype(np.float32), "fb"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], name="fc", transB=1),
        helper.make_node("Softmax", ["g"], ["y"], name="sm", axis=1),  # opset < 13: coerced 2-D
    ]
    graph = helper.make_graph(
        nodes,
        "old",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


def test_old_opset_is_upgraded(tmp_path) -> None:
    g = check_float(_opset11_cnn(tmp_path / "old.onnx"))
    assert g.meta["onnx_upgraded_from"] == 11
    kinds = [op.kind for op in g.ops]
    assert {"conv2d", "max_pool2d", "fully_connected", "softmax"} <= set(kinds)


def test_too_old_opset_is_refused(tmp_path) -> None:
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    p = single_node_model(tmp_path / "old.onnx", node, [1, 4], [1, 4], opset=6)
    with pytest.raises(ModelError, match="opset 6 is not supported") as e:
        load_onnx(p)
    assert "\n" not in str(e.value)


def test_fixed_batch_n_compiles_for_batch_1(tmp_path) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed")
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.fc = torch.nn.Linear(4 * 8 * 8, 5)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).reshape(4, -1))  # hard-coded batch, as people write it

    path = tmp_path / "b4.onnx"
    x = torch.randn(4, 3, 8, 8)
    torch.onnx.export(Net().eval(), (x,), str(path), dynamo=False, opset_version=17, input_names=["x"])
    g = load_onnx(path)
    assert g.t(g.inputs[0]).shape == (1, 8, 8, 3)
    assert any("fixed batch of 4; compiling for batch 1" in n for n in g.meta["import_notes"])
    want = ort_run(path, x.numpy())
    got = run_float(g, [to_ir_layout(g, x.numpy())])[0]
    np.testing.assert_allclose(got, want, atol=FLOAT_TOL, rtol=0)
