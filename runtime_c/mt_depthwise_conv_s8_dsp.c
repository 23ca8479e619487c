/* mt_depthwise_conv_s8_dsp: depthwise convolution (depth multiplier 1), four channels per
 * step with the DSP extension.
 *
 * One LDR brings four channels of an input pixel; SXTB16 splits them into the even and odd
 * channel pairs (c0, c2), (c1, c3), which meet the filter group of the same tap (packed
 * offline in that order) in SMLABB/SMLATT: 8 instructions for 4 MACs per tap, then the
 * 5-instruction requantization per output. Pixels whose window lies inside the input skip
 * all bounds checks; border pixels read the input zero point for padding taps (the bias
 * fold of mt_nn_fast.h makes that contribute nothing).
 */
#include "mt_simd.h"

int32_t mt_depthwise_conv_s8_dsp_get_buffer_size(const mt_dims *fd)
{
    (void)fd;
    return 0;
}

/* Four channels (c .. c+3) of one pixel; channels past `n` read as 0 (their weights are 0). */
MT_INLINE int32_t read_ch(const int8_t *s, int32_t n)
{
    if (n >= 4) {
        return mt_read_s8x4(s);
    }
    int8_t t[4] = {0, 0, 0, 0};
    for (int32_t j = 0; j < n; ++j) {
        t[j] = s[j];
    }
    return mt_read_s8x4(t);
}

#if MT_SIMD
#define MT_DW_TAP(x, wp)                                       \
    do {                                                       \
        const int32_t xa_ = mt_sxtb16(x), xb_ = mt_sxtb16_ror8(x); \
        int32_t wa_, wb_;                                      \
        if (wide) {                                            \
            MT_LD2(wp, wa_, wb_);                              \
        } else {                                               \
            const int32_t wv_ = mt_read_s8x4((const int8_t *)(wp)); \
            wp += 1;                                           \
            wa_ = mt_sxtb16(wv_);                              \
            wb_ = mt_sxtb16_ror8(wv_);                         \
        }                                                      \
        a0 = __smlabb(xa_, wa_, a0);                           \
        a2 = __smlatt(xa_, wa_, a2);                           \
        a1 = __smlabb(xb_, wb_, a1);                           \
        a3 = __smlatt(xb_, wb_, a3);                           \
    } while (0)
#else
MT_INLINE int32_t lane(int32_t w, int32_t j)
{
    return (int32_t)(int8_t)(uint8_t)(((uint32_t)w >> (8 * j)) & 0xFFu);
}
MT_INLINE int32_t wlane(const int32_t *wp, int32_t wide, int32_t j)
{
    if (wide) {
        /* words (c0 | c2 << 16), (c1 | c3 << 16) */
        const uint32_t u = (uint32_t)wp[j & 1];
        return (int32_t)(int16_t)(uint16_t)((j & 2) ? u >> 16 : u & 0xFFFFu);
    }
    return lane(wp[0], j);
}
#define MT_DW_TAP(x, wp)                                                         \
    do {                                                                         \
        a0 = mt_add_wrap(a0, lane(x, 0) * wlane(wp, wide, 0));                   \
        a1 = mt_add_wrap(a1, lane(x, 1) * wlane(wp, wide, 1));                   \
        a2 = mt_add_wrap(a2, lane(x, 2) * wlane(wp, wide, 2));                   \
        a3 = mt_add_wrap(a3, lane(x, 3) * wlane(wp, wide, 3));                   \
        wp += wide ? 2 : 1;                                                      \
    } while (0)
#endif

#if MT_SIMD
/* One 3x3 window, four channels, int16 filter: kept out of line so its 4 accumulators, 2
 * strides and pointers get registers of their own (the generic loop nest spills). */
