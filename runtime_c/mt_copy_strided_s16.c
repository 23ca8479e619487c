/* mt_copy_strided_s16: mt_copy_strided_s8 for int16 elements (int16 TRANSPOSE, SLICE). */
#include "mt_internal.h"
#include "mt_nn.h"

mt_status mt_copy_strided_s16(const mt_strided *s, const int16_t *in, int16_t *out)
{
    MT_COPY_STRIDED_BODY(int16_t, s, in, out);
}
