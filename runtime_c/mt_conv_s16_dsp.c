/* mt_conv_s16_dsp: 16x8 convolution (mt_conv_s16's arguments and bytes) with the Cortex-M DSP
 * extension: im2col of two output pixels into int16 columns, then SMLAD of int16 activation
 * pairs against int8 weights widened by SXTB16, 2 output channels x 2 pixels per step.
 *
 * Exactness (every input, the -32768 x -128 corner included): each product |x * w| <= 2^15 *
 * 2^7 = 2^22, so an int32 partial that has taken at most 4 * 127 = 508 products (127 groups of
 * 4 reduction values) holds |sum| <= 508 * 2^22 = 2,130,706,432 < 2^31 - 1, and so does every
 * intermediate SMLAD value (a sum of a subset of them). Partials are flushed into int64
 * accumulators every MT_S16_FLUSH_GROUPS groups, so the int64 sum equals the portable kernel's
 * (TFLite-Micro's reference_integer_ops) exactly, for any K. The requantization is then the
 * portable kernel's own (mt_mbqm64 with an int64 bias, mt_mbqm of the wrapped sum with an int32
 * one).
 *
 * Weights are read as they are in the model (OHWI int8, any alignment): a word (k0 k1 k2 k3)
 * gives (k0, k2) by SXTB16 and (k1, k3) by SXTB16 ROR 8, so each column stores its group of 4
 * activations as the words (a0 | a2 << 16), (a1 | a3 << 16). The last partial group's weights
 * are assembled byte by byte (no read past a filter row); its activations are zero-padded.
 * Technique after CMSIS-NN's arm_convolve_s16 / arm_nn_mat_mult_kernel_s16 (own code; CMSIS-NN
 * bounds K instead of flushing).
 *
 * Scratch: mt_conv_s16_dsp_get_buffer_size(fd) bytes, 4-byte aligned: the column pair (16 B per
 * group) and one int16 gather row (8 B per group, used when in_ch is not a multiple of 4).
 * Without the DSP extension (and MT_EMULATE_ACLE) it is mt_conv_s16.
 */
#include "mt_simd.h"
#include "mt_quant.h"

int32_t mt_conv_s16_dsp_get_buffer_size(const mt_dims *fd)
{
    return fd == 0 ? 0 : 24 * ((fd->h * fd->w * fd->c + 3) / 4);
}

#if MT_SIMD

/* groups of 4 products per int32 partial between flushes: 4 * 127 * 2^22 < 2^31 (see above) */
#define MT_S16_FLUSH_GROUPS 127

/* The last r (1..3) weights of a row as one word, zero-padded. */
MT_INLINE int32_t tail_word(const int8_t *w, int32_t r)
{
    uint32_t v = 0;
    for (int32_t i = 0; i < r; ++i) {
        v |= (uint32_t)(uint8_t)w[i] << (8 * i);
    }
    return (int32_t)v;
}

/* n int16 (n = 4 * groups) to the column layout: (a0 | a2 << 16), (a1 | a3 << 16) per group,
 * the next group `step` words further. */
MT_INLINE void pack_s16(const int16_t *src, int32_t groups, int32_t *dst, int32_t step)
{
    for (; groups > 0; --groups, src += 4, dst += step) {
        uint32_t lo, hi;
        memcpy(&lo, src, 4);
        memcpy(&hi, src + 2, 4);
        dst[0] = (int32_t)((lo & 0xFFFFu) | (hi << 16));
        dst[1] = (int32_t)((lo >> 16) | (hi & 0xFFFF0000u));
    }
}

static inline void zero_groups(int32_t *dst, int32_t groups)
{
    for (; groups > 0; --groups, dst += 4) {
        dst[0] = 0;
        dst[1] = 0;
    }
}

/* The receptive field of output pixel (oy, ox) into column `col` of the pair (padding reads
 * the zero point, 0). */
