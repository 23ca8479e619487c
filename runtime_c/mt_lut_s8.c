/* mt_lut_s8: elementwise int8 -> int8 through a 256-entry table (GELU and any other
 * elementwise function of one int8 input: exact, one load per element). */
#include "mt_nn.h"

mt_status mt_lut_s8(const int8_t *lut, const int8_t *in, int8_t *out, int32_t size)
{
    if (lut == 0 || in == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        out[i] = lut[(int32_t)in[i] + 128];
    }
    return MT_OK;
}
