/* mt_leaky_relu_s8: LEAKY_RELU (int8_t), TFLite-Micro reference_ops::QuantizeLeakyRelu. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_leaky_relu_s8(const mt_leaky_relu_params *p, const int8_t *in, int8_t *out, int32_t size)
{
    if (p == 0 || in == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t x = (int32_t)in[i] - p->input_zp;
        const int32_t v = x >= 0 ? mt_mbqm(x, p->identity_multiplier, p->identity_shift)
                                 : mt_mbqm(x, p->alpha_multiplier, p->alpha_shift);
        out[i] = (int8_t)mt_clamp(p->output_zp + v, -128, 127);
    }
    return MT_OK;
}
