/* mt_lstm_s8: TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights, int16 cell
 * state, bit-exact with TFLite-Micro's integer LSTM (micro/kernels/lstm_eval.h, the 8x8->16 case)
 * from its reset state (h = hidden zero point, c = 0) at every call.
 *
 * Per batch row and time step t, per unit u (everything but the two FCs is elementwise, so a
 * unit at a time equals TFLM's gate-vector-at-a-time order):
 *   pre_g = sat16(clamp16(MBQM(W_g x_t + in_bias_g, in_q_g)) + clamp16(MBQM(R_g h_{t-1} + rec_bias_g, rec_q_g)))
 *     (Q3.12; the zero points are folded into the biases by compiler/lstm.py; h_{-1} - z_h = 0)
 *   i, f, o = sigmoid16(pre), g = tanh16(pre)                               (Q0.15)
 *   c = sat16(clamp16(MBQM(f c, fc_q)) + clamp16(MBQM(i g, ig_q))), clipped when clip_on
 *   h_t = clamp8(MBQM(tanh16'(c) o, h_q) + z_h), written to the output row of (b, t).
 * h_{t-1} is read back from the previous output row; the cell state row lives in scratch
 * (mt_lstm_s8_get_buffer_size bytes, 2-byte aligned). sigmoid16/tanh16 are TFLite's int16
 * reference_integer_ops::Logistic/Tanh: linear interpolation in the 256-entry table below
 * (tensorflow/lite/kernels/internal/common.h sigmoid_table_uint16). */
#include "mt_nn.h"
#include "mt_quant.h"

static const uint16_t mt_sigmoid_table[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
};

/* (x * mult + round) >> shift: the input scaling of TFLite's int16 Logistic/Tanh. */
static int32_t mt_lstm_scale_in(int32_t x, int32_t mult, int32_t shift)
{
    const int32_t rnd = shift > 0 ? (1 << (shift - 1)) : 0;
    return (x * mult + rnd) >> shift;
}

/* reference_integer_ops::Logistic (int16, multiplier 3, shift 0): Q3.12 -> Q0.15. */
static int32_t mt_sigmoid16(int32_t x)
{
    const int32_t v = x * 3;
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t uh = a >> 9;
    uint32_t r;
    if (uh >= 255u) {
        r = 0x7FFFu << 10;
    } else {
        const uint32_t ua = mt_sigmoid_table[uh];
        const uint32_t ub = mt_sigmoid_table[uh + 1u];
        r = (ua << 9) + (a & 0x1FFu) * (ub - ua);
    }
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
    return (int32_t)(r >> 10);
}

/* reference_integer_ops::Tanh (int16): (x * mult + round) >> shift, then -> Q0.15. */
static int32_t mt_tanh16(int32_t x, int32_t mult, int32_t shift)
{
    const int32_t v = mt_lstm_scale_in(x, mult, shift);
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t uh = a >> 8;
    int32_t r;
    if (uh >= 255u) {
        r = 0xFFFF << 8;
    } else {
        const uint32_t ua = mt_sigmoid_table[uh];
        const uint32_t ub = mt_sigmoid_table[uh + 1u];
        r = (int32_t)((ua << 8) + (a & 0xFFu) * (ub - ua));
    }
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return r >> 8; /* within int16 for every input */
}

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
        d->input < 1 || d->units < 1) {
        return MT_ERR_ARG;
    }
    const int32_t n_b = d->batches, n_t = d->steps, n_i = d->input, n_s = d->units;
    int16_t *cell = (int16_t *)scratch;
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
                    gate[k] = k == 2 ? mt_tanh16(pre, 3, 0) : mt_sigmoid16(pre);
                }
                const int32_t fc = mt_clamp16(mt_mbqm(gate[1] * (int32_t)cell[u], p->fc_mult, p->fc_shift));
                const int32_t ig = mt_clamp16(mt_mbqm(gate[0] * gate[2], p->ig_mult, p->ig_shift));
                int32_t c = mt_clamp16(fc + ig);
                if (p->clip_on) {
                    c = c > p->cell_clip ? p->cell_clip : (c < -p->cell_clip ? -p->cell_clip : c);
                }
                cell[u] = (int16_t)c;
                const int32_t th = mt_tanh16(c, p->tanh_mult, p->tanh_shift);
                const int32_t h = mt_mbqm(th * gate[3], p->h_mult, p->h_shift) + p->hidden_zp;
                yt[u] = (int8_t)(h < -128 ? -128 : (h > 127 ? 127 : h));
            }
        }
    }
    return MT_OK;
}
