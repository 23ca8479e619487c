/* mt_softmax_s8: int8 softmax along the last axis (TFLite-Micro's int8 arithmetic: gemmlowp
 * exp with 5 integer bits, sum of exps in Q12, reciprocal by Newton-Raphson; the body,
 * mt_softmax_s8_rows, in mt_internal.h, shared with mt_softmax_s8_s16). */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_softmax_s8(const mt_softmax_params *p, const int8_t *in, int32_t rows, int32_t depth, int8_t *out)
{
    return mt_softmax_s8_rows(p, in, rows, depth, 8, out, 0);
}
