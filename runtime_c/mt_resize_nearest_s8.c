/* mt_resize_nearest_s8: RESIZE_NEAREST_NEIGHBOR (int8_t, NHWC views) by precomputed row/column maps. */
#include "mt_nn.h"

mt_status mt_resize_nearest_s8(const int8_t *in, const mt_view *in_v, const int32_t *y_map, const int32_t *x_map,
                               int8_t *out, const mt_view *out_v)
{
    if (in == 0 || in_v == 0 || y_map == 0 || x_map == 0 || out == 0 || out_v == 0 || in_v->c != out_v->c) {
        return MT_ERR_ARG;
    }
    for (int32_t y = 0; y < out_v->h; ++y) {
        if (y_map[y] < 0 || y_map[y] >= in_v->h) {
            return MT_ERR_ARG;
        }
        for (int32_t x = 0; x < out_v->w; ++x) {
            if (x_map[x] < 0 || x_map[x] >= in_v->w) {
                return MT_ERR_ARG;
            }
            const int8_t *src = in + y_map[y] * in_v->row_stride + x_map[x] * in_v->col_stride;
            int8_t *dst = out + y * out_v->row_stride + x * out_v->col_stride;
            for (int32_t c = 0; c < in_v->c; ++c) {
                dst[c] = src[c];
            }
        }
    }
    return MT_OK;
}
