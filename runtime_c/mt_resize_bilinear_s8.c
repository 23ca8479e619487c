/* mt_resize_bilinear_s8: TFLite RESIZE_BILINEAR (int8; reference ResizeBilinearInteger, no float).
 * Per output row y: rows y0 = y_map[3y], y1 = y_map[3y+1] weighted 1024 - fy and fy (fy = y_map[3y+2]);
 * likewise columns. The 2^20-scaled sum is rounded half away from zero (C division, as TFLM) and
 * cast to int8 (TFLM casts without a clamp: the weights sum to 2^20).
 *
 * TFLM sums in int64; int32 is exact here: fy, fx lie in [-512, 1023] (negative only with
 * half-pixel centers, where y0 == y1 == 0), so |1024 - f| + |f| <= 2048 and
 * |sum| <= 128 * 2048 * 2048 = 2^29, plus the 2^19 rounding term. */
#include "mt_nn.h"

mt_status mt_resize_bilinear_s8(const int8_t *in, const mt_view *in_v, const int32_t *y_map, const int32_t *x_map,
                                int8_t *out, const mt_view *out_v)
{
    if (in == 0 || in_v == 0 || y_map == 0 || x_map == 0 || out == 0 || out_v == 0 || in_v->c != out_v->c) {
        return MT_ERR_ARG;
    }
    const int32_t one = 1 << 10;
    for (int32_t x = 0; x < out_v->w; ++x) {
        const int32_t fx = x_map[3 * x + 2];
        if (x_map[3 * x] < 0 || x_map[3 * x] >= in_v->w || x_map[3 * x + 1] < 0 || x_map[3 * x + 1] >= in_v->w ||
            fx < -512 || fx >= one) {
            return MT_ERR_ARG;
        }
    }
    for (int32_t y = 0; y < out_v->h; ++y) {
        const int32_t y0 = y_map[3 * y], y1 = y_map[3 * y + 1];
        const int32_t fy = y_map[3 * y + 2];
        if (y0 < 0 || y0 >= in_v->h || y1 < 0 || y1 >= in_v->h || fy < -512 || fy >= one) {
            return MT_ERR_ARG;
        }
        const int8_t *r0 = in + y0 * in_v->row_stride;
        const int8_t *r1 = in + y1 * in_v->row_stride;
        for (int32_t x = 0; x < out_v->w; ++x) {
            const int32_t x0 = x_map[3 * x] * in_v->col_stride, x1 = x_map[3 * x + 1] * in_v->col_stride;
            const int32_t fx = x_map[3 * x + 2];
            const int32_t w_ll = (one - fy) * (one - fx), w_lu = fy * (one - fx);
            const int32_t w_rl = (one - fy) * fx, w_ru = fy * fx;
            int8_t *o = out + y * out_v->row_stride + x * out_v->col_stride;
            for (int32_t c = 0; c < in_v->c; ++c) {
                const int32_t v = r0[x0 + c] * w_ll + r1[x0 + c] * w_lu + r0[x1 + c] * w_rl + r1[x1 + c] * w_ru;
                const int32_t r = (v + (v > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20);
                o[c] = (int8_t)r;
            }
        }
    }
    return MT_OK;
}
