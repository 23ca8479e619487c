"""Which C kernel runs each op: one table of rows per op kind, consulted by the planner.

`TABLE[kind]` lists `KernelRow`s in priority order: the Cortex-M DSP kernels of
`runtime_c/mt_nn_fast.h` first, each with a predicate `when(graph, op, options)` that returns
the `KernelCall` (C function, scratch bytes, filter form) when the row applies and None when it
does not. After the rows, every op gets its portable kernel (`portable_call`: `PORTABLE[kind]`
where the name is not simply `mt_<kind>_<s8|s16>`), so a new op kind needs no row at all.
`plan_for` (compiler/planner.py) asks `kernel_calls` for every op, sizes the plans with their
scratch (`scratch_fn`), and records the call each step runs on the Plan (`attach_kernels`,
`attach_stage_kernels`: `Step.kernel`, `Step.kernels` for the ops of a token stage). Codegen
only prints the call.

Scratch bytes are the C kernels' own `*_get_buffer_size()` answers (`compiler.target.hostlib`, a host
build of runtime_c): never a Python copy of the formula.

A layer keeps its portable kernel when the core has no DSP extension, when its shape is not
covered (depth multiplier != 1, a filter zero point), or when the fast requantization would not
be exact: the fast kernels fold the input offset into the bias and compute TFLite's
double-rounding MultiplyByQuantizedMultiplier as SMMULR + a rounding shift, which equals
`mt_mbqm` whenever |accumulator| * 2^(left shift + 1) < 2^30 (`acc_bound` checks it from the
weights and bias, for every possible input). The step then keeps it when it runs in place
(unless the kernel allows that) or when the plan reserved less scratch than it asks for.

Filters of conv and FC stay int8 (the paired form where `pair_ok` finds it exact: one SXTB16 per
4 weights) unless widening to int16 pays: per layer, most instructions saved (`widen_gain`, from
INNER_COST) per extra flash byte first, while the board's flash allows (`--no-widen`: never);
the call records the decision (`describe()`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from compiler.core import quant as Q
from compiler.core.ir import Graph, Op, op_macs
from compiler.core.lower import lower
from compiler.schedule.plan import KernelCall, KernelParams, Plan, Step
from compiler.schedule.token import TokenStage
from compiler.target import hostlib

DSP_CORES = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85")
FLASH_CODE_RESERVE = 128 * 1024  # flash kept free for code and the harness when widening (fast kernels ~40 KB)
DW3X3_COLS_MAX_W = 8  # the column kernel for outputs at most this wide and at least twice as tall
DW3X3_PLANE_MAX = 6144  # scratch bytes up to which a 3x3 depthwise layer runs as whole planes


@dataclass
class KernelOptions:
    fast: bool = True  # use the DSP kernels where they apply
    widen: bool = True  # pre-widen filters to int16 while flash allows
    core: str = "cortex-m4"  # the board's core (DSP kernels only on DSP_CORES)

    @property
    def dsp(self) -> bool:
        return self.fast and self.core in DSP_CORES


Predicate = Callable[[Graph, Op, KernelOptions], "KernelCall | None"]


@dataclass(frozen=True)
class KernelRow:
    """One row of an op's table: `when(graph, op, options)` -> the call, or None when the row
    does not apply. `kernel` names the C function (for listings)."""

    kernel: str
    when: Predicate


def _groups(n: int) -> int:
    return (n + 3) // 4


# -- exactness of the fast kernels ---------------------------------------------------------


def acc_bound(w: np.ndarray, bias: np.ndarray | None, input_offset: int) -> np.ndarray:
    """Per output channel: max |sum((x + input_offset) * w) + bias| over all int8 inputs x.
    `w` is [out, K]."""
    xmax = max(abs(-128 + input_offset), abs(127 + input_offset))
    b = np.zeros(w.shape[0], np.int64) if bias is None else np.abs(bias.astype(np.int64))
    return np.abs(w.astype(np.int64)).sum(axis=1) * xmax + b


def fast_quant(w: np.ndarray, bias: np.ndarray | None, q: dict[str, Any], n_out: int) -> np.ndarray | None:
    """The [n_out, 5] int32 mt_fast_quant records (bias', mult, lshift, rnd, rshift), or None
    when the fast requantization would not be bit-exact for some input.

    Record (runtime_c/mt_simd.h mt_requant_q): a = acc << lshift (left shift + 1),
    out = (SMMLAR(a, mult, rnd) + (a >> 31)) >> rshift with rnd = 2^(e-1) + zp * 2^e and
    rshift = e >= 1 (e = TFLite right shift): SRDHM, RoundingDivideByPOT and the output zero
    point in 3 instructions. Exact while |acc << lshift| < 2^30 (then |SMMULR| <= 2^29) and
    |rnd| + 2^29 < 2^31. Channels whose output cannot vary (all-zero filter, or a right
    shift that rounds every reachable value to 0) become constant records: mult 0,
    rnd = 2c + 1, rshift 1 gives c for any accumulator."""
    off = int(q["input_offset"])
    zp = int(q["output_offset"])
    mult = np.broadcast_to(np.asarray(q["multiplier"], np.int64).reshape(-1), (n_out,))
    shift = np.broadcast_to(np.asarray(q["shift"], np.int64).reshape(-1), (n_out,))
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    bound = acc_bound(w, bias, off)
    amax = bound * (1 << (left + 1))
    const = ~np.any(w != 0, axis=1)  # all-zero filter: the output is a constant
    # |SMMULR(a, mult)| <= vmax; RoundingDivideByPOT(v, e) = 0 for |v| < 2^(e-1)
    vmax = (amax * mult + (1 << 31)) >> 32
    zero = (right >= 1) & (vmax < (np.int64(1) << np.maximum(right - 1, 0)))
    live = ~const & ~zero
    if np.any((amax >= (1 << 30)) & live):
        return None
    e = np.where(live, right, 1)
    rnd = (np.int64(1) << (e - 1)) + zp * (np.int64(1) << e)
    if np.any(live & ((e < 1) | (np.abs(rnd) + (1 << 29) + 1 >= (1 << 31)))):
        return None
    b = np.zeros(n_out, np.int64) if bias is None else bias.astype(np.int64)
    folded = b + off * w.astype(np.int64).sum(axis=1)
    folded = ((folded + (1 << 31)) % (1 << 32)) - (1 << 31)  # int32 wrap, as the C adds do
    out = np.stack([folded, mult, left + 1, rnd, e], axis=1)
    if np.any(~live):
        c = np.where(const, Q.mbqm(Q.wrap32(b), mult, shift), 0) + zp  # zero: RDP gives 0
        c = np.clip(c, q["act_min"], q["act_max"])
        k = ~live
        out[k] = np.stack([folded, np.zeros(n_out), np.zeros(n_out), 2 * c + 1, np.ones(n_out)], 1)[k]
    return out.astype(np.int32)


PAIR_SUM_LIMIT = 1 << 23  # |S_b| bound of the paired form: (A1 - A2) >> 8 recovers S_b mod 2^24


def pair_ok(w2: np.ndarray) -> bool:
    """Whether the paired int8 form (runtime_c/mt_nn_fast.h) is exact for the [rows, K]
    filter, rows paired (0, 1), (2, 3), ...: every b row's |sum x * w_b| < 2^23 for all int8
    x (128 * sum|w_b|), and b - (a < 0) fits int8 (only b = -128 with a < 0 does not)."""
    rows, k = w2.shape
    w = np.zeros((rows + rows % 2, k), np.int64)
    w[:rows] = w2
    a, b = w[0::2], w[1::2]
    if np.any(128 * np.abs(b).sum(axis=1) >= PAIR_SUM_LIMIT):
        return False
    return not np.any((b == -128) & (a < 0))


def _add_record(mult: int, shift: int, lshift: int) -> list[int] | None:
    """mt_fast_quant for MultiplyByQuantizedMultiplierSmallerThanOneExp of a value < 2^29."""
    if shift > 0:
        return None
    e = -shift
    if e > 30:
        return [0, 0, lshift, 1 << 30, 31]
    return [0, mult, lshift, 1 << e, e + 1]


def add_records(q: dict[str, Any]) -> list[list[int]] | None:
    """The q1, q2, qo records of mt_add_s8_dsp, or None when not exact."""
    if q["left_shift"] > 20:
        return None
    recs = [
        _add_record(q["input1_multiplier"], q["input1_shift"], q["left_shift"] + 1),
        _add_record(q["input2_multiplier"], q["input2_shift"], q["left_shift"] + 1),
        _add_record(q["output_multiplier"], q["output_shift"], 1),
    ]
    return None if any(r is None for r in recs) else recs  # type: ignore[return-value]


# -- packed filter sizes (layouts: runtime_c/mt_nn_fast.h; packers: codegen/kernels.py) ------


def packed_filter_bytes(w_shape: tuple[int, ...], kind: str, form: str) -> int:
    """Flash bytes of the packed filter of a conv (OHWI, channels in pairs), FC ([out, in], rows
    in fours) or depthwise (1HWC, channels in fours; "dw3x3": 5 int32 words per channel) layer,
    int8 forms; "w16" twice that."""
    if form in ("dw3x3", "dw3x3_t"):
        return 4 * 5 * int(w_shape[3])
    if kind == "conv2d":
        o = int(w_shape[0])
        n = (o + o % 2) * _groups(int(np.prod(w_shape[1:]))) * 4
    elif kind == "depthwise_conv2d":
        _, kh, kw, c = map(int, w_shape)
        n = kh * kw * _groups(c) * 4
    else:
        o, k = map(int, w_shape)
        n = -(-o // 4) * 4 * _groups(k) * 4
    return 2 * n if form == "w16" else n


# -- the rows ------------------------------------------------------------------------------


def _conv_parts(g: Graph, op: Op) -> tuple[np.ndarray, np.ndarray | None]:
    w = g.t(op.inputs[1]).data
    b = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else None
    return np.asarray(w), (np.asarray(g.t(b).data) if b else None)


def _fast_gate(g: Graph, op: Op, o: KernelOptions) -> tuple[np.ndarray, np.ndarray | None, dict] | None:
    """(filter, bias, lowered params) when a DSP conv/depthwise/FC kernel may run op: a DSP
    core, int8 in and out, constant filter with zero point 0."""
    if not o.dsp:
        return None
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if x.dtype != "int8" or y.dtype != "int8" or g.t(op.inputs[1]).data is None:
        return None
    q = lower(g, op)
    if int(q.get("weights_offset", 0)) != 0:
        return None
    w, b = _conv_parts(g, op)
    return w, b, q


def _conv_call(name: str, g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    gate = _fast_gate(g, op, o)
    if gate is None:
        return None
    w, b, q = gate
    oc = w.shape[0]
    if fast_quant(w.reshape(oc, -1), b, q, oc) is None:
        return None
    form = "s8p" if pair_ok(w.reshape(oc, -1)) else "s8"
    scratch = hostlib.buffer_size(name, hostlib.dims(*w.shape))
    return KernelCall(name, scratch, KernelParams(form, packed_filter_bytes(w.shape, op.kind, form)), dsp=True)


def _conv1x1_dsp(g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    """mt_conv_1x1_s8_dsp: 1x1 filters, exact requantization."""
    if tuple(g.t(op.inputs[1]).shape[1:3]) != (1, 1):
        return None
    return _conv_call("mt_conv_1x1_s8_dsp", g, op, o)


def _conv_dsp(g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    """mt_conv_s8_dsp: any filter, stride, dilation; exact requantization."""
    return _conv_call("mt_conv_s8_dsp", g, op, o)


def _dw_gate(g: Graph, op: Op, o: KernelOptions) -> tuple[np.ndarray, int, int, int, int] | None:
    """(filter, out h, out w, stride h, stride w) when a DSP depthwise kernel may run op:
    depth multiplier 1 and exact requantization."""
    gate = _fast_gate(g, op, o)
    if gate is None:
        return None
    w, b, q = gate
    _, kh, kw, c = w.shape
    if int(op.attrs.get("depth_multiplier", 1)) != 1 or c != g.t(op.inputs[0]).shape[-1]:
        return None
    if fast_quant(w.reshape(kh * kw, c).T, b, q, c) is None:
        return None
    y = g.t(op.outputs[0])
    return w, int(y.shape[1]), int(y.shape[2]), int(op.attrs["stride"][0]), int(op.attrs["stride"][1])


def _dw3x3_gate(g: Graph, op: Op, o: KernelOptions) -> tuple[np.ndarray, int, int, int, int] | None:
    """_dw_gate for a 3x3 undilated depthwise layer, else None."""
    if tuple(g.t(op.inputs[1]).shape[1:3]) != (3, 3) or tuple(op.attrs["dilation"]) != (1, 1):
        return None
    return _dw_gate(g, op, o)


def _dw3x3_cols_dsp(g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    """mt_depthwise_conv_3x3_cols_s8_dsp: 3x3, stride_h 1 or 2, outputs at most
    DW3X3_COLS_MAX_W wide and at least twice as tall, no more scratch than the row kernel."""
    gate = _dw3x3_gate(g, op, o)
    if gate is None:
        return None
    w, oh, ow, sh, sw = gate
    if sh not in (1, 2) or ow > DW3X3_COLS_MAX_W or oh < 2 * ow:
        return None
    cols = hostlib.buffer_size("mt_depthwise_conv_3x3_cols_s8_dsp", oh, sh)
    if sw in (1, 2) and cols > hostlib.buffer_size("mt_depthwise_conv_3x3_s8_dsp", ow, sw):
        return None
    p = KernelParams("dw3x3_t", packed_filter_bytes(w.shape, op.kind, "dw3x3_t"))
    return KernelCall("mt_depthwise_conv_3x3_cols_s8_dsp", cols, p, dsp=True)


def _dw3x3_plane_dsp(g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    """mt_depthwise_conv_3x3_plane_s8_dsp: 3x3, stride_w 1 or 2, when its scratch (the widened
    padded input plane of 4 channels) is at most DW3X3_PLANE_MAX bytes, for layers the column
    kernel does not take (tall narrow ones keep it: its scratch is a few columns)."""
    gate = _dw3x3_gate(g, op, o)
    if gate is None:
        return None
    w, oh, ow, sh, sw = gate
    if sw not in (1, 2) or (sh in (1, 2) and ow <= DW3X3_COLS_MAX_W and oh >= 2 * ow):
        return None
    name = "mt_depthwise_conv_3x3_plane_s8_dsp"
    size = hostlib.buffer_size(name, oh, ow, sh, sw)
    if size > DW3X3_PLANE_MAX:
        return None
    return KernelCall(name, size, KernelParams("dw3x3", packed_filter_bytes(w.shape, op.kind, "dw3x3")), dsp=True)


def _dw3x3_dsp(g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    """mt_depthwise_conv_3x3_s8_dsp: 3x3, stride_w 1 or 2 (scratch by output width)."""
    gate = _dw3x3_gate(g, op, o)
    if gate is None or gate[4] not in (1, 2):
        return None
    w, _, ow, _, sw = gate
    scratch = hostlib.buffer_size("mt_depthwise_conv_3x3_s8_dsp", ow, sw)
    p = KernelParams("dw3x3", packed_filter_bytes(w.shape, op.kind, "dw3x3"))
    return KernelCall("mt_depthwise_conv_3x3_s8_dsp", scratch, p, dsp=True)


def _dw_dsp(g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    """mt_depthwise_conv_s8_dsp: any kernel, stride, dilation."""
    gate = _dw_gate(g, op, o)
    if gate is None:
        return None
    w = gate[0]
    scratch = hostlib.buffer_size("mt_depthwise_conv_s8_dsp", hostlib.dims(*w.shape))
    return KernelCall("mt_depthwise_conv_s8_dsp", scratch,
                      KernelParams("s8", packed_filter_bytes(w.shape, op.kind, "s8")), dsp=True)  # fmt: skip


def _fc_dsp(g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    """mt_fully_connected_s8_dsp: exact requantization."""
    gate = _fast_gate(g, op, o)
    if gate is None:
        return None
    w, b, q = gate
    oc, n_in = w.shape
    if fast_quant(w, b, q, oc) is None:
        return None
    form = "s8p" if pair_ok(w) else "s8"
    scratch = hostlib.buffer_size("mt_fully_connected_s8_dsp", n_in)
    return KernelCall("mt_fully_connected_s8_dsp", scratch,
                      KernelParams(form, packed_filter_bytes(w.shape, op.kind, form)), dsp=True)  # fmt: skip


def _add_dsp(g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    """mt_add_s8_dsp: int8, same shapes, exact records; may run in place."""
    if not o.dsp:
        return None
    a, b, y = (g.t(n) for n in (*op.inputs[:2], op.outputs[0]))
    if not (a.shape == b.shape == y.shape) or {a.dtype, b.dtype, y.dtype} != {"int8"}:
        return None
    if add_records(lower(g, op)) is None:
        return None
    return KernelCall("mt_add_s8_dsp", 0, dsp=True, in_place=True)


def _bmm_dsp(g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    """mt_batch_matmul_s8_dsp: same parameters as the portable kernel, bit-exact for any
    quantization (it checks its fast requantization's range itself); scratch: one A row."""
    if not o.dsp or {g.t(n).dtype for n in (*op.inputs[:2], op.outputs[0])} != {"int8"}:
        return None
    k = int(lower(g, op)["k"])
    return KernelCall("mt_batch_matmul_s8_dsp", hostlib.buffer_size("mt_batch_matmul_s8_dsp", k), dsp=True)


def _s16_dsp(g: Graph, op: Op, o: KernelOptions) -> KernelCall | None:
    """16x8 conv / depthwise / FC: mt_conv_s16_dsp, mt_depthwise_conv_s16_dsp,
    mt_fully_connected_s16_dsp (runtime_c/mt_nn_fast.h): the portable kernels' arguments plus
    scratch and their bytes for every input (int32 SMLAD partials flushed into int64 before they
    can overflow; the portable requantization's values), the filter as in the model (no packed
    copy). Depthwise: depth multiplier 1 and at most 511 taps, else the portable kernel."""
    w = g.t(op.inputs[1])
    if not o.dsp or g.t(op.inputs[0]).dtype != "int16" or g.t(op.outputs[0]).dtype != "int16" or w.data is None:
        return None
    if op.kind == "conv2d":
        name = "mt_conv_s16_dsp"
        return KernelCall(name, hostlib.buffer_size(name, hostlib.dims(*w.shape)), dsp=True)
    if op.kind == "depthwise_conv2d":
        _, kh, kw, _ = w.shape
        if int(op.attrs.get("depth_multiplier", 1)) != 1 or kh * kw > 511:
            return None
        name = "mt_depthwise_conv_s16_dsp"
        return KernelCall(name, hostlib.buffer_size(name, hostlib.dims(*w.shape)), dsp=True)
    if int(lower(g, op).get("weights_offset", 0)) != 0:
        return None
    name = "mt_fully_connected_s16_dsp"
    return KernelCall(name, hostlib.buffer_size(name, int(w.shape[1])), dsp=True)


TABLE: dict[str, tuple[KernelRow, ...]] = {
    "conv2d": (
        KernelRow("mt_conv_1x1_s8_dsp", _conv1x1_dsp),
        KernelRow("mt_conv_s8_dsp", _conv_dsp),
        KernelRow("mt_conv_s16_dsp", _s16_dsp),
    ),
    "depthwise_conv2d": (
        KernelRow("mt_depthwise_conv_3x3_plane_s8_dsp", _dw3x3_plane_dsp),
        KernelRow("mt_depthwise_conv_3x3_cols_s8_dsp", _dw3x3_cols_dsp),
        KernelRow("mt_depthwise_conv_3x3_s8_dsp", _dw3x3_dsp),
        KernelRow("mt_depthwise_conv_s8_dsp", _dw_dsp),
        KernelRow("mt_depthwise_conv_s16_dsp", _s16_dsp),
    ),
    "fully_connected": (
        KernelRow("mt_fully_connected_s8_dsp", _fc_dsp),
        KernelRow("mt_fully_connected_s16_dsp", _s16_dsp),
    ),
    "add": (KernelRow("mt_add_s8_dsp", _add_dsp),),
    "batch_matmul": (KernelRow("mt_batch_matmul_s8_dsp", _bmm_dsp),),
}


# -- the portable kernels (the last row of every op) ---------------------------------------

# QUANTIZE (src dtype, dst dtype) -> its runtime_c kernel
REQUANTIZE_KERNELS = {
    ("int8", "int8"): "mt_requantize_s8",
    ("uint8", "int8"): "mt_requantize_u8_s8",
    ("int8", "uint8"): "mt_requantize_s8_u8",
    ("int8", "int16"): "mt_requantize_s8_s16",
    ("int16", "int8"): "mt_requantize_s16_s8",
    ("int16", "int16"): "mt_requantize_s16",
}


def _sfx(g: Graph, op: Op) -> str:
    return "s16" if g.t(op.outputs[0]).dtype == "int16" else "s8"


def _conv_portable(g: Graph, op: Op) -> KernelCall:
    if g.t(op.inputs[0]).dtype != "int8":
        return KernelCall(f"mt_{op.kind.removesuffix('2d')}_s16")
    name = "mt_conv_s8" if op.kind == "conv2d" else "mt_depthwise_conv_s8"
    _, h, w, c = (int(d) for d in g.t(op.inputs[0]).shape)
    fd = hostlib.dims(*g.t(op.inputs[1]).shape)
    # an in-place depthwise step's ring is the planner's (compiler/schedule/inplace.py)
    return KernelCall(name, hostlib.buffer_size(name, fd, hostlib.view(h, w, c)))


def _binary_portable(g: Graph, op: Op) -> KernelCall:
    shapes = {g.t(n).shape for n in (*op.inputs[:2], op.outputs[0])}
    if _sfx(g, op) == "s8" and len(shapes) > 1:
        return KernelCall(f"mt_{op.kind}_broadcast_s8", in_place=True)
    return KernelCall(f"mt_{op.kind}_{_sfx(g, op)}", in_place=True)


def _quantize_portable(g: Graph, op: Op) -> KernelCall:
    key = (g.t(op.inputs[0]).dtype, g.t(op.outputs[0]).dtype)
    return KernelCall(REQUANTIZE_KERNELS.get(key, f"mt_requantize_{_sfx(g, op)}"), in_place=True)


def _named(fmt: str) -> Callable[[Graph, Op], KernelCall]:
    return lambda g, op: KernelCall(fmt.format(s=_sfx(g, op)))


# op kind -> its portable call where the name is not mt_<kind>_<s8|s16>
PORTABLE: dict[str, Callable[[Graph, Op], KernelCall]] = {
    "conv2d": _conv_portable,
    "depthwise_conv2d": _conv_portable,
    "add": _binary_portable,
    "mul": _binary_portable,
    "quantize": _quantize_portable,
    "avg_pool2d": _named("mt_avg_pool_{s}"),
    "max_pool2d": _named("mt_max_pool_{s}"),
    "mean": _named("mt_mean_hw_{s}"),
    "concat": _named("mt_copy_s8"),
    "pad": _named("mt_pad_s8"),
    "gelu": _named("mt_lut_s8"),
    "transpose": _named("mt_copy_strided_{s}"),
    "slice": _named("mt_copy_strided_{s}"),
    "reshape": lambda g, op: KernelCall(""),
    "dequantize": lambda g, op: KernelCall(""),  # graph outputs only: the caller dequantizes
    "elu": _named("mt_lut_s8"),
    "strided_slice": _named("mt_copy_strided_{s}"),
    "depth_to_space": _named("mt_copy_strided_{s}"),
    "space_to_depth": _named("mt_copy_strided_{s}"),
    "arg_max": _named("mt_arg_min_max_s8"),
    "arg_min": _named("mt_arg_min_max_s8"),
    "softmax": lambda g, op: KernelCall(
        "mt_softmax_s8_s16" if (g.t(op.inputs[0]).dtype, g.t(op.outputs[0]).dtype) == ("int8", "int16")
        else f"mt_softmax_{_sfx(g, op)}"
    ),
    "svdf": lambda g, op: KernelCall("mt_svdf_state8_s8" if g.t(op.inputs[2]).dtype == "int8" else "mt_svdf_s8"),
}


def portable_call(g: Graph, op: Op) -> KernelCall:
    """The portable C kernel of op: PORTABLE[kind], else mt_<kind>_<s8|s16>; token-plan stages
    (kind token_*) run several kernels and have no call of their own ("")."""
    if op.kind.startswith("token_"):
        return KernelCall("")
    fn = PORTABLE.get(op.kind)
    return fn(g, op) if fn is not None else KernelCall(f"mt_{op.kind}_{_sfx(g, op)}")


def choose_call(g: Graph, op: Op, o: KernelOptions, skip: tuple[str, ...] = ()) -> KernelCall:
    """The first row of TABLE[op.kind] that applies (rows whose kernel is in `skip` passed
    over), else the portable kernel."""
    for row in TABLE.get(op.kind, ()):
        if row.kernel in skip:
            continue
        c = row.when(g, op, o)
        if c is not None:
            return c
    return portable_call(g, op)


def lost_to_in_place(plan: Plan, calls: dict[str, KernelCall]) -> list[Step]:
    """The depthwise steps `plan` runs in place although `calls` gives them a DSP kernel that
    cannot run in place (the portable in-place kernel runs: ~15x the instructions on vww)."""
    return [
        s
        for s in plan.steps
        if s.in_place and s.op.kind == "depthwise_conv2d"
        and (c := calls.get(s.op.name)) is not None and c.dsp and not c.in_place
    ]


# -- widening: per layer, while flash allows -----------------------------------------------

# Instructions per MAC of the inner loops per filter form (runtime_c: per group of 4 reduction
# values and block; the asm runs on the M4), used to rank layers for widening. Matrix core
# (2 channels x 2 pixels): int16 10/16, paired int8 12/16, int8 16/16; FC (4 rows): 11/16 +
# loop, 14/16 + loop, 18/16 + loop; depthwise (4 channels): int16 vs int8 SXTB16 per tap.
INNER_COST = {
    "mt_conv_1x1_s8_dsp": {"w16": 0.625, "s8p": 0.75, "s8": 1.0},
    "mt_conv_s8_dsp": {"w16": 0.625, "s8p": 0.75, "s8": 1.0},
    "mt_fully_connected_s8_dsp": {"w16": 0.72, "s8p": 0.91, "s8": 1.2},
    "mt_depthwise_conv_s8_dsp": {"w16": 1.0, "s8": 1.5},
}


def widen_gain(graph: Graph, op: Op, c: KernelCall) -> int:
    """Estimated instructions int16 filters save over the layer's int8 form (INNER_COST)."""
    cost = INNER_COST.get(c.name)
    if cost is None:
        return 0
    narrow = cost["s8p"] if c.paired else cost["s8"]
    return int(op_macs(graph, op) * (narrow - cost["w16"]))


def _widen(graph: Graph, calls: dict[str, KernelCall], flash_bytes: int, widen: bool) -> None:
    """Widens the filters that save the most instructions per extra flash byte first, while the
    model's constants stay under flash_bytes less FLASH_CODE_RESERVE; notes each decision."""
    ops = {op.name: op for op in graph.ops}
    gains = {n: widen_gain(graph, ops[n], c) for n, c in calls.items() if c.dsp and c.params.filter_bytes > 0}
    gains = {n: g for n, g in gains.items() if g > 0 and not calls[n].dw3x3}
    if not widen:
        for n in gains:
            calls[n].params.note = "int8: --no-widen"
        return
    room = flash_bytes - FLASH_CODE_RESERVE - sum(t.nbytes for t in graph.constants())
    for name in sorted(gains, key=lambda n: (-gains[n] / calls[n].params.filter_bytes, n)):
        p = calls[name].params
        extra = p.filter_bytes
        rate = f"~{gains[name]:,} instr for +{extra:,} B"
        if extra <= room:
            room -= extra
            p.filter, p.filter_bytes = "w16", 2 * extra
            p.note = f"widened: {rate}"
        else:
            p.note = f"int8: widening would save {rate}, {max(room, 0):,} B flash left"


def kernel_calls(graph: Graph, flash_bytes: int, opts: KernelOptions | None = None) -> dict[str, KernelCall]:
    """Op name -> the kernel call the table picks for it (every op), filters widened per layer
    while `flash_bytes` allows (`opts.widen`). Raises MicrotileError without a host C compiler
    (compiler.target.hostlib)."""
    opts = opts or KernelOptions()
    calls = {op.name: choose_call(graph, op, opts) for op in graph.ops}
    _widen(graph, calls, flash_bytes, opts.widen)
    return calls


def any_dsp(calls: dict[str, KernelCall]) -> bool:
    return any(c.dsp for c in calls.values())


# -- what the planners reserve and what the Plan records -----------------------------------


def window_scratch(graph: Graph, op: Op, c: KernelCall, out_w: int) -> int:
    """Scratch of c called on an output window out_w wide (a patch-stage call): the 3x3 row
    kernel asks by width, the others as for the whole layer."""
    if c.name == "mt_depthwise_conv_3x3_s8_dsp":
        return hostlib.buffer_size(c.name, int(out_w), int(op.attrs["stride"][1]))
    if c.name == "mt_depthwise_conv_3x3_plane_s8_dsp":  # the layer's height (an upper bound), the call's width
        sh, sw = (int(v) for v in op.attrs["stride"])
        return hostlib.buffer_size(c.name, int(graph.t(op.outputs[0]).shape[1]), int(out_w), sh, sw)
    return c.scratch_bytes


def scratch_fn(calls: dict[str, KernelCall]):
    """The per-step scratch function the planners take (`plan_layer(scratch=...)`): bytes of
    step i's call, and `.window(graph, i, out_w)` for a patch-stage call out_w wide."""

    def scratch(graph: Graph, i: int) -> int:
        c = calls.get(graph.ops[i].name)
        return c.scratch_bytes if c is not None else 0

    def window(graph: Graph, i: int, out_w: int) -> int:
        op = graph.ops[i]
        c = calls.get(op.name)
        return window_scratch(graph, op, c, out_w) if c is not None else 0

    scratch.window = window  # type: ignore[attr-defined]
    return scratch


def _fits(st: Step, c: KernelCall) -> KernelCall | None:
    """c as step st runs it (its scratch: the widest patch call's), or None when the step cannot:
    in place and c may not, or less scratch reserved than c asks for."""
    if st.in_place and not c.in_place:
        return None
    need = c.scratch_bytes if st.kernel_scratch is None else st.kernel_scratch  # a patch step: its widest call's
    if need > 0 and (st.scratch is None or st.scratch.size < need):
        return None
    return c if need == c.scratch_bytes else replace(c, scratch_bytes=need)


def attach_kernels(plan: Plan, calls: dict[str, KernelCall]) -> None:
    """Records on every step the call it runs (`step.kernel`): the table's, where the step can
    run it (`_fits`), else the op's portable kernel. Patch-stage steps included."""
    g = plan.graph
    for st in plan.steps:
        c = calls.get(st.op.name)
        fit = _fits(st, c) if c is not None and c.dsp else None
        st.kernel = fit if fit is not None else (c if c is not None and not c.dsp else portable_call(g, st.op))


def attach_stage_kernels(plan: Plan, calls: dict[str, KernelCall]) -> None:
    """Token-plan stages (compiler/schedule/token.py): each stage step records the call of every
    op it runs (`step.kernels`, op name -> call): the table's DSP kernel where its scratch fits
    the stage's shared kernel scratch "F", else the portable one."""
    g = plan.graph
    for st in plan.steps:
        ts = st.stage
        if not isinstance(ts, TokenStage):
            continue
        u = ts.unit
        room = ts.workspace.get("F", (0, 0))[1]
        st.kernels = {}
        fast = []
        for op in u.ops:
            c = calls.get(op.name)
            if c is not None and c.dsp and c.scratch_bytes <= room:
                st.kernels[op.name] = c
                fast.append(c)
            else:
                st.kernels[op.name] = c if c is not None and not c.dsp else portable_call(g, op)
        if fast:
            names = sorted({c.short() for c in fast})
            st.notes.append(f"fast kernels: {len(fast)} ops ({', '.join(names)})")


def step_calls(st: Step) -> list[KernelCall]:
    """The calls a step runs: its own, and the ops' of a token stage."""
    return [c for c in (st.kernel, *st.kernels.values()) if c is not None]


def kernel_summary(plan: Plan) -> dict[str, Any]:
    """report.json's "kernels": fast kernels per name, and the flash their filters take."""
    used: dict[str, int] = {}
    wide = narrow = 0
    for c in (c for st in plan.steps for c in step_calls(st) if c.dsp):
        used[c.short()] = used.get(c.short(), 0) + 1
        if c.wide:
            wide += c.params.filter_bytes
        else:
            narrow += c.params.filter_bytes
    return {"fast": used, "widened_filter_bytes": wide, "int8_filter_bytes": narrow}


__all__ = [
    "DSP_CORES",
    "FLASH_CODE_RESERVE",
    "KernelCall",
    "KernelOptions",
    "KernelParams",
    "KernelRow",
    "PORTABLE",
    "TABLE",
    "add_records",
    "attach_kernels",
    "attach_stage_kernels",
    "choose_call",
    "fast_quant",
    "kernel_calls",
    "kernel_summary",
    "portable_call",
    "scratch_fn",
]
