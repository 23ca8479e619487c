/* mt_avg_pool_s8: int8 average pooling; padding cells are not counted (TFLite semantics). */
#include "mt_nn.h"
#include "mt_quant.h"

/* The rounded average (ties away from zero), clamped to the activation range. */
static int8_t avg_out(int32_t sum, int32_t count, const mt_pool_params *p)
{
    int32_t avg = 0;
    if (count > 0) {
        avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
    }
    return (int8_t)mt_clamp(avg, p->act_min, p->act_max);
}

mt_status mt_avg_pool_s8(const mt_pool_params *p, const int8_t *in, const mt_view *in_v, int8_t *out,
                         const mt_view *out_v)
{
    if (p == 0 || in == 0 || in_v == 0 || out == 0 || out_v == 0 || in_v->c != out_v->c ||
        p->stride_h < 1 || p->stride_w < 1) {
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
            int8_t *o = out + oy * out_v->row_stride + ox * out_v->col_stride;
            const int32_t count = (y_hi - y_lo) * (x_hi - x_lo);
            int32_t c = 0;
            /* four channels per pass over the window (one pointer walk, four sums) */
            for (; c + 4 <= in_v->c; c += 4) {
                int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (int32_t y = y_lo; y < y_hi; ++y) {
                    const int8_t *px = in + y * in_v->row_stride + x_lo * in_v->col_stride + c;
                    for (int32_t x = x_lo; x < x_hi; ++x, px += in_v->col_stride) {
                        s0 += px[0];
                        s1 += px[1];
                        s2 += px[2];
                        s3 += px[3];
                    }
                }
                o[c] = avg_out(s0, count, p);
                o[c + 1] = avg_out(s1, count, p);
                o[c + 2] = avg_out(s2, count, p);
                o[c + 3] = avg_out(s3, count, p);
            }
            for (; c < in_v->c; ++c) {
                int32_t sum = 0;
                for (int32_t y = y_lo; y < y_hi; ++y) {
                    const int8_t *row = in + y * in_v->row_stride + c;
                    for (int32_t x = x_lo; x < x_hi; ++x) {
                        sum += row[x * in_v->col_stride];
                    }
                }
                o[c] = avg_out(sum, count, p);
            }
        }
    }
    return MT_OK;
}
