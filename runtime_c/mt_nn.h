/* microtile kernel library: int8 kernels bit-exact with TFLite-Micro's reference kernels.
 *
 * Naming: mt_<op>[_variant]_s8. Every kernel takes small parameter structs, returns an
 * mt_status, and any kernel that needs scratch memory has a pure
 * mt_<op>_get_buffer_size() query. Portable C99, no heap, no globals.
 *
 * Tensors are NHWC int8. A kernel reads and writes through mt_view: a window of
 * (h, w, c) elements inside a larger buffer, with explicit row and pixel strides (in
 * elements). A full tensor is the view {h, w, c, w*c, c}. Patch-based inference
 * passes a sub-window of a larger map plus per-edge padding, so the same kernel computes
 * one output patch from its input window without copying it.
 */
#ifndef MT_NN_H
#define MT_NN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MT_RUNTIME_ABI 1

typedef enum { MT_OK = 0, MT_ERR_ARG = -1 } mt_status;

/* A window of an NHWC tensor (batch 1). Strides in elements. */
typedef struct {
    int32_t h, w, c;
    int32_t row_stride; /* elements between (y, x) and (y + 1, x) */
    int32_t col_stride; /* elements between (y, x) and (y, x + 1) */
} mt_view;

/* Padding per edge: rows/columns of the virtual input that lie outside the view. */
typedef struct {
    int32_t top, bottom, left, right;
} mt_pad;

typedef struct {
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* output zero point */
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    mt_pad pad;
    int32_t act_min, act_max; /* int8 clamp after requantization */
} mt_conv_params;

/* Per-output-channel requantization (TFLite MultiplyByQuantizedMultiplier). */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
} mt_pc_quant;

/* Filter dims: conv OHWI (n = out channels, h, w, c = in channels);
 * depthwise 1HW(C*M) (n = 1, c = out channels). */
typedef struct {
    int32_t n, h, w, c;
} mt_dims;

/* Convolution (symmetric int8 weights: filter zero point 0, as TFLite requires). Output pixel (oy, ox) of `out` reads input rows
 * oy*stride_h - pad.top + ky*dilation_h (and likewise columns) of `in`; rows or columns
 * outside [0, in->h) x [0, in->w) are padding and contribute nothing (TFLite semantics).
 * out->h, out->w give the number of output pixels to compute. */
mt_status mt_conv_s8(const mt_conv_params *p, const mt_pc_quant *q, const int8_t *in,
                     const mt_view *in_v, const int8_t *filter, const mt_dims *fd,
                     const int32_t *bias, int8_t *out, const mt_view *out_v, void *scratch);
int32_t mt_conv_s8_get_buffer_size(const mt_dims *fd, const mt_view *in_v);

/* Transposed convolution (TFLite TRANSPOSE_CONV, int8): filter OHWI, output pixel (oy, ox)
 * gathers input pixels iy = (oy + pad.top - ky) / stride_h (whole quotients inside the input),
 * likewise columns; conv2d's requantization. No scratch. */
mt_status mt_transpose_conv_s8(const mt_conv_params *p, const mt_pc_quant *q, const int8_t *in,
                               const mt_view *in_v, const int8_t *filter, const mt_dims *fd, const int32_t *bias,
                               int8_t *out, const mt_view *out_v);
mt_status mt_transpose_conv_s16(const mt_conv_params *p, const mt_pc_quant *q, const int16_t *in,
                                const mt_view *in_v, const int8_t *filter, const mt_dims *fd, const int64_t *bias,
                                int16_t *out, const mt_view *out_v);

/* 16x8 convolution (TFLite's int16 activations, zero point 0, with int8 symmetric weights):
 * the same views and padding as mt_conv_s8 (input_offset unused). bias64 (int64 accumulator,
 * 64-bit MultiplyByQuantizedMultiplier) or bias32 (int32 accumulator, the usual MBQM), at most
 * one of them; neither: the int64 path without bias. act_min/act_max: the int16 clamp. */
mt_status mt_conv_s16(const mt_conv_params *p, const mt_pc_quant *q, const int16_t *in, const mt_view *in_v,
                      const int8_t *filter, const mt_dims *fd, const int64_t *bias64, const int32_t *bias32,
                      int16_t *out, const mt_view *out_v);