static __attribute__((noinline)) void dw3x3_w16(const int8_t *s, int32_t rs, int32_t cs, const int32_t *w,
                                                const mt_fast_quant *qc, mt_out_stage o, int8_t *op)
{
    int32_t a0 = qc[0].bias, a1 = qc[1].bias, a2 = qc[2].bias, a3 = qc[3].bias;
    for (int32_t ky = 0; ky < 3; ++ky, s += rs) {
        const int32_t x0 = mt_read_s8x4(s), x1 = mt_read_s8x4(s + cs), x2 = mt_read_s8x4(s + 2 * cs);
        int32_t wa, wb;
        int32_t xa = mt_sxtb16(x0), xb = mt_sxtb16_ror8(x0);
        MT_LD2(w, wa, wb);
        a0 = __smlabb(xa, wa, a0);
        a2 = __smlatt(xa, wa, a2);
        a1 = __smlabb(xb, wb, a1);
        a3 = __smlatt(xb, wb, a3);
        xa = mt_sxtb16(x1), xb = mt_sxtb16_ror8(x1);
        MT_LD2(w, wa, wb);
        a0 = __smlabb(xa, wa, a0);
        a2 = __smlatt(xa, wa, a2);
        a1 = __smlabb(xb, wb, a1);
        a3 = __smlatt(xb, wb, a3);
        xa = mt_sxtb16(x2), xb = mt_sxtb16_ror8(x2);
        MT_LD2(w, wa, wb);
        a0 = __smlabb(xa, wa, a0);
        a2 = __smlatt(xa, wa, a2);
        a1 = __smlabb(xb, wb, a1);
        a3 = __smlatt(xb, wb, a3);
    }
    op[0] = mt_clamp_q(mt_requant_q(a0, qc[0].mult, qc[0].lshift, qc[0].rnd, qc[0].rshift), o);
    op[1] = mt_clamp_q(mt_requant_q(a1, qc[1].mult, qc[1].lshift, qc[1].rnd, qc[1].rshift), o);
    op[2] = mt_clamp_q(mt_requant_q(a2, qc[2].mult, qc[2].lshift, qc[2].rnd, qc[2].rshift), o);
    op[3] = mt_clamp_q(mt_requant_q(a3, qc[3].mult, qc[3].lshift, qc[3].rnd, qc[3].rshift), o);
}
#endif

/* The loop nest, instantiated for an int16 (wide = 1) and an int8 filter so the tap's
 * filter load has no branch. */
