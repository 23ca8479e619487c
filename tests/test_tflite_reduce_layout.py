"""TFLite layout and reduction ops against TFLite-Micro, byte for byte.

STRIDED_SLICE with any non-zero (and negative) strides, DEPTH_TO_SPACE, SPACE_TO_DEPTH, SUM,
REDUCE_MAX, ARG_MAX, ARG_MIN, BATCH_MATMUL and RESIZE_BILINEAR: each test builds a small graph,
writes it with `compiler.frontend.tflite_writer`, imports it (the declarations of
`compiler/core/ops_support.py` checked as `plan`/`compile`/`run` check them) and compares
`compiler.golden.reference` with the `tflite-micro` interpreter on random inputs (and, for ARG_MAX/MIN,
inputs full of ties). Refusals are one line naming op, node and tensor. `test_layout_model_in_qemu`
runs one graph holding several of these ops in the emulator, bit-exact with TFLM. Two importer fixes
found by mutating that graph (opcodes read as TFLM reads them; constant graph outputs refused) close
the file.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler.core.ir import Graph
from compiler.errors import ModelError
from compiler.frontend.tflite import parse_tflite
from compiler.frontend.tflite_writer import write_tflite
from compiler.golden import reference
from compiler.golden.tflm import TflmModel
from tests.test_tflite_support import G, needs_tflm, oracle, qemu_exact

Q = {"int8": [(0.05, -4), (0.02, 0), (0.1, 127), (0.03, -128)], "int16": [(3e-4, 0), (1e-3, 0)]}


def oracle_with(g: Graph, inputs: list[list[np.ndarray]]) -> Graph:
    """Like tests.test_tflite_support.oracle with the given inputs (per trial, one array per input)."""
    buf = write_tflite(g)
    imported = parse_tflite(buf, name=g.name)
    model = TflmModel(buf)
    for xs in inputs:
        want = model.invoke(*xs, n_outputs=len(imported.outputs))
        for w, r in zip(want, reference.run(imported, xs), strict=True):
            w = np.asarray(w)
            assert w.dtype == r.dtype and np.array_equal(w.reshape(r.shape), r), (xs, w, r)
    return imported


# -- STRIDED_SLICE ------------------------------------------------------------------------------

SS_CASES = [
    ((1, 7, 6, 5), dict(begin=[0, 1, 0, 0], end=[1, 7, 6, 5], strides=[1, 2, 2, 1])),
    ((1, 7, 6, 5), dict(begin=[0, -1, 5, 4], end=[1, -8, 0, 0], strides=[1, -1, -2, -3])),
    ((1, 7, 6, 5), dict(begin=[0, 0, 0, 1], end=[1, 0, 0, 5], strides=[1, -2, 3, 2], begin_mask=0b0110,
                        end_mask=0b0110)),
    ((2, 9), dict(begin=[1, -2], end=[2, 0], strides=[1, -3], shrink_axis_mask=0b01)),
    ((9,), dict(begin=[8], end=[-10], strides=[-2])),
    ((1, 5, 8, 3), dict(begin=[0, 0, 1, 0], end=[1, 5, 8, 3], strides=[1, 1, 3, 1])),
    ((4, 6, 5), dict(begin=[0, 4, 3], end=[4, -7, 5], strides=[2, -1, 2], begin_mask=0b100)),
    ((1, 6, 5, 4), dict(begin=[0, 10, -10, 0], end=[1, -10, 10, 4], strides=[1, -2, 2, 1])),
    ((1, 6, 5, 4), dict(begin=[0, 2, 0, 3], end=[1, 3, 5, 0], strides=[1, 1, 2, -1], shrink_axis_mask=0b0010,
                        end_mask=0b1000)),
    ((1, 6, 5, 4), dict(begin=[0, 1, 2, 0], end=[1, 5, 4, 4], strides=[1, 1, 1, 1])),  # unit: a plain slice
]


def _numpy_shape(shape, st) -> tuple[int, ...]:
    """The output shape by Python slicing (an independent derivation of TF's index rules)."""
    idx = []
    for d in range(len(shape)):
        if st.get("shrink_axis_mask", 0) >> d & 1:
            idx.append(st["begin"][d])
            continue
        b = None if st.get("begin_mask", 0) >> d & 1 else st["begin"][d]
        e = None if st.get("end_mask", 0) >> d & 1 else st["end"][d]
        idx.append(slice(b, e, st["strides"][d]))
    return np.empty(shape)[tuple(idx)].shape


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize("case", range(len(SS_CASES)))
def test_strided_slice(dtype: str, case: int) -> None:
    shape, st = SS_CASES[case]
    s, z = Q[dtype][case % len(Q[dtype])]
    b = G(f"ss_{dtype}")
    x = b.input(shape, dtype, s, z)
    y = b.t(_numpy_shape(shape, st), dtype, s, z)
    b.op("strided_slice", [x], y, begin=(0,), steps=(1,), size=(1,), strided=st)  # attrs re-derived at import
    g = oracle(b.output(y), n=3)
    want = "slice" if all(v == 1 for v in st["strides"]) else "strided_slice"
    assert [o.kind for o in g.ops] == [want]


def test_strided_slice_refusals() -> None:
    for st, why in ((dict(begin=[0, 0], end=[2, 4], strides=[1, 0]), "zero stride"),
                    (dict(begin=[0, 3], end=[2, 0], strides=[1, -1], shrink_axis_mask=0b10), "negative stride"),
                    (dict(begin=[0, 3], end=[2, 3], strides=[1, 1]), "selects no element")):
        b = G("ss_bad")
        x = b.input((2, 4), "int8", 0.1, 0)
        y = b.t((2, 1), "int8", 0.1, 0)
        b.op("strided_slice", [x], y, begin=(0,), steps=(1,), size=(1,), strided=st)
        with pytest.raises(ModelError, match=rf"node op0_strided_slice \(STRIDED_SLICE\) tensor 't0': .*{why}") as e:
            parse_tflite(write_tflite(b.output(y)))
        assert "\n" not in str(e.value)


# -- DEPTH_TO_SPACE / SPACE_TO_DEPTH ----------------------------------------------------------------


@needs_tflm
@pytest.mark.parametrize("kind,shape,bs", [
    ("depth_to_space", (1, 3, 4, 8), 2), ("depth_to_space", (1, 2, 2, 27), 3), ("depth_to_space", (2, 2, 3, 4), 2),
    ("depth_to_space", (1, 3, 3, 5), 1),
    ("space_to_depth", (1, 6, 8, 2), 2), ("space_to_depth", (1, 6, 9, 3), 3), ("space_to_depth", (2, 4, 4, 1), 2),
])  # fmt: skip
def test_depth_space(kind: str, shape, bs: int) -> None:
    n, h, w, c = shape
    out = (n, h * bs, w * bs, c // (bs * bs)) if kind == "depth_to_space" else (n, h // bs, w // bs, c * bs * bs)
    b = G(kind)
    x = b.input(shape, "int8", 0.05, -7)
    y = b.t(out, "int8", 0.05, -7)
    b.op(kind, [x], y, block_size=bs)
    oracle(b.output(y))


# -- SUM / REDUCE_MAX -------------------------------------------------------------------------------

REDUCE_CASES = [((1, 5, 6, 7), (1, 2)), ((1, 5, 6, 7), (3,)), ((1, 5, 6, 7), (0, 1, 2, 3)), ((1, 5, 6, 7), (2,)),
                ((4, 9), (0,)), ((4, 9), (1,)), ((3, 5, 7), (0, 2)), ((3, 5, 7), (-1,)), ((2, 3, 4, 5), (0, 3)),
                ((6,), (0,))]


def _reduced(shape, axes, keep) -> tuple[int, ...]:
    ax = {a % len(shape) for a in axes}
    return tuple(1 if d in ax else n for d, n in enumerate(shape)) if keep else tuple(
        n for d, n in enumerate(shape) if d not in ax)


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize("keep", (False, True))
@pytest.mark.parametrize("case", range(len(REDUCE_CASES)))
def test_sum(dtype: str, keep: bool, case: int) -> None:
    shape, axes = REDUCE_CASES[case]
    s_x, z_x = Q[dtype][case % len(Q[dtype])]
    n = int(np.prod([shape[a] for a in axes]))
    for k, ratio in enumerate((np.sqrt(n), 1.0, n * 0.7, 0.3)):  # scaled, unscaled, saturating, amplifying
        z_y = 0 if dtype == "int16" else (-3, 0, 100, -128)[k]
        b = G(f"sum_{dtype}")
        x = b.input(shape, dtype, s_x, z_x)
        y = b.t(_reduced(shape, axes, keep), dtype, s_x * ratio, z_y)
        b.op("reduce_sum", [x], y, axes=axes, keep_dims=keep)
        oracle(b.output(y), n=2, seed=k)


@needs_tflm
@pytest.mark.parametrize("keep", (False, True))
@pytest.mark.parametrize("case", range(len(REDUCE_CASES)))
def test_reduce_max(keep: bool, case: int) -> None:
    shape, axes = REDUCE_CASES[case]
    s, z = Q["int8"][case % 4]
    b = G("reduce_max")
    x = b.input(shape, "int8", s, z)
    y = b.t(_reduced(shape, axes, keep), "int8", s, z)
    b.op("reduce_max", [x], y, axes=axes, keep_dims=keep)
    g = b.output(y)
    oracle(g, n=3)
    rng = np.random.default_rng(case)
    oracle_with(g, [[rng.integers(-128, -125, shape).astype(np.int8)] for _ in range(2)])  # ties, the minimum


def test_reduce_refusals() -> None:
    b = G("sum_big")
    x = b.input((1, 300, 300), "int16", 1e-3, 0)
    y = b.t((1,), "int16", 1.0, 0)
    b.op("reduce_sum", [x], y, axes=(1, 2), keep_dims=False)
    with pytest.raises(ModelError, match=r"node op0_sum \(SUM\) tensor 't0': .*90000 elements per sum") as e:
        parse_tflite(write_tflite(b.output(y)))
    assert "\n" not in str(e.value)
    b = G("max16")
    x = b.input((1, 4, 4), "int16", 1e-3, 0)
    y = b.t((1, 4), "int16", 1e-3, 0)
    b.op("reduce_max", [x], y, axes=(1,), keep_dims=False)
    with pytest.raises(ModelError, match=r"node op0_reduce_max \(REDUCE_MAX\): input 0 't0' is int16"):
        parse_tflite(write_tflite(b.output(y)))


# -- ARG_MAX / ARG_MIN ------------------------------------------------------------------------------


@needs_tflm
@pytest.mark.parametrize("kind", ("arg_max", "arg_min"))
@pytest.mark.parametrize("shape,axis", [((1, 5, 6, 7), 3), ((1, 5, 6, 7), 1), ((4, 9), 0), ((4, 9), -1),
                                        ((3, 5, 7), 1), ((10,), 0), ((2, 1, 3), 1)])
def test_arg_min_max(kind: str, shape, axis: int) -> None:
    a = axis % len(shape)
    b = G(kind)
    x = b.input(shape, "int8", 0.05, 3)
    y = b.t(shape[:a] + shape[a + 1 :], "int32")
    b.op(kind, [x], y, axis=axis)
    g = b.output(y)
    imported = oracle(g, n=3)
    assert imported.t(imported.outputs[0]).dtype == "int32"
    rng = np.random.default_rng(len(shape) * 10 + a)
    ties = [[rng.integers(lo, lo + 3, shape).astype(np.int8)] for lo in (-128, 0, 125)]  # ties: the first wins
    oracle_with(g, ties)


# -- BATCH_MATMUL -----------------------------------------------------------------------------------

BMM_CASES = [((1, 4, 6), (1, 6, 5)), ((2, 3, 4, 6), (2, 3, 6, 5)), ((3, 4, 6), (1, 6, 5)), ((1, 4, 6), (3, 6, 5)),
             ((4, 6), (6, 5)), ((2, 1, 4, 6), (1, 3, 6, 5)), ((3, 4, 6), (6, 5)), ((1, 1, 9), (1, 9, 1))]


@needs_tflm
@pytest.mark.parametrize("dtype", ("int8", "int16"))
@pytest.mark.parametrize("adj_x,adj_y", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("case", range(len(BMM_CASES)))
def test_batch_matmul(dtype: str, adj_x: bool, adj_y: bool, case: int) -> None:
    sa, sb = BMM_CASES[case]
    m, k, n = sa[-2], sa[-1], sb[-1]
    batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    if adj_x:
        sa = sa[:-2] + (k, m)
    if adj_y:
        sb = sb[:-2] + (n, k)
    (s_a, z_a), (s_b, z_b) = Q[dtype][case % len(Q[dtype])], Q[dtype][(case + 1) % len(Q[dtype])]
    for ratio, z_y in ((np.sqrt(k) * 40, 5), (np.sqrt(k) * 3, -100), (1.0, 0)):
        z_y = 0 if dtype == "int16" else z_y
        bld = G(f"bmm_{dtype}")
        a = bld.input(sa, dtype, s_a, z_a)
        bb = bld.input(sb, dtype, s_b, z_b)
        y = bld.t((*batch, m, n), dtype, s_a * s_b * ratio * (1 if dtype == "int8" else 256), z_y)
        bld.op("batch_matmul", [a, bb], y, transpose_b=adj_y, adj_x=adj_x)
        g = oracle(bld.output(y), n=2)
        assert [o.kind for o in g.ops] == ["transpose", "batch_matmul"] if adj_x else ["batch_matmul"]
    bld = G(f"bmm_const_{dtype}")  # a constant right-hand side (weights), as converters write MatMul
    a = bld.input(sa, dtype, s_a, z_a)
    lo, hi = (-128, 128) if dtype == "int8" else (-32768, 32768)
    bb = bld.t(sb, dtype, s_b, z_b, data=bld.rng.integers(lo, hi, sb).astype(dtype))
    y = bld.t((*batch, m, n), dtype, s_a * s_b * np.sqrt(k) * (40 if dtype == "int8" else 10000), 0)
    bld.op("batch_matmul", [a, bb], y, transpose_b=adj_y, adj_x=adj_x)
    oracle(bld.output(y), n=2)


# -- RESIZE_BILINEAR --------------------------------------------------------------------------------


@needs_tflm
@pytest.mark.parametrize("corners,half", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("hw,out", [((4, 5), (8, 10)), ((4, 5), (7, 13)), ((9, 8), (4, 3)), ((3, 3), (1, 1)),
                                    ((1, 1), (3, 2)), ((5, 6), (5, 6)), ((2, 7), (9, 4))])
def test_resize_bilinear(corners: bool, half: bool, hw, out) -> None:
    for n, (s, z) in zip((1, 2), Q["int8"][:2], strict=True):  # batch 1 and 2
        b = G("resize_bilinear")
        x = b.input((n, *hw, 3), "int8", s, z)
        y = b.t((n, *out, 3), "int8", s, z)
        b.op("resize_bilinear", [x], y, align_corners=corners, half_pixel_centers=half)
        oracle(b.output(y))


# -- one graph of these ops in the emulator ---------------------------------------------------------


def layout_model() -> Graph:
    """int8: STRIDED_SLICE (strides 2, -1), SPACE_TO_DEPTH, RESIZE_BILINEAR (half-pixel), DEPTH_TO_SPACE,
    REDUCE_MAX (keep_dims) and SUM, BATCH_MATMUL (adj_y) and ARG_MAX (an int32 graph output); int16:
    SUM and BATCH_MATMUL after a QUANTIZE; on a second input BATCH_MATMUL with adj_x, broadcast batch
    dimensions and a constant right-hand side; on a third, the other forms (see below)."""
    b = G("layout_ops")
    x = b.input((1, 9, 8, 4), "int8", 0.05, -3)
    s = b.t((1, 4, 8, 4), "int8", 0.05, -3)
    b.op("strided_slice", [x], s, begin=(0,), steps=(1,), size=(1,),
         strided=dict(begin=[0, 1, -1, 0], end=[1, 9, -9, 4], strides=[1, 2, -1, 1]))
    d = b.t((1, 2, 4, 16), "int8", 0.05, -3)
    b.op("space_to_depth", [s], d, block_size=2)
    r = b.t((1, 3, 6, 16), "int8", 0.05, -3)
    b.op("resize_bilinear", [d], r, align_corners=False, half_pixel_centers=True)
    e = b.t((1, 6, 12, 4), "int8", 0.05, -3)
    b.op("depth_to_space", [r], e, block_size=2)
    m = b.t((1, 6, 1, 4), "int8", 0.05, -3)
    b.op("reduce_max", [e], m, axes=(2,), keep_dims=True)
    sm = b.t((1, 6, 4), "int8", 0.15, 2)
    b.op("reduce_sum", [e], sm, axes=(2,), keep_dims=False)
    mm = b.t((1, 6, 6), "int8", 1.5, -1)
    m3 = b.t((1, 6, 4), "int8", 0.05, -3)
    b.op("reshape", [m], m3)
    b.op("batch_matmul", [m3, sm], mm, transpose_b=True)
    am = b.t((1, 6), "int32")
    b.op("arg_max", [mm], am, axis=2)
    w = b.t((1, 6, 4), "int16", 6e-4, 0)
    b.op("quantize", [sm], w)
    ws = b.t((1, 4), "int16", 2e-3, 0)
    b.op("reduce_sum", [w], ws, axes=(1,), keep_dims=False)
    w2 = b.t((1, 6, 4), "int16", 3e-4, 0)
    b.op("quantize", [m3], w2)
    wm = b.t((1, 6, 6), "int16", 0.01, 0)
    b.op("batch_matmul", [w2, w], wm, transpose_b=True)
    # a second input: adj_x, batch [2, 1] x [1, 3] broadcast, a constant right-hand side
    x2 = b.input((2, 1, 4, 3), "int8", 0.04, 6)
    c = b.t((1, 3, 4, 5), "int8", 0.03, -2, data=b.rng.integers(-128, 128, (1, 3, 4, 5)).astype(np.int8))
    bc = b.t((2, 3, 3, 5), "int8", 0.04 * 0.03 * 90, 4)
    b.op("batch_matmul", [x2, c], bc, transpose_b=False, adj_x=True)
    # a third input: RESIZE_BILINEAR (align_corners), DEPTH_TO_SPACE, ARG_MIN, SUM over two axes (keep_dims),
    # REDUCE_MAX (axis -2), and an int16 STRIDED_SLICE with negative strides into an int16 SUM
    x3 = b.input((1, 6, 7, 8), "int8", 0.04, 5)
    r3 = b.t((1, 11, 5, 8), "int8", 0.04, 5)
    b.op("resize_bilinear", [x3], r3, align_corners=True, half_pixel_centers=False)
    d3 = b.t((1, 22, 10, 2), "int8", 0.04, 5)
    b.op("depth_to_space", [r3], d3, block_size=2)
    a3 = b.t((1, 22, 2), "int32")
    b.op("arg_min", [d3], a3, axis=2)
    s3 = b.t((1, 22, 1, 1), "int8", 0.3, -7)
    b.op("reduce_sum", [d3], s3, axes=(2, 3), keep_dims=True)
    q3 = b.t((1, 22, 10, 2), "int16", 2e-3, 0)
    b.op("quantize", [d3], q3)
    ss3 = b.t((1, 8, 5, 2), "int16", 2e-3, 0)
    b.op("strided_slice", [q3], ss3, begin=(0,), steps=(1,), size=(1,),
         strided=dict(begin=[0, -1, 9, 1], end=[1, -23, 0, -3], strides=[1, -3, -2, -1]))
    sm3 = b.t((8, 2), "int16", 4e-3, 0)
    b.op("reduce_sum", [ss3], sm3, axes=(0, 2), keep_dims=False)
    mx3 = b.t((1, 22, 1, 2), "int8", 0.04, 5)
    b.op("reduce_max", [d3], mx3, axes=(-2,), keep_dims=True)
    rb = b.t((2, 3, 5, 3), "int8", 0.04, 6)  # batch 2: one kernel call per image
    b.op("resize_bilinear", [x2], rb, align_corners=False, half_pixel_centers=False)
    return b.output(am, mm, ws, wm, bc, a3, s3, sm3, mx3, rb)


@needs_tflm
def test_layout_model_oracle() -> None:
    g = oracle(layout_model(), n=4)
    kinds = {o.kind for o in g.ops}
    assert {"strided_slice", "space_to_depth", "resize_bilinear", "depth_to_space", "reduce_max", "reduce_sum",
            "batch_matmul", "arg_max", "arg_min", "transpose"} <= kinds


def test_layout_model_in_qemu(tmp_path) -> None:
    """The graph above in QEMU: firmware == reference == TFLM, an int32 graph output in the API."""
    report = qemu_exact(write_tflite(layout_model()), tmp_path)
    assert [t["dtype"] for t in report["model_outputs"]] == ["int32", "int8", "int16", "int16", "int8", "int32", "int8",
                                                              "int16", "int8", "int8"]
    header = (tmp_path / "out" / "model.h").read_text()
    assert "int32_t *output0" in header


def test_opcode_is_max_of_both_fields() -> None:
    """TFLite's GetBuiltinCode is max(builtin_code, deprecated_builtin_code) of the raw fields: a file
    whose builtin_code (57, MINIMUM) differs from its deprecated code (56, ARG_MAX) is read as MINIMUM,
    as TFLM reads it (the `tflite` package's BuiltinCode() alone would answer ARG_MAX)."""
    import tflite

    buf = bytearray(write_tflite(layout_model()))
    m = tflite.Model.GetRootAsModel(buf, 0)
    k = next(i for i in range(m.OperatorCodesLength()) if m.OperatorCodes(i).DeprecatedBuiltinCode() == 56)
    t = m.OperatorCodes(k)._tab
    buf[t.Pos + t.Offset(10)] = 57
    with pytest.raises(ModelError, match=r"\(MINIMUM\)"):
        parse_tflite(bytes(buf))


def test_constant_graph_output_refused() -> None:
    b = G("const_out")
    x = b.input((1, 4), "int8", 0.1, 0)
    c = b.t((1, 4), "int8", 0.1, 0, data=np.ones((1, 4), np.int8))
    y = b.t((1, 4), "int8", 0.1, 0)
    b.op("maximum", [x, c], y)
    g = b.output(y)
    g.outputs.append(c)
    with pytest.raises(ModelError, match=r"graph output 't1' is not computed by any operator") as e:
        parse_tflite(write_tflite(g))
    assert "\n" not in str(e.value)


@needs_tflm
def test_layout_mutants_exact_or_refused() -> None:
    """120 seeded mutants of the layout graph (benchmarks/fuzz.py's structured edits): each is refused
    at import (ModelError, one line) or computes exactly what TFLM computes wherever TFLM runs it."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import fuzz  # noqa: E402

    from compiler.passes.validate import validate
    from compiler.pipeline import make_input_sets

    blob = write_tflite(layout_model())
    rng = np.random.default_rng(12)
    accepted = 0
    for _ in range(120):
        data, desc = fuzz.mutate_tflite(blob, rng)
        try:
            g = parse_tflite(data)
            validate(g)
        except ModelError as e:
            assert "\n" not in str(e), desc
            continue
        accepted += 1
        try:
            model = TflmModel(data)
        except Exception:  # noqa: BLE001 - TFLM refuses the file: nothing to match
            continue
        for xs in make_input_sets(g, None, 2):
            try:
                want = model.invoke(*xs, n_outputs=len(g.outputs))
            except Exception:  # noqa: BLE001
                break
            for w, r in zip(want, reference.run(g, xs), strict=True):
                w = np.asarray(w)
                assert w.dtype == r.dtype and np.array_equal(w.reshape(r.shape), r), desc
    assert accepted >= 10


def test_multiplier_out_of_range_refused() -> None:
    """A tiny output scale makes TFLM shift by more than 31 bits (undefined in C): refused, one line."""
    for kind, dtype in (("batch_matmul", "int8"), ("batch_matmul", "int16"), ("reduce_sum", "int8")):
        b = G(f"{kind}_{dtype}")
        x = b.input((1, 4, 6), dtype, 0.05, 0)
        if kind == "batch_matmul":
            w = b.input((1, 6, 5), dtype, 0.05, 0)
            y = b.t((1, 4, 5), dtype, 1e-30, 0)
            b.op(kind, [x, w], y, transpose_b=False)
        else:
            y = b.t((1, 4), dtype, 1e-30, 0)
            b.op(kind, [x], y, axes=(2,), keep_dims=False)
        with pytest.raises(ModelError, match=r"tensor 't0': .*requantization multiplier of about 2\^") as e:
            parse_tflite(write_tflite(b.output(y)))
        assert "\n" not in str(e.value)
