/* mt_reduce_sum_s8: TFLite SUM (int8) over any axes of a rank <= 4 tensor (MT_REDUCE_SUM_BODY). */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_reduce_sum_s8(const mt_reduce_params *p, const mt_reduce_dims *d, const int8_t *in, int8_t *out)
{
    MT_REDUCE_SUM_BODY(int8_t, -128, 127, p, d, in, out);
}
