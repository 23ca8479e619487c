/* mt_tanh_s16: int16 TANH (zero points 0, output Q0.15), TFLite-Micro
 * reference_integer_ops::Tanh for int16: tanh(x) = 2 sigmoid(2x) - 1 on TFLite's sigmoid table
 * (mt_lut16.h) at |x| >> 8, interpolated over the low 8 bits; the input rescaled as in
 * mt_logistic_s16 (multiplier 0 = a power-of-two scale: 3 << left_shift). Python:
 * compiler/core/lut16.py. */
#include "mt_lut16.h"
#include "mt_nn.h"

mt_status mt_tanh_s16(const mt_lut16_params *p, const int16_t *in, int16_t *out, int32_t size)
{
    return mt_sigmoid16_s16(p, in, out, size, 1);
}
