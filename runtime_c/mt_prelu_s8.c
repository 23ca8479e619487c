/* mt_prelu_s8: int8 PRELU with int8 alpha broadcast over a 4-D output (TFLite-Micro
 * reference_ops::BroadcastPrelu4DSlow). */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_prelu_s8(const mt_prelu_params *p, const mt_broadcast *b, const int8_t *in, const int8_t *alpha,
                      int8_t *out)
{
    if (p == 0 || b == 0 || in == 0 || alpha == 0 || out == 0) {
        return MT_ERR_ARG;
    }
    MT_BROADCAST_EACH(b, in, alpha, out, x, a, (int8_t)mt_clamp(mt_prelu_one(p, x, a), -128, 127));
    return MT_OK;
}
