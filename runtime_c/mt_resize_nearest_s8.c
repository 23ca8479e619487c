/* mt_resize_nearest_s8: RESIZE_NEAREST_NEIGHBOR (int8_t, NHWC views) by precomputed row/column maps. */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_resize_nearest_s8(const int8_t *in, const mt_view *in_v, const int32_t *y_map, const int32_t *x_map,
                               int8_t *out, const mt_view *out_v)
{
    MT_RESIZE_NEAREST_BODY(int8_t, in, in_v, y_map, x_map, out, out_v);
}
