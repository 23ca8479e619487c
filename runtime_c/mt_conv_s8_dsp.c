/* mt_conv_s8_dsp: general convolution as im2col + the DSP matrix core (mt_mat_2col_s8).
 *
 * Two output pixels at a time: each one's receptive field (kh x kw x in_ch values, the
 * input zero point where it falls in the padding) is widened into one column of the
 * scratch pair, then the core runs 2 channels x 2 pixels per step over the packed filter.
 * Scratch: the column pair (16 bytes per group of 4 reduction values) plus an int8
 * gather row (4 bytes per group) for kernel rows that touch the padding when in_ch is not
 * a multiple of 4. Such layers (the first conv of an image model: 3 channels) use the
 * kernel-row reduction order of mt_nn_fast.h, so a kernel row inside the input widens
 * straight from the input, a word at a time.
 */
#include "mt_simd.h"

int32_t mt_conv_s8_dsp_get_buffer_size(const mt_dims *fd)
{
    return fd == 0 ? 0 : 20 * ((fd->h * fd->w * fd->c + 3) / 4); /* the kernel-row order too */
}

/* n bytes from src to dst, a word at a time (unaligned LDR/STR on Armv7E-M). Plain inline,
 * like fill_s8: forced inlining costs the im2col loops registers. */
static inline void copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t v = mt_read_s8x4(src + i);
        memcpy(dst + i, &v, 4);
    }
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
}

static inline void fill_s8(int8_t *dst, int8_t v, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        dst[i] = v;
    }
}

/* Kernel-row order: int16 entry of tail value t in a column (group t >> 2, lane t & 3 of the
 * group's words (k0 | k2 << 16), (k1 | k3 << 16)); the column's groups are 8 int16 apart. */
MT_INLINE int32_t tail_at(int32_t t)
{
    return 8 * (t >> 2) + 2 * (t & 1) + ((t >> 1) & 1);
}

/* Kernel-row order, every kernel row inside the input and packed (row_run): each row's whole
 * groups widened in place, its last `rem` values to the tail (whose unused lanes the caller
 * zeroed once). */
MT_INLINE void im2col_rows_inside(const int8_t *src, int32_t rs, int32_t kh, int32_t full, int32_t rem, int32_t *dst)
{
    if (kh == 3 && full == 2 && rem == 1) {
        /* 3 x 3 x 3 (an image model's first conv): straight-line; the tail group is
         * (row 0, 8), (row 1, 8), (row 2, 8), 0 -> words (t0 | t2 << 16), t1 */
        const int8_t *s1 = src + rs, *s2 = s1 + rs;
        int32_t v = mt_read_s8x4(src);
        dst[0] = mt_sxtb16(v), dst[1] = mt_sxtb16_ror8(v);
        v = mt_read_s8x4(src + 4);
        dst[4] = mt_sxtb16(v), dst[5] = mt_sxtb16_ror8(v);
        v = mt_read_s8x4(s1);
        dst[8] = mt_sxtb16(v), dst[9] = mt_sxtb16_ror8(v);
        v = mt_read_s8x4(s1 + 4);
        dst[12] = mt_sxtb16(v), dst[13] = mt_sxtb16_ror8(v);
        v = mt_read_s8x4(s2);
        dst[16] = mt_sxtb16(v), dst[17] = mt_sxtb16_ror8(v);
        v = mt_read_s8x4(s2 + 4);
        dst[20] = mt_sxtb16(v), dst[21] = mt_sxtb16_ror8(v);
        dst[24] = (int32_t)(((uint32_t)(int32_t)src[8] & 0xFFFFu) | ((uint32_t)(int32_t)s2[8] << 16));
        dst[25] = (int32_t)((uint32_t)(int32_t)s1[8] & 0xFFFFu);
        return;
    }
    int16_t *tail = (int16_t *)(void *)(dst + 4 * kh * full);
    int32_t t = 0;
    for (int32_t ky = 0; ky < kh; ++ky, src += rs) {
        const int8_t *s = src;
        for (int32_t g = full; g > 0; --g, s += 4, dst += 4) {
            const int32_t v = mt_read_s8x4(s);
            dst[0] = mt_sxtb16(v);
            dst[1] = mt_sxtb16_ror8(v);
        }
        for (int32_t j = 0; j < rem; ++j, ++t) {
            tail[tail_at(t)] = s[j];
        }
    }
}

