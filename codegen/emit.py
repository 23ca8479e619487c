"""Plan -> C source: `model.c`, `model.h` and the test harness `main.c`.

A pure function of the Plan: every number printed here (offsets, multipliers, strides,
padding) was decided by the planner or computed by `compiler.core.lower`; templates only print.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from codegen.base import StepCode, c_array
from codegen.kernels import fast_params
from codegen.patch import render_stage
from codegen.token import attention_ctx, embed_ctx, mlp_ctx
from compiler.core.ir import Graph, Op
from compiler.core.lower import lower
from compiler.errors import MicrotileError, ModelError
from compiler.schedule.kernels_table import REQUANTIZE_KERNELS, KernelCall, add_records, portable_call
from compiler.schedule.patch import PatchPlan
from compiler.schedule.plan import Plan
from compiler.schedule.pools import main_pool_bytes

TEMPLATES = Path(__file__).resolve().parent / "templates"
RUNTIME_ABI = 1

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@dataclass
class CodegenOptions:
    prefix: str = "model"
    profile: bool = False  # per-step instruction counters in the generated code
    # (bytes, pool): constants beyond `bytes` of internal flash go to that external-flash pool's
    # section .mt_weights.<pool> (smallest arrays stay internal); None: all in internal flash
    weights_spill: tuple[int, str] | None = None


_DECL = re.compile(r"static const (\w+) (\w+)\[(\d+)\]")
_CTYPE_BYTES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4, "float": 4}


class _Emitter:
    def __init__(self, plan: Plan, opts: CodegenOptions) -> None:
        self.plan = plan
        self.g: Graph = plan.graph
        self.opts = opts
        self.p = opts.prefix
        self.const_names: dict[str, str] = {}
        self.const_decls: list[str] = []
        self.flash_const_bytes = 0
        self.external_const_bytes = 0

    # -- helpers --------------------------------------------------------------------------
    def ptr(self, tensor: str) -> str:
        region, offset = self.plan.location(tensor)
        if region in ("input", "output"):  # the caller's buffer (io="external"): its parameter name
            names = self.g.inputs if region == "input" else self.g.outputs
            if len(names) == 1:
                return region
            b = self.plan.tensor_buffer[tensor]
            k = next(i for i, n in enumerate(names) if n == b.name or n in b.tensors)
            return f"{region}{k}"
        return f"({self.base(self.plan.tensor_buffer[tensor])} + {offset})"

    def base(self, b) -> str:
        """The C array a buffer's offset is into: the caller's arena (A), or a memory pool's own
        static array for a plan spread over several pools (compiler.schedule.pools)."""
        if b.pool == "arena" or b.pool == self.plan.detail.get("main_pool"):
            return "A"
        return f"{self.p}_pool_{_c_name(b.pool)}"

    def const(self, tensor: str, ctype: str) -> str:
        if tensor in self.const_names:
            return self.const_names[tensor]
        t = self.g.t(tensor)
        assert t.data is not None
        name = f"{self.p}_{tensor}"
        self.const_names[tensor] = name
        self.const_decls.append(c_array(ctype, name, t.data))
        self.flash_const_bytes += t.nbytes
        return name

    def array(self, name: str, ctype: str, values: np.ndarray) -> str:
        full = f"{self.p}_{name}"
        self.const_decls.append(c_array(ctype, full, values))
        self.flash_const_bytes += int(np.asarray(values).size) * (1 if ctype == "int8_t" else 4)
        return full

    def _spill_weights(self, internal: int, pool: str) -> None:
        """Constants in internal flash, smallest first, while they fit `internal` bytes; the rest
        into section .mt_weights.<pool> (an external flash the linker script maps). Sets
        self.external_const_bytes."""
        sizes = []
        for k, d in enumerate(self.const_decls):
            m = _DECL.match(d)
            assert m is not None, d
            sizes.append((_CTYPE_BYTES[m.group(1)] * int(m.group(3)), k))
        # per-step records (requantization tables, views) stay internal too: the estimate
        # flash_const_bytes counts them, the declarations above do not
        other = max(0, self.flash_const_bytes - sum(n for n, _ in sizes))
        used = 0
        self.external_const_bytes = 0
        section = f'section(".mt_weights.{_c_name(pool)}"), '
        for n, k in sorted(sizes):
            if used + n + other <= internal:
                used += n
                continue
            self.const_decls[k] = self.const_decls[k].replace("__attribute__((", "__attribute__((" + section, 1)
            self.external_const_bytes += n
        self.flash_const_bytes = used + other + self.external_const_bytes

    @staticmethod
    def nhwc(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        if len(shape) == 4:
            return shape  # type: ignore[return-value]
        if len(shape) == 3:
            return (1, *shape)  # type: ignore[return-value]
        if len(shape) == 2:
            return (shape[0], 1, 1, shape[1])
        if len(shape) == 1:
            return (1, 1, 1, shape[0])
        return (1, 1, 1, 1)

    def view(self, tensor: str) -> dict[str, int]:
        n, h, w, c = self.nhwc(self.g.t(tensor).shape)
        if n != 1:
            raise ModelError(f"tensor {tensor!r}: batch size {n} is not supported (batch must be 1)")
        return {"h": h, "w": w, "c": c, "row_stride": w * c, "col_stride": c}

    # -- per-op contexts ---------------------------------------------------------------------
    def step(self, i: int, op: Op) -> StepCode:
        fn = getattr(self, f"op_{op.kind}", None)
        if fn is None:
            raise ModelError(f"codegen: op kind {op.kind!r} ({op.name}) has no C kernel")
        ctx = fn(i, op)
        ctx.update({"i": i, "p": self.p, "op": op})
        text = _ENV.get_template(f"ops/{ctx.get('template', op.kind)}.c.j2").render(ctx)
        decls, _, body = text.partition("/*--body--*/\n")
        sc = StepCode(i, op.name, op.kind, op.describe()[:160])
        sc.decls = [decls.strip()] if decls.strip() else []
        sc.body = body.rstrip()
        return sc

    def _conv_common(self, i: int, op: Op) -> dict[str, Any]:
        q = lower(self.g, op)
        x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
        b = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else None
        wt = self.g.t(w)
        pads = op.attrs["pads"]
        return {
            "x": self.ptr(x),
            "y": self.ptr(y),
            "xv": self.view(x),
            "yv": self.view(y),
            "w": self.const(w, "int8_t"),
            "b": self.const(b, "int64_t" if self.g.t(b).dtype == "int64" else "int32_t") if b else "NULL",
            "fd": dict(zip("nhwc", wt.shape, strict=True)),
            "mult": self.array(f"s{i}_mult", "int32_t", q["multiplier"]),
            "shift": self.array(f"s{i}_shift", "int32_t", q["shift"]),
            "q": q,
            "stride": op.attrs["stride"],
            "dil": op.attrs["dilation"],
            "pads": dict(zip(("top", "bottom", "left", "right"), pads, strict=True)),
            "scratch": self.scratch_ptr(i),
        }

    def scratch_ptr(self, i: int) -> str:
        s = self.plan.steps[i].scratch
        return f"({self.base(s)} + {s.offset})" if s is not None else "NULL"

    def kernel(self, i: int) -> KernelCall:
        """The kernel call the plan records for step i (compiler/schedule/kernels_table.py, `plan_for`);
        a plan made without `plan_for` records none and runs the portable kernels."""
        st = self.plan.steps[i]
        return st.kernel if st.kernel is not None else portable_call(self.g, st.op)

    def fast_kernel(self, i: int) -> KernelCall | None:
        """Step i's call when it is a DSP kernel (mt_nn_fast.h), else None."""
        c = self.kernel(i)
        return c if c.dsp else None

    def _fast(self, i: int, op: Op, c: KernelCall, ctx: dict[str, Any]) -> dict[str, Any]:
        fp = fast_params(self.g, op, c)
        name = f"{self.p}_s{i}_wpack"
        self.const_decls.append(c_array(fp["ctype"], name, fp["packed"], align=8))
        self.flash_const_bytes += int(fp["packed"].nbytes) + int(fp["fq"].nbytes)
        tpl = f"{op.kind}_dsp"  # conv2d_dsp, depthwise_conv2d_dsp, fully_connected_dsp
        ctx.update({"template": tpl, "kernel": c.name, "w": name, "fq": fp["fq"].tolist(), "wide": fp["form"]})
        ctx.setdefault("stride", (1, 1))
        ctx.setdefault("dil", (1, 1))
        ctx.setdefault("pads", {"top": 0, "bottom": 0, "left": 0, "right": 0})
        ctx["scratch"] = self.scratch_ptr(i)
        return ctx

    def op_conv2d(self, i: int, op: Op) -> dict[str, Any]:
        if self.g.t(op.inputs[0]).dtype == "int16":  # 16x8 (compiler/core/ops_support.py): mt_conv_s16[_dsp]
            return self._conv_s16(i, op)
        c = self.fast_kernel(i)
        if c is not None:
            return self._fast(i, op, c, self._fast_conv_ctx(op))
        return self._conv_common(i, op)

    def op_transpose_conv(self, i: int, op: Op) -> dict[str, Any]:
        ctx = self._conv_common(i, op)
        ctx["template"] = "transpose_conv"
        if self.g.t(op.inputs[0]).dtype == "int16":  # 16x8: int64 bias (or none)
            ctx.update({"fn": "mt_transpose_conv_s16", "x": f"(const int16_t *)(const void *)({ctx['x']})",
                        "y": f"(int16_t *)(void *)({ctx['y']})"})
        else:
            ctx["fn"] = "mt_transpose_conv_s8"
        return ctx

    def _conv_s16(self, i: int, op: Op) -> dict[str, Any]:
        b = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else None
        ctx = self._conv_common(i, op)
        wide = b is not None and self.g.t(b).dtype == "int64"
        ctx.update({"template": "conv2d_s16", "b64": ctx["b"] if wide else "NULL", "b32": "NULL" if wide else ctx["b"]})
        return {**ctx, **self._s16_kernel(i, "mt_conv_s16")}

    def _s16_kernel(self, i: int, portable: str) -> dict[str, Any]:
        """16x8: the call the plan records (compiler/schedule/kernels_table.py `_s16_dsp`: the portable
        arguments plus scratch, none for depthwise) or the portable one."""
        c = self.fast_kernel(i)
        if c is None:
            return {"fn": portable, "tail": ""}
        return {"fn": c.name, "tail": f", {self.scratch_ptr(i)}" if c.scratch_bytes > 0 else ""}

    def _fast_conv_ctx(self, op: Op) -> dict[str, Any]:
        x, y = op.inputs[0], op.outputs[0]
        return {
            "x": self.ptr(x),
            "y": self.ptr(y),
            "xv": self.view(x),
            "yv": self.view(y),
            "fd": dict(zip("nhwc", self.g.t(op.inputs[1]).shape, strict=True)),
            "q": lower(self.g, op),
            "stride": op.attrs["stride"],
            "dil": op.attrs["dilation"],
            "pads": dict(zip(("top", "bottom", "left", "right"), op.attrs["pads"], strict=True)),
        }

    def op_depthwise_conv2d(self, i: int, op: Op) -> dict[str, Any]:
        if self.g.t(op.inputs[0]).dtype == "int16":  # 16x8: mt_depthwise_conv_s16[_dsp]
            ctx = self._conv_common(i, op)
            ctx.update({"template": "depthwise_conv2d_s16", "depth_multiplier": op.attrs["depth_multiplier"]})
            return {**ctx, **self._s16_kernel(i, "mt_depthwise_conv_s16")}
        c = self.fast_kernel(i)
        if c is not None:
            return self._fast(i, op, c, self._fast_conv_ctx(op))
        ctx = self._conv_common(i, op)
        ctx["depth_multiplier"] = op.attrs["depth_multiplier"]
        return ctx

    def op_fully_connected(self, i: int, op: Op) -> dict[str, Any]:
        q = lower(self.g, op)
        x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
        c = self.fast_kernel(i)
        if c is not None and self.g.t(x).dtype != "int16":
            out_f, in_f = self.g.t(w).shape
            ctx = {"x": self.ptr(x), "y": self.ptr(y), "q": q, "batches": self.g.t(x).size // in_f}
            return self._fast(i, op, c, {**ctx, "in_f": in_f, "out_f": out_f})
        b = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else None
        out_f, in_f = self.g.t(w).shape
        b64 = b is not None and self.g.t(b).dtype == "int64"
        s16 = self.g.t(x).dtype == "int16"  # 16x8: mt_fully_connected_s16, int64 or int32 bias
        return {
            "template": "fully_connected_s16" if s16 else "fully_connected",
            "b64": self.const(b, "int64_t") if b64 else "NULL",
            "b32": self.const(b, "int32_t") if b and not b64 else "NULL",
            "x": self.ptr(x),
            "y": self.ptr(y),
            "w": self.const(w, "int8_t"),
            "b": self.const(b, "int64_t" if b64 else "int32_t") if b else "NULL",
            "mult": self.array(
                f"s{i}_mult", "int32_t", q["multiplier"][:1] if not q["per_channel"] else q["multiplier"]
            ),
            "shift": self.array(f"s{i}_shift", "int32_t", q["shift"][:1] if not q["per_channel"] else q["shift"]),
            "per_channel": int(q["per_channel"]),
            "batches": self.g.t(x).size // in_f,
            "in_f": in_f,
            "out_f": out_f,
            "q": q,
            **(self._s16_kernel(i, "mt_fully_connected_s16") if s16 else {}),
        }

    def _binary(self, i: int, op: Op) -> dict[str, Any]:
        q = lower(self.g, op)
        a, b, y = op.inputs[0], op.inputs[1], op.outputs[0]
        fn = self.kernel(i).name  # mt_add_s8, mt_add_broadcast_s8, mt_add_s8_dsp, ... (the plan's call)
        ctx: dict[str, Any] = {"a": self.ptr_or_const(a), "b": self.ptr_or_const(b), "y": self.ptr(y), "q": q, "fn": fn}
        sa, sb, sy = self.g.t(a).shape, self.g.t(b).shape, self.g.t(y).shape
        if self.g.t(y).dtype == "int16":  # mt_add_s16 / mt_mul_s16: always the broadcast form
            ctx["template"] = f"{op.kind}_s16"
            ctx["broadcast"] = {
                "shape": list(self.nhwc4(sy)),
                "s1": _bcast_strides(self.nhwc4(sa), self.nhwc4(sy)),
                "s2": _bcast_strides(self.nhwc4(sb), self.nhwc4(sy)),
            }
        elif not fn.endswith("_broadcast_s8"):  # same shapes
            ctx["broadcast"] = None
            ctx["size"] = self.g.t(y).size
        else:
            ctx["broadcast"] = {
                "shape": list(self.nhwc4(sy)),
                "s1": _bcast_strides(self.nhwc4(sa), self.nhwc4(sy)),
                "s2": _bcast_strides(self.nhwc4(sb), self.nhwc4(sy)),
            }
        return ctx

    @staticmethod
    def nhwc4(shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) > 4:
            raise ModelError(f"broadcast of rank {len(shape)} tensors is not supported")
        return (1,) * (4 - len(shape)) + tuple(shape)

    def ptr_or_const(self, t: str) -> str:
        if self.g.t(t).is_const:
            return self.const(t, C_TYPES.get(self.g.t(t).dtype, "int8_t"))
        return self.ptr(t)

    def op_add(self, i: int, op: Op) -> dict[str, Any]:
        ctx = self._binary(i, op)
        if self.fast_kernel(i) is not None:
            ctx.update({"template": "add_dsp", "recs": add_records(ctx["q"])})
        return ctx

    def op_mul(self, i: int, op: Op) -> dict[str, Any]:
        return self._binary(i, op)

    def _binary_bcast(self, i: int, op: Op, with_params: bool) -> dict[str, Any]:
        """SUB, MAXIMUM, MINIMUM: one kernel in the 4-D broadcast form (compiler/core/ops_support.py)."""
        a, b, y = op.inputs[0], op.inputs[1], op.outputs[0]
        dt = self.g.t(y).dtype
        sa, sb, sy = (self.nhwc4(self.g.t(n).shape) for n in (a, b, y))
        return {
            "template": "binary_bcast",
            "fn": f"mt_{op.kind}_{'s16' if dt == 'int16' else 's8'}",
            "ct": C_TYPES[dt],
            "with_params": with_params,
            "q": lower(self.g, op) if with_params else {},
            "a": self.ptr_or_const(a),
            "b": self.ptr_or_const(b),
            "y": self.ptr(y),
            "broadcast": {"shape": list(sy), "s1": _bcast_strides(sa, sy), "s2": _bcast_strides(sb, sy)},
        }

    def op_gather(self, i: int, op: Op) -> dict[str, Any]:
        q = lower(self.g, op)
        return {
            "x": self.ptr(op.inputs[0]),
            "y": self.ptr(op.outputs[0]),
            "q": q,
            "idx": self.array(f"s{i}_indices", "int32_t", q["indices"]),
            "n_idx": int(q["indices"].size),
        }

    def op_resize_nearest(self, i: int, op: Op) -> dict[str, Any]:
        q = lower(self.g, op)
        ct = C_TYPES[self.g.t(op.inputs[0]).dtype]
        return {
            "x": self.ptr(op.inputs[0]),
            "y": self.ptr(op.outputs[0]),
            "xv": self.view(op.inputs[0]),
            "yv": self.view(op.outputs[0]),
            "ymap": self.array(f"s{i}_ymap", "int32_t", q["y_map"]),
            "xmap": self.array(f"s{i}_xmap", "int32_t", q["x_map"]),
            "ct": ct,
            "fn": "mt_resize_nearest_s16" if ct == "int16_t" else "mt_resize_nearest_s8",
        }

    def op_abs(self, i: int, op: Op) -> dict[str, Any]:
        ctx = self._unary(i, op)
        ct = C_TYPES[self.g.t(op.inputs[0]).dtype]
        ctx.update({"ct": ct, "fn": "mt_abs_s16" if ct == "int16_t" else "mt_abs_s8"})
        return ctx

    def op_leaky_relu(self, i: int, op: Op) -> dict[str, Any]:
        ctx = self._unary(i, op)
        ct = C_TYPES[self.g.t(op.inputs[0]).dtype]
        ctx.update({"ct": ct, "fn": "mt_leaky_relu_s16" if ct == "int16_t" else "mt_leaky_relu_s8"})
        return ctx

    def op_sub(self, i: int, op: Op) -> dict[str, Any]:
        return self._binary_bcast(i, op, True)

    def op_maximum(self, i: int, op: Op) -> dict[str, Any]:
        return self._binary_bcast(i, op, False)

    def op_minimum(self, i: int, op: Op) -> dict[str, Any]:
        return self._binary_bcast(i, op, False)

    def _pool_ctx(self, i: int, op: Op) -> dict[str, Any]:
        q = lower(self.g, op)
        x, y = op.inputs[0], op.outputs[0]
        return {
            "x": self.ptr(x),
            "y": self.ptr(y),
            "xv": self.view(x),
            "yv": self.view(y),
            "kernel": op.attrs["kernel"],
            "stride": op.attrs["stride"],
            "pads": dict(zip(("top", "bottom", "left", "right"), op.attrs["pads"], strict=True)),
            "q": q,
        }

    def op_avg_pool2d(self, i: int, op: Op) -> dict[str, Any]:
        return self._pool(i, op)

    def op_max_pool2d(self, i: int, op: Op) -> dict[str, Any]:
        return self._pool(i, op)

    def _pool(self, i: int, op: Op) -> dict[str, Any]:
        ctx = self._pool_ctx(i, op)
        if self.g.t(op.inputs[0]).dtype == "int16":
            ctx.update({"template": "pool_s16", "fn": f"mt_{op.kind.removesuffix('2d')}_s16"})
        return ctx

    def op_mean(self, i: int, op: Op) -> dict[str, Any]:
        x = op.inputs[0]
        if len(self.g.t(x).shape) != 4 or tuple(op.attrs["axes"]) != (1, 2):
            raise ModelError(f"codegen: MEAN over axes {op.attrs['axes']} ({op.name}); only H,W of NHWC is supported")
        ctx = {"x": self.ptr(x), "y": self.ptr(op.outputs[0]), "xv": self.view(x), "q": lower(self.g, op)}
        if self.g.t(x).dtype == "int16":
            ctx.update({"template": "mean_s16", "x": f"(const int16_t *)(const void *)({ctx['x']})",
                        "y": f"(int16_t *)(void *)({ctx['y']})"})
        return ctx

    def op_pad(self, i: int, op: Op) -> dict[str, Any]:
        x, y = op.inputs[0], op.outputs[0]
        pads = op.attrs["paddings"]
        rank = len(pads)
        full = [(0, 0)] * (4 - rank) + [tuple(p) for p in pads]
        if full[0] != (0, 0) or full[3] != (0, 0):
            raise ModelError(f"codegen: PAD of the batch or channel axis ({op.name}) is not supported")
        ctx = {
            "x": self.ptr(x),
            "y": self.ptr(y),
            "xv": self.view(x),
            "yv": self.view(y),
            "pads": {"top": full[1][0], "bottom": full[1][1], "left": full[2][0], "right": full[2][1]},
            "q": lower(self.g, op),
        }
        if self.g.t(x).dtype == "int16":  # zero point 0: a byte copy over 2-byte elements, zero border
            if ctx["q"]["pad_value"] != 0:
                raise ModelError(f"codegen: int16 PAD with a nonzero pad value ({op.name}) is not supported")
            ctx.update(self._bytes16(x, y, ctx["xv"], ctx["yv"]))
        return ctx

    def _bytes16(self, x: str, y: str, *views: dict[str, int]) -> dict[str, Any]:
        """int16 tensors as int8 byte views (c, strides doubled) for the byte-copying kernels."""
        for v in views:
            for k in ("c", "row_stride", "col_stride"):
                v[k] *= 2
        return {"x": f"(const int8_t *)(const void *)({self.ptr(x)})", "y": f"(int8_t *)(void *)({self.ptr(y)})"}

    def op_reshape(self, i: int, op: Op) -> dict[str, Any]:
        return {}

    def op_concat(self, i: int, op: Op) -> dict[str, Any]:
        lower(self.g, op)
        y = op.outputs[0]
        ys = self.g.t(y).shape
        axis = op.attrs["axis"] + (4 - len(ys))
        y4 = self.nhwc4(ys)
        if y4[0] != 1 and axis != 0:
            raise ModelError(f"codegen: CONCATENATION with batch > 1 ({op.name}) is not supported")
        _, h, w, c = y4
        es = 2 if self.g.t(y).dtype == "int16" else 1  # int16: copied as bytes (views in bytes)
        parts = []
        off = 0
        for t in op.inputs:
            s4 = self.nhwc4(self.g.t(t).shape)
            src = {"h": s4[1], "w": s4[2], "c": s4[3] * es, "row_stride": s4[2] * s4[3] * es, "col_stride": s4[3] * es}
            dst = dict(src)
            dst["row_stride"], dst["col_stride"] = w * c * es, c * es
            elem_off = [0, off * w * c, off * c, off][axis] * es
            xp = self.ptr_or_const(t)
            parts.append({"x": f"(const int8_t *)(const void *)({xp})" if es == 2 else xp, "src": src, "dst": dst,
                          "offset": elem_off})
            off += s4[axis]
        return {"y": f"((int8_t *)(void *)({self.ptr(y)}))" if es == 2 else self.ptr(y), "parts": parts}

    def op_softmax(self, i: int, op: Op) -> dict[str, Any]:
        if self.g.t(op.inputs[0]).dtype == "int16":
            return self._lut16(i, op)
        x = op.inputs[0]
        depth = self.g.t(x).shape[-1]
        s16 = self.g.t(op.outputs[0]).dtype == "int16"  # int8 -> int16: mt_softmax_s8_s16
        return {
            "x": self.ptr(x),
            "y": f"(int16_t *)(void *)({self.ptr(op.outputs[0])})" if s16 else self.ptr(op.outputs[0]),
            "fn": "mt_softmax_s8_s16" if s16 else "mt_softmax_s8",
            "rows": self.g.t(x).size // depth,
            "depth": depth,
            "q": lower(self.g, op),
        }

    def _unary(self, i: int, op: Op) -> dict[str, Any]:
        return {
            "x": self.ptr(op.inputs[0]),
            "y": self.ptr(op.outputs[0]),
            "size": self.g.t(op.inputs[0]).size,
            "q": lower(self.g, op),
        }

    def op_logistic(self, i: int, op: Op) -> dict[str, Any]:
        return self._lut16(i, op) if self.g.t(op.inputs[0]).dtype == "int16" else self._unary(i, op)

    def op_tanh(self, i: int, op: Op) -> dict[str, Any]:
        return self._lut16(i, op) if self.g.t(op.inputs[0]).dtype == "int16" else self._unary(i, op)

    def _lut16(self, i: int, op: Op) -> dict[str, Any]:
        """int16 LOGISTIC / TANH / SOFTMAX: mt_<op>_s16 with TFLM's tables (runtime_c/mt_lut16.h)."""
        ctx = {**self._unary(i, op), "template": "lut16", "fn": f"mt_{op.kind}_s16", "softmax": op.kind == "softmax"}
        if op.kind == "softmax":
            ctx.update({"rows": ctx["q"]["rows"], "depth": ctx["q"]["depth"]})
        return ctx
    op_hard_swish = _unary
    def op_relu(self, i: int, op: Op) -> dict[str, Any]:
        return {**self._unary(i, op), "s16": self.g.t(op.inputs[0]).dtype == "int16"}

    def op_svdf(self, i: int, op: Op) -> dict[str, Any]:
        """mt_svdf_s8; its int16 state is a static array of model.c, zeroed at every invoke
        (reset_state 1), so each invoke equals TFLM's first (compiler/golden/reference.py svdf)."""
        q = lower(self.g, op)
        x, wf, wt, b = op.inputs[:4]
        s8 = q["state_dtype"] == "int8"  # int8 time weights and state: mt_svdf_state8_s8
        return {
            "fn": "mt_svdf_state8_s8" if s8 else "mt_svdf_s8",
            "st": "int8_t" if s8 else "int16_t",
            "x": self.ptr(x),
            "y": self.ptr(op.outputs[0]),
            "wf": self.const(wf, "int8_t"),
            "wt": self.const(wt, "int8_t" if s8 else "int16_t"),
            "b": self.const(b, "int32_t"),
            "state_size": q["batches"] * q["units"] * q["rank"] * q["memory"],
            "q": q,
        }

    def op_quantize(self, i: int, op: Op) -> dict[str, Any]:
        ctx = self._unary(i, op)
        src, dst = self.g.t(op.inputs[0]).dtype, self.g.t(op.outputs[0]).dtype
        fn = REQUANTIZE_KERNELS.get((src, dst))
        if fn is None:
            raise ModelError(f"codegen: QUANTIZE {src} -> {dst} ({op.name}) has no C kernel")
        ctx.update({"fn": fn, "in_ct": C_TYPES[src], "out_ct": C_TYPES[dst]})
        return ctx

    # -- transformer ops (layer by layer; codegen/token.py emits the token-plan loops) ------
    def op_layer_norm(self, i: int, op: Op) -> dict[str, Any]:
        q = lower(self.g, op)
        return {
            "x": self.ptr(op.inputs[0]),
            "y": self.ptr(op.outputs[0]),
            "gamma": self.array(f"s{i}_gamma", "int32_t", q["gamma_q"]),
            "beta": self.array(f"s{i}_beta", "int32_t", q["beta_q"]),
            "rows": q["rows"],
            "q": q,
        }

    def op_gelu(self, i: int, op: Op) -> dict[str, Any]:
        return {
            "x": self.ptr(op.inputs[0]),
            "y": self.ptr(op.outputs[0]),
            "lut": self.array(f"s{i}_lut", "int8_t", lower(self.g, op)["lut"]),
            "size": self.g.t(op.inputs[0]).size,
        }

    def op_batch_matmul(self, i: int, op: Op) -> dict[str, Any]:
        q = lower(self.g, op)
        m, k, n = q["m"], q["k"], q["n"]
        tb = q["transpose_b"]
        # broadcast batch dimensions (TFLite BATCH_MATMUL): one call per index of the leading batch
        # axes, the last batch axis inside the call (a_batch/b_batch 0 where that operand broadcasts)
        bs = q["batch_shape"] or (1,)
        sa, sb = (self.g.t(t).shape[:-2] for t in op.inputs[:2])
        sa, sb = (1,) * (len(bs) - len(sa)) + tuple(sa), (1,) * (len(bs) - len(sb)) + tuple(sb)
        ea, eb = _contiguous_strides(sa + (1,)), _contiguous_strides(sb + (1,))  # in matrices
        dims = {
            "batches": bs[-1], "m": m, "k": k, "n": n, "a_batch": m * k if sa[-1] > 1 else 0, "a_row": k,
            "b_batch": k * n if sb[-1] > 1 else 0, "b_k": 1 if tb else n, "b_n": k if tb else 1, "y_batch": m * n,
            "y_row": n,
        }  # fmt: skip
        s16 = self.g.t(op.outputs[0]).dtype == "int16"
        ct = "int16_t" if s16 else "int8_t"
        a0, b0 = self.ptr_or_const(op.inputs[0]), self.ptr_or_const(op.inputs[1])
        if s16:
            a0, b0 = (f"(const int16_t *)(const void *)({v})" for v in (a0, b0))
        y0 = f"(int16_t *)(void *)({self.ptr(op.outputs[0])})" if s16 else self.ptr(op.outputs[0])
        calls = []
        for idx in np.ndindex(*bs[:-1]):
            oa = sum(v * ea[d] for d, v in enumerate(idx) if sa[d] > 1) * m * k
            ob = sum(v * eb[d] for d, v in enumerate(idx) if sb[d] > 1) * k * n
            oy = int(np.ravel_multi_index(idx, bs[:-1])) * bs[-1] * m * n if idx else 0
            calls.append({"dims": 0, "a": f"({a0}) + {oa}" if oa else a0, "b": f"({b0}) + {ob}" if ob else b0,
                          "y": f"({y0}) + {oy}" if oy else y0})
        c = self.kernel(i)  # the plan's call: mt_batch_matmul_s8[_dsp] or mt_batch_matmul_s16
        extra = f", {self.scratch_ptr(i)}" if c.dsp else ""
        return {"q": q, "dims": [dims], "calls": calls, "fn": c.name, "extra": extra, "ct": ct}

    # -- token-plan stages (compiler.schedule.token): loops written by codegen/token.py ----------
    def op_token_embed(self, i: int, op: Op) -> dict[str, Any]:
        return embed_ctx(self, i, self.plan.steps[i])

    def op_token_attention(self, i: int, op: Op) -> dict[str, Any]:
        return attention_ctx(self, i, self.plan.steps[i])

    def op_token_mlp(self, i: int, op: Op) -> dict[str, Any]:
        return mlp_ctx(self, i, self.plan.steps[i])

    def _strided(
        self, op: Op, in_strides: list[int], base: int, shape: tuple[int, ...] | None = None
    ) -> dict[str, Any]:
        ys = tuple(shape) if shape is not None else self.g.t(op.outputs[0]).shape
        if len(ys) > 4:  # size-1 output axes move nothing; axes contiguous in the input merge
            dims: list[list[int]] = []
            for d, st in zip(ys, in_strides, strict=True):
                if d == 1:
                    continue
                if dims and dims[-1][1] == st * d:
                    dims[-1] = [dims[-1][0] * d, st]
                else:
                    dims.append([d, st])
            ys, in_strides = tuple(d for d, _ in dims) or (1,), [st for _, st in dims] or [0]
        if len(ys) > 4:
            raise ModelError(f"codegen: {op.kind} of rank {len(ys)} ({op.name}) is not supported (rank <= 4)")
        pad = 4 - len(ys)
        out_st = _contiguous_strides(ys)
        s = {"shape": [1] * pad + list(ys), "in_stride": [0] * pad + in_strides, "out_stride": [0] * pad + out_st}
        ct = C_TYPES.get(self.g.t(op.inputs[0]).dtype, "int8_t")
        x = f"(const {ct} *)(const void *)({self.ptr(op.inputs[0])})"
        return {
            "s": s,
            "x": f"({x} + {base})" if base else x,
            "y": f"({ct} *)(void *)({self.ptr(op.outputs[0])})",
            "fn": "mt_copy_strided_s16" if ct == "int16_t" else "mt_copy_strided_s8",
        }

    def op_transpose(self, i: int, op: Op) -> dict[str, Any]:
        lower(self.g, op)
        st = _contiguous_strides(self.g.t(op.inputs[0]).shape)
        return self._strided(op, [st[a] for a in op.attrs["perm"]], 0)

    def op_slice(self, i: int, op: Op) -> dict[str, Any]:
        lower(self.g, op)
        st = _contiguous_strides(self.g.t(op.inputs[0]).shape)
        # the loops run over the slice's own (full-rank) size: STRIDED_SLICE may drop axes after it
        return self._strided(op, st, int(np.dot(op.attrs["begin"], st)), op.attrs["size"])

    def op_lstm(self, i: int, op: Op) -> dict[str, Any]:
        """mt_lstm_s8 (runtime_c/mt_lstm_s8.c): weights and zero-point-folded biases in flash,
        the cell-state row in the step's scratch (compiler/schedule/layer.py portable_scratch)."""
        q = lower(self.g, op)
        st = self.plan.steps[i].scratch
        if st is None or st.size < 2 * q["units"]:
            raise ModelError(f"codegen: step {i} ({op.name}) has no scratch for its cell state")
        ws = [self.const(n, "int8_t") for n in op.inputs[1:9]]
        return {
            "q": q,
            "x": self.ptr(op.inputs[0]),
            "y": self.ptr(op.outputs[0]),
            "w_in": ws[:4],
            "w_rec": ws[4:],
            "b_in": [self.array(f"s{i}_inb{k}", "int32_t", q["in_bias"][k]) for k in range(4)],
            "b_rec": [self.array(f"s{i}_recb{k}", "int32_t", q["rec_bias"][k]) for k in range(4)],
            "scratch": self.scratch_ptr(i),
        }
    # -- TFLite elementwise ops (compiler/core/lower.py _lower_elementwise) -----------------------
    def op_squared_difference(self, i: int, op: Op) -> dict[str, Any]:
        return self._binary_bcast(i, op, True)  # ADD's parameter struct

    def op_prelu(self, i: int, op: Op) -> dict[str, Any]:
        ctx = self._binary_bcast(i, op, True)
        ctx.update({"template": "prelu", "a_ct": "int8_t"})
        return ctx

    def op_elu(self, i: int, op: Op) -> dict[str, Any]:
        return {**self.op_gelu(i, op), "template": "gelu"}  # mt_lut_s8 on the compiler's table

    def op_rsqrt(self, i: int, op: Op) -> dict[str, Any]:
        ctx = self._unary(i, op)
        if self.g.t(op.inputs[0]).dtype == "int8":
            ctx["lut"] = self.array(f"s{i}_lut", "int8_t", ctx["q"]["lut"])
        return ctx

    def op_l2_norm(self, i: int, op: Op) -> dict[str, Any]:
        return self._unary(i, op)

    # -- TFLite layout and reduction ops ------------------------------------------------------
    def op_strided_slice(self, i: int, op: Op) -> dict[str, Any]:
        lower(self.g, op)
        shape, strides, base = strided_slice_walk(self.g.t(op.inputs[0]).shape, op.attrs)
        return {**self._strided(op, strides, base, shape), "template": "slice"}

    def op_depth_to_space(self, i: int, op: Op) -> dict[str, Any]:
        lower(self.g, op)
        shape, strides = block_walk(op.kind, self.g.t(op.inputs[0]).shape, int(op.attrs["block_size"]))
        return {**self._strided(op, strides, 0, shape), "template": "slice"}

    op_space_to_depth = op_depth_to_space

    def _reduce_dims(self, op: Op) -> dict[str, list[int]]:
        return reduce_walk(self.g.t(op.inputs[0]).shape, op.attrs["axes"])

    def op_reduce_sum(self, i: int, op: Op) -> dict[str, Any]:
        s16 = self.g.t(op.inputs[0]).dtype == "int16"
        ct = "int16_t" if s16 else "int8_t"
        return {"template": "reduce", "d": self._reduce_dims(op), "q": lower(self.g, op), "ct": ct,
                "fn": "mt_reduce_sum_s16" if s16 else "mt_reduce_sum_s8",
                "x": self.ptr(op.inputs[0]), "y": self.ptr(op.outputs[0])}

    def op_reduce_max(self, i: int, op: Op) -> dict[str, Any]:
        lower(self.g, op)
        return {"template": "reduce", "d": self._reduce_dims(op), "q": None, "ct": "int8_t", "fn": "mt_reduce_max_s8",
                "x": self.ptr(op.inputs[0]), "y": self.ptr(op.outputs[0])}

    def op_arg_max(self, i: int, op: Op) -> dict[str, Any]:
        return {"template": "arg_min_max", "q": lower(self.g, op), "is_max": int(op.kind == "arg_max"),
                "x": self.ptr(op.inputs[0]), "y": self.ptr(op.outputs[0])}

    op_arg_min = op_arg_max

    def op_resize_bilinear(self, i: int, op: Op) -> dict[str, Any]:
        q = lower(self.g, op)
        n, h, w, c = self.g.t(op.inputs[0]).shape
        _, oh, ow, _ = self.g.t(op.outputs[0]).shape
        x, y = self.ptr(op.inputs[0]), self.ptr(op.outputs[0])
        return {  # one call per batch image (the kernel takes batch-1 views)
            "calls": [{"x": f"({x}) + {b * h * w * c}" if b else x, "y": f"({y}) + {b * oh * ow * c}" if b else y}
                      for b in range(n)],
            "xv": {"h": h, "w": w, "c": c, "row_stride": w * c, "col_stride": c},
            "yv": {"h": oh, "w": ow, "c": c, "row_stride": ow * c, "col_stride": c},
            "ymap": self.array(f"s{i}_ymap", "int32_t", q["y_map"]),
            "xmap": self.array(f"s{i}_xmap", "int32_t", q["x_map"]),
        }

    def io_list(self, names: list[str], kind: str) -> list[dict[str, Any]]:
        """Per graph input (output): its invoke parameter, macro suffix, size, place and type."""
        one = len(names) == 1
        return [
            _io_entry(self.g, self.plan, n, kind if one else f"{kind}{k}", "" if one else str(k))
            for k, n in enumerate(names)
        ]

    # -- files ----------------------------------------------------------------------------
    def render(self) -> dict[str, str]:
        stages = self.plan.patch_stages if isinstance(self.plan, PatchPlan) else []
        if stages:  # patch plan: each stage's steps are one loop over patches
            done = {s.index: s for k in range(len(stages)) for s in render_stage(self, _ENV, k)}
            steps = [done[i] if i in done else self.step(i, s.op) for i, s in enumerate(self.plan.steps)]
        else:
            steps = [self.step(i, s.op) for i, s in enumerate(self.plan.steps)]
        if self.opts.weights_spill is not None:
            self._spill_weights(*self.opts.weights_spill)
        g = self.g
        for n in g.inputs + g.outputs:
            if g.t(n).dtype not in C_TYPES:
                raise ModelError(
                    f"codegen: graph input/output {n!r} is {g.t(n).dtype}; int8, uint8, int16 (int32 out) is required"
                )
        ios = {"inputs": self.io_list(g.inputs, "input"), "outputs": self.io_list(g.outputs, "output")}
        x0, y0 = ios["inputs"][0], ios["outputs"][0]
        ctx = {
            "p": self.p,
            "P": self.p.upper(),
            "abi": RUNTIME_ABI,
            "model": g.name,
            "schedule": self.plan.schedule,
            "arena_bytes": max(main_pool_bytes(self.plan), 4),
            # memory pools besides the caller's arena: static arrays in their own linker sections
            "pools": [
                {"name": _c_name(n), "NAME": _c_name(n).upper(), "size": max(v, 4)}
                for n, v in self.plan.pool_bytes().items()
                if n not in ("arena", self.plan.detail.get("main_pool"))
            ],
            **ios,
            "n_in": len(g.inputs),
            "n_out": len(g.outputs),
            "in_bytes_total": sum(t["bytes"] for t in ios["inputs"]),
            "out_bytes_total": sum(t["bytes"] for t in ios["outputs"]),
            # the single-input/output names the one-input, one-output API keeps
            "input_bytes": x0["bytes"],
            "output_bytes": y0["bytes"],
            "input_in_arena": x0["in_arena"],
            "output_in_arena": y0["in_arena"],
            "input_offset": x0["offset"],
            "output_offset": y0["offset"],
            "input_shape": x0["shape"],
            "output_shape": y0["shape"],
            "input_dtype": x0["dtype"],
            "output_dtype": y0["dtype"],
            "in_ct": x0["ct"],
            "out_ct": y0["ct"],
            "input_scale": x0["scale"],
            "input_zp": x0["zp"],
            "output_scale": y0["scale"],
            "output_zp": y0["zp"],
            "macs": self.plan.macs,
            "n_steps": len(steps),
            "steps": steps,
            "const_decls": self.const_decls,
            "profile": self.opts.profile,
        }
        return {
            f"{self.p}.c": _ENV.get_template("model/model.c.j2").render(ctx),
            f"{self.p}.h": _ENV.get_template("model/model.h.j2").render(ctx),
            "main.c": _ENV.get_template("project/main.c.j2").render(ctx),
        }


def _c_name(pool: str) -> str:
    """A pool name as a C identifier / section name part ("sram1+sram2" -> "sram1_sram2")."""
    return "".join(c if c.isalnum() else "_" for c in pool)


# int32: the ARG_MAX/ARG_MIN outputs
C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t"}


def _io_entry(g: Graph, plan: Plan, name: str, param: str, suffix: str) -> dict[str, Any]:
    t = g.t(name)
    region, offset = plan.location(name)
    q = t.quant
    return {
        "tensor": name,
        "param": param,  # the invoke parameter: input/output, or input<k>/output<k> with several
        "suffix": suffix,  # macro suffix: "" for one input (output), else the index
        "bytes": t.nbytes,
        "in_arena": region == "arena",
        "offset": offset,
        "shape": "x".join(map(str, t.shape)),
        "dtype": t.dtype,
        "ct": C_TYPES[t.dtype],
        "scale": f"{q.s:.9g}" if q else "1",
        "zp": q.zp if q else 0,
    }


def strided_slice_walk(xs: tuple[int, ...], attrs: dict[str, Any]) -> tuple[tuple[int, ...], list[int], int]:
    """STRIDED_SLICE as a strided copy: (loop shape = size, input element strides = contiguous
    stride x step, may be < 0; base offset of the first element)."""
    st = _contiguous_strides(xs)
    steps = [s * k for s, k in zip(st, attrs["steps"], strict=True)]
    return tuple(attrs["size"]), steps, int(np.dot(attrs["begin"], st))


def block_walk(kind: str, xs: tuple[int, ...], b: int) -> tuple[tuple[int, int, int, int], list[int]]:
    """DEPTH_TO_SPACE / SPACE_TO_DEPTH of an NHWC input as a 4-D strided copy into the contiguous
    output: (loop shape, input element strides). depth_to_space walks output rows (n, h, i) as
    [(n h), i, w, (j c)]; space_to_depth walks [(n oh), ow, i, (j c)] (the (j, c) run is contiguous
    in both tensors)."""
    n, h, w, c = xs
    if kind == "depth_to_space":
        co = c // (b * b)
        return (n * h, b, w, b * co), [w * c, b * co, c, 1]
    return (n * h // b, w // b, b, b * c), [b * w * c, b * c, w * c, 1]


def reduce_walk(xs: tuple[int, ...], axes: Any) -> dict[str, list[int]]:
    """mt_reduce_dims of a reduction over `axes` of a rank <= 4 tensor (padded to 4-D in front)."""
    pad = 4 - len(xs)
    x4 = (1,) * pad + tuple(xs)
    red = {int(a) % max(len(xs), 1) + pad for a in axes}
    st = _contiguous_strides(x4)
    return {"shape": [1 if d in red else x4[d] for d in range(4)], "stride": st,
            "rshape": [x4[d] if d in red else 1 for d in range(4)], "rstride": st}


def _contiguous_strides(shape: tuple[int, ...]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return list(reversed(out))


def _bcast_strides(src: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    strides = []
    acc = 1
    for d in reversed(range(4)):
        strides.append(0 if src[d] == 1 and out[d] != 1 else acc)
        acc *= src[d]
    return list(reversed(strides))


def render_model(plan: Plan, opts: CodegenOptions | None = None) -> tuple[dict[str, str], int]:
    """Filename -> text of the model's C files, and the bytes of constant data they keep in internal
    flash (with opts.weights_spill the rest lies in the external flash pool).
    MicrotileError for a plan spread over several memory pools (compiler.schedule.pools): the
    planner can make one, the generated code cannot address it yet."""
    if list(plan.pool_bytes()) != ["arena"] and (plan.schedule != "layer" or "main_pool" not in plan.detail):
        raise MicrotileError(
            f"{plan.schedule} plans over several memory pools ({', '.join(plan.pool_bytes())}) are not generated yet "
            "(layer plans with a main pool are)"
        )
    e = _Emitter(plan, opts or CodegenOptions())
    files = e.render()
    return files, e.flash_const_bytes - e.external_const_bytes
