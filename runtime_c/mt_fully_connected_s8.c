/* mt_fully_connected_s8: int8 fully connected layer, portable C99. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_fully_connected_s8(const mt_fc_params *p, const mt_pc_quant *q, int32_t per_channel,
                                const int8_t *in, int32_t batches, int32_t in_features,
                                const int8_t *filter, const int32_t *bias, int32_t out_features,
                                int8_t *out)
{
    if (p == 0 || q == 0 || in == 0 || filter == 0 || out == 0 || batches < 0 || in_features < 0 ||
        out_features < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *x = in + b * in_features;
        for (int32_t o = 0; o < out_features; ++o) {
            const int8_t *w = filter + o * in_features;
            int32_t acc = 0;
            for (int32_t i = 0; i < in_features; ++i) {
                acc += ((int32_t)x[i] + p->input_offset) * ((int32_t)w[i] + p->filter_offset);
            }
            if (bias != 0) {
                acc = mt_wrap32((int64_t)acc + bias[o]); /* wraps as the reference */
            }
            const int32_t qi = per_channel ? o : 0;
            acc = mt_mbqm(acc, q->multiplier[qi], q->shift[qi]) + p->output_offset;
            out[b * out_features + o] = (int8_t)mt_clamp(acc, p->act_min, p->act_max);
        }
    }
    return MT_OK;
}
