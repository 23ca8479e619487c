/* mt_batch_matmul_s8_dsp: mt_batch_matmul_s8 with SMLAD / SMLAxy inner loops, bit-exact with it.
 *
 * Same parameters and strided operands as the portable kernel (mt_nn.h); two layouts run the
 * SIMD paths, anything else (and any target without the DSP extension) runs the portable one:
 *  - B contiguous along k (b_k == 1: attention scores Q K^T, K stored [tokens, features]):
 *    the A row, plus its offset, is widened once into scratch as int16 pairs (k0|k2, k1|k3);
 *    each column of B is then read 4 bytes at a time (LDR + 2 SXTB16 + 2 SMLAD per 4 MACs),
 *    two columns per pass so each A word is loaded once for both.
 *  - B contiguous along n (b_n == 1: probabilities x V, V stored [tokens, features]):
 *    the A row, plus its offset, goes to scratch as one word per k with the value in both
 *    halves; per k one LDR of B gives four columns (2 SXTB16, SMLABB/SMLATT into 4 sums).
 * The B offset is applied once per output: sum (a + ao)(b + bo) = sum (a + ao) b + bo sum (a + ao).
 * Requantization is the 5-instruction fast form when the accumulator bound allows it exactly
 * (|acc| << (left shift + 1) < 2^30, as codegen/kernels.py checks for the other kernels),
 * else mt_mbqm. Scratch: mt_batch_matmul_s8_dsp_get_buffer_size(k) bytes, 4-byte aligned.
 */
#include "mt_quant.h"
#include "mt_simd.h"

int32_t mt_batch_matmul_s8_dsp_get_buffer_size(int32_t k)
{
    return k > 0 ? 16 * ((k + 3) / 4) : 4;
}

#if MT_SIMD

typedef struct {
    int32_t fast, mult, ls, rnd, rs, shift;
    mt_out_stage os;
} mt_bmm_rq;

static mt_bmm_rq mt_bmm_rq_of(const mt_bmm_params *p, int32_t k)
{
    mt_bmm_rq r;
    const int32_t left = p->shift > 0 ? p->shift : 0, e = p->shift < 0 ? -p->shift : 0;
    const int64_t am = p->a_offset > 0 ? 127 + p->a_offset : 128 - p->a_offset;
    const int64_t bm = p->b_offset > 0 ? 127 + p->b_offset : 128 - p->b_offset;
    const int64_t bound = (int64_t)k * am * bm;
    r.fast = e <= 30 && left <= 28 && (bound << (left + 1)) < ((int64_t)1 << 30);
    r.mult = p->multiplier;
    r.shift = p->shift;
    r.ls = left + 1;
    r.rnd = (int32_t)(1u << (e > 30 ? 0 : e));
    r.rs = e + 1;
    r.os.zp = p->output_offset;
    r.os.lo = p->act_min;
    r.os.hi = p->act_max;
    r.os.full = p->act_min <= -128 && p->act_max >= 127;
    return r;
}

MT_INLINE int8_t mt_bmm_out(int32_t acc, const mt_bmm_rq *r)
{
    if (r->fast) {
        return mt_requant_out(acc, r->mult, r->ls, r->rnd, r->rs, r->os);
    }
    return (int8_t)mt_clamp(mt_mbqm(acc, r->mult, r->shift) + r->os.zp, r->os.lo, r->os.hi);
}

/* Y row i of one batch, B contiguous along k. ws: the widened A row (k_groups word pairs). */
static void mt_bmm_row_dot(const mt_bmm_dims *d, int32_t ao, int32_t bo, const int8_t *ar, const int8_t *bb,
                           int8_t *yr, int32_t *ws, const mt_bmm_rq *rq)
{
    const int32_t kg = d->k / 4, kt = d->k - 4 * kg;
    int32_t sa = 0;
    for (int32_t g = 0; g < kg; ++g) {
        const int32_t v0 = ar[4 * g] + ao, v1 = ar[4 * g + 1] + ao, v2 = ar[4 * g + 2] + ao, v3 = ar[4 * g + 3] + ao;
        ws[2 * g] = (int32_t)(((uint32_t)v0 & 0xFFFFu) | ((uint32_t)v2 << 16));
        ws[2 * g + 1] = (int32_t)(((uint32_t)v1 & 0xFFFFu) | ((uint32_t)v3 << 16));
        sa += v0 + v1 + v2 + v3;
    }
    for (int32_t kk = 4 * kg; kk < d->k; ++kk) {
        sa += ar[kk] + ao;
    }
    const int32_t fold = bo * sa;
    int32_t j = 0;
    for (; j + 2 <= d->n; j += 2) {
        const int8_t *b0 = bb + j * d->b_n, *b1 = b0 + d->b_n;
        const int32_t *xp = ws;
        int32_t acc0 = 0, acc1 = 0;
        for (int32_t g = 0; g < kg; ++g) {
            int32_t x0, x1;
            MT_LD2(xp, x0, x1);
            const int32_t w0 = mt_read_s8x4(b0 + 4 * g), w1 = mt_read_s8x4(b1 + 4 * g);
            acc0 = __smlad(x0, mt_sxtb16(w0), acc0);
            acc0 = __smlad(x1, mt_sxtb16_ror8(w0), acc0);
            acc1 = __smlad(x0, mt_sxtb16(w1), acc1);
            acc1 = __smlad(x1, mt_sxtb16_ror8(w1), acc1);
        }
        for (int32_t t = 0; t < kt; ++t) {
            const int32_t av = ar[4 * kg + t] + ao;
            acc0 += av * b0[4 * kg + t];
            acc1 += av * b1[4 * kg + t];
        }
        yr[j] = mt_bmm_out(mt_add_wrap(acc0, fold), rq);
        yr[j + 1] = mt_bmm_out(mt_add_wrap(acc1, fold), rq);
    }
    if (j < d->n) {
        const int8_t *b0 = bb + j * d->b_n;
        int32_t acc0 = 0;
        for (int32_t g = 0; g < kg; ++g) {
            const int32_t w0 = mt_read_s8x4(b0 + 4 * g);
            acc0 = __smlad(ws[2 * g], mt_sxtb16(w0), acc0);
            acc0 = __smlad(ws[2 * g + 1], mt_sxtb16_ror8(w0), acc0);
        }
        for (int32_t t = 0; t < kt; ++t) {
            acc0 += (ar[4 * kg + t] + ao) * b0[4 * kg + t];
        }
        yr[j] = mt_bmm_out(mt_add_wrap(acc0, fold), rq);
    }
}

