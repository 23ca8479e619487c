/* Helpers shared by several kernel files of the portable library (not part of the API). */
#ifndef MT_INTERNAL_H
#define MT_INTERNAL_H

#include "mt_nn.h"
#include "mt_quant.h"

/* ADD and SUB (TFLite-Micro's reference arithmetic, int8 and int16 alike: both inputs rescaled to
 * a common scale after a left shift, summed (SUB: the second negated), rescaled to the output),
 * clamped to [act_min, act_max]; `sign` is +1 (ADD) or -1 (SUB). */
static inline int32_t mt_add_sub_one(const mt_add_params *p, int32_t a, int32_t b, int32_t sign)
{
    const int32_t sa = mt_mbqm_smaller_than_one(mt_shl_wrap32(a + p->input1_offset, p->left_shift),
                                                p->input1_multiplier, p->input1_shift);
    const int32_t sb = mt_mbqm_smaller_than_one(mt_shl_wrap32(b + p->input2_offset, p->left_shift),
                                                p->input2_multiplier, p->input2_shift);
    const int32_t raw = mt_mbqm_smaller_than_one(mt_wrap32((int64_t)sa + (int64_t)sign * sb), p->output_multiplier,
                                                 p->output_shift) + p->output_offset;
    return mt_clamp(raw, p->act_min, p->act_max);
}

/* One element of mt_add_s8 (TFLite int8 ADD). */
static inline int8_t mt_add_one_s8(const mt_add_params *p, int32_t a, int32_t b)
{
    return (int8_t)mt_add_sub_one(p, a, b, 1);
}

/* MUL (int8 and int16 alike): the offset inputs' product rescaled to the output, clamped. */
static inline int32_t mt_mul_one(const mt_mul_params *p, int32_t a, int32_t b)
{
    const int32_t prod = (a + p->input1_offset) * (b + p->input2_offset);
    const int32_t raw = mt_mbqm(prod, p->output_multiplier, p->output_shift) + p->output_offset;
    return mt_clamp(raw, p->act_min, p->act_max);
}

/* One element of mt_mul_s8 (TFLite int8 MUL). */
static inline int8_t mt_mul_one_s8(const mt_mul_params *p, int32_t a, int32_t b)
{
    return (int8_t)mt_mul_one(p, a, b);
}

/* The 4-D broadcast walk of the binary elementwise kernels: for every output element, in output
 * order, X1 and X2 (int32_t) hold the two inputs' values (per-input element strides of `b`, 0 =
 * broadcast) and out[k] = EXPR. */
