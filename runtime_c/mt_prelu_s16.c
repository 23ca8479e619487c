/* mt_prelu_s16: int16 PRELU with int8 alpha broadcast over a 4-D output (TFLite-Micro
 * reference_ops::BroadcastPrelu4DSlow<int16_t, int8_t>). */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_prelu_s16(const mt_prelu_params *p, const mt_broadcast *b, const int16_t *in, const int8_t *alpha,
                       int16_t *out)
{
    if (p == 0 || b == 0 || in == 0 || alpha == 0 || out == 0) {
        return MT_ERR_ARG;
    }
    MT_BROADCAST_EACH(b, in, alpha, out, x, a, (int16_t)mt_clamp(mt_prelu_one(p, x, a), -32768, 32767));
    return MT_OK;
}
