/* mt_rsqrt_s8: int8 RSQRT through the compiler's table of TFLite-Micro's RsqrtEvalQuantized;
 * fails (MT_ERR_ARG) on an input below the zero point, as TFLM's invoke does. */
#include "mt_nn.h"

mt_status mt_rsqrt_s8(const int8_t *lut, int32_t input_zp, const int8_t *in, int8_t *out, int32_t size)
{
    if (lut == 0 || in == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        if ((int32_t)in[i] < input_zp) {
            return MT_ERR_ARG;
        }
    }
    return mt_lut_s8(lut, in, out, size);
}
