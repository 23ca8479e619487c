/* mt_depthwise_conv_3x3_s8_dsp: 3x3 depthwise convolution (depth multiplier 1, dilation 1,
 * stride 1 or 2) as row-sliding 1-D convolutions over channel-planar int16 rows.
 *
 * Four channels at a time, each input row the output rows need is transposed once into
 * four planar int16 rows (LDR + SXTB16 + PKHBT/PKHTB: 14 instructions per 2 pixels x 4
 * channels), the padding columns and rows reading the input zero point (which the bias
 * fold of mt_nn_fast.h cancels). A ring of 3 row slots per channel holds the rows of the
 * current output row. Then per channel and output row, with the 3 x 3 weights in
 * registers, neighbouring taps meet in SMLAD: for two outputs x, x+1 of stride 1 each
 * filter row costs LDRD (x, x+1 | x+2, x+3) + LDR (x+1, x+2) + SMLAD + SMLAxB twice = 6
 * instructions for 6 MACs; stride 2: LDRD + SMLAD + SMLAxB per output and filter row.
 * The accumulators of the row go to scratch, then one pass requantizes them (the weights
 * and biases are doubled offline, so the record's left shift of 1 is already applied).
 *
 * Filter (codegen/kernels.py pack_dw3x3): per channel 5 int32 words, weights doubled:
 *   (w00 | w01 << 16), (w10 | w11 << 16), (w20 | w21 << 16), (w02 | w12 << 16), w22.
 * Scratch: mt_depthwise_conv_3x3_s8_dsp_get_buffer_size(out_w, stride_w) bytes, 4-aligned.
 */
#include "mt_simd.h"

/* Planar row length (int16 entries): every position the row pairs read, even. */
static int32_t row_len(int32_t out_w, int32_t stride_w)
{
    const int32_t n = stride_w == 1 ? out_w + 3 : 2 * out_w + 2;
    return (n + 1) & ~1;
}

int32_t mt_depthwise_conv_3x3_s8_dsp_get_buffer_size(int32_t out_w, int32_t stride_w)
{
    if (out_w < 1 || stride_w < 1 || stride_w > 2) {
        return 0;
    }
    /* accumulators (out_w + 1 rounded up) + 4 channels x 3 slots + one zero-point row */
    return 4 * (out_w + 2) + 2 * 13 * row_len(out_w, stride_w);
}

#if defined(__ARM_FEATURE_DSP)
#define dw_smuad __smuad
#elif MT_SIMD
#define dw_smuad(a, b) __smlad((a), (b), 0)
#endif
#if MT_SIMD
#define dw_smlad __smlad
#define dw_smlabb __smlabb
#define dw_smlabt __smlabt
#define dw_smlatb __smlatb
#define dw_smlatt __smlatt
#else
MT_INLINE int32_t dw_lo(int32_t x)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x & 0xFFFFu);
}
MT_INLINE int32_t dw_hi(int32_t x)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16);
}
MT_INLINE int32_t dw_smlad(int32_t a, int32_t b, int32_t c)
{
    return mt_add_wrap(c, dw_lo(a) * dw_lo(b) + dw_hi(a) * dw_hi(b));
}
MT_INLINE int32_t dw_smuad(int32_t a, int32_t b)
{
    return dw_smlad(a, b, 0);
}
MT_INLINE int32_t dw_smlabb(int32_t a, int32_t b, int32_t c)
{
    return mt_add_wrap(c, dw_lo(a) * dw_lo(b));
}
MT_INLINE int32_t dw_smlabt(int32_t a, int32_t b, int32_t c)
{
    return mt_add_wrap(c, dw_lo(a) * dw_hi(b));
}
MT_INLINE int32_t dw_smlatb(int32_t a, int32_t b, int32_t c)
{
    return mt_add_wrap(c, dw_hi(a) * dw_lo(b));
}
MT_INLINE int32_t dw_smlatt(int32_t a, int32_t b, int32_t c)
{
    return mt_add_wrap(c, dw_hi(a) * dw_hi(b));
}
#endif

