/* microtile fast kernels: Cortex-M DSP (SMLAD) variants of the convolution, depthwise and
 * fully-connected kernels of mt_nn.h, bit-exact with them.
 *
 * Naming: mt_<op>[_variant]_s8_dsp, each with mt_<...>_get_buffer_size() for its scratch.
 * The SIMD paths compile where __ARM_FEATURE_DSP is defined (and on hosts with
 * MT_EMULATE_ACLE, for tests); elsewhere the same functions run portable C over the same
 * packed data, so a project builds for any target.
 *
 * The compiler prepares, offline, what these kernels read (codegen/kernels.py):
 *  - the input offset folded into the bias: bias' = bias + input_offset * sum(filter), so
 *    the inner loops are pure int8 x int8 dot products; padding reads the input zero point,
 *    which cancels the fold exactly as TFLite's "padding contributes nothing";
 *  - per output channel an mt_fast_quant record (bias', multiplier, shifts) that makes the
 *    double-rounding requantization plus the output zero point 4-5 instructions (LSL,
 *    SMMLAR, ADD, ASR, then SSAT; valid for the accumulator bound the compiler checked,
 *    otherwise it keeps the portable kernel);
 *  - the filter in the order the kernel reads it, as int8 (wide = 0) or pre-widened to
 *    int16 pairs (wide = 1: twice the flash, no SXTB16 in the inner loop).
 *
 * Views and per-edge padding follow mt_nn.h exactly, so patch-based plans call these
 * kernels on sub-windows like the portable ones.
 *
 * Packed filter layouts ("group" = 4 consecutive reduction values k0..k3; the reduction
 * index of conv is (ky * kw + kx) * in_ch + ic, zero-padded to a multiple of 4):
 *   narrow group: the 4 int8 in order;  wide group: two int32 words (k0 | k2 << 16),
 *   (k1 | k3 << 16) (int16 halves).
 *  - conv / conv_1x1: output channels in pairs (odd counts padded with a zero channel);
 *    per pair, per group: channel 2j's group, then channel 2j+1's. General conv with in_ch
 *    not a multiple of 4 (kernel-row order): with a kernel row of R = kw * in_ch values
 *    (kx, ic), the reduction runs over each row's first 4 * (R / 4) values, row by row, then
 *    over the rows' last R % 4 values, row by row, zero-padded to a whole group (e.g. 3x3x3:
 *    rows 0..2 values 0..7, then (row 0, 8), (row 1, 8), (row 2, 8), 0: still 7 groups).
 *  - fully connected: output rows in fours (padded with zero rows); per four, per group:
 *    the group of row 4j, 4j+1, 4j+2, 4j+3.
 *  - depthwise (depth multiplier 1): channels in fours (padded with zero channels); per
 *    four, per tap (ky, kx): the group of the four channels' weights.
 *
 * Paired int8 form (wide = MT_FILTER_S8_PAIRED; conv, conv_1x1, fully connected): the same
 * bytes as the int8 form, but the two channels a, b of a pair share each group as two words
 * [a0, b0', a2, b2'], [a1, b1', a3, b3'] with b' = b - (a < 0 ? 1 : 0). Then each halfword
 * read as int16 is exactly a + 256 b, so one SMLAD of a widened input word against the raw
 * word accumulates A1 = S_a + 256 S_b (4 MACs), and one against SXTB16 of it (bytes 0, 2:
 * channel a) A2 = S_a: one SXTB16 per 4 weights instead of two. Both start at bias_a;
 * S_b = (A1 - A2) >> 8 exactly when |S_b| < 2^23 (the compiler checks 128 sum|w_b| < 2^23
 * and that b' fits int8, else it packs the plain int8 form). Fully connected: rows in fours
 * = two pairs (4j, 4j+1), (4j+2, 4j+3); per group the first pair's two words, then the
 * second's.
 */
#ifndef MT_NN_FAST_H
#define MT_NN_FAST_H

#include <stdint.h>

