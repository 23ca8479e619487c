"""Import ONNX models (opset 13+; 6-12 upgraded with `onnx.version_converter`) into the microtile IR:
float graphs and QDQ int8 graphs. A model exported with a fixed batch N compiles for batch 1 (a
notice in meta['import_notes']); sequence-first inputs [T, 1, D] import as IR [1, T, D].

Float models import as float32 IR graphs (quantize them with `compiler.passes.quantize`);
QDQ models (QuantizeLinear/DequantizeLinear pairs as `onnxruntime.quantization.quantize_static`
writes them) import as int8 graphs with the scales and zero points of the model.

Layout: ONNX is NCHW, the IR is NHWC. Every ONNX tensor maps to an IR tensor plus a permutation
`perm` (IR axis i holds ONNX axis perm[i]); 4-D graph inputs and every conv/pool output live as
NHWC. ONNX Transpose nodes only change `perm`; a `transpose` op is emitted only where an op needs
a particular order (Reshape that mixes axes, MatMul, graph outputs). Reshapes that keep each
merged group of axes contiguous in IR order stay views (so `conv -> flatten(2) -> transpose(1, 2)`
of a ViT patch embedding costs nothing).

Patterns: PyTorch's decomposed LayerNorm (ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div[/Mul/Add])
folds into `layer_norm`, the Erf form of GELU (also between QDQ pairs) and the Tanh form
(GELU(approximate="tanh") below opset 20) into `gelu`, HardSigmoid*x and x*relu6(x+3)/6
into `hard_swish`, a static attention mask + Softmax into per-key-range softmaxes, a
scalar Mul/Div right before a Softmax (or on q/k before the scores MatMul) into softmax's beta,
MatMul + Add(bias) into `fully_connected`, and Relu/Clip into the producer's fused activation.
Ops without an IR kind of their own map onto int8 ones exactly: AvgPool count_include_pad=1 ->
pad + avg_pool2d, ceil_mode -> extra end padding, Conv1d/pools on NCL -> the 2-D ops on
[N, 1, L, C] views, HardSigmoid -> add/relu/mul, LeakyRelu/PRelu -> mul/relu/add, BatchNorm ->
mul/add, ReduceSum -> mean x count, ReduceMax -> global max pool, Tile/Expand/Resize(nearest) ->
concats of copies (linear x2: + edge copies and a (1,2,1)/4 depthwise conv), ConvTranspose -> zero insertion
(pad) + conv2d with the flipped kernel, grouped Conv -> per-group slice + conv2d + concat. Nodes whose inputs are
all constant (shape arithmetic of PyTorch exports) are folded with onnx's reference evaluator;
`Shape` of an activation folds to its static shape.

Everything unsupported raises a one-line `ModelError` naming the node (op type and name).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.errors import MicrotileError, ModelError, UnsupportedOpError

try:
    import onnx
    from onnx import numpy_helper
except ImportError:  # pragma: no cover - the `onnx` extra is missing
    onnx = None  # type: ignore[assignment]

SUPPORTED = (
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Constant",
    "Conv (also grouped)",
    "ConvTranspose",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "Erf (as GELU, also in QDQ graphs)",
    "Expand (static)",
    "Flatten",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LayerNormalization",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Mul",
    "Pad",
    "QuantizeLinear",
    "PRelu",
    "ReduceMax (spatial)",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Resize (nearest integer scales, linear x2)",
    "Shape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Split",
    "Squeeze",
    "Sub",
    "Tanh",
    "Tile",
    "Transpose",
    "Unsqueeze",
)
# ops that only compute on constants here (folded); on activations they are refused
_FOLD_ONLY = ("Cast", "ConstantOfShape", "Equal", "Range", "Where", "Pow", "Sqrt", "Neg", "Floor", "Ceil")

NHWC = (0, 2, 3, 1)
# op kinds that act on the last axis or elementwise: a leading size-1 axis changes nothing in them
_BATCH_FREE = frozenset(
    "reshape fully_connected add mul batch_matmul softmax layer_norm gelu relu logistic hard_swish quantize".split()
)
MIN_OPSET = 13
MIN_UPGRADE = 6  # oldest opset onnx.version_converter upgrades (the ONNX pytorch-converted models are 6)


def _c_name(name: str) -> str:
    """IR tensor names double as C identifiers in the generated code."""
    s = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_") or "t"
    return s if not s[0].isdigit() else f"t{s}"


def _ident(n: int) -> tuple[int, ...]:
    return tuple(range(n))


def _effective_rank(shape: tuple[int, ...], perm: tuple[int, ...] | list[int]) -> int:
    """Axes a transpose of `shape` by `perm` really moves: size-1 axes dropped, and runs of input
    axes that stay adjacent and in order in the output merged into one."""
    axes = [a for a in perm if shape[a] != 1]
    runs = 0
    for k, a in enumerate(axes):
        if k == 0 or not (a > axes[k - 1] and all(shape[b] == 1 for b in range(axes[k - 1] + 1, a))):
            runs += 1
    return runs


@dataclass(frozen=True)
class _Val:
    """An ONNX activation: IR tensor `ir`, IR axis i holds ONNX axis perm[i]."""

    ir: str
    perm: tuple[int, ...]


def load_onnx(path: str | Path) -> Graph:
    """Read an .onnx file: a float32 IR graph, or an int8 one for QDQ models (ModelError on bad input)."""
    if onnx is None:
        raise ModelError(f"{path}: ONNX import needs the `onnx` package (pip install 'microtile[onnx]')")
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf decode errors, missing external data, ...
        raise ModelError(f"{path}: cannot read ONNX model ({type(e).__name__}: {e})") from None
    g = import_onnx(model, name=path.stem, source=str(path))
    g.meta["onnx_path"] = str(path.resolve())
    return g


def import_onnx(model: Any, name: str = "model", source: str = "<onnx>") -> Graph:
    """Convert an in-memory `onnx.ModelProto` (see `load_onnx`). A corrupted model is a
    ModelError: `validate_onnx` checks names and attributes first; anything the importer then
    trips over is reported on one line too, never as a traceback."""
    validate_onnx(model, source)
    try:
        return _Importer(model, name, source).run()
    except MicrotileError:
        raise
    except Exception as e:  # a corrupt field this importer did not foresee: still the model's fault
        raise ModelError(f"{source}: malformed ONNX model ({type(e).__name__}: {e})") from None


_POSITIVE_ATTRS = ("strides", "dilations", "kernel_shape")


def validate_onnx(model: Any, source: str) -> None:
    """Names are text, windows (strides, dilations, kernel_shape) >= 1 and of one length, pads >= 0
    (2 per spatial axis), group >= 1, initializers decodable to their declared dims. ModelError."""
    g = model.graph
    for vi in list(g.input) + list(g.output):
        if not isinstance(vi.name, str) or not vi.name:
            raise ModelError(f"{source}: graph input/output with an invalid name {vi.name!r}")
    for init in g.initializer:
        if not isinstance(init.name, str):
            raise ModelError(f"{source}: initializer with an invalid name {init.name!r}")
        if any(int(d) < 0 for d in init.dims):
            raise ModelError(f"{source}: initializer {init.name!r} has negative dims {list(init.dims)}")
    for k, node in enumerate(g.node):
        names = [node.op_type, node.name, *node.input, *node.output]
        if not all(isinstance(x, str) for x in names) or not node.output:
            raise ModelError(f"{source}: node {k} has invalid (non-text) names or no output")
        label = f"{source}: {node.op_type} node {node.name or node.output[0]!r}"
        lengths = set()
        for attr in node.attribute:
            if not isinstance(attr.name, str):
                raise ModelError(f"{label}: attribute with an invalid name")
            vals = list(attr.ints)
            if attr.name in _POSITIVE_ATTRS:
                if not vals or any(v < 1 for v in vals):
                    raise ModelError(f"{label}: {attr.name}={vals} must be integers >= 1")
                lengths.add(len(vals))
            elif attr.name == "pads" and node.op_type != "Pad":
                if len(vals) % 2 or any(v < 0 for v in vals):
                    raise ModelError(f"{label}: pads={vals} must be 2 integers >= 0 per spatial axis")
                lengths.add(len(vals) // 2)
            elif attr.name == "group" and attr.i < 1:
                raise ModelError(f"{label}: group={attr.i} must be >= 1")
        if len(lengths) > 1:
            raise ModelError(f"{label}: strides, dilations, kernel_shape and pads disagree on the number of axes")


def node_label(node: Any) -> str:
    return f"{node.op_type} node {node.name or node.output[0]!r}"


class _Importer:
    def __init__(self, model: Any, name: str, source: str) -> None:
        self.model = model
        self.source = source
        self.g = Graph(name=name)
        self.consts: dict[str, np.ndarray] = {}
        self.vals: dict[str, _Val] = {}
        self.nodes = list(model.graph.node)
        self.consumers: dict[str, list[Any]] = {}
        self.producer: dict[str, Any] = {o: n for n in self.nodes for o in n.output if o}
        for n in self.nodes:
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
        self.graph_outputs = {o.name for o in model.graph.output}
        self.skip: set[int] = set()  # nodes consumed by a fused pattern
        self.qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in self.nodes)
        self.act_q: dict[str, QParams] = {}  # IR activation -> quantization (QDQ models)
        self.const_q: dict[str, tuple[np.ndarray, QParams]] = {}  # ONNX const -> (ints, quant, ONNX axis)
        self.pending_q: dict[str, tuple[str, QParams, np.dtype]] = {}  # Q output -> (float input, quant, dtype)
        self.softmax_beta: dict[str, float] = {}
        self.flat_src: dict[str, _Val] = {}  # ONNX [N, K] flatten outputs of permuted tensors
        self.onnx_names: dict[str, list[Any]] = {}
        self._ir_const_q: dict[str, tuple[np.ndarray, QParams]] = {}  # IR const -> (ints, quant)
        self.node: Any = None
        self.batch_n = 0  # the fixed batch N > 1 of the exported model (compiled for batch 1), else 0
        self.shared_q: list[tuple[str, list[str]]] = []  # (tensor, parts quantized like it) in QDQ models

    # -- errors ---------------------------------------------------------------------------
    def err(self, msg: str, node: Any = None) -> ModelError:
        node = node if node is not None else self.node
        where = f"{node_label(node)}: " if node is not None else ""
        return ModelError(f"{self.source}: {where}{msg}")

    def unsupported(self, node: Any) -> UnsupportedOpError:
        return UnsupportedOpError(node.op_type, repr(node.name or node.output[0]), SUPPORTED, self.source)

    # -- top level ------------------------------------------------------------------------
    def run(self) -> Graph:
        opset = next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 0)
        if MIN_UPGRADE <= opset < MIN_OPSET:
            self._upgrade(opset)
            opset = MIN_OPSET
        if opset < MIN_OPSET:
            raise ModelError(
                f"{self.source}: opset {opset} is not supported (opsets {MIN_UPGRADE}-{MIN_OPSET - 1} are upgraded; "
                f"export with opset {MIN_OPSET} or newer)"
            )
        self.opset = opset
        for init in self.model.graph.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
        self._inputs()
        for node in self.nodes:  # Constant nodes first: patterns look ahead at their values
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.node = node
                self._constant(node)
        for i, node in enumerate(self.nodes):
            if i in self.skip:
                continue
            self.node = node
            if not node.op_type or node.domain not in ("", "ai.onnx"):
                raise self.unsupported(node)
            self._convert(i, node)
        self.node = None
        self._outputs()
        self._dce()
        self._fuse_activations()
        self._dce()
        self._lead_batch()
        if not self.qdq:
            self._simplify_views()
            self._dce()
        self.g.meta["onnx_names"] = self.onnx_names
        self.g.verify()
        if self.qdq:
            from compiler.passes.quantize import quantize_with

            for y, parts in self.shared_q:
                for t in parts:
                    if y in self.act_q and t not in self.act_q:
                        self.act_q[t] = self.act_q[y]

            qg = quantize_with(self.g, self.act_q, self._ir_const_q, source=self.source)
            qg.meta.update(self.g.meta)
            return qg
        return self.g

    def _upgrade(self, opset: int) -> None:
        """Opsets 6-12 (old exports, the ONNX package's PyTorch conformance models) upgraded to 13 with
        `onnx.version_converter`; the node it cannot convert is named in the refusal."""
        from onnx import version_converter

        try:
            model = version_converter.convert_version(self.model, MIN_OPSET)
        except Exception as e:
            msg = str(e).strip().splitlines()
            where = next((ln for ln in msg if "op_type" in ln or "Node" in ln), msg[-1] if msg else type(e).__name__)
            raise ModelError(
                f"{self.source}: opset {opset} could not be upgraded to {MIN_OPSET} by onnx.version_converter "
                f"({where.strip()[:200]})"
            ) from None
        self.__init__(model, self.g.name, self.source)  # type: ignore[misc]
        self.g.meta["onnx_upgraded_from"] = opset

    def _inputs(self) -> None:
        for vi in self.model.graph.input:
            if vi.name in self.consts:
                continue
            tt = vi.type.tensor_type
            dims = []
            for d in tt.shape.dim:
                if d.HasField("dim_value") and d.dim_value > 0:
                    dims.append(int(d.dim_value))
                else:
                    dims.append(d.dim_param or "?")
            users = self.consumers.get(vi.name, [])
            at = f" at {node_label(users[0])}" if users else ""
            if any(isinstance(d, str) for d in dims) or not tt.HasField("shape"):
                raise ModelError(
                    f"{self.source}: dynamic shape: input {vi.name!r} has dims {dims}{at}; export with a fixed "
                    "input shape (no dynamic_axes)"
                )
            if tt.elem_type != onnx.TensorProto.FLOAT:
                raise ModelError(
                    f"{self.source}: input {vi.name!r} has element type "
                    f"{onnx.TensorProto.DataType.Name(tt.elem_type)}{at}; float32 inputs are required"
                )
            perm = NHWC if len(dims) == 4 else _ident(len(dims))
            if len(dims) == 3 and dims[0] != 1 and dims[1] == 1:
                perm = (1, 0, 2)  # sequence-first [T, 1, D] (nn.MultiheadAttention's default): IR [1, T, D]
            elif dims[0] != 1:
                if self.batch_n not in (0, dims[0]):
                    raise ModelError(f"{self.source}: inputs with different batch sizes{at}; batch must be 1")
                self.batch_n = int(dims[0])
                self.g.meta["onnx_batch"] = self.batch_n
                self.g.meta.setdefault("import_notes", []).append(
                    f"{Path(self.source).name}: input {vi.name!r} has a fixed batch of {dims[0]}; compiling for batch 1"
                )
                dims[0] = 1
            shape = tuple(dims[p] for p in perm)
            name = self.new_tensor(vi.name, shape)
            self.g.inputs.append(name)
            self.vals[vi.name] = _Val(name, perm)
            self.g.meta.setdefault("input_perms", {})[name] = list(perm)
            self.g.meta.setdefault("onnx_input_shapes", {})[name] = list(dims)
            self.g.meta.setdefault("onnx_input_names", {})[name] = vi.name

    def _outputs(self) -> None:
        for vo in self.model.graph.output:
            if vo.name in self.consts:
                raise ModelError(f"{self.source}: output {vo.name!r} is a constant (nothing to compute)")
            v = self.vals.get(vo.name)
            if v is None:
                raise ModelError(f"{self.source}: output {vo.name!r} is never produced")
            v = self.materialize(v, _ident(len(v.perm)))
            self.g.outputs.append(v.ir)

    # -- helpers --------------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return name == "" or name in self.consts

    def const(self, name: str, what: str = "input") -> np.ndarray:
        if name not in self.consts:
            raise self.err(f"{what} {name!r} must be a constant")
        return self.consts[name]

    def val(self, name: str) -> _Val:
        v = self.vals.get(name)
        if v is None:
            if name in self.pending_q:
                raise self.err(f"QDQ pattern not supported: reads the int8 output of QuantizeLinear {name!r} directly")
            raise self.err(f"input {name!r} is not produced by any supported node")
        return v

    def shape(self, v: _Val) -> tuple[int, ...]:
        """ONNX shape of an activation."""
        ir = self.g.t(v.ir).shape
        out = [0] * len(ir)
        for i, p in enumerate(v.perm):
            out[p] = ir[i]
        return tuple(out)

    def attrs(self, node: Any) -> dict[str, Any]:
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def new_tensor(self, base: str, shape: tuple[int, ...], dtype: str = "float32", data: Any = None) -> str:
        name = self.g.unique_name(_c_name(base))
        self.g.add_tensor(Tensor(name, shape, dtype, data=data))
        return name

    def emit(self, kind: str, ins: list[str], shape: tuple[int, ...], attrs: dict[str, Any], base: str) -> str:
        out = self.new_tensor(base, shape)
        self.g.add_op(Op(kind, out, ins, [out], attrs))
        return out

    def bind(self, onnx_name: str, ir: str, perm: tuple[int, ...]) -> None:
        self.vals[onnx_name] = _Val(ir, perm)
        self.onnx_names.setdefault(ir, [onnx_name, list(perm)])

    def materialize(self, v: _Val, target: tuple[int, ...]) -> _Val:
        """The same ONNX tensor stored with IR axis j holding ONNX axis target[j]."""
        if v.perm == target:
            return v
        src = self.g.t(v.ir).shape
        p = tuple(v.perm.index(t) for t in target)
        shape = tuple(src[i] for i in p)
        moved = [i for i in p if src[i] != 1]
        if moved == sorted(moved):  # only size-1 axes move: a view
            out = self.emit("reshape", [v.ir], shape, {}, f"{v.ir}_r")
        elif _effective_rank(src, p) > 4:  # the int8 kernel moves up to 4 axes: one axis at a time
            cur, cur_p = v.ir, list(range(len(p)))
            for k in range(len(p)):
                j = cur_p.index(p[k])
                if j == k:
                    continue
                step = list(range(k)) + [j] + [i for i in range(k, len(p)) if i != j]
                cur_p = [cur_p[i] for i in step]
                cs = self.g.t(cur).shape
                cur = self.emit("transpose", [cur], tuple(cs[i] for i in step), {"perm": step}, f"{v.ir}_t{k}")
                if v.ir in self.act_q:
                    self.act_q[cur] = self.act_q[v.ir]
            out = cur
        else:
            out = self.emit("transpose", [v.ir], shape, {"perm": list(p)}, f"{v.ir}_t")
        if v.ir in self.act_q:
            self.act_q[out] = self.act_q[v.ir]
        return _Val(out, target)

    def const_ir(
        self, onnx_name: str, arr: np.ndarray, perm: tuple[int, ...] | None, base: str, cols: np.ndarray | None = None
    ) -> str:
        """An IR float constant = ONNX constant transposed by `perm`, then its last axis gathered by `cols`
        (quantization follows, for QDQ)."""
        arr = np.asarray(arr, np.float32)
        data = arr if perm is None else np.transpose(arr, perm)
        if cols is not None:
            data = data[..., cols]
        name = self.new_tensor(base, data.shape, "float32", np.ascontiguousarray(data))
        if onnx_name in self.const_q:
            ints, q = self.const_q[onnx_name]
            if ints.shape == arr.shape:
                axis = q.axis if perm is None or not q.per_channel else perm.index(q.axis)
                ints = ints if perm is None else np.transpose(ints, perm)
                if cols is not None:
                    if q.per_channel and axis == ints.ndim - 1:
                        raise self.err(
                            f"QDQ pattern not supported: weights {onnx_name!r} quantized along the input axis"
                        )
                    ints = ints[..., cols]
                self._ir_const_q[name] = (np.ascontiguousarray(ints), QParams(q.scale, q.zero_point, axis))
        return name

    def sole_consumer(self, name: str) -> Any | None:
        users = self.consumers.get(name, [])
        if len(users) == 1 and name not in self.graph_outputs:
            return users[0]
        return None

    def scalar(self, name: str) -> float | None:
        if name in self.consts and self.consts[name].size == 1:
            return float(self.consts[name].reshape(-1)[0])
        return None

    # -- dispatch -------------------------------------------------------------------------
    def _convert(self, i: int, node: Any) -> None:
        op = node.op_type
        if op == "Constant":
            self._constant(node)
            return
        if op == "QuantizeLinear":
            self._quantize_linear(node)
            return
        if op == "DequantizeLinear":
            self._dequantize_linear(node)
            return
        if op == "Shape" and node.input[0] in self.vals:
            shp = np.array(self.shape(self.vals[node.input[0]]), np.int64)
            a = self.attrs(node)
            self.consts[node.output[0]] = shp[a.get("start", 0) : a.get("end", len(shp))]
            return
        if all(self.is_const(x) for x in node.input) and node.input:
            self._fold(node)
            return
        if self._patterns(i, node):
            return
        fn = getattr(self, f"_op_{op}", None)
        if fn is None:
            raise self.unsupported(node)
        fn(node)

    def _constant(self, node: Any) -> None:
        a = self.attrs(node)
        if "value" in a:
            self.consts[node.output[0]] = numpy_helper.to_array(a["value"])
        elif "value_float" in a:
            self.consts[node.output[0]] = np.array(a["value_float"], np.float32)
        elif "value_int" in a:
            self.consts[node.output[0]] = np.array(a["value_int"], np.int64)
        elif "value_floats" in a:
            self.consts[node.output[0]] = np.array(a["value_floats"], np.float32)
        elif "value_ints" in a:
            self.consts[node.output[0]] = np.array(a["value_ints"], np.int64)
        else:
            raise self.err(f"unsupported attribute(s) {sorted(a)}")

    def _fold(self, node: Any) -> None:
        from onnx.reference import ReferenceEvaluator

        feeds = {x: self.consts[x] for x in node.input if x}
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():  # a corrupt constant: the error
                warnings.simplefilter("ignore")  # below, not numpy's warnings
                outs = ReferenceEvaluator(node).run(None, feeds)
        except Exception as e:
            raise self.err(f"cannot fold constant node ({type(e).__name__}: {e})") from None
        for name, v in zip(node.output, outs, strict=False):
            if name:
                self.consts[name] = np.asarray(v)

    # -- QDQ ------------------------------------------------------------------------------
    def _qparams(self, node: Any) -> tuple[QParams, np.dtype]:
        scale = self.const(node.input[1], "scale")
        zp = self.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        dtype = zp.dtype if zp is not None else np.dtype(np.uint8)
        if zp is None:
            zp = np.zeros_like(scale, dtype=np.int64)
        a = self.attrs(node)
        if a.get("block_size", 0):
            raise self.err("unsupported attribute block_size (blocked quantization)")
        axis = int(a.get("axis", 1))
        return QParams(np.asarray(scale, np.float32).reshape(-1), np.asarray(zp, np.int64).reshape(-1), axis), dtype

    def _quantize_linear(self, node: Any) -> None:
        q, dtype = self._qparams(node)
        x = node.input[0]
        if x in self.consts:  # float weights quantized in the graph: fold to ints
            arr = self.consts[x].astype(np.float32)
            s, z = self._bcast(q, arr.ndim)
            info = np.iinfo(dtype)
            ints = np.clip(np.rint(arr / s) + z, info.min, info.max).astype(dtype)
            self.consts[node.output[0]] = ints
            return
        if dtype not in (np.int8, np.uint8) or q.per_channel:
            raise self.err(f"QDQ pattern not supported: activations must be per-tensor int8/uint8, got {dtype}")
        self.val(x)
        self.pending_q[node.output[0]] = (x, q, dtype)

    @staticmethod
    def _bcast(q: QParams, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        if not q.per_channel:
            return np.float32(q.s), np.int64(q.zp)
        shape = [1] * ndim
        shape[q.axis % ndim] = -1
        return q.scale.reshape(shape), q.zero_point.reshape(shape)

    def _dequantize_linear(self, node: Any) -> None:
        q, _ = self._qparams(node)
        x, y = node.input[0], node.output[0]
        if x in self.consts:  # a quantized constant (weights, bias, constant operand)
            ints = self.consts[x]
            if ints.dtype not in (np.int8, np.uint8, np.int32):
                raise self.err(f"QDQ pattern not supported: constant {x!r} of type {ints.dtype}")
            axis = q.axis % max(ints.ndim, 1)
            s, z = self._bcast(QParams(q.scale, q.zero_point, axis), ints.ndim)
            self.consts[y] = ((ints.astype(np.float64) - z) * s).astype(np.float32)
            if ints.dtype == np.uint8:
                if np.any(q.zero_point != 128):
                    raise self.err(
                        f"QDQ pattern not supported: uint8 constant {x!r} with zero point "
                        f"{q.zero_point.tolist()[:4]} (int8 weights, or uint8 with zero point 128)"
                    )
                ints = (ints.astype(np.int16) - 128).astype(np.int8)
                q = QParams(q.scale, np.zeros_like(q.zero_point), axis)
            self.const_q[y] = (ints, QParams(q.scale, q.zero_point, axis))
            return
        if x not in self.pending_q:
            raise self.err(
                f"QDQ pattern not supported: DequantizeLinear of {x!r}, which is not a QuantizeLinear output"
            )
        src, pq, dtype = self.pending_q[x]
        if not (np.array_equal(pq.scale, q.scale) and np.array_equal(pq.zero_point, q.zero_point)):
            raise self.err(
                "QDQ pattern not supported: DequantizeLinear scale/zero point differ from its QuantizeLinear"
            )
        zp = pq.zp - 128 if dtype == np.uint8 else pq.zp
        qi = QParams(np.float32(pq.s), zp)
        v = self.val(src)
        have = self.act_q.get(v.ir)
        if have is None:
            self.act_q[v.ir] = qi
            self.vals[y] = v
        elif have.s == qi.s and have.zp == qi.zp:
            self.vals[y] = v
        else:  # the same tensor quantized a second time: an explicit requantize
            out = self.emit("quantize", [v.ir], self.g.t(v.ir).shape, {}, y)
            self.act_q[out] = qi
            self.bind(y, out, v.perm)

    # -- patterns -------------------------------------------------------------------------
    def _patterns(self, i: int, node: Any) -> bool:
        op = node.op_type
        if op in ("Div", "Mul") and self._gelu(node):
            return True
        if op == "ReduceMean" and self._layer_norm(node):
            return True
        if op == "HardSigmoid" and self._hard_swish(node):
            return True
        if op == "Tanh" and self._gelu_tanh(node):
            return True
        if op == "Add" and self._masked_softmax(node):
            return True
        if op == "Add" and self._hard_swish_manual(node):
            return True
        return False

    def _mark(self, *nodes: Any) -> None:
        idx = {id(n): k for k, n in enumerate(self.nodes)}
        for n in nodes:
            self.skip.add(idx[id(n)])

    def _other(self, node: Any, name: str) -> str:
        a, b = node.input[0], node.input[1]
        return b if a == name else a

    def _next(self, name: str, skipped: list[Any]) -> tuple[Any | None, str]:
        """The sole consumer of `name` and the name it reads; in QDQ graphs through a
        QuantizeLinear -> DequantizeLinear pair on the way (added to `skipped`: the pattern that
        fuses the chain computes the whole of it, so the intermediate quantization goes away)."""
        c = self.sole_consumer(name)
        if self.qdq and c is not None and c.op_type == "QuantizeLinear":
            dq = self.sole_consumer(c.output[0])
            if dq is not None and dq.op_type == "DequantizeLinear":
                skipped += [c, dq]
                return self.sole_consumer(dq.output[0]), dq.output[0]
        return c, name

    def _near(self, name: str, want: float) -> bool:
        """`name` is a scalar constant equal to `want` (within its int8 step in QDQ graphs)."""
        v = self.scalar(name)
        return v is not None and abs(v - want) <= (1e-2 if self.qdq else 1e-6) * abs(want)

    def _gelu(self, node: Any) -> bool:
        # x / sqrt(2) (or x * 1/sqrt(2)) -> Erf -> + 1 -> * x -> * 0.5   (or 0.5 x first), in QDQ
        # graphs with QuantizeLinear/DequantizeLinear pairs between the steps
        x = next((n for n in node.input if n in self.vals), None)
        if x is None:
            return False
        c = self.scalar(self._other(node, x))
        want = math.sqrt(2.0) if node.op_type == "Div" else 1.0 / math.sqrt(2.0)
        if c is None or abs(c - want) > 1e-2 or (node.op_type == "Div" and node.input[0] != x):
            return False
        skipped: list[Any] = []
        erf, _ = self._next(node.output[0], skipped)
        if erf is None or erf.op_type != "Erf":
            return False
        add, a_in = self._next(erf.output[0], skipped)
        if add is None or add.op_type != "Add" or not self._near(self._other(add, a_in), 1.0):
            return False
        tail = self._gelu_tail(add, x, skipped)
        if tail is None:
            return False
        nodes, out = tail
        v = self.val(x)
        y = self.emit("gelu", [v.ir], self.g.t(v.ir).shape, {"approximate": "none"}, out)
        self.bind(out, y, v.perm)
        self._mark(node, erf, add, *nodes, *skipped)
        return True

    def _gelu_tail(self, add: Any, x: str, skipped: list[Any] | None = None) -> tuple[list[Any], str] | None:
        """The `* x * 0.5` after GELU's `1 + erf/tanh(..)` Add: (nodes, output) or None.
        Accepts (1 + t) * x * 0.5, (1 + t) * 0.5 * x and (0.5 x) * (1 + t), in either operand order."""
        skipped = [] if skipped is None else skipped
        m1, m_in = self._next(add.output[0], skipped)
        if m1 is None or m1.op_type != "Mul":
            return None
        o = self._other(m1, m_in)
        if o == x or self._near(o, 0.5):
            m2, m2_in = self._next(m1.output[0], skipped)
            if m2 is None or m2.op_type != "Mul":
                return None
            o2 = self._other(m2, m2_in)
            if (o == x and not self._near(o2, 0.5)) or (o != x and o2 != x):
                return None
            return [m1, m2], m2.output[0]
        half = self.producer.get(o)
        if self.qdq and half is not None and half.op_type == "DequantizeLinear":
            q = self.producer.get(half.input[0])
            if q is not None and q.op_type == "QuantizeLinear" and self.sole_consumer(q.output[0]) is half:
                skipped += [q, half]
                half = self.producer.get(q.input[0])
        if half is None or half.op_type != "Mul" or x not in half.input or not self._near(self._other(half, x), 0.5):
            return None
        return [m1], m1.output[0]

    def _gelu_tanh(self, node: Any) -> bool:
        # PyTorch's GELU(approximate="tanh") below opset 20 (and HF's NewGELU):
        # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), matched backwards from the Tanh; the
        # nodes before it (already emitted) become dead and are dropped.
        def mul_by(name: str, c: float) -> str | None:
            n = self.producer.get(name)
            if n is None or n.op_type != "Mul":
                return None
            for a, b in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
                v = self.scalar(a)
                if v is not None and abs(v - c) <= 1e-4 * abs(c):
                    return b
            return None

        inner = mul_by(node.input[0], math.sqrt(2.0 / math.pi))
        add0 = self.producer.get(inner) if inner else None
        if add0 is None or add0.op_type != "Add":
            return False
        x = next((a for a in add0.input if a in self.vals and mul_by(self._other(add0, a), 0.044715)), None)
        if x is None:
            return False
        cube = mul_by(self._other(add0, x), 0.044715)
        cn = self.producer.get(cube) if cube else None
        if cn is None:
            return False
        if cn.op_type == "Pow":
            if cn.input[0] != x or self.scalar(cn.input[1]) != 3.0:
                return False
        elif cn.op_type == "Mul":
            sq = next((self.producer.get(a) for a in cn.input if a != x), None)
            if x not in cn.input or sq is None or sq.op_type != "Mul" or list(sq.input) != [x, x]:
                return False
        else:
            return False
        add1 = self.sole_consumer(node.output[0])
        if add1 is None or add1.op_type != "Add" or self.scalar(self._other(add1, node.output[0])) != 1.0:
            return False
        tail = self._gelu_tail(add1, x)
        if tail is None:
            return False
        nodes, out = tail
        v = self.val(x)
        y = self.emit("gelu", [v.ir], self.g.t(v.ir).shape, {"approximate": "tanh"}, out)
        self.bind(out, y, v.perm)
        self._mark(node, add1, *nodes)
        return True

    def _masked_softmax(self, node: Any) -> bool:
        """Softmax(scores + M) for a static attention mask M (0 where attended, -inf or <= -1e3 where
        not; nn.MultiheadAttention's attn_mask, causal masks), exactly with int8 ops: rows that share
        the same attended column range [a, b) form one group, whose scores are sliced to those
        columns, soft-maxed, and padded back with the softmax output's zero point (probability 0);
        the groups are concatenated along the rows. Masks whose attended columns are not one
        contiguous range per row, or that differ per head, are refused (one line, naming the node)."""
        sm = self.sole_consumer(node.output[0])
        if sm is None or sm.op_type != "Softmax" or self.qdq:
            return False
        mname = next((c for c in node.input if c in self.consts), None)
        sname = next((c for c in node.input if c in self.vals), None)
        if mname is None or sname is None:
            return False
        if not self._is_mask(node):
            return False  # an additive bias, not a mask: the plain add
        m = self.consts[mname]
        self.node = sm
        self._check_attrs(sm, {"axis": None})
        v = self.val(sname)
        src = self.shape(v)
        rank = len(src)
        if int(self.attrs(sm).get("axis", -1)) % rank != rank - 1 or rank < 2:
            raise self.err("attention mask: softmax over the last axis only")
        mask = np.broadcast_to(m.reshape((1,) * (rank - m.ndim) + m.shape), src)
        lead = mask.reshape(-1, src[-2], src[-1])
        if not all(np.array_equal(lead[0], lead[k]) for k in range(1, lead.shape[0])):
            raise self.err("attention mask that differs per head or batch is not supported")
        keep = lead[0] > -1e3
        if np.any((lead[0] != 0) & keep):
            raise self.err("attention mask with entries other than 0 and -inf (an added bias) is not supported")
        t, n_cols = keep.shape
        groups: list[tuple[int, int, int, int]] = []  # rows [r0, r1), columns [a, b)
        for r in range(t):
            cols = np.flatnonzero(keep[r])
            if cols.size == 0 or cols[-1] - cols[0] + 1 != cols.size:
                raise self.err(f"attention mask row {r} does not attend to one contiguous range of keys")
            a, b = int(cols[0]), int(cols[-1]) + 1
            if groups and groups[-1][2:] == (a, b):
                groups[-1] = (groups[-1][0], r + 1, a, b)
            else:
                groups.append((r, r + 1, a, b))
        v = self.materialize(v, _ident(rank))
        beta = float(self.softmax_beta.get(sname, 1.0))
        out = sm.output[0]
        shape = self.g.t(v.ir).shape
        heads = int(np.prod(shape[:-2]))
        parts = []
        for k, (r0, r1, a, b) in enumerate(groups):
            begin = [0] * (rank - 2) + [r0, a]
            size = list(shape[:-2]) + [r1 - r0, b - a]
            x = v.ir
            if begin != [0] * rank or size != list(shape):
                x = self.emit("slice", [x], tuple(size), {"begin": begin, "size": size}, f"{out}_g{k}")
            y = self.emit("softmax", [x], tuple(size), {"beta": beta}, f"{out}_sm{k}")
            if (a, b) != (0, n_cols):  # padded back on a [1, rows, cols, 1] view (the pad kernel's W axis)
                rows = heads * (r1 - r0)
                flat = self.emit("reshape", [y], (1, rows, b - a, 1), {}, f"{out}_v{k}")
                pads = ((0, 0), (0, 0), (a, n_cols - b), (0, 0))
                padded = self.emit("pad", [flat], (1, rows, n_cols, 1), {"paddings": pads}, f"{out}_p{k}")
                y = self.emit("reshape", [padded], tuple(size[:-1]) + (n_cols,), {}, f"{out}_r{k}")
            parts.append(y)
        if len(parts) == 1:
            self.bind(out, parts[0], _ident(rank))
        else:
            attrs = {"axis": rank - 2, "activation": "none"}
            self.bind(out, self.emit("concat", parts, shape, attrs, out), _ident(rank))
        self._mark(node, sm)
        self.node = node
        return True

    def _reduce_axes(self, node: Any, rank: int) -> tuple[list[int], bool] | None:
        a = self.attrs(node)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            if node.input[1] not in self.consts:
                return None
            axes = self.consts[node.input[1]].reshape(-1).tolist()
        if axes is None:
            if a.get("noop_with_empty_axes", 0):
                return [], bool(a.get("keepdims", 1))
            axes = list(range(rank))
        return sorted(int(ax) % rank for ax in axes), bool(a.get("keepdims", 1))

    def _layer_norm(self, node: Any) -> bool:
        x = node.input[0]
        if x not in self.vals:
            return False
        rank = len(self.vals[x].perm)
        ax = self._reduce_axes(node, rank)
        if ax is None or ax[0] != [rank - 1] or not ax[1]:
            return False
        mean = node.output[0]
        subs = [
            n for n in self.consumers.get(mean, []) if n.op_type == "Sub" and n.input[0] == x and n.input[1] == mean
        ]
        if len(subs) != 1 or len(self.consumers.get(mean, [])) != 1:
            return False
        d = subs[0].output[0]
        users = self.consumers.get(d, [])
        pw = next((n for n in users if n.op_type == "Pow" and self.scalar(n.input[1]) == 2.0), None)
        if pw is None:
            pw = next((n for n in users if n.op_type == "Mul" and n.input[0] == d and n.input[1] == d), None)
        div = next((n for n in users if n.op_type == "Div" and n.input[0] == d), None)
        if pw is None or div is None or len(users) != 2:
            return False
        rm2 = self.sole_consumer(pw.output[0])
        if rm2 is None or rm2.op_type != "ReduceMean":
            return False
        ax2 = self._reduce_axes(rm2, rank)
        if ax2 is None or ax2[0] != [rank - 1]:
            return False
        add = self.sole_consumer(rm2.output[0])
        if add is None or add.op_type != "Add":
            return False
        eps = self.scalar(self._other(add, rm2.output[0]))
        sq = self.sole_consumer(add.output[0])
        if eps is None or sq is None or sq.op_type != "Sqrt" or div.input[1] != sq.output[0]:
            return False
        nodes = [node, subs[0], pw, rm2, add, sq, div]
        out = div.output[0]
        dim = self.shape(self.vals[x])[-1]
        gamma, beta = np.ones(dim, np.float32), np.zeros(dim, np.float32)
        m = self.sole_consumer(out)
        if m is not None and m.op_type == "Mul":
            gname = self._other(m, out)
            if gname in self.consts and self.consts[gname].size in (1, dim):
                gamma = np.broadcast_to(self.consts[gname].reshape(-1), (dim,)).astype(np.float32)
                nodes.append(m)
                out = m.output[0]
                a2 = self.sole_consumer(out)
                if a2 is not None and a2.op_type == "Add":
                    bname = self._other(a2, out)
                    if bname in self.consts and self.consts[bname].size in (1, dim):
                        beta = np.broadcast_to(self.consts[bname].reshape(-1), (dim,)).astype(np.float32)
                        nodes.append(a2)
                        out = a2.output[0]
        self._emit_layer_norm(x, gamma, beta, eps, out)
        self._mark(*nodes)
        return True

    def _emit_layer_norm(self, x: str, gamma: np.ndarray, beta: np.ndarray, eps: float, out: str) -> None:
        v = self.val(x)
        rank = len(v.perm)
        if v.perm[-1] != rank - 1:
            v = self.materialize(v, _ident(rank))
        gn = self.new_tensor(f"{out}_gamma", gamma.shape, "float32", gamma.astype(np.float32))
        bn = self.new_tensor(f"{out}_beta", beta.shape, "float32", beta.astype(np.float32))
        y = self.emit("layer_norm", [v.ir, gn, bn], self.g.t(v.ir).shape, {"axis": -1, "epsilon": float(eps)}, out)
        self.bind(out, y, v.perm)

    def _hard_swish(self, node: Any) -> bool:
        a = self.attrs(node)
        x = node.input[0]
        if x not in self.vals or abs(a.get("alpha", 0.2) - 1 / 6) > 1e-4 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
            return False
        m = self.sole_consumer(node.output[0])
        if m is None or m.op_type != "Mul" or self._other(m, node.output[0]) != x:
            return False
        v = self.val(x)
        y = self.emit("hard_swish", [v.ir], self.g.t(v.ir).shape, {}, m.output[0])
        self.bind(m.output[0], y, v.perm)
        self._mark(node, m)
        return True

    def _clip_bounds(self, node: Any) -> tuple[float, float] | None:
        a = self.attrs(node)
        lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = self.scalar(node.input[1])
        if len(node.input) > 2 and node.input[2]:
            hi = self.scalar(node.input[2])
        return None if lo is None or hi is None else (float(lo), float(hi))

    def _hard_swish_manual(self, node: Any) -> bool:
        # x * relu6(x + 3) / 6 as people write it (Add, Clip(0, 6), Mul x, Div 6 / Mul 1/6, the last
        # two in either order): one hard_swish
        x = next((n for n in node.input if n in self.vals), None)
        if x is None or not self._near(self._other(node, x), 3.0):
            return False
        clip = self.sole_consumer(node.output[0])
        if clip is None or clip.op_type != "Clip" or self._clip_bounds(clip) != (0.0, 6.0):
            return False

        def sixth(n: Any, name: str) -> bool:
            o = self._other(n, name)
            return (n.op_type == "Div" and n.input[0] == name and self._near(o, 6.0)) or (
                n.op_type == "Mul" and self._near(o, 1.0 / 6.0)
            )

        n1 = self.sole_consumer(clip.output[0])
        if n1 is None or n1.op_type not in ("Mul", "Div"):
            return False
        n2 = self.sole_consumer(n1.output[0])
        if n2 is None or n2.op_type not in ("Mul", "Div"):
            return False
        first_x = n1.op_type == "Mul" and self._other(n1, clip.output[0]) == x
        if first_x and not sixth(n2, n1.output[0]):
            return False
        if not first_x and not (sixth(n1, clip.output[0]) and n2.op_type == "Mul" and x in n2.input):
            return False
        v = self.val(x)
        y = self.emit("hard_swish", [v.ir], self.g.t(v.ir).shape, {}, n2.output[0])
        self.bind(n2.output[0], y, v.perm)
        self._mark(node, clip, n1, n2)
        return True

    # -- ops ------------------------------------------------------------------------------
    def _check_attrs(self, node: Any, allowed: dict[str, Any]) -> dict[str, Any]:
        """Attributes of `node`; any not in `allowed` (or with a value other than the allowed one) is refused."""
        a = self.attrs(node)
        for k, v in a.items():
            if k not in allowed:
                raise self.err(f"unsupported attribute {k}={v!r}")
            want = allowed[k]
            if want is not None and v != want and not (isinstance(want, tuple) and v in want):
                raise self.err(f"unsupported attribute {k}={v!r} (supported: {want!r})")
        return a

    def _spatial(self, node: Any, in_hw: tuple[int, int], k: tuple[int, int], a: dict[str, Any]):
        s = tuple(a.get("strides", (1, 1)))
        d = tuple(a.get("dilations", (1, 1)))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if len(k) != 2 or len(s) != 2:
            raise self.err(f"only 2-D spatial ops are supported (kernel {list(k)})")
        if auto == "NOTSET":
            p = list(a.get("pads", (0, 0, 0, 0)))
            pads = (p[0], p[2], p[1], p[3])
        elif auto == "VALID":
            pads = (0, 0, 0, 0)
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            pp = []
            for i in range(2):
                out = -(-in_hw[i] // s[i])
                total = max((out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in_hw[i], 0)
                small = total // 2
                pp.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
            pads = (pp[0][0], pp[0][1], pp[1][0], pp[1][1])
        else:
            raise self.err(f"unsupported attribute auto_pad={auto!r}")
        oh = (in_hw[0] + pads[0] + pads[1] - ((k[0] - 1) * d[0] + 1)) // s[0] + 1
        ow = (in_hw[1] + pads[2] + pads[3] - ((k[1] - 1) * d[1] + 1)) // s[1] + 1
        if oh < 1 or ow < 1:
            raise self.err(f"window {list(k)} does not fit input {list(in_hw)}")
        return (int(s[0]), int(s[1])), (int(d[0]), int(d[1])), tuple(int(p) for p in pads), (oh, ow)

    def _nhwc(self, name: str) -> _Val:
        v = self.val(name)
        if len(v.perm) != 4:
            raise self.err(f"input {name!r} has rank {len(v.perm)}; only 4-D NCHW tensors are supported here")
        return self.materialize(v, NHWC)

    def _nhwc_or_1d(self, name: str) -> tuple[_Val, bool]:
        """A 4-D NCHW input as NHWC, or a 3-D NCL one (Conv1d, pools on sequences) as NHWC [N, 1, L, C]
        (a view); the flag says which."""
        v = self.val(name)
        if len(v.perm) != 3:
            return self._nhwc(name), False
        v = self.materialize(v, (0, 2, 1))
        n, length, c = self.g.t(v.ir).shape
        r = self.emit("reshape", [v.ir], (n, 1, length, c), {}, f"{v.ir}_2d")
        if v.ir in self.act_q:
            self.act_q[r] = self.act_q[v.ir]
        return _Val(r, NHWC), True

    @staticmethod
    def _attrs_2d(a: dict[str, Any], lists: tuple[str, ...], pads: str) -> dict[str, Any]:
        """1-D spatial attributes as 2-D ones over (1, L)."""
        a = dict(a)
        for key in lists:
            if key in a:
                a[key] = [1] + [int(x) for x in a[key]]
        if pads in a:
            b, e = (int(x) for x in a[pads])
            a[pads] = [0, b, 0, e]
        return a

    def _bind_spatial(self, onnx_name: str, y: str, one_d: bool) -> None:
        if not one_d:
            self.bind(onnx_name, y, NHWC)
            return
        n, _, length, c = self.g.t(y).shape
        r = self.emit("reshape", [y], (n, length, c), {}, f"{y}_1d")
        self.bind(onnx_name, r, (0, 2, 1))

    def _op_Conv(self, node: Any) -> None:
        a = self._check_attrs(
            node,
            {"kernel_shape": None, "strides": None, "pads": None, "dilations": None, "group": None, "auto_pad": None},
        )
        v, one_d = self._nhwc_or_1d(node.input[0])
        n, h, w, c = self.g.t(v.ir).shape
        wname = node.input[1]
        wt = self.const(wname, "weights")
        if one_d and wt.ndim == 3:  # Conv1d: weights [O, I, K] -> [O, I, 1, K]
            wt = wt[:, :, None, :]
            if wname in self.const_q:
                ints, q = self.const_q[wname]
                self.const_q[f"{wname}__2d"] = (ints[:, :, None, :], q)
            wname = f"{wname}__2d"
            self.consts[wname] = wt
            a = self._attrs_2d(a, ("kernel_shape", "strides", "dilations"), "pads")
        if wt.ndim != 4:
            raise self.err(f"only 1-D and 2-D convolutions are supported (weights of rank {wt.ndim})")
        o, ig, kh, kw = wt.shape
        group = int(a.get("group", 1))
        s, d, pads, (oh, ow) = self._spatial(node, (h, w), (kh, kw), a)
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        out = node.output[0]
        attrs: dict[str, Any] = {"stride": s, "dilation": d, "pads": pads, "activation": "none"}
        if group == 1:
            if ig != c:
                raise self.err(f"weights expect {ig} input channels, the input has {c}")
            kind = "conv2d"
            wi = self.const_ir(wname, wt, (0, 2, 3, 1), f"{out}_w")
        elif group == c and ig == 1 and o % c == 0:
            kind = "depthwise_conv2d"
            attrs["depth_multiplier"] = o // c
            wi = self.const_ir(wname, wt, (1, 2, 3, 0), f"{out}_w")
        elif group > 1 and c % group == 0 and o % group == 0 and ig == c // group:
            self._grouped_conv(v, wname, wt, bias, group, attrs, (n, oh, ow, o), out, one_d)
            return
        else:
            raise self.err(f"unsupported attribute group={group} (weights {list(wt.shape)}, {c} input channels)")
        ins = [wi]
        b = self.const(bias, "bias") if bias else np.zeros(o, np.float32)
        ins.append(self.const_ir(bias or "", b, None, f"{out}_b"))
        y = self.emit(kind, [v.ir] + ins, (n, oh, ow, o), attrs, out)
        self._bind_spatial(out, y, one_d)

    def _grouped_conv(
        self,
        v: _Val,
        wname: str,
        wt: np.ndarray,
        bias: str | None,
        group: int,
        attrs: dict[str, Any],
        out_shape: tuple[int, ...],
        out: str,
        one_d: bool,
    ) -> None:
        """A grouped convolution (ResNeXt, ShuffleNet): per group, a slice of the input channels, a
        conv2d with that group's filters, and the outputs concatenated along the channels."""
        n, h, w, c = self.g.t(v.ir).shape
        o = wt.shape[0]
        ci, co = c // group, o // group
        b_all = self.const(bias, "bias") if bias else np.zeros(o, np.float32)
        parts = []
        for k in range(group):
            size = [n, h, w, ci]
            xs = self.emit("slice", [v.ir], tuple(size), {"begin": [0, 0, 0, k * ci], "size": size}, f"{out}_in{k}")
            if v.ir in self.act_q:
                self.act_q[xs] = self.act_q[v.ir]
            wk, bk = f"{wname}__g{k}", f"{out}__b{k}"
            self.consts[wk] = wt[k * co : (k + 1) * co]
            if wname in self.const_q:
                ints, q = self.const_q[wname]
                ints = ints[:, :, None, :] if ints.ndim == 3 else ints
                qk = QParams(q.scale[k * co : (k + 1) * co] if q.per_channel else q.scale, q.zero_point, q.axis)
                if q.per_channel and q.zero_point.size > 1:
                    qk = QParams(qk.scale, q.zero_point[k * co : (k + 1) * co], q.axis)
                self.const_q[wk] = (ints[k * co : (k + 1) * co], qk)
            wi = self.const_ir(wk, self.consts[wk], (0, 2, 3, 1), f"{out}_w{k}")
            if bias and bias in self.const_q:
                bints, bq = self.const_q[bias]
                self.const_q[bk] = (bints[k * co : (k + 1) * co], QParams(
                    bq.scale[k * co : (k + 1) * co] if bq.per_channel else bq.scale, np.zeros(1), 0))  # fmt: skip
            bi = self.const_ir(bk, b_all[k * co : (k + 1) * co], None, f"{out}_b{k}")
            y = self.emit("conv2d", [xs, wi, bi], out_shape[:3] + (co,), dict(attrs), f"{out}_g{k}")
            parts.append(y)
        y = self.emit("concat", parts, out_shape, {"axis": 3, "activation": "none"}, out)
        self.shared_q.append((y, parts))  # QDQ: each group's output takes the conv output's quantization
        self._bind_spatial(out, y, one_d)

    def _op_ConvTranspose(self, node: Any) -> None:
        """ConvTranspose (group 1, dilation 1) as TFLite's TRANSPOSE_CONV is defined: zeros inserted
        between the input's rows and columns (pad ops on 4-D views, the int8 pad writes the zero
        point), then a stride-1 conv2d with the kernel flipped and its in/out axes swapped, padded
        k - 1 - pad (a crop where that is negative at the end)."""
        a = self._check_attrs(
            node,
            {"kernel_shape": None, "strides": None, "pads": None, "dilations": None, "group": 1,
             "output_padding": None, "auto_pad": (b"NOTSET", "NOTSET")},
        )  # fmt: skip
        x, one_d = self._nhwc_or_1d(node.input[0])
        wname = node.input[1]
        wt = self.const(wname, "weights").astype(np.float32)
        if one_d and wt.ndim == 3:
            wt = wt[:, :, None, :]
            a = self._attrs_2d(a, ("kernel_shape", "strides", "dilations"), "pads")
            if "output_padding" in a:
                a["output_padding"] = [0] + [int(v) for v in a["output_padding"]]
        if wt.ndim != 4:
            raise self.err(f"only 1-D and 2-D transposed convolutions are supported (weights of rank {wt.ndim})")
        if any(int(d) != 1 for d in a.get("dilations", (1, 1))):
            raise self.err(f"unsupported attribute dilations={list(a['dilations'])} (1 only)")
        cin, cout, kh, kw = wt.shape
        n, h, w, c = self.g.t(x.ir).shape
        if cin != c:
            raise self.err(f"weights expect {cin} input channels, the input has {c}")
        sh, sw = (int(v) for v in a.get("strides", (1, 1)))
        pt, pl, pb, pr = (int(v) for v in a.get("pads", (0, 0, 0, 0)))
        oph, opw = (int(v) for v in a.get("output_padding", (0, 0)))
        out = node.output[0]
        cur = x.ir

        def keep_q(t: str) -> None:
            if x.ir in self.act_q:
                self.act_q[t] = self.act_q[x.ir]

        for r, tag in ((sw, "w"), (sh, "h")):  # zero insertion: [.., k, ..] -> [.., k, 0 x (s-1), ..]
            if r == 1:
                continue
            b, hh, ww, cc = self.g.t(cur).shape
            outer, inner = (hh * ww, cc) if tag == "w" else (hh, ww * cc)
            view = self.emit("reshape", [cur], (b, outer, 1, inner), {}, f"{out}_{tag}v")
            pad = ((0, 0), (0, 0), (0, r - 1), (0, 0))
            z = self.emit("pad", [view], (b, outer, r, inner), {"paddings": pad}, f"{out}_{tag}z")
            nh, nw = (hh, ww * r) if tag == "w" else (hh * r, ww)
            cur = self.emit("reshape", [z], (b, nh, nw, cc), {}, f"{out}_{tag}r")
            for t in (view, z, cur):
                keep_q(t)
        top, left = kh - 1 - pt, kw - 1 - pl
        bottom, right = kh - 1 - pb + oph - (sh - 1), kw - 1 - pr + opw - (sw - 1)
        if top < 0 or left < 0:
            raise self.err(f"pads {[pt, pl, pb, pr]} larger than kernel - 1 at the start are not supported")
        if bottom < 0 or right < 0:  # crop the end instead of padding it
            b, hh, ww, cc = self.g.t(cur).shape
            size = [b, hh + min(bottom, 0), ww + min(right, 0), cc]
            cur = self.emit("slice", [cur], tuple(size), {"begin": [0, 0, 0, 0], "size": size}, f"{out}_crop")
            keep_q(cur)
            bottom, right = max(bottom, 0), max(right, 0)
        flipped = f"{wname}__flip"
        self.consts[flipped] = np.ascontiguousarray(wt[:, :, ::-1, ::-1])
        if wname in self.const_q:
            ints, q = self.const_q[wname]
            ints = ints[:, :, None, :] if ints.ndim == 3 else ints
            self.const_q[flipped] = (np.ascontiguousarray(ints[:, :, ::-1, ::-1]), q)
        wi = self.const_ir(flipped, self.consts[flipped], (1, 2, 3, 0), f"{out}_w")
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        b_arr = self.const(bias, "bias") if bias else np.zeros(cout, np.float32)
        bi = self.const_ir(bias or "", b_arr, None, f"{out}_b")
        hh, ww = self.g.t(cur).shape[1:3]
        oh, ow = hh + top + bottom - kh + 1, ww + left + right - kw + 1
        want_h = (h - 1) * sh + kh - pt - pb + oph
        want_w = (w - 1) * sw + kw - pl - pr + opw
        if (oh, ow) != (want_h, want_w):
            raise self.err(f"internal: output {oh}x{ow}, ONNX gives {want_h}x{want_w}")
        attrs = {"stride": (1, 1), "dilation": (1, 1), "pads": (top, bottom, left, right), "activation": "none"}
        y = self.emit("conv2d", [cur, wi, bi], (n, oh, ow, cout), attrs, out)
        self._bind_spatial(out, y, one_d)

    def _pool(self, node: Any, kind: str) -> None:
        allowed = {"kernel_shape": None, "strides": None, "pads": None, "auto_pad": None, "ceil_mode": (0, 1)}
        if kind == "max_pool2d":
            allowed.update({"dilations": ((1, 1), [1, 1], (1,), [1]), "storage_order": 0})
        else:
            allowed["count_include_pad"] = None
        a = self._check_attrs(node, allowed)
        if len(node.output) > 1 and node.output[1]:
            raise self.err("the Indices output of MaxPool is not supported")
        v, one_d = self._nhwc_or_1d(node.input[0])
        n, h, w, c = self.g.t(v.ir).shape
        k = tuple(a["kernel_shape"])
        if one_d:
            a = self._attrs_2d(a, ("kernel_shape", "strides", "dilations"), "pads")
            k = (1, k[0])
        s, _, pads, (oh, ow) = self._spatial(node, (h, w), k, a)
        if a.get("ceil_mode", 0):
            # ONNX/PyTorch ceil_mode: ceil((in + pads - k) / s) + 1 windows, the last one starting inside
            # the input or the leading pad; the extra windows read bottom/right padding that is never
            # counted (avg: count over real and explicit-pad elements only; max: padding is -inf)
            ext = []
            for i, (size, lo, hi) in enumerate(((h, pads[0], pads[1]), (w, pads[2], pads[3]))):
                o = -(-(size + lo + hi - k[i]) // s[i]) + 1
                if (o - 1) * s[i] >= size + lo:
                    o -= 1
                ext.append(max((o - 1) * s[i] + k[i] - (size + lo + hi), 0))
            pads = (pads[0], pads[1] + ext[0], pads[2], pads[3] + ext[1])
            oh = (h + pads[0] + pads[1] - k[0]) // s[0] + 1
            ow = (w + pads[2] + pads[3] - k[1]) // s[1] + 1
        if kind == "avg_pool2d" and a.get("count_include_pad", 0) and any(pads):
            # padding counted in the divisor: pad explicitly with zeros (the int8 pad writes the
            # zero point), then average over windows that hold no implicit padding, except the
            # ceil_mode overhang, which PyTorch and onnxruntime do not count either
            explicit = self._spatial(node, (h, w), k, a)[2]
            if any(explicit):
                src = self.g.t(v.ir).shape
                shape = (src[0], src[1] + explicit[0] + explicit[1], src[2] + explicit[2] + explicit[3], src[3])
                paddings = ((0, 0), (explicit[0], explicit[1]), (explicit[2], explicit[3]), (0, 0))
                v = _Val(self.emit("pad", [v.ir], shape, {"paddings": paddings}, f"{node.output[0]}_pad"), NHWC)
                pads = (0, pads[1] - explicit[1], 0, pads[3] - explicit[3])
        attrs = {"kernel": (int(k[0]), int(k[1])), "stride": s, "pads": pads, "activation": "none"}
        y = self.emit(kind, [v.ir], (n, oh, ow, c), attrs, node.output[0])
        self._bind_spatial(node.output[0], y, one_d)

    def _op_MaxPool(self, node: Any) -> None:
        self._pool(node, "max_pool2d")

    def _op_AveragePool(self, node: Any) -> None:
        self._pool(node, "avg_pool2d")

    def _op_GlobalAveragePool(self, node: Any) -> None:
        v, one_d = self._nhwc_or_1d(node.input[0])
        n, _, _, c = self.g.t(v.ir).shape
        y = self.emit("mean", [v.ir], (n, 1, 1, c), {"axes": (1, 2), "keep_dims": True}, node.output[0])
        self._bind_spatial(node.output[0], y, one_d)

    def _op_ReduceMean(self, node: Any) -> None:
        self._check_attrs(node, {"axes": None, "keepdims": None, "noop_with_empty_axes": 0})
        v = self.val(node.input[0])
        rank = len(v.perm)
        ax = self._reduce_axes(node, rank)
        if ax is None:
            raise self.err("axes input must be a constant")
        axes, keep = ax
        ir_axes = tuple(sorted(v.perm.index(a) for a in axes))
        if 0 in axes:
            raise self.err("mean over the batch axis is not supported")
        src = self.g.t(v.ir).shape
        if keep:
            shape = tuple(1 if i in ir_axes else d for i, d in enumerate(src))
            perm = v.perm
        else:
            shape = tuple(d for i, d in enumerate(src) if i not in ir_axes)
            kept = [p for i, p in enumerate(v.perm) if i not in ir_axes]
            perm = tuple(sorted(kept).index(p) for p in kept)
        x = v.ir
        if len(src) == 3 and ir_axes == (1,):  # the mean over L of [N, L, C] (Conv1d nets): over W of [N, 1, L, C]
            x = self.emit("reshape", [x], (src[0], 1, src[1], src[2]), {}, f"{x}_2d")
            if v.ir in self.act_q:
                self.act_q[x] = self.act_q[v.ir]
            attrs = {"axes": (1, 2), "keep_dims": True}
            m = self.emit("mean", [x], (src[0], 1, 1, src[2]), attrs, f"{node.output[0]}_m")
            y = self.emit("reshape", [m], shape, {}, node.output[0])
        else:
            y = self.emit("mean", [x], shape, {"axes": ir_axes, "keep_dims": keep}, node.output[0])
        self.bind(node.output[0], y, perm)

    def _op_BatchNormalization(self, node: Any) -> None:
        # inference BatchNorm that PyTorch did not fold into a conv (BatchNorm1d/2d after an
        # activation): x * scale + shift per channel (ONNX axis 1), a constant mul and add
        self._check_attrs(node, {"epsilon": None, "momentum": None, "training_mode": 0})
        if any(o for o in node.output[1:]):
            raise self.err("the running mean/var outputs (training mode) are not supported")
        eps = float(self.attrs(node).get("epsilon", 1e-5))
        gamma, beta, mean, var = (self.const(n, "statistics").astype(np.float64) for n in node.input[1:5])
        scale = gamma / np.sqrt(var + eps)
        shift = beta - mean * scale
        rank = len(self.val(node.input[0]).perm)
        out = node.output[0]
        bshape = (1, -1) + (1,) * (rank - 2)
        self.consts[f"{out}__scale"] = scale.astype(np.float32).reshape(bshape)
        self.consts[f"{out}__shift"] = shift.astype(np.float32).reshape(bshape)
        m = onnx.helper.make_node("Mul", [node.input[0], f"{out}__scale"], [f"{out}__scaled"], name=f"{node.name}_mul")
        self._binary(m, "mul", node.input[0], f"{out}__scale")
        self._binary(node, "add", f"{out}__scaled", f"{out}__shift")

    def _op_ReduceSum(self, node: Any) -> None:
        # the sum = the mean (int8 kernel) times the element count (a constant mul)
        v = self.val(node.input[0])
        ax = self._reduce_axes(node, len(v.perm))
        if ax is None:
            raise self.err("axes input must be a constant")
        count = int(np.prod([self.shape(v)[a] for a in ax[0]]))
        mean = onnx.helper.make_node("ReduceMean", [node.input[0]], [f"{node.output[0]}__mean"], name=node.name)
        mean.attribute.extend(a for a in node.attribute if a.name != "noop_with_empty_axes")
        if not any(a.name == "axes" for a in node.attribute):
            mean.attribute.append(onnx.helper.make_attribute("axes", list(ax[0])))
        self._op_ReduceMean(mean)
        self.consts[f"{node.output[0]}__count"] = np.array(float(count), np.float32)
        self._binary(node, "mul", f"{node.output[0]}__mean", f"{node.output[0]}__count")

    def _op_ReduceMax(self, node: Any) -> None:
        # over the spatial axes of NCHW (or L of NCL): a max pool with the whole map as its window
        self._check_attrs(node, {"axes": None, "keepdims": None, "noop_with_empty_axes": 0})
        v = self.val(node.input[0])
        rank = len(v.perm)
        ax = self._reduce_axes(node, rank)
        if ax is None or ax[0] not in ([2, 3], [2]) or rank != len(ax[0]) + 2:
            raise self.err("ReduceMax over the spatial axes of an NCHW/NCL tensor only (a global max pool)")
        keep = ax[1]
        x, one_d = self._nhwc_or_1d(node.input[0])
        n, h, w, c = self.g.t(x.ir).shape
        attrs = {"kernel": (h, w), "stride": (1, 1), "pads": (0, 0, 0, 0), "activation": "none"}
        out = node.output[0]
        y = self.emit("max_pool2d", [x.ir], (n, 1, 1, c), attrs, out if keep else f"{out}_keep")
        if keep:
            self._bind_spatial(out, y, one_d)
            return
        r = self.emit("reshape", [y], (n, c), {}, out)
        self.bind(out, r, (0, 1))

    def _repeat(self, v: _Val, reps: list[int], out: str) -> _Val:
        """`v` repeated reps[a] times along each ONNX axis a (np.tile): concats of copies."""
        cur = v
        for a, r in enumerate(reps):
            if r == 1:
                continue
            ir_axis = cur.perm.index(a)
            shape = list(self.g.t(cur.ir).shape)
            shape[ir_axis] *= r
            attrs = {"axis": ir_axis, "activation": "none"}
            y = self.emit("concat", [cur.ir] * r, tuple(shape), attrs, f"{out}_rep{a}")
            if cur.ir in self.act_q:
                self.act_q[y] = self.act_q[cur.ir]
            cur = _Val(y, cur.perm)
        return cur

    def _op_Tile(self, node: Any) -> None:
        v = self.val(node.input[0])
        reps = [int(r) for r in self.const(node.input[1], "repeats").reshape(-1)]
        if len(reps) != len(v.perm) or min(reps) < 1:
            raise self.err(f"repeats {reps} for a rank-{len(v.perm)} input")
        y = self._repeat(v, reps, node.output[0])
        self.vals[node.output[0]] = y
        self.onnx_names.setdefault(y.ir, [node.output[0], list(y.perm)])

    def _op_Expand(self, node: Any) -> None:
        v = self.val(node.input[0])
        want = [int(d) for d in self.const(node.input[1], "shape").reshape(-1)]
        if len(want) > len(v.perm):
            v = self._expand(v, len(want))
        src = self.shape(v)
        want = [1] * (len(src) - len(want)) + want
        try:
            out_shape = np.broadcast_shapes(src, tuple(want))
        except ValueError:
            raise self.err(f"shape {want} does not broadcast with {list(src)}") from None
        reps = [o // s for o, s in zip(out_shape, src, strict=True)]
        y = self._repeat(v, reps, node.output[0])
        self.vals[node.output[0]] = y
        self.onnx_names.setdefault(y.ir, [node.output[0], list(y.perm)])

    def _leaky(self, node: Any, slope: str, slope_arr: np.ndarray) -> None:
        # y = slope x + (1 - slope) relu(x): two constant muls, a relu and an add (int8 ops)
        x = node.input[0]
        out = node.output[0]
        self.consts[f"{out}__1ms"] = (1.0 - slope_arr).astype(np.float32)
        a = onnx.helper.make_node("Mul", [x, slope], [f"{out}__sx"], name=f"{node.name}_sx")
        self._binary(a, "mul", x, slope)
        r = onnx.helper.make_node("Relu", [x], [f"{out}__relu"], name=f"{node.name}_relu")
        self._op_Relu(r)
        b = onnx.helper.make_node("Mul", [f"{out}__relu", f"{out}__1ms"], [f"{out}__rx"], name=f"{node.name}_rx")
        self._binary(b, "mul", f"{out}__relu", f"{out}__1ms")
        self._binary(node, "add", f"{out}__sx", f"{out}__rx")

    def _op_LeakyRelu(self, node: Any) -> None:
        a = self._check_attrs(node, {"alpha": None})
        alpha = float(a.get("alpha", 0.01))
        self.consts[f"{node.output[0]}__alpha"] = np.array(alpha, np.float32)
        self._leaky(node, f"{node.output[0]}__alpha", np.array(alpha, np.float32))

    def _op_PRelu(self, node: Any) -> None:
        slope = self.const(node.input[1], "slope").astype(np.float32)
        self._leaky(node, node.input[1], slope)

    def _op_Resize(self, node: Any) -> None:
        # nearest-neighbour upsampling by integer factors: each element repeated s times, done as
        # concats of copies on 4-D views (exact); other modes are refused
        a = self._check_attrs(
            node,
            {"mode": None, "coordinate_transformation_mode": None, "nearest_mode": None, "cubic_coeff_a": None,
             "exclude_outside": 0, "extrapolation_value": None, "antialias": 0, "keep_aspect_ratio_policy": None},
        )  # fmt: skip
        dec = {k: (x.decode() if isinstance(x, bytes) else x) for k, x in a.items()}
        linear = dec.get("mode", "nearest") == "linear"
        if dec.get("mode", "nearest") not in ("nearest", "linear"):
            raise self.err(f"unsupported attribute mode={dec.get('mode')!r} (nearest, or linear x2)")
        v = self.val(node.input[0])
        src = self.shape(v)
        ins = list(node.input) + [""] * (4 - len(node.input))
        if ins[2] and ins[2] in self.consts and self.consts[ins[2]].size:
            scales = [float(x) for x in self.consts[ins[2]].reshape(-1)]
        elif ins[3]:
            sizes = [int(x) for x in self.const(ins[3], "sizes").reshape(-1)]
            scales = [o / i for o, i in zip(sizes, src, strict=True)]
        else:
            raise self.err("scales or sizes must be a constant")
        reps = [int(round(sc)) for sc in scales]
        if any(abs(sc - r) > 1e-6 or r < 1 for sc, r in zip(scales, reps, strict=True)) or reps[:2] != [1, 1]:
            raise self.err(f"scales {scales} (integer upsampling of the spatial axes only)")
        ctm = dec.get("coordinate_transformation_mode", "half_pixel")
        nm = dec.get("nearest_mode", "round_prefer_floor")
        if linear and (ctm not in ("half_pixel", "pytorch_half_pixel") or any(r not in (1, 2) for r in reps[2:])):
            raise self.err(f"linear resize with scales {scales} and {ctm!r} (x2 with half_pixel only)")
        for size, r in zip(src[2:], reps[2:], strict=True):
            if linear:
                break
            i = np.arange(size * r, dtype=np.float64)
            if ctm == "asymmetric":
                xo = i / r
            elif ctm in ("half_pixel", "pytorch_half_pixel"):
                xo = (i + 0.5) / r - 0.5
            else:
                raise self.err(f"unsupported attribute coordinate_transformation_mode={ctm!r}")
            if nm == "floor":
                idx = np.floor(xo)
            elif nm == "ceil":
                idx = np.ceil(xo)
            elif nm == "round_prefer_ceil":
                idx = np.floor(xo + 0.5)
            else:
                idx = np.ceil(xo - 0.5)
            if not np.array_equal(np.clip(idx, 0, size - 1), np.repeat(np.arange(size), r)):
                raise self.err(f"nearest_mode={nm!r} with {ctm!r} is not a plain repetition")
        x, one_d = self._nhwc_or_1d(node.input[0])
        cur = x.ir
        n, h, w, c = self.g.t(cur).shape
        rh, rw = (1, reps[2]) if one_d else (reps[2], reps[3])
        out = node.output[0]
        del n, h, w, c
        for r, tag in ((rw, "w"), (rh, "h")):
            if r == 1:
                continue
            b, hh, ww, cc = self.g.t(cur).shape
            outer, inner = (hh * ww, cc) if tag == "w" else (hh, ww * cc)
            view = self.emit("reshape", [cur], (b, outer, 1, inner), {}, f"{out}_{tag}v")
            attrs = {"axis": 2, "activation": "none"}
            cat = self.emit("concat", [view] * r, (b, outer, r, inner), attrs, f"{out}_{tag}")
            nh, nw = (hh, ww * r) if tag == "w" else (hh * r, ww)
            cur = self.emit("reshape", [cat], (b, nh, nw, cc), {}, f"{out}_{tag}r")
            for t in (view, cat, cur):
                if x.ir in self.act_q:
                    self.act_q[t] = self.act_q[x.ir]
        if linear:
            cur = self._bilinear_x2(cur, rh == 2, rw == 2, out, x.ir)
        self._bind_spatial(out, cur, one_d)

    def _bilinear_x2(self, up: str, along_h: bool, along_w: bool, out: str, src: str) -> str:
        """Linear x2 (half_pixel) from the nearest x2 map `up`: out[j] = (u[j-1] + 2 u[j] + u[j+1]) / 4
        with the edges replicated (2i: x[i-1]/4 + 3x[i]/4, 2i+1: 3x[i]/4 + x[i+1]/4, as ONNX clamps),
        i.e. edge rows/columns concatenated on, then a depthwise conv with kernel (1, 2, 1)/4 per axis."""
        cur = up
        for axis, on in ((1, along_h), (2, along_w)):
            if not on:
                continue
            shape = list(self.g.t(cur).shape)
            edge = shape.copy()
            edge[axis] = 1
            first = self.emit("slice", [cur], tuple(edge), {"begin": [0, 0, 0, 0], "size": edge}, f"{out}_e{axis}a")
            begin = [0, 0, 0, 0]
            begin[axis] = shape[axis] - 1
            last = self.emit("slice", [cur], tuple(edge), {"begin": begin, "size": edge}, f"{out}_e{axis}b")
            shape[axis] += 2
            cur = self.emit(
                "concat", [first, cur, last], tuple(shape), {"axis": axis, "activation": "none"}, f"{out}_rep{axis}"
            )
            for t in (first, last, cur):
                if src in self.act_q:
                    self.act_q[t] = self.act_q[src]
        k3 = np.array([0.25, 0.5, 0.25], np.float32)
        kh = k3 if along_h else np.ones(1, np.float32)
        kw = k3 if along_w else np.ones(1, np.float32)
        n, h, w, c = self.g.t(cur).shape
        wt = np.broadcast_to(np.outer(kh, kw)[None, :, :, None], (1, kh.size, kw.size, c)).astype(np.float32)
        wn = self.new_tensor(f"{out}_bw", wt.shape, "float32", np.ascontiguousarray(wt))
        bn = self.new_tensor(f"{out}_bb", (c,), "float32", np.zeros(c, np.float32))
        attrs = {"stride": (1, 1), "dilation": (1, 1), "pads": (0, 0, 0, 0), "activation": "none"}
        attrs["depth_multiplier"] = 1
        shape = (n, h - kh.size + 1, w - kw.size + 1, c)
        return self.emit("depthwise_conv2d", [cur, wn, bn], shape, attrs, f"{out}_bilinear")

    # elementwise ------------------------------------------------------------------------
    def _align(self, a: str, b: str) -> tuple[str, str, tuple[int, ...], tuple[int, ...]]:
        """IR operands of a broadcasting binary op; returns (ir_a, ir_b, out IR shape, out perm)."""
        if a in self.consts and b in self.consts:
            raise self.err("both operands constant (should have been folded)")
        va = self.vals.get(a) if a not in self.consts else None
        vb = self.vals.get(b) if b not in self.consts else None
        if va is None and a not in self.consts:
            self.val(a)
        if vb is None and b not in self.consts:
            self.val(b)
        if va is not None and vb is not None:
            ra, rb = len(va.perm), len(vb.perm)
            if ra < rb:
                va = self._expand(va, rb)
            elif rb < ra:
                vb = self._expand(vb, ra)
            if vb.perm != va.perm:
                vb = self.materialize(vb, va.perm)
            perm = va.perm
            ia, ib = va.ir, vb.ir
        else:
            act = va if va is not None else vb
            assert act is not None
            cname = b if va is not None else a
            arr = self.consts[cname].astype(np.float32)
            rank = len(act.perm)
            if arr.ndim > rank:
                raise self.err(f"constant {cname!r} has more dimensions than the activation")
            arr = arr.reshape((1,) * (rank - arr.ndim) + arr.shape)
            ci = self.const_ir(cname, arr, act.perm, f"{cname}_c")
            ia, ib = (act.ir, ci) if va is not None else (ci, act.ir)
            perm = act.perm
        try:
            shape = tuple(np.broadcast_shapes(self.g.t(ia).shape, self.g.t(ib).shape))
        except ValueError:
            raise self.err(f"shapes {self.g.t(ia).shape} and {self.g.t(ib).shape} do not broadcast") from None
        return ia, ib, shape, perm

    def _expand(self, v: _Val, rank: int) -> _Val:
        k = rank - len(v.perm)
        shape = (1,) * k + self.g.t(v.ir).shape
        out = self.emit("reshape", [v.ir], shape, {}, f"{v.ir}_e")
        if v.ir in self.act_q:
            self.act_q[out] = self.act_q[v.ir]
        return _Val(out, tuple(range(k)) + tuple(p + k for p in v.perm))

    def _binary(self, node: Any, kind: str, a: str, b: str) -> None:
        ia, ib, shape, perm = self._align(a, b)
        y = self.emit(kind, [ia, ib], shape, {"activation": "none"}, node.output[0])
        self.bind(node.output[0], y, perm)

    def _op_Add(self, node: Any) -> None:
        self._binary(node, "add", node.input[0], node.input[1])

    def _op_Mul(self, node: Any) -> None:
        a, b = node.input
        c = self.scalar(b) if a in self.vals else self.scalar(a) if b in self.vals else None
        sm = self.sole_consumer(node.output[0])
        if c is not None and c > 0 and sm is not None and sm.op_type == "Softmax" and not self.qdq:
            x = a if a in self.vals else b
            self.vals[node.output[0]] = self.vals[x]
            self.softmax_beta[node.output[0]] = c * self.softmax_beta.get(x, 1.0)
            return
        mm = self._scores_matmul(node.output[0]) if c is not None and c > 0 and not self.qdq else None
        if mm is not None:  # timm's `q = q * scale` before q @ k^T -> softmax: beta (exact in float)
            self.vals[node.output[0]] = self.vals[a if a in self.vals else b]
            self.softmax_beta[mm.output[0]] = c * self.softmax_beta.get(mm.output[0], 1.0)
            return
        self._binary(node, "mul", a, b)

    def _scores_matmul(self, name: str) -> Any | None:
        """The MatMul that `name` reaches through single-consumer views, when a Softmax is all
        that reads the MatMul's output (a scale there is a scale of the softmax input)."""
        op = self.sole_consumer(name)
        while op is not None and op.op_type in ("Transpose", "Reshape", "Squeeze", "Unsqueeze") and op.input[0] == name:
            name = op.output[0]
            op = self.sole_consumer(name)
        if op is None or op.op_type != "MatMul":
            return None
        sm = self.sole_consumer(op.output[0])
        if sm is not None and sm.op_type == "Add" and self._is_mask(sm):
            sm = self.sole_consumer(sm.output[0])
        return op if sm is not None and sm.op_type == "Softmax" else None

    def _is_mask(self, add: Any) -> bool:
        """`add` adds a constant attention mask (-inf or <= -1e3 entries) to its other operand."""
        m = next((self.consts[c] for c in add.input if c in self.consts), None)
        return (
            m is not None
            and np.issubdtype(m.dtype, np.floating)
            and (not np.all(np.isfinite(m)) or float(m.min()) <= -1e3)
        )

    def _op_Div(self, node: Any) -> None:
        a, b = node.input
        if b not in self.consts:
            raise self.err("division by a non-constant tensor is not supported")
        recip = (1.0 / self.consts[b].astype(np.float64)).astype(np.float32)
        name = f"{b}_recip"
        self.consts[name] = recip
        if b in self.const_q:
            raise self.err("QDQ pattern not supported: Div by a quantized constant")
        node_mul = onnx.helper.make_node("Mul", [a, name], list(node.output), name=node.name)
        self._op_Mul(node_mul)

    def _op_Sub(self, node: Any) -> None:
        a, b = node.input
        if b in self.consts:
            name = f"{b}_neg"
            self.consts[name] = -self.consts[b]
            self._binary(node, "add", a, name)
            return
        vb = self.val(b)
        m1 = self.new_tensor(f"{node.output[0]}_m1", (), "float32", np.float32(-1.0))
        neg = self.emit("mul", [vb.ir, m1], self.g.t(vb.ir).shape, {"activation": "none"}, f"{b}_neg")
        self.vals[f"{b}__neg"] = _Val(neg, vb.perm)
        self._binary(node, "add", a, f"{b}__neg")

    def _unary(self, node: Any, kind: str, attrs: dict[str, Any]) -> None:
        v = self.val(node.input[0])
        y = self.emit(kind, [v.ir], self.g.t(v.ir).shape, attrs, node.output[0])
        self.bind(node.output[0], y, v.perm)

    def _op_Relu(self, node: Any) -> None:
        self._unary(node, "relu", {"min": 0.0, "max": float("inf")})

    def _op_Clip(self, node: Any) -> None:
        a = self.attrs(node)
        lo = a.get("min", -np.inf)
        hi = a.get("max", np.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = self.scalar(node.input[1])
        if len(node.input) > 2 and node.input[2]:
            hi = self.scalar(node.input[2])
        if lo is None or hi is None:
            raise self.err("min/max must be scalar constants")
        if lo != 0.0:
            raise self.err(f"unsupported bounds min={lo}, max={hi} (Clip(0, 6) and Clip(0, inf) are supported)")
        self._unary(node, "relu", {"min": 0.0, "max": float(hi)})

    def _op_Sigmoid(self, node: Any) -> None:
        self._unary(node, "logistic", {})

    def _op_Tanh(self, node: Any) -> None:
        # tanh(x) = 2 sigmoid(2x) - 1: a constant mul, the int8 logistic, a mul and an add
        out = node.output[0]
        for name, val in (("two", 2.0), ("m1", -1.0)):
            self.consts[f"{out}__{name}"] = np.array(val, np.float32)
        self._binary(onnx.helper.make_node("Mul", [], [f"{out}__2x"], name=f"{node.name}_2x"), "mul",
                     node.input[0], f"{out}__two")  # fmt: skip
        self._unary(onnx.helper.make_node("Sigmoid", [f"{out}__2x"], [f"{out}__sig"], name=f"{node.name}_sig"),
                    "logistic", {})  # fmt: skip
        self._binary(onnx.helper.make_node("Mul", [], [f"{out}__2s"], name=f"{node.name}_2s"), "mul",
                     f"{out}__sig", f"{out}__two")  # fmt: skip
        self._binary(node, "add", f"{out}__2s", f"{out}__m1")

    def _op_HardSigmoid(self, node: Any) -> None:
        # clamp(alpha x + beta, 0, 1) = min(max(x + beta/alpha, 0), 1/alpha) * alpha: an add, a relu
        # (PyTorch's alpha 1/6, beta 1/2: relu6, TFLM's clamp) and a mul, all int8 ops
        a = self._check_attrs(node, {"alpha": None, "beta": None})
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        if alpha <= 0:
            raise self.err(f"unsupported attribute alpha={alpha} (alpha > 0)")
        v = self.val(node.input[0])
        shape = self.g.t(v.ir).shape
        out = node.output[0]
        hi = 6.0 if abs(1.0 / alpha - 6.0) < 1e-5 else 1.0 / alpha
        off = self.new_tensor(f"{out}_off", (), "float32", np.float32(beta / alpha))
        t = self.emit("add", [v.ir, off], shape, {"activation": "none"}, f"{out}_shift")
        r = self.emit("relu", [t], shape, {"min": 0.0, "max": hi}, f"{out}_clip")
        sc = self.new_tensor(f"{out}_alpha", (), "float32", np.float32(alpha))
        y = self.emit("mul", [r, sc], shape, {"activation": "none"}, out)
        self.bind(out, y, v.perm)

    def _op_HardSwish(self, node: Any) -> None:
        self._unary(node, "hard_swish", {})

    def _op_Gelu(self, node: Any) -> None:
        a = self._check_attrs(node, {"approximate": None})
        approx = a.get("approximate", b"none")
        approx = approx.decode() if isinstance(approx, bytes) else approx
        if approx not in ("none", "tanh"):
            raise self.err(f"unsupported attribute approximate={approx!r}")
        self._unary(node, "gelu", {"approximate": approx})

    def _op_Identity(self, node: Any) -> None:
        self.vals[node.output[0]] = self.val(node.input[0])

    def _op_Dropout(self, node: Any) -> None:
        if len(node.output) > 1 and node.output[1]:
            raise self.err("the mask output of Dropout is not supported")
        self._op_Identity(node)

    def _op_Softmax(self, node: Any) -> None:
        a = self._check_attrs(node, {"axis": None})
        v = self.val(node.input[0])
        rank = len(v.perm)
        axis = int(a.get("axis", -1 if self.opset >= 13 else 1)) % rank
        if axis != rank - 1 and not all(d == 1 for d in self.shape(v)[axis + 1 :]):
            raise self.err(f"unsupported attribute axis={a.get('axis')} (softmax over the last axis only)")
        if v.perm[-1] != axis:
            v = self.materialize(v, tuple(p for p in range(rank) if p != axis) + (axis,))
        beta = self.softmax_beta.get(node.input[0], 1.0)
        y = self.emit("softmax", [v.ir], self.g.t(v.ir).shape, {"beta": float(beta)}, node.output[0])
        self.bind(node.output[0], y, v.perm)

    def _op_LayerNormalization(self, node: Any) -> None:
        a = self._check_attrs(node, {"axis": None, "epsilon": None, "stash_type": None})
        if any(o for o in node.output[1:]):
            raise self.err("the Mean/InvStdDev outputs of LayerNormalization are not supported")
        v = self.val(node.input[0])
        rank = len(v.perm)
        if int(a.get("axis", -1)) % rank != rank - 1:
            raise self.err(f"unsupported attribute axis={a.get('axis')} (normalization over the last axis only)")
        dim = self.shape(v)[-1]
        gamma = self.const(node.input[1], "scale").astype(np.float32).reshape(-1)
        beta = (
            self.const(node.input[2], "bias").astype(np.float32).reshape(-1)
            if len(node.input) > 2 and node.input[2]
            else np.zeros(dim, np.float32)
        )
        self._emit_layer_norm(
            node.input[0],
            np.broadcast_to(gamma, (dim,)),
            np.broadcast_to(beta, (dim,)),
            float(a.get("epsilon", 1e-5)),
            node.output[0],
        )

    # matrix products ----------------------------------------------------------------------
    def _fc(
        self,
        node: Any,
        x: _Val,
        w_onnx: str,
        w: np.ndarray,
        w_perm: tuple[int, ...] | None,
        bias_name: str,
        bias: np.ndarray | None,
        out: str,
    ) -> None:
        cols = None
        flat = self.flat_src.get(node.input[0])
        if flat is not None and len(x.perm) == 2:
            # Flatten of a permuted (NHWC) tensor into a dense layer: flatten in IR order, and gather
            # the weight columns into that order instead of transposing the activations
            shp = self.shape(flat)
            order = np.arange(int(np.prod(shp[1:]))).reshape(shp[1:])
            cols = np.transpose(order, [p - 1 for p in flat.perm[1:]]).reshape(-1)
            xs = self.g.t(flat.ir).shape
            x = _Val(self.emit("reshape", [flat.ir], (xs[0], int(np.prod(xs[1:]))), {}, f"{flat.ir}_flat"), (0, 1))
            if flat.ir in self.act_q:
                self.act_q[x.ir] = self.act_q[flat.ir]
        rank = len(x.perm)
        if x.perm[-1] != rank - 1 or cols is not None:  # the rows may stay in any order, not the features
            x = self.materialize(x, _ident(rank))
        src = self.g.t(x.ir).shape
        wi = self.const_ir(w_onnx, w, w_perm, f"{out}_w", cols)
        n_out, k = self.g.t(wi).shape
        if src[-1] != k:
            raise self.err(f"inner dimensions differ: input {src}, weights [{k}, {n_out}]")
        b = np.zeros(n_out, np.float32) if bias is None else bias
        bi = self.const_ir(bias_name, b, None, f"{out}_b")
        y = self.emit("fully_connected", [x.ir, wi, bi], src[:-1] + (n_out,), {"activation": "none"}, out)
        self.bind(out, y, x.perm)

    def _bias_add(self, mm_out: str, n_out: int) -> tuple[str, np.ndarray, str] | None:
        """An Add of a constant [N] right after a MatMul (folded into the FC's bias)."""
        add = self.sole_consumer(mm_out)
        if add is None or add.op_type != "Add" or self.qdq:
            return None
        bname = self._other(add, mm_out)
        if bname not in self.consts:
            return None
        b = self.consts[bname]
        if b.size != n_out or b.shape[-1] != n_out:
            return None
        return bname, b.reshape(-1).astype(np.float32), add.output[0]

    def _op_MatMul(self, node: Any) -> None:
        a, b = node.input
        if a in self.consts:
            raise self.err("a constant left operand is not supported")
        va = self.val(a)
        if b in self.consts:
            w = self.consts[b]
            if w.ndim != 2:
                raise self.err(f"constant right operand of rank {w.ndim} (weights must be 2-D [in, out])")
            fused = self._bias_add(node.output[0], w.shape[1])
            out = node.output[0]
            bias_name, bias = "", None
            if fused is not None:
                bias_name, bias, out = fused
                self._mark(self.sole_consumer(node.output[0]))
            self._fc(node, va, b, w, (1, 0), bias_name, bias, out)
            return
        vb = self.val(b)
        ra, rb = len(va.perm), len(vb.perm)
        if ra != rb or ra < 3:
            raise self.err(f"MatMul of activations needs equal ranks >= 3, got {ra} and {rb}")
        sa, sb = self.shape(va), self.shape(vb)
        if sa[:-2] != sb[:-2] or sa[-1] != sb[-2]:
            raise self.err(f"MatMul shapes {list(sa)} x {list(sb)} (batch dims must match, no broadcasting)")
        va = self.materialize(va, _ident(ra))
        swapped = _ident(rb)[:-2] + (rb - 1, rb - 2)
        if vb.perm == _ident(rb):
            tb = False
        else:
            vb = self.materialize(vb, swapped)
            tb = True
        shape = sa[:-1] + (sb[-1],)
        y = self.emit("batch_matmul", [va.ir, vb.ir], shape, {"transpose_b": tb}, node.output[0])
        self.bind(node.output[0], y, _ident(ra))
        if node.output[0] in self.softmax_beta:  # ONNX's scores carry the scale the IR moved into softmax
            self.g.meta.setdefault("onnx_scale", {})[y] = float(self.softmax_beta[node.output[0]])

    def _op_Gemm(self, node: Any) -> None:
        a = self._check_attrs(node, {"alpha": None, "beta": None, "transA": 0, "transB": None})
        if node.input[1] not in self.consts:
            raise self.err("B must be a constant (weights)")
        va = self.val(node.input[0])
        if len(va.perm) != 2:
            raise self.err(f"A must be 2-D, got rank {len(va.perm)}")
        w = self.consts[node.input[1]].astype(np.float32)
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        trans_b = int(a.get("transB", 0))
        if alpha != 1.0:
            if node.input[1] in self.const_q:
                raise self.err("QDQ pattern not supported: alpha != 1 with quantized weights")
            w = w * alpha
        bias = None
        bname = node.input[2] if len(node.input) > 2 and node.input[2] else ""
        if bname:
            bias = self.const(bname, "C").astype(np.float32) * beta
            n_out = w.shape[0] if trans_b else w.shape[1]
            if bias.size not in (1, n_out) or (bias.ndim == 2 and bias.shape[0] != 1):
                raise self.err(f"C of shape {list(bias.shape)} (a bias [N] is supported)")
            bias = np.broadcast_to(bias.reshape(-1), (n_out,)).astype(np.float32)
            if beta != 1.0 and bname in self.const_q:
                raise self.err("QDQ pattern not supported: beta != 1 with a quantized bias")
        self._fc(node, va, node.input[1], w, None if trans_b else (1, 0), bname, bias, node.output[0])

    # shapes ------------------------------------------------------------------------------
    def _reshape_to(self, node: Any, v: _Val, target: tuple[int, ...]) -> None:
        src = self.shape(v)
        if int(np.prod(src)) != int(np.prod(target)):
            raise self.err(f"cannot reshape {list(src)} to {list(target)}")
        out = node.output[0]
        res = self._view_reshape(v, target)
        if res is None:
            if len(target) == 2 and v.perm[0] == 0 and target[0] == src[0]:
                self.flat_src[out] = v
            v = self.materialize(v, _ident(len(v.perm)))
            shape, perm = target, _ident(len(target))
        else:
            shape, perm = res
        if shape == self.g.t(v.ir).shape:
            self.vals[out] = _Val(v.ir, perm)
            return
        y = self.emit("reshape", [v.ir], shape, {}, out)
        self.bind(out, y, perm)

    def _view_reshape(self, v: _Val, target: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """IR (shape, perm) of reshaping `v` to ONNX `target` without moving data, or None."""
        src = self.shape(v)
        ir_order = [p for p in v.perm if src[p] != 1]  # non-1 ONNX axes in memory order
        if ir_order == sorted(ir_order):
            return target, _ident(len(target))
        s_axes = [i for i, d in enumerate(src) if d != 1]
        t_axes = [i for i, d in enumerate(target) if d != 1]
        groups: list[tuple[list[int], list[int]]] = []
        i = j = 0
        while i < len(s_axes) and j < len(t_axes):
            gs, gt = [s_axes[i]], [t_axes[j]]
            ps, pt = src[s_axes[i]], target[t_axes[j]]
            i, j = i + 1, j + 1
            while ps != pt:
                if ps < pt:
                    if i >= len(s_axes):
                        return None
                    gs.append(s_axes[i])
                    ps *= src[s_axes[i]]
                    i += 1
                else:
                    if j >= len(t_axes):
                        return None
                    gt.append(t_axes[j])
                    pt *= target[t_axes[j]]
                    j += 1
            groups.append((gs, gt))
        if i != len(s_axes) or j != len(t_axes):
            return None
        pos = {a: k for k, a in enumerate(ir_order)}
        for gs, _ in groups:
            where = [pos[a] for a in gs]
            if where != list(range(where[0], where[0] + len(where))):
                return None
        groups.sort(key=lambda g: pos[g[0][0]])
        ones = [i for i, d in enumerate(target) if d == 1]
        perm = tuple(ones) + tuple(a for _, gt in groups for a in gt)
        return tuple(target[p] for p in perm), perm

    def _op_Reshape(self, node: Any) -> None:
        a = self._check_attrs(node, {"allowzero": 0})
        del a
        v = self.val(node.input[0])
        if node.input[1] not in self.consts:
            raise self.err("dynamic shape: the shape input is not a constant")
        want = [int(d) for d in self.consts[node.input[1]].reshape(-1)]
        src = self.shape(v)
        if self.batch_n and want and want[0] == self.batch_n and src[0] == 1:
            want[0] = 1  # a batch-N export's reshape names N as the leading dimension
        want = [src[i] if d == 0 else d for i, d in enumerate(want)]
        if want.count(-1) == 1:
            rest = int(np.prod([d for d in want if d != -1]))
            want[want.index(-1)] = int(np.prod(src)) // max(rest, 1)
        self._reshape_to(node, v, tuple(want))

    def _op_Flatten(self, node: Any) -> None:
        a = self._check_attrs(node, {"axis": None})
        v = self.val(node.input[0])
        src = self.shape(v)
        axis = int(a.get("axis", 1)) % (len(src) + 1)
        self._reshape_to(node, v, (int(np.prod(src[:axis])), int(np.prod(src[axis:]))))

    def _axes_input(self, node: Any) -> list[int]:
        a = self.attrs(node)
        if "axes" in a:
            return [int(x) for x in a["axes"]]
        if len(node.input) > 1 and node.input[1]:
            return [int(x) for x in self.const(node.input[1], "axes").reshape(-1)]
        return []

    def _op_Squeeze(self, node: Any) -> None:
        v = self.val(node.input[0])
        src = self.shape(v)
        axes = [x % len(src) for x in self._axes_input(node)] or [i for i, d in enumerate(src) if d == 1]
        if any(src[x] != 1 for x in axes):
            raise self.err(f"squeezes axes {axes} of shape {list(src)} that are not 1")
        self._reshape_to(node, v, tuple(d for i, d in enumerate(src) if i not in axes))

    def _op_Unsqueeze(self, node: Any) -> None:
        v = self.val(node.input[0])
        src = list(self.shape(v))
        rank = len(src) + len(self._axes_input(node))
        for x in sorted(x % rank for x in self._axes_input(node)):
            src.insert(x, 1)
        self._reshape_to(node, v, tuple(src))

    def _op_Transpose(self, node: Any) -> None:
        v = self.val(node.input[0])
        rank = len(v.perm)
        q = [int(x) for x in self.attrs(node).get("perm", list(range(rank))[::-1])]
        self.vals[node.output[0]] = _Val(v.ir, tuple(q.index(p) for p in v.perm))

    def _op_Concat(self, node: Any) -> None:
        a = self._check_attrs(node, {"axis": None})
        acts = [self.val(x) for x in node.input if x not in self.consts]
        ref = acts[0]
        rank = len(ref.perm)
        axis = int(a["axis"]) % rank
        ins = []
        for x in node.input:
            if x in self.consts:
                arr = self.consts[x].astype(np.float32)
                ins.append(self.const_ir(x, arr, ref.perm, f"{x}_c"))
            else:
                ins.append(self.materialize(self.val(x), ref.perm).ir)
        ir_axis = ref.perm.index(axis)
        shapes = [self.g.t(n).shape for n in ins]
        for s in shapes:
            if len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != ir_axis):
                raise self.err(f"input shapes {shapes} differ outside the concat axis")
        shape = list(shapes[0])
        shape[ir_axis] = sum(s[ir_axis] for s in shapes)
        y = self.emit("concat", ins, tuple(shape), {"axis": ir_axis, "activation": "none"}, node.output[0])
        self.bind(node.output[0], y, ref.perm)

    def _slice(self, node: Any, v: _Val, starts: dict[int, int], ends: dict[int, int], out: str) -> _Val:
        src = self.shape(v)
        ir_src = self.g.t(v.ir).shape
        begin, size = [0] * len(ir_src), list(ir_src)
        for ax, s in starts.items():
            e = ends[ax]
            i = v.perm.index(ax)
            begin[i], size[i] = s, e - s
            if size[i] <= 0 or e > src[ax]:
                raise self.err(f"empty or out-of-range slice [{s}:{e}] of axis {ax}")
        if begin == [0] * len(begin) and size == list(ir_src):
            return v
        y = self.emit("slice", [v.ir], tuple(size), {"begin": begin, "size": size}, out)
        if v.ir in self.act_q:
            self.act_q[y] = self.act_q[v.ir]
        self.onnx_names.setdefault(y, [out, list(v.perm)])
        return _Val(y, v.perm)

    def _op_Slice(self, node: Any) -> None:
        v = self.val(node.input[0])
        src = self.shape(v)
        ins = list(node.input) + [""] * (5 - len(node.input))
        starts = self.const(ins[1], "starts").reshape(-1).tolist()
        ends = self.const(ins[2], "ends").reshape(-1).tolist()
        axes = self.const(ins[3], "axes").reshape(-1).tolist() if ins[3] else list(range(len(starts)))
        steps = self.const(ins[4], "steps").reshape(-1).tolist() if ins[4] else [1] * len(starts)
        if any(s != 1 for s in steps):
            raise self.err(f"unsupported steps {steps} (only 1)")
        st, en = {}, {}
        for s, e, ax in zip(starts, ends, axes, strict=True):
            ax = int(ax) % len(src)
            d = src[ax]
            s = int(s) + d if s < 0 else int(s)
            e = int(e) + d if e < 0 else int(e)
            st[ax], en[ax] = max(0, min(s, d)), max(0, min(e, d))
        self.vals[node.output[0]] = self._slice(node, v, st, en, node.output[0])

    def _op_Split(self, node: Any) -> None:
        """Split (e.g. the q/k/v of a fused qkv Linear after `unbind`): one slice per output."""
        a = self.attrs(node)
        v = self.val(node.input[0])
        src = self.shape(v)
        axis = int(a.get("axis", 0)) % len(src)
        if len(node.input) > 1 and node.input[1]:
            sizes = [int(x) for x in self.const(node.input[1], "split").reshape(-1)]
        elif "split" in a:
            sizes = [int(x) for x in a["split"]]
        else:
            n = int(a.get("num_outputs", len(node.output)))
            step = -(-src[axis] // n)
            sizes = [min(step, src[axis] - k * step) for k in range(n)]
        if len(sizes) != len(node.output) or sum(sizes) != src[axis] or min(sizes) <= 0:
            raise self.err(f"split sizes {sizes} do not cover axis {axis} of shape {list(src)}")
        off = 0
        for out, size in zip(node.output, sizes, strict=True):
            if out:
                self.vals[out] = self._slice(node, v, {axis: off}, {axis: off + size}, out)
            off += size

    def _op_Gather(self, node: Any) -> None:
        a = self._check_attrs(node, {"axis": None})
        v = self.val(node.input[0])
        idx = self.const(node.input[1], "indices")
        if idx.size != 1:
            raise self.err("only a single constant index is supported (indices of size != 1)")
        src = self.shape(v)
        axis = int(a.get("axis", 0)) % len(src)
        i = int(idx.reshape(-1)[0]) % src[axis]
        sl = self._slice(node, v, {axis: i}, {axis: i + 1}, f"{node.output[0]}_slice")
        target = src[:axis] + ((1,) if idx.ndim else ()) + src[axis + 1 :]
        if idx.ndim:
            target = src[:axis] + (1,) * idx.ndim + src[axis + 1 :]
        self.vals[f"{node.output[0]}__sl"] = sl
        self._reshape_to(node, sl, tuple(target))

    def _op_Pad(self, node: Any) -> None:
        a = self._check_attrs(node, {"mode": (b"constant", "constant")})
        del a
        v = self.val(node.input[0])
        pads = self.const(node.input[1], "pads").reshape(-1).tolist()
        if len(node.input) > 2 and node.input[2] and self.scalar(node.input[2]) != 0.0:
            raise self.err("only zero padding is supported")
        if len(node.input) > 3 and node.input[3]:
            raise self.err("the axes input of Pad is not supported")
        rank = len(v.perm)
        pp = [(int(pads[i]), int(pads[i + rank])) for i in range(rank)]
        if any(p < 0 for q in pp for p in q) or pp[0] != (0, 0):
            raise self.err(f"unsupported pads {pads} (non-negative, no batch padding)")
        ir_pp = tuple(pp[p] for p in v.perm)
        shape = tuple(d + x + y for d, (x, y) in zip(self.g.t(v.ir).shape, ir_pp, strict=True))
        y = self.emit("pad", [v.ir], shape, {"paddings": ir_pp}, node.output[0])
        self.bind(node.output[0], y, v.perm)

    # -- clean-up -------------------------------------------------------------------------
    def _dce(self) -> None:
        live = set(self.g.outputs)
        keep: list[Op] = []
        for op in reversed(self.g.ops):
            if any(o in live for o in op.outputs):
                keep.append(op)
                live.update(i for i in op.inputs if i)
        self.g.ops = keep[::-1]
        used = live | set(self.g.inputs)
        for name in list(self.g.tensors):
            if name not in used:
                del self.g.tensors[name]

    def _simplify_views(self) -> None:
        """A reshape of a reshape reads the first one's input; a reshape to its input's own shape
        goes away (the chains PyTorch's Unsqueeze/Squeeze/Gather exports leave), so the patterns
        after import (split_qkv, the token planner's attention and residual) see one view at most.
        Float graphs only: in QDQ graphs each view may carry its own quantization."""
        prod = {op.outputs[0]: op for op in self.g.ops}
        outs = set(self.g.outputs)
        for op in self.g.ops:
            if op.kind != "reshape":
                continue
            p = prod.get(op.inputs[0])
            while p is not None and p.kind == "reshape" and len(self.g.consumers(p.outputs[0])) == 1:
                if p.outputs[0] in outs:
                    break
                op.inputs[0] = p.inputs[0]
                p = prod.get(op.inputs[0])
        for op in list(self.g.ops):
            x, y = op.inputs[0] if op.inputs else "", op.outputs[0]
            if op.kind != "reshape" or y in outs or self.g.t(x).shape != self.g.t(y).shape:
                continue
            for c in self.g.ops:
                c.inputs = [x if n == y else n for n in c.inputs]
            self.g.ops.remove(op)
            if y in self.onnx_names and x not in self.onnx_names:
                self.onnx_names[x] = self.onnx_names[y]

    def _lead_batch(self) -> None:
        """Give every activation a leading batch axis of size 1 (the IR's axis 0 is the batch: the
        float executor runs N samples along it). With batch 1 imported, ONNX tensors such as the
        [T, 1, 3D] projections of `nn.MultiheadAttention` may start with another axis; those get an
        extra leading 1 and the attributes that name axes shift by one."""
        lifted = {n for n, t in self.g.tensors.items() if not t.is_const and t.shape and t.shape[0] != 1}
        if not lifted:
            return
        for n in lifted:
            t = self.g.t(n)
            t.shape = (1,) + t.shape
            if n in self.onnx_names:
                self.onnx_names[n] = [self.onnx_names[n][0], [-1] + list(self.onnx_names[n][1])]
        for op in list(self.g.ops):
            acts = [n for n in op.inputs if n and not self.g.t(n).is_const]
            if not any(n in lifted for n in [*acts, *op.outputs]):
                continue
            if op.kind in _BATCH_FREE:
                continue
            if op.kind not in ("transpose", "slice", "pad", "concat", "mean"):
                raise ModelError(
                    f"{self.source}: node {op.name} ({op.kind}) on a tensor whose first axis is not the batch"
                )
            # an op that names axes: run it on the lifted forms of all its tensors (views)
            at = self.g.ops.index(op)
            for k, n in enumerate(op.inputs):
                if n in acts and n not in lifted:
                    up = self.new_tensor(f"{n}_b", (1,) + self.g.t(n).shape)
                    self.g.ops.insert(at, Op("reshape", up, [n], [up], {}))
                    at += 1
                    op.inputs[k] = up
                    if n in self.act_q:
                        self.act_q[up] = self.act_q[n]
            y = op.outputs[0]
            if y not in lifted:
                up = self.new_tensor(f"{y}_b", (1,) + self.g.t(y).shape)
                op.outputs[0] = up
                self.g.ops.insert(at + 1, Op("reshape", y, [up], [y], {}))
                if y in self.act_q:
                    self.act_q[up] = self.act_q[y]
            a = op.attrs
            if op.kind == "transpose":
                a["perm"] = [0] + [p + 1 for p in a["perm"]]
            elif op.kind == "slice":
                a["begin"], a["size"] = [0] + list(a["begin"]), [1] + list(a["size"])
            elif op.kind == "pad":
                a["paddings"] = ((0, 0),) + tuple(tuple(p) for p in a["paddings"])
            elif op.kind == "concat":
                a["axis"] = int(a["axis"]) + 1
            else:
                a["axes"] = tuple(int(ax) + 1 for ax in a["axes"])

    def _fuse_activations(self) -> None:
        fusable = ("conv2d", "depthwise_conv2d", "fully_connected", "add", "mul", "avg_pool2d", "max_pool2d")
        for r in list(self.g.ops):
            if r.kind != "relu" or r.attrs["min"] != 0.0 or r.attrs["max"] not in (6.0, float("inf")):
                continue
            x = r.inputs[0]
            p = self.g.producer(x)
            if p is None or p.kind not in fusable or p.attrs.get("activation", "none") != "none":
                continue
            if len(self.g.consumers(x)) != 1 or x in self.g.outputs or x in self.act_q:
                continue
            if p.kind in ("avg_pool2d", "max_pool2d") and r.attrs["max"] != 6.0:
                continue
            p.attrs["activation"] = "relu6" if r.attrs["max"] == 6.0 else "relu"
            p.outputs = list(r.outputs)
            self.g.ops.remove(r)
            if x in self.onnx_names and r.outputs[0] not in self.onnx_names:
                self.onnx_names.pop(x)