MT_INLINE void dw_run(const mt_fast_params *p, const mt_fast_quant *q,
                                                         const int8_t *in, const mt_view *in_v, const int32_t *filter,
                                                         const mt_dims *fd, int8_t *out, const mt_view *out_v,
                                                         const int32_t wide)
{
    const int32_t kh = fd->h, kw = fd->w, ch = fd->c;
    const int32_t taps = kh * kw;
    const int32_t group_words = wide ? 2 * taps : taps; /* filter words per group of 4 channels */
    const int32_t zpw = mt_splat_s8x4(p->input_zp);
    const int32_t in_h = in_v->h, in_w = in_v->w, rs = in_v->row_stride, cs = in_v->col_stride;
    const int32_t dh = p->dilation_h, dw = p->dilation_w;
    const int32_t drs = dh * rs, dcs = dw * cs;
    const int32_t span_h = (kh - 1) * dh, span_w = (kw - 1) * dw;
    const mt_out_stage o = mt_out_stage_of(p);
    for (int32_t oy = 0; oy < out_v->h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad.top;
        for (int32_t ox = 0; ox < out_v->w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad.left;
            const int32_t inside = iy0 >= 0 && ix0 >= 0 && iy0 + span_h < in_h && ix0 + span_w < in_w;
            int8_t *op = out + oy * out_v->row_stride + ox * out_v->col_stride;
            const int32_t *wp = filter;
#if MT_SIMD
            if (inside && wide && kh == 3 && kw == 3) {
                const int8_t *r = in + iy0 * rs + ix0 * cs;
                int32_t c = 0;
                for (; c + 4 <= ch; c += 4, wp += group_words) {
                    dw3x3_w16(r + c, drs, dcs, wp, q + c, o, op + c);
                }
                if (c == ch) {
                    continue;
                }
            }
#endif
            for (int32_t c = (const int32_t *)wp == filter ? 0 : (int32_t)(wp - filter) / group_words * 4; c < ch;
                 c += 4, wp += group_words) {
                const int32_t n = ch - c;
                const mt_fast_quant *qc = q + c;
                int32_t a0 = qc[0].bias;
                int32_t a1 = n > 1 ? qc[1].bias : 0;
                int32_t a2 = n > 2 ? qc[2].bias : 0;
                int32_t a3 = n > 3 ? qc[3].bias : 0;
                const int32_t *w = wp;
                if (inside && n >= 4) {
                    const int8_t *r = in + iy0 * rs + ix0 * cs + c;
                    for (int32_t ky = 0; ky < kh; ++ky, r += drs) {
                        const int8_t *s = r;
                        int32_t kx = kw;
                        for (; kx >= 3; kx -= 3) {
                            const int32_t x0 = mt_read_s8x4(s), x1 = mt_read_s8x4(s + dcs);
                            const int32_t x2 = mt_read_s8x4(s + 2 * dcs);
                            s += 3 * dcs;
                            MT_DW_TAP(x0, w);
                            MT_DW_TAP(x1, w);
                            MT_DW_TAP(x2, w);
                        }
                        for (; kx > 0; --kx, s += dcs) {
                            const int32_t x0 = mt_read_s8x4(s);
                            MT_DW_TAP(x0, w);
                        }
                    }
                } else {
                    for (int32_t ky = 0, iy = iy0; ky < kh; ++ky, iy += dh) {
                        if (iy < 0 || iy >= in_h) {
                            for (int32_t kx = 0; kx < kw; ++kx) {
                                MT_DW_TAP(zpw, w);
                            }
                            continue;
                        }
                        const int8_t *row = in + iy * rs + c;
                        for (int32_t kx = 0, ix = ix0; kx < kw; ++kx, ix += dw) {
                            const int32_t x = ix >= 0 && ix < in_w ? read_ch(row + ix * cs, n) : zpw;
                            MT_DW_TAP(x, w);
                        }
                    }
                }
                op[c] = mt_clamp_q(mt_requant_q(a0, qc[0].mult, qc[0].lshift, qc[0].rnd, qc[0].rshift), o);
                if (n > 3) {
                    op[c + 1] = mt_clamp_q(mt_requant_q(a1, qc[1].mult, qc[1].lshift, qc[1].rnd, qc[1].rshift), o);
                    op[c + 2] = mt_clamp_q(mt_requant_q(a2, qc[2].mult, qc[2].lshift, qc[2].rnd, qc[2].rshift), o);
                    op[c + 3] = mt_clamp_q(mt_requant_q(a3, qc[3].mult, qc[3].lshift, qc[3].rnd, qc[3].rshift), o);
                } else {
                    if (n > 1) {
                        op[c + 1] = mt_clamp_q(mt_requant_q(a1, qc[1].mult, qc[1].lshift, qc[1].rnd, qc[1].rshift), o);
                    }
                    if (n > 2) {
                        op[c + 2] = mt_clamp_q(mt_requant_q(a2, qc[2].mult, qc[2].lshift, qc[2].rnd, qc[2].rshift), o);
                    }
                }
            }
        }
    }
}

mt_status mt_depthwise_conv_s8_dsp(const mt_fast_params *p, const mt_fast_quant *q, const int8_t *in,
                                   const mt_view *in_v, const void *filter, const mt_dims *fd, int8_t *out,
                                   const mt_view *out_v, void *scratch)
{
    (void)scratch;
    if (p == 0 || q == 0 || in == 0 || in_v == 0 || filter == 0 || fd == 0 || out == 0 || out_v == 0 ||
        fd->n != 1 || fd->c != in_v->c || fd->c != out_v->c || p->stride_h < 1 || p->stride_w < 1 ||
        p->dilation_h < 1 || p->dilation_w < 1 || (const void *)in == (const void *)out) {
        return MT_ERR_ARG;
    }
    if (p->wide) {
        dw_run(p, q, in, in_v, (const int32_t *)filter, fd, out, out_v, 1);
    } else {
        dw_run(p, q, in, in_v, (const int32_t *)filter, fd, out, out_v, 0);
    }
    return MT_OK;
}