/* Depthwise convolution with depth multiplier m: output channel oc reads input channel
 * oc / m. Out of place it needs no scratch (get_buffer_size returns 0). Called with
 * out == in it is mt_depthwise_conv_inplace_s8 (m = 1, stride 1, same strides), and then
 * `scratch` must hold mt_depthwise_conv_inplace_s8_get_buffer_size() bytes. */
mt_status mt_depthwise_conv_s8(const mt_conv_params *p, const mt_pc_quant *q, int32_t depth_multiplier,
                               const int8_t *in, const mt_view *in_v, const int8_t *filter,
                               const mt_dims *fd, const int32_t *bias, int8_t *out,
                               const mt_view *out_v, void *scratch);
int32_t mt_depthwise_conv_s8_get_buffer_size(const mt_dims *fd, const mt_view *in_v);
/* 16x8 depthwise convolution (int16 activations, zero point 0, int8 symmetric weights, int64
 * bias or none): the views and padding of mt_depthwise_conv_s8, out of place only. */
mt_status mt_depthwise_conv_s16(const mt_conv_params *p, const mt_pc_quant *q, int32_t depth_multiplier,
                                const int16_t *in, const mt_view *in_v, const int8_t *filter, const mt_dims *fd,
                                const int64_t *bias, int16_t *out, const mt_view *out_v);

/* In-place depthwise convolution: the output overwrites the input in `buf`; output pixel
 * (y, x) lands where input pixel (y, x) was. Depth multiplier 1, stride 1, any kernel,
 * dilation and padding; out_v has in_v's base, strides and channels and h, w <= in_v's.
 * Scratch: a ring of (pad.top + 1) output rows (0 bytes for a 1x1 kernel without padding). */
mt_status mt_depthwise_conv_inplace_s8(const mt_conv_params *p, const mt_pc_quant *q, int8_t *buf,
                                       const mt_view *in_v, const mt_view *out_v, const int8_t *filter,
                                       const mt_dims *fd, const int32_t *bias, void *scratch);
int32_t mt_depthwise_conv_inplace_s8_get_buffer_size(const mt_conv_params *p, const mt_dims *fd,
                                                     const mt_view *out_v);

/* Fully connected: out[b, o] over batches rows of `in` ([batches, in_features]),
 * filter [out_features, in_features]. Per-tensor quantization passes 1-element arrays and
 * per_channel = 0. */
typedef struct {
    int32_t input_offset;
    int32_t filter_offset; /* -filter zero point (0 for symmetric) */
    int32_t output_offset;
    int32_t act_min, act_max;
} mt_fc_params;
mt_status mt_fully_connected_s8(const mt_fc_params *p, const mt_pc_quant *q, int32_t per_channel,
                                const int8_t *in, int32_t batches, int32_t in_features,
                                const int8_t *filter, const int32_t *bias, int32_t out_features,
                                int8_t *out);
/* 16x8 fully connected: int16 in/out (zero point 0), int8 symmetric weights; bias64 (int64
 * accumulator) or bias32 (int32 accumulator), at most one; input_offset unused. */
mt_status mt_fully_connected_s16(const mt_fc_params *p, const mt_pc_quant *q, int32_t per_channel,
                                 const int16_t *in, int32_t batches, int32_t in_features, const int8_t *filter,
                                 const int64_t *bias64, const int32_t *bias32, int32_t out_features, int16_t *out);

/* Pooling over (kh, kw) windows; padding cells are excluded from both the max and the
 * average's count (TFLite semantics). */
typedef struct {
    int32_t kernel_h, kernel_w, stride_h, stride_w;
    mt_pad pad;
    int32_t act_min, act_max;
} mt_pool_params;
mt_status mt_avg_pool_s8(const mt_pool_params *p, const int8_t *in, const mt_view *in_v, int8_t *out,
                         const mt_view *out_v);
mt_status mt_max_pool_s8(const mt_pool_params *p, const int8_t *in, const mt_view *in_v, int8_t *out,
                         const mt_view *out_v);
mt_status mt_avg_pool_s16(const mt_pool_params *p, const int16_t *in, const mt_view *in_v, int16_t *out,
                          const mt_view *out_v);
mt_status mt_max_pool_s16(const mt_pool_params *p, const int16_t *in, const mt_view *in_v, int16_t *out,
                          const mt_view *out_v);

/* Elementwise add / mul with TFLite's int8 arithmetic. Broadcasting: the caller passes
 * up to 4-D shapes (NHWC) with strides of 0 for broadcast dimensions. */
typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} mt_add_params;
typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} mt_mul_params;
typedef struct {
    int32_t shape[4];   /* output shape */
    int32_t stride1[4]; /* element strides of input 1 per output dim (0 = broadcast) */
    int32_t stride2[4];
} mt_broadcast;
mt_status mt_add_s8(const mt_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int32_t size);
mt_status mt_add_broadcast_s8(const mt_add_params *p, const mt_broadcast *b, const int8_t *in1,
                              const int8_t *in2, int8_t *out);
mt_status mt_mul_s8(const mt_mul_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int32_t size);
mt_status mt_mul_broadcast_s8(const mt_mul_params *p, const mt_broadcast *b, const int8_t *in1,
                              const int8_t *in2, int8_t *out);
/* int16 ADD (left_shift 15, TFLM's general int16 path) and MUL, always in the broadcast form
 * (same shapes: the output's contiguous strides). */
mt_status mt_add_s16(const mt_add_params *p, const mt_broadcast *b, const int16_t *in1, const int16_t *in2,
                     int16_t *out);
mt_status mt_mul_s16(const mt_mul_params *p, const mt_broadcast *b, const int16_t *in1, const int16_t *in2,
                     int16_t *out);
/* SUB: ADD's parameters and rescaling, the second scaled input subtracted (int8: left shift
 * 20; int16: 15). MAXIMUM / MINIMUM of the raw int8 values (TFLite-Micro does not rescale). */
mt_status mt_sub_s8(const mt_add_params *p, const mt_broadcast *b, const int8_t *in1, const int8_t *in2,
                    int8_t *out);
mt_status mt_sub_s16(const mt_add_params *p, const mt_broadcast *b, const int16_t *in1, const int16_t *in2,
                     int16_t *out);
/* LEAKY_RELU (TFLite QuantizeLeakyRelu): out = z_y + MBQM(x - z_x) by the identity multiplier
 * for x >= z_x, by the alpha multiplier below; clamped to the output type. */
typedef struct {
    int32_t input_zp, output_zp;
    int32_t identity_multiplier, identity_shift;
    int32_t alpha_multiplier, alpha_shift;
} mt_leaky_relu_params;
mt_status mt_leaky_relu_s8(const mt_leaky_relu_params *p, const int8_t *in, int8_t *out, int32_t size);
mt_status mt_leaky_relu_s16(const mt_leaky_relu_params *p, const int16_t *in, int16_t *out, int32_t size);
/* GATHER with constant indices: out[o, i, :] = in[o, indices[i], :] over `outer` blocks of
 * axis_size x inner elements (TFLite-Micro reference, batch_dims 0). */
mt_status mt_gather_s8(const int8_t *in, int32_t outer, int32_t axis_size, int32_t inner, const int32_t *indices,
                       int32_t n_indices, int8_t *out);

/* RESIZE_NEAREST_NEIGHBOR (NHWC, batch 1): out[y, x, :] = in[y_map[y], x_map[x], :]; the maps
 * are TFLite's GetNearestNeighbor, computed by the compiler (compiler/core/lower.py). */
mt_status mt_resize_nearest_s8(const int8_t *in, const mt_view *in_v, const int32_t *y_map, const int32_t *x_map,
                               int8_t *out, const mt_view *out_v);
mt_status mt_resize_nearest_s16(const int16_t *in, const mt_view *in_v, const int32_t *y_map, const int32_t *x_map,
                                int16_t *out, const mt_view *out_v);
/* ABS (TFLite AbsEvalQuantized): out = clamp(z_y + |x - z_x|), the magnitude times
 * MBQM(multiplier, shift) when rescale != 0 (input and output scales differ). */
typedef struct {
    int32_t input_zp, output_zp, rescale, multiplier, shift;
} mt_abs_params;
mt_status mt_abs_s8(const mt_abs_params *p, const int8_t *in, int8_t *out, int32_t size);
mt_status mt_abs_s16(const mt_abs_params *p, const int16_t *in, int16_t *out, int32_t size);
mt_status mt_maximum_s8(const mt_broadcast *b, const int8_t *in1, const int8_t *in2, int8_t *out);
mt_status mt_minimum_s8(const mt_broadcast *b, const int8_t *in1, const int8_t *in2, int8_t *out);
mt_status mt_maximum_s16(const mt_broadcast *b, const int16_t *in1, const int16_t *in2, int16_t *out);
mt_status mt_minimum_s16(const mt_broadcast *b, const int16_t *in1, const int16_t *in2, int16_t *out);

