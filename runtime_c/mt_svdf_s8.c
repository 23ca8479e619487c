/* mt_svdf_s8: TFLite SVDF, int8 input and output, int8 feature weights, int16 time weights and
 * state (TFLite-Micro svdf_common.cc EvalIntegerSvdfReference<int16_t>): per batch and filter f
 * the state row of `memory` values shifts left by one, its newest value becomes
 * state_zp + clamp16(MBQM1(sum_c (x_c - input_zp) wf[f][c])) (stored wrapped to int16), the
 * time product sum_m (state[f][m] - state_zp) wt[f][m] is taken; per unit u the bias plus the
 * time products of its `rank` filters (int32, wrapping as TFLM's sums) goes through
 * MBQM2 + output_zp, clamped to int8. TFLM's integer kernel applies no fused activation; neither
 * does this one. state: [batches][units * rank][memory] int16, updated in place; reset_state
 * != 0 sets it to 0 first (what TFLM's int16 variable tensor holds after AllocateTensors /
 * reset), so the call equals TFLM's first invoke. No scratch. Body: mt_svdf_impl.h; Python:
 * compiler/golden/reference.py svdf_step. */
#include "mt_svdf_impl.h"

mt_status mt_svdf_s8(const mt_svdf_params *p, const int8_t *in, const int8_t *weights_feature,
                     const int16_t *weights_time, const int32_t *bias, int16_t *state, int32_t reset_state, int8_t *out)
{
    MT_SVDF_BODY(int16_t, -32768, 32767, 0);
}
