/* mt_pad_s8: spatial padding of an NHWC view. out_v is the whole padded output
 * (out_v->h = pad.top + in_v->h + pad.bottom, likewise w; same channel count); `in` is copied
 * into its interior and the border is filled with pad_value. */
#include "mt_nn.h"

mt_status mt_pad_s8(const int8_t *in, const mt_view *in_v, int8_t *out, const mt_view *out_v,
                    const mt_pad *pad, int8_t pad_value)
{
    if (in == 0 || in_v == 0 || out == 0 || out_v == 0 || pad == 0 || in_v->c != out_v->c ||
        out_v->h != pad->top + in_v->h + pad->bottom || out_v->w != pad->left + in_v->w + pad->right) {
        return MT_ERR_ARG;
    }
    for (int32_t y = 0; y < out_v->h; ++y) {
        const int32_t iy = y - pad->top;
        const int32_t row_inside = iy >= 0 && iy < in_v->h;
        for (int32_t x = 0; x < out_v->w; ++x) {
            const int32_t ix = x - pad->left;
            int8_t *o = out + y * out_v->row_stride + x * out_v->col_stride;
            if (row_inside && ix >= 0 && ix < in_v->w) {
                const int8_t *s = in + iy * in_v->row_stride + ix * in_v->col_stride;
                for (int32_t c = 0; c < out_v->c; ++c) {
                    o[c] = s[c];
                }
            } else {
                for (int32_t c = 0; c < out_v->c; ++c) {
                    o[c] = pad_value;
                }
            }
        }
    }
    return MT_OK;
}
