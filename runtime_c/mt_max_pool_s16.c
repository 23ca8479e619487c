/* mt_max_pool_s16: int16 max pooling; padding cells are excluded (TFLite semantics), the
 * maximum is clamped to the activation range. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_max_pool_s16(const mt_pool_params *p, const int16_t *in, const mt_view *in_v, int16_t *out,
                          const mt_view *out_v)
{
    if (p == 0 || in == 0 || in_v == 0 || out == 0 || out_v == 0 || in_v->c != out_v->c || p->stride_h < 1 ||
        p->stride_w < 1) {
        return MT_ERR_ARG;
    }
    for (int32_t oy = 0; oy < out_v->h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad.top;
        const int32_t y_lo = iy0 < 0 ? 0 : iy0;
        const int32_t y_hi = iy0 + p->kernel_h > in_v->h ? in_v->h : iy0 + p->kernel_h;
        for (int32_t ox = 0; ox < out_v->w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad.left;
            const int32_t x_lo = ix0 < 0 ? 0 : ix0;
            const int32_t x_hi = ix0 + p->kernel_w > in_v->w ? in_v->w : ix0 + p->kernel_w;
            int16_t *o = out + oy * out_v->row_stride + ox * out_v->col_stride;
            for (int32_t c = 0; c < in_v->c; ++c) {
                int32_t m = -32768;
                for (int32_t y = y_lo; y < y_hi; ++y) {
                    for (int32_t x = x_lo; x < x_hi; ++x) {
                        const int32_t v = in[y * in_v->row_stride + x * in_v->col_stride + c];
                        m = v > m ? v : m;
                    }
                }
                o[c] = (int16_t)mt_clamp(m, p->act_min, p->act_max);
            }
        }
    }
    return MT_OK;
}
