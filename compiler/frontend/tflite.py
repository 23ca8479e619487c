"""Import int8 (and int16x8, uint8-edged) TFLite flatbuffers into the microtile IR.

Supported builtin ops and their dtype/quantization schemes are declared in
`compiler/core/ops_support.py`; every operator is checked against them here, and anything else is
refused with a `ModelError` naming the op, its node, the tensor and what is supported.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator as BO
from tflite.TensorType import TensorType

from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.core.lower import lower
from compiler.core.ops_support import SUPPORT, check_op
from compiler.errors import ModelError, UnsupportedOpError

_TYPES = {
    TensorType.INT8: "int8",
    TensorType.UINT8: "uint8",
    TensorType.INT16: "int16",
    TensorType.INT32: "int32",
    TensorType.INT64: "int64",
    TensorType.FLOAT32: "float32",
}

_ACT = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
_BO_ACT = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}

_BO_NAMES = {v: k for k, v in vars(BO).items() if not k.startswith("_")}

SUPPORTED = tuple(k for k, d in SUPPORT.items() if not d.refused)  # the declared ops (compiler/core/ops_support.py)


def load_tflite(path: str | Path) -> Graph:
    """Read a .tflite file and return its IR graph (raises ModelError on bad input)."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise ModelError(f"{path}: cannot read model file ({e.strerror})") from None
    return parse_tflite(buf, name=path.stem, source=str(path))


def parse_tflite(buf: bytes, name: str = "model", source: str = "<bytes>") -> Graph:
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError(f"{source}: not a TFLite flatbuffer (missing 'TFL3' file identifier)")
    try:
        return _Importer(buf, name, source).run()
    except (ModelError, UnsupportedOpError):
        raise
    except (struct.error, IndexError):  # an offset inside the flatbuffer points past its end
        raise ModelError(
            f"{source}: truncated or corrupt TFLite file: its tables point past the end of its {len(buf):,} bytes"
        ) from None
    except Exception as e:  # flatbuffers raises assorted errors on truncated/corrupt data
        raise ModelError(
            f"{source}: malformed or truncated TFLite file ({type(e).__name__}: {e})"
        ) from None


