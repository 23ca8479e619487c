"""The TFLite op declarations (compiler/core/ops_support.py) against TFLite-Micro, byte for byte.

Each test builds a small IR graph by hand (any dtype: int8, int16, uint8, float32 edges),
serializes it with `compiler.frontend.tflite_writer`, re-imports it through
`compiler.frontend.tflite.parse_tflite` (so the declarations check it exactly as `plan`,
`compile` and `run` do), and compares `compiler.golden.reference` with the `tflite-micro`
interpreter on random inputs. Refusals are checked too: a model outside the declarations is
refused at import with one line naming the op, the node and the tensor.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.core.ops_support import SUPPORT, UnsupportedSchemeError, declared_tests, support_matrix
from compiler.errors import ModelError
from compiler.frontend.tflite import load_tflite, parse_tflite
from compiler.frontend.tflite_writer import write_tflite
from compiler.golden import reference
from compiler.golden.tflm import TflmModel, tflm_available
from compiler.inputs import InputError

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT.parent / "shared" / "cases"
needs_tflm = pytest.mark.skipif(not tflm_available(), reason="tflite-micro package not installed")

_RANGE = {"int8": (-128, 128), "uint8": (0, 256), "int16": (-32768, 32768), "int32": (-(1 << 20), 1 << 20)}


def random_input(t: Tensor, rng: np.random.Generator) -> np.ndarray:
    if t.dtype == "float32":
        return rng.uniform(-4.0, 4.0, t.shape).astype(np.float32)
    lo, hi = _RANGE[t.dtype]
    return rng.integers(lo, hi, t.shape).astype(t.dtype)


def oracle(g: Graph, n: int = 4, seed: int = 0) -> Graph:
    """Write g, import it (declarations checked), run TFLM and the reference on n random inputs;
    assert identical bytes. Returns the imported graph."""
    buf = write_tflite(g)
    imported = parse_tflite(buf, name=g.name)
    model = TflmModel(buf)
    rng = np.random.default_rng(seed)
    for trial in range(n):
        xs = [random_input(imported.t(name), rng) for name in imported.inputs]
        want = model.invoke(*xs, n_outputs=len(imported.outputs))
        got = reference.run(imported, xs)
        for name, w, r in zip(imported.outputs, want, got, strict=True):
            w = np.asarray(w).reshape(r.shape)
            assert w.dtype == r.dtype, f"{g.name}: output {name} dtype {r.dtype}, TFLM {w.dtype}"
            if not np.array_equal(w, r):
                bad = np.flatnonzero(w != r)
                raise AssertionError(
                    f"{g.name}: output {name} differs from TFLM on input {trial}: {bad.size}/{w.size} values, "
                    f"first at {bad[0]}: tflm {w.flat[bad[0]]} ref {r.flat[bad[0]]}\n{imported.dump()}"
                )
    return imported


class G:
    """A tiny hand-written graph: tensors by dtype and quantization, ops in order."""

    def __init__(self, name: str, seed: int = 0) -> None:
        self.g = Graph(name=name)
        self.rng = np.random.default_rng(seed)

    def t(self, shape, dtype="int8", scale=None, zp=0, data=None, axis=0) -> str:
        name = self.g.unique_name(f"t{len(self.g.tensors)}")
        q = None if scale is None else QParams(np.asarray(scale, np.float32), np.asarray(zp), axis)
        self.g.add_tensor(Tensor(name, tuple(shape), dtype, q, data))
        return name

    def input(self, shape, dtype="int8", scale=0.05, zp=0) -> str:
        n = self.t(shape, dtype, scale if dtype != "float32" else None, zp)
        self.g.inputs.append(n)
        return n

    def op(self, kind: str, ins: list[str], out: str, **attrs) -> str:
        self.g.add_op(Op(kind, f"op{len(self.g.ops)}_{kind}", ins, [out], attrs))
        return out

    def output(self, *names: str) -> Graph:
        self.g.outputs.extend(names)
        self.g.verify()
        return self.g


# -- declarations -------------------------------------------------------------------------------


def test_every_scheme_names_an_existing_test() -> None:
    """The support matrix claims nothing without an oracle test: each named test exists."""
    for ref in declared_tests():
        path, _, name = ref.partition("::")
        text = (ROOT / path).read_text()
        assert re.search(rf"^def {re.escape(name)}\(", text, re.M), f"{ref} is declared but does not exist"


def test_every_declared_kernel_exists() -> None:
    """Each scheme's C kernels are declared in mt_nn.h and live in runtime_c/<name>.c; every
    accepted scheme has a portable C implementation (else compile would fail late)."""
    header = (ROOT / "runtime_c" / "mt_nn.h").read_text()
    for decl in SUPPORT.values():
        for s in decl.schemes:
            assert "C" in s.impl and "reference" in s.impl, f"{decl.op} {s.name}"
            for k in s.kernels:
                assert re.search(rf"\b{k}\(", header), f"{decl.op} {s.name}: {k} not in mt_nn.h"
                assert (ROOT / "runtime_c" / f"{k}.c").is_file(), f"{k}.c missing"


def test_support_matrix_is_generated() -> None:
    """runtime_c/SUPPORT_TFLITE.md is `python -m compiler.core.ops_support` output, not hand-written."""
    path = ROOT / "runtime_c" / "SUPPORT_TFLITE.md"
    assert path.read_text() == support_matrix(), "regenerate: python -m compiler.core.ops_support > " + str(path)


def test_shared_models_import() -> None:
    models = sorted((ROOT.parent / "shared" / "models").glob("*.tflite"))
    if not models:
        pytest.skip("shared models not found")
    for m in models:
        load_tflite(m)


def _refusal(g: Graph) -> str:
    with pytest.raises(UnsupportedSchemeError) as e:
        parse_tflite(write_tflite(g), name=g.name)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_refusals_name_op_node_tensor() -> None:
    # conv weights with a zero point (TFLM ignores it: never computed)
    b = G("conv_wzp")
    x = b.input((1, 4, 4, 2))
    w = b.t((3, 1, 1, 2), "int8", [0.02, 0.03, 0.01], [3, 3, 3], np.ones((3, 1, 1, 2), np.int8))
    y = b.t((1, 4, 4, 3), "int8", 0.1, 0)
    b.op("conv2d", [x, w], y, stride=(1, 1), dilation=(1, 1), pads=(0, 0, 0, 0), activation="none")
    msg = _refusal(b.output(y))
    assert "op0_conv2d" not in msg and "node op0_conv_2d (CONV_2D): input 1" in msg and "zero point" in msg
    # int16 activations in an op that only declares int8
    b = G("hard_swish16")
    x = b.input((1, 4, 4, 2), "int16", 0.001, 0)
    y = b.t((1, 4, 4, 2), "int16", 1 / 32768, 0)
    b.op("hard_swish", [x], y)
    msg = _refusal(b.output(y))
    assert "(HARD_SWISH): input 0 't0' is int16" in msg and "supported: int8" in msg
    # a float QUANTIZE that is not at the graph input (the firmware has no float path)
    b = G("mid_float")
    x = b.input((1, 8), "int8", 0.05, 0)
    f = b.t((1, 8), "float32")
    b.op("dequantize", [x], f)
    y = b.t((1, 8), "int8", 0.05, 0)
    b.op("quantize", [f], y)
    msg = _refusal(b.output(y))
    assert "(DEQUANTIZE): output 0" in msg and "graph output" in msg


def test_cli_refuses_at_import(capsys, tmp_path) -> None:
    """plan, compile and run stop at the same line for a model outside the declarations."""
    from compiler import cli

    b = G("hard_swish16")
    x = b.input((1, 4, 4, 2), "int16", 0.001, 0)
    y = b.t((1, 4, 4, 2), "int16", 1 / 32768, 0)
    b.op("hard_swish", [x], y)
    path = tmp_path / "hard_swish16.tflite"
    path.write_bytes(write_tflite(b.output(y)))
    with pytest.raises(ModelError) as e:
        load_tflite(path)
    want = str(e.value)
    for cmd in (["plan", str(path)], ["compile", str(path), "--out", str(tmp_path / "c")],
                ["run", str(path), "--out", str(tmp_path / "r")]):
        assert cli.main([*cmd, "--board", "stm32f405"]) == 2
        assert want in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and not (tmp_path / "r").exists()


# -- ops without an oracle test before ------------------------------------------------------------


@needs_tflm
@pytest.mark.parametrize(
    "shape,perm",
    [((1, 3, 5, 4), (0, 2, 3, 1)), ((1, 3, 5, 4), (0, 3, 1, 2)), ((2, 6, 5), (2, 0, 1)), ((4, 7), (1, 0)),
     ((1, 2, 3, 4), (3, 2, 1, 0))],
)
def test_transpose(shape, perm) -> None:
    b = G("transpose")
    x = b.input(shape, "int8", 0.07, -3)
    y = b.t(tuple(shape[p] for p in perm), "int8", 0.07, -3)
    b.op("transpose", [x], y, perm=perm)
    oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize(
    "shape,dims,out", [((1, 1, 1, 10), (1, 2), (1, 10)), ((1, 5, 1, 3), (2,), (1, 5, 3)), ((1, 1, 6), (0, 1), (6,))]
)
def test_squeeze(shape, dims, out) -> None:
    for dtype, s, z in (("int8", 0.1, 4), ("int16", 1e-3, 0)):
        b = G("squeeze")
        x = b.input(shape, dtype, s, z)
        y = b.t(out, dtype, s, z)
        b.op("reshape", [x], y, squeeze_dims=dims)
        g = oracle(b.output(y))
        assert g.ops[0].kind == "reshape"


@needs_tflm
@pytest.mark.parametrize("value", (-128, -5, 0, 77, 127))
def test_padv2(value: int) -> None:
    b = G("padv2")
    x = b.input((1, 4, 5, 3), "int8", 0.1, -7)
    c = b.t((1,), "int8", 0.1, -7, np.asarray([value], np.int8))
    y = b.t((1, 6, 8, 3), "int8", 0.1, -7)
    b.op("pad", [x, c], y, paddings=((0, 0), (1, 1), (2, 1), (0, 0)))
    oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("scale,zp", [(0.05, 0), (0.031, -17), (0.2, 100)])
def test_float_io_quantize(scale: float, zp: int) -> None:
    """float32 -> QUANTIZE int8 at the input, DEQUANTIZE at the output (both at the model edge)."""
    b = G("float_io")
    x = b.input((1, 6, 6, 3), "float32")
    q = b.t((1, 6, 6, 3), "int8", scale, zp)
    b.op("quantize", [x], q)
    p = b.t((1, 3, 3, 3), "int8", scale, zp)
    b.op("max_pool2d", [q], p, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0), activation="none")
    y = b.t((1, 3, 3, 3), "float32")
    b.op("dequantize", [p], y)
    oracle(b.output(y), n=6)


@needs_tflm
@pytest.mark.parametrize("kind", ("conv2d", "depthwise_conv2d", "fully_connected"))
def test_fused_relu_n1_to_1(kind: str) -> None:
    from compiler.models.builder import GraphBuilder

    b = GraphBuilder(f"{kind}_n1", seed=5)
    x = b.input((1, 6, 6, 4) if kind != "fully_connected" else (1, 12))
    if kind == "conv2d":
        y = b.conv2d(x, 5, 3, activation="relu_n1_to_1")
    elif kind == "depthwise_conv2d":
        y = b.depthwise_conv2d(x, 3, activation="relu_n1_to_1")
    else:
        y = b.fully_connected(x, 7, activation="relu_n1_to_1")
    b.output(y)
    g = b.build(n_calib=4, input_range=(-3.0, 3.0))
    assert g.ops[-1].attrs["activation"] == "relu_n1_to_1"
    oracle(g)


def test_declared_ops_cover_importer() -> None:
    from compiler.frontend import tflite as importer

    assert set(importer.SUPPORTED) == {k for k, d in SUPPORT.items() if not d.refused}  # refused: NEG, EXP


# -- uint8 at the model edges ----------------------------------------------------------------------


@needs_tflm
@pytest.mark.parametrize(
    "s_in,z_in,s_out,z_out",
    [(0.02, 128, 0.02, 0), (0.02, 0, 0.02, -128), (0.013, 131, 0.05, -3), (0.1, 7, 0.0031, 2), (1.0, 255, 0.5, 127)],
)
def test_uint8_quantize(s_in: float, z_in: int, s_out: float, z_out: int) -> None:
    """QUANTIZE uint8 -> int8 and int8 -> uint8, same scale (TFLM's xor-128 path) and rescaling."""
    b = G("u8_to_s8")
    x = b.input((1, 5, 7, 3), "uint8", s_in, z_in)
    y = b.t((1, 5, 7, 3), "int8", s_out, z_out)
    b.op("quantize", [x], y)
    oracle(b.output(y))
    b = G("s8_to_u8")
    x = b.input((1, 5, 7, 3), "int8", s_out, z_out)
    y = b.t((1, 5, 7, 3), "uint8", s_in, z_in)
    b.op("quantize", [x], y)
    oracle(b.output(y))


# -- in the emulator: firmware == reference == TFLite-Micro ------------------------------------------


def qemu_exact(model: Path | bytes, tmp_path: Path, n: int = 3, io: str = "arena") -> dict:
    """Run `model` (a .tflite path or bytes) through `microtile run` in QEMU (firmware vs the
    reference) and the same inputs through TFLM (reference vs TFLM); returns the report."""
    from compiler.pipeline import CompileOptions, make_input_sets, run_model
    from tests.conftest import have_firmware_tools

    why = have_firmware_tools()
    if why is not None:
        pytest.skip(why)
    if not tflm_available():
        pytest.skip("tflite-micro package not installed")
    if isinstance(model, bytes):
        path = tmp_path / "model.tflite"
        path.write_bytes(model)
    else:
        path = model
        if not path.is_file():
            pytest.skip(f"{path} not found")
    report = run_model(path, tmp_path / "out", CompileOptions(board="stm32f405", io=io), n_random=n)
    assert report["bit_exact"], report
    g = load_tflite(path)
    tflm = TflmModel(path)
    for xs in make_input_sets(g, None, n):
        want = tflm.invoke(*xs, n_outputs=len(g.outputs))
        for w, r in zip(want, reference.run(g, xs), strict=True):
            w = np.asarray(w)
            assert w.dtype == r.dtype and np.array_equal(w.reshape(r.shape), r)
    return report


def test_uint8_io_case_in_qemu(tmp_path) -> None:
    """../shared/cases/uint8_io.tflite: uint8 in and out, uint8 buffers in the generated API."""
    qemu_exact(CASES / "uint8_io.tflite", tmp_path)
    header = (tmp_path / "out" / "model.h").read_text()
    assert "int model_invoke(void *arena, const uint8_t *input, uint8_t *output);" in header


def nchw_model(seed: int = 0) -> Graph:
    """A PyTorch-layout model as the TFLite converter writes it: NCHW input, TRANSPOSE to NHWC,
    conv + relu, depthwise, mean, fully connected."""
    rng = np.random.default_rng(seed)
    b = G("nchw_leading_transpose", seed)
    x = b.input((1, 3, 12, 10), "int8", 0.05, -4)
    h = b.t((1, 12, 10, 3), "int8", 0.05, -4)
    b.op("transpose", [x], h, perm=(0, 2, 3, 1))
    w = b.t((6, 3, 3, 3), "int8", rng.uniform(0.005, 0.02, 6), np.zeros(6, np.int64),
            rng.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8))
    bias = b.t((6,), "int32", None, 0, rng.integers(-2000, 2000, 6).astype(np.int32))
    c = b.t((1, 6, 5, 6), "int8", 0.06, -128)
    b.op("conv2d", [h, w, bias], c, stride=(2, 2), dilation=(1, 1), pads=(0, 1, 0, 1), activation="relu")
    dw = b.t((1, 3, 3, 6), "int8", rng.uniform(0.005, 0.02, 6), np.zeros(6, np.int64),
             rng.integers(-127, 128, (1, 3, 3, 6)).astype(np.int8), axis=3)
    d = b.t((1, 6, 5, 6), "int8", 0.04, 3)
    b.op("depthwise_conv2d", [c, dw], d, stride=(1, 1), dilation=(1, 1), pads=(1, 1, 1, 1), activation="none",
         depth_multiplier=1)
    m = b.t((1, 6), "int8", 0.02, 1)
    b.op("mean", [d], m, axes=(1, 2), keep_dims=False)
    fw = b.t((4, 6), "int8", 0.01, 0, rng.integers(-127, 128, (4, 6)).astype(np.int8))
    y = b.t((1, 4), "int8", 0.3, -2)
    b.op("fully_connected", [m, fw], y, activation="none")
    return b.output(y)