/* Softmax along the last axis of [rows, depth] (output scale 1/256, zero point -128). */
typedef struct {
    int32_t input_multiplier, input_left_shift, diff_min;
} mt_softmax_params;
mt_status mt_softmax_s8(const mt_softmax_params *p, const int8_t *in, int32_t rows, int32_t depth, int8_t *out);

/* Logistic (output scale 1/256, zero point -128). */
typedef struct {
    int32_t input_zp, input_multiplier, input_left_shift, input_range_radius;
} mt_logistic_params;
mt_status mt_logistic_s8(const mt_logistic_params *p, const int8_t *in, int8_t *out, int32_t size);
/* Tanh (int8, output Q0.7 with zero point 0): the logistic's input parameters, gemmlowp tanh. */
mt_status mt_tanh_s8(const mt_logistic_params *p, const int8_t *in, int8_t *out, int32_t size);

/* Hard swish (TFLite's int16-internal arithmetic). */
typedef struct {
    int32_t input_zp, output_zp;
    int32_t output_multiplier; /* int16 fixed point */
    int32_t output_exponent;
    int32_t reluish_multiplier; /* int16 fixed point */
    int32_t reluish_exponent;
} mt_hard_swish_params;
mt_status mt_hard_swish_s8(const mt_hard_swish_params *p, const int8_t *in, int8_t *out, int32_t size);

/* Standalone ReLU family: out = clamp(output_zp + MBQM(in - input_zp)) or, when
 * rescale == 0, a plain clamp of the input (RELU6 in TFLite-Micro). */
typedef struct {
    int32_t rescale;
    int32_t input_zp, output_zp, output_multiplier, output_shift;
    int32_t act_min, act_max;
} mt_relu_params;
mt_status mt_relu_s8(const mt_relu_params *p, const int8_t *in, int8_t *out, int32_t size);
mt_status mt_relu_s16(const mt_relu_params *p, const int16_t *in, int16_t *out, int32_t size);

/* Mean over the H and W axes of an NHWC view (the global-average-pool form) or generally
 * over `count` elements per output: out[o] = clamp(MBQM(sum - input_zp*count) + output_zp). */
typedef struct {
    int32_t input_zp, output_zp, multiplier, shift;
} mt_mean_params;
mt_status mt_mean_hw_s8(const mt_mean_params *p, const int8_t *in, const mt_view *in_v, int8_t *out);
mt_status mt_mean_hw_s16(const mt_mean_params *p, const int16_t *in, const mt_view *in_v, int16_t *out);

/* Requantize int8 -> int8 (QUANTIZE between two int8 scales). */
typedef struct {
    int32_t input_zp, output_zp, multiplier, shift;
} mt_requantize_params;
mt_status mt_requantize_s8(const mt_requantize_params *p, const int8_t *in, int8_t *out, int32_t size);
/* The same across dtypes (QUANTIZE at uint8 model edges and around int16 layers); the result
 * is clamped to the output type's range. */
mt_status mt_requantize_u8_s8(const mt_requantize_params *p, const uint8_t *in, int8_t *out, int32_t size);
mt_status mt_requantize_s8_u8(const mt_requantize_params *p, const int8_t *in, uint8_t *out, int32_t size);
mt_status mt_requantize_s8_s16(const mt_requantize_params *p, const int8_t *in, int16_t *out, int32_t size);
mt_status mt_requantize_s16_s8(const mt_requantize_params *p, const int16_t *in, int8_t *out, int32_t size);
mt_status mt_requantize_s16(const mt_requantize_params *p, const int16_t *in, int16_t *out, int32_t size);

/* Zero-point padding of an NHWC tensor: copies `in` into the interior of `out` and fills
 * the border with pad_value. Spatial only: out_v->c == in_v->c and
 * out_v->h == pad->top + in_v->h + pad->bottom (likewise w). */
mt_status mt_pad_s8(const int8_t *in, const mt_view *in_v, int8_t *out, const mt_view *out_v,
                    const mt_pad *pad, int8_t pad_value);

/* Copies a view into another of the same extent (concatenation along any NHWC axis is a
 * sequence of copies into offset views of the output). */
mt_status mt_copy_s8(const int8_t *in, const mt_view *in_v, int8_t *out, const mt_view *out_v);

/* ---- transformer kernels ---- */

