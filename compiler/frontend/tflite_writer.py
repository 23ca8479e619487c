"""Serialize an int8 IR graph into a TFLite flatbuffer (schema version 3).

`write_tflite(graph)` is the inverse of `compiler.frontend.tflite.parse_tflite`: one subgraph,
one buffer per constant (buffer 0 is the empty sentinel), per-channel weight quantization with
its `quantized_dimension`, builtin options for every op kind, and operator codes carrying both
`deprecated_builtin_code` (min(code, 127)) and `builtin_code`. The result runs in TFLite-Micro.

IR details that TFLite stores differently are re-materialized as constant tensors:
- `mean` axes -> an int32 axes tensor; `pad` paddings -> an int32 [rank, 2] tensor
  (PADV2 when the op carries a constant-value input);
- `reshape` -> an int32 new-shape tensor plus ReshapeOptions;
- explicit `pads` -> SAME or VALID; pads that are neither raise `WriterError`;
- `lstm` -> UNIDIRECTIONAL_SEQUENCE_LSTM with its 24 inputs (peephole, projection and layer-norm
  slots -1) and two variable state tensors (hidden int8 [B, S] with the op's hidden quantization,
  cell int16 [B, S] with its power-of-two scale), as the TFLite converter writes them; no
  `intermediates` (TFLite-Micro's integer LSTM fixes the gate scales at 2^-12 / 2^-15 and
  never reads them).

Output is deterministic: the same graph gives the same bytes.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType as AF
from tflite.BuiltinOperator import BuiltinOperator as BO
from tflite.BuiltinOptions import BuiltinOptions as BOpt
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from compiler.core.ir import Graph, Op, QParams, Tensor
from compiler.errors import ModelError
from compiler.frontend.tflite import same_pads


class WriterError(ModelError):
    """The graph cannot be expressed as a TFLite flatbuffer."""


_TYPES = {
    "int8": TensorType.INT8,
    "uint8": TensorType.UINT8,
    "int16": TensorType.INT16,
    "int32": TensorType.INT32,
    "int64": TensorType.INT64,
    "float32": TensorType.FLOAT32,
}

_ACT = {
    "none": AF.NONE,
    "relu": AF.RELU,
    "relu_n1_to_1": AF.RELU_N1_TO_1,
    "relu6": AF.RELU6,
}

_DATA_ALIGN = 16  # constant buffers start on 16-byte boundaries (TFLM reads int32 bias in place)


def padding_mode(
    op_name: str,
    pads: tuple[int, ...],
    in_hw: tuple[int, ...],
    k_hw: tuple[int, ...],
    stride: tuple[int, ...],
    dil: tuple[int, ...],
    out_hw: tuple[int, ...],
) -> int:
    """The TFLite Padding enum that reproduces explicit `pads` (and the output size)."""
    pads = tuple(int(p) for p in pads)
    same = same_pads(in_hw, k_hw, stride, dil)
    same_out = tuple((in_hw[i] + stride[i] - 1) // stride[i] for i in range(2))
    valid_out = tuple(
        (in_hw[i] - ((k_hw[i] - 1) * dil[i] + 1)) // stride[i] + 1 for i in range(2)
    )
    if pads == same and tuple(out_hw) == same_out:
        return Padding.SAME
    if pads == (0, 0, 0, 0) and tuple(out_hw) == valid_out:
        return Padding.VALID
    raise WriterError(
        f"node {op_name}: explicit pads {pads} (input {tuple(in_hw)}, kernel {tuple(k_hw)}, "
        f"stride {tuple(stride)}, dilation {tuple(dil)}, output {tuple(out_hw)}) are neither "
        f"TFLite SAME {same} nor VALID (0, 0, 0, 0); insert an explicit pad op"
    )


def write_tflite(graph: Graph, description: str = "microtile") -> bytes:
    """Serialize `graph` (int8, NHWC, TFLite conventions) into .tflite bytes."""
    return _Writer(graph, description).run()


class _Writer:
    def __init__(self, graph: Graph, description: str) -> None:
        graph.verify()
        self.g = graph
        self.description = description
        self.b = flatbuffers.Builder(1 << 16)
        # tensor table: (name, shape, dtype, quant, data); extra constants are appended
        self.tensors: list[Tensor] = []
        self.index: dict[str, int] = {}
        self.opcodes: list[tuple[int, int]] = []  # (builtin code, version)
        self.opcode_index: dict[tuple[int, int], int] = {}
        self.variables: set[int] = set()  # indices of variable (state) tensors (LSTM, SVDF)

    # -- tables ---------------------------------------------------------------------------
    def tensor_index(self, name: str) -> int:
        if name == "":
            return -1
        if name not in self.index:
            self.index[name] = len(self.tensors)
            self.tensors.append(self.g.t(name))
        return self.index[name]

    def const_tensor(self, base: str, data: np.ndarray, dtype: str = "int32") -> int:
        name = f"{base}"
        i = 1
        while name in self.index or name in self.g.tensors:
            name, i = f"{base}_{i}", i + 1
        t = Tensor(name, np.asarray(data).shape, dtype, None, np.asarray(data))
        self.index[name] = len(self.tensors)
        self.tensors.append(t)
        return self.index[name]

    def opcode(self, code: int, version: int = 1) -> int:
        key = (code, version)
        if key not in self.opcode_index:
            self.opcode_index[key] = len(self.opcodes)
            self.opcodes.append(key)
        return self.opcode_index[key]

    # -- flatbuffer helpers ---------------------------------------------------------------
    def ivec(self, values: Any) -> int:
        return self.b.CreateNumpyVector(np.asarray(values, dtype=np.int32).reshape(-1))

    def bytes_vec(self, raw: bytes) -> int:
        b = self.b
        b.StartVector(1, len(raw), _DATA_ALIGN)
        b.head = b.head - len(raw)
        b.Bytes[b.head : b.head + len(raw)] = raw
        b.vectorNumElems = len(raw)
        return b.EndVector()

    def offsets_vec(self, start: Any, offsets: list[int]) -> int:
        start(self.b, len(offsets))
        for o in reversed(offsets):
            self.b.PrependUOffsetTRelative(o)
        return self.b.EndVector()

    # -- main -----------------------------------------------------------------------------
    def run(self) -> bytes:
        g = self.g
        for n in g.inputs:
            self.tensor_index(n)
        ops = [o for o in (self.operator(op) for op in g.ops) if o is not None]  # None: merged into another
        for n in g.outputs:
            self.tensor_index(n)
        b = self.b

        # buffers: 0 is the empty sentinel, then one per constant tensor in table order
        buffer_of: list[int] = []
        buffer_data: list[bytes] = [b""]
        for t in self.tensors:
            if t.data is None:
                buffer_of.append(0)
            else:
                buffer_of.append(len(buffer_data))
                arr = np.ascontiguousarray(t.data.astype(t.data.dtype.newbyteorder("<")))
                buffer_data.append(arr.tobytes())

        tensor_offs = [self.tensor(t, buffer_of[i], i in self.variables) for i, t in enumerate(self.tensors)]
        op_offs = [self.operator_table(*o) for o in ops]
        tensors_v = self.offsets_vec(tflite.SubGraphStartTensorsVector, tensor_offs)
        inputs_v = self.ivec([self.index[n] for n in g.inputs])
        outputs_v = self.ivec([self.index[n] for n in g.outputs])
        ops_v = self.offsets_vec(tflite.SubGraphStartOperatorsVector, op_offs)
        sg_name = b.CreateString(g.name or "main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_v)
        tflite.SubGraphAddInputs(b, inputs_v)
        tflite.SubGraphAddOutputs(b, outputs_v)
        tflite.SubGraphAddOperators(b, ops_v)
        tflite.SubGraphAddName(b, sg_name)
        sg = tflite.SubGraphEnd(b)

        buf_offs = []
        for raw in buffer_data:
            data_v = self.bytes_vec(raw) if raw else None
            tflite.BufferStart(b)
            if data_v is not None:
                tflite.BufferAddData(b, data_v)
            buf_offs.append(tflite.BufferEnd(b))

        code_offs = []
        for code, version in self.opcodes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, BO.PLACEHOLDER_FOR_GREATER_OP_CODES))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, version)
            code_offs.append(tflite.OperatorCodeEnd(b))

        codes_v = self.offsets_vec(tflite.ModelStartOperatorCodesVector, code_offs)
        sgs_v = self.offsets_vec(tflite.ModelStartSubgraphsVector, [sg])
        bufs_v = self.offsets_vec(tflite.ModelStartBuffersVector, buf_offs)
        desc = b.CreateString(self.description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes_v)
        tflite.ModelAddSubgraphs(b, sgs_v)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, bufs_v)
        model = tflite.ModelEnd(b)
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())

    def variable_tensor(self, t: Tensor) -> int:
        """A variable tensor (no buffer data; TFLM resets it at AllocateTensors)."""
        name, i = t.name, 1
        while name in self.index or name in self.g.tensors:
            name, i = f"{t.name}_{i}", i + 1
        self.index[name] = len(self.tensors)
        self.tensors.append(Tensor(name, t.shape, t.dtype, t.quant))
        self.variables.add(self.index[name])
        return self.index[name]

    def tensor(self, t: Tensor, buffer: int, variable: bool = False) -> int:
        b = self.b
        name = b.CreateString(t.name)
        shape = self.ivec(list(t.shape))
        quant = None
        if t.quant is not None:
            q = t.quant
            scale = b.CreateNumpyVector(np.asarray(q.scale, dtype=np.float32).reshape(-1))
            zp = b.CreateNumpyVector(np.asarray(q.zero_point, dtype=np.int64).reshape(-1))
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            tflite.QuantizationParametersAddQuantizedDimension(b, int(q.axis) if q.per_channel else 0)
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, _TYPES[t.dtype])
        tflite.TensorAddBuffer(b, buffer)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        if variable:
            tflite.TensorAddIsVariable(b, True)
        return tflite.TensorEnd(b)

    def operator_table(self, opcode: int, ins: list[int], outs: list[int], opt_type: int, opt: Any) -> int:
        b = self.b
        opt_off = opt(b) if opt is not None else None
        ins_v = self.ivec(ins)
        outs_v = self.ivec(outs)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, opcode)
        tflite.OperatorAddInputs(b, ins_v)
        tflite.OperatorAddOutputs(b, outs_v)
        if opt_off is not None:
            tflite.OperatorAddBuiltinOptionsType(b, opt_type)
            tflite.OperatorAddBuiltinOptions(b, opt_off)
        return tflite.OperatorEnd(b)

    # -- ops ------------------------------------------------------------------------------
    def operator(self, op: Op) -> tuple[int, list[int], list[int], int, Any] | None:
        """(opcode index, input indices, output indices, options type, options builder)."""
        g = self.g
        k, a = op.kind, op.attrs
        x = g.t(op.inputs[0])
        y = g.t(op.outputs[0])
        ins = [self.tensor_index(n) for n in op.inputs]
        outs = [self.tensor_index(n) for n in op.outputs]
        act = _act(op)

        if k in ("conv2d", "depthwise_conv2d"):
            w = g.t(op.inputs[1])
            stride, dil = tuple(a["stride"]), tuple(a.get("dilation", (1, 1)))
            pad = padding_mode(op.name, a["pads"], x.shape[1:3], w.shape[1:3], stride, dil, y.shape[1:3])
            if k == "conv2d":

                def opt(b: Any) -> int:
                    tflite.Conv2DOptionsStart(b)
                    tflite.Conv2DOptionsAddPadding(b, pad)
                    tflite.Conv2DOptionsAddStrideH(b, stride[0])
                    tflite.Conv2DOptionsAddStrideW(b, stride[1])
                    tflite.Conv2DOptionsAddDilationHFactor(b, dil[0])
                    tflite.Conv2DOptionsAddDilationWFactor(b, dil[1])
                    tflite.Conv2DOptionsAddFusedActivationFunction(b, act)
                    return tflite.Conv2DOptionsEnd(b)

                version = 3 if dil != (1, 1) or _per_channel(w) else 1
                return self.opcode(BO.CONV_2D, version), ins, outs, BOpt.Conv2DOptions, opt
            mult = int(a.get("depth_multiplier", w.shape[3] // x.shape[3]))

            def opt(b: Any) -> int:
                tflite.DepthwiseConv2DOptionsStart(b)
                tflite.DepthwiseConv2DOptionsAddPadding(b, pad)
                tflite.DepthwiseConv2DOptionsAddStrideH(b, stride[0])
                tflite.DepthwiseConv2DOptionsAddStrideW(b, stride[1])
                tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, mult)
                tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, dil[0])
                tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, dil[1])
                tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(b, act)
                return tflite.DepthwiseConv2DOptionsEnd(b)

            return self.opcode(BO.DEPTHWISE_CONV_2D, 3), ins, outs, BOpt.DepthwiseConv2DOptions, opt

        if k == "transpose_conv":
            w = g.t(op.inputs[1])
            stride = tuple(a["stride"])
            shape = self.const_tensor(f"{op.name}_output_shape", np.asarray(y.shape, dtype=np.int32))
            same = tuple(same_pads(y.shape[1:3], w.shape[1:3], stride, (1, 1)))
            pad = Padding.VALID if tuple(a["pads"]) == (0, 0, 0, 0) else Padding.SAME
            if pad == Padding.SAME and tuple(a["pads"]) != same:
                raise WriterError(f"node {op.name}: transpose_conv pads {a['pads']} are neither SAME {same} nor VALID")

            def opt(b: Any) -> int:
                tflite.TransposeConvOptionsStart(b)
                tflite.TransposeConvOptionsAddPadding(b, pad)
                tflite.TransposeConvOptionsAddStrideH(b, stride[0])
                tflite.TransposeConvOptionsAddStrideW(b, stride[1])
                tflite.TransposeConvOptionsAddFusedActivationFunction(b, act)
                return tflite.TransposeConvOptionsEnd(b)

            tins = [shape, ins[1], ins[0]] + ins[2:3]
            return self.opcode(BO.TRANSPOSE_CONV, 4), tins, outs, BOpt.TransposeConvOptions, opt

        if k == "fully_connected":

            def opt(b: Any) -> int:
                tflite.FullyConnectedOptionsStart(b)
                tflite.FullyConnectedOptionsAddFusedActivationFunction(b, act)
                tflite.FullyConnectedOptionsAddKeepNumDims(b, len(y.shape) > 2)
                return tflite.FullyConnectedOptionsEnd(b)

            return self.opcode(BO.FULLY_CONNECTED, 4), ins, outs, BOpt.FullyConnectedOptions, opt

        if k in ("add", "mul"):
            start = tflite.AddOptionsStart if k == "add" else tflite.MulOptionsStart
            add_act = tflite.AddOptionsAddFusedActivationFunction if k == "add" else (
                tflite.MulOptionsAddFusedActivationFunction
            )
            end = tflite.AddOptionsEnd if k == "add" else tflite.MulOptionsEnd

            def opt(b: Any) -> int:
                start(b)
                add_act(b, act)
                return end(b)

            code = BO.ADD if k == "add" else BO.MUL
            otype = BOpt.AddOptions if k == "add" else BOpt.MulOptions
            return self.opcode(code, 2), ins, outs, otype, opt

        if k == "sub":

            def opt(b: Any) -> int:
                tflite.SubOptionsStart(b)
                tflite.SubOptionsAddFusedActivationFunction(b, act)
                return tflite.SubOptionsEnd(b)

            return self.opcode(BO.SUB, 2), ins, outs, BOpt.SubOptions, opt

        if k == "gather":
            idx = self.const_tensor(f"{op.name}_indices", np.asarray(a["indices"], dtype=np.int32))
            axis = int(a["axis"])

            def opt(b: Any) -> int:
                tflite.GatherOptionsStart(b)
                tflite.GatherOptionsAddAxis(b, axis)
                return tflite.GatherOptionsEnd(b)

            return self.opcode(BO.GATHER, 2), [ins[0], idx], outs, BOpt.GatherOptions, opt

        if k == "resize_nearest":
            size = self.const_tensor(f"{op.name}_size", np.asarray(y.shape[1:3], dtype=np.int32))
            ac, hp = bool(a.get("align_corners", False)), bool(a.get("half_pixel_centers", False))

            def opt(b: Any) -> int:
                tflite.ResizeNearestNeighborOptionsStart(b)
                tflite.ResizeNearestNeighborOptionsAddAlignCorners(b, ac)
                tflite.ResizeNearestNeighborOptionsAddHalfPixelCenters(b, hp)
                return tflite.ResizeNearestNeighborOptionsEnd(b)

            return (self.opcode(BO.RESIZE_NEAREST_NEIGHBOR, 3), [ins[0], size], outs,
                    BOpt.ResizeNearestNeighborOptions, opt)

        if k == "leaky_relu":
            alpha = float(a["alpha"])

            def opt(b: Any) -> int:
                tflite.LeakyReluOptionsStart(b)
                tflite.LeakyReluOptionsAddAlpha(b, alpha)
                return tflite.LeakyReluOptionsEnd(b)

            return self.opcode(BO.LEAKY_RELU, 2), ins, outs, BOpt.LeakyReluOptions, opt

        if k in ("maximum", "minimum"):

            def opt(b: Any) -> int:
                tflite.MaximumMinimumOptionsStart(b)
                return tflite.MaximumMinimumOptionsEnd(b)

            code = BO.MAXIMUM if k == "maximum" else BO.MINIMUM
            return self.opcode(code, 2), ins, outs, BOpt.MaximumMinimumOptions, opt

        if k == "slice" and "tflite_split" in a:  # SPLIT / SPLIT_V / UNPACK: the group's slices as one op
            sp = a["tflite_split"]
            if sp["index"] != 0:
                return None
            group = sorted(
                (o for o in g.ops if o.kind == "slice" and o.attrs.get("tflite_split", {}).get("group") == sp["group"]),
                key=lambda o: o.attrs["tflite_split"]["index"],
            )
            outs = [self.tensor_index(o.outputs[0]) for o in group]
            axis = int(sp["axis"])
            if sp["op"] == "SPLIT":
                ax = self.const_tensor(f"{op.name}_axis", np.asarray([axis], dtype=np.int32))
                n = len(group)

                def opt(b: Any) -> int:
                    tflite.SplitOptionsStart(b)
                    tflite.SplitOptionsAddNumSplits(b, n)
                    return tflite.SplitOptionsEnd(b)

                return self.opcode(BO.SPLIT, 2), [ax, ins[0]], outs, BOpt.SplitOptions, opt
            if sp["op"] == "SPLIT_V":
                sizes = self.const_tensor(f"{op.name}_sizes", np.asarray(sp["sizes"], dtype=np.int32))
                ax = self.const_tensor(f"{op.name}_axis", np.asarray([axis], dtype=np.int32))
                n = len(group)

                def opt(b: Any) -> int:
                    tflite.SplitVOptionsStart(b)
                    tflite.SplitVOptionsAddNumSplits(b, n)
                    return tflite.SplitVOptionsEnd(b)

                return self.opcode(BO.SPLIT_V, 2), [ins[0], sizes, ax], outs, BOpt.SplitVOptions, opt
            n = len(group)

            def opt(b: Any) -> int:
                tflite.UnpackOptionsStart(b)
                tflite.UnpackOptionsAddNum(b, n)
                tflite.UnpackOptionsAddAxis(b, axis)
                return tflite.UnpackOptionsEnd(b)

            return self.opcode(BO.UNPACK, 2), ins, outs, BOpt.UnpackOptions, opt

        if k == "concat" and a.get("pack"):  # written as PACK: inputs of rank r stacked on a new axis
            axis, n = int(a["axis"]), len(op.inputs)

            def opt(b: Any) -> int:
                tflite.PackOptionsStart(b)
                tflite.PackOptionsAddValuesCount(b, n)
                tflite.PackOptionsAddAxis(b, axis)
                return tflite.PackOptionsEnd(b)

            return self.opcode(BO.PACK, 2), ins, outs, BOpt.PackOptions, opt

        if k == "strided_slice" and "strided" not in a:  # begin/steps/size back to begin/end/strides
            e = [b + s * n for b, s, n in zip(a["begin"], a["steps"], a["size"], strict=True)]
            mask = sum(1 << d for d, v in enumerate(e) if v < 0)
            a = {**a, "strided": {"begin": list(a["begin"]), "end": [max(v, 0) for v in e],
                                  "strides": list(a["steps"]), "end_mask": mask}}
        if k in ("slice", "strided_slice") and "strided" in a:  # STRIDED_SLICE (strides default 1, masks as given)
            st = a["strided"]
            ivs = [self.const_tensor(f"{op.name}_{n}", np.asarray(st[n], dtype=np.int32)) for n in ("begin", "end")]
            ones = self.const_tensor(
                f"{op.name}_strides", np.asarray(st.get("strides", [1] * len(x.shape)), dtype=np.int32)
            )

            def opt(b: Any) -> int:
                tflite.StridedSliceOptionsStart(b)
                tflite.StridedSliceOptionsAddBeginMask(b, int(st.get("begin_mask", 0)))
                tflite.StridedSliceOptionsAddEndMask(b, int(st.get("end_mask", 0)))
                tflite.StridedSliceOptionsAddShrinkAxisMask(b, int(st.get("shrink_axis_mask", 0)))
                return tflite.StridedSliceOptionsEnd(b)

            return self.opcode(BO.STRIDED_SLICE, 2), [ins[0], *ivs, ones], outs, BOpt.StridedSliceOptions, opt

        if k == "reshape" and "expand_axis" in a:  # written as EXPAND_DIMS
            ax = self.const_tensor(f"{op.name}_axis", np.asarray([a["expand_axis"]], dtype=np.int32))

            def opt(b: Any) -> int:
                tflite.ExpandDimsOptionsStart(b)
                return tflite.ExpandDimsOptionsEnd(b)

            return self.opcode(BO.EXPAND_DIMS, 1), [ins[0], ax], outs, BOpt.ExpandDimsOptions, opt

        if k == "slice":
            begin = self.const_tensor(f"{op.name}_begin", np.asarray(a["begin"], dtype=np.int32))
            size = self.const_tensor(f"{op.name}_size", np.asarray(a["size"], dtype=np.int32))

            def opt(b: Any) -> int:
                tflite.SliceOptionsStart(b)
                return tflite.SliceOptionsEnd(b)

            return self.opcode(BO.SLICE, 2), [ins[0], begin, size], outs, BOpt.SliceOptions, opt

        if k in ("avg_pool2d", "max_pool2d"):
            kernel, stride = tuple(a["kernel"]), tuple(a["stride"])
            pad = padding_mode(op.name, a["pads"], x.shape[1:3], kernel, stride, (1, 1), y.shape[1:3])

            def opt(b: Any) -> int:
                tflite.Pool2DOptionsStart(b)
                tflite.Pool2DOptionsAddPadding(b, pad)
                tflite.Pool2DOptionsAddStrideH(b, stride[0])
                tflite.Pool2DOptionsAddStrideW(b, stride[1])
                tflite.Pool2DOptionsAddFilterHeight(b, kernel[0])
                tflite.Pool2DOptionsAddFilterWidth(b, kernel[1])
                tflite.Pool2DOptionsAddFusedActivationFunction(b, act)
                return tflite.Pool2DOptionsEnd(b)

            code = BO.AVERAGE_POOL_2D if k == "avg_pool2d" else BO.MAX_POOL_2D
            return self.opcode(code, 2), ins, outs, BOpt.Pool2DOptions, opt

        if k == "mean":
            axes = self.const_tensor(f"{op.name}_axes", np.asarray(a["axes"], dtype=np.int32))
            keep = bool(a.get("keep_dims", False))

            def opt(b: Any) -> int:
                tflite.ReducerOptionsStart(b)
                tflite.ReducerOptionsAddKeepDims(b, keep)
                return tflite.ReducerOptionsEnd(b)

            return self.opcode(BO.MEAN, 2), [ins[0], axes], outs, BOpt.ReducerOptions, opt

        if k == "pad":
            paddings = np.asarray(a["paddings"], dtype=np.int32).reshape(-1, 2)
            if paddings.shape[0] != len(x.shape):
                raise WriterError(
                    f"node {op.name} (pad): paddings {a['paddings']} do not match rank {len(x.shape)}"
                )
            p_idx = self.const_tensor(f"{op.name}_paddings", paddings)
            if len(op.inputs) > 1 and op.inputs[1]:

                def opt(b: Any) -> int:
                    tflite.PadV2OptionsStart(b)
                    return tflite.PadV2OptionsEnd(b)

                return self.opcode(BO.PADV2, 2), [ins[0], p_idx, ins[1]], outs, BOpt.PadV2Options, opt

            def opt(b: Any) -> int:
                tflite.PadOptionsStart(b)
                return tflite.PadOptionsEnd(b)

            return self.opcode(BO.PAD, 2), [ins[0], p_idx], outs, BOpt.PadOptions, opt

        if k == "reshape" and "squeeze_dims" in a:  # written as SQUEEZE (imported back as reshape)
            dims = sorted(int(d) % len(x.shape) for d in a["squeeze_dims"])
            if any(x.shape[d] != 1 for d in dims) or tuple(
                s for i, s in enumerate(x.shape) if i not in dims
            ) != tuple(y.shape):
                raise WriterError(f"node {op.name}: squeeze_dims {dims} do not take {x.shape} to {y.shape}")

            def opt(b: Any) -> int:
                v = self.ivec(dims)
                tflite.SqueezeOptionsStart(b)
                tflite.SqueezeOptionsAddSqueezeDims(b, v)
                return tflite.SqueezeOptionsEnd(b)

            return self.opcode(BO.SQUEEZE, 1), [ins[0]], outs, BOpt.SqueezeOptions, opt

        if k == "transpose":
            perm = self.const_tensor(f"{op.name}_perm", np.asarray(a["perm"], dtype=np.int32))

            def opt(b: Any) -> int:
                tflite.TransposeOptionsStart(b)
                return tflite.TransposeOptionsEnd(b)

            return self.opcode(BO.TRANSPOSE, 2), [ins[0], perm], outs, BOpt.TransposeOptions, opt

        if k == "reshape":
            shape = np.asarray(y.shape, dtype=np.int32)
            s_idx = self.const_tensor(f"{op.name}_shape", shape)

            def opt(b: Any) -> int:
                v = self.ivec(shape)
                tflite.ReshapeOptionsStart(b)
                tflite.ReshapeOptionsAddNewShape(b, v)
                return tflite.ReshapeOptionsEnd(b)

            return self.opcode(BO.RESHAPE, 1), [ins[0], s_idx], outs, BOpt.ReshapeOptions, opt

        if k == "concat":
            axis = int(a["axis"])

            def opt(b: Any) -> int:
                tflite.ConcatenationOptionsStart(b)
                tflite.ConcatenationOptionsAddAxis(b, axis)
                tflite.ConcatenationOptionsAddFusedActivationFunction(b, act)
                return tflite.ConcatenationOptionsEnd(b)

            return self.opcode(BO.CONCATENATION, 2), ins, outs, BOpt.ConcatenationOptions, opt

        if k == "softmax":
            beta = float(a.get("beta", 1.0))

            def opt(b: Any) -> int:
                tflite.SoftmaxOptionsStart(b)
                tflite.SoftmaxOptionsAddBeta(b, beta)
                return tflite.SoftmaxOptionsEnd(b)

            return self.opcode(BO.SOFTMAX, 2), ins, outs, BOpt.SoftmaxOptions, opt

        if k == "logistic":
            return self.opcode(BO.LOGISTIC, 2), ins, outs, 0, None

        if k == "abs":
            return self.opcode(BO.ABS, 2), ins, outs, 0, None

        if k == "tanh":
            return self.opcode(BO.TANH, 2), ins, outs, 0, None

        if k == "hard_swish":

            def opt(b: Any) -> int:
                tflite.HardSwishOptionsStart(b)
                return tflite.HardSwishOptionsEnd(b)

            return self.opcode(BO.HARD_SWISH, 1), ins, outs, BOpt.HardSwishOptions, opt

        if k == "relu":
            lo, hi = float(a.get("min", 0.0)), float(a.get("max", float("inf")))
            if lo == 0.0 and hi == float("inf"):
                return self.opcode(BO.RELU, 2), ins, outs, 0, None
            if lo == 0.0 and hi == 6.0:
                return self.opcode(BO.RELU6, 2), ins, outs, 0, None
            if lo == -1.0 and hi == 1.0:
                return self.opcode(BO.RELU_N1_TO_1, 1), ins, outs, 0, None
            raise WriterError(f"node {op.name} (relu): bounds ({lo}, {hi}) have no TFLite builtin")

        if k in ("quantize", "dequantize"):
            if k == "quantize":

                def opt(b: Any) -> int:
                    tflite.QuantizeOptionsStart(b)
                    return tflite.QuantizeOptionsEnd(b)

                return self.opcode(BO.QUANTIZE, 2), ins, outs, BOpt.QuantizeOptions, opt

            def opt(b: Any) -> int:
                tflite.DequantizeOptionsStart(b)
                return tflite.DequantizeOptionsEnd(b)

            return self.opcode(BO.DEQUANTIZE, 2), ins, outs, BOpt.DequantizeOptions, opt

        if k == "lstm":
            return self.lstm(op, ins, outs)
        if k == "squared_difference":

            def opt(b: Any) -> int:
                tflite.SquaredDifferenceOptionsStart(b)
                return tflite.SquaredDifferenceOptionsEnd(b)

            return self.opcode(BO.SQUARED_DIFFERENCE, 2), ins, outs, BOpt.SquaredDifferenceOptions, opt

        if k in ("prelu", "elu", "rsqrt"):
            code = {"prelu": BO.PRELU, "elu": BO.ELU, "rsqrt": BO.RSQRT}[k]
            return self.opcode(code, 2 if k == "rsqrt" else 1), ins, outs, 0, None

        if k == "l2_norm":

            def opt(b: Any) -> int:
                tflite.L2NormOptionsStart(b)
                tflite.L2NormOptionsAddFusedActivationFunction(b, AF.NONE)
                return tflite.L2NormOptionsEnd(b)

            return self.opcode(BO.L2_NORMALIZATION, 2), ins, outs, BOpt.L2NormOptions, opt
        if k == "svdf":  # the state: a variable tensor [batch, filters * memory] from the attrs
            f, m = g.t(op.inputs[2]).shape
            name = f"{op.name}_state"
            self.index[name] = len(self.tensors)
            self.tensors.append(Tensor(name, (x.shape[0], f * m), g.t(op.inputs[2]).dtype,
                                       QParams(np.float32(a["state_scale"]), int(a["state_zp"]))))
            self.variables.add(self.index[name])
            rank = int(a["rank"])

            def opt(b: Any) -> int:
                tflite.SVDFOptionsStart(b)
                tflite.SVDFOptionsAddRank(b, rank)
                tflite.SVDFOptionsAddFusedActivationFunction(b, act)
                return tflite.SVDFOptionsEnd(b)

            return self.opcode(BO.SVDF, 3), ins + [self.index[name]], outs, BOpt.SVDFOptions, opt
        if k in ("depth_to_space", "space_to_depth"):
            bs = int(a["block_size"])
            d2s = k == "depth_to_space"

            def opt(b: Any) -> int:
                (tflite.DepthToSpaceOptionsStart if d2s else tflite.SpaceToDepthOptionsStart)(b)
                (tflite.DepthToSpaceOptionsAddBlockSize if d2s else tflite.SpaceToDepthOptionsAddBlockSize)(b, bs)
                return (tflite.DepthToSpaceOptionsEnd if d2s else tflite.SpaceToDepthOptionsEnd)(b)

            code, otype = (BO.DEPTH_TO_SPACE, BOpt.DepthToSpaceOptions) if d2s else (
                BO.SPACE_TO_DEPTH, BOpt.SpaceToDepthOptions)
            return self.opcode(code, 2), ins, outs, otype, opt

        if k in ("reduce_sum", "reduce_max"):
            axes = self.const_tensor(f"{op.name}_axes", np.asarray(a["axes"], dtype=np.int32))
            keep = bool(a.get("keep_dims", False))

            def opt(b: Any) -> int:
                tflite.ReducerOptionsStart(b)
                tflite.ReducerOptionsAddKeepDims(b, keep)
                return tflite.ReducerOptionsEnd(b)

            code = BO.SUM if k == "reduce_sum" else BO.REDUCE_MAX
            return self.opcode(code, 2), [ins[0], axes], outs, BOpt.ReducerOptions, opt

        if k in ("arg_max", "arg_min"):
            axis = self.const_tensor(f"{op.name}_axis", np.asarray([a["axis"]], dtype=np.int32))
            amax = k == "arg_max"

            def opt(b: Any) -> int:
                (tflite.ArgMaxOptionsStart if amax else tflite.ArgMinOptionsStart)(b)
                (tflite.ArgMaxOptionsAddOutputType if amax else tflite.ArgMinOptionsAddOutputType)(b, TensorType.INT32)
                return (tflite.ArgMaxOptionsEnd if amax else tflite.ArgMinOptionsEnd)(b)

            code, otype = (BO.ARG_MAX, BOpt.ArgMaxOptions) if amax else (BO.ARG_MIN, BOpt.ArgMinOptions)
            return self.opcode(code, 2), [ins[0], axis], outs, otype, opt

        if k == "resize_bilinear":
            size = self.const_tensor(f"{op.name}_size", np.asarray(y.shape[1:3], dtype=np.int32))
            ac, hp = bool(a.get("align_corners", False)), bool(a.get("half_pixel_centers", False))

            def opt(b: Any) -> int:
                tflite.ResizeBilinearOptionsStart(b)
                tflite.ResizeBilinearOptionsAddAlignCorners(b, ac)
                tflite.ResizeBilinearOptionsAddHalfPixelCenters(b, hp)
                return tflite.ResizeBilinearOptionsEnd(b)

            return self.opcode(BO.RESIZE_BILINEAR, 3), [ins[0], size], outs, BOpt.ResizeBilinearOptions, opt

        if k == "batch_matmul":  # adj_y = transpose_b; adj_x only as a writer attribute (imported as TRANSPOSE)
            adj_x, adj_y = bool(a.get("adj_x", False)), bool(a.get("transpose_b", False))

            def opt(b: Any) -> int:
                tflite.BatchMatMulOptionsStart(b)
                tflite.BatchMatMulOptionsAddAdjX(b, adj_x)
                tflite.BatchMatMulOptionsAddAdjY(b, adj_y)
                return tflite.BatchMatMulOptionsEnd(b)

            return self.opcode(BO.BATCH_MATMUL, 4), ins, outs, BOpt.BatchMatMulOptions, opt

        raise WriterError(f"node {op.name}: op kind {k!r} has no TFLite writer")

    def lstm(self, op: Op, ins: list[int], outs: list[int]) -> tuple[int, list[int], list[int], int, Any]:
        """UNIDIRECTIONAL_SEQUENCE_LSTM: x, weights 1-8, -1 x 3 (peephole), biases 12-15, -1 x 2
        (projection), hidden and cell state variables 18-19, -1 x 4 (layer norm)."""
        from compiler.core.ir import QParams

        a = op.attrs
        x = self.g.t(op.inputs[0])
        units = self.g.t(op.inputs[1]).shape[0]
        tm = bool(a.get("time_major", False))
        batch = x.shape[1] if tm else x.shape[0]
        hq = QParams(np.float32(a["hidden_scale"]), int(a["hidden_zp"]))
        cq = QParams(np.float32(a["cell_scale"]), 0)
        h = self.variable_tensor(Tensor(f"{op.name}_hidden_state", (batch, units), "int8", hq))
        c = self.variable_tensor(Tensor(f"{op.name}_cell_state", (batch, units), "int16", cq))
        tins = [ins[0], *ins[1:9], -1, -1, -1, *ins[9:13], -1, -1, h, c, -1, -1, -1, -1]
        clip = float(a.get("cell_clip", 0.0))
        act = int(a.get("tflite_activation", AF.TANH))  # another value only to test the importer's refusal

        def opt(b: Any) -> int:
            tflite.UnidirectionalSequenceLSTMOptionsStart(b)
            tflite.UnidirectionalSequenceLSTMOptionsAddFusedActivationFunction(b, act)
            tflite.UnidirectionalSequenceLSTMOptionsAddCellClip(b, clip)
            tflite.UnidirectionalSequenceLSTMOptionsAddProjClip(b, 0.0)
            tflite.UnidirectionalSequenceLSTMOptionsAddTimeMajor(b, tm)
            return tflite.UnidirectionalSequenceLSTMOptionsEnd(b)

        return (self.opcode(BO.UNIDIRECTIONAL_SEQUENCE_LSTM, 3), tins, outs,
                BOpt.UnidirectionalSequenceLSTMOptions, opt)


def _act(op: Op) -> int:
    name = op.attrs.get("activation", "none")
    if name not in _ACT:
        raise WriterError(f"node {op.name}: fused activation {name!r} has no TFLite equivalent")
    return _ACT[name]


def _per_channel(t: Tensor) -> bool:
    return t.quant is not None and t.quant.per_channel