@needs_tflm
def test_leading_transpose_model() -> None:
    g = oracle(nchw_model(), n=6)
    assert g.ops[0].kind == "transpose"


# -- int16x8 ---------------------------------------------------------------------------------------


@needs_tflm
@pytest.mark.parametrize(
    "src,dst,s_in,s_out,z_in,z_out",
    [("int8", "int16", 0.05, 0.0005, 3, 0), ("int8", "int16", 0.02, 0.00003, -128, 0),
     ("int16", "int8", 0.0004, 0.05, 0, -7), ("int16", "int8", 0.001, 0.002, 0, 100),
     ("int16", "int16", 0.0004, 0.0011, 0, 0), ("int16", "int16", 0.001, 0.0001, 0, 0)],
)
def test_quantize_16(src: str, dst: str, s_in: float, s_out: float, z_in: int, z_out: int) -> None:
    b = G(f"q_{src}_{dst}")
    x = b.input((1, 4, 6, 5), src, s_in, z_in)
    y = b.t((1, 4, 6, 5), dst, s_out, z_out)
    b.op("quantize", [x], y)
    oracle(b.output(y))


def conv16_graph(
    kernel: tuple[int, int], stride: int, padding: str, dilation: int, bias: str, act: str, seed: int,
    shape: tuple[int, ...] = (1, 9, 8, 3), out_c: int = 4,
) -> Graph:
    """QUANTIZE int8->int16, a 16x8 CONV_2D, QUANTIZE int16->int8 (TFLite's 16x8 mode inside int8)."""
    from compiler.frontend.tflite import same_pads

    rng = np.random.default_rng(seed)
    b = G("conv16", seed)
    x8 = b.input(shape, "int8", 0.05, 2)
    x = b.t(shape, "int16", 0.05 * 128 / 32768 * 1.3, 0)
    b.op("quantize", [x8], x)
    kh, kw = kernel
    w_s = rng.uniform(0.003, 0.02, out_c)
    w = b.t((out_c, kh, kw, shape[3]), "int8", w_s, np.zeros(out_c, np.int64),
            rng.integers(-127, 128, (out_c, kh, kw, shape[3])).astype(np.int8))
    ins = [x, w]
    if bias != "none":
        hi = 1 << (22 if bias == "int64" else 16)
        ins.append(b.t((out_c,), bias, None, 0, rng.integers(-hi, hi, out_c).astype(bias)))
    pads = (0, 0, 0, 0) if padding == "valid" else same_pads(shape[1:3], kernel, (stride, stride), (dilation, dilation))
    oh = (shape[1] + pads[0] + pads[1] - (kh - 1) * dilation - 1) // stride + 1
    ow = (shape[2] + pads[2] + pads[3] - (kw - 1) * dilation - 1) // stride + 1
    s_y = 6.0 * float(np.sqrt(kh * kw * shape[3])) / 32768
    y = b.t((1, oh, ow, out_c), "int16", s_y, 0)
    b.op("conv2d", ins, y, stride=(stride, stride), dilation=(dilation, dilation), pads=pads, activation=act)
    y8 = b.t((1, oh, ow, out_c), "int8", s_y * 200, -1)
    b.op("quantize", [y], y8)
    return b.output(y8, y) if seed % 2 else b.output(y8)


