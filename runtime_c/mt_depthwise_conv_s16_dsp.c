/* mt_depthwise_conv_s16_dsp: 16x8 depthwise convolution (mt_depthwise_conv_s16's arguments and
 * bytes) with the Cortex-M DSP extension, depth multiplier 1: four channels per step, the int16
 * activations of channels (c, c+1) and (c+2, c+3) read as two words, the tap's four int8 weights
 * as one word widened by SXTB16 into (w_c, w_c+2) and (w_c+1, w_c+3), then SMLABB / SMLATB /
 * SMLABT / SMLATT into four int32 accumulators. No scratch.
 *
 * Exactness for all inputs: each product |x * w| <= 2^22 and a channel's accumulator takes one
 * product per tap, so with at most 511 taps |sum| <= 511 * 2^22 = 2,143,289,344 < 2^31 - 1: the
 * int32 sum is the exact int64 sum of mt_depthwise_conv_s16, and its requantization (mt_mbqm64 of
 * sum + bias) is computed as one SMLAL onto a per-channel constant holding the bias
 * (mt_s16_rqb_apply, mt_s16_dsp.h; mt_mbqm64 itself for |bias| >= 2^46), the same value.
 * Four channels at a time run over every pixel, their records prepared once. Larger kernels, a
 * depth multiplier other than 1, or a build without the DSP extension run mt_depthwise_conv_s16.
 * Technique after CMSIS-NN's arm_depthwise_conv_s16 (own code).
 */
#include "mt_simd.h"
#include "mt_s16_dsp.h"

#define MT_DW_S16_MAX_TAPS 511 /* 511 * 2^22 < 2^31 */

int32_t mt_depthwise_conv_s16_dsp_get_buffer_size(const mt_dims *fd)
{
    (void)fd;
    return 0;
}

#if MT_SIMD
/* One tap of four channels: activations (c, c+1), (c+2, c+3) as two words, the four weights as one
 * word widened by SXTB16 into (w0, w2), (w1, w3); into a0..a3 of the caller. */
#define MT_DW_S16_TAP(xp, wp)                                                        \
    do {                                                                             \
        const int32_t x01_ = read_s16x2(xp), x23_ = read_s16x2((xp) + 2);            \
        const int32_t v_ = mt_read_s8x4(wp);                                         \
        const int32_t wl_ = mt_sxtb16(v_), wh_ = mt_sxtb16_ror8(v_);                 \
        a0 = __smlabb(x01_, wl_, a0);                                                \
        a1 = __smlatb(x01_, wh_, a1);                                                \
        a2 = __smlabt(x23_, wl_, a2);                                                \
        a3 = __smlatt(x23_, wh_, a3);                                                \
    } while (0)

/* First and one-past-last kernel index k with 0 <= base + k * d < size, within [0, n). */
static inline void valid_range(int32_t base, int32_t d, int32_t size, int32_t n, int32_t *k0, int32_t *k1)
{
    int32_t lo = base >= 0 ? 0 : (-base + d - 1) / d;
    int32_t hi = base > size - 1 ? 0 : (size - 1 - base) / d + 1;
    *k0 = lo;
    *k1 = hi < n ? hi : n;
}

