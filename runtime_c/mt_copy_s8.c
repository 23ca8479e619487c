/* mt_copy_s8: copies a view into another view of the same extent. Concatenation along any
 * NHWC axis is one copy per input into an offset view of the output (for channels: base
 * + channel offset, col_stride = total channels). */
#include "mt_nn.h"

mt_status mt_copy_s8(const int8_t *in, const mt_view *in_v, int8_t *out, const mt_view *out_v)
{
    if (in == 0 || in_v == 0 || out == 0 || out_v == 0 || in_v->h != out_v->h || in_v->w != out_v->w ||
        in_v->c != out_v->c) {
        return MT_ERR_ARG;
    }
    for (int32_t y = 0; y < in_v->h; ++y) {
        for (int32_t x = 0; x < in_v->w; ++x) {
            const int8_t *s = in + y * in_v->row_stride + x * in_v->col_stride;
            int8_t *d = out + y * out_v->row_stride + x * out_v->col_stride;
            for (int32_t c = 0; c < in_v->c; ++c) {
                d[c] = s[c];
            }
        }
    }
    return MT_OK;
}
