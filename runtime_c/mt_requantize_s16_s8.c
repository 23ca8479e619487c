/* mt_requantize_s16_s8: QUANTIZE int16 -> int8 (TFLite-Micro reference_ops::Requantize: clamp(MBQM(q - z_in) + z_out)). */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_requantize_s16_s8(const mt_requantize_params *p, const int16_t *in, int8_t *out, int32_t size)
{
    if (p == 0 || in == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t v = mt_mbqm((int32_t)in[i] - p->input_zp, p->multiplier, p->shift) + p->output_zp;
        out[i] = (int8_t)mt_clamp(v, -128, 127);
    }
    return MT_OK;
}
