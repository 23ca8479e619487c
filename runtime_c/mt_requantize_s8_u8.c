/* mt_requantize_s8_u8: QUANTIZE int8 -> uint8 (TFLite-Micro reference_ops::Requantize: clamp(MBQM(q - z_in) + z_out)). */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_requantize_s8_u8(const mt_requantize_params *p, const int8_t *in, uint8_t *out, int32_t size)
{
    if (p == 0 || in == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t v = mt_mbqm((int32_t)in[i] - p->input_zp, p->multiplier, p->shift) + p->output_zp;
        out[i] = (uint8_t)mt_clamp(v, 0, 255);
    }
    return MT_OK;
}
