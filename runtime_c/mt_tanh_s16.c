/* mt_tanh_s16: int16 TANH (zero points 0, output Q0.15), TFLite-Micro
 * reference_integer_ops::Tanh for int16: tanh(x) = 2 sigmoid(2x) - 1 on TFLite's sigmoid table
 * (mt_lut16.h) at |x| >> 8, interpolated over the low 8 bits; the input rescaled as in
 * mt_logistic_s16 (multiplier 0 = a power-of-two scale: 3 << left_shift). Python:
 * compiler/lut16.py. */
#include "mt_lut16.h"
#include "mt_nn.h"

mt_status mt_tanh_s16(const mt_lut16_params *p, const int16_t *in, int16_t *out, int32_t size)
{
    if (p == 0 || in == 0 || out == 0 || size < 0 || p->input_left_shift < 0 || p->input_left_shift > 31 ||
        p->input_multiplier < 0 || p->input_multiplier > 32767) {
        return MT_ERR_ARG;
    }
    int32_t mult = p->input_multiplier, shift = p->input_left_shift;
    if (mult == 0) {
        if (shift > 12) {
            return MT_ERR_ARG;
        }
        mult = 3 << shift;
        shift = 0;
    }
    const int32_t round = shift > 0 ? (int32_t)(1u << (shift - 1)) : 0;
    for (int32_t i = 0; i < size; ++i) {
        const int32_t v = (in[i] * mult + round) >> shift;
        const uint32_t a = (uint32_t)(v < 0 ? -v : v);
        const uint32_t uh = a >> 8;
        int32_t r;
        if (uh >= 255u) {
            r = 0xFFFF << 8;
        } else {
            const uint32_t ua = mt_sigmoid_u16[uh], ub = mt_sigmoid_u16[uh + 1u];
            r = (int32_t)((ua << 8) + (a & 0xFFu) * (ub - ua)); /* < 2^24 */
        }
        r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
        out[i] = (int16_t)(r >> 8); /* arithmetic shift: floor, as TFLM's int32 >> */
    }
    return MT_OK;
}
