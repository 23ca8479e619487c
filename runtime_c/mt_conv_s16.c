/* mt_conv_s16: 16x8 2-D convolution (int16 activations, zero point 0; int8 symmetric
 * per-channel weights), portable C99. TFLite-Micro reference_integer_ops::ConvPerChannel for
 * int16: with an int64 bias (or none) the accumulator is int64 and requantized by the 64-bit
 * MultiplyByQuantizedMultiplier (multiplier rounded to 15 bits, one rounding shift); with an
 * int32 bias it is int32 (wrapping) and requantized by the usual double-rounding MBQM. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_conv_s16(const mt_conv_params *p, const mt_pc_quant *q, const int16_t *in, const mt_view *in_v,
                      const int8_t *filter, const mt_dims *fd, const int64_t *bias64, const int32_t *bias32,
                      int16_t *out, const mt_view *out_v)
{
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        (bias64 != 0 && bias32 != 0) || fd->c != in_v->c || fd->n != out_v->c || p->stride_h < 1 ||
        p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1) {
        return MT_ERR_ARG;
    }
    const int32_t kh = fd->h, kw = fd->w, ic = fd->c, oc_n = fd->n;
    const int32_t filter_row = kw * ic;
    const int32_t filter_oc = kh * filter_row;
    for (int32_t oy = 0; oy < out_v->h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad.top;
        for (int32_t ox = 0; ox < out_v->w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad.left;
            int16_t *o = out + oy * out_v->row_stride + ox * out_v->col_stride;
            for (int32_t oc = 0; oc < oc_n; ++oc) {
                const int8_t *f = filter + oc * filter_oc;
                int64_t acc = 0; /* |x * w| < 2^22 per tap */
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
                        const int16_t *x = in + iy * in_v->row_stride + ix * in_v->col_stride;
                        const int8_t *w = f + ky * filter_row + kx * ic;
                        for (int32_t c = 0; c < ic; ++c) {
                            acc += (int64_t)((int32_t)x[c] * (int32_t)w[c]);
                        }
                    }
                }
                int32_t v;
                if (bias32 != 0) {
                    v = mt_mbqm(mt_wrap32(acc + bias32[oc]), q->multiplier[oc], q->shift[oc]);
                } else {
                    v = mt_mbqm64(acc + (bias64 != 0 ? bias64[oc] : 0), q->multiplier[oc], q->shift[oc]);
                }
                v += p->output_offset;
                o[oc] = (int16_t)mt_clamp(v, p->act_min, p->act_max);
            }
        }
    }
    return MT_OK;
}