/* Integer-only LayerNorm over rows of `dim` values (arithmetic: compiler/core/lower.py,
 * _lower_layer_norm). gamma_q/beta_q: per-channel int32 in 2^(out_shift-16) / 2^out_shift. */
#define MT_LAYER_NORM_MAX_DIM 2048
typedef struct {
    int64_t eps_term; /* round(epsilon * dim^4 / input_scale^2) */
    int32_t dim;
    int32_t out_shift; /* 17..40 */
    int32_t output_zp;
} mt_layer_norm_params;
mt_status mt_layer_norm_s8(const mt_layer_norm_params *p, const int32_t *gamma_q, const int32_t *beta_q,
                           const int8_t *in, int32_t rows, int8_t *out);

/* out[i] = lut[in[i] + 128] (GELU: a table computed by the compiler from the float function). */
mt_status mt_lut_s8(const int8_t *lut, const int8_t *in, int8_t *out, int32_t size);

/* Batched matmul of two int8 activations, per-tensor quantization, int32 accumulation:
 * element (bt, i, kk) of A at a[bt*a_batch + i*a_row + kk], (bt, kk, j) of B at
 * b[bt*b_batch + kk*b_k + j*b_n], (bt, i, j) of Y at y[bt*y_batch + i*y_row + j]. */
typedef struct {
    int32_t a_offset, b_offset, output_offset; /* -zp_a, -zp_b, zp_y */
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} mt_bmm_params;
typedef struct {
    int32_t batches, m, k, n;
    int32_t a_batch, a_row;
    int32_t b_batch, b_k, b_n;
    int32_t y_batch, y_row;
} mt_bmm_dims;
mt_status mt_batch_matmul_s8(const mt_bmm_params *p, const mt_bmm_dims *d, const int8_t *a, const int8_t *b,
                             int8_t *y);
/* The same with Cortex-M DSP inner loops where B is contiguous along k (b_k == 1) or along n
 * (b_n == 1); bit-exact with mt_batch_matmul_s8, which it falls back to otherwise (and on
 * cores without the DSP extension). Scratch: mt_batch_matmul_s8_dsp_get_buffer_size(k) bytes,
 * 4-byte aligned (mt_batch_matmul_s8_dsp.c). */
mt_status mt_batch_matmul_s8_dsp(const mt_bmm_params *p, const mt_bmm_dims *d, const int8_t *a, const int8_t *b,
                                 int8_t *y, void *scratch);
int32_t mt_batch_matmul_s8_dsp_get_buffer_size(int32_t k);

/* 4-D strided copy: out[sum i_d*out_stride[d]] = in[sum i_d*in_stride[d]] over shape. */
typedef struct {
    int32_t shape[4];
    int32_t in_stride[4];
    int32_t out_stride[4];
} mt_strided;
mt_status mt_copy_strided_s8(const mt_strided *s, const int8_t *in, int8_t *out);
mt_status mt_copy_strided_s16(const mt_strided *s, const int16_t *in, int16_t *out);

/* UNIDIRECTIONAL_SEQUENCE_LSTM, int8 x int8 -> int16 cell state (TFLite-Micro's integer LSTM),
 * from the reset state (h = hidden_zp, c = 0) at every call. x: [batches, steps, input] (or
 * [steps, batches, input] when time_major), y: the same layout with `units`. Gates k = 0..3 are
 * input, forget, cell, output; weights in[k] [units, input] and rec[k] [units, units] (int8,
 * zero point 0); in_bias/rec_bias [units] with the activation zero points folded in
 * (compiler/core/lstm.py). Multipliers: FCs to Q3.12, fc = forget x cell, ig = input x cell gate,
 * h = tanh(cell) x output -> hidden; tanh_mult/shift scale the cell state into the int16 tanh
 * (TFLM's Tanh arguments: multiplier 0 = 3 << shift, shift <= 14; else a rounding right shift);
 * clip_on: clamp the cell to +-cell_clip. Scratch: mt_lstm_s8_get_buffer_size(units) bytes,
 * 2-byte aligned (one int16 cell row). */