#if defined(__ARM_FEATURE_DSP)
/* (a.lo | b.lo << 16) and (a.hi | b.hi << 16) (no ACLE intrinsic in GCC 12). */
MT_INLINE int32_t dw_pack_lo(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
MT_INLINE int32_t dw_pack_hi(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* a = p[0], b = p[1] (words), p += 2 int16 entries. */
#define DW_LDAB(p, a, b) \
    __asm__("ldrd %0, %1, [%2], #4" : "=r"(a), "=r"(b), "+r"(p) : "m"(*(const int32_t(*)[2])(const void *)(p)))
/* q[0] = a, q[1] = b, q += 2 (int32 accumulators; one STRD / LDRD). */
#define DW_ST2(q, a, b) __asm__("strd %2, %3, [%0], #8" : "+r"(q), "=m"(*(int32_t(*)[2])(q)) : "r"(a), "r"(b))
#define DW_LD2(q, a, b) \
    __asm__("ldrd %0, %1, [%2], #8" : "=r"(a), "=r"(b), "+r"(q) : "m"(*(const int32_t(*)[2])(q)))
#else
MT_INLINE int32_t dw_pack_lo(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
}
MT_INLINE int32_t dw_pack_hi(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a >> 16) | ((uint32_t)b & 0xFFFF0000u));
}
#define DW_LDAB(p, a, b)              \
    do {                              \
        memcpy(&(a), (p), 4);         \
        memcpy(&(b), (p) + 2, 4);     \
        (p) += 2;                     \
    } while (0)
#define DW_ST2(q, a, b)               \
    do {                              \
        (q)[0] = (a);                 \
        (q)[1] = (b);                 \
        (q) += 2;                     \
    } while (0)
#define DW_LD2(q, a, b)               \
    do {                              \
        (a) = (q)[0];                 \
        (b) = (q)[1];                 \
        (q) += 2;                     \
    } while (0)
#endif

MT_INLINE int32_t dw_rd32(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

MT_INLINE void dw_wr32(int16_t *p, int32_t v)
{
    memcpy(p, &v, 4);
}

/* Input row iy, channels c0 .. c0 + n - 1, into the planar rows dst[c] (positions pad_l ..);
 * only positions < len are written (the others are never read). */
static void load_row(const int8_t *src, int32_t in_w, int32_t cs, int32_t n, int16_t *const dst[4], int32_t pad_l,
                     int32_t len)
{
    int32_t w = len - pad_l < in_w ? len - pad_l : in_w;
    if (w <= 0) {
        return;
    }
    if (n == 4) {
        int16_t *d0 = dst[0] + pad_l, *d1 = dst[1] + pad_l, *d2 = dst[2] + pad_l, *d3 = dst[3] + pad_l;
        int32_t x = 0;
        for (; x + 2 <= w; x += 2, src += 2 * cs) {
            const int32_t v0 = mt_read_s8x4(src), v1 = mt_read_s8x4(src + cs);
            const int32_t a0 = mt_sxtb16(v0), b0 = mt_sxtb16_ror8(v0);
            const int32_t a1 = mt_sxtb16(v1), b1 = mt_sxtb16_ror8(v1);
            dw_wr32(d0 + x, dw_pack_lo(a0, a1));
            dw_wr32(d2 + x, dw_pack_hi(a0, a1));
            dw_wr32(d1 + x, dw_pack_lo(b0, b1));
            dw_wr32(d3 + x, dw_pack_hi(b0, b1));
        }
        if (x < w) {
            d0[x] = src[0], d1[x] = src[1], d2[x] = src[2], d3[x] = src[3];
        }
        return;
    }
    for (int32_t c = 0; c < n; ++c) {
        int16_t *d = dst[c] + pad_l;
        const int8_t *s = src + c;
        for (int32_t x = 0; x < w; ++x, s += cs) {
            d[x] = *s;
        }
    }
}

/* One channel, one output row, stride 1: the sums (bias left out) of outputs 0 .. 2 n - 1
 * into acc[] (two per step; SMUAD starts them, so no bias register: 14 live values). */
static __attribute__((noinline)) void mac_row_s1(const int16_t *r0, const int16_t *r1, const int16_t *r2,
                                                 const int32_t *w, int32_t *acc, const int32_t *end)
{
    const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4];
    do {
        int32_t a, b, m, s0, s1;
        DW_LDAB(r0, a, b);
        m = dw_rd32(r0 - 1);
        s0 = dw_smuad(a, w0);
        s1 = dw_smuad(m, w0);
        s0 = dw_smlabb(b, w3, s0);
        s1 = dw_smlatb(b, w3, s1);
        DW_LDAB(r1, a, b);
        m = dw_rd32(r1 - 1);
        s0 = dw_smlad(a, w1, s0);
        s1 = dw_smlad(m, w1, s1);
        s0 = dw_smlabt(b, w3, s0);
        s1 = dw_smlatt(b, w3, s1);
        DW_LDAB(r2, a, b);
        m = dw_rd32(r2 - 1);
        s0 = dw_smlad(a, w2, s0);
        s1 = dw_smlad(m, w2, s1);
        s0 = dw_smlabb(b, w4, s0);
        s1 = dw_smlatb(b, w4, s1);
        DW_ST2(acc, s0, s1);
    } while (acc < end);
}

