/* mt_conv_1x1_s8_dsp: pointwise convolution on the DSP matrix core (mt_mat_2col_s8).
 *
 * Two output pixels at a time: their input pixels are widened once into the scratch
 * column pair (SXTB16: 4 instructions per 4 input channels, shared by every output
 * channel), then the core runs 2 channels x 2 pixels per step over the packed filter.
 */
#include "mt_simd.h"

int32_t mt_conv_1x1_s8_dsp_get_buffer_size(const mt_dims *fd)
{
    return fd == 0 ? 0 : 16 * ((fd->c + 3) / 4);
}

/* Widens input pixel (iy, ix) (or the padding value outside the view) into column `col`. */
static void load_pixel(const mt_fast_params *p, const int8_t *in, const mt_view *in_v, int32_t iy, int32_t ix,
                       int32_t *cols, int32_t col, int32_t k_groups)
{
    int32_t *dst = cols + 2 * col;
    if (iy < 0 || iy >= in_v->h || ix < 0 || ix >= in_v->w) {
        const int32_t z = mt_splat_s8x4(p->input_zp);
        const int32_t lo = mt_sxtb16(z), hi = mt_sxtb16_ror8(z);
        for (int32_t g = 0; g < k_groups; ++g, dst += 4) {
            dst[0] = lo;
            dst[1] = hi;
        }
        return;
    }
    const int8_t *src = in + iy * in_v->row_stride + ix * in_v->col_stride;
    if ((in_v->c & 3) == 0) {
        mt_widen_groups_s8(src, k_groups, dst, 4);
    } else {
        mt_widen_s8(src, in_v->c, dst, 4);
    }
}

/* Both columns of a pixel pair at once (whole groups, both pixels inside the view): per
 * group one word of each pixel, 4 SXTB16, 4 stores, two groups per iteration. */
static void load_pixel_pair(const int8_t *s0, const int8_t *s1, int32_t *dst, int32_t k_groups)
{
    int32_t g = k_groups;
    for (; g >= 2; g -= 2, s0 += 8, s1 += 8, dst += 8) {
        const int32_t a = mt_read_s8x4(s0), b = mt_read_s8x4(s1);
        const int32_t c = mt_read_s8x4(s0 + 4), d = mt_read_s8x4(s1 + 4);
        dst[0] = mt_sxtb16(a);
        dst[1] = mt_sxtb16_ror8(a);
        dst[2] = mt_sxtb16(b);
        dst[3] = mt_sxtb16_ror8(b);
        dst[4] = mt_sxtb16(c);
        dst[5] = mt_sxtb16_ror8(c);
        dst[6] = mt_sxtb16(d);
        dst[7] = mt_sxtb16_ror8(d);
    }
    if (g) {
        const int32_t a = mt_read_s8x4(s0), b = mt_read_s8x4(s1);
        dst[0] = mt_sxtb16(a);
        dst[1] = mt_sxtb16_ror8(a);
        dst[2] = mt_sxtb16(b);
        dst[3] = mt_sxtb16_ror8(b);
    }
}

mt_status mt_conv_1x1_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                             const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                             const mt_view *out_v, void *scratch)
{
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        scratch == 0 || fd->h != 1 || fd->w != 1 || fd->c != in_v->c || fd->n != out_v->c || p->stride_h < 1 ||
        p->stride_w < 1) {
        return MT_ERR_ARG;
    }
    int32_t *cols = (int32_t *)scratch;
    const int32_t k_groups = (fd->c + 3) / 4;
    const int32_t n_px = out_v->h * out_v->w;
#if defined(MT_MAT_PAIRS_ASM)
    /* pixel pairs inside the input straight to the core's pair loop when it applies */
    const int32_t direct = p->wide == 1 && mt_out_stage_of(p).full && k_groups <= 32 && fd->n >= 2 &&
                           (fd->n & 1) == 0;
    const int32_t skip = 40 * (32 - k_groups);
#endif
    int32_t oy = 0, ox = 0, i = 0;
#if defined(MT_MAT_PAIRS_ASM)
    if (direct && n_px >= 2 && p->stride_h == 1 && p->stride_w == 1 && p->pad.top == 0 && p->pad.left == 0 &&
        in_v->h == out_v->h && in_v->w == out_v->w && (in_v->c & 3) == 0 && in_v->col_stride == in_v->c &&
        in_v->row_stride == in_v->w * in_v->c && out_v->row_stride == out_v->w * out_v->col_stride) {
        /* consecutive pixels: every pair in one call, the odd last pixel below */
        mt_pw_job job = {in, out, n_px >> 1, filter, q, fd->n >> 1, k_groups, out_v->col_stride, cols};
        mt_pw_run_w16_full(&job);
        i = n_px & ~1;
        oy = i / out_v->w;
        ox = i - oy * out_v->w;
    }
#endif
    for (; i < n_px; i += 2) {
        const int32_t oy1 = ox + 1 < out_v->w ? oy : oy + 1;
        const int32_t ox1 = ox + 1 < out_v->w ? ox + 1 : 0;
        const int32_t two = i + 1 < n_px;
        const int32_t iy0 = oy * p->stride_h - p->pad.top, ix0 = ox * p->stride_w - p->pad.left;
        const int32_t iy1 = oy1 * p->stride_h - p->pad.top, ix1 = ox1 * p->stride_w - p->pad.left;
        if (two && (in_v->c & 3) == 0 && (uint32_t)iy0 < (uint32_t)in_v->h && (uint32_t)ix0 < (uint32_t)in_v->w &&
            (uint32_t)iy1 < (uint32_t)in_v->h && (uint32_t)ix1 < (uint32_t)in_v->w) {
            load_pixel_pair(in + iy0 * in_v->row_stride + ix0 * in_v->col_stride,
                            in + iy1 * in_v->row_stride + ix1 * in_v->col_stride, cols, k_groups);
#if defined(MT_MAT_PAIRS_ASM)
            if (direct) {
                mt_mat_pairs_w16_full(cols, filter, q, fd->n >> 1, out + oy * out_v->row_stride + ox * out_v->col_stride,
                                      out + oy1 * out_v->row_stride + ox1 * out_v->col_stride, skip);
                oy = ox1 + 1 < out_v->w ? oy1 : oy1 + 1;
                ox = ox1 + 1 < out_v->w ? ox1 + 1 : 0;
                continue;
            }
#endif
        } else {
            load_pixel(p, in, in_v, iy0, ix0, cols, 0, k_groups);
            if (two) {
                load_pixel(p, in, in_v, iy1, ix1, cols, 1, k_groups);
            }
        }
        int8_t *o0 = out + oy * out_v->row_stride + ox * out_v->col_stride;
        int8_t *o1 = two ? out + oy1 * out_v->row_stride + ox1 * out_v->col_stride : 0;
        mt_mat_2col_s8(cols, k_groups, filter, p->wide, q, fd->n, p, o0, o1);
        oy = ox1 + 1 < out_v->w ? oy1 : oy1 + 1;
        ox = ox1 + 1 < out_v->w ? ox1 + 1 : 0;
    }
    return MT_OK;
}