CONV16_CASES = [
    ((3, 3), 1, "same", 1, "int64", "none"),
    ((3, 3), 2, "same", 1, "int64", "relu"),
    ((1, 1), 1, "valid", 1, "int64", "none"),
    ((5, 3), 1, "valid", 2, "int64", "relu6"),
    ((3, 3), 2, "valid", 1, "int32", "none"),
    ((2, 2), 1, "same", 1, "none", "relu_n1_to_1"),
]


@needs_tflm
@pytest.mark.parametrize("kernel,stride,padding,dilation,bias,act", CONV16_CASES)
def test_conv2d_16x8(kernel, stride, padding, dilation, bias, act) -> None:
    for seed in range(2):
        g = oracle(conv16_graph(kernel, stride, padding, dilation, bias, act, seed))
        assert g.t(g.ops[1].outputs[0]).dtype == "int16"


def test_int16_layer_inside_int8_case_in_qemu(tmp_path) -> None:
    """../shared/cases/int16_layer_inside_int8.tflite (QUANTIZE to int16, a 16x8 CONV_2D with
    int64 bias, QUANTIZE back): bit-exact with TFLite-Micro in the emulator."""
    qemu_exact(CASES / "int16_layer_inside_int8.tflite", tmp_path)


def _w8(b: G, shape: tuple[int, ...], axis: int, rng: np.random.Generator) -> str:
    n = shape[axis]
    return b.t(shape, "int8", rng.uniform(0.003, 0.02, n), np.zeros(n, np.int64),
               rng.integers(-127, 128, shape).astype(np.int8), axis=axis)


def _bias(b: G, n: int, bias: str, rng: np.random.Generator) -> list[str]:
    if bias == "none":
        return []
    hi = 1 << (22 if bias == "int64" else 16)
    return [b.t((n,), bias, None, 0, rng.integers(-hi, hi, n).astype(bias))]


