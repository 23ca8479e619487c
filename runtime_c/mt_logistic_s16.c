/* mt_logistic_s16: int16 LOGISTIC (zero points 0, output Q0.15), TFLite-Micro
 * reference_integer_ops::Logistic for int16: the input rescaled to 1/(3 * 4096) per unit
 * (x * multiplier, rounded right shift; multiplier 0 = a power-of-two input scale, taken as
 * 3 << left_shift), then TFLite's 256-entry sigmoid table (mt_lut16.h) at |x| >> 9 with linear
 * interpolation over the low 9 bits, mirrored for negative inputs. Python: compiler/core/lut16.py. */
#include "mt_lut16.h"
#include "mt_nn.h"

mt_status mt_logistic_s16(const mt_lut16_params *p, const int16_t *in, int16_t *out, int32_t size)
{
    return mt_sigmoid16_s16(p, in, out, size, 0);
}
