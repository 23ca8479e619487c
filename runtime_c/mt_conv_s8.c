/* mt_conv_s8: int8 2-D convolution (per-channel quantization), portable C99. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_conv_s8(const mt_conv_params *p, const mt_pc_quant *q, const int8_t *in,
                     const mt_view *in_v, const int8_t *filter, const mt_dims *fd,
                     const int32_t *bias, int8_t *out, const mt_view *out_v, void *scratch)
{
    (void)scratch;
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        fd->c != in_v->c || fd->n != out_v->c || p->stride_h < 1 || p->stride_w < 1 ||
        p->dilation_h < 1 || p->dilation_w < 1) {
        return MT_ERR_ARG;
    }
    const int32_t kh = fd->h, kw = fd->w, ic = fd->c, oc_n = fd->n;
    const int32_t filter_row = kw * ic;
    const int32_t filter_oc = kh * filter_row;
    for (int32_t oy = 0; oy < out_v->h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad.top;
        for (int32_t ox = 0; ox < out_v->w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad.left;
            int8_t *o = out + oy * out_v->row_stride + ox * out_v->col_stride;
            for (int32_t oc = 0; oc < oc_n; ++oc) {
                const int8_t *f = filter + oc * filter_oc;
                /* |acc| <= 255 * 128 * kh * kw * ic: no int32 overflow below 65000 taps. */
                int32_t acc = 0;
                for (int32_t ky = 0; ky < kh; ++ky) {
                    const int32_t iy = iy0 + ky * p->dilation_h;
                    if (iy < 0 || iy >= in_v->h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < kw; ++kx) {
                        const int32_t ix = ix0 + kx * p->dilation_w;
                        if (ix < 0 || ix >= in_v->w) {
                            continue;
                        }
                        const int8_t *x = in + iy * in_v->row_stride + ix * in_v->col_stride;
                        const int8_t *w = f + ky * filter_row + kx * ic;
                        for (int32_t c = 0; c < ic; ++c) {
                            acc += ((int32_t)x[c] + p->input_offset) * (int32_t)w[c];
                        }
                    }
                }
                if (bias != 0) {
                    acc = mt_wrap32((int64_t)acc + bias[oc]); /* wraps as the reference */
                }
                acc = mt_mbqm(acc, q->multiplier[oc], q->shift[oc]) + p->output_offset;
                o[oc] = (int8_t)mt_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
    return MT_OK;
}

int32_t mt_conv_s8_get_buffer_size(const mt_dims *fd, const mt_view *in_v)
{
    (void)fd;
    (void)in_v;
    return 0;
}