@needs_tflm
@pytest.mark.parametrize(
    "kernel,stride,padding,dilation,mult,bias,act",
    [((3, 3), 1, "same", 1, 1, "int64", "none"), ((3, 3), 2, "same", 1, 2, "int64", "relu"),
     ((5, 5), 1, "valid", 1, 1, "int64", "relu6"), ((3, 2), 2, "valid", 2, 1, "none", "none"),
     ((3, 3), 1, "valid", 1, 1, "int32", "none")],
)
def test_depthwise_conv2d_16x8(kernel, stride, padding, dilation, mult, bias, act) -> None:
    from compiler.frontend.tflite import same_pads

    rng = np.random.default_rng(kernel[0] * 10 + stride)
    shape = (1, 10, 9, 4)
    b = G("dw16")
    x = b.input(shape, "int16", 2.5e-4, 0)
    oc = shape[3] * mult
    kh, kw = kernel
    ins = [x, _w8(b, (1, kh, kw, oc), 3, rng), *_bias(b, oc, bias, rng)]
    st = (stride, stride)
    pads = (0, 0, 0, 0) if padding == "valid" else same_pads(shape[1:3], kernel, st, (dilation, dilation))
    oh = (shape[1] + pads[0] + pads[1] - (kh - 1) * dilation - 1) // stride + 1
    ow = (shape[2] + pads[2] + pads[3] - (kw - 1) * dilation - 1) // stride + 1
    y = b.t((1, oh, ow, oc), "int16", 8.0 * kh * kw / 32768, 0)
    b.op("depthwise_conv2d", ins, y, stride=st, dilation=(dilation, dilation), pads=pads, activation=act,
         depth_multiplier=mult)
    if bias == "int32":  # TFLM's int16 depthwise reads the bias as int64: refused, never computed
        with pytest.raises(UnsupportedSchemeError, match="DEPTHWISE_CONV_2D.*input 2"):
            parse_tflite(write_tflite(b.output(y)))
        return
    oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("shape,bias,act", [((1, 20), "int64", "none"), ((3, 16), "int32", "relu"),
                                            ((1, 33), "none", "relu6")])
def test_fully_connected_16x8(shape, bias, act) -> None:
    rng = np.random.default_rng(shape[1])
    b = G("fc16")
    x = b.input(shape, "int16", 2.5e-4, 0)
    w = b.t((7, shape[1]), "int8", 0.01, 0, rng.integers(-127, 128, (7, shape[1])).astype(np.int8))
    y = b.t((shape[0], 7), "int16", 5.0 * np.sqrt(shape[1]) / 32768, 0)
    b.op("fully_connected", [x, w, *_bias(b, 7, bias, rng)], y, activation=act)
    oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("kind", ("add", "mul"))
@pytest.mark.parametrize("sa,sb", [((1, 5, 4, 6), (1, 5, 4, 6)), ((1, 5, 4, 6), (1, 1, 1, 6)),
                                   ((1, 5, 1, 6), (1, 1, 4, 1)), ((2, 7), (2, 7))])
def test_binary_16(kind: str, sa, sb) -> None:
    for act, (s1, s2, so) in zip(("none", "relu", "relu6"), [(1e-4, 3e-4, 4e-4), (2e-4, 2e-4, 1e-4),
                                                             (3e-4, 1e-4, 2e-4)], strict=True):
        if kind == "mul":
            so = s1 * s2 * 32768 * 4
        b = G(f"{kind}16")
        x = b.input(sa, "int16", s1, 0)
        z = b.input(sb, "int16", s2, 0)
        out = tuple(max(p, q) for p, q in zip(sa, sb, strict=True))
        y = b.t(out, "int16", so, 0)
        b.op(kind, [x, z], y, activation=act)
        oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("kind", ("avg_pool2d", "max_pool2d"))
@pytest.mark.parametrize("kernel,stride,padding", [((2, 2), 2, "valid"), ((3, 3), 1, "same"), ((2, 3), 2, "same")])
def test_pool_16(kind: str, kernel, stride: int, padding: str) -> None:
    from compiler.frontend.tflite import same_pads

    for act in ("none", "relu", "relu6"):
        shape = (1, 7, 9, 3)
        st = (stride, stride)
        pads = (0, 0, 0, 0) if padding == "valid" else same_pads(shape[1:3], kernel, st, (1, 1))
        oh = (shape[1] + pads[0] + pads[1] - kernel[0]) // stride + 1
        ow = (shape[2] + pads[2] + pads[3] - kernel[1]) // stride + 1
        b = G(f"{kind}16")
        x = b.input(shape, "int16", 3e-4, 0)
        y = b.t((1, oh, ow, 3), "int16", 3e-4, 0)
        b.op(kind, [x], y, kernel=kernel, stride=st, pads=pads, activation=act)
        oracle(b.output(y))


@needs_tflm
def test_reshape_16() -> None:
    b = G("reshape16")
    x = b.input((1, 4, 3, 2), "int16", 3e-4, 0)
    y = b.t((1, 24), "int16", 3e-4, 0)
    b.op("reshape", [x], y)
    oracle(b.output(y))


def int16_block(seed: int = 0) -> Graph:
    """A mixed int8/int16 graph using every int16 kernel: QUANTIZE up, conv, depthwise, residual
    ADD, MUL by a constant, max and average pool, RESHAPE, FC, QUANTIZE down."""
    rng = np.random.default_rng(seed)
    b = G("int16_block", seed)
    x8 = b.input((1, 8, 8, 3), "int8", 0.05, -3)
    x = b.t((1, 8, 8, 3), "int16", 2.5e-4, 0)
    b.op("quantize", [x8], x)
    c = b.t((1, 8, 8, 6), "int16", 6.0 * np.sqrt(27) / 32768, 0)
    b.op("conv2d", [x, _w8(b, (6, 3, 3, 3), 0, rng), *_bias(b, 6, "int64", rng)], c, stride=(1, 1),
         dilation=(1, 1), pads=(1, 1, 1, 1), activation="relu")
    d = b.t((1, 8, 8, 6), "int16", 6.0 * np.sqrt(27) / 32768 * 2, 0)
    b.op("depthwise_conv2d", [c, _w8(b, (1, 3, 3, 6), 3, rng), *_bias(b, 6, "int64", rng)], d, stride=(1, 1),
         dilation=(1, 1), pads=(1, 1, 1, 1), activation="none", depth_multiplier=1)
    a = b.t((1, 8, 8, 6), "int16", 6.0 * np.sqrt(27) / 32768 * 3, 0)
    b.op("add", [c, d], a, activation="none")
    k = b.t((1, 1, 1, 6), "int16", 1e-4, 0, rng.integers(-20000, 20000, (1, 1, 1, 6)).astype(np.int16))
    m = b.t((1, 8, 8, 6), "int16", 6.0 * np.sqrt(27) / 32768 * 3, 0)
    b.op("mul", [a, k], m, activation="none")
    p = b.t((1, 4, 4, 6), "int16", 6.0 * np.sqrt(27) / 32768 * 3, 0)
    b.op("max_pool2d", [m], p, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0), activation="none")
    v = b.t((1, 2, 2, 6), "int16", 6.0 * np.sqrt(27) / 32768 * 3, 0)
    b.op("avg_pool2d", [p], v, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0), activation="none")
    r = b.t((1, 24), "int16", 6.0 * np.sqrt(27) / 32768 * 3, 0)
    b.op("reshape", [v], r)
    f = b.t((1, 5), "int16", 0.03, 0)
    b.op("fully_connected", [r, b.t((5, 24), "int8", 0.01, 0, rng.integers(-127, 128, (5, 24)).astype(np.int8)),
                             *_bias(b, 5, "int32", rng)], f, activation="none")
    y = b.t((1, 5), "int8", 4.0, 2)
    b.op("quantize", [f], y)
    return b.output(y)


@needs_tflm
def test_int16_block() -> None:
    oracle(int16_block(), n=6)


# -- several inputs and outputs --------------------------------------------------------------------


