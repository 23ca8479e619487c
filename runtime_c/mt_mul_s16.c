/* mt_mul_s16: int16 MUL over a 4-D output with per-input strides (0 = broadcast);
 * the same arithmetic as the int8 kernel, clamped to the int16 activation range. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_mul_s16(const mt_mul_params *p, const mt_broadcast *b, const int16_t *in1, const int16_t *in2,
                     int16_t *out)
{
    if (p == 0 || b == 0 || in1 == 0 || in2 == 0 || out == 0) {
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
                    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
                    const int32_t raw = mt_mbqm(prod, p->output_multiplier, p->output_shift) + p->output_offset;
                    out[o++] = (int16_t)mt_clamp(raw, p->act_min, p->act_max);
                }
            }
        }
    }
    return MT_OK;
}
