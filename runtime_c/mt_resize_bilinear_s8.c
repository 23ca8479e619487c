/* mt_resize_bilinear_s8: TFLite RESIZE_BILINEAR (int8; reference ResizeBilinearInteger, no float).
 * Per output row y: rows y0 = y_map[3y], y1 = y_map[3y+1] weighted 1024 - fy and fy (fy = y_map[3y+2]);
 * likewise columns. The 2^20-scaled sum is rounded half away from zero and cast to int8 (as TFLM
 * does, without a clamp: the weights sum to 2^20, so the result lies between the inputs). */
#include "mt_nn.h"

mt_status mt_resize_bilinear_s8(const int8_t *in, const mt_view *in_v, const int32_t *y_map, const int32_t *x_map,
                                int8_t *out, const mt_view *out_v)
{
    if (in == 0 || in_v == 0 || y_map == 0 || x_map == 0 || out == 0 || out_v == 0 || in_v->c != out_v->c) {
        return MT_ERR_ARG;
    }
    const int64_t one = 1 << 10;
    for (int32_t y = 0; y < out_v->h; ++y) {
        const int32_t y0 = y_map[3 * y], y1 = y_map[3 * y + 1];
        const int64_t fy = y_map[3 * y + 2];
        if (y0 < 0 || y0 >= in_v->h || y1 < 0 || y1 >= in_v->h) {
            return MT_ERR_ARG;
        }
        for (int32_t x = 0; x < out_v->w; ++x) {
            const int32_t x0 = x_map[3 * x], x1 = x_map[3 * x + 1];
            const int64_t fx = x_map[3 * x + 2];
            if (x0 < 0 || x0 >= in_v->w || x1 < 0 || x1 >= in_v->w) {
                return MT_ERR_ARG;
            }
            const int8_t *ll = in + y0 * in_v->row_stride + x0 * in_v->col_stride;
            const int8_t *lu = in + y1 * in_v->row_stride + x0 * in_v->col_stride;
            const int8_t *rl = in + y0 * in_v->row_stride + x1 * in_v->col_stride;
            const int8_t *ru = in + y1 * in_v->row_stride + x1 * in_v->col_stride;
            int8_t *o = out + y * out_v->row_stride + x * out_v->col_stride;
            for (int32_t c = 0; c < in_v->c; ++c) {
                const int64_t v = (int64_t)ll[c] * (one - fy) * (one - fx) + (int64_t)lu[c] * fy * (one - fx) +
                                  (int64_t)rl[c] * (one - fy) * fx + (int64_t)ru[c] * fy * fx;
                const int64_t r = (v + (v > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20);
                o[c] = (int8_t)(uint8_t)(uint32_t)r;
            }
        }
    }
    return MT_OK;
}
