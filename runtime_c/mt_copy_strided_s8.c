/* mt_copy_strided_s8: a 4-D strided copy (transpose, slice, head split/merge). */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_copy_strided_s8(const mt_strided *s, const int8_t *in, int8_t *out)
{
    MT_COPY_STRIDED_BODY(int8_t, s, in, out);
}
