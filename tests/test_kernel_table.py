"""The kernel table (compiler/schedule/kernels_table.py) and the scratch sizes it takes from C.

- every kernel with scratch: the table's bytes equal the C `_get_buffer_size` for a sweep of
  shapes, called here through ctypes structs of mt_nn.h (tests/test_kernels.py), not through
  `compiler.target.hostlib`'s own argument packing;
- the rows on the shared models: each DSP call's scratch is its C query on the op's own shape;
- a plan's scratch (layer and patch plans from `plan_for`) is what the C asks for;
- every step's kernel is a function runtime_c declares; an op kind without a row gets
  mt_<kind>_<s8|s16>; the packed-filter sizes equal the packers' output;
- no host C compiler: one MicrotileError line.
"""

from __future__ import annotations

import ctypes as C
import re
from pathlib import Path

import numpy as np
import pytest
from test_kernels import ConvParams, Dims, Pad, View

from codegen import kernels as K
from compiler.core.ir import Graph, Op, Tensor
from compiler.errors import MicrotileError
from compiler.schedule import kernels_table as T
from compiler.schedule.plan import align
from compiler.target import hostlib

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models"
M4 = T.KernelOptions(core="cortex-m4")


def _c(name: str, *args) -> int:
    fn = getattr(hostlib.library(), f"{name}_get_buffer_size")
    fn.restype = C.c_int32
    return int(fn(*args))


def test_size_queries_sweep() -> None:
    """hostlib.buffer_size packs its arguments as the C structs lay them out."""
    for o, kh, kw, ic in ((8, 1, 1, 3), (16, 1, 1, 64), (32, 3, 3, 16), (64, 10, 4, 1), (5, 7, 7, 3), (1, 1, 1, 1)):
        fd = hostlib.dims(o, kh, kw, ic)
        for name in ("mt_conv_1x1_s8_dsp", "mt_conv_s8_dsp", "mt_depthwise_conv_s8_dsp"):
            assert hostlib.buffer_size(name, fd) == _c(name, C.byref(Dims(*fd)))
        for h, w in ((1, 1), (7, 5), (48, 48)):
            v = hostlib.view(h, w, ic)
            for name in ("mt_conv_s8", "mt_depthwise_conv_s8"):
                assert hostlib.buffer_size(name, fd, v) == _c(name, C.byref(Dims(*fd)), C.byref(View(*v)))
            for top, left in ((0, 0), (1, 1), (3, 0), (0, 2)):
                p = hostlib.conv_params(pads=(top, 0, left, 0))
                cp = ConvParams(0, 0, 1, 1, 1, 1, Pad(top, 0, left, 0), 0, 0)
                got = hostlib.buffer_size("mt_depthwise_conv_inplace_s8", p, fd, v)
                assert got == _c("mt_depthwise_conv_inplace_s8", C.byref(cp), C.byref(Dims(*fd)), C.byref(View(*v)))
    for n in (1, 2, 3, 5, 8, 24, 48, 49, 97):
        for s in (1, 2):
            for name in ("mt_depthwise_conv_3x3_s8_dsp", "mt_depthwise_conv_3x3_cols_s8_dsp"):
                assert hostlib.buffer_size(name, n, s) == _c(name, n, s)
    for k in (1, 3, 4, 5, 64, 250, 640, 1001):
        for name in ("mt_fully_connected_s8_dsp", "mt_batch_matmul_s8_dsp"):
            assert hostlib.buffer_size(name, k) == _c(name, k)


def _models() -> list[Graph]:
    from compiler.models.builder import mobilenet_v2
    from compiler.models.vit_builder import ViTConfig, build_vit
    from compiler.pipeline import load_model

    gs = [mobilenet_v2(0.35, 48, num_classes=4, n_calib=1)]
    cfg = ViTConfig(in_chans=3, img_size=24, patch=6, embed_dim=24, depth=1, heads=3, mlp_ratio=2, seed=1)
    gs.append(build_vit(cfg))
    paths = [MODELS / f"{m}.tflite" for m in ("kws_ref_model", "vww_96_int8")]
    gs += [load_model(p) for p in paths if p.exists()]
    return gs


