/* mt_batch_matmul_s8: y[b, i, j] = requant(sum_k (a[b, i, k] + a_offset) * (b[b, k, j] + b_offset)),
 * every operand addressed through element strides (transposed B, heads inside a wider token
 * row, row blocks of a larger matrix are all just strides). int32 accumulation, MBQM. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_batch_matmul_s8(const mt_bmm_params *p, const mt_bmm_dims *d, const int8_t *a, const int8_t *b,
                             int8_t *y)
{
    if (p == 0 || d == 0 || a == 0 || b == 0 || y == 0 || d->batches < 0 || d->m < 0 || d->k < 0 || d->n < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t bt = 0; bt < d->batches; ++bt) {
        const int8_t *ab = a + (int64_t)bt * d->a_batch;
        const int8_t *bb = b + (int64_t)bt * d->b_batch;
        int8_t *yb = y + (int64_t)bt * d->y_batch;
        for (int32_t i = 0; i < d->m; ++i) {
            const int8_t *ar = ab + (int64_t)i * d->a_row;
            for (int32_t j = 0; j < d->n; ++j) {
                const int8_t *bc = bb + (int64_t)j * d->b_n;
                int32_t acc = 0;
                for (int32_t kk = 0; kk < d->k; ++kk) {
                    acc += ((int32_t)ar[kk] + p->a_offset) * ((int32_t)bc[(int64_t)kk * d->b_k] + p->b_offset);
                }
                acc = mt_mbqm(acc, p->multiplier, p->shift) + p->output_offset;
                yb[(int64_t)i * d->y_row + j] = (int8_t)mt_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
    return MT_OK;
}