/* The same for stride 2: two outputs per step (x reads positions 2x .. 2x + 2, x + 1 from
 * 2x + 2), then an odd last one alone (the pair would read past the planar row). */
static __attribute__((noinline)) void mac_row_s2(const int16_t *r0, const int16_t *r1, const int16_t *r2,
                                                 const int32_t *w, int32_t *acc, const int32_t *end)
{
    const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4];
    while (acc + 2 <= end) {
        int32_t a, b, c, s0, s1;
        DW_LDAB(r0, a, b);
        c = dw_rd32(r0 + 2);
        r0 += 2;
        s0 = dw_smuad(a, w0);
        s1 = dw_smuad(b, w0);
        s0 = dw_smlabb(b, w3, s0);
        s1 = dw_smlabb(c, w3, s1);
        DW_LDAB(r1, a, b);
        c = dw_rd32(r1 + 2);
        r1 += 2;
        s0 = dw_smlad(a, w1, s0);
        s1 = dw_smlad(b, w1, s1);
        s0 = dw_smlabt(b, w3, s0);
        s1 = dw_smlabt(c, w3, s1);
        DW_LDAB(r2, a, b);
        c = dw_rd32(r2 + 2);
        r2 += 2;
        s0 = dw_smlad(a, w2, s0);
        s1 = dw_smlad(b, w2, s1);
        s0 = dw_smlabb(b, w4, s0);
        s1 = dw_smlabb(c, w4, s1);
        DW_ST2(acc, s0, s1);
    }
    if (acc < end) {
        int32_t a, b;
        int32_t s;
        DW_LDAB(r0, a, b);
        s = dw_smuad(a, w0);
        s = dw_smlabb(b, w3, s);
        DW_LDAB(r1, a, b);
        s = dw_smlad(a, w1, s);
        s = dw_smlabt(b, w3, s);
        DW_LDAB(r2, a, b);
        s = dw_smlad(a, w2, s);
        s = dw_smlabb(b, w4, s);
        *acc = s;
    }
}

/* SSAT to int8, then the activation clamp: none (full int8 range), the upper bound only
 * (lo = -128: a ReLU / ReLU6 whose zero point is -128), or both (kind 0, 1, 2). */
MT_INLINE int8_t dw_clamp(int32_t v, int32_t kind, int32_t lo, int32_t hi)
{
#if MT_SIMD
    v = mt_ssat8(v);
#else
    v = v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
    if (kind >= 1) {
        v = v > hi ? hi : v;
    }
    if (kind == 2) {
        v = v < lo ? lo : v;
    }
    return (int8_t)v;
}

/* bias + sum -> int8, two outputs per step (out_w n >= 1; acc holds n rounded up to even). */
MT_INLINE void requant_run(const int32_t *acc, int32_t n, int32_t bias, int32_t m, int32_t r, int32_t s,
                           int32_t kind, int32_t lo, int32_t hi, int8_t *out, int32_t cs)
{
    const int32_t *end = acc + (n & ~1);
    while (acc < end) {
        int32_t a0, a1;
        DW_LD2(acc, a0, a1);
        a0 = mt_add_wrap(a0, bias), a1 = mt_add_wrap(a1, bias);
        out[0] = dw_clamp(mt_requant_q(a0, m, 0, r, s), kind, lo, hi);
        out[cs] = dw_clamp(mt_requant_q(a1, m, 0, r, s), kind, lo, hi);
        out += 2 * cs;
    }
    if (n & 1) {
        out[0] = dw_clamp(mt_requant_q(mt_add_wrap(acc[0], bias), m, 0, r, s), kind, lo, hi);
    }
}

