/* mt_maximum_s16: int16 MAXIMUM of the raw quantized values (TFLite-Micro), 4-D broadcast. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_maximum_s16(const mt_broadcast *b, const int16_t *in1, const int16_t *in2, int16_t *out)
{
    if (b == 0 || in1 == 0 || in2 == 0 || out == 0) {
        return MT_ERR_ARG;
    }
    int32_t o = 0;
    for (int32_t i0 = 0; i0 < b->shape[0]; ++i0) {
        for (int32_t i1 = 0; i1 < b->shape[1]; ++i1) {
            for (int32_t i2 = 0; i2 < b->shape[2]; ++i2) {
                const int16_t *a1 = in1 + i0 * b->stride1[0] + i1 * b->stride1[1] + i2 * b->stride1[2];
                const int16_t *a2 = in2 + i0 * b->stride2[0] + i1 * b->stride2[1] + i2 * b->stride2[2];
                for (int32_t i3 = 0; i3 < b->shape[3]; ++i3) {
                    const int32_t x1 = a1[i3 * b->stride1[3]];
                    const int32_t x2 = a2[i3 * b->stride2[3]];
                    out[o++] = (int16_t)(x1 > x2 ? x1 : x2);
                }
            }
        }
    }
    return MT_OK;
}
