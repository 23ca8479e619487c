"""UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations with an int16 cell state: lowering and golden model.

TFLite-Micro's integer LSTM (`micro/kernels/unidirectional_sequence_lstm.cc`, `lstm_eval.h`,
`lstm_eval.cc`, `lstm_eval_common.cc`, the "8x8->16" case), re-derived as facts:

- every gate g in (input, forget, cell, output) is
  pre_g = sat16(FC_in(x_t) + FC_rec(h_{t-1})) in Q3.12 (scale 2^-12, int16), where
  FC_in(x) = clamp16(MBQM(sum_k W_g[u,k] (x_k - z_x) + b_g[u], s_x s_W / 2^-12)) and
  FC_rec(h) = clamp16(MBQM(sum_k R_g[u,k] (h_k - z_h), s_h s_R / 2^-12)) (no recurrent bias);
  gate_g = sigmoid16(pre_g) (tanh16 for the cell gate), Q0.15;
- c_t = sat16(mul16(f, c_{t-1}) + mul16(i, g)), each mul16 an MBQM of the int32 product
  (scales 2^-15 * s_c / s_c and 2^-15 * 2^-15 / s_c), clamped to int16; then
  c_t = clamp(c_t, -clip_q, clip_q) when cell_clip > 0 (clip_q = int16(cell_clip / s_c));
- h_t = clamp8(MBQM(tanh16(c_t) * o, 2^-30 / s_h) + z_h); the output row at t is h_t;
- sigmoid16 / tanh16 are TFLite's int16 `reference_integer_ops::Logistic` / `Tanh`
  (`compiler.core.lut16.logistic16` / `tanh16`): the input times 3 (times 3 * 2^(12 + log2 s_c - 3)
  for the cell tanh), then linear interpolation in `sigmoid_table_uint16` (256 entries);
- the state starts at h = z_h, c = 0 (TFLM resets variable tensors at AllocateTensors:
  int8 to its zero point, int16 to 0).

Every multiplier comes from `compiler.core.quant.quantize_multiplier` of the double-precision
scale ratio, as TFLM's QuantizeMultiplier. The MBQM accumulators of the two FCs are computed
here with the zero points folded into the biases (exact: int32 arithmetic is a ring), as the C
kernel `runtime_c/mt_lstm_s8.c` does.

State across invokes: microtile's generated `invoke` starts every sequence from the reset
state (what TFLM's first invoke after AllocateTensors, or after `reset()`, computes); TFLM
itself keeps h and c in variable tensors between invokes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.core import quant as Q
from compiler.core.ir import Graph, Op
from compiler.core.lut16 import logistic16, tanh16
from compiler.errors import ModelError

GATES = ("input", "forget", "cell", "output")  # the order of the IR op's weight/bias inputs
GATE_SCALE = 2.0**-12  # FC outputs: Q3.12 (lstm_eval_common.cc nonlinear_input_scale)
ACT_SCALE = 2.0**-15  # sigmoid/tanh outputs: Q0.15

def tanh_input_scaling(cell_scale_power: int) -> tuple[int, int]:
    """(input_multiplier, input_left_shift) of lstm_eval.cc Tanh for a cell state of scale
    2^cell_scale_power: left shift 15 + power - 3 with multiplier 0 (the power-of-two case,
    3 << shift in reference_integer_ops::Tanh), or multiplier 3 and a rounding right shift by
    its negation when it is negative."""
    s = 15 + cell_scale_power - 3
    return (0, s) if s >= 0 else (3, -s)


def _pot_power(scale: float) -> int | None:
    m, e = np.frexp(np.float32(scale))
    return int(e) - 1 if float(m) == 0.5 else None


def _mul_params(s1: float, s2: float, so: float) -> tuple[int, int]:
    """CreateInterGateMulParams: QuantizeMultiplier(double(s1) * double(s2) / double(so))."""
    return Q.quantize_multiplier(float(np.float32(s1)) * float(np.float32(s2)) / float(np.float32(so)))


def lower_lstm(g: Graph, op: Op) -> dict[str, Any]:
    """Integer parameters of one `lstm` op (TFLM PrepareGateParametersInteger + CreateLstmCellStateInfo).

    Inputs of the op: x [B, T, I] (or [T, B, I] when time_major), the 4 input weights [S, I],
    the 4 recurrent weights [S, S] (gate order input, forget, cell, output; int8, per tensor,
    zero point 0) and the 4 int32 biases [S]. Attrs give the state quantization: hidden_scale,
    hidden_zp (int8), cell_scale (int16, a power of two). Raises ModelError when the cell scale
    is not a power of two or a weight is not per-tensor symmetric.
    """
    x = g.t(op.inputs[0])
    a = op.attrs
    if x.quant is None or len(x.shape) != 3:
        raise ModelError(f"node {op.name} (lstm): input must be a quantized [B, T, I] tensor, got {x.describe()}")
    tm = bool(a.get("time_major", False))
    steps, batches = (x.shape[0], x.shape[1]) if tm else (x.shape[1], x.shape[0])
    n_in = x.shape[2]
    ws = [g.t(n) for n in op.inputs[1:9]]
    bs = [g.t(n) for n in op.inputs[9:13]]
    units = ws[0].shape[0]
    for w in ws:
        if w.data is None or w.quant is None or w.quant.per_channel or w.quant.zp != 0:
            raise ModelError(f"node {op.name} (lstm): weight {w.name!r} must be constant int8 per tensor, zp 0")
    for k, w in enumerate(ws):
        want = (units, n_in) if k < 4 else (units, units)
        if w.shape != want:
            raise ModelError(f"node {op.name} (lstm): weight {w.name!r} has shape {w.shape}, expected {want}")
    for b in bs:
        if b.data is None or b.shape != (units,):
            raise ModelError(f"node {op.name} (lstm): bias {b.name!r} must be a constant int32 [{units}]")
    s_x, z_x = float(x.quant.s), int(x.quant.zp)
    s_h, z_h = float(np.float32(a["hidden_scale"])), int(a["hidden_zp"])
    s_c = float(np.float32(a["cell_scale"]))
    power = _pot_power(s_c)
    if power is None or not -30 <= power <= 2:
        # beyond 2^2 the int16 tanh's input scaling overflows int32 (in TFLM as in C)
        raise ModelError(f"node {op.name} (lstm): cell state scale {s_c} is not a power of two in [2^-30, 2^2]")
    p: dict[str, Any] = {
        "batches": batches, "steps": steps, "input": n_in, "units": units, "time_major": int(tm),
        "input_zp": z_x, "hidden_zp": z_h,
    }  # fmt: skip
    in_mult, in_shift, rec_mult, rec_shift, in_bias, rec_bias = [], [], [], [], [], []
    for k in range(4):
        w, r, b = ws[k], ws[4 + k], bs[k]
        m, s = Q.quantize_multiplier(float(np.float32(s_x)) * float(np.float32(w.quant.s)) / GATE_SCALE)
        in_mult.append(m)
        in_shift.append(s)
        m, s = Q.quantize_multiplier(float(np.float32(s_h)) * float(np.float32(r.quant.s)) / GATE_SCALE)
        rec_mult.append(m)
        rec_shift.append(s)
        # zero points folded: sum_k W (x_k - z_x) + b = sum_k W x_k + (b - z_x sum_k W)
        in_bias.append(Q.wrap32(b.data.astype(np.int64) - z_x * w.data.astype(np.int64).sum(axis=1)))
        rec_bias.append(Q.wrap32(-z_h * r.data.astype(np.int64).sum(axis=1)))
    p["in_mult"], p["in_shift"], p["rec_mult"], p["rec_shift"] = in_mult, in_shift, rec_mult, rec_shift
    p["in_bias"] = np.stack(in_bias).astype(np.int32)  # [4, S]
    p["rec_bias"] = np.stack(rec_bias).astype(np.int32)
    p["fc_mult"], p["fc_shift"] = _mul_params(ACT_SCALE, s_c, s_c)  # forget x cell -> cell
    p["ig_mult"], p["ig_shift"] = _mul_params(ACT_SCALE, ACT_SCALE, s_c)  # input x cell gate -> cell
    p["h_mult"], p["h_shift"] = _mul_params(ACT_SCALE, ACT_SCALE, s_h)  # tanh(c) x output -> hidden
    p["tanh_mult"], p["tanh_shift"] = tanh_input_scaling(power)
    clip = float(np.float32(a.get("cell_clip", 0.0)))
    p["clip_on"] = int(clip > 0)
    # CreateLstmCellStateInfo: static_cast<int16_t>(min(max(clip / scale, -32768), 32767)) (truncation)
    p["cell_clip"] = int(min(max(clip / s_c, -32768.0), 32767.0)) if clip > 0 else 0
    return p


def scratch_bytes(g: Graph, op: Op) -> int:
    """Scratch bytes of mt_lstm_s8 (mt_lstm_s8_get_buffer_size): one int16 cell-state row [S]."""
    return 2 * int(g.t(op.inputs[1]).shape[0])


def _fc(v: np.ndarray, w: np.ndarray, bias: np.ndarray, mult: int, shift: int) -> np.ndarray:
    acc = Q.wrap32(w @ v + bias)
    return np.clip(Q.mbqm(acc, mult, shift), -32768, 32767)


def run_lstm(x: np.ndarray, weights: list[np.ndarray], p: dict[str, Any]) -> np.ndarray:
    """The golden LSTM: x int8 [B, T, I] ([T, B, I] when time_major) -> y int8 of the same layout
    with S units. `weights`: the 8 int8 weight matrices in the op's input order."""
    x = np.asarray(x, dtype=np.int64)
    if p["time_major"]:
        x = x.transpose(1, 0, 2)
    n_b, n_t, n_s = p["batches"], p["steps"], p["units"]
    w = [np.asarray(m, dtype=np.int64) for m in weights]
    y = np.zeros((n_b, n_t, n_s), dtype=np.int64)
    z_h = p["hidden_zp"]
    for b in range(n_b):
        h = np.full(n_s, z_h, dtype=np.int64)
        c = np.zeros(n_s, dtype=np.int64)
        for t in range(n_t):
            gates = []
            for k in range(4):
                pre = _fc(x[b, t], w[k], p["in_bias"][k].astype(np.int64), p["in_mult"][k], p["in_shift"][k])
                pre = pre + _fc(h, w[4 + k], p["rec_bias"][k].astype(np.int64), p["rec_mult"][k], p["rec_shift"][k])
                pre = np.clip(pre, -32768, 32767)
                # lstm_eval.cc: Sigmoid = Logistic(0, 0), the cell gate's Tanh(-12) = Tanh(0, 0)
                act = tanh16(pre, 0, 0) if GATES[k] == "cell" else logistic16(pre, 0, 0)
                gates.append(act.astype(np.int64))
            gi, gf, gg, go = gates
            fc = np.clip(Q.mbqm(gf * c, p["fc_mult"], p["fc_shift"]), -32768, 32767)
            ig = np.clip(Q.mbqm(gi * gg, p["ig_mult"], p["ig_shift"]), -32768, 32767)
            c = np.clip(fc + ig, -32768, 32767)
            if p["clip_on"]:
                c = np.clip(c, -p["cell_clip"], p["cell_clip"])
            th = tanh16(c, p["tanh_mult"], p["tanh_shift"]).astype(np.int64)
            h = np.clip(Q.mbqm(th * go, p["h_mult"], p["h_shift"]) + z_h, -128, 127)
            y[b, t] = h
    if p["time_major"]:
        y = y.transpose(1, 0, 2)
    return y.astype(np.int8)