typedef struct {
    int32_t in_mult[4], in_shift[4], rec_mult[4], rec_shift[4];
    int32_t fc_mult, fc_shift, ig_mult, ig_shift, h_mult, h_shift, hidden_zp;
    int32_t tanh_mult, tanh_shift, clip_on, cell_clip;
} mt_lstm_params;
typedef struct {
    int32_t batches, steps, input, units, time_major;
} mt_lstm_dims;
typedef struct {
    const int8_t *in[4];
    const int8_t *rec[4];
    const int32_t *in_bias[4];
    const int32_t *rec_bias[4];
} mt_lstm_weights;
mt_status mt_lstm_s8(const mt_lstm_params *p, const mt_lstm_dims *d, const int8_t *x, const mt_lstm_weights *w,
                     int8_t *y, void *scratch);
int32_t mt_lstm_s8_get_buffer_size(int32_t units);
/* ---- TFLite elementwise ops (TFLite-Micro's integer arithmetic; compiler/core/lower.py) ---- */

/* SQUARED_DIFFERENCE (int8: left_shift 7; int16: 0 and zero points 0) over a 4-D output with
 * per-input strides (0 = broadcast); ADD's parameter struct (compiler/core/lower.py). */
mt_status mt_squared_difference_s8(const mt_add_params *p, const mt_broadcast *b, const int8_t *in1,
                                   const int8_t *in2, int8_t *out);
mt_status mt_squared_difference_s16(const mt_add_params *p, const mt_broadcast *b, const int16_t *in1,
                                    const int16_t *in2, int16_t *out);
/* PRELU: input (int8 or int16) and int8 alpha broadcast over the 4-D output (stride1: the
 * input's, stride2: alpha's); out = z_y + (x >= z_x ? MBQM(x - z_x, m1, s1)
 * : MBQM((x - z_x)(alpha - z_a), m2, s2)), clamped to the output type. */
typedef struct {
    int32_t input_offset, alpha_offset, output_offset; /* -z_x, -z_a, z_y */
    int32_t output_multiplier_1, output_shift_1;     /* s_x / s_y */
    int32_t output_multiplier_2, output_shift_2;     /* s_x s_a / s_y */
} mt_prelu_params;
mt_status mt_prelu_s8(const mt_prelu_params *p, const mt_broadcast *b, const int8_t *in, const int8_t *alpha,
                      int8_t *out);
mt_status mt_prelu_s16(const mt_prelu_params *p, const mt_broadcast *b, const int16_t *in, const int8_t *alpha,
                       int16_t *out);
/* RSQRT int8: out[i] = lut[in[i] + 128] (TFLM's RsqrtEvalQuantized tabulated by the compiler);
 * MT_ERR_ARG when any input is below input_zp (a negative real value: TFLM's invoke fails). */
mt_status mt_rsqrt_s8(const int8_t *lut, int32_t input_zp, const int8_t *in, int8_t *out, int32_t size);
/* RSQRT int16 (zero points 0): v = x; v == 0 -> 32767; else the inverse square root of v
 * (GetInvSqrtQuantizedMultiplierExp) d = MBQM(1, m, s + 20), out = MBQM(d, multiplier,
 * shift - 20) + output_zp, clamped; MT_ERR_ARG when any input is below input_zp. */
typedef struct {
    int32_t input_zp, output_zp;
    int32_t multiplier, shift; /* 1 / (sqrt(s_x) s_y) */
} mt_rsqrt_params;
mt_status mt_rsqrt_s16(const mt_rsqrt_params *p, const int16_t *in, int16_t *out, int32_t size);
/* L2_NORMALIZATION int8 over rows of `depth` (the last axis), `outer` rows: out = x / ||x||
 * in 1/128 units, zero point 0 (TFLM reference_integer_ops::L2Normalization); depth <= 33025. */
mt_status mt_l2_norm_s8(int32_t input_zp, int32_t outer, int32_t depth, const int8_t *in, int8_t *out);
/* int16 LOGISTIC, TANH and SOFTMAX (TFLite-Micro's int16 kernels: zero points 0, output
 * Q0.15; tables in mt_lut16.h). LOGISTIC/TANH: input_multiplier <= 32767 and input_left_shift
 * from compiler/core/lower.py (multiplier 0: a power-of-two input scale, the kernel uses
 * 3 << input_left_shift); SOFTMAX: the MBQM of s_x * beta / (10 / 65535), along the last axis
 * of [rows, depth], depth <= 65535; `out` may be `in`. */