def _query(g: Graph, op: Op, c: T.KernelCall) -> int:
    """The C query of c on op's shape, through ctypes structs."""
    w = g.t(op.inputs[1]).shape
    y = g.t(op.outputs[0]).shape
    if c.name in ("mt_conv_1x1_s8_dsp", "mt_conv_s8_dsp", "mt_depthwise_conv_s8_dsp"):
        return _c(c.name, C.byref(Dims(*w)))
    if c.name == "mt_depthwise_conv_3x3_s8_dsp":
        return _c(c.name, y[2], op.attrs["stride"][1])
    if c.name == "mt_depthwise_conv_3x3_cols_s8_dsp":
        return _c(c.name, y[1], op.attrs["stride"][0])
    if c.name == "mt_depthwise_conv_3x3_plane_s8_dsp":
        return _c(c.name, y[1], y[2], op.attrs["stride"][0], op.attrs["stride"][1])
    if c.name == "mt_fully_connected_s8_dsp":
        return _c(c.name, w[1])
    if c.name == "mt_batch_matmul_s8_dsp":
        return _c(c.name, g.t(op.inputs[0]).shape[-1])
    assert c.name == "mt_add_s8_dsp", c.name
    return 0


def test_rows_on_models_ask_c() -> None:
    """Every DSP kernel the table picks on the models (Cortex-M4) asks the C query of the op's own
    shape, and every kernel with scratch appears."""
    seen = set()
    for g in _models():
        for op in g.ops:
            c = T.choose_call(g, op, M4)
            if c.dsp:
                assert c.scratch_bytes == _query(g, op, c), (op.name, c)
                seen.add(c.name)
    want = {"mt_conv_1x1_s8_dsp", "mt_conv_s8_dsp", "mt_depthwise_conv_3x3_s8_dsp", "mt_fully_connected_s8_dsp",
            "mt_batch_matmul_s8_dsp"}  # fmt: skip
    if (MODELS / "kws_ref_model.tflite").exists():
        want.add("mt_depthwise_conv_3x3_cols_s8_dsp")
    if (MODELS / "vww_96_int8.tflite").exists():
        want.add("mt_depthwise_conv_3x3_plane_s8_dsp")
    assert want <= seen, want - seen


def _declared() -> set[str]:
    text = "".join((ROOT / "runtime_c" / h).read_text() for h in ("mt_nn.h", "mt_nn_fast.h"))
    return set(re.findall(r"\b(mt_\w+)\(", text))


def test_plan_scratch_is_what_c_asks() -> None:
    """plan_for's layer plan (Cortex-M4) and patch plan: each step runs the call the plan records,
    with the scratch the C asks for (a patch step: for its widest call), inside its scratch buffer;
    every kernel name is declared by runtime_c."""
    from compiler.models.builder import mobilenet_v2
    from compiler.planner import PlanOptions, plan_for

    declared = _declared()
    g = mobilenet_v2(0.35, 48, num_classes=4, n_calib=1)
    for opts in (PlanOptions(schedule="layer"), PlanOptions(schedule="patch", io="external")):
        plan = plan_for(g, "stm32f405", opts)
        n = 0
        for i, st in enumerate(plan.steps):
            c = st.kernel
            assert c is not None and (c.name in declared or c.name == ""), (st.op.name, c)
            if not c.dsp:
                continue
            n += 1
            want = _query(plan.graph, st.op, c)
            for k, stage in enumerate(getattr(plan, "stages", [])):  # a patch-stage step: its widest call's
                if i in stage.steps:
                    widest = max(p[stage.steps.index(i)].output.w for p in plan.patches(k))
                    want = T.window_scratch(plan.graph, st.op, c, widest)
            assert c.scratch_bytes == want, (st.op.name, c, want)
            assert want == 0 or st.scratch.size == align(want)
        assert n > 0
        assert all(ln in plan.render() for ln in [f"KB  {st.kernel.short()}" for st in plan.steps if st.kernel.dsp])


def test_default_portable_kernel() -> None:
    """An op kind with no row gets mt_<kind>_<dtype>: new ops need no table entry."""
    g = Graph("g")
    g.add_tensor(Tensor("x", (1, 4), "int16"))
    g.add_tensor(Tensor("y", (1, 4), "int16"))
    op = Op("brand_new_op", "n", ["x"], ["y"], {})
    assert T.choose_call(g, op, M4) == T.KernelCall("mt_brand_new_op_s16")
    assert "brand_new_op" not in T.TABLE and "brand_new_op" not in T.PORTABLE


