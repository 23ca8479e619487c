"""The data the Cortex-M DSP kernels read: packed filters and fast requantization records.

Which kernel each op runs, its scratch and its filter form are the planner's decision
(`compiler/schedule/kernels_table.py`, recorded on the Plan as `Step.kernel`); this module only packs
the filter in the form the call names (int8, paired int8, pre-widened int16, the 3x3 depthwise
words) and computes the mt_fast_quant records (`fast_params`), for the *_dsp templates.
Layouts: runtime_c/mt_nn_fast.h.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.core import quant as Q
from compiler.core.ir import Graph, Op
from compiler.core.lower import lower
from compiler.schedule.kernels_table import KernelCall, add_records, fast_quant


def _groups(n: int) -> int:
    return (n + 3) // 4


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


def _conv_parts(g: Graph, op: Op) -> tuple[np.ndarray, np.ndarray | None]:
    w = g.t(op.inputs[1]).data
    b = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else None
    return np.asarray(w), (np.asarray(g.t(b).data) if b else None)


def fast_params(g: Graph, op: Op, choice: KernelCall) -> dict[str, Any]:
    """Everything the *_dsp templates print for op running `choice` (a DSP call of the Plan):
    packed filter in the call's form, quant records, params."""
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
        if choice.transposed:  # the column kernel: kernel rows <-> columns
            packed = pack_dw3x3(w.transpose(0, 2, 1, 3))
        else:
            packed = pack_dw3x3(w) if choice.dw3x3 else pack_dw(w, choice.wide)
    else:
        n_out = w.shape[0]
        fq = fast_quant(w, b, q, n_out)
        packed = pack_fc(w, choice.wide, choice.paired)
    assert fq is not None
    ctype = "int32_t" if choice.wide or packed.dtype == np.int32 else "int8_t"
    return {"q": q, "fq": fq, "packed": packed, "ctype": ctype, "form": choice.form()}


__all__ = ["add_records", "fast_params", "pack_conv", "pack_dw", "pack_dw3x3", "pack_fc"]
