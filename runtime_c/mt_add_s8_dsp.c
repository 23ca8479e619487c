/* mt_add_s8_dsp: elementwise int8 addition with TFLite's arithmetic, each of the three
 * MultiplyByQuantizedMultiplierSmallerThanOneExp done as SMMULR + a rounding shift
 * (mt_requant_fast), exact for int8 inputs (see mt_nn_fast.h). ~25 instructions per
 * element instead of three 64-bit multiplies. */
#include "mt_simd.h"

MT_INLINE int32_t rescale(int32_t x, int32_t mult, int32_t ls, int32_t rnd, int32_t rs)
{
    const int32_t v = mt_smmulr((int32_t)((uint32_t)x << ls), mult);
    const int32_t t = (int32_t)(((uint32_t)v << 1) + (uint32_t)rnd) + (v >> 31);
    return t >> rs;
}

mt_status mt_add_s8_dsp(const mt_add_fast_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                        int32_t size)
{
    if (p == 0 || in1 == 0 || in2 == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    const int32_t off1 = p->input1_offset, off2 = p->input2_offset;
    const int32_t m1 = p->q1.mult, l1 = p->q1.lshift, r1 = p->q1.rnd, s1 = p->q1.rshift;
    const int32_t m2 = p->q2.mult, l2 = p->q2.lshift, r2 = p->q2.rnd, s2 = p->q2.rshift;
    const int32_t mo = p->qo.mult, lo = p->qo.lshift, ro = p->qo.rnd, so = p->qo.rshift;
    mt_out_stage o = {p->output_offset, p->act_min, p->act_max, p->act_min <= -128 && p->act_max >= 127};
    for (int32_t i = 0; i < size; ++i) {
        const int32_t a = rescale(in1[i] + off1, m1, l1, r1, s1);
        const int32_t b = rescale(in2[i] + off2, m2, l2, r2, s2);
        out[i] = mt_out_s8(rescale(a + b, mo, lo, ro, so), o);
    }
    return MT_OK;
}