#define MT_BROADCAST_EACH(b, in1, in2, out, X1, X2, EXPR)                                              \
    do {                                                                                               \
        int32_t mt_o_ = 0;                                                                             \
        for (int32_t mt_i0_ = 0; mt_i0_ < (b)->shape[0]; ++mt_i0_) {                                   \
            for (int32_t mt_i1_ = 0; mt_i1_ < (b)->shape[1]; ++mt_i1_) {                               \
                for (int32_t mt_i2_ = 0; mt_i2_ < (b)->shape[2]; ++mt_i2_) {                           \
                    const int32_t mt_b1_ = mt_i0_ * (b)->stride1[0] + mt_i1_ * (b)->stride1[1] +       \
                                           mt_i2_ * (b)->stride1[2];                                   \
                    const int32_t mt_b2_ = mt_i0_ * (b)->stride2[0] + mt_i1_ * (b)->stride2[1] +       \
                                           mt_i2_ * (b)->stride2[2];                                   \
                    for (int32_t mt_i3_ = 0; mt_i3_ < (b)->shape[3]; ++mt_i3_) {                       \
                        const int32_t X1 = (in1)[mt_b1_ + mt_i3_ * (b)->stride1[3]];                   \
                        const int32_t X2 = (in2)[mt_b2_ + mt_i3_ * (b)->stride2[3]];                   \
                        (out)[mt_o_++] = (EXPR);                                                       \
                    }                                                                                  \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    } while (0)

/* The body of mt_copy_strided_s8/_s16 for elements of type T: argument checks, then the 4-D
 * strided copy (element strides, int64 offsets); returns from the enclosing kernel. */
#define MT_COPY_STRIDED_BODY(T, s, in, out)                                                              \
    do {                                                                                               \
        if ((s) == 0 || (in) == 0 || (out) == 0) {                                                     \
            return MT_ERR_ARG;                                                                         \
        }                                                                                              \
        for (int32_t mt_d_ = 0; mt_d_ < 4; ++mt_d_) {                                                  \
            if ((s)->shape[mt_d_] < 0) {                                                               \
                return MT_ERR_ARG;                                                                     \
            }                                                                                          \
        }                                                                                              \
        for (int32_t mt_i0_ = 0; mt_i0_ < (s)->shape[0]; ++mt_i0_) {                                   \
            for (int32_t mt_i1_ = 0; mt_i1_ < (s)->shape[1]; ++mt_i1_) {                               \
                const T *mt_src_ = (in) + (int64_t)mt_i0_ * (s)->in_stride[0] + (int64_t)mt_i1_ * (s)->in_stride[1]; \
                T *mt_dst_ = (out) + (int64_t)mt_i0_ * (s)->out_stride[0] + (int64_t)mt_i1_ * (s)->out_stride[1]; \
                for (int32_t mt_i2_ = 0; mt_i2_ < (s)->shape[2]; ++mt_i2_) {                           \
                    const T *mt_sr_ = mt_src_ + (int64_t)mt_i2_ * (s)->in_stride[2];                   \
                    T *mt_dr_ = mt_dst_ + (int64_t)mt_i2_ * (s)->out_stride[2];                        \
                    for (int32_t mt_i3_ = 0; mt_i3_ < (s)->shape[3]; ++mt_i3_) {                       \
                        mt_dr_[(int64_t)mt_i3_ * (s)->out_stride[3]] = mt_sr_[(int64_t)mt_i3_ * (s)->in_stride[3]]; \
                    }                                                                                  \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
        return MT_OK;                                                                                  \
    } while (0)

/* The body of mt_resize_nearest_s8/_s16 for elements of type T: every output pixel copies the
 * input pixel (y_map[y], x_map[x]) of an NHWC view; returns from the enclosing kernel. */
#define MT_RESIZE_NEAREST_BODY(T, in, in_v, y_map, x_map, out, out_v)                                    \
    do {                                                                                               \
        if ((in) == 0 || (in_v) == 0 || (y_map) == 0 || (x_map) == 0 || (out) == 0 || (out_v) == 0 ||   \
            (in_v)->c != (out_v)->c) {                                                                 \
            return MT_ERR_ARG;                                                                         \
        }                                                                                              \
        for (int32_t mt_y_ = 0; mt_y_ < (out_v)->h; ++mt_y_) {                                         \
            if ((y_map)[mt_y_] < 0 || (y_map)[mt_y_] >= (in_v)->h) {                                   \
                return MT_ERR_ARG;                                                                     \
            }                                                                                          \
            for (int32_t mt_x_ = 0; mt_x_ < (out_v)->w; ++mt_x_) {                                     \
                if ((x_map)[mt_x_] < 0 || (x_map)[mt_x_] >= (in_v)->w) {                               \
                    return MT_ERR_ARG;                                                                 \
                }                                                                                      \
                const T *mt_src_ = (in) + (y_map)[mt_y_] * (in_v)->row_stride + (x_map)[mt_x_] * (in_v)->col_stride; \
                T *mt_dst_ = (out) + mt_y_ * (out_v)->row_stride + mt_x_ * (out_v)->col_stride;        \
                for (int32_t mt_c_ = 0; mt_c_ < (in_v)->c; ++mt_c_) {                                  \
                    mt_dst_[mt_c_] = mt_src_[mt_c_];                                                   \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
        return MT_OK;                                                                                  \
    } while (0)

/* The body of mt_reduce_sum_s8/_s16 (TFLite SUM, reference_ops::QuantizedMeanOrSum with
 * compute_sum): per output element (in output order) the int32 sum of its inputs, less
 * input_zp * count, MBQM, + output_zp, clamped to [LO, HI]; returns from the enclosing kernel. */
#define MT_REDUCE_SUM_BODY(T, LO, HI, p, d, in, out)                                                \
    do {                                                                                            \
        if ((p) == 0 || (d) == 0 || (in) == 0 || (out) == 0) {                                      \
            return MT_ERR_ARG;                                                                      \
        }                                                                                           \
        int32_t mt_o_ = 0;                                                                          \
        MT_REDUCE_EACH(d, mt_base_, {                                                               \
            int32_t mt_acc_ = 0;                                                                    \
            MT_REDUCE_INNER(d, mt_base_, mt_k_, mt_acc_ += (int32_t)(in)[mt_k_]);                   \
            const int32_t mt_v_ = mt_mbqm(mt_acc_ - (p)->input_zp * (p)->count, (p)->multiplier, (p)->shift); \
            (out)[mt_o_++] = (T)mt_clamp(mt_v_ + (p)->output_zp, (LO), (HI));                       \
        });                                                                                         \
        return MT_OK;                                                                               \
    } while (0)

/* For every output element of a reduction (kept axes d->shape, element strides d->stride, in
 * output order): BASE (int32_t: tensors hold < 2^24 elements) is the input offset of its first
 * element; then BLOCK. */
#define MT_REDUCE_EACH(d, BASE, BLOCK)                                                              \
    for (int32_t mt_a0_ = 0; mt_a0_ < (d)->shape[0]; ++mt_a0_) {                                    \
        for (int32_t mt_a1_ = 0; mt_a1_ < (d)->shape[1]; ++mt_a1_) {                                \
            for (int32_t mt_a2_ = 0; mt_a2_ < (d)->shape[2]; ++mt_a2_) {                            \
                for (int32_t mt_a3_ = 0; mt_a3_ < (d)->shape[3]; ++mt_a3_) {                        \
                    const int32_t BASE = mt_a0_ * (d)->stride[0] + mt_a1_ * (d)->stride[1] +        \
                                         mt_a2_ * (d)->stride[2] + mt_a3_ * (d)->stride[3];         \
                    BLOCK                                                                           \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }

/* For every input element reduced into the output element at BASE: K (int32_t) is its offset;
 * then STMT (reduced axes d->rshape, element strides d->rstride; offsets built outer to inner). */
#define MT_REDUCE_INNER(d, BASE, K, STMT)                                                           \
    for (int32_t mt_r0_ = 0; mt_r0_ < (d)->rshape[0]; ++mt_r0_) {                                   \
        const int32_t mt_k0_ = (BASE) + mt_r0_ * (d)->rstride[0];                                   \
        for (int32_t mt_r1_ = 0; mt_r1_ < (d)->rshape[1]; ++mt_r1_) {                               \
            const int32_t mt_k1_ = mt_k0_ + mt_r1_ * (d)->rstride[1];                               \
            for (int32_t mt_r2_ = 0; mt_r2_ < (d)->rshape[2]; ++mt_r2_) {                           \
                const int32_t mt_k2_ = mt_k1_ + mt_r2_ * (d)->rstride[2];                           \
                for (int32_t mt_r3_ = 0; mt_r3_ < (d)->rshape[3]; ++mt_r3_) {                       \
                    const int32_t K = mt_k2_ + mt_r3_ * (d)->rstride[3];                            \
                    STMT;                                                                           \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }

/* One output pixel of a depthwise convolution, all output channels, into o[0 .. fd->c)
 * (defined in mt_depthwise_conv_s8.c, shared with the in-place kernel). */
void mt_depthwise_conv_pixel_s8(const mt_conv_params *p, const mt_pc_quant *q, int32_t m,
                                const int8_t *in, const mt_view *in_v, const int8_t *filter,
                                const mt_dims *fd, const int32_t *bias, int32_t oy, int32_t ox, int8_t *o);

/* SQUARED_DIFFERENCE (TFLite-Micro squared_difference.cc, int8 and int16 alike; ADD's parameter
 * struct): both inputs shifted left by left_shift and rescaled (smaller than one), the
 * difference squared in int32, rescaled to the output, clamped to [act_min, act_max]. */
static inline int32_t mt_squared_difference_one(const mt_add_params *p, int32_t a, int32_t b)
{
    const int32_t sa = mt_mbqm_smaller_than_one((a + p->input1_offset) * (1 << p->left_shift), p->input1_multiplier,
                                                p->input1_shift);
    const int32_t sb = mt_mbqm_smaller_than_one((b + p->input2_offset) * (1 << p->left_shift), p->input2_multiplier,
                                                p->input2_shift);
    const int32_t d = sa - sb; /* |d| <= 2^15: the square fits int32 */
    const int32_t raw = mt_mbqm(d * d, p->output_multiplier, p->output_shift) + p->output_offset;
    return mt_clamp(raw, p->act_min, p->act_max);
}

/* PRELU (TFLite-Micro reference_ops::BroadcastPrelu4DSlow): v = x - z_x; v >= 0 rescaled by
 * multiplier 1, else v * (alpha - z_a) by multiplier 2; + z_y (the caller clamps). */
static inline int32_t mt_prelu_one(const mt_prelu_params *p, int32_t x, int32_t alpha)
{
    const int32_t v = x + p->input_offset;
    const int32_t r = v >= 0 ? mt_mbqm(v, p->output_multiplier_1, p->output_shift_1)
                             : mt_mbqm(v * (alpha + p->alpha_offset), p->output_multiplier_2, p->output_shift_2);
    return r + p->output_offset;
}

/* TFLite GetInvSqrtQuantizedMultiplierExp (kernels/internal/common.h) for x >= 0:
 * 1/sqrt(x) ~= *multiplier / 2^31 * 2^*shift (shift as mt_mbqm takes it); x <= 1 gives
 * (INT32_MAX, 0). Five Newton-Raphson steps in gemmlowp Q3.28 from 1.0, times sqrt(2)/2. */
static inline void mt_inv_sqrt_multiplier_exp(int32_t x, int32_t *multiplier, int32_t *shift)
{
    if (x <= 1) {
        *multiplier = MT_INT32_MAX;
        *shift = 0;
        return;
    }
    int32_t s = 11;
    while (x >= (1 << 29)) {
        x /= 4;
        ++s;
    }
    const int32_t pairs = (mt_clz32((uint32_t)x) - 1) / 2 - 1;
    s -= pairs;
    x <<= 2 * pairs;
    const int32_t half_input = mt_rdbypot(x >> 1, 1);
    const int32_t half_three = (1 << 28) + (1 << 27);
    int32_t r = 1 << 28; /* 1.0 in Q3.28 */
    for (int32_t i = 0; i < 5; ++i) {
        const int32_t r3 = mt_rescale(mt_srdhm(mt_srdhm(r, r), r), 9, 3);
        r = mt_rescale(mt_wrap32((int64_t)mt_srdhm(half_three, r) - mt_srdhm(half_input, r3)), 6, 3);
    }
    r = mt_srdhm(r, 1518500250); /* sqrt(2)/2 in Q0.31 */
    if (s < 0) {
        r = mt_shl_wrap32(r, -s);
        s = 0;
    }
    *multiplier = r;
    *shift = -s;
}

/* gemmlowp exp (5 integer bits) of one int8 difference to its row maximum, scaled by beta
 * (mt_softmax_params), for the int8-input SOFTMAX kernels. */
static inline int32_t mt_softmax_s8_exp(const mt_softmax_params *p, int32_t diff)
{
    return mt_exp_on_negative_values(mt_mbqm_greater_than_one(diff, p->input_multiplier, p->input_left_shift), 5);
}

/* The body of mt_softmax_s8 (out_bits 8, out8) and mt_softmax_s8_s16 (out_bits 16, out16):
 * TFLite-Micro reference_ops::Softmax<int8_t, OutputT> along the last axis of [rows, depth]:
 * the sum of the row's exps in Q12 (int32, wrapping), its reciprocal by Newton-Raphson, each
 * exp times it rounded to out_bits bits with zero point -2^(out_bits - 1); differences below
 * diff_min give the zero point. TFLM checks 0 <= exponent <= 31; exponent < 0 (16-bit output, a
 * sum wrapped past int32) is refused, exponent 32..35 (8-bit output, >= 512 exps near 1)
 * computed as compiler/golden/reference.py does. */
static inline mt_status mt_softmax_s8_rows(const mt_softmax_params *p, const int8_t *in, int32_t rows, int32_t depth,
                                           int32_t out_bits, int8_t *out8, int16_t *out16)
{
    if (p == 0 || in == 0 || (out_bits == 8 ? out8 == 0 : out16 == 0) || rows < 0 || depth < 1) {
        return MT_ERR_ARG;
    }
    const int32_t lo = -(1 << (out_bits - 1)), hi = (1 << (out_bits - 1)) - 1;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = in + r * depth;
        int32_t max_v = -128;
        for (int32_t i = 0; i < depth; ++i) {
            max_v = x[i] > max_v ? x[i] : max_v;
        }
        uint32_t sum = 0; /* wraps like the reference's int32 sum */
        for (int32_t i = 0; i < depth; ++i) {
            const int32_t diff = x[i] - max_v;
            if (diff >= p->diff_min) {
                sum += (uint32_t)mt_rescale(mt_softmax_s8_exp(p, diff), 0, 12);
            }
        }
        int32_t num_bits_over_unit = 0;
        const int32_t shifted_scale = mt_get_reciprocal(mt_wrap32((int64_t)sum), 12, &num_bits_over_unit);
        const int32_t exponent = num_bits_over_unit + 31 - out_bits;
        if (exponent < 0) {
            return MT_ERR_ARG;
        }
        for (int32_t i = 0; i < depth; ++i) {
            const int32_t diff = x[i] - max_v;
            int32_t v = lo;
            if (diff >= p->diff_min) {
                v = mt_clamp(mt_rdbypot(mt_srdhm(shifted_scale, mt_softmax_s8_exp(p, diff)), exponent) + lo, lo, hi);
            }
            if (out_bits == 8) {
                out8[r * depth + i] = (int8_t)v;
            } else {
                out16[r * depth + i] = (int16_t)v;
            }
        }
    }
    return MT_OK;
}

#endif /* MT_INTERNAL_H */
