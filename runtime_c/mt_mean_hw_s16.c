/* mt_mean_hw_s16: int16 mean over the H and W axes of a view (global average pooling form),
 * the int8 kernel's arithmetic (TFLM reduce.cc; the sum wraps to int32 as the reference). The
 * count is in_v->h * in_v->w; the multiplier already includes the 1/count factor. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_mean_hw_s16(const mt_mean_params *p, const int16_t *in, const mt_view *in_v, int16_t *out)
{
    if (p == 0 || in == 0 || in_v == 0 || out == 0) {
        return MT_ERR_ARG;
    }
    const int32_t count = in_v->h * in_v->w;
    for (int32_t c = 0; c < in_v->c; ++c) {
        int64_t sum = 0;
        for (int32_t y = 0; y < in_v->h; ++y) {
            const int16_t *row = in + y * in_v->row_stride + c;
            for (int32_t x = 0; x < in_v->w; ++x) {
                sum += row[x * in_v->col_stride];
            }
        }
        const int32_t s = mt_wrap32(sum - (int64_t)p->input_zp * count);
        const int32_t v = mt_mbqm(s, p->multiplier, p->shift) + p->output_zp;
        out[c] = (int16_t)mt_clamp(v, -32768, 32767);
    }
    return MT_OK;
}
