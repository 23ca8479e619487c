/* mt_depthwise_conv_s8: int8 depthwise convolution (per-channel quantization), portable C99.
 *
 * Out of place, it needs no scratch (mt_depthwise_conv_s8_get_buffer_size returns 0).
 * Called with out == in it forwards to mt_depthwise_conv_inplace_s8, which needs `scratch`
 * of mt_depthwise_conv_inplace_s8_get_buffer_size() bytes (see mt_depthwise_conv_inplace_s8.c
 * for what in-place supports).
 */
#include "mt_nn.h"
#include "mt_internal.h"
#include "mt_quant.h"

void mt_depthwise_conv_pixel_s8(const mt_conv_params *p, const mt_pc_quant *q, int32_t m,
                                const int8_t *in, const mt_view *in_v, const int8_t *filter,
                                const mt_dims *fd, const int32_t *bias, int32_t oy, int32_t ox, int8_t *o)
{
    const int32_t kh = fd->h, kw = fd->w, oc_n = fd->c;
    const int32_t iy0 = oy * p->stride_h - p->pad.top;
    const int32_t ix0 = ox * p->stride_w - p->pad.left;
    for (int32_t oc = 0; oc < oc_n; ++oc) {
        const int32_t ic = oc / m;
        int32_t acc = 0;
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int32_t iy = iy0 + ky * p->dilation_h;
            if (iy < 0 || iy >= in_v->h) {
                continue;
            }
            const int8_t *row = in + iy * in_v->row_stride + ic;
            const int8_t *frow = filter + ky * kw * oc_n + oc;
            for (int32_t kx = 0; kx < kw; ++kx) {
                const int32_t ix = ix0 + kx * p->dilation_w;
                if (ix < 0 || ix >= in_v->w) {
                    continue;
                }
                acc += ((int32_t)row[ix * in_v->col_stride] + p->input_offset) * (int32_t)frow[kx * oc_n];
            }
        }
        if (bias != 0) {
            acc = mt_wrap32((int64_t)acc + bias[oc]); /* wraps as the reference */
        }
        acc = mt_mbqm(acc, q->multiplier[oc], q->shift[oc]) + p->output_offset;
        o[oc] = (int8_t)mt_clamp(acc, p->act_min, p->act_max);
    }
}

mt_status mt_depthwise_conv_s8(const mt_conv_params *p, const mt_pc_quant *q, int32_t depth_multiplier,
                               const int8_t *in, const mt_view *in_v, const int8_t *filter,
                               const mt_dims *fd, const int32_t *bias, int8_t *out,
                               const mt_view *out_v, void *scratch)
{
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        depth_multiplier < 1 || fd->c != in_v->c * depth_multiplier || out_v->c != fd->c ||
        p->stride_h < 1 || p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1) {
        return MT_ERR_ARG;
    }
    if (out == in) {
        if (depth_multiplier != 1 || out_v->row_stride != in_v->row_stride ||
            out_v->col_stride != in_v->col_stride) {
            return MT_ERR_ARG;
        }
        return mt_depthwise_conv_inplace_s8(p, q, out, in_v, out_v, filter, fd, bias, scratch);
    }
    for (int32_t oy = 0; oy < out_v->h; ++oy) {
        for (int32_t ox = 0; ox < out_v->w; ++ox) {
            mt_depthwise_conv_pixel_s8(p, q, depth_multiplier, in, in_v, filter, fd, bias, oy, ox,
                                       out + oy * out_v->row_stride + ox * out_v->col_stride);
        }
    }
    return MT_OK;
}

int32_t mt_depthwise_conv_s8_get_buffer_size(const mt_dims *fd, const mt_view *in_v)
{
    (void)fd;
    (void)in_v;
    return 0;
}