class _Importer:
    def __init__(self, buf: bytes, name: str, source: str) -> None:
        self.buf = bytearray(buf)
        self.source = source
        self.model = tflite.Model.GetRootAsModel(self.buf, 0)
        if self.model.SubgraphsLength() < 1:
            raise ModelError(f"{source}: the model has no subgraph")
        self.sg = self.model.Subgraphs(0)
        self.graph = Graph(name=_c_ident(name))
        self.names: dict[int, str] = {}
        self.graph_inputs = {int(i) for i in self.sg.InputsAsNumpy()} if self.sg.InputsLength() else set()
        self.graph_outputs = {int(i) for i in self.sg.OutputsAsNumpy()} if self.sg.OutputsLength() else set()

    # -- tensors --------------------------------------------------------------------------
    def tensor(self, idx: int) -> str:
        if idx < 0:
            return ""
        if idx in self.names:
            return self.names[idx]
        t = self.sg.Tensors(idx)
        if t is None:
            raise ModelError(f"{self.source}: tensor index {idx} out of range")
        ttype = t.Type()
        if ttype not in _TYPES:
            raise ModelError(f"{self.source}: tensor {idx} has unsupported type {ttype}")
        dtype = _TYPES[ttype]
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if t.ShapeSignatureLength() and any(int(d) < 0 for d in t.ShapeSignatureAsNumpy()):
            sig = [int(d) for d in t.ShapeSignatureAsNumpy()]
            if any(d < 0 for d in sig[1:]):
                raise ModelError(f"{self.source}: tensor {idx} has a dynamic shape {sig}")
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            quant = QParams(
                scale=q.ScaleAsNumpy().astype(np.float32),
                zero_point=q.ZeroPointAsNumpy().astype(np.int64),
                axis=int(q.QuantizedDimension()),
            )
        data = None
        b = self.model.Buffers(t.Buffer())
        if b is not None and b.DataLength() > 0:
            raw = b.DataAsNumpy().tobytes()
            np_dtype = np.dtype(dtype)
            expected = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
            if len(raw) != expected:
                raise ModelError(
                    f"{self.source}: constant tensor {idx} has {len(raw)} bytes, its shape needs {expected}"
                )
            data = np.frombuffer(raw, dtype=np_dtype).reshape(shape).copy()
        raw_name = t.Name().decode("utf-8", "replace") if t.Name() else f"t{idx}"
        del raw_name
        name = self.graph.unique_name(f"t{idx}")
        self.graph.add_tensor(Tensor(name, shape, dtype, quant, data))
        self.names[idx] = name
        return name

    def split(self, kind: str, node: str, ins: list[str], outs: list[str], op: Any) -> None:
        """SPLIT / SPLIT_V / UNPACK as one `slice` per output (UNPACK's outputs drop the axis)."""
        g = self.graph
        opts = op.BuiltinOptions()

        def options(cls: Any) -> Any:
            if opts is None:
                return None
            o = cls()
            o.Init(opts.Bytes, opts.Pos)
            return o

        x_name = ins[1] if kind == "SPLIT" else ins[0]
        x = g.t(x_name)
        rank = len(x.shape)
        if kind == "SPLIT":
            axis = int(g.t(ins[0]).data.reshape(-1)[0]) % rank
            sizes = [x.shape[axis] // len(outs)] * len(outs)
        elif kind == "SPLIT_V":
            axis = int(g.t(ins[2]).data.reshape(-1)[0]) % rank
            sizes = [int(v) for v in g.t(ins[1]).data.reshape(-1)]
            if sizes.count(-1) == 1:
                sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
        else:
            o = options(tflite.UnpackOptions)
            axis = (int(o.Axis()) if o else 0) % rank
            sizes = [1] * x.shape[axis]
        if len(sizes) != len(outs) or sum(sizes) != x.shape[axis] or min(sizes) < 1:
            raise ModelError(
                f"{self.source}: node {node} ({kind}): sizes {sizes} do not split axis {axis} of {x.shape}"
            )
        start = 0
        for k, (n, size) in enumerate(zip(outs, sizes, strict=True)):
            begin = [0] * rank
            full = list(x.shape)
            begin[axis], full[axis] = start, size
            if int(np.prod(full)) != g.t(n).size:
                raise ModelError(f"{self.source}: node {node} ({kind}): output {k} has shape {g.t(n).shape}")
            g.add_op(Op("slice", f"{node}_{k}", [x_name], [n], {"begin": tuple(begin), "size": tuple(full)}))
            start += size

    def strided_slice(self, node: str, ins: list[str], outs: list[str], o: Any) -> Op:
        """STRIDED_SLICE as `slice` (unit strides) or `strided_slice` (any non-zero strides)."""
        g = self.graph
        x = g.t(ins[0])
        begin, end, strides = ([int(v) for v in g.t(n).data.reshape(-1)] for n in ins[1:4])
        a, why = _strided_slice_attrs(x.shape, begin, end, strides, o)
        if not why and int(np.prod(a["size"])) != g.t(outs[0]).size:
            why = f"it selects {list(a['size'])} elements, output {outs[0]!r} has shape {list(g.t(outs[0]).shape)}"
        if why:
            raise ModelError(
                f"{self.source}: node {node} (STRIDED_SLICE) tensor {ins[0]!r}: {why} "
                f"(begin {begin}, end {end}, strides {strides})"
            )
        if all(s == 1 for s in a["steps"]):
            return Op("slice", node, ins[:1], outs, {"begin": a["begin"], "size": a["size"]})
        return Op("strided_slice", node, ins[:1], outs, a)

    def lowered(self, where: str, tensor: str) -> dict[str, Any]:
        """The last op's integer parameters; its ModelError (a form lower refuses) as one line
        naming the op, node and tensor."""
        try:
            return lower(self.graph, self.graph.ops[-1])
        except ModelError as e:
            raise ModelError(f"{where} tensor {tensor!r}: {e}") from None

    def layout_op(self, kind: str, node: str, ins: list[str], outs: list[str], options: Any) -> None:
        """DEPTH_TO_SPACE, SPACE_TO_DEPTH, SUM, REDUCE_MAX, ARG_MAX/MIN, RESIZE_BILINEAR and
        BATCH_MATMUL (adj_x as a TRANSPOSE of the last two axes before it)."""
        g = self.graph
        x = g.t(ins[0])
        rank = len(x.shape)
        where = f"{self.source}: node {node} ({kind})"
        if kind in ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH"):
            o = options(tflite.DepthToSpaceOptions if kind == "DEPTH_TO_SPACE" else tflite.SpaceToDepthOptions)
            bs = int(o.BlockSize()) if o else 0
            ok = rank == 4 and bs >= 1
            if ok and kind == "DEPTH_TO_SPACE":
                ok = x.shape[3] % (bs * bs) == 0
                want = (x.shape[0], x.shape[1] * bs, x.shape[2] * bs, x.shape[3] // (bs * bs)) if ok else ()
            elif ok:
                ok = x.shape[1] % bs == 0 and x.shape[2] % bs == 0
                want = (x.shape[0], x.shape[1] // bs, x.shape[2] // bs, x.shape[3] * bs * bs) if ok else ()
            if not ok or g.t(outs[0]).shape != want:
                raise ModelError(f"{where}: block size {bs} does not take input {ins[0]!r} {list(x.shape)} "
                                 f"to output {list(g.t(outs[0]).shape)}")
            g.add_op(Op(kind.lower(), node, ins[:1], outs, {"block_size": bs}))
        elif kind in ("SUM", "REDUCE_MAX"):
            o = options(tflite.ReducerOptions)
            raw = [int(v) for v in g.t(ins[1]).data.reshape(-1)]
            if any(not -rank <= v < rank for v in raw):  # TFLM's ResolveAxis fails on these
                raise ModelError(f"{where}: axes {raw} outside the rank {rank} of input {ins[0]!r}")
            axes = tuple(sorted({v % rank for v in raw}))
            keep = bool(o.KeepDims()) if o else False
            want = tuple(1 if d in axes else n for d, n in enumerate(x.shape)) if keep else tuple(
                n for d, n in enumerate(x.shape) if d not in axes)
            if int(np.prod(want)) != g.t(outs[0]).size:
                raise ModelError(f"{where}: axes {list(axes)} of input {ins[0]!r} {list(x.shape)} do not give "
                                 f"output {list(g.t(outs[0]).shape)}")
            g.add_op(Op("reduce_sum" if kind == "SUM" else "reduce_max", node, ins[:1], outs,
                        {"axes": axes, "keep_dims": keep}))
            self.lowered(where, ins[0])
        elif kind in ("ARG_MAX", "ARG_MIN"):
            axis = int(g.t(ins[1]).data.reshape(-1)[0])
            axis = axis + rank if axis < 0 else axis
            want = x.shape[:axis] + x.shape[axis + 1 :] if 0 <= axis < rank else None
            if want is None or g.t(outs[0]).shape != want:
                raise ModelError(f"{where}: axis {axis} of input {ins[0]!r} {list(x.shape)} does not give output "
                                 f"{list(g.t(outs[0]).shape)}")
            g.add_op(Op(kind.lower(), node, ins[:1], outs, {"axis": axis}))
        elif kind == "RESIZE_BILINEAR":
            o = options(tflite.ResizeBilinearOptions)
            a = {"align_corners": bool(o.AlignCorners()) if o else False,
                 "half_pixel_centers": bool(o.HalfPixelCenters()) if o else False}
            size = [int(v) for v in g.t(ins[1]).data.reshape(-1)]
            y = g.t(outs[0]).shape
            if rank != 4 or a["align_corners"] and a["half_pixel_centers"] or len(size) != 2 or (
                    y != (x.shape[0], *size, x.shape[3])):
                raise ModelError(f"{where}: input {ins[0]!r} {list(x.shape)}, size {size}, output {list(y)}, "
                                 f"align_corners {a['align_corners']} and half_pixel_centers "
                                 f"{a['half_pixel_centers']} (not both) are supported for a 4-D input")
            g.add_op(Op("resize_bilinear", node, ins[:1], outs, a))
            self.lowered(where, ins[0])
        elif kind == "BATCH_MATMUL":
            o = options(tflite.BatchMatMulOptions)
            adj_x, adj_y = (bool(o.AdjX()), bool(o.AdjY())) if o else (False, False)
            if o is not None and o.AsymmetricQuantizeInputs():
                raise ModelError(f"{where}: asymmetric_quantize_inputs (hybrid) is not supported")
            a_name = ins[0]
            if adj_x:  # TFLM transposes the LHS rows and columns before the product: so does a TRANSPOSE
                perm = tuple(range(rank - 2)) + (rank - 1, rank - 2)
                shape = tuple(x.shape[p] for p in perm)
                a_name = g.add_tensor(Tensor(g.unique_name(f"{ins[0]}_adj"), shape, x.dtype, x.quant)).name
                g.add_op(Op("transpose", f"{node}_adj_x", ins[:1], [a_name], {"perm": perm}))
                self.check_c_form("TRANSPOSE", g.ops[-1])
            g.add_op(Op("batch_matmul", node, [a_name, ins[1]], outs, {"transpose_b": adj_y}))
            q = self.lowered(where, ins[0])  # shapes and broadcasting
            want = (*q["batch_shape"], q["m"], q["n"])
            if g.t(outs[0]).shape != want:
                raise ModelError(f"{where}: output {outs[0]!r} {list(g.t(outs[0]).shape)}, the product gives "
                                 f"{list(want)}")

    def lstm(self, node: str, ins: list[str], outs: list[str], o: Any) -> Op:
        """UNIDIRECTIONAL_SEQUENCE_LSTM as an `lstm` op (compiler/core/lstm.py): the slots were checked
        by check_op (no peephole, projection or layer norm; int8 x int8 -> int16 cell); here the
        options and the state tensors. The state quantization becomes attributes; the state
        starts from TFLM's reset values at every invoke (h = zero point, c = 0)."""
        g = self.graph
        where = f"{self.source}: node {node} (UNIDIRECTIONAL_SEQUENCE_LSTM)"
        act = int(o.FusedActivationFunction()) if o is not None else 0
        if act != tflite.ActivationFunctionType.TANH:
            raise ModelError(f"{where}: cell activation {_BO_ACT.get(act, act)} is not supported; supported: TANH")
        if o is not None and o.DiagonalRecurrentTensors():
            raise ModelError(f"{where}: diagonal recurrent tensors are not supported")
        x, h, c, y = g.t(ins[0]), g.t(ins[18]), g.t(ins[19]), g.t(outs[0])
        if len(x.shape) != 3 or len(y.shape) != 3:
            raise ModelError(f"{where}: input {x.name!r} {x.shape} and output {y.shape} must be 3-D")
        tm = bool(o.TimeMajor()) if o is not None else False
        batch, units = (x.shape[1] if tm else x.shape[0]), g.t(ins[2]).shape[0]
        for t in (h, c):
            if t.size != batch * units:
                raise ModelError(f"{where}: state tensor {t.name!r} {t.shape} does not hold batch x units")
        assert h.quant is not None and c.quant is not None  # checked by check_op
        frac, _ = np.frexp(np.float32(c.quant.s))
        if float(frac) != 0.5:
            raise ModelError(
                f"{where}: cell state {c.name!r} scale {c.quant.s:g} is not a power of two (supported: 2^-n)"
            )
        clip = float(o.CellClip()) if o is not None else 0.0
        attrs = {"time_major": tm, "cell_clip": clip, "hidden_scale": float(h.quant.s), "hidden_zp": h.quant.zp,
                 "cell_scale": float(c.quant.s)}  # fmt: skip
        return Op("lstm", node, [ins[0], *ins[1:9], *ins[12:16]], outs, attrs)
    def svdf(self, node: str, ins: list[str], outs: list[str], op: Any, o: Any) -> None:
        """SVDF: x, weights_feature, weights_time, bias; the state (input 4, a variable tensor
        TFLM requires) becomes the op's own (attrs state_scale/state_zp; compiler/golden/reference.py)."""
        g = self.graph
        idx = int(op.InputsAsNumpy()[4])
        st = g.t(ins[4])
        f, m = g.t(ins[2]).shape if len(g.t(ins[2]).shape) == 2 else (0, 0)
        if not self.sg.Tensors(idx).IsVariable() or st.quant is None or st.quant.per_channel:
            raise ModelError(f"{self.source}: node {node} (SVDF): input 4 {ins[4]!r} must be a per-tensor "
                             "quantized variable tensor (the activation state)")
        if st.shape != (g.t(ins[0]).shape[0], f * m):
            raise ModelError(f"{self.source}: node {node} (SVDF): state shape {st.shape} is not [batch, {f * m}]")
        attrs = {"rank": int(o.Rank()) if o else 0, "activation": _act(o) if o else "none",  # no options: refused
                 "state_scale": float(st.quant.s), "state_zp": st.quant.zp}
        g.add_op(Op("svdf", node, ins[:4], outs, attrs))
        self.states.add(ins[4])

    # -- ops ------------------------------------------------------------------------------
    def run(self) -> Graph:
        g = self.graph
        self.states: set[str] = set()
        for i in range(self.sg.OperatorsLength()):
            self.op(i, self.sg.Operators(i))
        g.inputs = [self.tensor(int(i)) for i in self.sg.InputsAsNumpy()]
        g.outputs = [self.tensor(int(i)) for i in self.sg.OutputsAsNumpy()]
        for n in self.states:  # an SVDF state read or written by anything else is refused
            if n in g.inputs or n in g.outputs or any(n in op.inputs or n in op.outputs for op in g.ops):
                raise ModelError(f"{self.source}: SVDF state {n!r} is used outside its SVDF")
            del g.tensors[n]
        computed = {n for op in g.ops for n in op.outputs} | set(g.inputs)
        for n in g.outputs:
            if n not in computed:
                raise ModelError(f"{self.source}: graph output {n!r} is not computed by any operator (a constant "
                                 "or unused tensor): not supported")
        g.verify()
        return g

    def opname(self, op: Any) -> str:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        # TFLite's GetBuiltinCode: max(builtin_code, deprecated_builtin_code) of the raw fields (the
        # `tflite` package's BuiltinCode() answers the deprecated field whenever builtin_code < 127)
        t = code._tab
        raw = int(t.Get(flatbuffers.number_types.Int32Flags, t.Pos + t.Offset(10))) if t.Offset(10) else 0
        builtin = max(raw, int(code.DeprecatedBuiltinCode()))
        if builtin == BO.CUSTOM:
            return "CUSTOM:" + (code.CustomCode() or b"?").decode()
        return _BO_NAMES.get(builtin, f"BUILTIN_{builtin}")

    def op(self, i: int, op: Any) -> None:
        kind = self.opname(op)
        ins = [self.tensor(int(x)) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [self.tensor(int(x)) for x in op.OutputsAsNumpy()]
        node = f"op{i}_{kind.lower()}"
        if kind not in SUPPORT:
            raise UnsupportedOpError(kind, node, SUPPORTED, self.source)
        if SUPPORT[kind].refused:  # declared refused (e.g. float32-only in TFLM): its own one-line reason
            check_op(kind, node, [self.graph.tensors[n] if n else None for n in ins], [], source=self.source)
        for n in ins + outs:
            if n and self.graph.tensors[n].dtype == "float32" and kind not in ("QUANTIZE", "DEQUANTIZE"):
                raise ModelError(
                    f"{self.source}: node {node} ({kind}) has float32 tensor {n!r}: only fully "
                    "int8-quantized TFLite models are supported (convert with "
                    "optimizations=[tf.lite.Optimize.DEFAULT] and a representative dataset)"
                )
        # the declared dtypes and quantization schemes (compiler/core/ops_support.py): refuse the rest here
        tensors = self.graph.tensors
        check_op(
            kind,
            node,
            [tensors[n] if n else None for n in ins],
            [tensors[n] if n else None for n in outs],
            at_input=bool(ins) and int(op.InputsAsNumpy()[0]) in self.graph_inputs,
            at_output=bool(outs) and int(op.OutputsAsNumpy()[0]) in self.graph_outputs,
            source=self.source,
        )
        opts = op.BuiltinOptions()
        g = self.graph
        a: dict[str, Any] = {}

        def options(cls: Any) -> Any:
            o = cls()
            if opts is not None:
                o.Init(opts.Bytes, opts.Pos)
                return o
            return None

        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            cls = tflite.Conv2DOptions if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions
            o = options(cls)
            stride = (o.StrideH(), o.StrideW())
            dil = (o.DilationHFactor(), o.DilationWFactor())
            x, w = g.t(ins[0]), g.t(ins[1])
            _check_window(self.source, node, stride, dil, x.shape, w.shape)
            pads = _padding(o.Padding(), x.shape[1:3], w.shape[1:3], stride, dil)
            a = {"stride": stride, "dilation": dil, "pads": pads, "activation": _act(o)}
            if kind == "DEPTHWISE_CONV_2D":
                a["depth_multiplier"] = w.shape[3] // x.shape[3]
            g.add_op(Op("conv2d" if kind == "CONV_2D" else "depthwise_conv2d", node, ins, outs, a))
        elif kind == "TRANSPOSE_CONV":
            o = options(tflite.TransposeConvOptions)
            x, w, y = g.t(ins[2]), g.t(ins[1]), g.t(outs[0])
            stride = (o.StrideH(), o.StrideW())
            if o.Padding() == tflite.Padding.VALID:
                pads = (0, 0, 0, 0)
            else:  # TFLM: the conv padding of the output size (ComputePaddingHeightWidth), top/left used
                pads = same_pads(y.shape[1:3], w.shape[1:3], stride, (1, 1))
            for d in range(2):
                want = (x.shape[1 + d] - 1) * stride[d] + w.shape[1 + d] - pads[2 * d] - pads[2 * d + 1]
                if o.Padding() == tflite.Padding.VALID and y.shape[1 + d] != want:
                    raise ModelError(f"{self.source}: node {node} (TRANSPOSE_CONV): output {y.shape} does not match")
            act = _act(o) if hasattr(o, "FusedActivationFunction") else "none"
            g.add_op(Op("transpose_conv", node, [ins[2], ins[1]] + ins[3:4], outs,
                        {"stride": stride, "pads": pads, "activation": act, "dilation": (1, 1)}))
        elif kind == "FULLY_CONNECTED":
            o = options(tflite.FullyConnectedOptions)
            a = {"activation": _act(o) if o else "none"}
            g.add_op(Op("fully_connected", node, ins, outs, a))
        elif kind in ("ADD", "MUL", "SUB"):
            o = options({"ADD": tflite.AddOptions, "MUL": tflite.MulOptions, "SUB": tflite.SubOptions}[kind])
            g.add_op(Op(kind.lower(), node, ins, outs, {"activation": _act(o) if o else "none"}))
        elif kind == "GATHER":
            o = options(tflite.GatherOptions)
            rank = len(g.t(ins[0]).shape)
            axis = (int(o.Axis()) if o else 0) % rank
            if o is not None and int(o.BatchDims()) != 0:
                raise ModelError(f"{self.source}: node {node} (GATHER): batch_dims {o.BatchDims()} is not supported")
            idx = g.t(ins[1]).data
            n = g.t(ins[0]).shape[axis]
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ModelError(f"{self.source}: node {node} (GATHER): indices outside [0, {n})")
            g.add_op(Op("gather", node, ins[:1], outs, {"axis": axis, "indices": idx.astype(np.int64).tolist()}))
        elif kind == "RESIZE_NEAREST_NEIGHBOR":
            o = options(tflite.ResizeNearestNeighborOptions)
            a = {"align_corners": bool(o.AlignCorners()) if o else False,
                 "half_pixel_centers": bool(o.HalfPixelCenters()) if o else False}
            g.add_op(Op("resize_nearest", node, ins[:1], outs, a))
        elif kind == "LEAKY_RELU":
            o = options(tflite.LeakyReluOptions)
            g.add_op(Op("leaky_relu", node, ins, outs, {"alpha": float(o.Alpha()) if o else 0.2}))
        elif kind in ("MAXIMUM", "MINIMUM"):
            g.add_op(Op(kind.lower(), node, ins, outs, {}))
        elif kind == "SLICE":
            x = g.t(ins[0])
            begin = [int(v) for v in g.t(ins[1]).data.reshape(-1)]
            size = [int(v) for v in g.t(ins[2]).data.reshape(-1)]
            size = [x.shape[d] - begin[d] if s < 0 else s for d, s in enumerate(size)]
            if len(begin) != len(x.shape) or len(size) != len(begin) or any(
                b < 0 or b + n > x.shape[d] for d, (b, n) in enumerate(zip(begin, size, strict=True))
            ):
                raise ModelError(f"{self.source}: node {node} (SLICE): begin {begin} size {size} outside {x.shape}")
            g.add_op(Op("slice", node, ins[:1], outs, {"begin": tuple(begin), "size": tuple(size)}))
        elif kind in ("SPLIT", "SPLIT_V", "UNPACK"):
            self.split(kind, node, ins, outs, op)
            return
        elif kind == "PACK":
            o = options(tflite.PackOptions)
            rank = len(g.t(outs[0]).shape)
            axis = int(o.Axis()) % rank if o else 0
            parts = []
            for k, n in enumerate(ins):
                t = g.t(n)
                shape = t.shape[:axis] + (1,) + t.shape[axis:]
                r = g.add_tensor(Tensor(g.unique_name(f"{n}_pack{k}"), shape, t.dtype, t.quant)).name
                g.add_op(Op("reshape", f"{node}_reshape{k}", [n], [r], {}))
                parts.append(r)
            g.add_op(Op("concat", node, parts, outs, {"axis": axis, "activation": "none"}))
        elif kind == "EXPAND_DIMS":
            g.add_op(Op("reshape", node, ins[:1], outs, {}))
        elif kind == "STRIDED_SLICE":
            g.add_op(self.strided_slice(node, ins, outs, options(tflite.StridedSliceOptions)))
        elif kind in _LAYOUT_OPS:
            self.layout_op(kind, node, ins, outs, options)
        elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            o = options(tflite.Pool2DOptions)
            stride = (o.StrideH(), o.StrideW())
            kernel = (o.FilterHeight(), o.FilterWidth())
            _check_window(self.source, node, stride + kernel, (1, 1), g.t(ins[0]).shape, (1, *kernel, 1))
            pads = _padding(o.Padding(), g.t(ins[0]).shape[1:3], kernel, stride, (1, 1))
            a = {"kernel": kernel, "stride": stride, "pads": pads, "activation": _act(o)}
            g.add_op(Op("avg_pool2d" if kind.startswith("AVERAGE") else "max_pool2d", node, ins, outs, a))
        elif kind == "MEAN":
            o = options(tflite.ReducerOptions)
            axes_t = g.t(ins[1])
            if axes_t.data is None:
                raise ModelError(f"{self.source}: node {node} (MEAN) needs constant axes")
            rank = len(g.t(ins[0]).shape)
            axes = tuple(sorted({int(v) % rank for v in axes_t.data.reshape(-1)}))
            a = {"axes": axes, "keep_dims": bool(o.KeepDims()) if o else False}
            if rank != 4 or axes != (1, 2):  # the C kernel's form (compiler/core/ops_support.py: MEAN)
                raise ModelError(
                    f"{self.source}: node {node} (MEAN): axes {axes} of a rank-{rank} tensor; supported: axes (1, 2) "
                    "of an NHWC tensor (global average pooling)"
                )
            g.add_op(Op("mean", node, ins[:1], outs, a))
        elif kind in ("PAD", "PADV2"):
            p = g.t(ins[1])
            if p.data is None:
                raise ModelError(f"{self.source}: node {node} ({kind}) needs constant paddings")
            paddings = tuple((int(b), int(e)) for b, e in p.data.reshape(-1, 2))
            full = ((0, 0),) * (4 - len(paddings)) + paddings
            if len(paddings) > 4 or full[0] != (0, 0) or full[3] != (0, 0) or min(min(q) for q in paddings) < 0:
                raise ModelError(
                    f"{self.source}: node {node} ({kind}): paddings {paddings}; supported: H and W of NHWC "
                    "(no batch or channel padding)"
                )
            g.add_op(Op("pad", node, [ins[0]] + ins[2:3], outs, {"paddings": paddings}))
        elif kind in ("RESHAPE", "SQUEEZE"):
            g.add_op(Op("reshape", node, ins[:1], outs, {}))
        elif kind == "CONCATENATION":
            o = options(tflite.ConcatenationOptions)
            rank = len(g.t(outs[0]).shape)
            g.add_op(Op("concat", node, ins, outs, {"axis": int(o.Axis()) % rank, "activation": _act(o)}))
        elif kind == "SOFTMAX":
            o = options(tflite.SoftmaxOptions)
            g.add_op(Op("softmax", node, ins, outs, {"beta": float(o.Beta()) if o else 1.0}))
        elif kind == "LOGISTIC":
            g.add_op(Op("logistic", node, ins, outs, {}))
        elif kind == "ABS":
            g.add_op(Op("abs", node, ins, outs, {}))
        elif kind == "TANH":
            g.add_op(Op("tanh", node, ins, outs, {}))
        elif kind == "HARD_SWISH":
            g.add_op(Op("hard_swish", node, ins, outs, {}))
        elif kind in ("RELU", "RELU6"):
            hi = float("inf") if kind == "RELU" else 6.0
            g.add_op(Op("relu", node, ins, outs, {"min": 0.0, "max": hi}))
        elif kind == "TRANSPOSE":
            perm_t = g.t(ins[1])
            rank = len(g.t(ins[0]).shape)
            perm = tuple(int(v) % max(rank, 1) for v in perm_t.data.reshape(-1))  # const: checked above
            if sorted(perm) != list(range(rank)):
                raise ModelError(f"{self.source}: node {node} (TRANSPOSE): perm {perm} is not a permutation of {rank}")
            g.add_op(Op("transpose", node, ins[:1], outs, {"perm": perm}))
        elif kind == "UNIDIRECTIONAL_SEQUENCE_LSTM":
            g.add_op(self.lstm(node, ins, outs, options(tflite.UnidirectionalSequenceLSTMOptions)))
        elif kind in ("SQUARED_DIFFERENCE", "PRELU", "ELU", "RSQRT"):
            g.add_op(Op(kind.lower(), node, ins, outs, {}))
        elif kind == "L2_NORMALIZATION":
            self.l2_norm(node, ins, outs, options(tflite.L2NormOptions))
        elif kind == "SVDF":
            self.svdf(node, ins, outs, op, options(tflite.SVDFOptions))
        elif kind == "QUANTIZE":
            g.add_op(Op("quantize", node, ins, outs, {}))
        elif kind == "DEQUANTIZE":
            g.add_op(Op("dequantize", node, ins, outs, {}))
        for n in outs:
            t = g.t(n)
            if t.dtype == "int8" and t.quant is None:
                raise ModelError(f"{self.source}: node {node} ({kind}) output {n!r} has no quantization")
        if g.ops:
            self.check_c_form(kind, g.ops[-1])

    def l2_norm(self, node: str, ins: list[str], outs: list[str], o: Any) -> None:
        """L2_NORMALIZATION int8: TFLM writes x / ||x|| in 1/128 units whatever the output's scale
        (l2norm.h), so any other output scale is refused; TFLM refuses fused activations."""
        g = self.graph
        y = g.t(outs[0])
        act = _act(o) if o is not None else "none"
        if act != "none":
            raise ModelError(f"{self.source}: node {node} (L2_NORMALIZATION): fused activation {act} is not supported")
        if y.quant is not None and float(y.quant.scale[0]) != float(np.float32(1 / 128)):
            raise ModelError(
                f"{self.source}: node {node} (L2_NORMALIZATION): output 0 {y.name!r} has scale "
                f"{float(y.quant.scale[0]):.6g}; supported: 1/128 (TFLite-Micro writes the result in 1/128 units "
                "whatever the output scale)"
            )
        if len(g.t(ins[0]).shape) > 4:
            raise ModelError(f"{self.source}: node {node} (L2_NORMALIZATION): tensors of rank > 4 are not supported")
        g.add_op(Op("l2_norm", node, ins[:1], outs, {}))

    # the shapes the C kernels take (codegen/emit.py), refused here so plan refuses them too
    _VIEW_OPS = ("conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d", "mean", "pad", "resize_nearest")
    _RANK4_OPS = ("add", "mul", "sub", "maximum", "minimum", "transpose", "slice", "concat", "squared_difference",
                  "prelu", "strided_slice", "reduce_sum", "reduce_max", "batch_matmul")

    def check_c_form(self, kind: str, op: Op) -> None:
        g = self.graph
        shapes = [g.t(n).shape for n in op.inputs + op.outputs if n and not g.t(n).is_const]
        if op.kind in self._VIEW_OPS and any(len(s) > 4 or (len(s) == 4 and s[0] != 1) for s in shapes):
            raise ModelError(f"{self.source}: node {op.name} ({kind}): batch {shapes[0][0]} > 1 is not supported")
        if op.kind in self._RANK4_OPS and any(len(s) > 4 for s in shapes):
            raise ModelError(f"{self.source}: node {op.name} ({kind}): tensors of rank > 4 are not supported")
        if op.kind in ("squared_difference", "prelu"):  # TFLM broadcasts input 1 to input 0 (numpy rules)
            xs = [g.t(n).shape for n in op.inputs[:2]]
            try:
                want = tuple(np.broadcast_shapes(*xs))
            except ValueError:
                want = None
            y = g.t(op.outputs[0]).shape
            if want != y or (op.kind == "prelu" and want != xs[0]):
                raise ModelError(
                    f"{self.source}: node {op.name} ({kind}): inputs {list(xs[0])} and {list(xs[1])} do not broadcast "
                    f"to the output {list(y)}" + (" (PRELU: alpha must broadcast to the input's shape)"
                                                  if op.kind == "prelu" else "")
                )
        int16 = "int16" in (g.t(op.inputs[0]).dtype, g.t(op.outputs[0]).dtype)
        if op.kind in ("logistic", "tanh", "softmax") and int16 or op.kind == "svdf":
            try:  # TFLM's Prepare checks (quantization the int16 / SVDF kernels refuse): at import
                lower(g, op)
            except ModelError as e:
                raise ModelError(f"{self.source}: {e}") from None
        if op.kind == "concat":
            y = g.t(op.outputs[0]).shape
            if len(y) == 4 and y[0] != 1 and op.attrs["axis"] != 0:
                raise ModelError(f"{self.source}: node {op.name} ({kind}): batch {y[0]} > 1 is not supported")


def _check_window(
    source: str, node: str, stride: tuple[int, ...], dil: tuple[int, ...], x: tuple[int, ...], w: tuple[int, ...]
) -> None:
    """Strides, dilations (and pool kernels, passed with the strides) >= 1; input and filter of rank 4."""
    if any(int(v) < 1 for v in (*stride, *dil)):
        raise ModelError(f"{source}: node {node}: strides/dilations/kernel {list(stride) + list(dil)} must be >= 1")
    if len(x) != 4 or len(w) != 4 or min(*x, *w) < 1:
        raise ModelError(f"{source}: node {node}: input {list(x)} and filter {list(w)} must be 4-D with sizes >= 1")


_LAYOUT_OPS = ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "SUM", "REDUCE_MAX", "ARG_MAX", "ARG_MIN", "RESIZE_BILINEAR",
               "BATCH_MATMUL")


def _strided_slice_attrs(
    shape: tuple[int, ...], begin: list[int], end: list[int], strides: list[int], o: Any
) -> tuple[dict, str]:
    """STRIDED_SLICE as (begin, steps, size) per axis, the way TFLite-Micro's Eval resolves it
    (`tensorflow/lite/kernels/internal/strided_slice_logic.h` StridedSliceStartForAxis /
    StridedSliceEndForAxis): a negative index counts from the end; begin clamped to [0, n]
    (stride > 0) or [-1, n - 1] (stride < 0), end likewise; begin_mask/end_mask take the whole
    axis in the stride's direction; shrink_axis_mask takes one element (end = begin + 1) and drops
    the axis. Returns (attrs, "") or ({}, why it is refused): ellipsis/new-axis masks (TFLM
    ignores them), a zero stride, a shrunk axis with a negative stride, an empty result."""
    if o is not None and (o.EllipsisMask() or o.NewAxisMask()):
        return {}, "ellipsis/new-axis masks are not supported"
    if not (len(begin) == len(end) == len(strides) == len(shape)):
        return {}, f"begin/end/strides must have one value per axis of the rank-{len(shape)} input"
    bm, em, sm = (o.BeginMask(), o.EndMask(), o.ShrinkAxisMask()) if o is not None else (0, 0, 0)
    b_out, st_out, n_out = [], [], []
    for d, n in enumerate(shape):
        st = strides[d]
        if st == 0:
            return {}, "a zero stride is not supported"
        lo, hi = (0, n) if st > 0 else (-1, n - 1)
        b = begin[d] + n if begin[d] < 0 else begin[d]
        b = min(max(b, lo), hi)
        if bm >> d & 1:
            b = 0 if st > 0 else n - 1
        if sm >> d & 1:
            if st < 0:
                return {}, f"a shrunk axis {d} with a negative stride is not supported"
            e = b if b >= n else b + 1
        else:
            e = end[d] + n if end[d] < 0 else end[d]
            e = min(max(e, lo), hi)
            if em >> d & 1:
                e = n if st > 0 else -1
        count = len(range(b, e, st))
        if count == 0:
            return {}, f"axis {d} selects no element"
        b_out.append(b)
        st_out.append(st)
        n_out.append(count)
    return {"begin": tuple(b_out), "steps": tuple(st_out), "size": tuple(n_out)}, ""


def _act(o: Any) -> str:
    f = int(o.FusedActivationFunction())
    if f not in _ACT:
        raise ModelError(f"unsupported fused activation {f}")
    return _ACT[f]


def _padding(
    padding: int,
    in_hw: tuple[int, ...],
    k_hw: tuple[int, ...],
    stride: tuple[int, int],
    dil: tuple[int, int],
) -> tuple[int, int, int, int]:
    """TFLite SAME/VALID as explicit (top, bottom, left, right)."""
    if padding == tflite.Padding.VALID:
        return (0, 0, 0, 0)
    return same_pads(in_hw, k_hw, stride, dil)


def same_pads(
    in_hw: tuple[int, ...], k_hw: tuple[int, ...], stride: tuple[int, ...], dil: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """TFLite SAME padding as explicit (top, bottom, left, right): the odd pixel goes after."""
    out = []
    for i in range(2):
        n, k, s, d = in_hw[i], k_hw[i], stride[i], dil[i]
        eff = (k - 1) * d + 1
        o = (n + s - 1) // s
        total = max((o - 1) * s + eff - n, 0)
        out.append((total // 2, total - total // 2))
    return (out[0][0], out[0][1], out[1][0], out[1][1])


def _c_ident(s: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in s)
    out = "_".join(p for p in out.split("_") if p)
    if out and out[0].isdigit():
        out = "t_" + out
    return out[:48]