/* Y row i of one batch, B contiguous along n. ws: one word per k, (a + ao) in both halves. */
static void mt_bmm_row_axpy(const mt_bmm_dims *d, int32_t ao, int32_t bo, const int8_t *ar, const int8_t *bb,
                            int8_t *yr, int32_t *ws, const mt_bmm_rq *rq)
{
    int32_t sa = 0;
    for (int32_t kk = 0; kk < d->k; ++kk) {
        const int32_t v = ar[kk] + ao;
        ws[kk] = (int32_t)(((uint32_t)v & 0xFFFFu) * 0x00010001u);
        sa += v;
    }
    const int32_t fold = bo * sa, bk = d->b_k;
    int32_t j = 0;
    for (; j + 4 <= d->n; j += 4) {
        const int8_t *bp = bb + j;
        const int32_t *xp = ws;
        int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        for (int32_t kk = d->k; kk > 0; --kk) {
            const int32_t w = mt_read_s8x4(bp), av = *xp++;
            bp += bk;
            const int32_t w02 = mt_sxtb16(w), w13 = mt_sxtb16_ror8(w);
            acc0 = __smlabb(w02, av, acc0);
            acc2 = __smlatt(w02, av, acc2);
            acc1 = __smlabb(w13, av, acc1);
            acc3 = __smlatt(w13, av, acc3);
        }
        yr[j] = mt_bmm_out(mt_add_wrap(acc0, fold), rq);
        yr[j + 1] = mt_bmm_out(mt_add_wrap(acc1, fold), rq);
        yr[j + 2] = mt_bmm_out(mt_add_wrap(acc2, fold), rq);
        yr[j + 3] = mt_bmm_out(mt_add_wrap(acc3, fold), rq);
    }
    for (; j < d->n; ++j) {
        int32_t acc = 0;
        for (int32_t kk = 0; kk < d->k; ++kk) {
            acc += (ar[kk] + ao) * bb[(int32_t)kk * bk + j];
        }
        yr[j] = mt_bmm_out(mt_add_wrap(acc, fold), rq);
    }
}

#endif /* MT_SIMD */

mt_status mt_batch_matmul_s8_dsp(const mt_bmm_params *p, const mt_bmm_dims *d, const int8_t *a, const int8_t *b,
                                 int8_t *y, void *scratch)
{
    if (p == 0 || d == 0 || a == 0 || b == 0 || y == 0 || d->batches < 0 || d->m < 0 || d->k < 0 || d->n < 0) {
        return MT_ERR_ARG;
    }
#if MT_SIMD
    const int dot = d->b_k == 1, axpy = d->b_n == 1;
    if (scratch != 0 && d->k > 0 && (dot || axpy)) {
        const mt_bmm_rq rq = mt_bmm_rq_of(p, d->k);
        int32_t *ws = (int32_t *)scratch;
        for (int32_t bt = 0; bt < d->batches; ++bt) {
            const int8_t *ab = a + bt * d->a_batch;
            const int8_t *bb = b + bt * d->b_batch;
            int8_t *yb = y + bt * d->y_batch;
            for (int32_t i = 0; i < d->m; ++i) {
                if (dot) {
                    mt_bmm_row_dot(d, p->a_offset, p->b_offset, ab + i * d->a_row, bb, yb + i * d->y_row, ws, &rq);
                } else {
                    mt_bmm_row_axpy(d, p->a_offset, p->b_offset, ab + i * d->a_row, bb, yb + i * d->y_row, ws, &rq);
                }
            }
        }
        return MT_OK;
    }
#else
    (void)scratch;
#endif
    return mt_batch_matmul_s8(p, d, a, b, y);
}
