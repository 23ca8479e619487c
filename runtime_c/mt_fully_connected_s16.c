/* mt_fully_connected_s16: 16x8 fully connected layer (int16 activations, zero point 0; int8
 * symmetric weights), portable C99. TFLite-Micro reference_integer_ops::FullyConnected for
 * int16: with an int64 bias (or none) an int64 accumulator and mt_mbqm64, with an int32 bias
 * an int32 (wrapping) accumulator and the double-rounding mt_mbqm. */
#include "mt_nn.h"
#include "mt_quant.h"

mt_status mt_fully_connected_s16(const mt_fc_params *p, const mt_pc_quant *q, int32_t per_channel,
                                 const int16_t *in, int32_t batches, int32_t in_features, const int8_t *filter,
                                 const int64_t *bias64, const int32_t *bias32, int32_t out_features, int16_t *out)
{
    if (p == 0 || q == 0 || in == 0 || filter == 0 || out == 0 || batches < 0 || in_features < 0 ||
        out_features < 0 || (bias64 != 0 && bias32 != 0)) {
        return MT_ERR_ARG;
    }
    for (int32_t b = 0; b < batches; ++b) {
        const int16_t *x = in + b * in_features;
        for (int32_t o = 0; o < out_features; ++o) {
            const int8_t *w = filter + o * in_features;
            int64_t acc = 0;
            for (int32_t i = 0; i < in_features; ++i) {
                acc += (int64_t)((int32_t)x[i] * ((int32_t)w[i] + p->filter_offset));
            }
            const int32_t qi = per_channel ? o : 0;
            int32_t v;
            if (bias32 != 0) {
                v = mt_mbqm(mt_wrap32(acc + bias32[o]), q->multiplier[qi], q->shift[qi]);
            } else {
                v = mt_mbqm64(acc + (bias64 != 0 ? bias64[o] : 0), q->multiplier[qi], q->shift[qi]);
            }
            v += p->output_offset;
            out[b * out_features + o] = (int16_t)mt_clamp(v, p->act_min, p->act_max);
        }
    }
    return MT_OK;
}
