/* Helpers shared by several kernel files of the portable library (not part of the API). */
#ifndef MT_INTERNAL_H
#define MT_INTERNAL_H

#include "mt_nn.h"
#include "mt_quant.h"

/* One element of mt_add_s8 (TFLite int8 ADD). */
static inline int8_t mt_add_one_s8(const mt_add_params *p, int32_t a, int32_t b)
{
    const int32_t sa = mt_mbqm_smaller_than_one(mt_shl_wrap32(a + p->input1_offset, p->left_shift),
                                                p->input1_multiplier, p->input1_shift);
    const int32_t sb = mt_mbqm_smaller_than_one(mt_shl_wrap32(b + p->input2_offset, p->left_shift),
                                                p->input2_multiplier, p->input2_shift);
    const int32_t raw = mt_mbqm_smaller_than_one(mt_wrap32((int64_t)sa + sb), p->output_multiplier,
                                                 p->output_shift) + p->output_offset;
    return (int8_t)mt_clamp(raw, p->act_min, p->act_max);
}

/* One element of mt_mul_s8 (TFLite int8 MUL). */
static inline int8_t mt_mul_one_s8(const mt_mul_params *p, int32_t a, int32_t b)
{
    const int32_t prod = (a + p->input1_offset) * (b + p->input2_offset);
    const int32_t raw = mt_mbqm(prod, p->output_multiplier, p->output_shift) + p->output_offset;
    return (int8_t)mt_clamp(raw, p->act_min, p->act_max);
}

/* One output pixel of a depthwise convolution, all output channels, into o[0 .. fd->c)
 * (defined in mt_depthwise_conv_s8.c, shared with the in-place kernel). */
void mt_depthwise_conv_pixel_s8(const mt_conv_params *p, const mt_pc_quant *q, int32_t m,
                                const int8_t *in, const mt_view *in_v, const int8_t *filter,
                                const mt_dims *fd, const int32_t *bias, int32_t oy, int32_t ox, int8_t *o);

#endif /* MT_INTERNAL_H */