def multi_io_model() -> Graph:
    """Two inputs (int8, uint8) and three outputs (int8, int8, int16)."""
    b = G("multi_io")
    x = b.input((1, 6, 6, 4), "int8", 0.05, -2)
    u = b.input((1, 6, 6, 4), "uint8", 0.04, 128)
    z = b.t((1, 6, 6, 4), "int8", 0.04, 0)
    b.op("quantize", [u], z)
    s = b.t((1, 6, 6, 4), "int8", 0.08, 1)
    b.op("add", [x, z], s, activation="none")
    p = b.t((1, 3, 3, 4), "int8", 0.08, 1)
    b.op("max_pool2d", [s], p, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0), activation="relu")
    w = b.t((1, 3, 3, 4), "int16", 0.08 / 256, 0)
    b.op("quantize", [p], w)
    return b.output(s, p, w)


@needs_tflm
def test_multi_io_oracle() -> None:
    oracle(multi_io_model(), n=4)


def test_multi_io_in_qemu(tmp_path) -> None:
    """Several inputs and outputs: typed parameters in the generated API, the harness, report.json."""
    report = qemu_exact(write_tflite(multi_io_model()), tmp_path)
    assert [t["dtype"] for t in report["model_inputs"]] == ["int8", "uint8"]
    assert [t["dtype"] for t in report["model_outputs"]] == ["int8", "int8", "int16"]
    assert len(report["max_abs_diff_per_output"]) == 3
    header = (tmp_path / "out" / "model.h").read_text()
    assert ("int model_invoke(void *arena, const int8_t *input0, const uint8_t *input1, int8_t *output0, "
            "int8_t *output1, int16_t *output2);") in header
    assert "#define MODEL_NUM_OUTPUTS 3" in header


def test_multi_io_npz_input(tmp_path) -> None:
    """`--input X.npz` for a model with several inputs: arrays by input name or position."""
    from compiler.pipeline import make_input_sets

    g = load_tflite_bytes(write_tflite(multi_io_model()), tmp_path)
    a = np.arange(2 * 144, dtype=np.int64).reshape(2, 1, 6, 6, 4) % 200 - 100
    u = np.full((2, 1, 6, 6, 4), 0.5, np.float32)  # float: quantized with the input's scale
    np.savez(tmp_path / "x.npz", a, u)
    sets = make_input_sets(g, tmp_path / "x.npz")
    assert len(sets) == 2 and sets[0][0].dtype == np.int8 and sets[0][1].dtype == np.uint8
    # TFLite's AffineQuantize: float32 0.5 / 0.04 = 12.5, std::round half away from zero -> 13
    assert int(sets[1][1].flat[0]) == 13 + 128
    np.savez(tmp_path / "bad.npz", a)
    with pytest.raises(InputError, match="no array for model input 1"):
        make_input_sets(g, tmp_path / "bad.npz")


def load_tflite_bytes(buf: bytes, tmp_path: Path) -> Graph:
    path = tmp_path / "m.tflite"
    path.write_bytes(buf)
    return load_tflite(path)


# -- more int8 (and int16) ops ----------------------------------------------------------------------


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize("sa,sb", [((1, 5, 4, 6), (1, 5, 4, 6)), ((1, 5, 4, 6), (1, 1, 1, 6)),
                                   ((1, 1, 4, 1), (1, 5, 1, 6)), ((3, 7), (3, 7))])
def test_sub(dtype: str, sa, sb) -> None:
    zp = 0 if dtype == "int16" else None
    base = 1e-4 if dtype == "int16" else 0.03
    for act, (s1, s2, so, z1, z2, zo) in zip(
        ("none", "relu", "relu6"),
        [(1.0, 3.0, 4.0, 3, -7, 1), (2.0, 2.0, 1.0, -128, 0, -5), (3.0, 1.0, 2.0, 100, 4, -128)], strict=True
    ):
        b = G(f"sub_{dtype}")
        x = b.input(sa, dtype, s1 * base, zp if zp is not None else z1)
        z = b.input(sb, dtype, s2 * base, zp if zp is not None else z2)
        out = tuple(max(p, q) for p, q in zip(sa, sb, strict=True))
        y = b.t(out, dtype, so * base, zp if zp is not None else zo)
        b.op("sub", [x, z], y, activation=act)
        oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("kind", ("maximum", "minimum"))
@pytest.mark.parametrize("sa,sb", [((1, 5, 4, 6), (1, 5, 4, 6)), ((1, 5, 4, 6), (1, 1, 1, 6)), ((2, 9), (1, 9))])
def test_maximum_minimum(kind: str, sa, sb) -> None:
    b = G(kind)
    x = b.input(sa, "int8", 0.05, 3)
    z = b.input(sb, "int8", 0.05, 3)
    y = b.t(tuple(max(p, q) for p, q in zip(sa, sb, strict=True)), "int8", 0.05, 3)
    b.op(kind, [x, z], y)
    oracle(b.output(y))
    b = G(f"{kind}16")
    x = b.input(sa, "int16", 3e-4, 0)
    z = b.input(sb, "int16", 3e-4, 0)
    y = b.t(tuple(max(p, q) for p, q in zip(sa, sb, strict=True)), "int16", 3e-4, 0)
    b.op(kind, [x, z], y)
    oracle(b.output(y))
    b = G(f"{kind}_const")  # against a constant (as ReLU-like clamps are exported)
    x = b.input(sa, "int8", 0.05, 3)
    c = b.t(sb, "int8", 0.05, 3, np.random.default_rng(1).integers(-128, 128, sb).astype(np.int8))
    y = b.t(tuple(max(p, q) for p, q in zip(sa, sb, strict=True)), "int8", 0.05, 3)
    b.op(kind, [x, c], y)
    oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize("shape,begin,size", [((1, 6, 5, 4), (0, 1, 2, 0), (1, 3, 2, 4)),
                                              ((1, 6, 5, 4), (0, 0, 0, 1), (1, 6, 5, 2)), ((4, 9), (1, 3), (2, 6))])
def test_slice(dtype: str, shape, begin, size) -> None:
    s, z = (3e-4, 0) if dtype == "int16" else (0.05, -4)
    b = G(f"slice_{dtype}")
    x = b.input(shape, dtype, s, z)
    y = b.t(size, dtype, s, z)
    b.op("slice", [x], y, begin=begin, size=size)
    oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize(
    "shape,st,out",
    [((1, 6, 5, 4), {"begin": [0, 1, -3, 0], "end": [1, 5, 5, 3]}, (1, 4, 3, 3)),
     ((1, 6, 5, 4), {"begin": [0, 2, 0, 0], "end": [1, 3, 0, 0], "end_mask": 0b1100, "shrink_axis_mask": 0b0010},
      (1, 5, 4)),
     ((3, 8), {"begin": [1, 0], "end": [0, -2], "begin_mask": 0b10, "end_mask": 0b01}, (2, 6))],
)
def test_strided_slice(dtype: str, shape, st, out) -> None:
    s, z = (3e-4, 0) if dtype == "int16" else (0.05, -4)
    b = G(f"strided_slice_{dtype}")
    x = b.input(shape, dtype, s, z)
    y = b.t(out, dtype, s, z)
    b.op("slice", [x], y, begin=(0,) * len(shape), size=out, strided=st)  # attrs re-derived at import
    oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize("shape,axis,out", [((1, 10), 1, (1, 1, 10)), ((1, 4, 6), -1, (1, 4, 6, 1))])