static int32_t clamp_kind(mt_out_stage o)
{
    return o.full ? 0 : (o.lo <= -128 ? 1 : 2);
}

static void requant_row(const int32_t *acc, int32_t n, int32_t bias, const mt_fast_quant *q, mt_out_stage o,
                        int8_t *out, int32_t cs)
{
    const int32_t kind = clamp_kind(o);
    if (kind == 0) {
        requant_run(acc, n, bias, q->mult, q->rnd, q->rshift, 0, -128, 127, out, cs);
    } else if (kind == 1) {
        requant_run(acc, n, bias, q->mult, q->rnd, q->rshift, 1, -128, o.hi, out, cs);
    } else {
        requant_run(acc, n, bias, q->mult, q->rnd, q->rshift, 2, o.lo, o.hi, out, cs);
    }
}

/* The plane variant's channel: every output row (row MAC, then the requantization with the
 * record in registers); kind as dw_clamp. */
MT_INLINE void plane_channel(const int16_t *r0, int32_t len, int32_t sh, int32_t sw, int32_t out_h,
                             int32_t out_w, const int32_t *w, const mt_fast_quant *q, int32_t kind, int32_t lo,
                             int32_t hi, int8_t *orow, int32_t ors, int32_t ocs, int32_t *acc)
{
    const int32_t bias = (int32_t)((uint32_t)q->bias << 1), m = q->mult, r = q->rnd, s = q->rshift;
    for (int32_t oy = 0; oy < out_h; ++oy, r0 += sh * len, orow += ors) {
        if (sw == 1) {
            mac_row_s1(r0, r0 + len, r0 + 2 * len, w, acc, acc + out_w);
        } else {
            mac_row_s2(r0, r0 + len, r0 + 2 * len, w, acc, acc + out_w);
        }
        requant_run(acc, out_w, bias, m, r, s, kind, lo, hi, orow, ocs);
    }
}

static __attribute__((noinline)) void plane_channel_k0(const int16_t *r0, int32_t len, int32_t sh, int32_t sw,
                                                       int32_t out_h, int32_t out_w, const int32_t *w,
                                                       const mt_fast_quant *q, int8_t *orow, int32_t ors,
                                                       int32_t ocs, int32_t *acc)
{
    plane_channel(r0, len, sh, sw, out_h, out_w, w, q, 0, -128, 127, orow, ors, ocs, acc);
}

static __attribute__((noinline)) void plane_channel_k1(const int16_t *r0, int32_t len, int32_t sh, int32_t sw,
                                                       int32_t out_h, int32_t out_w, const int32_t *w,
                                                       const mt_fast_quant *q, int32_t hi, int8_t *orow,
                                                       int32_t ors, int32_t ocs, int32_t *acc)
{
    plane_channel(r0, len, sh, sw, out_h, out_w, w, q, 1, -128, hi, orow, ors, ocs, acc);
}

static __attribute__((noinline)) void plane_channel_k2(const int16_t *r0, int32_t len, int32_t sh, int32_t sw,
                                                       int32_t out_h, int32_t out_w, const int32_t *w,
                                                       const mt_fast_quant *q, int32_t lo, int32_t hi,
                                                       int8_t *orow, int32_t ors, int32_t ocs, int32_t *acc)
{
    plane_channel(r0, len, sh, sw, out_h, out_w, w, q, 2, lo, hi, orow, ors, ocs, acc);
}