static void im2col(const mt_conv_params *p, const int16_t *in, const mt_view *in_v, const mt_dims *fd, int32_t oy,
                   int32_t ox, int32_t *cols, int32_t col, int16_t *gather)
{
    const int32_t ic = fd->c, kw = fd->w, dw = p->dilation_w, cs = in_v->col_stride;
    const int32_t iy0 = oy * p->stride_h - p->pad.top, ix0 = ox * p->stride_w - p->pad.left;
    const int32_t x_inside = ix0 >= 0 && ix0 + (kw - 1) * dw < in_v->w;
    const int32_t row_run = dw == 1 && cs == ic && x_inside; /* a kernel row: kw * ic contiguous values */
    int32_t *dst = cols + 2 * col;
    if ((ic & 3) == 0) {
        for (int32_t ky = 0; ky < fd->h; ++ky) {
            const int32_t iy = iy0 + ky * p->dilation_h;
            const int16_t *row = in + iy * in_v->row_stride;
            if (iy < 0 || iy >= in_v->h) {
                zero_groups(dst, (kw * ic) >> 2);
                dst += kw * ic;
            } else if (row_run) {
                pack_s16(row + ix0 * cs, (kw * ic) >> 2, dst, 4);
                dst += kw * ic;
            } else {
                for (int32_t kx = 0; kx < kw; ++kx, dst += ic) {
                    const int32_t ix = ix0 + kx * dw;
                    if (ix < 0 || ix >= in_v->w) {
                        zero_groups(dst, ic >> 2);
                    } else {
                        pack_s16(row + ix * cs, ic >> 2, dst, 4);
                    }
                }
            }
        }
        return;
    }
    int16_t *g = gather;
    for (int32_t ky = 0; ky < fd->h; ++ky, g += kw * ic) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        if (iy < 0 || iy >= in_v->h) {
            memset(g, 0, (size_t)(kw * ic) * sizeof(int16_t));
            continue;
        }
        const int16_t *row = in + iy * in_v->row_stride;
        if (row_run) {
            memcpy(g, row + ix0 * cs, (size_t)(kw * ic) * sizeof(int16_t));
            continue;
        }
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx * dw;
            if (ix < 0 || ix >= in_v->w) {
                memset(g + kx * ic, 0, (size_t)ic * sizeof(int16_t));
            } else {
                memcpy(g + kx * ic, row + ix * cs, (size_t)ic * sizeof(int16_t));
            }
        }
    }
    int32_t n = fd->h * kw * ic;
    for (; n & 3; ++n) {
        gather[n] = 0;
    }
    pack_s16(gather, n >> 2, dst, 4);
}