def test_expand_dims(dtype: str, shape, axis, out) -> None:
    s, z = (3e-4, 0) if dtype == "int16" else (0.05, -4)
    b = G(f"expand_{dtype}")
    x = b.input(shape, dtype, s, z)
    y = b.t(out, dtype, s, z)
    b.op("reshape", [x], y, expand_axis=axis)
    oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("shape,perm", [((1, 3, 5, 4), (0, 2, 3, 1)), ((2, 6, 5), (2, 0, 1)), ((4, 7), (1, 0))])
def test_transpose_16(shape, perm) -> None:
    b = G("transpose16")
    x = b.input(shape, "int16", 3e-4, 0)
    y = b.t(tuple(shape[p] for p in perm), "int16", 3e-4, 0)
    b.op("transpose", [x], y, perm=perm)
    oracle(b.output(y))


def data_ops_model(seed: int = 0) -> Graph:
    """SUB, LEAKY_RELU, MAXIMUM, MINIMUM, ABS, SLICE, STRIDED_SLICE (shrink), EXPAND_DIMS in int8,
    then QUANTIZE to int16 and TRANSPOSE, SLICE, SUB (constant), LEAKY_RELU, ABS in int16, back to int8."""
    rng = np.random.default_rng(seed)
    b = G("data_ops", seed)
    x = b.input((1, 6, 5, 4), "int8", 0.05, -3)
    z = b.input((1, 1, 5, 4), "int8", 0.04, 5)
    d0 = b.t((1, 6, 5, 4), "int8", 0.08, 2)
    b.op("sub", [x, z], d0, activation="none")
    d = b.t((1, 6, 5, 4), "int8", 0.08, 2)
    b.op("leaky_relu", [d0], d, alpha=0.1)
    c = b.t((1, 1, 1, 4), "int8", 0.08, 2, rng.integers(-60, 60, (1, 1, 1, 4)).astype(np.int8))
    mx = b.t((1, 6, 5, 4), "int8", 0.08, 2)
    b.op("maximum", [d, c], mx)
    mn = b.t((1, 6, 5, 4), "int8", 0.08, 2)
    b.op("minimum", [mx, b.t((1, 6, 5, 4), "int8", 0.08, 2, rng.integers(-128, 128, (1, 6, 5, 4)).astype(np.int8))],
         mn)
    ab = b.t((1, 6, 5, 4), "int8", 0.06, -100)
    b.op("abs", [mn], ab)
    sl = b.t((1, 4, 3, 4), "int8", 0.06, -100)
    b.op("slice", [ab], sl, begin=(0, 1, 1, 0), size=(1, 4, 3, 4))
    ss = b.t((1, 3, 4), "int8", 0.06, -100)
    b.op("slice", [sl], ss, begin=(0,) * 4, size=(1, 3, 4),
         strided={"begin": [0, 1, 0, 0], "end": [1, 2, 0, 0], "end_mask": 0b1100, "shrink_axis_mask": 0b0010})
    e = b.t((1, 3, 4, 1), "int8", 0.06, -100)
    b.op("reshape", [ss], e, expand_axis=3)
    w = b.t((1, 3, 4, 1), "int16", 0.08 * 256 / 32768, 0)
    b.op("quantize", [e], w)
    t = b.t((1, 4, 1, 3), "int16", 0.08 * 256 / 32768, 0)
    b.op("transpose", [w], t, perm=(0, 2, 3, 1))
    s2 = b.t((1, 3, 1, 2), "int16", 0.08 * 256 / 32768, 0)
    b.op("slice", [t], s2, begin=(0, 1, 0, 1), size=(1, 3, 1, 2))
    k = b.t((1, 1, 1, 2), "int16", 1e-3, 0, np.asarray([[[[1500, -2500]]]], np.int16))
    u0 = b.t((1, 3, 1, 2), "int16", 0.08 * 256 / 32768 * 2, 0)
    b.op("sub", [s2, k], u0, activation="none")
    u1 = b.t((1, 3, 1, 2), "int16", 0.08 * 256 / 32768 * 2, 0)
    b.op("leaky_relu", [u0], u1, alpha=0.3)
    u = b.t((1, 3, 1, 2), "int16", 0.08 * 256 / 32768 * 3, 0)
    b.op("abs", [u1], u)
    y = b.t((1, 3, 1, 2), "int8", 0.1, -1)
    b.op("quantize", [u], y)
    return b.output(y)


@needs_tflm
def test_data_ops_oracle() -> None:
    oracle(data_ops_model(), n=6)


@needs_tflm
def test_float_io_quantize_16() -> None:
    """float32 -> QUANTIZE int16 at the input, DEQUANTIZE int16 -> float32 at the output."""
    b = G("float_io16")
    x = b.input((1, 6, 6, 3), "float32")
    q = b.t((1, 6, 6, 3), "int16", 4.0 / 32768, 0)
    b.op("quantize", [x], q)
    p = b.t((1, 3, 3, 3), "int16", 4.0 / 32768, 0)
    b.op("max_pool2d", [q], p, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0), activation="none")
    y = b.t((1, 3, 3, 3), "float32")
    b.op("dequantize", [p], y)
    oracle(b.output(y), n=6)


def pad_concat_16_model() -> Graph:
    b = G("pad_concat16")
    x0 = b.input((1, 4, 5, 3), "int16", 3e-4, 0)
    z = b.input((1, 4, 5, 2), "int16", 3e-4, 0)
    k = b.t((1, 1, 1, 3), "int16", 3e-4, 0, np.asarray([[[[-200, 0, 300]]]], np.int16))
    x1 = b.t((1, 4, 5, 3), "int16", 3e-4, 0)
    b.op("maximum", [x0, k], x1)
    x = b.t((1, 4, 5, 3), "int16", 3e-4, 0)
    b.op("minimum", [x1, b.t((1, 1, 5, 1), "int16", 3e-4, 0, np.asarray([[[[9000], [-3], [40], [0], [7]]]],
                                                                         np.int16))], x)
    p = b.t((1, 6, 6, 3), "int16", 3e-4, 0)
    b.op("pad", [x], p, paddings=((0, 0), (1, 1), (0, 1), (0, 0)))
    c = b.t((1, 4, 5, 5), "int16", 3e-4, 0)
    b.op("concat", [x, z], c, axis=3, activation="none")
    c2 = b.t((1, 8, 5, 3), "int16", 3e-4, 0)
    b.op("concat", [x, x], c2, axis=1, activation="none")
    m = b.t((1, 5), "int16", 1e-4, 0)
    b.op("mean", [c], m, axes=(1, 2), keep_dims=False)
    r = b.t((1, 5), "int16", 2e-4, 0)
    b.op("relu", [m], r, min=0.0, max=float("inf"))
    r6 = b.t((1, 6, 6, 3), "int16", 3e-4, 0)
    b.op("relu", [p], r6, min=0.0, max=6.0)
    return b.output(p, c, c2, r, r6)


@needs_tflm
def test_pad_concat_16() -> None:
    oracle(pad_concat_16_model())


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize("alpha", (0.0, 0.01, 0.2, 0.5, 1.0))
def test_leaky_relu(dtype: str, alpha: float) -> None:
    for s_x, s_y, z_x, z_y in [(0.05, 0.05, 3, 3), (0.04, 0.02, -20, -100), (0.1, 0.3, 100, -7)]:
        if dtype == "int16":
            s_x, s_y, z_x, z_y = s_x / 256, s_y / 256, 0, 0
        b = G(f"leaky_{dtype}")
        x = b.input((1, 6, 5, 4), dtype, s_x, z_x)
        y = b.t((1, 6, 5, 4), dtype, s_y, z_y)
        b.op("leaky_relu", [x], y, alpha=alpha)
        oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8",))
