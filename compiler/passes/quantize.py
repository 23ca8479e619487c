"""Post-training int8 quantization of float IR graphs, TFLite's scheme; and per-layer SQNR.

    int8 = quantize_graph(float_graph, calib)          # calib: list of input arrays (N, *shape[1:])
    table = sqnr_report(float_graph, int8, calib)     # [(tensor [kind], SQNR dB), ...]

The scheme (what the TFLite converter does, so the int8 kernels apply unchanged):
- weights: symmetric int8 in [-127, 127], per output channel (conv axis 0, depthwise axis 3,
  fully_connected axis 0); bias int32 at scale in_scale * w_scale, zero point 0;
- activations: per-tensor asymmetric int8 from the calibrated [min, max], widened to hold 0;
- softmax and logistic outputs: scale 1/256, zero point -128;
- ops that move int8 values without rescaling (reshape, transpose, slice, max/avg pool, pad,
  relu6-as-clamp, concat) share one quantization between inputs and output (union of ranges);
- constant operands of add/mul/concat: per-tensor asymmetric int8 (concat: the output's);
- layer_norm's gamma/beta stay float32 constants (the int8 kernel folds them itself).

`quantize_with(float_graph, act_q, const_q)` is the emitter on its own: QDQ ONNX models call it
with the scales written in the model. Where a given scale breaks a kernel's constraint (a
softmax output not at 1/256, a reshape whose output scale differs from its input's), it inserts
an explicit int8 `quantize` (requantize) op rather than refuse the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.errors import MicrotileError, ModelError
from compiler.golden.float_ref import dequantize, run_float

TIED = frozenset({"reshape", "transpose", "slice", "max_pool2d", "avg_pool2d", "pad"})
FIXED = frozenset({"softmax", "logistic"})
WEIGHT_AXIS = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": 0}
FIXED_Q = (np.float32(1.0 / 256.0), -128)


def act_quant(lo: float, hi: float) -> QParams:
    """Asymmetric int8 quantization of the real range [lo, hi], widened to hold 0 (TFLite's)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-128 - lo / float(scale)), -128, 127))
    return QParams(scale, zp)


def weight_quant(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, QParams]:
    """Symmetric int8 weights in [-127, 127]; per channel along `axis` (None: per tensor)."""
    w = np.asarray(w, np.float32)
    if axis is None:
        m = np.atleast_1d(np.abs(w).max())
        s = np.where(m > 0, m / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(w / s[0]), -127, 127).astype(np.int8)
        return q, QParams(s, np.zeros(1), 0)
    red = tuple(i for i in range(w.ndim) if i != axis)
    m = np.abs(w).max(axis=red)
    s = np.where(m > 0, m / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / s.reshape(shape)), -127, 127).astype(np.int8)
    return q, QParams(s, np.zeros(s.size), axis)


def _same(a: QParams | None, b: QParams | None) -> bool:
    if a is None or b is None:
        return False
    return np.float32(a.s) == np.float32(b.s) and a.zp == b.zp


def _is_clamp(op: Op) -> bool:
    """relu6 as TFLite-Micro runs it: a clamp in the input's quantization (output must share it)."""
    return op.kind == "relu" and float(op.attrs.get("max", np.inf)) == 6.0


