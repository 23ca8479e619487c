/* mt_depthwise_conv_s16: 16x8 depthwise convolution (int16 activations, zero point 0; int8
 * symmetric per-channel weights; int64 bias or none), portable C99. TFLite-Micro
 * reference_integer_ops::DepthwiseConvPerChannel for int16: int64 accumulator, the 64-bit
 * MultiplyByQuantizedMultiplier (mt_mbqm64). Output channel oc reads input channel oc / m. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_depthwise_conv_s16(const mt_conv_params *p, const mt_pc_quant *q, int32_t depth_multiplier,
                                const int16_t *in, const mt_view *in_v, const int8_t *filter, const mt_dims *fd,
                                const int64_t *bias, int16_t *out, const mt_view *out_v)
{
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        depth_multiplier < 1 || fd->c != in_v->c * depth_multiplier || fd->c != out_v->c || p->stride_h < 1 ||
        p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1) {
        return MT_ERR_ARG;
    }
    const int32_t kh = fd->h, kw = fd->w, oc_n = fd->c;
    for (int32_t oy = 0; oy < out_v->h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad.top;
        for (int32_t ox = 0; ox < out_v->w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad.left;
            int16_t *o = out + oy * out_v->row_stride + ox * out_v->col_stride;
            for (int32_t oc = 0; oc < oc_n; ++oc) {
                const int32_t ic = oc / depth_multiplier;
                int64_t acc = 0;
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
                        const int32_t x = in[iy * in_v->row_stride + ix * in_v->col_stride + ic];
                        acc += (int64_t)(x * (int32_t)filter[(ky * kw + kx) * oc_n + oc]);
                    }
                }
                if (bias != 0) {
                    acc += bias[oc];
                }
                const int32_t v = mt_mbqm64(acc, q->multiplier[oc], q->shift[oc]) + p->output_offset;
                o[oc] = (int16_t)mt_clamp(v, p->act_min, p->act_max);
            }
        }
    }
    return MT_OK;
}
