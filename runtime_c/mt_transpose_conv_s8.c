/* mt_transpose_conv_s8: int8 transposed convolution (TFLite TRANSPOSE_CONV), portable C99.
 * TFLite-Micro scatters every input pixel into an int32 scratch of the whole output; this
 * kernel gathers instead (output-stationary, no scratch): output (oy, ox) sums the taps whose
 * input row iy = (oy + pad.top - ky) / stride_h is whole and inside the input (likewise
 * columns). Integer sums are order-independent, so the result is the same. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_transpose_conv_s8(const mt_conv_params *p, const mt_pc_quant *q, const int8_t *in,
                               const mt_view *in_v, const int8_t *filter, const mt_dims *fd, const int32_t *bias,
                               int8_t *out, const mt_view *out_v)
{
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        fd->c != in_v->c || fd->n != out_v->c || p->stride_h < 1 || p->stride_w < 1) {
        return MT_ERR_ARG;
    }
    const int32_t kh = fd->h, kw = fd->w, ic = fd->c;
    for (int32_t oy = 0; oy < out_v->h; ++oy) {
        for (int32_t ox = 0; ox < out_v->w; ++ox) {
            int8_t *o = out + oy * out_v->row_stride + ox * out_v->col_stride;
            for (int32_t oc = 0; oc < fd->n; ++oc) {
                int64_t acc = 0;
                for (int32_t ky = 0; ky < kh; ++ky) {
                    const int32_t ty = oy + p->pad.top - ky;
                    if (ty < 0 || ty % p->stride_h != 0 || ty / p->stride_h >= in_v->h) {
                        continue;
                    }
                    const int32_t iy = ty / p->stride_h;
                    for (int32_t kx = 0; kx < kw; ++kx) {
                        const int32_t tx = ox + p->pad.left - kx;
                        if (tx < 0 || tx % p->stride_w != 0 || tx / p->stride_w >= in_v->w) {
                            continue;
                        }
                        const int8_t *x = in + iy * in_v->row_stride + (tx / p->stride_w) * in_v->col_stride;
                        const int8_t *w = filter + ((oc * kh + ky) * kw + kx) * ic;
                        for (int32_t c = 0; c < ic; ++c) {
                            acc += ((int32_t)x[c] + p->input_offset) * (int32_t)w[c];
                        }
                    }
                }
                if (bias != 0) {
                    acc += bias[oc];
                }
                const int32_t v = mt_mbqm(mt_wrap32(acc), q->multiplier[oc], q->shift[oc]) + p->output_offset;
                o[oc] = (int8_t)mt_clamp(v, p->act_min, p->act_max);
            }
        }
    }
    return MT_OK;
}
