/* mt_abs_s8: ABS (int8_t), TFLite-Micro AbsEvalQuantized. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_abs_s8(const mt_abs_params *p, const int8_t *in, int8_t *out, int32_t size)
{
    if (p == 0 || in == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t d = (int32_t)in[i] - p->input_zp;
        int32_t v = d < 0 ? -d : d;
        if (p->rescale) {
            v = mt_mbqm(v, p->multiplier, p->shift);
        }
        out[i] = (int8_t)mt_clamp(v + p->output_zp, -128, 127);
    }
    return MT_OK;
}
