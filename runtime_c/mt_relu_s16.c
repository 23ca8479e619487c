/* mt_relu_s16: standalone int16 ReLU family (RELU / RELU_N1_TO_1 with requantization, RELU6 as a
 * plain clamp in the input's quantization, as TFLite-Micro does). */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_relu_s16(const mt_relu_params *p, const int16_t *in, int16_t *out, int32_t size)
{
    if (p == 0 || in == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        int32_t v = in[i];
        if (p->rescale) {
            v = p->output_zp + mt_mbqm(v - p->input_zp, p->output_multiplier, p->output_shift);
        }
        out[i] = (int16_t)mt_clamp(v, p->act_min, p->act_max);
    }
    return MT_OK;
}