/* The receptive field of output pixel (oy, ox), widened into column `col` of the pair.
 * Where in_ch is a multiple of 4 each input run is widened in place; otherwise in the
 * kernel-row order, row by row. */
static void im2col(const mt_fast_params *p, const int8_t *in, const mt_view *in_v, const mt_dims *fd, int32_t oy,
                   int32_t ox, int32_t *cols, int32_t col, int8_t *gather)
{
    const int32_t ic = fd->c, kw = fd->w, dw = p->dilation_w, cs = in_v->col_stride;
    const int32_t iy0 = oy * p->stride_h - p->pad.top, ix0 = ox * p->stride_w - p->pad.left;
    const int32_t row_run = dw == 1 && cs == ic; /* a kernel row is kw * ic contiguous bytes */
    const int32_t x_inside = ix0 >= 0 && ix0 + (kw - 1) * dw < in_v->w;
    int32_t *dst = cols + 2 * col;
    if ((ic & 3) == 0) {
        const int32_t z = mt_splat_s8x4(p->input_zp);
        const int32_t zlo = mt_sxtb16(z), zhi = mt_sxtb16_ror8(z);
        for (int32_t ky = 0; ky < fd->h; ++ky) {
            const int32_t iy = iy0 + ky * p->dilation_h;
            const int8_t *row = in + iy * in_v->row_stride;
            if (iy >= 0 && iy < in_v->h && x_inside && row_run) {
                mt_widen_groups_s8(row + ix0 * cs, (kw * ic) >> 2, dst, 4);
                dst += kw * ic;
                continue;
            }
            for (int32_t kx = 0; kx < kw; ++kx) {
                const int32_t ix = ix0 + kx * dw;
                if (iy < 0 || iy >= in_v->h || ix < 0 || ix >= in_v->w) {
                    for (int32_t g = 0; g < ic; g += 4, dst += 4) {
                        dst[0] = zlo;
                        dst[1] = zhi;
                    }
                } else {
                    mt_widen_groups_s8(row + ix * cs, ic >> 2, dst, 4);
                    dst += ic;
                }
            }
        }
        return;
    }
    /* in_ch not a multiple of 4: kernel-row order (mt_nn_fast.h). Each kernel row (kw * in_ch
     * bytes, read in place when it lies inside the input and the pixels are packed, else
     * gathered with the zero point) widens its whole groups straight into the column; its
     * last rl & 3 bytes go to the tail groups after all rows. */
    const int32_t rl = kw * ic, full = rl >> 2, rem = rl & 3, kh = fd->h;
    const int8_t zp = (int8_t)p->input_zp;
    int16_t *tail = (int16_t *)(void *)(dst + 4 * kh * full);
    for (int32_t ky = 0; ky < kh; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        const int8_t *src = gather;
        if (iy < 0 || iy >= in_v->h) {
            fill_s8(gather, zp, rl);
        } else {
            const int8_t *row = in + iy * in_v->row_stride;
            if (x_inside && row_run) {
                src = row + ix0 * cs;
            } else {
                for (int32_t kx = 0; kx < kw; ++kx) {
                    const int32_t ix = ix0 + kx * dw;
                    if (ix < 0 || ix >= in_v->w) {
                        fill_s8(gather + kx * ic, zp, ic);
                    } else {
                        copy_s8(gather + kx * ic, row + ix * cs, ic);
                    }
                }
            }
        }
        mt_widen_groups_s8(src, full, dst, 4);
        dst += 4 * full;
        for (int32_t j = 0; j < rem; ++j) {
            tail[tail_at(ky * rem + j)] = src[4 * full + j];
        }
    }
}

