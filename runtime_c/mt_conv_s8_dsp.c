/* mt_conv_s8_dsp: general convolution as im2col + the DSP matrix core (mt_mat_2col_s8).
 *
 * Two output pixels at a time: each one's receptive field (kh x kw x in_ch values, the
 * input zero point where it falls in the padding) is widened into one column of the
 * scratch pair, then the core runs 2 channels x 2 pixels per step over the packed filter.
 * Scratch: the column pair (16 bytes per group of 4 reduction values) plus one int8
 * gather row (4 bytes per group) used when in_ch is not a multiple of 4.
 */
#include "mt_simd.h"

int32_t mt_conv_s8_dsp_get_buffer_size(const mt_dims *fd)
{
    return fd == 0 ? 0 : 20 * ((fd->h * fd->w * fd->c + 3) / 4);
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

/* The receptive field of output pixel (oy, ox), widened into column `col` of the pair.
 * Where in_ch is a multiple of 4 each input run is widened in place; otherwise the field is
 * first gathered as int8 (whole kernel rows at once when they lie inside the input and the
 * pixels are packed), then widened in one pass. */
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
    int8_t *g8 = gather;
    const int8_t zp = (int8_t)p->input_zp;
    for (int32_t ky = 0; ky < fd->h; ++ky, g8 += kw * ic) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        if (iy < 0 || iy >= in_v->h) {
            fill_s8(g8, zp, kw * ic);
            continue;
        }
        const int8_t *row = in + iy * in_v->row_stride;
        if (x_inside && row_run) {
            copy_s8(g8, row + ix0 * cs, kw * ic);
            continue;
        }
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx * dw;
            if (ix < 0 || ix >= in_v->w) {
                fill_s8(g8 + kx * ic, zp, ic);
            } else {
                copy_s8(g8 + kx * ic, row + ix * cs, ic);
            }
        }
    }
    /* whole groups: the last one's pad bytes meet the packer's zero weights; zeroed so the
     * column holds defined values */
    int32_t n = fd->h * kw * ic;
    for (; n & 3; ++n) {
        gather[n] = 0;
    }
    mt_widen_s8(gather, n, dst, 4);
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
    int32_t oy = 0, ox = 0;
    for (int32_t i = 0; i < n_px; i += 2) {
        const int32_t oy1 = ox + 1 < out_v->w ? oy : oy + 1;
        const int32_t ox1 = ox + 1 < out_v->w ? ox + 1 : 0;
        const int32_t two = i + 1 < n_px;
        im2col(p, in, in_v, fd, oy, ox, cols, 0, gather);
        if (two) {
            im2col(p, in, in_v, fd, oy1, ox1, cols, 1, gather);
        }
        int8_t *o0 = out + oy * out_v->row_stride + ox * out_v->col_stride;
        int8_t *o1 = two ? out + oy1 * out_v->row_stride + ox1 * out_v->col_stride : 0;
        mt_mat_2col_s8(cols, k_groups, filter, p->wide, q, fd->n, p, o0, o1);
        oy = ox1 + 1 < out_v->w ? oy1 : oy1 + 1;
        ox = ox1 + 1 < out_v->w ? ox1 + 1 : 0;
    }
    return MT_OK;
}
