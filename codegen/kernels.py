"""Which C kernel runs each layer, and the data it reads: the fast-kernel predicate table.

`select_kernels(graph, board, opts)` decides, per op, whether a Cortex-M DSP kernel of
`runtime_c/mt_nn_fast.h` replaces the portable one, how much scratch it needs (the planner
reserves it through `plan_layer(scratch=...)`), and the form of its filter in flash: int8
(conv and FC in the paired form where `pair_ok` finds it exact: one SXTB16 per 4 weights),
or pre-widened to int16 (twice the flash, fewer instructions). Widening is chosen per layer,
most instructions saved (`widen_gain`, from INNER_COST) per extra flash byte first, while the
board's flash allows; `--no-widen` never widens; the plan shows each decision (describe()).
Codegen then only writes the choice down with the packers below.

A layer keeps its portable kernel when the core has no DSP extension, when its shape is
not covered (depth multiplier != 1, a filter zero point), or when the fast requantization
would not be exact: the fast kernels fold the input offset into the bias and compute
TFLite's double-rounding MultiplyByQuantizedMultiplier as SMMULR + a rounding shift, which
equals `mt_mbqm` whenever |accumulator| * 2^(left shift + 1) < 2^30 (`acc_bound` checks it
from the weights and bias, for every possible input).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler import quant as Q
from compiler.ir import Graph, Op, op_macs
from compiler.lower import lower
from compiler.schedule.plan import Plan

DSP_CORES = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85")
FLASH_CODE_RESERVE = 128 * 1024  # flash kept free for code and the harness when widening (fast kernels ~40 KB)


@dataclass
class KernelOptions:
    fast: bool = True  # use the DSP kernels where they apply
    widen: bool = True  # pre-widen filters to int16 while flash allows


@dataclass
class KernelChoice:
    """The kernel of one op: its C function, scratch bytes and packed-filter form."""

    name: str  # C function, e.g. mt_conv_1x1_s8_dsp
    template: str  # codegen/templates/ops/<template>.c.j2
    scratch: int  # bytes
    wide: bool  # filter pre-widened to int16 pairs
    filter_bytes: int  # flash for the packed filter
    extra: dict[str, Any] = field(default_factory=dict)
    paired: bool = False  # int8 filter in the paired form (exact for this layer; conv and FC)

    def form(self) -> int:
        """mt_fast_params.wide: MT_FILTER_S8 0, MT_FILTER_S16 1, MT_FILTER_S8_PAIRED 2."""
        return 1 if self.wide else (2 if self.paired else 0)

    def short(self) -> str:
        """Kernel and filter form: w16 (pre-widened int16), s8p (paired int8), s8 (int8)."""
        if self.filter_bytes == 0 or self.extra.get("dw3x3"):
            return self.name
        return f"{self.name} {'w16' if self.wide else ('s8p' if self.paired else 's8')}"

    def describe(self) -> str:
        """short() plus the widening decision (select_kernels): what int16 filters save, in
        estimated instructions, for how many extra flash bytes, or why the layer kept int8."""
        note = self.extra.get("widen_note")
        return f"{self.short()} ({note})" if note else self.short()


def _groups(n: int) -> int:
    return (n + 3) // 4


# -- exactness ---------------------------------------------------------------------------


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


# -- filter packing (layouts: runtime_c/mt_nn_fast.h) ------------------------------------


def _widen_groups(g8: np.ndarray) -> np.ndarray:
    """[..., 4] int8 groups -> [..., 2] int32 words (k0 | k2 << 16), (k1 | k3 << 16)."""
    g = g8.astype(np.int64)
    lo = np.stack([g[..., 0], g[..., 1]], axis=-1) & 0xFFFF
    hi = np.stack([g[..., 2], g[..., 3]], axis=-1) & 0xFFFF
    words = lo | (hi << 16)
    return ((words + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def _rows_to_groups(w2: np.ndarray, rows_multiple: int) -> np.ndarray:
    """[rows, K] -> [rows_padded, groups, 4] int8, zero-padded."""
    rows, k = w2.shape
    rp = -(-rows // rows_multiple) * rows_multiple
    out = np.zeros((rp, _groups(k) * 4), np.int8)
    out[:rows, :k] = w2
    return out.reshape(rp, _groups(k), 4)


def _interleave(groups: np.ndarray, n: int) -> np.ndarray:
    """[rows, G, 4] -> [rows/n, G, n, 4]: per block of n rows, per group, each row's group."""
    rows, g, _ = groups.shape
    return groups.reshape(rows // n, n, g, 4).transpose(0, 2, 1, 3)


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


def _pair_words(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[..., 4] int8 groups of channels a, b -> [..., 2, 4] int8: the words
    [a0, b0', a2, b2'], [a1, b1', a3, b3'] with b' = b - (a < 0), so each int16 halfword
    is a + 256 b and SXTB16 gives (a0, a2) / (a1, a3)."""
    a = a.astype(np.int64)
    bp = b.astype(np.int64) - (a < 0)
    w0 = np.stack([a[..., 0], bp[..., 0], a[..., 2], bp[..., 2]], axis=-1)
    w1 = np.stack([a[..., 1], bp[..., 1], a[..., 3], bp[..., 3]], axis=-1)
    return np.stack([w0, w1], axis=-2).astype(np.int8)


def conv_reduction(w: np.ndarray) -> np.ndarray:
    """OHWI conv filter -> [O, K] in the matrix core's reduction order (mt_nn_fast.h): (ky, kx,
    ic) when in_ch is a multiple of 4, else the kernel-row order: each kernel row's first
    4 * (R // 4) of its R = kw * in_ch values, row by row, then the rows' last R % 4, row by
    row (the same as (ky, kx, ic) for one kernel row)."""
    o, kh, kw, ic = w.shape
    if ic % 4 == 0:
        return w.reshape(o, -1)
    rows = w.reshape(o, kh, kw * ic)
    full = (kw * ic) // 4 * 4
    return np.concatenate([rows[:, :, :full].reshape(o, -1), rows[:, :, full:].reshape(o, -1)], axis=1)


def pack_conv(w: np.ndarray, wide: bool, paired: bool = False) -> np.ndarray:
    """OHWI conv filter -> channel pairs interleaved per group (int8, the paired int8 form,
    or int16 words of the doubled weights: the matrix core then skips the requantization's
    left shift of 1, and fast_params doubles the records' bias to match); the reduction in
    conv_reduction's order."""
    blocks = _interleave(_rows_to_groups(conv_reduction(w), 2), 2)
    if wide:
        return _widen_groups(2 * blocks.astype(np.int64)).reshape(-1)
    if paired:
        return _pair_words(blocks[:, :, 0], blocks[:, :, 1]).reshape(-1)
    return blocks.reshape(-1)


def pack_fc(w: np.ndarray, wide: bool, paired: bool = False) -> np.ndarray:
    """[out, in] filter -> rows in fours interleaved per group (int8, paired int8: per group
    the pair (4j, 4j+1)'s two words then (4j+2, 4j+3)'s, or int16)."""
    blocks = _interleave(_rows_to_groups(w, 4), 4)
    if wide:
        return _widen_groups(blocks).reshape(-1)
    if paired:
        p0 = _pair_words(blocks[:, :, 0], blocks[:, :, 1])
        p1 = _pair_words(blocks[:, :, 2], blocks[:, :, 3])
        return np.stack([p0, p1], axis=2).reshape(-1)
    return blocks.reshape(-1)


def dw3x3_scratch(out_w: int, stride_w: int) -> int:
    """mt_depthwise_conv_3x3_s8_dsp_get_buffer_size."""
    n = out_w + 3 if stride_w == 1 else 2 * out_w + 2
    return 4 * (out_w + 2) + 2 * 13 * ((n + 1) & ~1)


def dw3x3_cols_scratch(out_h: int, stride_h: int) -> int:
    """mt_depthwise_conv_3x3_cols_s8_dsp_get_buffer_size."""
    n = out_h + 3 if stride_h == 1 else 2 * out_h + 2
    return 2 * 4 * ((n + 1) & ~1)


def dw3x3_plane_scratch(out_h: int, out_w: int, stride_h: int, stride_w: int) -> int:
    """mt_depthwise_conv_3x3_plane_s8_dsp_get_buffer_size."""
    n = out_w + 3 if stride_w == 1 else 2 * out_w + 2
    return 4 * (out_w + 1) + 2 * 4 * ((out_h - 1) * stride_h + 3) * ((n + 1) & ~1)


DW3X3_PLANE_MAX = 6144  # scratch bytes up to which a 3x3 depthwise layer runs as whole planes
DW3X3_COLS_MAX_W = 8  # the column kernel for outputs at most this wide and at least twice as tall


def pack_dw3x3(w: np.ndarray) -> np.ndarray:
    """1x3x3xC depthwise filter -> per channel 5 int32 words of doubled weights:
    (w00 | w01 << 16), (w10 | w11 << 16), (w20 | w21 << 16), (w02 | w12 << 16), w22."""
    k = 2 * w.reshape(3, 3, -1).astype(np.int64)
    lo = lambda v: v & 0xFFFF  # noqa: E731
    words = np.stack(
        [lo(k[0, 0]) | lo(k[0, 1]) << 16, lo(k[1, 0]) | lo(k[1, 1]) << 16, lo(k[2, 0]) | lo(k[2, 1]) << 16,
         lo(k[0, 2]) | lo(k[1, 2]) << 16, k[2, 2]],
        axis=1,
    )  # fmt: skip
    return ((words + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32).reshape(-1)


def pack_dw(w: np.ndarray, wide: bool) -> np.ndarray:
    """1HWC depthwise filter -> channels in fours; per four, per tap, the four weights."""
    _, kh, kw, c = w.shape
    cp = _groups(c) * 4
    t = np.zeros((kh * kw, cp), np.int8)
    t[:, :c] = w.reshape(kh * kw, c)
    blocks = t.reshape(kh * kw, cp // 4, 4).transpose(1, 0, 2)  # [group, tap, 4]
    return _widen_groups(blocks).reshape(-1) if wide else blocks.reshape(-1)


# -- the predicate table -------------------------------------------------------------------


def _conv_parts(g: Graph, op: Op) -> tuple[np.ndarray, np.ndarray | None]:
    w = g.t(op.inputs[1]).data
    b = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else None
    return np.asarray(w), (np.asarray(g.t(b).data) if b else None)


def _choose(g: Graph, op: Op) -> KernelChoice | None:
    """The fast kernel for op (narrow filter), or None: the rows of the predicate table."""
    if op.kind == "add":
        return _choose_add(g, op)
    if op.kind == "batch_matmul":
        return _choose_bmm(g, op)
    if op.kind not in ("conv2d", "depthwise_conv2d", "fully_connected"):
        return None
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if x.dtype != "int8" or y.dtype != "int8" or g.t(op.inputs[1]).data is None:
        return None
    q = lower(g, op)
    if int(q.get("weights_offset", 0)) != 0:
        return None
    w, b = _conv_parts(g, op)
    if op.kind == "conv2d":
        o, kh, kw, ic = w.shape
        if fast_quant(w.reshape(o, -1), b, q, o) is None:
            return None
        k = _groups(kh * kw * ic)  # the kernel-row order has as many groups
        paired = pair_ok(w.reshape(o, -1))
        if kh == 1 and kw == 1:
            return KernelChoice("mt_conv_1x1_s8_dsp", "conv2d_dsp", 16 * k, False, 0, paired=paired)
        return KernelChoice("mt_conv_s8_dsp", "conv2d_dsp", 20 * k, False, 0, paired=paired)
    if op.kind == "depthwise_conv2d":
        _, kh, kw, c = w.shape
        if int(op.attrs.get("depth_multiplier", 1)) != 1 or c != x.shape[-1]:
            return None
        if fast_quant(w.reshape(kh * kw, c).T, b, q, c) is None:
            return None
        sw = int(op.attrs["stride"][1])
        sh = int(op.attrs["stride"][0])
        oh, ow = int(y.shape[1]), int(y.shape[2])
        if (kh, kw) == (3, 3) and tuple(op.attrs["dilation"]) == (1, 1):
            plane = _choose_dw3x3_plane(oh, ow, sh, sw)
            if plane is not None:
                return plane
        if (kh, kw) == (3, 3) and tuple(op.attrs["dilation"]) == (1, 1) and sh in (1, 2) and ow <= DW3X3_COLS_MAX_W:
            cols = dw3x3_cols_scratch(oh, sh)
            if oh >= 2 * ow and (sw not in (1, 2) or cols <= dw3x3_scratch(ow, sw)):  # no more scratch
                extra = {"dw3x3": 1, "transposed": 1}
                return KernelChoice("mt_depthwise_conv_3x3_cols_s8_dsp", "depthwise_conv2d_dsp", cols, False, 0, extra)
        if (kh, kw) == (3, 3) and tuple(op.attrs["dilation"]) == (1, 1) and sw in (1, 2):
            scratch = dw3x3_scratch(ow, sw)
            return KernelChoice("mt_depthwise_conv_3x3_s8_dsp", "depthwise_conv2d_dsp", scratch, False, 0, {"dw3x3": 1})
        return KernelChoice("mt_depthwise_conv_s8_dsp", "depthwise_conv2d_dsp", 0, False, 0)
    o, n_in = w.shape
    if fast_quant(w, b, q, o) is None:
        return None
    return KernelChoice(
        "mt_fully_connected_s8_dsp", "fully_connected_dsp", 8 * _groups(n_in), False, 0, paired=pair_ok(w)
    )


def _choose_dw3x3_plane(oh: int, ow: int, sh: int, sw: int) -> KernelChoice | None:
    """The plane variant of the 3x3 depthwise kernel when its scratch is at most
    DW3X3_PLANE_MAX bytes, for layers the column kernel does not take (tall narrow ones keep
    it: its scratch is a few columns, so the planner keeps its peak); else None."""
    if sw not in (1, 2) or (sh in (1, 2) and ow <= DW3X3_COLS_MAX_W and oh >= 2 * ow):
        return None
    size = dw3x3_plane_scratch(oh, ow, sh, sw)
    if size > DW3X3_PLANE_MAX:
        return None
    return KernelChoice("mt_depthwise_conv_3x3_plane_s8_dsp", "depthwise_conv2d_dsp", size, False, 0,
                        {"dw3x3": 1, "plane": 1})


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


def _choose_add(g: Graph, op: Op) -> KernelChoice | None:
    a, b, y = (g.t(n) for n in (*op.inputs[:2], op.outputs[0]))
    if not (a.shape == b.shape == y.shape) or {a.dtype, b.dtype, y.dtype} != {"int8"}:
        return None
    if add_records(lower(g, op)) is None:
        return None
    return KernelChoice("mt_add_s8_dsp", "add_dsp", 0, False, 0, extra={"in_place_ok": True})


def _choose_bmm(g: Graph, op: Op) -> KernelChoice | None:
    """mt_batch_matmul_s8_dsp: same parameters as the portable kernel, bit-exact for any
    quantization (it checks its fast requantization's range itself); scratch: one A row."""
    if {g.t(n).dtype for n in (*op.inputs[:2], op.outputs[0])} != {"int8"}:
        return None
    k = int(lower(g, op)["k"])
    return KernelChoice("mt_batch_matmul_s8_dsp", "batch_matmul", 16 * _groups(k), False, 0)


def packed_bytes(g: Graph, op: Op, wide: bool) -> int:
    if op.kind in ("add", "batch_matmul"):
        return 0
    w, _ = _conv_parts(g, op)
    if op.kind == "conv2d":
        n = pack_conv(w, False).size
    elif op.kind == "depthwise_conv2d":
        n = pack_dw(w, False).size
    else:
        n = pack_fc(w, False).size
    return 2 * n if wide else n


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


def widen_gain(graph: Graph, op: Op, c: KernelChoice) -> int:
    """Estimated instructions int16 filters save over the layer's int8 form (INNER_COST)."""
    cost = INNER_COST.get(c.name)
    if cost is None:
        return 0
    narrow = cost["s8p"] if c.paired else cost["s8"]
    return int(op_macs(graph, op) * (narrow - cost["w16"]))


def select_kernels(
    graph: Graph, core: str, flash_bytes: int, opts: KernelOptions | None = None
) -> dict[str, KernelChoice]:
    """Op name -> fast kernel choice, for the ops that get one on this core.

    Filters stay int8 (the paired form where it is exact, mt_nn_fast.h) unless widening
    pays: per layer, int16 filters save widen_gain() instructions for filter_bytes more
    flash; layers are widened in order of instructions saved per extra flash byte (the
    hottest first) while the model's constants stay under the board's flash less
    FLASH_CODE_RESERVE. `opts.widen` False (--no-widen) never widens. Each choice notes its
    decision (describe(), shown in the plan)."""
    opts = opts or KernelOptions()
    if not opts.fast or core not in DSP_CORES:
        return {}
    choices: dict[str, KernelChoice] = {}
    for op in graph.ops:
        c = _choose(graph, op)
        if c is not None:
            c.filter_bytes = packed_bytes(graph, op, False)
            if c.extra.get("dw3x3"):  # its own int16 form, not subject to widening
                c.filter_bytes = 4 * pack_dw3x3(_conv_parts(graph, op)[0]).size
            choices[op.name] = c
    ops = {op.name: op for op in graph.ops}
    gains = {n: widen_gain(graph, ops[n], c) for n, c in choices.items() if c.filter_bytes > 0}
    gains = {n: g for n, g in gains.items() if g > 0 and not choices[n].extra.get("dw3x3")}
    if not opts.widen:
        for n in gains:
            choices[n].extra["widen_note"] = "int8: --no-widen"
        return choices
    base = sum(t.nbytes for t in graph.constants())
    room = flash_bytes - FLASH_CODE_RESERVE - base
    for name in sorted(gains, key=lambda n: (-gains[n] / choices[n].filter_bytes, n)):
        c = choices[name]
        extra = c.filter_bytes
        rate = f"~{gains[name]:,} instr for +{extra:,} B"
        if extra <= room:
            room -= extra
            c.wide = True
            c.filter_bytes *= 2
            c.extra["widen_note"] = f"widened: {rate}"
        else:
            c.extra["widen_note"] = f"int8: widening would save {rate}, {max(room, 0):,} B flash left"
    return choices


def scratch_fn(choices: dict[str, KernelChoice]):
    """The per-step scratch function `plan_layer(scratch=...)` takes."""

    def scratch(graph: Graph, i: int) -> int:
        c = choices.get(graph.ops[i].name)
        return c.scratch if c is not None else 0

    def window(graph: Graph, i: int, out_w: int) -> int:
        """... for a call whose output view is out_w wide (a patch-stage call)."""
        c = choices.get(graph.ops[i].name)
        if c is not None and c.extra.get("dw3x3") and not c.extra.get("transposed"):
            op = graph.ops[i]
            sh, sw = (int(v) for v in op.attrs["stride"])
            if c.extra.get("plane"):  # the plane kernel: the layer's height (an upper bound), the call's width
                return dw3x3_plane_scratch(int(graph.t(op.outputs[0]).shape[1]), out_w, sh, sw)
            return dw3x3_scratch(out_w, sw)  # the row kernel: by width
        return c.scratch if c is not None else 0

    scratch.window = window  # type: ignore[attr-defined]
    return scratch


def fast_params(g: Graph, op: Op, choice: KernelChoice) -> dict[str, Any]:
    """Everything the *_dsp templates print for op: packed filter, quant records, params."""
    q = lower(g, op)
    w, b = _conv_parts(g, op)
    if op.kind == "conv2d":
        n_out = w.shape[0]
        fq = fast_quant(w.reshape(n_out, -1), b, q, n_out)
        packed = pack_conv(w, choice.wide, choice.paired)
        if fq is not None and choice.wide:  # doubled filter: doubled bias (wraps like the sums)
            fq[:, 0] = Q.wrap32(2 * fq[:, 0].astype(np.int64))
    elif op.kind == "depthwise_conv2d":
        n_out = w.shape[3]
        fq = fast_quant(w.reshape(-1, n_out).T, b, q, n_out)
        if choice.extra.get("transposed"):  # the column kernel: kernel rows <-> columns
            packed = pack_dw3x3(w.transpose(0, 2, 1, 3))
        else:
            packed = pack_dw3x3(w) if choice.extra.get("dw3x3") else pack_dw(w, choice.wide)
    else:
        n_out = w.shape[0]
        fq = fast_quant(w, b, q, n_out)
        packed = pack_fc(w, choice.wide, choice.paired)
    assert fq is not None
    ctype = "int32_t" if choice.wide or packed.dtype == np.int32 else "int8_t"
    return {"q": q, "fq": fq, "packed": packed, "ctype": ctype, "form": choice.form()}


def attach_kernels(plan: Plan, choices: dict[str, KernelChoice]) -> None:
    """Records each step's kernel in the Plan (step.detail["kernel"]), patch-stage steps
    included (the stage loop calls it on each patch's windows): a step keeps its portable
    kernel when it runs in place (unless the kernel allows it) or when the plan reserved
    less scratch than the kernel asks for."""
    for st in plan.steps:
        c = choices.get(st.op.name)
        if c is None or (st.in_place and not c.extra.get("in_place_ok")):
            continue
        need = st.detail.get("kernel_scratch", c.scratch)  # a patch step: its widest call's
        if need > 0 and (st.scratch is None or st.scratch.size < need):
            continue
        st.detail["kernel"] = c


def kernel_summary(plan: Plan) -> dict[str, Any]:
    """report.json's "kernels": fast kernels per name, and the flash their filters take."""
    used: dict[str, int] = {}
    wide = narrow = 0
    every = [c for st in plan.steps for c in [st.detail.get("kernel"), *st.detail.get("kernels", {}).values()]]
    for c in every:
        if c is None:
            continue
        used[c.short()] = used.get(c.short(), 0) + 1
        if c.wide:
            wide += c.filter_bytes
        else:
            narrow += c.filter_bytes
    return {"fast": used, "widened_filter_bytes": wide, "int8_filter_bytes": narrow}


def attach_stage_kernels(plan: Plan, choices: dict[str, KernelChoice]) -> None:
    """Token-plan stages (compiler/schedule/token.py): each stage step records the fast kernels
    of the ops it runs (step.detail["kernels"], op name -> choice) whose scratch fits the
    stage's shared kernel scratch "F"; the others keep their portable kernels."""
    for st in plan.steps:
        u = st.detail.get("unit")
        if u is None or not st.op.kind.startswith("token_"):
            continue
        room = st.detail["ws"].get("F", (0, 0))[1]
        ks = {op.name: choices[op.name] for op in u.ops if op.name in choices and choices[op.name].scratch <= room}
        if ks:
            st.detail["kernels"] = ks
            names = sorted({c.short() for c in ks.values()})
            st.detail["notes"] = [*st.detail.get("notes", []), f"fast kernels: {len(ks)} ops ({', '.join(names)})"]