mt_status mt_conv_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                         const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                         const mt_view *out_v, void *scratch)
{
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        scratch == 0 || fd->c != in_v->c || fd->n != out_v->c || p->stride_h < 1 || p->stride_w < 1 ||
        p->dilation_h < 1 || p->dilation_w < 1) {
        return MT_ERR_ARG;
    }
    const int32_t k_groups = (fd->h * fd->w * fd->c + 3) / 4;
    int32_t *cols = (int32_t *)scratch;
    int8_t *gather = (int8_t *)(cols + 4 * k_groups);
    const int32_t n_px = out_v->h * out_v->w;
    if (fd->c & 3) {
        /* kernel-row order: the last tail group's unused lanes meet the packer's zero weights;
         * zeroed once so the columns hold defined values (no pixel writes them) */
        const int32_t rl = fd->w * fd->c, n_tail = fd->h * (rl & 3);
        int16_t *tail = (int16_t *)(void *)(cols + 4 * fd->h * (rl >> 2));
        for (int32_t t = n_tail; t & 3; ++t) {
            tail[tail_at(t)] = 0;
            tail[tail_at(t) + 4] = 0;
        }
    }
    /* kernel-row order with packed pixels: the output pixels whose whole field lies inside
     * the input (oy in y_lo .. y_hi, ox in x_lo .. x_hi) read their kernel rows in place */
    const int32_t krow = (fd->c & 3) != 0 && p->dilation_w == 1 && in_v->col_stride == fd->c;
    const int32_t sh = p->stride_h, sw = p->stride_w, pt = p->pad.top, pl = p->pad.left;
    const int32_t irs = in_v->row_stride, ics = in_v->col_stride, krs = p->dilation_h * irs, kh = fd->h;
    const int32_t rl = fd->w * fd->c, full = rl >> 2, rem = rl & 3;
    const int32_t y_lo = (pt + sh - 1) / sh, x_lo = (pl + sw - 1) / sw;
    const int32_t y_hi = in_v->h - 1 - (kh - 1) * p->dilation_h + pt < 0
                             ? -1
                             : (in_v->h - 1 - (kh - 1) * p->dilation_h + pt) / sh;
    const int32_t x_hi = in_v->w - fd->w + pl < 0 ? -1 : (in_v->w - fd->w + pl) / sw;
    int32_t oy = 0, ox = 0;
    const int32_t ors = out_v->row_stride, ocs = out_v->col_stride;
    for (int32_t i = 0; i < n_px; i += 2) {
        if (krow && oy >= y_lo && oy <= y_hi && ox >= x_lo && ox + 1 <= x_hi) {
            /* a run of pixel pairs inside the input along this row: pointers only step */
            const int8_t *src = in + (oy * sh - pt) * irs + (ox * sw - pl) * ics;
            const int32_t step = sw * ics;
            int8_t *o0 = out + oy * ors + ox * ocs;
            const int32_t pairs = (x_hi - ox + 1) >> 1;
            for (int32_t j = 0; j < pairs; ++j, src += 2 * step, o0 += 2 * ocs) {
                im2col_rows_inside(src, krs, kh, full, rem, cols);
                im2col_rows_inside(src + step, krs, kh, full, rem, cols + 2);
                mt_mat_2col_s8(cols, k_groups, filter, p->wide, q, fd->n, p, o0, o0 + ocs);
            }
            i += 2 * pairs - 2; /* the loop's own step covers the last pair */
            ox += 2 * pairs;
            if (ox >= out_v->w) {
                ox = 0, ++oy;
            }
            continue;
        }
        const int32_t oy1 = ox + 1 < out_v->w ? oy : oy + 1;
        const int32_t ox1 = ox + 1 < out_v->w ? ox + 1 : 0;
        const int32_t two = i + 1 < n_px;
        if (krow && oy >= y_lo && oy <= y_hi && ox >= x_lo && ox <= x_hi) {
            im2col_rows_inside(in + (oy * sh - pt) * irs + (ox * sw - pl) * ics, krs, kh, full, rem, cols);
        } else {
            im2col(p, in, in_v, fd, oy, ox, cols, 0, gather);
        }
        if (two) {
            if (krow && oy1 >= y_lo && oy1 <= y_hi && ox1 >= x_lo && ox1 <= x_hi) {
                im2col_rows_inside(in + (oy1 * sh - pt) * irs + (ox1 * sw - pl) * ics, krs, kh, full, rem, cols + 2);
            } else {
                im2col(p, in, in_v, fd, oy1, ox1, cols, 1, gather);
            }
        }
        int8_t *o0 = out + oy * ors + ox * ocs;
        int8_t *o1 = two ? out + oy1 * ors + ox1 * ocs : 0;
        mt_mat_2col_s8(cols, k_groups, filter, p->wide, q, fd->n, p, o0, o1);
        oy = ox1 + 1 < out_v->w ? oy1 : oy1 + 1;
        ox = ox1 + 1 < out_v->w ? ox1 + 1 : 0;
    }
    return MT_OK;
}
