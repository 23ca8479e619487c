/* mt_reduce_sum_s16: TFLite SUM (int16) over any axes of a rank <= 4 tensor (MT_REDUCE_SUM_BODY). */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_reduce_sum_s16(const mt_reduce_params *p, const mt_reduce_dims *d, const int16_t *in, int16_t *out)
{
    MT_REDUCE_SUM_BODY(int16_t, -32768, 32767, p, d, in, out);
}