@pytest.mark.parametrize("shape,axis,indices", [((1, 6, 5, 4), 3, [3, 0, 0, 2]), ((7, 9), 0, [[6, 1], [0, 0], [2, 5]]),
                                                ((1, 6, 5, 4), 1, [5]), ((10,), 0, [9, 8, 7, 1])])
def test_gather(dtype: str, shape, axis: int, indices) -> None:
    s, z = (3e-4, 0) if dtype == "int16" else (0.05, -4)
    b = G(f"gather_{dtype}")
    x = b.input(shape, dtype, s, z)
    out = tuple(np.take(np.zeros(shape), np.asarray(indices), axis=axis).shape)
    y = b.t(out, dtype, s, z)
    b.op("gather", [x], y, axis=axis, indices=indices)
    oracle(b.output(y))


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize("corners,half", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("hw,out", [((4, 5), (8, 10)), ((5, 7), (3, 4)), ((3, 3), (7, 5)), ((1, 1), (2, 3))])
def test_resize_nearest(dtype: str, corners: bool, half: bool, hw, out) -> None:
    s, z = (3e-4, 0) if dtype == "int16" else (0.05, -4)
    b = G(f"resize_{dtype}")
    x = b.input((1, *hw, 3), dtype, s, z)
    y = b.t((1, *out, 3), dtype, s, z)
    b.op("resize_nearest", [x], y, align_corners=corners, half_pixel_centers=half)
    oracle(b.output(y))


def resize_gather_model() -> Graph:
    b = G("resize_gather")
    x = b.input((1, 4, 5, 3), "int8", 0.05, -4)
    r = b.t((1, 8, 10, 3), "int8", 0.05, -4)
    b.op("resize_nearest", [x], r, align_corners=False, half_pixel_centers=True)
    gt = b.t((1, 8, 10, 4), "int8", 0.05, -4)
    b.op("gather", [r], gt, axis=3, indices=[2, 0, 0, 1])
    th = b.t((1, 8, 10, 4), "int8", 1 / 128, 0)
    b.op("tanh", [gt], th)
    w = b.t((1, 8, 10, 4), "int16", 1 / 128 * 256 / 32768, 0)
    b.op("quantize", [th], w)
    r2 = b.t((1, 5, 7, 4), "int16", 1 / 128 * 256 / 32768, 0)
    b.op("resize_nearest", [w], r2, align_corners=True, half_pixel_centers=False)
    y = b.t((1, 5, 7, 4), "int8", 0.01, 1)
    b.op("quantize", [r2], y)
    return b.output(y)


@needs_tflm
def test_resize_gather_oracle() -> None:
    oracle(resize_gather_model())


@needs_tflm
@pytest.mark.parametrize("rng", [(-8.0, 8.0), (-1.0, 1.0), (-10.0, 3.0), (0.5, 20.0), (-0.1, 0.1), (-4.0, 4.0)])
def test_tanh(rng: tuple[float, float]) -> None:
    lo, hi = rng
    scale = (hi - lo) / 255
    zp = int(round(-128 - lo / scale))
    b = G("tanh")
    x = b.input((1, 8, 8, 4), "int8", scale, max(-128, min(127, zp)))
    y = b.t((1, 8, 8, 4), "int8", 1 / 128, 0)
    b.op("tanh", [x], y)
    oracle(b.output(y))


def split_unpack_pack_model(dtype: str) -> Graph:
    """SPLIT, SPLIT_V (a -1 size), UNPACK and PACK round a (1, 6, 4, 6) tensor (written as
    TFLite's multi-output ops; imported as slices, reshapes and a concat)."""
    s, z = (3e-4, 0) if dtype == "int16" else (0.05, -4)
    b = G(f"split_{dtype}")
    x = b.input((1, 6, 4, 6), dtype, s, z)
    parts = []
    for k in range(3):  # SPLIT axis 3 into 3
        o = b.t((1, 6, 4, 2), dtype, s, z)
        b.op("slice", [x], o, begin=(0, 0, 0, 2 * k), size=(1, 6, 4, 2),
             tflite_split={"op": "SPLIT", "group": "a", "index": k, "axis": 3})
        parts.append(o)
    sv = []
    for k, (st, n) in enumerate(((0, 1), (1, 3), (4, 2))):  # SPLIT_V axis 1: sizes 1, -1 (3), 2
        o = b.t((1, n, 4, 2), dtype, s, z)
        b.op("slice", [parts[1]], o, begin=(0, st, 0, 0), size=(1, n, 4, 2),
             tflite_split={"op": "SPLIT_V", "group": "b", "index": k, "axis": 1, "sizes": [1, -1, 2]})
        sv.append(o)
    un = []
    for k in range(4):  # UNPACK axis 2: four (1, 3, 2) tensors
        o = b.t((1, 3, 2), dtype, s, z)
        b.op("slice", [sv[1]], o, begin=(0, 0, k, 0), size=(1, 3, 1, 2),
             tflite_split={"op": "UNPACK", "group": "c", "index": k, "axis": 2})
        un.append(o)
    pk = b.t((1, 3, 4, 2), dtype, s, z)
    b.op("concat", [un[3], un[0], un[2], un[1]], pk, axis=2, activation="none", pack=True)  # PACK axis 2
    return b.output(parts[0], pk, sv[2])


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_split_unpack_pack(dtype: str) -> None:
    g = oracle(split_unpack_pack_model(dtype))
    assert {op.kind for op in g.ops} == {"slice", "reshape", "concat"}


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
def test_abs(dtype: str) -> None:
    for s_x, s_y, z_x, z_y in [(0.05, 0.05, 3, -128), (0.04, 0.02, -20, -100), (0.1, 0.3, 100, 7), (0.02, 0.05, 0, 0)]:
        if dtype == "int16":
            s_x, s_y, z_x, z_y = s_x / 256, s_y / 256, 0, 0
        b = G(f"abs_{dtype}")
        x = b.input((1, 6, 5, 4), dtype, s_x, z_x)
        y = b.t((1, 6, 5, 4), dtype, s_y, z_y)
        b.op("abs", [x], y)
        oracle(b.output(y))


# -- one firmware for every model above (keeps the emulator's CI share to one run) -----------------


def union(*graphs: Graph) -> Graph:
    """Independent graphs side by side in one graph (several inputs and outputs)."""
    import copy

    u = Graph("op_zoo")
    for k, g in enumerate(graphs):
        ren = {n: f"m{k}_{n}" for n in g.tensors}
        for n, t in g.tensors.items():
            t2 = copy.copy(t)
            t2.name = ren[n]
            u.add_tensor(t2)
        for op in g.ops:
            attrs = dict(op.attrs)
            if "tflite_split" in attrs:  # the writer's op groups are per model
                attrs["tflite_split"] = {**attrs["tflite_split"], "group": f"m{k}_{attrs['tflite_split']['group']}"}
            u.add_op(Op(op.kind, f"m{k}_{op.name}", [ren.get(n, n) for n in op.inputs], [ren[n] for n in op.outputs],
                        attrs))
        u.inputs += [ren[n] for n in g.inputs]
        u.outputs += [ren[n] for n in g.outputs]
    u.verify()
    return u


def zoo() -> Graph:
    kernel, stride, padding, dilation, bias, act = CONV16_CASES[4]
    return union(nchw_model(), conv16_graph(kernel, stride, padding, dilation, bias, act, seed=0), int16_block(),
                 transpose_conv_graph((3, 3), 2, "same", True, "relu"), transpose_conv_graph((4, 3), 2, "valid", False,
                                                                                               "none", seed=1),
                 transpose_conv16_graph((3, 3), 2, "same", "int64"),
                 data_ops_model(), pad_concat_16_model(), resize_gather_model(), split_unpack_pack_model("int8"),
                 split_unpack_pack_model("int16"))


def test_op_zoo_in_qemu(tmp_path) -> None:
    """Every model of this file in one firmware (external I/O, many inputs and outputs): leading
    TRANSPOSE, 16x8 conv (int32 bias), the int16 block (int64 bias), the data-movement ops, int16
    pad/concat, resize/gather/tanh, split/unpack/pack; bit-exact with the reference and TFLM."""
    report = qemu_exact(write_tflite(zoo()), tmp_path, io="external")
    assert len(report["model_outputs"]) == len(zoo().outputs)


@needs_tflm
@pytest.mark.parametrize("shape,keep", [((1, 6, 5, 8), True), ((1, 7, 7, 16), False), ((1, 1, 9, 3), True)])
def test_mean_16(shape, keep: bool) -> None:
    for s_x, s_y in [(3e-4, 3e-4), (3e-4, 1e-4), (2e-4, 5e-4)]:
        b = G("mean16")
        x = b.input(shape, "int16", s_x, 0)
        y = b.t((1, 1, 1, shape[3]) if keep else (1, shape[3]), "int16", s_y, 0)
        b.op("mean", [x], y, axes=(1, 2), keep_dims=keep)
        oracle(b.output(y))


def test_mean_and_pad_forms_refused_at_import() -> None:
    b = G("mean_c")
    x = b.input((1, 4, 4, 6), "int8", 0.1, 0)
    y = b.t((1, 4, 4), "int8", 0.1, 0)
    b.op("mean", [x], y, axes=(3,), keep_dims=False)
    with pytest.raises(ModelError, match=r"node op0_mean \(MEAN\): axes \(3,\)"):
        parse_tflite(write_tflite(b.output(y)))
    b = G("pad_c")
    x = b.input((1, 4, 4, 6), "int8", 0.1, 0)
    y = b.t((1, 4, 4, 8), "int8", 0.1, 0)
    b.op("pad", [x], y, paddings=((0, 0), (0, 0), (0, 0), (1, 1)))
    with pytest.raises(ModelError, match=r"node op0_pad \(PAD\): paddings"):
        parse_tflite(write_tflite(b.output(y)))


def test_kernel_shapes_refused_at_import() -> None:
    """Shapes the C kernels do not take (batch > 1 for the view kernels, rank > 4) are refused at
    import, so `plan` refuses them as `compile` would."""
    b = G("batch2")
    x = b.input((2, 4, 4, 3), "int8", 0.1, 0)
    y = b.t((2, 2, 2, 3), "int8", 0.1, 0)
    b.op("max_pool2d", [x], y, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0), activation="none")
    with pytest.raises(ModelError, match=r"node op0_max_pool_2d \(MAX_POOL_2D\): batch 2 > 1"):
        parse_tflite(write_tflite(b.output(y)))
    b = G("rank5")
    x = b.input((1, 2, 3, 4, 5), "int8", 0.1, 0)
    y = b.t((1, 2, 3, 5, 4), "int8", 0.1, 0)
    b.op("transpose", [x], y, perm=(0, 1, 2, 4, 3))
    with pytest.raises(ModelError, match="rank > 4"):
        parse_tflite(write_tflite(b.output(y)))


