/* mt_softmax_s8_s16: SOFTMAX along the last axis, int8 input, int16 output (scale 1/65536, zero
 * point -32768): TFLite-Micro reference_ops::Softmax<int8_t, int16_t>, the int8 kernel's
 * arithmetic (gemmlowp exp with 5 integer bits, sum of exps in Q12, reciprocal by
 * Newton-Raphson; mt_softmax_s8_rows in mt_internal.h) with the result rounded to 16 bits
 * instead of 8. */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_softmax_s8_s16(const mt_softmax_params *p, const int8_t *in, int32_t rows, int32_t depth, int16_t *out)
{
    return mt_softmax_s8_rows(p, in, rows, depth, 16, 0, out);
}
