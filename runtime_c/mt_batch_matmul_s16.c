/* mt_batch_matmul_s16: TFLite BATCH_MATMUL 16x16 (reference BatchMatMul<int16_t, int64_t>):
 * y[b, i, j] = clamp(MBQM64(sum_k a[b, i, k] * b[b, k, j]) + output_offset), zero points 0
 * (the offsets are added anyway, as TFLM does), operands addressed like mt_batch_matmul_s8. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_batch_matmul_s16(const mt_bmm_params *p, const mt_bmm_dims *d, const int16_t *a, const int16_t *b,
                              int16_t *y)
{
    if (p == 0 || d == 0 || a == 0 || b == 0 || y == 0 || d->batches < 0 || d->m < 0 || d->k < 0 || d->n < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t bt = 0; bt < d->batches; ++bt) {
        const int16_t *ab = a + (int64_t)bt * d->a_batch;
        const int16_t *bb = b + (int64_t)bt * d->b_batch;
        int16_t *yb = y + (int64_t)bt * d->y_batch;
        for (int32_t i = 0; i < d->m; ++i) {
            const int16_t *ar = ab + (int64_t)i * d->a_row;
            for (int32_t j = 0; j < d->n; ++j) {
                const int16_t *bc = bb + (int64_t)j * d->b_n;
                int64_t acc = 0;
                for (int32_t kk = 0; kk < d->k; ++kk) {
                    acc += ((int64_t)ar[kk] + p->a_offset) * ((int64_t)bc[(int64_t)kk * d->b_k] + p->b_offset);
                }
                const int32_t v = mt_mbqm64(acc, p->multiplier, p->shift) + p->output_offset;
                yb[(int64_t)i * d->y_row + j] = (int16_t)mt_clamp(v, p->act_min, p->act_max);
            }
        }
    }
    return MT_OK;
}