/* Two channels (filter rows w0, w1 of k values) x the two columns: s[2 * ch + px]. */
static void dot_2x2(const int32_t *x, int32_t k, const int8_t *w0, const int8_t *w1, int64_t *s)
{
    int64_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    int32_t groups = k >> 2;
    while (groups > 0) {
        int32_t n = groups < MT_S16_FLUSH_GROUPS ? groups : MT_S16_FLUSH_GROUPS;
        groups -= n;
        int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
        do {
            const int32_t x0a = x[0], x0b = x[1], x1a = x[2], x1b = x[3];
            x += 4;
            int32_t wv = mt_read_s8x4(w0);
            w0 += 4;
            int32_t wl = mt_sxtb16(wv), wh = mt_sxtb16_ror8(wv);
            a00 = __smlad(x0a, wl, a00);
            a01 = __smlad(x1a, wl, a01);
            a00 = __smlad(x0b, wh, a00);
            a01 = __smlad(x1b, wh, a01);
            wv = mt_read_s8x4(w1);
            w1 += 4;
            wl = mt_sxtb16(wv);
            wh = mt_sxtb16_ror8(wv);
            a10 = __smlad(x0a, wl, a10);
            a11 = __smlad(x1a, wl, a11);
            a10 = __smlad(x0b, wh, a10);
            a11 = __smlad(x1b, wh, a11);
        } while (--n > 0);
        s00 += a00;
        s01 += a01;
        s10 += a10;
        s11 += a11;
    }
    const int32_t r = k & 3;
    if (r != 0) { /* one more group: 4 products, |sum| <= 2^24 */
        int32_t wl = mt_sxtb16(tail_word(w0, r)), wh = mt_sxtb16_ror8(tail_word(w0, r));
        s00 += __smlad(x[1], wh, __smlad(x[0], wl, 0));
        s01 += __smlad(x[3], wh, __smlad(x[2], wl, 0));
        wl = mt_sxtb16(tail_word(w1, r));
        wh = mt_sxtb16_ror8(tail_word(w1, r));
        s10 += __smlad(x[1], wh, __smlad(x[0], wl, 0));
        s11 += __smlad(x[3], wh, __smlad(x[2], wl, 0));
    }
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

/* One channel x the two columns: s[px]. */
static void dot_1x2(const int32_t *x, int32_t k, const int8_t *w0, int64_t *s)
{
    int64_t s00 = 0, s01 = 0;
    int32_t groups = k >> 2;
    while (groups > 0) {
        int32_t n = groups < MT_S16_FLUSH_GROUPS ? groups : MT_S16_FLUSH_GROUPS;
        groups -= n;
        int32_t a00 = 0, a01 = 0;
        do {
            const int32_t wv = mt_read_s8x4(w0);
            w0 += 4;
            const int32_t wl = mt_sxtb16(wv), wh = mt_sxtb16_ror8(wv);
            a00 = __smlad(x[0], wl, a00);
            a01 = __smlad(x[2], wl, a01);
            a00 = __smlad(x[1], wh, a00);
            a01 = __smlad(x[3], wh, a01);
            x += 4;
        } while (--n > 0);
        s00 += a00;
        s01 += a01;
    }
    const int32_t r = k & 3;
    if (r != 0) {
        const int32_t wl = mt_sxtb16(tail_word(w0, r)), wh = mt_sxtb16_ror8(tail_word(w0, r));
        s00 += __smlad(x[1], wh, __smlad(x[0], wl, 0));
        s01 += __smlad(x[3], wh, __smlad(x[2], wl, 0));
    }
    s[0] = s00;
    s[1] = s01;
}

/* mt_conv_s16's requantization of one accumulator of channel oc. */
MT_INLINE int16_t requant(int64_t acc, int32_t oc, const mt_conv_params *p, const mt_pc_quant *q,
                          const int64_t *bias64, const int32_t *bias32)
{
    int32_t v;
    if (bias32 != 0) {
        v = mt_mbqm(mt_wrap32(acc + bias32[oc]), q->multiplier[oc], q->shift[oc]);
    } else {
        v = mt_mbqm64(acc + (bias64 != 0 ? bias64[oc] : 0), q->multiplier[oc], q->shift[oc]);
    }
    v += p->output_offset;
    return (int16_t)mt_clamp(v, p->act_min, p->act_max);
}

#endif /* MT_SIMD */

mt_status mt_conv_s16_dsp(const mt_conv_params *p, const mt_pc_quant *q, const int16_t *in, const mt_view *in_v,
                          const int8_t *filter, const mt_dims *fd, const int64_t *bias64, const int32_t *bias32,
                          int16_t *out, const mt_view *out_v, void *scratch)
{
#if MT_SIMD
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        scratch == 0 || (bias64 != 0 && bias32 != 0) || fd->c != in_v->c || fd->n != out_v->c || p->stride_h < 1 ||
        p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1) {
        return MT_ERR_ARG;
    }
    const int32_t k = fd->h * fd->w * fd->c, k_groups = (k + 3) / 4, oc_n = fd->n;
    int32_t *cols = (int32_t *)scratch;
    int16_t *gather = (int16_t *)(void *)(cols + 4 * k_groups);
    const int32_t n_px = out_v->h * out_v->w;
    int32_t oy = 0, ox = 0;
    for (int32_t i = 0; i < n_px; i += 2) {
        const int32_t oy1 = ox + 1 < out_v->w ? oy : oy + 1;
        const int32_t ox1 = ox + 1 < out_v->w ? ox + 1 : 0;
        const int32_t two = i + 1 < n_px;
        im2col(p, in, in_v, fd, oy, ox, cols, 0, gather);
        if (two) {
            im2col(p, in, in_v, fd, oy1, ox1, cols, 1, gather);
        } else { /* the odd last pixel: column 1 repeats column 0 (defined data; result unused) */
            im2col(p, in, in_v, fd, oy, ox, cols, 1, gather);
        }
        int16_t *o0 = out + oy * out_v->row_stride + ox * out_v->col_stride;
        int16_t *o1 = two ? out + oy1 * out_v->row_stride + ox1 * out_v->col_stride : 0;
        int64_t s[4];
        int32_t oc = 0;
        for (; oc + 2 <= oc_n; oc += 2) {
            dot_2x2(cols, k, filter + oc * k, filter + (oc + 1) * k, s);
            o0[oc] = requant(s[0], oc, p, q, bias64, bias32);
            o0[oc + 1] = requant(s[2], oc + 1, p, q, bias64, bias32);
            if (o1 != 0) {
                o1[oc] = requant(s[1], oc, p, q, bias64, bias32);
                o1[oc + 1] = requant(s[3], oc + 1, p, q, bias64, bias32);
            }
        }
        if (oc < oc_n) {
            dot_1x2(cols, k, filter + oc * k, s);
            o0[oc] = requant(s[0], oc, p, q, bias64, bias32);
            if (o1 != 0) {
                o1[oc] = requant(s[1], oc, p, q, bias64, bias32);
            }
        }
        oy = ox1 + 1 < out_v->w ? oy1 : oy1 + 1;
        ox = ox1 + 1 < out_v->w ? ox1 + 1 : 0;
    }
    return MT_OK;
#else
    (void)scratch;
    return mt_conv_s16(p, q, in, in_v, filter, fd, bias64, bias32, out, out_v);
#endif
}
