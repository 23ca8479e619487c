/* mt_logistic_s16: int16 LOGISTIC (zero points 0, output Q0.15), TFLite-Micro
 * reference_integer_ops::Logistic for int16: the input rescaled to 1/(3 * 4096) per unit
 * (x * multiplier, rounded right shift; multiplier 0 = a power-of-two input scale, taken as
 * 3 << left_shift), then TFLite's 256-entry sigmoid table (mt_lut16.h) at |x| >> 9 with linear
 * interpolation over the low 9 bits, mirrored for negative inputs. Python: compiler/lut16.py. */
#include "mt_lut16.h"
#include "mt_nn.h"

mt_status mt_logistic_s16(const mt_lut16_params *p, const int16_t *in, int16_t *out, int32_t size)
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
        const int32_t v = (in[i] * mult + round) >> shift; /* |in * mult| + round < 2^31 */
        const uint32_t a = (uint32_t)(v < 0 ? -v : v);
        const uint32_t uh = a >> 9;
        uint32_t r;
        if (uh >= 255u) {
            r = 0x7FFFu << 10;
        } else {
            const uint32_t ua = mt_sigmoid_u16[uh], ub = mt_sigmoid_u16[uh + 1u];
            r = (ua << 9) + (a & 0x1FFu) * (ub - ua);
        }
        r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
        out[i] = (int16_t)(r >> 10);
    }
    return MT_OK;
}