#include "mt_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per output channel (20 bytes; one LDM on the core). */
typedef struct {
    int32_t bias;   /* bias + input_offset * sum(filter), wrapped to int32 */
    int32_t mult;   /* quantized multiplier (0 when the output is always 0) */
    int32_t lshift; /* TFLite left shift + 1 */
    int32_t rnd;    /* 2^(e-1) + output_zp * 2^e, e = TFLite right shift >= 1 (add: 1 << e) */
    int32_t rshift; /* e (add: e + 1); constant channels: mult 0, rnd 2c + 1, rshift 1 */
} mt_fast_quant;

typedef struct {
    int32_t input_zp; /* the value padding reads (-input_offset) */
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    mt_pad pad;
    int32_t wide; /* filter form: MT_FILTER_S8 (0), MT_FILTER_S16 (1), MT_FILTER_S8_PAIRED (2) */
} mt_fast_params;

/* Filter forms (mt_fast_params.wide). S8_PAIRED: conv and fully connected only, same
 * bytes as S8; see the layouts above. */
#define MT_FILTER_S8 0
#define MT_FILTER_S16 1
#define MT_FILTER_S8_PAIRED 2

/* 1x1 convolution (any stride, padding allowed), filter dims {out_ch, 1, 1, in_ch}.
 * Scratch: mt_conv_1x1_s8_dsp_get_buffer_size(fd) bytes, 4-byte aligned. */
mt_status mt_conv_1x1_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                             const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                             const mt_view *out_v, void *scratch);
int32_t mt_conv_1x1_s8_dsp_get_buffer_size(const mt_dims *fd);

/* General convolution (im2col of two output pixels into int16 scratch + the same matrix
 * core), any kernel, stride, dilation, padding. Scratch: _get_buffer_size(fd) bytes. */
mt_status mt_conv_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                         const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                         const mt_view *out_v, void *scratch);
int32_t mt_conv_s8_dsp_get_buffer_size(const mt_dims *fd);

/* Depthwise convolution, depth multiplier 1, any kernel, stride, dilation, padding
 * (out of place); filter dims {1, kh, kw, ch}. Four channels per step (SMLABB/SMLATT).
 * No scratch (get_buffer_size returns 0). */
mt_status mt_depthwise_conv_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                                   const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                                   const mt_view *out_v, void *scratch);
int32_t mt_depthwise_conv_s8_dsp_get_buffer_size(const mt_dims *fd);

/* Depthwise 3x3, depth multiplier 1, dilation 1, stride_w 1 or 2 (any stride_h, padding,
 * views; out of place): channel-planar int16 rows and row-sliding SMLAD with the weights in
 * registers (mt_depthwise_conv_3x3_s8_dsp.c). Filter: per channel 5 int32 words of doubled
 * weights (w00 | w01 << 16), (w10 | w11 << 16), (w20 | w21 << 16), (w02 | w12 << 16), w22;
 * records as above (live channels have lshift 1, which the doubling applies).
 * Scratch: mt_depthwise_conv_3x3_s8_dsp_get_buffer_size(out_w, stride_w) bytes. */
mt_status mt_depthwise_conv_3x3_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                                       const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                                       const mt_view *out_v, void *scratch);
int32_t mt_depthwise_conv_3x3_s8_dsp_get_buffer_size(int32_t out_w, int32_t stride_w);

/* The same transposed, for tall narrow layers (kws: 25 x 5), where the per-row setup of the
 * row kernel dominates: it runs along columns (views and padding read transposed), one
 * channel at a time (the row MAC into 32 accumulators on the stack, 128 bytes, then the
 * requantization). stride_h 1 or 2 (any stride_w). Filter: pack_dw3x3 of the transposed kernel (w[kx][ky]); same records.
 * Scratch: mt_depthwise_conv_3x3_cols_s8_dsp_get_buffer_size(out_h, stride_h) bytes. */
