/* mt_add_s8_dsp: elementwise int8 addition with TFLite's arithmetic, each of the three
 * MultiplyByQuantizedMultiplierSmallerThanOneExp done as SMMULR + a rounding shift, exact for
 * int8 inputs (see mt_nn_fast.h).
 *
 * The records (add form: rnd = 2^e, rshift = e + 1) are turned, once per call, into the
 * conv kernels' form of mt_requant_q (rnd = 2^(e-1) [+ zp 2^e], rshift = e): LSL, SMMLAR,
 * ADD, ASR per rescale, the output zero point folded into the output's rounding constant.
 * Both forms give RoundingDivideByPOT(SRDHM(v << left, m), e) for |v << left| < 2^30
 * (codegen/kernels.py fast_quant). Records with e = 0, or an output zero point too large to
 * fold, take the element loop of the add form. ~20 instructions per element.
 */
#include "mt_simd.h"

MT_INLINE int32_t rescale(int32_t x, int32_t mult, int32_t ls, int32_t rnd, int32_t rs)
{
    const int32_t v = mt_smmulr((int32_t)((uint32_t)x << ls), mult);
    const int32_t t = (int32_t)(((uint32_t)v << 1) + (uint32_t)rnd) + (v >> 31);
    return t >> rs;
}

typedef struct {
    int32_t m1, r1, s1, m2, r2, s2, mo, ro, so, ls, off1, off2;
} add_q;

/* One input's rescale: e = 0 (z, RoundingDivideByPOT by 1) is SRDHM alone, = SMMULR. */
MT_INLINE int32_t in_q(int32_t x, int32_t m, int32_t ls, int32_t r, int32_t s, int32_t z)
{
    return z ? mt_smmulr((int32_t)((uint32_t)x << ls), m) : mt_requant_q(x, m, ls, r, s);
}

/* Two elements per step; `full` (no activation clamp beyond int8; -1: read o.full), z1/z2
 * (an input's e = 0) and the inputs' shift are constants in the specialized instances, so
 * only the code that runs is there. */
MT_INLINE void add_run(const add_q *k, const int8_t *in1, const int8_t *in2, int8_t *out, int32_t size,
                       mt_out_stage o, int32_t full, int32_t z1, int32_t z2, int32_t ls)
{
    const int32_t m1 = k->m1, r1 = k->r1, s1 = k->s1, m2 = k->m2, r2 = k->r2, s2 = k->s2;
    const int32_t mo = k->mo, ro = k->ro, so = k->so, off1 = k->off1, off2 = k->off2;
    if (full >= 0) {
        o.full = full;
    }
    int32_t i = 0;
    for (; i + 2 <= size; i += 2) {
        const int32_t a0 = in_q(in1[i] + off1, m1, ls, r1, s1, z1);
        const int32_t b0 = in_q(in2[i] + off2, m2, ls, r2, s2, z2);
        const int32_t a1 = in_q(in1[i + 1] + off1, m1, ls, r1, s1, z1);
        const int32_t b1 = in_q(in2[i + 1] + off2, m2, ls, r2, s2, z2);
        const int32_t y0 = mt_requant_q(a0 + b0, mo, 1, ro, so);
        const int32_t y1 = mt_requant_q(a1 + b1, mo, 1, ro, so);
        out[i] = mt_clamp_q(y0, o);
        out[i + 1] = mt_clamp_q(y1, o);
    }
    if (i < size) {
        const int32_t a0 = in_q(in1[i] + off1, m1, ls, r1, s1, z1);
        const int32_t b0 = in_q(in2[i] + off2, m2, ls, r2, s2, z2);
        out[i] = mt_clamp_q(mt_requant_q(a0 + b0, mo, 1, ro, so), o);
    }
}

/* rnd 2^(e-1) + zp 2^e of an add-form record (rshift = e + 1), or 0 when e < 1 (an input
 * record with e = 0 is handled by in_q) or the constant leaves the range mt_requant_q is exact
 * in (|rnd| + 2^29 < 2^31). */
