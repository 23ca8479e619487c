/* mt_add_s8: elementwise int8 addition with TFLite's arithmetic (inputs rescaled to a
 * common scale with a 2^left_shift headroom, summed, requantized). */
#include "mt_nn.h"
#include "mt_internal.h"
#include "mt_quant.h"

mt_status mt_add_s8(const mt_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int32_t size)
{
    if (p == 0 || in1 == 0 || in2 == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        out[i] = mt_add_one_s8(p, in1[i], in2[i]);
    }
    return MT_OK;
}