mt_status mt_depthwise_conv_3x3_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                                       const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                                       const mt_view *out_v, void *scratch)
{
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        scratch == 0 || fd->n != 1 || fd->h != 3 || fd->w != 3 || fd->c != in_v->c || fd->c != out_v->c ||
        p->stride_h < 1 || p->stride_w < 1 || p->stride_w > 2 || p->dilation_h != 1 || p->dilation_w != 1 ||
        (const void *)in == (const void *)out) {
        return MT_ERR_ARG;
    }
    const int32_t out_w = out_v->w, sw = p->stride_w, sh = p->stride_h;
    if (out_w < 1 || out_v->h < 1) {
        return MT_OK;
    }
    const int32_t len = row_len(out_w, sw), pad_l = p->pad.left;
    int32_t *acc = (int32_t *)scratch;
    int16_t *rows = (int16_t *)(void *)(acc + out_w + 2);
    int16_t *zrow = rows + 12 * len;
    const int16_t zp = (int16_t)p->input_zp;
    for (int32_t j = 0; j < 13 * len; ++j) {
        rows[j] = zp; /* padding columns stay at the zero point; zrow is all of it */
    }
    const mt_out_stage o = mt_out_stage_of(p);
    const int32_t *wf = (const int32_t *)filter;
    for (int32_t c0 = 0; c0 < fd->c; c0 += 4) {
        const int32_t n = fd->c - c0 < 4 ? fd->c - c0 : 4;
        int32_t slot_iy[3] = {-1, -1, -1};
        for (int32_t oy = 0; oy < out_v->h; ++oy) {
            const int32_t iy0 = oy * sh - p->pad.top;
            const int16_t *rp[3][4];
            for (int32_t k = 0; k < 3; ++k) {
                const int32_t iy = iy0 + k;
                if (iy < 0 || iy >= in_v->h) {
                    for (int32_t c = 0; c < 4; ++c) {
                        rp[k][c] = zrow;
                    }
                    continue;
                }
                const int32_t slot = iy % 3;
                int16_t *const dst[4] = {rows + (slot * 4) * len, rows + (slot * 4 + 1) * len,
                                         rows + (slot * 4 + 2) * len, rows + (slot * 4 + 3) * len};
                if (slot_iy[slot] != iy) {
                    load_row(in + iy * in_v->row_stride + c0, in_v->w, in_v->col_stride, n, dst, pad_l, len);
                    slot_iy[slot] = iy;
                }
                for (int32_t c = 0; c < 4; ++c) {
                    rp[k][c] = dst[c];
                }
            }
            int8_t *orow = out + oy * out_v->row_stride + c0;
            for (int32_t c = 0; c < n; ++c) {
                const mt_fast_quant *qc = q + c0 + c;
                if (sw == 1) {
                    mac_row_s1(rp[0][c], rp[1][c], rp[2][c], wf + 5 * (c0 + c), acc, acc + out_w);
                } else {
                    mac_row_s2(rp[0][c], rp[1][c], rp[2][c], wf + 5 * (c0 + c), acc, acc + out_w);
                }
                requant_row(acc, out_w, (int32_t)((uint32_t)qc->bias << 1), qc, o, orow + c, out_v->col_stride);
            }
        }
    }
    return MT_OK;
}

/* The column variant's output row (a column of the layer): the row MAC into a chunk of
 * accumulators on the stack (DW_CHUNK at a time, so no scratch), then the requantization;
 * kind as dw_clamp. */
#define DW_CHUNK 32
MT_INLINE void cols_row(const int16_t *r0, const int16_t *r1, const int16_t *r2, const int32_t *w,
                        const mt_fast_quant *q, int32_t kind, int32_t lo, int32_t hi, int32_t out_w, int32_t sw,
                        int8_t *op, int32_t ocs)
{
    int32_t acc[DW_CHUNK]; /* even: an odd chunk's pair MAC writes one entry past it */
    const int32_t bias = (int32_t)((uint32_t)q->bias << 1), m = q->mult, r = q->rnd, s = q->rshift;
    for (int32_t x = 0; x < out_w; x += DW_CHUNK, op += DW_CHUNK * ocs) {
        const int32_t n = out_w - x < DW_CHUNK ? out_w - x : DW_CHUNK;
        const int32_t at = sw * x;
        if (sw == 1) {
            mac_row_s1(r0 + at, r1 + at, r2 + at, w, acc, acc + n);
        } else {
            mac_row_s2(r0 + at, r1 + at, r2 + at, w, acc, acc + n);
        }
        requant_run(acc, n, bias, m, r, s, kind, lo, hi, op, ocs);
    }
}

static __attribute__((noinline)) void cols_row_k0(const int16_t *r0, const int16_t *r1, const int16_t *r2,
                                                  const int32_t *w, const mt_fast_quant *q, int32_t out_w,
                                                  int32_t sw, int8_t *op, int32_t ocs)
{
    cols_row(r0, r1, r2, w, q, 0, -128, 127, out_w, sw, op, ocs);
}

static __attribute__((noinline)) void cols_row_k1(const int16_t *r0, const int16_t *r1, const int16_t *r2,
                                                  const int32_t *w, const mt_fast_quant *q, int32_t hi,
                                                  int32_t out_w, int32_t sw, int8_t *op, int32_t ocs)
{
    cols_row(r0, r1, r2, w, q, 1, -128, hi, out_w, sw, op, ocs);
}