MT_INLINE int32_t read_s16x2(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* mt_depthwise_conv_s16's requantization of the exact int32 sum of channel oc. */
MT_INLINE int16_t requant(int32_t acc, int32_t oc, const mt_conv_params *p, const mt_pc_quant *q,
                          const int64_t *bias)
{
    const mt_s16_rqb r = mt_s16_rqb_of(q->multiplier[oc], q->shift[oc], bias != 0 ? bias[oc] : 0);
    const int32_t v = mt_s16_rqb_apply(acc, &r) + p->output_offset;
    return (int16_t)mt_clamp(v, p->act_min, p->act_max);
}
#endif

mt_status mt_depthwise_conv_s16_dsp(const mt_conv_params *p, const mt_pc_quant *q, int32_t depth_multiplier,
                                    const int16_t *in, const mt_view *in_v, const int8_t *filter, const mt_dims *fd,
                                    const int64_t *bias, int16_t *out, const mt_view *out_v)
{
#if MT_SIMD
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        depth_multiplier < 1 || fd->c != in_v->c * depth_multiplier || fd->c != out_v->c || p->stride_h < 1 ||
        p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1) {
        return MT_ERR_ARG;
    }
    if (depth_multiplier != 1 || fd->h * fd->w > MT_DW_S16_MAX_TAPS) {
        return mt_depthwise_conv_s16(p, q, depth_multiplier, in, in_v, filter, fd, bias, out, out_v);
    }
    const int32_t kw = fd->w, ch = fd->c, c4 = ch & ~3, cs = in_v->col_stride;
    const int32_t dh = p->dilation_h, dw = p->dilation_w, zp = p->output_offset, lo = p->act_min, hi = p->act_max;
    const int32_t xstep = dw * cs, xrow = dh * in_v->row_stride, wrow = kw * ch;
    /* four channels at a time over every pixel: their requantization records are prepared once */
    for (int32_t c = 0; c < c4; c += 4) {
        mt_s16_rqb r[4];
        for (int32_t j = 0; j < 4; ++j) {
            r[j] = mt_s16_rqb_of(q->multiplier[c + j], q->shift[c + j], bias != 0 ? bias[c + j] : 0);
        }
        for (int32_t oy = 0; oy < out_v->h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad.top;
            int32_t ky0, ky1;
            valid_range(iy0, dh, in_v->h, fd->h, &ky0, &ky1);
            int16_t *o = out + oy * out_v->row_stride + c;
            for (int32_t ox = 0; ox < out_v->w; ++ox, o += out_v->col_stride) {
                const int32_t ix0 = ox * p->stride_w - p->pad.left;
                int32_t kx0, kx1;
                valid_range(ix0, dw, in_v->w, kw, &kx0, &kx1);
                const int32_t off0 = iy0 * in_v->row_stride + ix0 * cs; /* may be negative: indices only */
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                const int32_t xbase = off0 + kx0 * xstep + c, wbase = kx0 * ch + c, ntx = kx1 - kx0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    const int16_t *x = in + (xbase + ky * xrow);
                    const int8_t *w = filter + (wbase + ky * wrow);
                    if (ntx == 3) { /* a whole 3-wide kernel row, unrolled */
                        MT_DW_S16_TAP(x, w);
                        MT_DW_S16_TAP(x + xstep, w + ch);
                        MT_DW_S16_TAP(x + 2 * xstep, w + 2 * ch);
                        continue;
                    }
                    for (int32_t kx = 0; kx < ntx; ++kx, x += xstep, w += ch) {
                        MT_DW_S16_TAP(x, w);
                    }
                }
                o[0] = (int16_t)mt_clamp(mt_s16_rqb_apply(a0, &r[0]) + zp, lo, hi);
                o[1] = (int16_t)mt_clamp(mt_s16_rqb_apply(a1, &r[1]) + zp, lo, hi);
                o[2] = (int16_t)mt_clamp(mt_s16_rqb_apply(a2, &r[2]) + zp, lo, hi);
                o[3] = (int16_t)mt_clamp(mt_s16_rqb_apply(a3, &r[3]) + zp, lo, hi);
            }
        }
    }
    for (int32_t c = c4; c < ch; ++c) { /* the last ch % 4 channels, one at a time */
        for (int32_t oy = 0; oy < out_v->h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad.top;
            int32_t ky0, ky1;
            valid_range(iy0, dh, in_v->h, fd->h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_v->w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad.left;
                int32_t kx0, kx1;
                valid_range(ix0, dw, in_v->w, kw, &kx0, &kx1);
                const int32_t off0 = iy0 * in_v->row_stride + ix0 * cs;
                int32_t a = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        a += (int32_t)in[off0 + (ky * dh) * in_v->row_stride + (kx * dw) * cs + c] *
                             (int32_t)filter[(ky * kw + kx) * ch + c];
                    }
                }
                out[oy * out_v->row_stride + ox * out_v->col_stride + c] = requant(a, c, p, q, bias);
            }
        }
    }
    return MT_OK;
#else
    return mt_depthwise_conv_s16(p, q, depth_multiplier, in, in_v, filter, fd, bias, out, out_v);
#endif
}
