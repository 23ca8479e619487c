/* mt_lstm_s8: TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights, int16 cell
 * state, bit-exact with TFLite-Micro's integer LSTM (micro/kernels/lstm_eval.h, the 8x8->16 case)
 * from its reset state (h = hidden zero point, c = 0) at every call.
 *
 * Per batch row and time step t, per unit u (everything but the two FCs is elementwise, so a
 * unit at a time equals TFLM's gate-vector-at-a-time order):
 *   pre_g = sat16(clamp16(MBQM(W_g x_t + in_bias_g, in_q_g)) + clamp16(MBQM(R_g h_{t-1} + rec_bias_g, rec_q_g)))
 *     (Q3.12; the zero points are folded into the biases by compiler/core/lstm.py; h_{-1} - z_h = 0)
 *   i, f, o = sigmoid16(pre), g = tanh16(pre)                               (Q0.15)
 *   c = sat16(clamp16(MBQM(f c, fc_q)) + clamp16(MBQM(i g, ig_q))), clipped when clip_on
 *   h_t = clamp8(MBQM(tanh16'(c) o, h_q) + z_h), written to the output row of (b, t).
 * h_{t-1} is read back from the previous output row; the cell state row lives in scratch
 * (mt_lstm_s8_get_buffer_size bytes, 2-byte aligned). sigmoid16/tanh16 are TFLite's int16
 * reference_integer_ops::Logistic/Tanh (mt_lut16.h, shared with mt_logistic_s16/mt_tanh_s16):
 * linear interpolation in TFLite's 256-entry sigmoid_table_uint16; lstm_eval.cc calls them with
 * multiplier 0 and shift 0 on the Q3.12 gates (input times 3) and with tanh_mult/tanh_shift on
 * the cell state. */
#include "mt_lut16.h"
#include "mt_nn.h"
#include "mt_quant.h"

static int32_t mt_clamp16(int32_t v)
{
    return v < -32768 ? -32768 : (v > 32767 ? 32767 : v);
}

/* acc[k] = bias[k][u] + sum_j w[k][u*n + j] * v[j] for the 4 gates at once (one load of v[j]
 * for 4 MACs); int32 accumulation wrapping as TFLM's (uint32 here, free of UB). */
static void mt_lstm_dot4(const int8_t *const w[4], const int32_t *const bias[4], int32_t u, const int8_t *v,
                         int32_t n, int32_t acc[4])
{
    const int64_t row = (int64_t)u * n;
    const int8_t *w0 = w[0] + row, *w1 = w[1] + row, *w2 = w[2] + row, *w3 = w[3] + row;
    uint32_t a0 = (uint32_t)bias[0][u], a1 = (uint32_t)bias[1][u], a2 = (uint32_t)bias[2][u];
    uint32_t a3 = (uint32_t)bias[3][u];
    for (int32_t j = 0; j < n; ++j) {
        const int32_t vj = v[j];
        a0 += (uint32_t)(w0[j] * vj);
        a1 += (uint32_t)(w1[j] * vj);
        a2 += (uint32_t)(w2[j] * vj);
        a3 += (uint32_t)(w3[j] * vj);
    }
    acc[0] = mt_wrap32((int64_t)a0);
    acc[1] = mt_wrap32((int64_t)a1);
    acc[2] = mt_wrap32((int64_t)a2);
    acc[3] = mt_wrap32((int64_t)a3);
}

int32_t mt_lstm_s8_get_buffer_size(int32_t units)
{
    return units > 0 ? 2 * units : 0;
}

mt_status mt_lstm_s8(const mt_lstm_params *p, const mt_lstm_dims *d, const int8_t *x, const mt_lstm_weights *w,
                     int8_t *y, void *scratch)
{
    if (p == 0 || d == 0 || x == 0 || w == 0 || y == 0 || scratch == 0 || d->batches < 1 || d->steps < 1 ||
        d->input < 1 || d->units < 1 || p->tanh_shift < 0 || p->tanh_shift > 31 ||
        (p->tanh_mult == 0 && p->tanh_shift > 14)) {
        return MT_ERR_ARG;
    }
    const int32_t n_b = d->batches, n_t = d->steps, n_i = d->input, n_s = d->units;
    int16_t *cell = (int16_t *)scratch;
    int32_t tanh_mult = p->tanh_mult, tanh_shift = p->tanh_shift;
    mt_sigmoid16_scaling(&tanh_mult, &tanh_shift);
    for (int32_t b = 0; b < n_b; ++b) {
        for (int32_t u = 0; u < n_s; ++u) {
            cell[u] = 0;
        }
        for (int32_t t = 0; t < n_t; ++t) {
            /* row of (b, t) in [B, T, .] or, time major, [T, B, .] */
            const int64_t row = d->time_major ? (int64_t)t * n_b + b : (int64_t)b * n_t + t;
            const int64_t prev = d->time_major ? row - n_b : row - 1;
            const int8_t *xt = x + row * n_i;
            const int8_t *hp = t > 0 ? y + prev * n_s : 0;
            int8_t *yt = y + row * n_s;
            for (int32_t u = 0; u < n_s; ++u) {
                int32_t in_acc[4], rec_acc[4] = {0, 0, 0, 0}, gate[4];
                mt_lstm_dot4(w->in, w->in_bias, u, xt, n_i, in_acc);
                if (hp != 0) { /* h_{-1} = z_h: the folded recurrent accumulator is 0 */
                    mt_lstm_dot4(w->rec, w->rec_bias, u, hp, n_s, rec_acc);
                }
                for (int32_t k = 0; k < 4; ++k) {
                    const int32_t pre = mt_clamp16(mt_clamp16(mt_mbqm(in_acc[k], p->in_mult[k], p->in_shift[k])) +
                                                   mt_clamp16(mt_mbqm(rec_acc[k], p->rec_mult[k], p->rec_shift[k])));
                    gate[k] = k == 2 ? mt_tanh16(3 * pre) : mt_logistic16(3 * pre); /* Q3.12 times 3 */
                }
                const int32_t fc = mt_clamp16(mt_mbqm(gate[1] * (int32_t)cell[u], p->fc_mult, p->fc_shift));
                const int32_t ig = mt_clamp16(mt_mbqm(gate[0] * gate[2], p->ig_mult, p->ig_shift));
                int32_t c = mt_clamp16(fc + ig);
                if (p->clip_on) {
                    c = c > p->cell_clip ? p->cell_clip : (c < -p->cell_clip ? -p->cell_clip : c);
                }
                cell[u] = (int16_t)c;
                const int32_t th = mt_tanh16(mt_sigmoid16_input(c, tanh_mult, tanh_shift));
                const int32_t h = mt_mbqm(th * gate[3], p->h_mult, p->h_shift) + p->hidden_zp;
                yt[u] = (int8_t)(h < -128 ? -128 : (h > 127 ? 127 : h));
            }
        }
    }
    return MT_OK;
}