static __attribute__((noinline)) void cols_row_k2(const int16_t *r0, const int16_t *r1, const int16_t *r2,
                                                  const int32_t *w, const mt_fast_quant *q, int32_t lo,
                                                  int32_t hi, int32_t out_w, int32_t sw, int8_t *op, int32_t ocs)
{
    cols_row(r0, r1, r2, w, q, 2, lo, hi, out_w, sw, op, ocs);
}

/* The column variant (mt_nn_fast.h): the layer transposed through its views (rows <-> columns,
 * so the sliding runs along the tall axis), one channel at a time through a ring of 3
 * planar rows plus a zero-point row. */
int32_t mt_depthwise_conv_3x3_cols_s8_dsp_get_buffer_size(int32_t out_h, int32_t stride_h)
{
    if (out_h < 1 || stride_h < 1 || stride_h > 2) {
        return 0;
    }
    return 2 * 4 * row_len(out_h, stride_h);
}

mt_status mt_depthwise_conv_3x3_cols_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                                            const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                                            const mt_view *out_v, void *scratch)
{
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        scratch == 0 || fd->n != 1 || fd->h != 3 || fd->w != 3 || fd->c != in_v->c || fd->c != out_v->c ||
        p->stride_h < 1 || p->stride_w < 1 || p->stride_h > 2 || p->dilation_h != 1 || p->dilation_w != 1 ||
        (const void *)in == (const void *)out) {
        return MT_ERR_ARG;
    }
    /* transposed: a "row" is an input / output column */
    const int32_t out_w = out_v->h, out_h = out_v->w, sw = p->stride_h, sh = p->stride_w;
    const int32_t in_w = in_v->h, in_h = in_v->w, irs = in_v->col_stride, ics = in_v->row_stride;
    const int32_t ors = out_v->col_stride, ocs = out_v->row_stride, pad_l = p->pad.top, pad_t = p->pad.left;
    if (out_w < 1 || out_h < 1) {
        return MT_OK;
    }
    const int32_t len = row_len(out_w, sw);
    int16_t *rows = (int16_t *)scratch;
    int16_t *zrow = rows + 3 * len;
    const int32_t zz = (int32_t)(((uint32_t)p->input_zp & 0xFFFFu) * 0x10001u);
    for (int32_t j = 0; j < 4 * len; j += 2) {
        dw_wr32(rows + j, zz); /* padding columns stay at the zero point; zrow is all of it */
    }
    const int32_t wn = len - pad_l < in_w ? len - pad_l : in_w; /* input positions a row holds */
    const mt_out_stage o = mt_out_stage_of(p);
    const int32_t kind = clamp_kind(o);
    const int32_t *wf = (const int32_t *)filter;
    for (int32_t c = 0; c < fd->c; ++c) {
        const mt_fast_quant *qc = q + c;
        int32_t slot_iy[3] = {-1, -1, -1};
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * sh - pad_t;
            const int16_t *rp[3];
            for (int32_t k = 0; k < 3; ++k) {
                const int32_t iy = iy0 + k;
                if (iy < 0 || iy >= in_h) {
                    rp[k] = zrow;
                    continue;
                }
                const int32_t slot = iy % 3;
                int16_t *d = rows + slot * len;
                if (slot_iy[slot] != iy) {
                    const int8_t *sp = in + iy * irs + c;
                    int16_t *dp = d + pad_l;
                    int32_t x = 0;
                    for (; x + 2 <= wn; x += 2, sp += 2 * ics) {
                        dp[x] = sp[0];
                        dp[x + 1] = sp[ics];
                    }
                    if (x < wn) {
                        dp[x] = *sp;
                    }
                    slot_iy[slot] = iy;
                }
                rp[k] = d;
            }
            int8_t *op = out + oy * ors + c;
            if (kind == 0) {
                cols_row_k0(rp[0], rp[1], rp[2], wf + 5 * c, qc, out_w, sw, op, ocs);
            } else if (kind == 1) {
                cols_row_k1(rp[0], rp[1], rp[2], wf + 5 * c, qc, o.hi, out_w, sw, op, ocs);
            } else {
                cols_row_k2(rp[0], rp[1], rp[2], wf + 5 * c, qc, o.lo, o.hi, out_w, sw, op, ocs);
            }
        }
    }
    return MT_OK;
}

