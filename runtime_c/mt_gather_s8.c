/* mt_gather_s8: GATHER along one axis with constant indices (TFLite-Micro reference). */
#include <string.h>

#include "mt_nn.h"

mt_status mt_gather_s8(const int8_t *in, int32_t outer, int32_t axis_size, int32_t inner, const int32_t *indices,
                       int32_t n_indices, int8_t *out)
{
    if (in == 0 || out == 0 || (indices == 0 && n_indices > 0) || outer < 0 || axis_size < 0 || inner < 0 ||
        n_indices < 0) {
        return MT_ERR_ARG;
    }
    for (int32_t i = 0; i < n_indices; ++i) {
        if (indices[i] < 0 || indices[i] >= axis_size) {
            return MT_ERR_ARG;
        }
    }
    for (int32_t o = 0; o < outer; ++o) {
        for (int32_t i = 0; i < n_indices; ++i) {
            memcpy(out + ((int64_t)o * n_indices + i) * inner, in + ((int64_t)o * axis_size + indices[i]) * inner,
                   (size_t)inner);
        }
    }
    return MT_OK;
}