@needs_tflm
@pytest.mark.parametrize("hi", (float("inf"), 6.0))
def test_relu_16(hi: float) -> None:
    for s_x, s_y in [(3e-4, 3e-4), (4e-4, 2e-4), (1e-4, 5e-4)]:
        b = G("relu16")
        x = b.input((1, 6, 5, 4), "int16", s_x, 0)
        y = b.t((1, 6, 5, 4), "int16", s_x if hi == 6.0 else s_y, 0)
        b.op("relu", [x], y, min=0.0, max=hi)
        oracle(b.output(y))


def transpose_conv_graph(kernel, stride: int, padding: str, bias: bool, act: str, seed: int = 0) -> Graph:
    from compiler.frontend.tflite import same_pads

    rng = np.random.default_rng(seed)
    b = G("tconv", seed)
    shape = (1, 4, 5, 3)
    x = b.input(shape, "int8", 0.05, -3)
    kh, kw = kernel
    oh = shape[1] * stride if padding == "same" else (shape[1] - 1) * stride + kh
    ow = shape[2] * stride if padding == "same" else (shape[2] - 1) * stride + kw
    pads = same_pads((oh, ow), kernel, (stride, stride), (1, 1)) if padding == "same" else (0, 0, 0, 0)
    ins = [x, _w8(b, (4, kh, kw, 3), 0, rng)]
    if bias:
        ins.append(b.t((4,), "int32", None, 0, rng.integers(-3000, 3000, 4).astype(np.int32)))
    y = b.t((1, oh, ow, 4), "int8", 0.08, 5)
    b.op("transpose_conv", ins, y, stride=(stride, stride), pads=pads, activation=act)
    return b.output(y)


@needs_tflm
@pytest.mark.parametrize("kernel,stride,padding,bias,act", [
    ((3, 3), 2, "same", True, "none"), ((3, 3), 1, "same", False, "none"), ((2, 2), 2, "valid", True, "none"),
    ((4, 3), 2, "valid", False, "none"), ((5, 5), 3, "same", True, "none"), ((3, 3), 2, "same", True, "relu"),
])
def test_transpose_conv(kernel, stride: int, padding: str, bias: bool, act: str) -> None:
    oracle(transpose_conv_graph(kernel, stride, padding, bias, act))


def transpose_conv16_graph(kernel, stride: int, padding: str, bias: str, seed: int = 0) -> Graph:
    from compiler.frontend.tflite import same_pads

    rng = np.random.default_rng(seed)
    b = G("tconv16", seed)
    shape = (1, 4, 5, 3)
    x = b.input(shape, "int16", 2.5e-4, 0)
    kh, kw = kernel
    oh = shape[1] * stride if padding == "same" else (shape[1] - 1) * stride + kh
    ow = shape[2] * stride if padding == "same" else (shape[2] - 1) * stride + kw
    pads = same_pads((oh, ow), kernel, (stride, stride), (1, 1)) if padding == "same" else (0, 0, 0, 0)
    y = b.t((1, oh, ow, 4), "int16", 6.0 * np.sqrt(kh * kw * 3) / 32768, 0)
    b.op("transpose_conv", [x, _w8(b, (4, kh, kw, 3), 0, rng), *_bias(b, 4, bias, rng)], y, stride=(stride, stride),
         pads=pads, activation="none", dilation=(1, 1))
    return b.output(y)


@needs_tflm
@pytest.mark.parametrize("kernel,stride,padding,bias", [((3, 3), 2, "same", "int64"), ((2, 2), 2, "valid", "none"),
                                                        ((3, 3), 1, "same", "int32")])
def test_transpose_conv_16x8(kernel, stride: int, padding: str, bias: str) -> None:
    g = transpose_conv16_graph(kernel, stride, padding, bias)
    if bias == "int32":  # TFLM's int16 transpose conv reads the bias as int64: refused, never computed
        with pytest.raises(UnsupportedSchemeError, match="TRANSPOSE_CONV.*input 3"):
            parse_tflite(write_tflite(g))
        return
    oracle(g)
