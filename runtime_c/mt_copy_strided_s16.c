/* mt_copy_strided_s16: mt_copy_strided_s8 for int16 elements (int16 TRANSPOSE, SLICE). */
#include "mt_nn.h"

mt_status mt_copy_strided_s16(const mt_strided *s, const int16_t *in, int16_t *out)
{
    if (s == 0 || in == 0 || out == 0) {
        return MT_ERR_ARG;
    }
    for (int32_t d = 0; d < 4; ++d) {
        if (s->shape[d] < 0) {
            return MT_ERR_ARG;
        }
    }
    for (int32_t i0 = 0; i0 < s->shape[0]; ++i0) {
        for (int32_t i1 = 0; i1 < s->shape[1]; ++i1) {
            const int16_t *src = in + (int64_t)i0 * s->in_stride[0] + (int64_t)i1 * s->in_stride[1];
            int16_t *dst = out + (int64_t)i0 * s->out_stride[0] + (int64_t)i1 * s->out_stride[1];
            for (int32_t i2 = 0; i2 < s->shape[2]; ++i2) {
                const int16_t *sr = src + (int64_t)i2 * s->in_stride[2];
                int16_t *dr = dst + (int64_t)i2 * s->out_stride[2];
                for (int32_t i3 = 0; i3 < s->shape[3]; ++i3) {
                    dr[(int64_t)i3 * s->out_stride[3]] = sr[(int64_t)i3 * s->in_stride[3]];
                }
            }
        }
    }
    return MT_OK;
}