# -- test models (quantized as the TFLite converter quantizes an int8 Keras LSTM) --------------


def _sym_weights(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> tuple[np.ndarray, float]:
    """Float weights quantized per tensor, symmetric: scale max|w| / 127, zero point 0."""
    w = rng.normal(0.0, std, size=shape).astype(np.float32)
    s = float(np.float32(max(float(np.abs(w).max()), 1e-6) / 127.0))
    return np.clip(np.round(w / s), -127, 127).astype(np.int8), s


def add_lstm(
    g: Graph,
    x: str,
    units: int,
    rng: np.random.Generator,
    name: str = "lstm",
    time_major: bool = False,
    cell_clip: float = 0.0,
    cell_power: int = -11,
    hidden: tuple[float, int] | None = None,
) -> str:
    """Append one `lstm` op reading tensor x ([B, T, I] or [T, B, I]) to g with random float
    weights quantized as the converter does: int8 symmetric per-tensor weights, int32 biases of
    scale s_x * s_W, an int16 cell state of scale 2^cell_power, the hidden state (= output)
    quantization `hidden` (scale, zero point; random when None). Returns the output's name."""
    from compiler.core.ir import QParams, Tensor

    xt = g.t(x)
    assert xt.quant is not None
    n_in = xt.shape[2]
    s_x = float(xt.quant.s)
    ins = [x]
    w_scales = []
    for k in range(8):
        shape = (units, n_in) if k < 4 else (units, units)
        q, s = _sym_weights(rng, shape, float(rng.uniform(0.2, 0.6)))
        n = g.add_tensor(Tensor(f"{name}_w{k}", shape, "int8", QParams(s, 0), q)).name
        ins.append(n)
        w_scales.append(s)
    for k in range(4):
        bf = rng.normal(1.0 if GATES[k] == "forget" else 0.0, 0.5, size=units)
        bs = float(np.float32(s_x) * np.float32(w_scales[k]))
        bq = np.clip(np.round(bf / bs), -(2**31), 2**31 - 1).astype(np.int32)
        ins.append(g.add_tensor(Tensor(f"{name}_b{k}", (units,), "int32", QParams(bs, 0), bq)).name)
    hs, hz = hidden if hidden is not None else (float(rng.uniform(1 / 200, 1 / 90)), int(rng.integers(-12, 13)))
    shape = xt.shape[:2] + (units,)
    y = g.add_tensor(Tensor(f"{name}_out", shape, "int8", QParams(hs, hz))).name
    attrs = {"time_major": time_major, "cell_clip": float(np.float32(cell_clip)),
             "hidden_scale": float(np.float32(hs)), "hidden_zp": hz, "cell_scale": float(2.0**cell_power)}  # fmt: skip
    g.add_op(Op("lstm", name, ins, [y], attrs))
    return y


def lstm_graph(
    batch: int, steps: int, n_in: int, units: int, seed: int = 0, time_major: bool = False,
    cell_clip: float = 0.0, cell_power: int = -11,
) -> Graph:  # fmt: skip
    """A one-op graph: int8 input [B, T, I] ([T, B, I] when time_major) -> lstm -> int8 [.., S]."""
    from compiler.core.ir import QParams, Tensor

    rng = np.random.default_rng(seed)
    g = Graph(name="lstm")
    shape = (steps, batch, n_in) if time_major else (batch, steps, n_in)
    xq = QParams(float(rng.uniform(0.01, 0.05)), int(rng.integers(-20, 21)))
    x = g.add_tensor(Tensor("x", shape, "int8", xq)).name
    y = add_lstm(g, x, units, rng, time_major=time_major, cell_clip=cell_clip, cell_power=cell_power)
    g.inputs, g.outputs = [x], [y]
    g.verify()
    return g


def kws_lstm_graph(steps: int = 12, n_in: int = 10, units: int = 16, classes: int = 4, seed: int = 0) -> Graph:
    """A keyword-spotting-like sequence model: int8 features [1, T, F] -> LSTM (S units) -> the
    last step (slice) -> reshape [1, S] -> FULLY_CONNECTED (classes) -> SOFTMAX."""
    from compiler.core.ir import QParams, Tensor

    rng = np.random.default_rng(seed)
    g = Graph(name="kws_lstm")
    x = g.add_tensor(Tensor("features", (1, steps, n_in), "int8", QParams(0.04, -3))).name
    h = add_lstm(g, x, units, rng, cell_clip=8.0, hidden=(1 / 128, 0))
    hq = g.t(h).quant
    last = g.add_tensor(Tensor("last", (1, 1, units), "int8", hq)).name
    g.add_op(Op("slice", "last_step", [h], [last], {"begin": (0, steps - 1, 0), "size": (1, 1, units)}))
    flat = g.add_tensor(Tensor("flat", (1, units), "int8", hq)).name
    g.add_op(Op("reshape", "flatten", [last], [flat], {}))
    wq, ws = _sym_weights(rng, (classes, units), 0.5)
    w = g.add_tensor(Tensor("fc_w", (classes, units), "int8", QParams(ws, 0), wq)).name
    bq = np.round(rng.normal(0, 0.3, classes) / (float(hq.s) * ws)).astype(np.int32)
    b = g.add_tensor(Tensor("fc_b", (classes,), "int32", QParams(float(hq.s) * ws, 0), bq)).name
    logits = g.add_tensor(Tensor("logits", (1, classes), "int8", QParams(0.06, 4))).name
    g.add_op(Op("fully_connected", "fc", [flat, w, b], [logits], {"activation": "none"}))
    probs = g.add_tensor(Tensor("probs", (1, classes), "int8", QParams(1 / 256, -128))).name
    g.add_op(Op("softmax", "softmax", [logits], [probs], {"beta": 1.0}))
    g.inputs, g.outputs = [x], [probs]
    g.verify()
    return g