typedef struct {
    int32_t input_multiplier, input_left_shift;
} mt_lut16_params;
mt_status mt_logistic_s16(const mt_lut16_params *p, const int16_t *in, int16_t *out, int32_t size);
mt_status mt_tanh_s16(const mt_lut16_params *p, const int16_t *in, int16_t *out, int32_t size);
mt_status mt_softmax_s16(const mt_lut16_params *p, const int16_t *in, int32_t rows, int32_t depth, int16_t *out);
/* SOFTMAX int8 -> int16 (output scale 1/65536, zero point -32768): mt_softmax_s8's arithmetic
 * and parameters, 16 output bits. */
mt_status mt_softmax_s8_s16(const mt_softmax_params *p, const int8_t *in, int32_t rows, int32_t depth, int16_t *out);

/* SVDF, int8 input/output, int8 feature weights [units * rank][input_size], int16 time weights
 * [units * rank][memory], int32 bias [units] (or NULL), int16 state [batches][units * rank][memory]
 * updated in place (zeroed first when reset_state != 0: TFLM's first invoke); TFLite-Micro's
 * integer SVDF (no fused activation). No scratch (mt_svdf_s8.c). */
typedef struct {
    int32_t batches, input_size, units, rank, memory;
    int32_t input_zp, state_zp, output_zp;
    int32_t multiplier1, shift1, multiplier2, shift2;
} mt_svdf_params;
mt_status mt_svdf_s8(const mt_svdf_params *p, const int8_t *in, const int8_t *weights_feature,
                     const int16_t *weights_time, const int32_t *bias, int16_t *state, int32_t reset_state, int8_t *out);
/* The same with int8 time weights and an int8 state (reset to state_zp, as TFLM resets it). */
mt_status mt_svdf_state8_s8(const mt_svdf_params *p, const int8_t *in, const int8_t *weights_feature,
                            const int8_t *weights_time, const int32_t *bias, int8_t *state, int32_t reset_state,
                            int8_t *out);
/* ---- TFLite layout and reduction kernels (STRIDED_SLICE, DEPTH_TO_SPACE and SPACE_TO_DEPTH are
 * mt_copy_strided_s8/_s16 calls) ---- */

/* A reduction over any axes of a rank <= 4 tensor: the output elements walk the kept axes
 * (shape, element strides stride; reduced axes size 1), each reduces the rshape/rstride block
 * at its offset. Output contiguous, in the kept axes' order (keep_dims or not). */
typedef struct {
    int32_t shape[4], stride[4];
    int32_t rshape[4], rstride[4];
} mt_reduce_dims;
/* SUM: y = clamp(MBQM(sum - input_zp * count) + output_zp), int32 sums (count <= 65535). */
typedef struct {
    int32_t input_zp, output_zp, count, multiplier, shift;
} mt_reduce_params;
mt_status mt_reduce_sum_s8(const mt_reduce_params *p, const mt_reduce_dims *d, const int8_t *in, int8_t *out);
mt_status mt_reduce_sum_s16(const mt_reduce_params *p, const mt_reduce_dims *d, const int16_t *in, int16_t *out);
/* REDUCE_MAX: the largest raw value of each block (input and output quantized alike). */
mt_status mt_reduce_max_s8(const mt_reduce_dims *d, const int8_t *in, int8_t *out);

/* ARG_MAX (is_max != 0) / ARG_MIN of [outer, axis_size, inner]: out[o * inner + i] = the first
 * index along the axis of the largest (smallest) value, int32 (TFLite reference ArgMinMax). */
mt_status mt_arg_min_max_s8(const int8_t *in, int32_t outer, int32_t axis_size, int32_t inner, int32_t is_max,
                            int32_t *out);

/* RESIZE_BILINEAR (int8, NHWC views, batch 1; TFLite ResizeBilinearInteger): y_map[3*y..] and
 * x_map[3*x..] = (lower index, upper index, 10-bit fraction) per output row/column (computed by
 * the compiler); four int64 products in 2^20 units, rounded half away from zero. */
mt_status mt_resize_bilinear_s8(const int8_t *in, const mt_view *in_v, const int32_t *y_map, const int32_t *x_map,
                                int8_t *out, const mt_view *out_v);

/* BATCH_MATMUL int16 (TFLite 16x16, zero points 0): mt_batch_matmul_s8's addressing, int64
 * sums, the 64-bit MBQM (mt_mbqm64), clamp to [act_min, act_max]. */
mt_status mt_batch_matmul_s16(const mt_bmm_params *p, const mt_bmm_dims *d, const int16_t *a, const int16_t *b,
                              int16_t *y);

#ifdef __cplusplus
}
#endif

#endif /* MT_NN_H */
