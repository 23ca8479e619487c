/* mt_conv_s16_dsp: 16x8 convolution (mt_conv_s16's arguments and bytes) with the Cortex-M DSP
 * extension: im2col of two output pixels into int16 columns, then SMLAD of int16 activation
 * pairs against int8 weights widened by SXTB16, 2 output channels x 2 pixels per step.
 *
 * Exactness (every input, the -32768 x -128 corner included): each product |x * w| <= 2^15 *
 * 2^7 = 2^22, so an int32 partial that has taken at most 4 * 127 = 508 products (127 groups of
 * 4 reduction values) holds |sum| <= 508 * 2^22 = 2,130,706,432 < 2^31 - 1, and so does every
 * intermediate SMLAD value (a sum of a subset of them). Partials are flushed into int64
 * accumulators every MT_S16_FLUSH_GROUPS groups, so the int64 sum equals the portable kernel's
 * (TFLite-Micro's reference_integer_ops) exactly, for any K. The requantization gives the
 * portable kernel's values for every input: mt_mbqm of the wrapped sum with an int32 bias; with an
 * int64 bias (or none) mt_mbqm64, computed as one SMLAL onto a per-channel constant holding the
 * bias (mt_s16_rqb_apply, mt_s16_dsp.h) when K <= 508 and |bias| < 2^46, else mt_mbqm64 itself.
 *
 * Weights are read as they are in the model (OHWI int8, any alignment): a word (k0 k1 k2 k3)
 * gives (k0, k2) by SXTB16 and (k1, k3) by SXTB16 ROR 8, so each column stores its group of 4
 * activations as the words (a0 | a2 << 16), (a1 | a3 << 16). The last partial group's weights
 * are assembled byte by byte (no read past a filter row); its activations are zero-padded.
 * Technique after CMSIS-NN's arm_convolve_s16 / arm_nn_mat_mult_kernel_s16 (own code; CMSIS-NN
 * bounds K instead of flushing).
 *
 * Scratch: mt_conv_s16_dsp_get_buffer_size(fd) bytes, 4-byte aligned: the column pair (16 B per
 * group), one int16 gather row (8 B per group, used when in_ch is not a multiple of 4) and one
 * 36-byte requantization record per output channel (mt_s16_rqb: the bias folded into SMLAL's
 * rounding constant), prepared once per call.
 * Without the DSP extension (and MT_EMULATE_ACLE) it is mt_conv_s16.
 */
#include "mt_simd.h"
#include "mt_s16_dsp.h"

int32_t mt_conv_s16_dsp_get_buffer_size(const mt_dims *fd)
{
    return fd == 0 ? 0 : 24 * ((fd->h * fd->w * fd->c + 3) / 4) + 36 * fd->n;
}