/* The plane variant (mt_nn_fast.h): for small layers, where the ring's per-row setup
 * dominates. Per group of 4 channels the whole padded input plane the outputs read is
 * widened once into 4 planar int16 planes (the padding at the zero point), then per channel
 * every output row runs the row MAC and the requantization with no further setup. */
static int32_t plane_rows(int32_t out_h, int32_t stride_h)
{
    return (out_h - 1) * stride_h + 3;
}

int32_t mt_depthwise_conv_3x3_plane_s8_dsp_get_buffer_size(int32_t out_h, int32_t out_w, int32_t stride_h,
                                                           int32_t stride_w)
{
    if (out_h < 1 || out_w < 1 || stride_h < 1 || stride_w < 1 || stride_w > 2) {
        return 0;
    }
    /* one row of accumulators (out_w rounded up to even) + 4 planes */
    return 4 * (out_w + 1) + 2 * 4 * plane_rows(out_h, stride_h) * row_len(out_w, stride_w);
}

mt_status mt_depthwise_conv_3x3_plane_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                                             const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                                             const mt_view *out_v, void *scratch)
{
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        scratch == 0 || fd->n != 1 || fd->h != 3 || fd->w != 3 || fd->c != in_v->c || fd->c != out_v->c ||
        p->stride_h < 1 || p->stride_w < 1 || p->stride_w > 2 ||
        p->dilation_h != 1 || p->dilation_w != 1 || (const void *)in == (const void *)out) {
        return MT_ERR_ARG;
    }
    const int32_t out_h = out_v->h, out_w = out_v->w, in_h = in_v->h, in_w = in_v->w;
    const int32_t irs = in_v->row_stride, ics = in_v->col_stride, ors = out_v->row_stride, ocs = out_v->col_stride;
    const int32_t sh = p->stride_h, sw = p->stride_w, pad_t = p->pad.top, pad_l = p->pad.left;
    if (out_w < 1 || out_h < 1) {
        return MT_OK;
    }
    const int32_t len = row_len(out_w, sw), rows = plane_rows(out_h, sh), plane = rows * len;
    int32_t *acc = (int32_t *)scratch;
    int16_t *planes = (int16_t *)(void *)(acc + out_w + 1);
    const int32_t zz = (int32_t)(((uint32_t)p->input_zp & 0xFFFFu) * 0x10001u);
    for (int32_t j = 0; j < 4 * plane; j += 2) {
        dw_wr32(planes + j, zz); /* padding stays at the zero point (len and plane are even) */
    }
    /* input rows the plane holds: plane row k is input row k - pad_t */
    const int32_t k_lo = pad_t > 0 ? pad_t : 0;
    const int32_t k_hi = in_h + pad_t < rows ? in_h + pad_t : rows;
    const mt_out_stage o = mt_out_stage_of(p);
    const int32_t kind = clamp_kind(o);
    const int32_t *wf = (const int32_t *)filter;
    for (int32_t c0 = 0; c0 < fd->c; c0 += 4) {
        const int32_t n = fd->c - c0 < 4 ? fd->c - c0 : 4;
        for (int32_t k = k_lo; k < k_hi; ++k) {
            int16_t *const dst[4] = {planes + k * len, planes + plane + k * len, planes + 2 * plane + k * len,
                                     planes + 3 * plane + k * len};
            load_row(in + (k - pad_t) * irs + c0, in_w, ics, n, dst, pad_l, len);
        }
        for (int32_t c = 0; c < n; ++c) {
            const mt_fast_quant *qc = q + c0 + c;
            const int32_t *w = wf + 5 * (c0 + c);
            const int16_t *r0 = planes + c * plane;
            int8_t *orow = out + c0 + c;
            if (kind == 0) {
                plane_channel_k0(r0, len, sh, sw, out_h, out_w, w, qc, orow, ors, ocs, acc);
            } else if (kind == 1) {
                plane_channel_k1(r0, len, sh, sw, out_h, out_w, w, qc, o.hi, orow, ors, ocs, acc);
            } else {
                plane_channel_k2(r0, len, sh, sw, out_h, out_w, w, qc, o.lo, o.hi, orow, ors, ocs, acc);
            }
        }
    }
    return MT_OK;
}
