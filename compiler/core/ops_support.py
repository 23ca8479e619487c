"""What each TFLite builtin op implements: dtypes and quantization schemes, as data.

Every op microtile imports from a .tflite file declares here the *schemes* it computes
exactly (bit for bit with TFLite-Micro's reference kernels): for each schema input and output
slot, the dtypes allowed, the quantization (per tensor, per channel, none), the zero point
(any, or 0 for symmetric tensors), whether it must be a constant, and which implementations
exist (the numpy reference, the portable C kernels, the Cortex-M DSP kernels).

`check_op(...)` matches one operator against its schemes at import
(`compiler.frontend.tflite`), so `plan`, `compile` and `run` refuse the same models at the
same point, with one line naming the op, the node, the tensor, what it has and what is
supported. Anything not declared here is refused; nothing is computed in the wrong arithmetic.
An op declared with `refused` (and no schemes) is refused with that reason, e.g. one that
TFLite-Micro computes in float32 only, so no quantized oracle exists; the matrix shows it.

`support_matrix()` renders the op x int8/int16 x reference/C/DSP table from these same
declarations (`python -m compiler.core.ops_support > runtime_c/SUPPORT_TFLITE.md`), so the published
table cannot drift from what the importer accepts. Each scheme names the oracle test that
holds it (`tests/...::test`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler.core.ir import Tensor
from compiler.errors import ModelError

REF, C, DSP = "reference", "C", "DSP"


class UnsupportedSchemeError(ModelError):
    """An op whose tensor dtypes or quantization no declared scheme of it implements."""


@dataclass(frozen=True)
class Slot:
    """One input or output position of an op.

    dtypes: the dtypes allowed; quant: "tensor" (affine, one scale), "channel" (one scale or
    one per output channel), "none" (no quantization read: indices, shapes, float), "any";
    zp: "any" or "zero" (symmetric); const: True (must be a constant), False (must not be),
    None (either); optional: the slot may be absent (-1) or missing at the end.
    """

    dtypes: tuple[str, ...]
    quant: str = "tensor"
    zp: str = "any"
    const: bool | None = None
    optional: bool = False

    def describe(self) -> str:
        if not self.dtypes:
            return "absent (-1)"
        q = {"tensor": " per-tensor", "channel": " per-tensor/per-channel", "none": "", "any": ""}[self.quant]
        z = " zero point 0" if self.zp == "zero" else ""
        c = " constant" if self.const else ""
        o = " (optional)" if self.optional else ""
        return f"{'/'.join(self.dtypes)}{q}{z}{c}{o}"


@dataclass(frozen=True)
class Scheme:
    """One exactly implemented combination of dtypes and quantization for an op.

    family: the activation width it belongs to in the support matrix ("int8" or "int16");
    impl: the implementations that exist (REF, C, DSP); kernels: the C functions;
    edge: "input" when the op must read a graph input (its conversion moves to the caller),
    "output" when it must write a graph output; same_quant: input 0 and output 0 must share
    scale and zero point (TFLite-Micro requires it); test: the oracle test holding it.
    """

    name: str
    family: str
    inputs: tuple[Slot, ...]
    outputs: tuple[Slot, ...]
    impl: tuple[str, ...] = (REF, C)
    kernels: tuple[str, ...] = ()
    edge: str = ""
    same_quant: bool = False
    variadic: bool = False  # any number of inputs, each like inputs[0]
    variadic_out: bool = False  # any number of outputs, each like outputs[0]
    data_input: int = 0  # the input same_quant compares (all inputs when variadic)
    note: str = ""
    test: str = ""


@dataclass(frozen=True)
class OpSupport:
    op: str  # TFLite builtin name
    schemes: tuple[Scheme, ...]
    ir: str = ""  # the IR op kind it imports as
    refused: str = ""  # no schemes: why every form of the op is refused (shown in the support matrix)


I8 = Slot(("int8",))
I8_ZP0 = Slot(("int8",), zp="zero")
I16 = Slot(("int16",), zp="zero")
W8 = Slot(("int8",), quant="channel", zp="zero", const=True)
W8_FC = Slot(("int8",), quant="channel", const=True)  # per-tensor filter zero point allowed (see lower)
B32 = Slot(("int32",), quant="any", const=True, optional=True)
B64 = Slot(("int64", "int32"), quant="any", const=True, optional=True)
B64_ONLY = Slot(("int64",), quant="any", const=True, optional=True)
IDX32 = Slot(("int32",), quant="none", const=True)
IDX = Slot(("int32", "int64"), quant="none", const=True)
F32 = Slot(("float32",), quant="none")
U8 = Slot(("uint8",))

NONE = Slot((), quant="any", optional=True)  # must be absent (-1): a variant not implemented
W8_PT = Slot(("int8",), zp="zero", const=True)  # per-tensor symmetric weights

T_OPS = "tests/test_tflm_ops.py"
T_TFL = "tests/test_tflite_support.py"
T_EW = "tests/test_tflite_elementwise.py"
T_LUT = "tests/test_tflite_lut16.py"
T_RL = "tests/test_tflite_reduce_layout.py"


def _s(name: str, family: str, ins: Sequence[Slot], outs: Sequence[Slot], **kw: object) -> Scheme:
    return Scheme(name, family, tuple(ins), tuple(outs), **kw)  # type: ignore[arg-type]


_CONV_K = ("mt_conv_s8",)
SUPPORT: dict[str, OpSupport] = {
    o.op: o
    for o in (
        OpSupport(
            "CONV_2D",
            (
                _s("int8", "int8", [I8, W8, B32], [I8], impl=(REF, C, DSP), kernels=_CONV_K,
                   note="stride, dilation, SAME/VALID", test=f"{T_OPS}::test_conv2d"),
                _s("int16x8", "int16", [I16, W8, B64], [I16], impl=(REF, C, DSP), kernels=("mt_conv_s16",),
                   note="int64 or int32 bias; DSP: mt_conv_s16_dsp (tests/test_kernels_s16_dsp.py)",
                   test=f"{T_TFL}::test_conv2d_16x8"),
            ),
            "conv2d",
        ),
        OpSupport(
            "TRANSPOSE_CONV",
            (_s("int8", "int8", [IDX32, W8, I8, B32], [I8], kernels=("mt_transpose_conv_s8",), data_input=2,
                note="stride, SAME/VALID; no scratch (output-stationary)", test=f"{T_TFL}::test_transpose_conv"),
             _s("int16x8", "int16", [IDX32, W8, I16, B64_ONLY], [I16], kernels=("mt_transpose_conv_s16",),
                data_input=2, note="int64 bias (TFLM reads an int32 one as int64)",
                test=f"{T_TFL}::test_transpose_conv_16x8"),),
            "transpose_conv",
        ),
        OpSupport(
            "DEPTHWISE_CONV_2D",
            (_s("int8", "int8", [I8, W8, B32], [I8], impl=(REF, C, DSP), kernels=("mt_depthwise_conv_s8",),
                note="depth multiplier", test=f"{T_OPS}::test_depthwise_conv2d"),
             _s("int16x8", "int16", [I16, W8, B64_ONLY], [I16], impl=(REF, C, DSP), kernels=("mt_depthwise_conv_s16",),
                note="int64 bias (TFLM reads an int32 one as int64); DSP (depth multiplier 1): "
                "mt_depthwise_conv_s16_dsp", test=f"{T_TFL}::test_depthwise_conv2d_16x8"),),
            "depthwise_conv2d",
        ),
        OpSupport(
            "FULLY_CONNECTED",
            (_s("int8", "int8", [I8, W8_FC, B32], [I8], impl=(REF, C, DSP), kernels=("mt_fully_connected_s8",),
                note="per-tensor filter zero point", test=f"{T_OPS}::test_fully_connected"),
             _s("int16x8", "int16", [I16, W8, B64], [I16], impl=(REF, C, DSP), kernels=("mt_fully_connected_s16",),
                note="int64 or int32 bias; DSP: mt_fully_connected_s16_dsp",
                test=f"{T_TFL}::test_fully_connected_16x8"),),
            "fully_connected",
        ),
        OpSupport(
            "ADD",
            (_s("int8", "int8", [I8, I8], [I8], impl=(REF, C, DSP), kernels=("mt_add_s8", "mt_add_broadcast_s8"),
                note="4-D broadcast", test=f"{T_OPS}::test_binary"),
             _s("int16", "int16", [I16, I16], [I16], kernels=("mt_add_s16",), note="4-D broadcast",
                test=f"{T_TFL}::test_binary_16"),),
            "add",
        ),
        OpSupport(
            "MUL",
            (_s("int8", "int8", [I8, I8], [I8], kernels=("mt_mul_s8", "mt_mul_broadcast_s8"),
                note="4-D broadcast", test=f"{T_OPS}::test_binary"),
             _s("int16", "int16", [I16, I16], [I16], kernels=("mt_mul_s16",), note="4-D broadcast",
                test=f"{T_TFL}::test_binary_16"),),
            "mul",
        ),
        OpSupport(
            "AVERAGE_POOL_2D",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_avg_pool_s8",), test=f"{T_OPS}::test_pool"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_avg_pool_s16",), test=f"{T_TFL}::test_pool_16"),),
            "avg_pool2d",
        ),
        OpSupport(
            "MAX_POOL_2D",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_max_pool_s8",), test=f"{T_OPS}::test_pool"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_max_pool_s16",), test=f"{T_TFL}::test_pool_16"),),
            "max_pool2d",
        ),
        OpSupport(
            "MEAN",
            (_s("int8", "int8", [I8, IDX32], [I8], kernels=("mt_mean_hw_s8",),
                note="axes H,W of NHWC (others refused)", test=f"{T_OPS}::test_mean"),
             _s("int16", "int16", [I16, IDX32], [I16], kernels=("mt_mean_hw_s16",),
                note="axes H,W of NHWC (others refused)", test=f"{T_TFL}::test_mean_16"),),
            "mean",
        ),
        OpSupport(
            "PAD",
            (_s("int8", "int8", [I8, IDX], [I8], kernels=("mt_pad_s8",), same_quant=True,
                note="H, W padding (others refused)", test=f"{T_OPS}::test_pad"),
             _s("int16", "int16", [I16, IDX], [I16], kernels=("mt_pad_s8",), same_quant=True,
                note="C: H, W padding, as bytes (zero point 0)", test=f"{T_TFL}::test_pad_concat_16"),),
            "pad",
        ),
        OpSupport(
            "PADV2",
            (_s("int8", "int8", [I8, IDX, Slot(("int8",), const=True)], [I8], kernels=("mt_pad_s8",),
                same_quant=True, note="H, W padding (others refused)", test=f"{T_TFL}::test_padv2"),),
            "pad",
        ),
        OpSupport(
            "RESHAPE",
            (_s("int8", "int8", [I8, Slot(("int32",), quant="none", optional=True)], [I8], same_quant=True,
                note="a view (no kernel)", test=f"{T_OPS}::test_reshape"),
             _s("int16", "int16", [I16, Slot(("int32",), quant="none", optional=True)], [I16], same_quant=True,
                note="a view (no kernel)", test=f"{T_TFL}::test_reshape_16"),),
            "reshape",
        ),
        OpSupport(
            "SQUEEZE",
            (_s("int8", "int8", [I8], [I8], same_quant=True, note="a view (no kernel)",
                test=f"{T_TFL}::test_squeeze"),
             _s("int16", "int16", [I16], [I16], same_quant=True, note="a view (no kernel)",
                test=f"{T_TFL}::test_squeeze"),),
            "reshape",
        ),
        OpSupport(
            "CONCATENATION",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_copy_s8",), variadic=True, same_quant=True,
                note="inputs quantized as the output", test=f"{T_OPS}::test_concat"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_copy_s8",), variadic=True, same_quant=True,
                note="inputs quantized as the output; copied as bytes", test=f"{T_TFL}::test_pad_concat_16"),),
            "concat",
        ),
        OpSupport(
            "SOFTMAX",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_softmax_s8",), note="output 1/256, zero point -128",
                test=f"{T_OPS}::test_softmax"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_softmax_s16",),
                note="output 1/32768; TFLM's exp and 1/(1+x) LUTs", test=f"{T_LUT}::test_softmax_16"),
             _s("int8->int16", "int16", [I8], [Slot(("int16",))], kernels=("mt_softmax_s8_s16",),
                note="output 1/65536, zero point -32768", test=f"{T_LUT}::test_softmax_8_16"),),
            "softmax",
        ),
        OpSupport(
            "LOGISTIC",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_logistic_s8",), note="output zero point -128",
                test=f"{T_OPS}::test_activation"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_logistic_s16",),
                note="output 2^-15; any input scale <= 2.67 (power of two or not)",
                test=f"{T_LUT}::test_logistic_tanh_16"),),
            "logistic",
        ),
        OpSupport(
            "ABS",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_abs_s8",), test=f"{T_TFL}::test_abs"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_abs_s16",), test=f"{T_TFL}::test_abs"),),
            "abs",
        ),
        OpSupport(
            "TANH",
            (_s("int8", "int8", [I8], [I8_ZP0], kernels=("mt_tanh_s8",), note="output zero point 0",
                test=f"{T_TFL}::test_tanh"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_tanh_s16",),
                note="output 2^-15; any input scale <= 2.67 (power of two or not)",
                test=f"{T_LUT}::test_logistic_tanh_16"),),
            "tanh",
        ),
        OpSupport(
            "HARD_SWISH",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_hard_swish_s8",), test=f"{T_OPS}::test_activation"),),
            "hard_swish",
        ),
        OpSupport(
            "RELU",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_relu_s8",), test=f"{T_OPS}::test_activation"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_relu_s16",), test=f"{T_TFL}::test_relu_16"),),
            "relu",
        ),
        OpSupport(
            "RELU6",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_relu_s8",), test=f"{T_OPS}::test_activation"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_relu_s16",), test=f"{T_TFL}::test_relu_16"),),
            "relu",
        ),
        OpSupport(
            "QUANTIZE",
            (
                _s("int8->int8", "int8", [I8], [I8], kernels=("mt_requantize_s8",),
                   test=f"{T_OPS}::test_quantize_int8"),
                _s("float32->int8", "int8", [F32], [I8], edge="input", note="graph input only: the caller quantizes",
                   test=f"{T_TFL}::test_float_io_quantize"),
                _s("float32->int16", "int16", [F32], [I16], edge="input",
                   note="graph input only: the caller quantizes", test=f"{T_TFL}::test_float_io_quantize_16"),
                _s("uint8->int8", "int8", [U8], [I8], kernels=("mt_requantize_u8_s8",),
                   test=f"{T_TFL}::test_uint8_quantize"),
                _s("int8->uint8", "int8", [I8], [U8], kernels=("mt_requantize_s8_u8",),
                   test=f"{T_TFL}::test_uint8_quantize"),
                _s("int8->int16", "int16", [I8], [I16], kernels=("mt_requantize_s8_s16",),
                   test=f"{T_TFL}::test_quantize_16"),
                _s("int16->int8", "int16", [I16], [I8], kernels=("mt_requantize_s16_s8",),
                   test=f"{T_TFL}::test_quantize_16"),
                _s("int16->int16", "int16", [I16], [I16], kernels=("mt_requantize_s16",),
                   test=f"{T_TFL}::test_quantize_16"),
            ),
            "quantize",
        ),
        OpSupport(
            "DEQUANTIZE",
            (_s("int8->float32", "int8", [I8], [F32], edge="output", note="graph output only: the caller dequantizes",
                test=f"{T_TFL}::test_float_io_quantize"),
             _s("int16->float32", "int16", [I16], [F32], edge="output",
                note="graph output only: the caller dequantizes", test=f"{T_TFL}::test_float_io_quantize_16"),),
            "dequantize",
        ),
        OpSupport(
            "TRANSPOSE",
            (_s("int8", "int8", [I8, IDX32], [I8], kernels=("mt_copy_strided_s8",), same_quant=True,
                note="rank <= 4", test=f"{T_TFL}::test_transpose"),
             _s("int16", "int16", [I16, IDX32], [I16], kernels=("mt_copy_strided_s16",), same_quant=True,
                note="rank <= 4", test=f"{T_TFL}::test_transpose_16"),),
            "transpose",
        ),
        OpSupport(
            "SUB",
            (_s("int8", "int8", [I8, I8], [I8], kernels=("mt_sub_s8",), note="4-D broadcast",
                test=f"{T_TFL}::test_sub"),
             _s("int16", "int16", [I16, I16], [I16], kernels=("mt_sub_s16",), note="4-D broadcast",
                test=f"{T_TFL}::test_sub"),),
            "sub",
        ),
        OpSupport(
            "GATHER",
            (_s("int8", "int8", [I8, Slot(("int32", "int64"), quant="none", const=True)], [I8],
                kernels=("mt_gather_s8",), note="constant indices, batch_dims 0 (TFLM has no int16 GATHER)",
                test=f"{T_TFL}::test_gather"),),
            "gather",
        ),
        OpSupport(
            "RESIZE_NEAREST_NEIGHBOR",
            (_s("int8", "int8", [I8, IDX32], [I8], kernels=("mt_resize_nearest_s8",), same_quant=True,
                note="align_corners, half_pixel_centers", test=f"{T_TFL}::test_resize_nearest"),
             _s("int16", "int16", [I16, IDX32], [I16], kernels=("mt_resize_nearest_s16",), same_quant=True,
                note="align_corners, half_pixel_centers", test=f"{T_TFL}::test_resize_nearest"),),
            "resize_nearest",
        ),
        OpSupport(
            "LEAKY_RELU",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_leaky_relu_s8",), note="alpha >= 0",
                test=f"{T_TFL}::test_leaky_relu"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_leaky_relu_s16",), note="alpha >= 0",
                test=f"{T_TFL}::test_leaky_relu"),),
            "leaky_relu",
        ),
        OpSupport(
            "MAXIMUM",
            (_s("int8", "int8", [I8, I8], [I8], kernels=("mt_maximum_s8",), note="raw values, 4-D broadcast",
                test=f"{T_TFL}::test_maximum_minimum"),
             _s("int16", "int16", [I16, I16], [I16], kernels=("mt_maximum_s16",), note="raw values, 4-D broadcast",
                test=f"{T_TFL}::test_maximum_minimum"),),
            "maximum",
        ),
        OpSupport(
            "MINIMUM",
            (_s("int8", "int8", [I8, I8], [I8], kernels=("mt_minimum_s8",), note="raw values, 4-D broadcast",
                test=f"{T_TFL}::test_maximum_minimum"),
             _s("int16", "int16", [I16, I16], [I16], kernels=("mt_minimum_s16",), note="raw values, 4-D broadcast",
                test=f"{T_TFL}::test_maximum_minimum"),),
            "minimum",
        ),
        OpSupport(
            "SLICE",
            (_s("int8", "int8", [I8, IDX, IDX], [I8], kernels=("mt_copy_strided_s8",), same_quant=True,
                note="rank <= 4", test=f"{T_TFL}::test_slice"),
             _s("int16", "int16", [I16, IDX, IDX], [I16], kernels=("mt_copy_strided_s16",), same_quant=True,
                note="rank <= 4", test=f"{T_TFL}::test_slice"),),
            "slice",
        ),
        OpSupport(
            "STRIDED_SLICE",
            (_s("int8", "int8", [I8, IDX32, IDX32, IDX32], [I8], kernels=("mt_copy_strided_s8",), same_quant=True,
                note="rank <= 4, any non-zero strides; begin/end/shrink masks", test=f"{T_RL}::test_strided_slice"),
             _s("int16", "int16", [I16, IDX32, IDX32, IDX32], [I16], kernels=("mt_copy_strided_s16",),
                same_quant=True, note="rank <= 4, any non-zero strides; begin/end/shrink masks",
                test=f"{T_RL}::test_strided_slice"),),
            "slice",
        ),
        OpSupport(
            "SPLIT",
            tuple(_s(f, f, [IDX32, T], [T], kernels=(k,), variadic_out=True, data_input=1, same_quant=True,
                     note="as one SLICE per output", test=f"{T_TFL}::test_split_unpack_pack")
                  for f, T, k in (("int8", I8, "mt_copy_strided_s8"), ("int16", I16, "mt_copy_strided_s16"))),
            "slice",
        ),
        OpSupport(
            "SPLIT_V",
            tuple(_s(f, f, [T, IDX, IDX32], [T], kernels=(k,), variadic_out=True, same_quant=True,
                     note="as one SLICE per output", test=f"{T_TFL}::test_split_unpack_pack")
                  for f, T, k in (("int8", I8, "mt_copy_strided_s8"), ("int16", I16, "mt_copy_strided_s16"))),
            "slice",
        ),
        OpSupport(
            "UNPACK",
            tuple(_s(f, f, [T], [T], kernels=(k,), variadic_out=True, same_quant=True,
                     note="as one SLICE per output", test=f"{T_TFL}::test_split_unpack_pack")
                  for f, T, k in (("int8", I8, "mt_copy_strided_s8"), ("int16", I16, "mt_copy_strided_s16"))),
            "slice",
        ),
        OpSupport(
            "PACK",
            tuple(_s(f, f, [T], [T], kernels=("mt_copy_s8",), variadic=True, same_quant=True,
                     note="as RESHAPEs and a CONCATENATION", test=f"{T_TFL}::test_split_unpack_pack")
                  for f, T in (("int8", I8), ("int16", I16))),
            "concat",
        ),
        OpSupport(
            "EXPAND_DIMS",
            (_s("int8", "int8", [I8, IDX], [I8], same_quant=True, note="a view (no kernel)",
                test=f"{T_TFL}::test_expand_dims"),
             _s("int16", "int16", [I16, IDX], [I16], same_quant=True, note="a view (no kernel)",
                test=f"{T_TFL}::test_expand_dims"),),
            "reshape",
        ),
        OpSupport(
            "UNIDIRECTIONAL_SEQUENCE_LSTM",
            (_s("int8x8_16", "int8",
                [I8, *[W8_PT] * 8, NONE, NONE, NONE, *[Slot(("int32",), quant="any", const=True)] * 4, NONE, NONE,
                 Slot(("int8",), const=False), Slot(("int16",), zp="zero", const=False), NONE, NONE, NONE, NONE],
                [I8], kernels=("mt_lstm_s8",),
                note="int16 cell state of power-of-two scale, TANH cell gate, cell clip, time_major both ways; "
                     "no CIFG, peephole, projection or layer norm; state reset at every invoke",
                test="tests/test_lstm.py::test_lstm_tflm"),),
            "lstm",
        ),
        OpSupport(
            "NEG",
            (),
            refused="TFLite-Micro's NEG computes float32 only (neg.cc), so no quantized oracle exists",
        ),
        OpSupport(
            "SQUARED_DIFFERENCE",
            (_s("int8", "int8", [I8, I8], [I8], kernels=("mt_squared_difference_s8",), note="4-D broadcast",
                test=f"{T_EW}::test_squared_difference"),
             _s("int16", "int16", [I16, I16], [I16], kernels=("mt_squared_difference_s16",), note="4-D broadcast",
                test=f"{T_EW}::test_squared_difference"),),
            "squared_difference",
        ),
        OpSupport(
            "PRELU",
            (_s("int8", "int8", [I8, I8], [I8], kernels=("mt_prelu_s8",), note="alpha broadcast to the input (4-D)",
                test=f"{T_EW}::test_prelu"),
             _s("int16", "int16", [I16, I8], [I16], kernels=("mt_prelu_s16",),
                note="int8 alpha broadcast to the input (4-D)", test=f"{T_EW}::test_prelu"),),
            "prelu",
        ),
        OpSupport(
            "ELU",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_lut_s8",), note="TFLM's float32 table; int16: TFLM has none",
                test=f"{T_EW}::test_elu"),),
            "elu",
        ),
        OpSupport(
            "RSQRT",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_rsqrt_s8",),
                note="a table; inputs below the zero point fail invoke, as in TFLM", test=f"{T_EW}::test_rsqrt"),
             _s("int16", "int16", [I16], [I16], kernels=("mt_rsqrt_s16",),
                note="inputs below 0 fail invoke, as in TFLM", test=f"{T_EW}::test_rsqrt"),),
            "rsqrt",
        ),
        OpSupport(
            "L2_NORMALIZATION",
            (_s("int8", "int8", [I8], [I8_ZP0], kernels=("mt_l2_norm_s8",),
                note="last axis; output scale 1/128, zero point 0; no fused activation; int16: TFLM has none",
                test=f"{T_EW}::test_l2_norm"),),
            "l2_norm",
        ),
        OpSupport(
            "EXP",
            (),
            refused="TFLite-Micro's EXP computes float32 only (exp.cc), so no quantized oracle exists",
        ),
        OpSupport(
            "SVDF",
            (_s("int8 (int16 time weights and state)", "int8",
                [I8, Slot(("int8",), zp="zero", const=True), Slot(("int16",), zp="zero", const=True),
                 Slot(("int32",), quant="any", const=True), Slot(("int16",), const=False)], [I8],
                kernels=("mt_svdf_s8",),
                note="rank; bias required; TFLM ignores the fused activation (none/relu); the state is "
                     "zeroed at every invoke (= TFLM's first invoke)", test=f"{T_LUT}::test_svdf"),
             _s("int8 (int8 time weights and state)", "int8",
                [I8, Slot(("int8",), zp="zero", const=True), Slot(("int8",), zp="zero", const=True),
                 Slot(("int32",), quant="any", const=True), Slot(("int8",), const=False)], [I8],
                kernels=("mt_svdf_state8_s8",),
                note="as above; the state set to its zero point at every invoke (TFLM's reset)",
                test=f"{T_LUT}::test_svdf"),),
            "svdf",
        ),
        # layout and reduction ops: TFLM's depth_to_space/space_to_depth, resize_bilinear, arg_min_max
        # and REDUCE_MAX kernels take int8 only (float32 aside); SUM and BATCH_MATMUL int8 and int16
        OpSupport(
            "DEPTH_TO_SPACE",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_copy_strided_s8",), same_quant=True,
                note="NHWC, DCR order (TFLM has no int16)", test=f"{T_RL}::test_depth_space"),),
            "depth_to_space",
        ),
        OpSupport(
            "SPACE_TO_DEPTH",
            (_s("int8", "int8", [I8], [I8], kernels=("mt_copy_strided_s8",), same_quant=True,
                note="NHWC (TFLM has no int16)", test=f"{T_RL}::test_depth_space"),),
            "space_to_depth",
        ),
        OpSupport(
            "SUM",
            (_s("int8", "int8", [I8, IDX32], [I8], kernels=("mt_reduce_sum_s8",),
                note="any axes of rank <= 4, keep_dims; <= 65535 elements per sum", test=f"{T_RL}::test_sum"),
             _s("int16", "int16", [I16, IDX32], [I16], kernels=("mt_reduce_sum_s16",),
                note="any axes of rank <= 4, keep_dims; <= 65535 elements per sum", test=f"{T_RL}::test_sum"),),
            "reduce_sum",
        ),
        OpSupport(
            "REDUCE_MAX",
            (_s("int8", "int8", [I8, IDX32], [I8], kernels=("mt_reduce_max_s8",), same_quant=True,
                note="any axes of rank <= 4, keep_dims (TFLM has no int16)", test=f"{T_RL}::test_reduce_max"),),
            "reduce_max",
        ),
        OpSupport(
            "ARG_MAX",
            (_s("int8->int32", "int8", [Slot(("int8",), quant="any"), IDX32], [Slot(("int32",), quant="none")],
                kernels=("mt_arg_min_max_s8",), note="int32 axis and output (TFLM has no int16)",
                test=f"{T_RL}::test_arg_min_max"),),
            "arg_max",
        ),
        OpSupport(
            "ARG_MIN",
            (_s("int8->int32", "int8", [Slot(("int8",), quant="any"), IDX32], [Slot(("int32",), quant="none")],
                kernels=("mt_arg_min_max_s8",), note="int32 axis and output (TFLM has no int16)",
                test=f"{T_RL}::test_arg_min_max"),),
            "arg_min",
        ),
        OpSupport(
            "BATCH_MATMUL",
            (_s("int8", "int8", [I8, I8], [I8], kernels=("mt_batch_matmul_s8",), impl=(REF, C, DSP),
                note="adj_x, adj_y, broadcast batch, rank <= 4", test=f"{T_RL}::test_batch_matmul"),
             _s("int16", "int16", [I16, I16], [I16], kernels=("mt_batch_matmul_s16",),
                note="adj_x, adj_y, broadcast batch, rank <= 4; int64 sums", test=f"{T_RL}::test_batch_matmul"),),
            "batch_matmul",
        ),
        OpSupport(
            "RESIZE_BILINEAR",
            (_s("int8", "int8", [I8, IDX32], [I8], kernels=("mt_resize_bilinear_s8",), same_quant=True,
                note="align_corners, half_pixel_centers, any batch (TFLM has no int16)",
                test=f"{T_RL}::test_resize_bilinear"),),
            "resize_bilinear",
        ),
    )
}


def _has(t: Tensor | None) -> str:
    if t is None:
        return "absent"
    q = t.quant
    if q is None:
        qs = "not quantized"
    elif q.per_channel:
        qs = f"per-channel (axis {q.axis}), zero points {sorted(set(int(z) for z in q.zero_point))[:3]}"
    else:
        qs = f"per-tensor zero point {q.zp}"
    return f"{t.dtype} {qs}{' constant' if t.is_const else ''}"


def _slot_problem(slot: Slot, t: Tensor | None) -> str | None:
    """Why tensor `t` does not fit `slot` (None when it does)."""
    if t is None:
        return None if slot.optional else "required"
    if t.dtype not in slot.dtypes:
        return "dtype"
    if slot.const is True and not t.is_const:
        return "must be constant"
    if slot.const is False and t.is_const:
        return "must not be constant"
    q = t.quant
    if slot.quant in ("tensor", "channel"):
        if q is None:
            return "not quantized"
        if q.per_channel and slot.quant == "tensor":
            return "per-channel"
        if slot.zp == "zero" and any(int(z) != 0 for z in q.zero_point):
            return "zero point"
        if q.per_channel and q.zero_point.size > 1 and len(set(int(z) for z in q.zero_point)) > 1:
            return "zero point"
    return None


def _match(
    scheme: Scheme, ins: Sequence[Tensor | None], outs: Sequence[Tensor | None], at_input: bool, at_output: bool
) -> list[tuple[str, int, str]]:
    """Mismatches (role, index, reason) of one operator against one scheme."""
    bad: list[tuple[str, int, str]] = []
    slots = [scheme.inputs[0]] * len(ins) if scheme.variadic else list(scheme.inputs)
    for i in range(max(len(slots), len(ins))):
        t = ins[i] if i < len(ins) else None
        if i >= len(slots):
            bad.append(("input", i, "unexpected"))
            continue
        why = _slot_problem(slots[i], t)
        if why is not None:
            bad.append(("input", i, why))
    out_slots = [scheme.outputs[0]] * max(len(outs), 1) if scheme.variadic_out else list(scheme.outputs)
    for i, slot in enumerate(out_slots):
        t = outs[i] if i < len(outs) else None
        why = _slot_problem(slot, t)
        if why is not None:
            bad.append(("output", i, why))
    if scheme.edge == "input" and not at_input:
        bad.append(("input", 0, "not a graph input"))
    if scheme.edge == "output" and not at_output:
        bad.append(("output", 0, "not a graph output"))
    if scheme.same_quant and not bad:
        data = list(ins) if scheme.variadic else [ins[scheme.data_input]]
        for k, y in enumerate(outs):
            for a in data:
                if a is None or y is None or a.quant is None or y.quant is None:
                    continue
                if a.quant.s != y.quant.s or a.quant.zp != y.quant.zp:
                    bad.append(("output", k, "quantization differs from the input's"))
                    break
    return bad


def check_op(
    op: str,
    node: str,
    ins: Sequence[Tensor | None],
    outs: Sequence[Tensor | None],
    at_input: bool = False,
    at_output: bool = False,
    source: str = "",
) -> Scheme:
    """The scheme of SUPPORT[op] that this operator matches; UnsupportedSchemeError otherwise.

    ins/outs: the operator's tensors in TFLite schema order (None for an absent optional
    input); at_input/at_output: input 0 is a graph input / output 0 is a graph output.
    """
    where = f"{source}: " if source else ""
    decl = SUPPORT.get(op)
    if decl is None:
        raise UnsupportedSchemeError(f"{where}unsupported op {op} at node {node}; supported: {', '.join(SUPPORT)}")
    if decl.refused:
        t = ins[0] if ins else None
        name = f" {t.name!r}" if t is not None else ""
        raise UnsupportedSchemeError(f"{where}node {node} ({op}): input 0{name} is {_has(t)}; refused: {decl.refused}")
    results = [(s, _match(s, ins, outs, at_input, at_output)) for s in decl.schemes]
    for s, bad in results:
        if not bad:
            return s
    # report against the closest scheme: fewest mismatches, the first declared on ties
    scheme, bad = min(results, key=lambda r: len(r[1]))
    role, idx, why = bad[0]
    tensors = ins if role == "input" else outs
    t = tensors[idx] if idx < len(tensors) else None
    slots = scheme.inputs if role == "input" else scheme.outputs
    want = slots[min(idx, len(slots) - 1)].describe() if slots else "nothing"
    name = f" {t.name!r}" if t is not None else ""
    if why in ("not a graph input", "not a graph output"):
        want = f"{scheme.name} only at a graph {'input' if role == 'input' else 'output'}"
    elif why == "quantization differs from the input's":
        want = "the input's scale and zero point"
    schemes = ", ".join(s.name for s in decl.schemes)
    raise UnsupportedSchemeError(
        f"{where}node {node} ({op}): {role} {idx}{name} is {_has(t)} ({why}); supported: {want} "
        f"[{op} implements: {schemes}]"
    )


def support_matrix() -> str:
    """Markdown: one row per TFLite op, int8 and int16 columns of reference / C / DSP."""
    lines = [
        "# TFLite ops: what microtile computes exactly",
        "",
        "Generated by `python -m compiler.core.ops_support` from the declarations in `compiler/core/ops_support.py`"
        " (the same table the importer checks every operator against; anything else is refused at import).",
        "`ref` = numpy reference (`compiler/golden/reference.py`), `C` = portable kernel (`runtime_c/`), "
        "`DSP` = Cortex-M DSP kernel. Every scheme names the oracle test (TFLite-Micro interpreter) holding it.",
        "",
        "| op | int8 | int16 | schemes (kernels; oracle test) |",
        "|---|---|---|---|",
    ]
    for decl in SUPPORT.values():
        cells = []
        for fam in ("int8", "int16"):
            impl: list[str] = []
            for s in decl.schemes:
                if s.family == fam:
                    impl += [i for i in s.impl if i not in impl]
            cells.append(" ".join({"reference": "ref"}.get(i, i) for i in impl) or ("refused" if decl.refused else "-"))
        detail = "; ".join(
            f"{s.name}{' (' + s.note + ')' if s.note else ''}: "
            f"{', '.join('`' + k + '`' for k in s.kernels) or 'no kernel'}; `{s.test}`"
            for s in decl.schemes
        ) or f"refused: {decl.refused}"
        lines.append(f"| {decl.op} | {cells[0]} | {cells[1]} | {detail} |")
    return "\n".join(lines) + "\n"


def support_table() -> str:
    """The compact op x int8/int16 table (implementations per cell) for a README."""
    rows = ["| TFLite op | int8 | int16 |", "|---|---|---|"]
    for line in support_matrix().splitlines():
        if line.startswith("| ") and not line.startswith("| op ") and "---" not in line:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.append(f"| {cells[0]} | {cells[1]} | {cells[2]} |")
    return "\n".join(rows) + "\n"


def declared_tests() -> list[str]:
    return sorted({s.test for d in SUPPORT.values() for s in d.schemes})


if __name__ == "__main__":
    import sys

    print(support_table() if "--table" in sys.argv else support_matrix(), end="")
