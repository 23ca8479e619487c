"""`run --input`: every bad array is refused with one line (exit 2) before compile and build;
float arrays are quantized in the model's own layout unless `--input-layout ir` says otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_model

from compiler import cli, pipeline
from compiler.inputs import InputError, check_input

KWS_SHAPE = (1, 49, 10, 1)

BAD = {
    "nan": np.full(KWS_SHAPE, np.nan, np.float32),
    "inf": np.full(KWS_SHAPE[1:], -np.inf),
    "complex": np.zeros(KWS_SHAPE, np.complex64),
    "bool": np.zeros(KWS_SHAPE, bool),
    "float16": np.zeros(KWS_SHAPE, np.float16),
    "int32_out_of_range": np.full(KWS_SHAPE, 300, np.int32),
    "uint8_out_of_range": np.full(KWS_SHAPE, 200, np.uint8),
    "strings": np.array(["a", "b"]),
    "empty": np.zeros((0, *KWS_SHAPE[1:]), np.int8),
    "wrong_shape": np.zeros((3, 7), np.int8),
}


def _no_compile(*args, **kwargs):
    raise AssertionError("compile_graph was called before the input was checked")


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_refused_before_compile(case, tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / f"{case}.npy"
    np.save(path, BAD[case])
    monkeypatch.setattr(pipeline, "compile_graph", _no_compile)
    rc = cli.main(["run", str(shared_model("kws_ref_model")), "--out", str(tmp_path / "o"), "--input", str(path)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("[microtile]")]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("microtile: error: ") and f"{case}.npy" in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "name,write",
    [
        ("obj.npy", lambda p: np.save(p, np.array([{}], dtype=object), allow_pickle=True)),
        ("trunc.npy", lambda p: p.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<i1'")),
        ("x.txt", lambda p: p.write_text("1 2 3\n")),
        ("garbage.npy", lambda p: p.write_bytes(bytes(range(256)))),
        ("bad.npz", lambda p: np.savez(p, wrong_name=np.zeros(KWS_SHAPE, np.int8))),
    ],
)
def test_unreadable_or_unnamed_input_refused(name, write, tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / name
    write(path)
    monkeypatch.setattr(pipeline, "compile_graph", _no_compile)
    rc = cli.main(["run", str(shared_model("kws_ref_model")), "--out", str(tmp_path / "o"), "--input", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and name in err and "Traceback" not in err
    assert "allow_pickle" not in err  # microtile never unpickles: do not suggest it


def test_accepted_forms_agree() -> None:
    g = pipeline.load_model(shared_model("kws_ref_model"))
    name = g.inputs[0]
    q = g.t(name).quant
    x = np.random.default_rng(0).integers(-128, 128, (2, *KWS_SHAPE), dtype=np.int8)
    want = x.reshape(2, *KWS_SHAPE)
    for arr in (x, x.reshape(2, *KWS_SHAPE[1:]), x.astype(np.int32)):
        assert np.array_equal(check_input(g, {"": arr}, "a"), want)
    assert np.array_equal(check_input(g, {name: x[0]}, "a.npz"), want[:1])
    real = (x.astype(np.float64) - q.zp) * q.s  # float in, the same int8 out
    assert np.array_equal(check_input(g, {"": real.astype(np.float32)}, "a"), want)


def test_layout_is_explicit_for_onnx(tmp_path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx_models import float_cnn, inputs

    path = float_cnn(tmp_path / "cnn.onnx", softmax=False)
    g = pipeline.load_model(path, calib=inputs(16, seed=1))
    nchw = inputs(2, seed=5)  # (2, 3, 16, 16): the model's own layout
    nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))
    a = check_input(g, {"": nchw}, "x.npy")  # default: the model's layout
    b = check_input(g, {"": nhwc}, "x.npy", layout="ir")
    assert a.shape == (2, 1, 16, 16, 3) and np.array_equal(a, b)
    with pytest.raises(InputError, match=r"not \(N, 3, 16, 16\).*--input-layout ir"):
        check_input(g, {"": nhwc}, "x.npy")
    with pytest.raises(InputError, match=r"not \(N, 16, 16, 3\).*--input-layout model"):
        check_input(g, {"": nchw}, "x.npy", layout="ir")
