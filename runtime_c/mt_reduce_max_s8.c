/* mt_reduce_max_s8: TFLite REDUCE_MAX (int8, reference_ops::ReduceGeneric from the lowest value)
 * over any axes of a rank <= 4 tensor. */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_reduce_max_s8(const mt_reduce_dims *d, const int8_t *in, int8_t *out)
{
    if (d == 0 || in == 0 || out == 0) {
        return MT_ERR_ARG;
    }
    int32_t o = 0;
    MT_REDUCE_EACH(d, base, {
        int8_t m = -128;
        MT_REDUCE_INNER(d, base, k, m = in[k] > m ? in[k] : m);
        out[o++] = m;
    });
    return MT_OK;
}