static int32_t q_rnd(const mt_fast_quant *q, int32_t zp, int32_t *ok)
{
    const int32_t e = q->rshift - 1;
    if (e == 0 && zp == 0) { /* an input record: in_q uses SMMULR alone */
        return 0;
    }
    if (e < 1 || e > 30) {
        *ok = 0;
        return 0;
    }
    const int64_t r = ((int64_t)1 << (e - 1)) + (int64_t)zp * ((int64_t)1 << e);
    if (r >= ((int64_t)1 << 31) - ((int64_t)1 << 29) - 1 || -r >= ((int64_t)1 << 31) - ((int64_t)1 << 29) - 1) {
        *ok = 0;
        return 0;
    }
    return (int32_t)r;
}

mt_status mt_add_s8_dsp(const mt_add_fast_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                        int32_t size)
{
    if (p == 0 || in1 == 0 || in2 == 0 || out == 0 || size < 0) {
        return MT_ERR_ARG;
    }
    mt_out_stage o = {p->output_offset, p->act_min, p->act_max, p->act_min <= -128 && p->act_max >= 127};
    int32_t ok = p->q1.lshift == p->q2.lshift && p->qo.lshift == 1;
    add_q k;
    int32_t in_ok = 1, out_ok = 1;
    k.m1 = p->q1.mult, k.r1 = q_rnd(&p->q1, 0, &in_ok), k.s1 = p->q1.rshift - 1;
    k.m2 = p->q2.mult, k.r2 = q_rnd(&p->q2, 0, &in_ok), k.s2 = p->q2.rshift - 1;
    k.mo = p->qo.mult, k.ro = q_rnd(&p->qo, p->output_offset, &out_ok), k.so = p->qo.rshift - 1;
    ok = ok && in_ok && out_ok && k.so >= 1;
    const int32_t z1 = k.s1 == 0, z2 = k.s2 == 0;
    k.ls = p->q1.lshift, k.off1 = p->input1_offset, k.off2 = p->input2_offset;
    if (ok) {
        o.zp = 0; /* folded into k.ro */
        /* TFLite's int8 add has left_shift 20 (lshift 21): a constant shift folds into the
         * offset's ADD; other shifts and full/e combinations take the generic instance */
        const int32_t v = (o.full ? 4 : 0) + (z1 ? 2 : 0) + (z2 ? 1 : 0);
        switch (k.ls == 21 ? v : -1) {
        case 0: add_run(&k, in1, in2, out, size, o, 0, 0, 0, 21); break;
        case 1: add_run(&k, in1, in2, out, size, o, 0, 0, 1, 21); break;
        case 2: add_run(&k, in1, in2, out, size, o, 0, 1, 0, 21); break;
        case 3: add_run(&k, in1, in2, out, size, o, 0, 1, 1, 21); break;
        case 4: add_run(&k, in1, in2, out, size, o, 1, 0, 0, 21); break;
        case 5: add_run(&k, in1, in2, out, size, o, 1, 0, 1, 21); break;
        case 6: add_run(&k, in1, in2, out, size, o, 1, 1, 0, 21); break;
        case 7: add_run(&k, in1, in2, out, size, o, 1, 1, 1, 21); break;
        default: add_run(&k, in1, in2, out, size, o, -1, z1, z2, k.ls); break;
        }
        return MT_OK;
    }
    const int32_t off1 = p->input1_offset, off2 = p->input2_offset;
    const int32_t m1 = p->q1.mult, l1 = p->q1.lshift, r1 = p->q1.rnd, s1 = p->q1.rshift;
    const int32_t m2 = p->q2.mult, l2 = p->q2.lshift, r2 = p->q2.rnd, s2 = p->q2.rshift;
    const int32_t mo = p->qo.mult, lo = p->qo.lshift, ro = p->qo.rnd, so = p->qo.rshift;
    for (int32_t i = 0; i < size; ++i) {
        const int32_t a = rescale(in1[i] + off1, m1, l1, r1, s1);
        const int32_t b = rescale(in2[i] + off2, m2, l2, r2, s2);
        out[i] = mt_out_s8(rescale(a + b, mo, lo, ro, so), o);
    }
    return MT_OK;
}
