/* mt_svdf_state8_s8: TFLite SVDF with int8 time weights and an int8 state
 * (EvalIntegerSvdfReference<int8_t>): mt_svdf_s8's arithmetic with the newest state value
 * clamped to int8; reset_state != 0 sets the state to its zero point (TFLM resets an int8
 * variable tensor to its zero point). Body: mt_svdf_impl.h. */
#include "mt_svdf_impl.h"

mt_status mt_svdf_state8_s8(const mt_svdf_params *p, const int8_t *in, const int8_t *weights_feature,
                            const int8_t *weights_time, const int32_t *bias, int8_t *state, int32_t reset_state,
                            int8_t *out)
{
    MT_SVDF_BODY(int8_t, -128, 127, p->state_zp);
}