def _batches(calib: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    if isinstance(calib, np.ndarray):
        return [calib]
    return [np.asarray(c) for c in calib]


# -- calibration ------------------------------------------------------------------------------


def calibrate(
    graph: Graph,
    calib: Sequence[np.ndarray] | np.ndarray,
    chunk: int = 32,
    engine: str = "auto",
    info: dict[str, Any] | None = None,
) -> dict[str, tuple[float, float]]:
    """[min, max] of every activation over the calibration set (one array per graph input).

    engine "onnxruntime" (the default "auto" when the graph came from an ONNX file and onnxruntime
    is installed) runs the ONNX model with every mapped intermediate added as a graph output and
    computes only the IR tensors ONNX has no name for (layout views, slices) with `run_float`
    from those; "numpy" runs `run_float` alone (the reference the tests compare with)."""
    arrays = _batches(calib)
    if len(arrays) != len(graph.inputs):
        raise ModelError(f"calibration: {len(arrays)} input array(s) for {len(graph.inputs)} graph input(s)")
    sess = _OnnxTensors.open(graph) if engine in ("auto", "onnxruntime") else None
    if engine == "onnxruntime" and sess is None:
        raise ModelError("calibration with onnxruntime needs an ONNX model and the onnxruntime package")
    if info is not None:
        info["calibration_engine"] = "numpy" if sess is None else "onnxruntime"
    n = arrays[0].shape[0]
    ranges: dict[str, tuple[float, float]] = {}
    for start in range(0, n, chunk):
        part = [a[start : start + chunk] for a in arrays]
        known = sess.run(part) if sess is not None else None
        env = run_float(graph, part, keep_all=True, known=known)
        assert isinstance(env, dict)
        for name, v in env.items():
            t = graph.tensors.get(name)
            if t is None or t.is_const:
                continue
            lo, hi = float(np.min(v)), float(np.max(v))
            if name in ranges:
                lo, hi = min(lo, ranges[name][0]), max(hi, ranges[name][1])
            ranges[name] = (lo, hi)
    return ranges


class _OnnxTensors:
    """onnxruntime running the ONNX model a float graph was imported from, every ONNX tensor the IR
    names (meta['onnx_names']) added as a graph output, mapped back to the IR's layout: IR tensor ->
    transpose(ONNX tensor, perm) (a leading -1 in perm: the IR's extra batch axis), divided by
    meta['onnx_scale'] where the IR keeps a tensor unscaled (a q.k^T whose scale became softmax's beta)."""

    def __init__(self, graph: Graph, sess: Any, names: dict[str, list[Any]], batched: Any = None) -> None:
        self.graph, self.sess, self.names = graph, sess, names
        self.out_names = [o.name for o in sess.get_outputs()]
        self.scales: dict[str, float] = graph.meta.get("onnx_scale", {})
        # the same model with a symbolic batch: used once it reproduced a per-sample run exactly
        self.batched, self.batched_ok = batched, False

    @classmethod
    def open(cls, graph: Graph) -> _OnnxTensors | None:
        path = graph.meta.get("onnx_path")
        if not path or graph.meta.get("onnx_batch"):  # a fixed batch-N export cannot run at batch 1 as is
            return None
        try:
            import onnx
            import onnxruntime as ort
        except ImportError:
            return None
        names: dict[str, list[Any]] = graph.meta.get("onnx_names", {})
        model = onnx.load(path)
        have = {o.name for o in model.graph.output}
        produced = {o for n in model.graph.node for o in n.output if o}
        want = {v[0] for k, v in names.items() if k in graph.tensors} & produced
        for n in sorted(want - have):
            model.graph.output.append(onnx.ValueInfoProto(name=n))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.log_severity_level = 4  # errors come back as one line (run), not as onnxruntime's own log
        try:
            sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        except Exception:  # a model onnxruntime cannot load (old opset quirks): numpy calibrates
            return None
        batched = None
        if all(graph.meta.get("input_perms", {}).get(n, [0])[0] == 0 for n in graph.inputs):
            for vi in model.graph.input:
                dims = vi.type.tensor_type.shape.dim
                if dims:
                    dims[0].dim_param = "N"
            del model.graph.value_info[:]
            for o in model.graph.output:
                if o.type.HasField("tensor_type"):
                    o.type.tensor_type.ClearField("shape")
            try:
                batched = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
            except Exception:  # hard-coded batch-1 shapes: one sample at a time
                batched = None
        return cls(graph, sess, names, batched)

    def _run_batched(self, feeds_n: dict[str, np.ndarray], n: int, first: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Per-sample outputs from one batched run, or [] when the batched model does not reproduce
        the per-sample outputs `first` of sample 0 (shapes that are not batch-major, fixed reshapes)."""
        import onnxruntime as ort

        quiet = ort.RunOptions()
        quiet.log_severity_level = 4  # a failure here only means: run one sample at a time
        try:
            outs = self.batched.run(self.out_names, feeds_n, quiet)
        except Exception:
            self.batched = None
            return []
        if not self.batched_ok:
            for o, f in zip(outs, first, strict=True):
                if o.shape != (n,) + f.shape[1:] or not np.allclose(o[:1], f, rtol=1e-4, atol=1e-5):
                    self.batched = None
                    return []
            self.batched_ok = True
        return [[o[i : i + 1] for o in outs] for i in range(n)]

    def run(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        """IR tensor -> float values (N, *IR shape[1:]) for the N samples of `arrays` (IR layout).
        Raises ModelError (one line, naming the model) when onnxruntime cannot run it."""
        try:
            return self._run(arrays)
        except MicrotileError:
            raise
        except Exception as e:  # onnxruntime's own multi-line errors
            raise ModelError(
                f"{self.graph.meta.get('onnx_path')}: onnxruntime cannot run the model on the calibration data: "
                f"{_first_line(e)}"
            ) from None

    def _run(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        g = self.graph
        perms = g.meta.get("input_perms", {})
        onnx_in = g.meta.get("onnx_input_names", {})
        n = arrays[0].shape[0]

        def feeds(lo: int, hi: int) -> dict[str, np.ndarray]:
            out = {}
            for name, a in zip(g.inputs, arrays, strict=True):
                inv = np.argsort(perms.get(name, list(range(a.ndim))))
                out[onnx_in.get(name, name)] = np.ascontiguousarray(np.transpose(a[lo:hi], inv), np.float32)
            return out

        per_sample: list[list[np.ndarray]] = []
        if self.batched is not None and n > 1:
            first = [] if self.batched_ok else self.sess.run(self.out_names, feeds(0, 1))
            per_sample = self._run_batched(feeds(0, n), n, first)
        if not per_sample:
            per_sample = [self.sess.run(self.out_names, feeds(i, i + 1)) for i in range(n)]
        index = {n: k for k, n in enumerate(self.out_names)}
        got: dict[str, np.ndarray] = {}
        for ir, (oname, perm) in self.names.items():
            k = index.get(oname)
            if k is None or ir not in g.tensors:
                continue
            lead = bool(perm) and perm[0] == -1
            p = [x for x in perm if x >= 0]
            shape = g.t(ir).shape
            parts = []
            for s in per_sample:
                v = s[k]
                if v.ndim != len(p):
                    break
                v = np.transpose(v, p)
                parts.append(v[None] if lead else v)
            if len(parts) != len(per_sample):
                continue
            arr = np.concatenate(parts).astype(np.float32)
            if arr.shape[1:] != tuple(shape[1:]):
                continue
            if ir in self.scales:
                arr = arr / np.float32(self.scales[ir])
            got[ir] = arr
        return got


def choose_act_quant(graph: Graph, ranges: dict[str, tuple[float, float]]) -> dict[str, QParams]:
    """Activation quantization from ranges, tying tensors that must share one (union of ranges)."""
    parent = {n: n for n in ranges}
    fixed: set[str] = set()

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
            if ra in fixed:
                fixed.discard(ra)
                fixed.add(rb)

    for op in graph.ops:
        out = op.outputs[0]
        if op.kind in FIXED:
            fixed.add(find(out))
        elif op.kind in TIED or _is_clamp(op):
            if op.inputs[0] in parent:
                union(op.inputs[0], out)
        elif op.kind == "concat":
            acts = [i for i in op.inputs if i in parent]
            if acts and all(find(i) in fixed for i in acts):  # e.g. the row groups of a masked softmax
                fixed.add(find(out))
            for i in acts:
                if find(i) not in fixed:
                    union(i, out)
    group: dict[str, tuple[float, float]] = {}
    for n, (lo, hi) in ranges.items():
        r = find(n)
        glo, ghi = group.get(r, (lo, hi))
        group[r] = (min(glo, lo), max(ghi, hi))
    out_q: dict[str, QParams] = {}
    for n in ranges:
        r = find(n)
        out_q[n] = QParams(FIXED_Q[0], FIXED_Q[1]) if r in fixed else act_quant(*group[r])
    return out_q


# -- emission ---------------------------------------------------------------------------------


class _Emitter:
    def __init__(
        self,
        fg: Graph,
        act_q: dict[str, QParams],
        const_q: dict[str, tuple[np.ndarray, QParams]],
        source: str,
    ) -> None:
        self.fg, self.act_q, self.const_q, self.source = fg, act_q, const_q, source
        self.g = Graph(name=fg.name, meta=dict(fg.meta))
        self.cache: dict[tuple[str, float, int], str] = {}

    def err(self, op: Op, msg: str) -> ModelError:
        where = f"{self.source}: " if self.source else ""
        return ModelError(f"{where}node {op.name} ({op.kind}): {msg}")

    def need(self, op: Op, name: str) -> QParams:
        q = self.act_q.get(name)
        if q is None:
            raise self.err(
                op,
                f"tensor {name!r} has no quantization parameters (QDQ pattern not supported: no "
                "QuantizeLinear/DequantizeLinear on it)",
            )
        return QParams(np.float32(q.s), q.zp)

    def quant(self, name: str) -> QParams:
        q = self.g.t(name).quant
        assert q is not None
        return q

    def add(self, name: str, shape: tuple[int, ...], q: QParams) -> str:
        if name in self.g.tensors:
            name = self.g.unique_name(name)
        self.g.add_tensor(Tensor(name, shape, "int8", q))
        return name

    def const_int8(self, name: str, q: QParams | None = None) -> str:
        t = self.fg.t(name)
        if q is None and name in self.const_q:
            ints, cq = self.const_q[name]
            if ints.dtype == np.int8 and not cq.per_channel:
                key = (name, float(cq.s), cq.zp)
                if key not in self.cache:
                    self.cache[key] = self.g.unique_name(name)
                    self.g.add_tensor(Tensor(self.cache[key], t.shape, "int8", QParams(cq.s, cq.zp), ints))
                return self.cache[key]
        data = np.asarray(t.data, np.float32)
        if q is None:
            q = act_quant(float(data.min()), float(data.max()))
        key = (name, float(q.s), q.zp)
        if key not in self.cache:
            ints = np.clip(np.round(data / q.s) + q.zp, -128, 127).astype(np.int8)
            self.cache[key] = self.g.unique_name(name)
            self.g.add_tensor(Tensor(self.cache[key], t.shape, "int8", QParams(q.s, q.zp), ints))
        return self.cache[key]

    def requantize(self, src: str, q: QParams, name: str) -> str:
        out = self.add(name, self.g.t(src).shape, q)
        self.g.add_op(Op("quantize", out, [src], [out], {}))
        return out

    def operand(self, name: str) -> str:
        t = self.fg.t(name)
        return self.const_int8(name) if t.is_const else name

    def weights(self, op: Op) -> tuple[str, str]:
        wname = op.inputs[1]
        w = self.fg.t(wname)
        axis = WEIGHT_AXIS[op.kind]
        if wname in self.const_q:
            ints, wq = self.const_q[wname]
            if ints.dtype != np.int8 or np.any(wq.zero_point != 0):
                raise self.err(op, "QDQ pattern not supported: weights must be symmetric int8 (zero point 0)")
            if wq.per_channel and wq.axis != axis:
                raise self.err(op, f"QDQ pattern not supported: per-channel weights along axis {wq.axis}")
        else:
            ints, wq = weight_quant(np.asarray(w.data, np.float32), axis)
        wq = QParams(wq.scale, np.zeros(wq.scale.size), axis)
        wi = self.g.unique_name(wname)
        self.g.add_tensor(Tensor(wi, w.shape, "int8", wq, ints))
        n_out = w.shape[axis]
        in_s = np.float32(self.quant(op.inputs[0]).s)
        bs = (in_s * np.broadcast_to(wq.scale, (n_out,))).astype(np.float32)
        bname = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else ""
        bq: np.ndarray | None = None
        if bname and bname in self.const_q:
            ints_b, qb = self.const_q[bname]
            if ints_b.dtype == np.int32 and np.allclose(np.broadcast_to(qb.scale, (n_out,)), bs, rtol=1e-5, atol=0):
                bq = ints_b.reshape(-1).astype(np.int32)
        if bq is None:
            b = np.zeros(n_out, np.float32) if not bname else np.asarray(self.fg.t(bname).data, np.float32).reshape(-1)
            r = np.round(b.astype(np.float64) / bs.astype(np.float64))
            bq = np.clip(r, -(1 << 31) + 1, (1 << 31) - 1).astype(np.int32)
        bi = self.g.unique_name(bname or f"{op.outputs[0]}_b")
        self.g.add_tensor(Tensor(bi, (n_out,), "int32", QParams(bs, np.zeros(n_out), 0), bq))
        return wi, bi

    def run(self) -> Graph:
        fg, g = self.fg, self.g
        for name in fg.inputs:
            t = fg.t(name)
            g.add_tensor(Tensor(name, t.shape, "int8", self.need(Op("input", name, [], [name]), name)))
            g.inputs.append(name)
        for op in fg.ops:
            self.op(op)
        g.outputs = list(fg.outputs)
        g.verify()
        return g

    def op(self, op: Op) -> None:
        g = self.g
        k, out = op.kind, op.outputs[0]
        shape = self.fg.t(out).shape
        attrs = dict(op.attrs)
        for n in op.inputs:
            if n and not self.fg.t(n).is_const and n not in g.tensors:
                raise self.err(op, f"input {n!r} was not quantized")
        if k in WEIGHT_AXIS:
            wi, bi = self.weights(op)
            y = self.add(out, shape, self.need(op, out))
            g.add_op(Op(k, op.name, [op.inputs[0], wi, bi], [y], attrs))
        elif k == "concat":
            oq = self.need(op, out)
            ins = []
            for n in op.inputs:
                if self.fg.t(n).is_const:
                    ins.append(self.const_int8(n, oq))
                elif _same(self.quant(n), oq):
                    ins.append(n)
                else:
                    ins.append(self.requantize(n, oq, f"{n}_requant"))
            y = self.add(out, shape, oq)
            g.add_op(Op(k, op.name, ins, [y], attrs))
        elif k in TIED or _is_clamp(op):
            x = op.inputs[0]
            iq = self.quant(x)
            oq = self.act_q.get(out)
            if oq is None or _same(iq, oq):
                y = self.add(out, shape, iq)
                g.add_op(Op(k, op.name, [x] + list(op.inputs[1:]), [y], attrs))
            else:
                tmp = self.add(f"{out}_pre", shape, iq)
                g.add_op(Op(k, op.name, [x] + list(op.inputs[1:]), [tmp], attrs))
                self.requantize(tmp, QParams(np.float32(oq.s), oq.zp), out)
        elif k in FIXED:
            fq = QParams(FIXED_Q[0], FIXED_Q[1])
            oq = self.act_q.get(out, fq)
            if _same(oq, fq):
                y = self.add(out, shape, fq)
                g.add_op(Op(k, op.name, [op.inputs[0]], [y], attrs))
            else:
                tmp = self.add(f"{out}_fixed", shape, fq)
                g.add_op(Op(k, op.name, [op.inputs[0]], [tmp], attrs))
                self.requantize(tmp, QParams(np.float32(oq.s), oq.zp), out)
        elif k == "layer_norm":
            x, gamma, beta = op.inputs
            ins = [x]
            for n in (gamma, beta):
                t = self.fg.t(n)
                if n not in g.tensors:
                    g.add_tensor(Tensor(n, t.shape, "float32", data=np.asarray(t.data, np.float32)))
                ins.append(n)
            y = self.add(out, shape, self.need(op, out))
            g.add_op(Op(k, op.name, ins, [y], attrs))
        elif k == "dequantize":
            raise self.err(op, "a float dequantize inside the graph cannot be quantized")
        else:
            ins = [self.operand(n) for n in op.inputs]
            y = self.add(out, shape, self.need(op, out))
            g.add_op(Op(k, op.name, ins, [y], attrs))


def quantize_with(
    float_graph: Graph,
    act_q: dict[str, QParams],
    const_q: dict[str, tuple[np.ndarray, QParams]] | None = None,
    source: str = "",
) -> Graph:
    """The int8 graph of `float_graph` with the given activation (and optionally constant) quantization."""
    return _Emitter(float_graph, act_q, const_q or {}, source).run()


def quantize_graph(
    float_graph: Graph,
    calib: Sequence[np.ndarray] | np.ndarray,
    ranges: dict[str, tuple[float, float]] | None = None,
    engine: str = "auto",
) -> Graph:
    """Post-training quantization: calibrate on `calib` (IR layout, (N, *shape[1:]) per input);
    `engine` as in `calibrate`."""
    info: dict[str, Any] = {}
    if ranges is None:
        ranges = calibrate(float_graph, calib, engine=engine, info=info)
    g = quantize_with(float_graph, choose_act_quant(float_graph, ranges), source=float_graph.name)
    g.meta["calibration_engine"] = info.get("calibration_engine", "given ranges")
    g.meta["calibration_samples"] = int(_batches(calib)[0].shape[0])
    return g


def int8_flash_bytes(float_graph: Graph) -> int:
    """Flash the constants of `float_graph` take once quantized as `quantize_graph` does (before
    running it, so a model that cannot fit is refused before the calibration): conv/fc weights and
    other int8 operands 1 B per value, biases 4 B (int32), layer_norm's gamma/beta 4 B (float32)."""
    seen: set[str] = set()
    total = 0
    for op in float_graph.ops:
        for k, n in enumerate(op.inputs):
            t = float_graph.tensors.get(n) if n else None
            if t is None or not t.is_const or n in seen:
                continue
            seen.add(n)
            wide = (op.kind in WEIGHT_AXIS and k == 2) or op.kind == "layer_norm"
            total += t.size * (4 if wide else 1)
    return total


def is_float_graph(graph: Graph) -> bool:
    """True when the graph computes in float (needs quantization before it can be compiled)."""
    return any(graph.t(n).dtype == "float32" for n in graph.inputs) and not any(
        op.kind == "quantize" and op.inputs[0] in graph.inputs for op in graph.ops
    )


# -- fidelity ---------------------------------------------------------------------------------


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio 10 log10(sum ref^2 / sum (ref - test)^2), capped at 100 dB."""
    ref = np.asarray(ref, np.float64)
    noise = float(np.sum((ref - np.asarray(test, np.float64)) ** 2))
    sig = float(np.sum(ref**2))
    if noise <= sig * 1e-10:
        return 100.0
    if sig == 0.0:
        return -100.0
    return float(10.0 * np.log10(sig / noise))


def quantize_input(graph: Graph, x: np.ndarray, name: str | None = None) -> np.ndarray:
    t = graph.t(name or graph.inputs[0])
    q = t.quant
    assert q is not None
    return np.clip(np.round(np.asarray(x, np.float32) / np.float32(q.s)) + q.zp, -128, 127).astype(np.int8)


def float_tensors(
    float_graph: Graph, calib: Sequence[np.ndarray] | np.ndarray, use_onnx: bool = True
) -> tuple[dict[str, np.ndarray], str]:
    """Every float tensor on the calibration inputs: from onnxruntime running the ONNX model the graph
    came from where possible (tensors mapped back to the IR's layout), else from `run_float`."""
    arrays = _batches(calib)
    sess = _OnnxTensors.open(float_graph) if use_onnx else None
    env = run_float(float_graph, arrays, keep_all=True, known=sess.run(arrays) if sess is not None else None)
    assert isinstance(env, dict)
    return env, "compiler.golden.float_ref" if sess is None else "onnxruntime"


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:300]}"


def sqnr_report(
    float_graph: Graph,
    int8_graph: Graph,
    calib: Sequence[np.ndarray] | np.ndarray,
    max_samples: int = 16,
    use_onnx: bool = True,
    info: dict[str, Any] | None = None,
) -> list[tuple[str, float]]:
    """Per-layer SQNR (dB) of the int8 graph (run by `compiler.golden.reference`, dequantized) against the
    float model on up to `max_samples` calibration inputs. Rows are `"<tensor> [<kind>]"`.
    `info` receives 'float_reference' (which float executor), 'samples', 'output_sqnr_db' (first
    output) and, when its last axis has more than one value, 'top1_agreement': the fraction of
    rows along that axis (samples of a classifier; tokens or pixels of sequence/map outputs) whose
    int8 argmax equals the float model's (how users judge a quantized classifier)."""
    from compiler.golden import reference

    arrays = [a[:max_samples] for a in _batches(calib)]
    ref, src = float_tensors(float_graph, arrays, use_onnx)
    if info is not None:
        info["float_reference"] = src
    q_runs: list[dict[str, np.ndarray]] = []
    for i in range(arrays[0].shape[0]):
        xs = [quantize_input(int8_graph, a[i : i + 1], n) for n, a in zip(int8_graph.inputs, arrays, strict=True)]
        env = reference.run(int8_graph, xs, keep_all=True)
        q_runs.append(env)
    rows: list[tuple[str, float]] = []
    for op in int8_graph.ops:
        y = op.outputs[0]
        if y not in ref or op.kind in ("reshape",):
            continue
        t = int8_graph.t(y)
        test = np.concatenate([dequantize(t, r[y]).reshape((1,) + t.shape[1:]) for r in q_runs])
        rows.append((f"{y} [{op.kind}]", round(sqnr_db(ref[y].reshape(test.shape), test), 2)))
    if info is not None:
        info["samples"] = int(arrays[0].shape[0])
        out = int8_graph.outputs[0]
        t = int8_graph.t(out)
        if out in ref:
            last = t.shape[-1] if t.shape else 1
            test = np.concatenate([dequantize(t, r[out]).reshape(-1, last) for r in q_runs])
            want = ref[out].reshape(test.shape)
            info["output_sqnr_db"] = round(sqnr_db(want, test), 2)
            if last > 1:  # class scores along the last axis (per token / pixel for sequence / map outputs)
                info["top1_agreement"] = round(float(np.mean(test.argmax(1) == want.argmax(1))), 4)
    return rows


def format_sqnr(rows: list[tuple[str, float]]) -> str:
    width = max([len(r[0]) for r in rows] + [6])
    lines = [f"{'layer':{width}s}  SQNR dB"]
    lines += [f"{name:{width}s}  {db:7.2f}" for name, db in rows]
    return "\n".join(lines)


# -- calibration data and the one-call PTQ used by the pipeline ------------------------------


def to_ir_layout(graph: Graph, x: np.ndarray, source: str = "array", name: str | None = None) -> np.ndarray:
    """Float samples for input `name` as (N, *IR shape[1:]): accepts the model's own layout (ONNX NCHW
    for ONNX models) or the IR's, a batch or a single sample. ModelError (naming `source`) otherwise."""
    name = name or graph.inputs[0]
    t = graph.t(name)
    perm = graph.meta.get("input_perms", {}).get(name, list(range(len(t.shape))))
    onnx_shape = tuple(graph.meta.get("onnx_input_shapes", {}).get(name, t.shape))
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number):
        raise ModelError(f"{source}: calibration data must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32)
    b = int(perm[0])  # the ONNX axis that holds the batch (1 for sequence-first [T, N, D] inputs)
    rest = onnx_shape[:b] + onnx_shape[b + 1 :]
    if x.shape == onnx_shape or (b == 0 and x.shape == rest):
        x = x.reshape(onnx_shape)
    if x.ndim == len(onnx_shape) and x.shape[:b] + x.shape[b + 1 :] == rest:
        return np.ascontiguousarray(np.transpose(x, perm))
    if x.ndim == len(t.shape) and x.shape[1:] == t.shape[1:]:
        return x
    want = ", ".join("N" if i == b else str(d) for i, d in enumerate(onnx_shape))
    raise ModelError(
        f"{source}: calibration data of shape {x.shape} does not fit model input {name!r}: expected ({want})"
    )


def load_calibration(path: str | Path, graph: Graph) -> np.ndarray:
    """Calibration samples from a .npy file or a folder of .npy files, in the IR's layout."""
    path = Path(path)
    if len(graph.inputs) != 1:
        raise ModelError(f"{path}: calibration files support single-input models (this one has {len(graph.inputs)})")
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise ModelError(f"{path}: no .npy files in the calibration folder")
    elif path.exists():
        files = [path]
    else:
        raise ModelError(f"{path}: no such calibration file or folder")
    parts = []
    for f in files:
        try:
            arr = np.load(f, allow_pickle=False)
        except Exception as e:
            raise ModelError(f"{f}: cannot read calibration array ({type(e).__name__}: {e})") from None
        parts.append(to_ir_layout(graph, arr, str(f)))
    data = np.concatenate(parts)
    if data.shape[0] == 0:
        raise ModelError(f"{path}: no calibration samples")
    if not np.all(np.isfinite(data)):
        raise ModelError(f"{path}: calibration data contains NaN or infinity")
    return data


def quantize_for_compile(
    float_graph: Graph,
    calib: np.ndarray,
    log: Any = None,
    sqnr_samples: int = 16,
    engine: str = "auto",
    eval_data: np.ndarray | None = None,
    eval_samples: int = 256,
) -> Graph:
    """PTQ plus the per-layer SQNR table and top-1 agreement with the float model (printed through
    `log`, kept in meta['quantization']), measured on `eval_data` (IR layout, up to `eval_samples`)
    when given, else on the first `sqnr_samples` calibration samples. `engine` as in `calibrate`."""
    import time

    t0 = time.perf_counter()
    q = quantize_graph(float_graph, [calib], engine=engine)
    t1 = time.perf_counter()
    info: dict[str, Any] = {}
    data, n, on = (calib, sqnr_samples, "calibration") if eval_data is None else (eval_data, eval_samples, "eval")
    rows = sqnr_report(float_graph, q, [data], max_samples=n, info=info)
    src = info["float_reference"]
    q.meta["quantization"] = {
        "scheme": "int8 PTQ: per-channel symmetric weights, per-tensor asymmetric activations (TFLite)",
        "calibration_samples": int(calib.shape[0]),
        "calibration_engine": q.meta["calibration_engine"],
        "calibration_s": round(t1 - t0, 3),
        "sqnr_samples": info["samples"],
        "measured_on": on,
        "float_reference": src,
        "layers": [{"tensor": name, "sqnr_db": db} for name, db in rows],
        "output_sqnr_db": info.get("output_sqnr_db", rows[-1][1] if rows else None),
        "top1_agreement": info.get("top1_agreement"),
    }
    if log is not None:
        log(f"[microtile] quantized with {calib.shape[0]} calibration samples; per-layer SQNR vs {src}:")
        for line in format_sqnr(rows).splitlines():
            log("  " + line)
        log(f"[microtile] {summary_line(q.meta['quantization'])}")
    return q


def summary_line(qz: dict[str, Any]) -> str:
    """One line: top-1 agreement and output SQNR against the float model, and on what."""
    parts = []
    if qz.get("top1_agreement") is not None:
        parts.append(f"top-1 agreement with float {100 * qz['top1_agreement']:.1f} %")
    if qz.get("output_sqnr_db") is not None:
        parts.append(f"output SQNR {qz['output_sqnr_db']:.1f} dB")
    return f"int8 vs float: {', '.join(parts) or 'n/a'} on {qz.get('sqnr_samples')} {qz.get('measured_on')} samples"