mt_status mt_depthwise_conv_3x3_cols_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                                            const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                                            const mt_view *out_v, void *scratch);
int32_t mt_depthwise_conv_3x3_cols_s8_dsp_get_buffer_size(int32_t out_h, int32_t stride_h);

/* The same for small layers (the plane variant, mt_depthwise_conv_3x3_s8_dsp.c): per group
 * of 4 channels the whole padded input plane is widened once, then each channel runs all its
 * output rows with no per-row setup. stride_w 1 or 2 (any stride_h). Same filter and
 * records as above. Scratch: mt_depthwise_conv_3x3_plane_s8_dsp_get_buffer_size(out_h,
 * out_w, stride_h, stride_w) bytes. */
mt_status mt_depthwise_conv_3x3_plane_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                                             const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                                             const mt_view *out_v, void *scratch);
int32_t mt_depthwise_conv_3x3_plane_s8_dsp_get_buffer_size(int32_t out_h, int32_t out_w, int32_t stride_h,
                                                           int32_t stride_w);

/* Fully connected, symmetric weights (filter zero point 0), q per output row (per-tensor
 * layers repeat the record). Four rows per step. Scratch: one widened input row. */
mt_status mt_fully_connected_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                                    int32_t batches, int32_t in_features, const void *filter,
                                    int32_t out_features, int8_t *out, void *scratch);
int32_t mt_fully_connected_s8_dsp_get_buffer_size(int32_t in_features);

/* Elementwise int8 add (same shapes), TFLite arithmetic: each input (x + offset) << left
 * is rescaled with its record, the sum with the output record (records as mt_fast_quant,
 * bias unused; lshift of the inputs = left_shift + 1, of the output = 1). Exact because
 * |(x + offset) << 20| < 2^28. */
typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t act_min, act_max;
    mt_fast_quant q1, q2, qo;
} mt_add_fast_params;
mt_status mt_add_s8_dsp(const mt_add_fast_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                        int32_t size);

/* 16x8 (int16 activations, zero point 0; int8 symmetric weights read as in the model, OHWI /
 * 1HWC / [out, in]): the arguments of mt_conv_s16 / mt_depthwise_conv_s16 /
 * mt_fully_connected_s16 (mt_nn.h) plus scratch, and their bytes for every input. SMLAD over
 * int16 pairs and SXTB16-widened weights into int32 partials flushed into int64 before they can
 * overflow (the bound is proved in each file); the requantization gives the portable kernels'
 * values for every input (mt_s16_dsp.h).
 * Without the DSP extension they run the portable kernels. */
mt_status mt_conv_s16_dsp(const mt_conv_params *p, const mt_pc_quant *q, const int16_t *in, const mt_view *in_v,
                          const int8_t *filter, const mt_dims *fd, const int64_t *bias64, const int32_t *bias32,
                          int16_t *out, const mt_view *out_v, void *scratch);
int32_t mt_conv_s16_dsp_get_buffer_size(const mt_dims *fd);
/* Depth multiplier 1 and at most 511 taps (else mt_depthwise_conv_s16); no scratch. */
mt_status mt_depthwise_conv_s16_dsp(const mt_conv_params *p, const mt_pc_quant *q, int32_t depth_multiplier,
                                    const int16_t *in, const mt_view *in_v, const int8_t *filter, const mt_dims *fd,
                                    const int64_t *bias, int16_t *out, const mt_view *out_v);
int32_t mt_depthwise_conv_s16_dsp_get_buffer_size(const mt_dims *fd);
mt_status mt_fully_connected_s16_dsp(const mt_fc_params *p, const mt_pc_quant *q, int32_t per_channel,
                                     const int16_t *in, int32_t batches, int32_t in_features, const int8_t *filter,
                                     const int64_t *bias64, const int32_t *bias32, int32_t out_features, int16_t *out,
                                     void *scratch);
int32_t mt_fully_connected_s16_dsp_get_buffer_size(int32_t in_features);

#ifdef __cplusplus
}
#endif

#endif /* MT_NN_FAST_H */