def test_packed_filter_bytes_match_packers() -> None:
    rng = np.random.default_rng(0)
    for shape in ((3, 1, 1, 5), (8, 3, 3, 7), (1, 2, 5, 3)):
        w = rng.integers(-127, 128, shape).astype(np.int8)
        assert T.packed_filter_bytes(shape, "conv2d", "s8") == K.pack_conv(w, False).nbytes
        assert T.packed_filter_bytes(shape, "conv2d", "w16") == K.pack_conv(w, True).nbytes
    for shape in ((1, 3, 3, 5), (1, 5, 5, 16)):
        w = rng.integers(-127, 128, shape).astype(np.int8)
        assert T.packed_filter_bytes(shape, "depthwise_conv2d", "s8") == K.pack_dw(w, False).nbytes
        assert T.packed_filter_bytes(shape, "depthwise_conv2d", "w16") == K.pack_dw(w, True).nbytes
        if shape[1:3] == (3, 3):
            assert T.packed_filter_bytes(shape, "depthwise_conv2d", "dw3x3") == K.pack_dw3x3(w).nbytes
    for shape in ((5, 7), (12, 64)):
        w = rng.integers(-127, 128, shape).astype(np.int8)
        assert T.packed_filter_bytes(shape, "fully_connected", "s8") == K.pack_fc(w, False).nbytes
        assert T.packed_filter_bytes(shape, "fully_connected", "w16") == K.pack_fc(w, True).nbytes


def test_no_host_compiler_is_one_line(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MICROTILE_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "/nonexistent/cc")
    hostlib.library.cache_clear()
    try:
        with pytest.raises(MicrotileError, match="host C compiler") as e:
            hostlib.library()
        assert "\n" not in str(e.value)
        monkeypatch.delenv("CC")
        monkeypatch.setenv("PATH", str(tmp_path))
        with pytest.raises(MicrotileError, match="no host C compiler"):
            hostlib.library()
    finally:
        hostlib.library.cache_clear()



_WEIGHTED = ("conv2d", "depthwise_conv2d", "transpose_conv2d", "fully_connected", "lstm", "batch_matmul")


def test_portable_names_are_the_declared_kernels() -> None:
    """For every op/dtype scheme compiler/core/ops_support.py declares, the portable call the table
    gives a one-op graph with the scheme's dtypes names one of the scheme's kernels (a kernel-less
    scheme: no call or a view), and that kernel is declared in runtime_c/mt_nn.h."""
    from compiler.core.ir import Graph, Op, QParams, Tensor
    from compiler.core.ops_support import SUPPORT
    from compiler.schedule.kernels_table import portable_call

    declared = set(re.findall(r"\b(mt_[a-z0-9_]+)\s*\(", (ROOT / "runtime_c" / "mt_nn.h").read_text()))
    checked = 0
    for d in SUPPORT.values():
        for s in d.schemes:
            if d.ir in _WEIGHTED:  # their names depend on shapes and filters: test_rows_on_models_ask_c
                continue
            g = Graph("one_op")
            names = []
            for k, slot in enumerate((*s.inputs, *s.outputs)):
                dt = slot.dtypes[0] if slot.dtypes else None
                if dt is None:
                    names.append("")
                    continue
                q = QParams(np.float32(0.05), 0) if dt in ("int8", "int16", "uint8") else None
                names.append(g.add_tensor(Tensor(f"t{k}", (1, 4, 4, 4), dt, q)).name)
            ins, outs = names[: len(s.inputs)], names[len(s.inputs):]
            if not outs or not outs[0] or not ins or not ins[0]:
                continue
            c = portable_call(g, Op(d.ir, "op", ins, outs, {}))
            if not s.kernels:
                assert c.name == "" or c.name.startswith("mt_"), (d.op, s.name, c.name)
                continue
            assert c.name in s.kernels and c.name in declared, (d.op, s.name, c.name, s.kernels)
            checked += 1
    assert checked > 40


def test_tight_budget_keeps_the_fast_depthwise() -> None:
    """vww at --sram 41472 (the patch plan): the plane kernel's scratch made op5 bind the tail,
    which the planner then ran in place on the portable kernel (16.5M instructions in QEMU
    instead of 10.5M); plan_for moves such ops to their next table row (the 3x3 row kernel)."""
    from compiler.pipeline import load_model
    from compiler.planner import PlanOptions, plan_for
    from compiler.schedule.plan import plan_peak

    path = MODELS / "vww_96_int8.tflite"
    if not path.exists():
        pytest.skip(f"{path} missing")
    p = plan_for(load_model(path), "stm32f405", PlanOptions(sram=41472))
    assert p.schedule == "patch" and plan_peak(p) <= 41472 - 1024
    dw = [s.kernel.name for s in p.steps if s.op.kind == "depthwise_conv2d"]
    assert all(n.endswith("_dsp") for n in dw) and "mt_depthwise_conv_3x3_plane_s8_dsp" in dw
