/* mt_arg_min_max_s8: TFLite ARG_MAX / ARG_MIN (int8 in, int32 out): the first index of the
 * extreme value along the middle axis of [outer, axis_size, inner] (reference ArgMinMax: a later
 * value replaces the current one only when strictly greater / smaller). */
#include "mt_nn.h"

mt_status mt_arg_min_max_s8(const int8_t *in, int32_t outer, int32_t axis_size, int32_t inner, int32_t is_max,
                            int32_t *out)
{
    if (in == 0 || out == 0 || outer < 0 || axis_size < 1 || inner < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t o = 0; o < outer; ++o) {
        const int8_t *base = in + (int64_t)o * axis_size * inner;
        for (int32_t i = 0; i < inner; ++i) {
            int8_t best = base[i];
            int32_t idx = 0;
            for (int32_t a = 1; a < axis_size; ++a) {
                const int8_t v = base[(int64_t)a * inner + i];
                if (is_max ? v > best : v < best) {
                    best = v;
                    idx = a;
                }
            }
            out[(int64_t)o * inner + i] = idx;
        }
    }
    return MT_OK;
}