#if MT_SIMD

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
                mt_s16_pack(row + ix0 * cs, (kw * ic) >> 2, dst, 4);
                dst += kw * ic;
            } else {
                for (int32_t kx = 0; kx < kw; ++kx, dst += ic) {
                    const int32_t ix = ix0 + kx * dw;
                    if (ix < 0 || ix >= in_v->w) {
                        zero_groups(dst, ic >> 2);
                    } else {
                        mt_s16_pack(row + ix * cs, ic >> 2, dst, 4);
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
    mt_s16_pack(gather, n >> 2, dst, 4);
}

/* Two channels (filter rows w0, w1) x the two columns over n >= 1 whole groups into int32
 * partials a[2 * ch + px] (n <= MT_S16_FLUSH_GROUPS, less any group the caller adds after). */
MT_INLINE void chunk_2x2(const int32_t *x, int32_t n, const int8_t *w0, const int8_t *w1, int32_t *a)
{
    int32_t a00 = a[0], a01 = a[1], a10 = a[2], a11 = a[3];
    do {
        int32_t x0a, x0b, x1a, x1b;
        MT_LD2(x, x0a, x0b);
        MT_LD2(x, x1a, x1b);
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
    a[0] = a00;
    a[1] = a01;
    a[2] = a10;
    a[3] = a11;
}

/* The last r (1..3) reduction values of channels w0 (and w1 unless NULL) x the two columns
 * (group g of x), added to a[]: 4 products each, |sum| <= 2^24. */
MT_INLINE void tail_2x2(const int32_t *x, int32_t r, const int8_t *w0, const int8_t *w1, int32_t *a)
{
    int32_t v = mt_s16_tail_word(w0, r);
    a[0] = __smlad(x[1], mt_sxtb16_ror8(v), __smlad(x[0], mt_sxtb16(v), a[0]));
    a[1] = __smlad(x[3], mt_sxtb16_ror8(v), __smlad(x[2], mt_sxtb16(v), a[1]));
    if (w1 != 0) {
        v = mt_s16_tail_word(w1, r);
        a[2] = __smlad(x[1], mt_sxtb16_ror8(v), __smlad(x[0], mt_sxtb16(v), a[2]));
        a[3] = __smlad(x[3], mt_sxtb16_ror8(v), __smlad(x[2], mt_sxtb16(v), a[3]));
    }
}

/* One channel x the two columns over n >= 1 whole groups into a[0], a[1]. */
MT_INLINE void chunk_1x2(const int32_t *x, int32_t n, const int8_t *w0, int32_t *a)
{
    int32_t a00 = a[0], a01 = a[1];
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
    a[0] = a00;
    a[1] = a01;
}

/* The exact int64 sums s[2 * ch + px] of channels w0, w1 (w1 NULL: one channel, s[0], s[1]) over
 * k reduction values, flushing the int32 partials every MT_S16_FLUSH_GROUPS groups. */
static void dot_long(const int32_t *x, int32_t k, const int8_t *w0, const int8_t *w1, int64_t *s)
{
    int32_t groups = k >> 2;
    s[0] = s[1] = s[2] = s[3] = 0;
    while (groups > 0) {
        const int32_t n = groups < MT_S16_FLUSH_GROUPS ? groups : MT_S16_FLUSH_GROUPS;
        int32_t a[4] = {0, 0, 0, 0};
        if (w1 != 0) {
            chunk_2x2(x, n, w0, w1, a);
            w1 += 4 * n;
        } else {
            chunk_1x2(x, n, w0, a);
        }
        x += 4 * n;
        w0 += 4 * n;
        groups -= n;
        for (int32_t j = 0; j < 4; ++j) {
            s[j] += a[j];
        }
    }
    if (k & 3) {
        int32_t a[4] = {0, 0, 0, 0};
        tail_2x2(x, k & 3, w0, w1, a);
        for (int32_t j = 0; j < 4; ++j) {
            s[j] += a[j];
        }
    }
}

/* The exact sums of channels w0, w1 (w1 NULL: one) as int32 when k <= 4 * MT_S16_FLUSH_GROUPS:
 * at most 508 products each. */
MT_INLINE void dot_short(const int32_t *x, int32_t k, const int8_t *w0, const int8_t *w1, int32_t *a)
{
    a[0] = a[1] = a[2] = a[3] = 0;
    const int32_t groups = k >> 2;
    if (groups > 0) {
        if (w1 != 0) {
            chunk_2x2(x, groups, w0, w1, a);
        } else {
            chunk_1x2(x, groups, w0, a);
        }
    }
    if (k & 3) {
        tail_2x2(x + 4 * groups, k & 3, w0 + 4 * groups, w1 != 0 ? w1 + 4 * groups : 0, a);
    }
}

/* mt_conv_s16's requantization of channel oc (the same value for every input): with an int32
 * bias the double-rounding mt_mbqm of the wrapped sum, else mt_mbqm64 (mt_s16_rq_apply). */
MT_INLINE int16_t requant(int64_t acc, int32_t oc, const mt_s16_rq *r, const mt_conv_params *p,
                          const int64_t *bias64, const int32_t *bias32)
{
    int32_t v;
    if (bias32 != 0) {
        v = mt_mbqm(mt_wrap32(acc + bias32[oc]), r->mult, r->shift);
    } else {
        v = mt_s16_rq_apply(acc + (bias64 != 0 ? bias64[oc] : 0), r);
    }
    v += p->output_offset;
    return (int16_t)mt_clamp(v, p->act_min, p->act_max);
}

/* Channels oc (and oc + 1 when two_ch) of both pixels (o1 NULL: the first only). */
static void block(const int32_t *cols, int32_t k, const int8_t *filter, int32_t oc, int32_t two_ch,
                  const mt_conv_params *p, const mt_pc_quant *q, const int64_t *bias64, const int32_t *bias32,
                  const mt_s16_rqb *recs, int16_t *o0, int16_t *o1)
{
    const int8_t *w0 = filter + oc * k, *w1 = two_ch ? w0 + k : 0;
    int64_t s[4];
    if (k <= 4 * MT_S16_FLUSH_GROUPS) {
        int32_t a[4];
        dot_short(cols, k, w0, w1, a);
        if (bias32 == 0) { /* the exact int32 sums, the bias folded into the rounding constant */
            const int32_t lo = p->act_min, hi = p->act_max, zp = p->output_offset;
            for (int32_t j = 0; j < (two_ch ? 2 : 1); ++j) {
                const mt_s16_rqb *r = recs + oc + j;
                o0[oc + j] = (int16_t)mt_clamp(mt_s16_rqb_apply(a[2 * j], r) + zp, lo, hi);
                if (o1 != 0) {
                    o1[oc + j] = (int16_t)mt_clamp(mt_s16_rqb_apply(a[2 * j + 1], r) + zp, lo, hi);
                }
            }
            return;
        }
        for (int32_t j = 0; j < 4; ++j) {
            s[j] = a[j];
        }
    } else {
        dot_long(cols, k, w0, w1, s);
    }
    mt_s16_rq r = mt_s16_rq_of(q->multiplier[oc], q->shift[oc]);
    o0[oc] = requant(s[0], oc, &r, p, bias64, bias32);
    if (o1 != 0) {
        o1[oc] = requant(s[1], oc, &r, p, bias64, bias32);
    }
    if (two_ch) {
        r = mt_s16_rq_of(q->multiplier[oc + 1], q->shift[oc + 1]);
        o0[oc + 1] = requant(s[2], oc + 1, &r, p, bias64, bias32);
        if (o1 != 0) {
            o1[oc + 1] = requant(s[3], oc + 1, &r, p, bias64, bias32);
        }
    }
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
    mt_s16_rqb *recs = (mt_s16_rqb *)(void *)(cols + 6 * k_groups); /* per channel, prepared once */
    for (int32_t oc = 0; oc < oc_n; ++oc) {
        recs[oc] = mt_s16_rqb_of(q->multiplier[oc], q->shift[oc], bias64 != 0 ? bias64[oc] : 0);
    }
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
        for (int32_t oc = 0; oc < oc_n; oc += 2) {
            block(cols, k, filter, oc, oc + 1 < oc_n, p, q, bias64, bias32, recs, o0, o1);
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
