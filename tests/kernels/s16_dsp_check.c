/* Host check of the 16x8 DSP kernels (runtime_c/mt_*_s16_dsp.c) against the portable 16x8
 * kernels (mt_*_s16, themselves checked against TFLite-Micro in tests/test_tflite_support.py),
 * byte for byte, built with -DMT_EMULATE_ACLE (the SIMD paths over mt_acle_host.h) and run by
 * tests/test_kernels_s16_dsp.py under ASan + UBSan.
 *
 * usage: s16_dsp_check N [SEED]: N random cases per kernel (shapes, strides, dilation, per-edge
 * padding, views inside larger buffers, every bias form, full-range int16 activations and int8
 * weights incl. -128), then the overflow corners: all activations -32768 (or 32767) x all weights
 * -128 over K = 508, 509, 2048 and 4099 (conv), 5003 (FC) and 511 taps (depthwise), with the
 * requantization scaled so the outputs do not saturate. Prints one line per kernel; exit 1 on
 * the first difference (including a byte written outside the output view).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_nn.h"
#include "mt_nn_fast.h"

static uint64_t rng_state = 1;

static uint32_t rnd32(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 32);
}

static int32_t rint_in(int32_t lo, int32_t hi) /* [lo, hi] */
{
    return lo + (int32_t)(rnd32() % (uint32_t)(hi - lo + 1));
}

#define SENTINEL 0x5A5A

typedef struct {
    int corner;      /* 0 random; 1: x = -32768, w = -128; 2: x = 32767, w = -128 */
    int32_t log2_k;  /* the requantization is scaled for accumulators ~2^log2_k */
} fill_mode;

static void fill_x(int16_t *x, int32_t n, fill_mode m)
{
    for (int32_t i = 0; i < n; ++i) {
        x[i] = m.corner == 1 ? -32768 : (m.corner == 2 ? 32767 : (int16_t)rint_in(-32768, 32767));
    }
}

static void fill_w(int8_t *w, int32_t n, fill_mode m)
{
    for (int32_t i = 0; i < n; ++i) {
        w[i] = m.corner ? -128 : (int8_t)rint_in(-128, 127);
    }
}

/* multipliers in [2^30, 2^31), shifts so that an accumulator of ~2^log2_k lands near +-2^14 */
static void fill_quant(int32_t *mult, int32_t *shift, int32_t n, fill_mode m)
{
    for (int32_t i = 0; i < n; ++i) {
        mult[i] = (int32_t)(0x40000000u + (rnd32() & 0x3FFFFFFFu));
        shift[i] = m.corner ? 14 - m.log2_k : rint_in(-(m.log2_k - 10), -(m.log2_k - 16));
        if (shift[i] > 30) {
            shift[i] = 30;
        }
    }
}

static int32_t ilog2(int64_t v)
{
    int32_t r = 0;
    while (v > 1) {
        v >>= 1;
        ++r;
    }
    return r;
}

static int check_out(const char *what, int32_t case_no, const int16_t *a, const int16_t *b, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        if (a[i] != b[i]) {
            printf("FAIL %s case %d: element %d: dsp %d portable %d\n", what, case_no, i, a[i], b[i]);
            return 1;
        }
    }
    return 0;
}

/* One conv case: returns 1 on a difference. */
static int conv_case(int32_t case_no, int32_t kh, int32_t kw, int32_t ic, int32_t oc, int32_t ih, int32_t iw,
                     fill_mode m, int bias_kind)
{
    mt_conv_params p;
    memset(&p, 0, sizeof p);
    p.stride_h = m.corner ? 1 : rint_in(1, 3);
    p.stride_w = m.corner ? 1 : rint_in(1, 3);
    p.dilation_h = m.corner ? 1 : rint_in(1, 2);
    p.dilation_w = m.corner ? 1 : rint_in(1, 2);
    p.pad.top = m.corner ? 0 : rint_in(0, kh - 1);
    p.pad.left = m.corner ? 0 : rint_in(0, kw - 1);
    p.pad.bottom = m.corner ? 0 : rint_in(0, kh - 1);
    p.pad.right = m.corner ? 0 : rint_in(0, kw - 1);
    p.output_offset = 0;
    p.act_min = m.corner || rnd32() % 2 ? -32768 : rint_in(-32768, 0);
    p.act_max = m.corner || rnd32() % 2 ? 32767 : rint_in(0, 32767);
    const int32_t eh = (kh - 1) * p.dilation_h + 1, ew = (kw - 1) * p.dilation_w + 1;
    const int32_t oh = (ih + p.pad.top + p.pad.bottom - eh) / p.stride_h + 1;
    const int32_t ow = (iw + p.pad.left + p.pad.right - ew) / p.stride_w + 1;
    if (ih + p.pad.top + p.pad.bottom < eh || iw + p.pad.left + p.pad.right < ew) {
        return 0;
    }
    /* views inside larger buffers */
    const int32_t in_cs = ic + (m.corner ? 0 : rint_in(0, 2)), in_rs = iw * in_cs + (m.corner ? 0 : rint_in(0, 3));
    const int32_t out_cs = oc + (m.corner ? 0 : rint_in(0, 2)), out_rs = ow * out_cs + (m.corner ? 0 : rint_in(0, 3));
    const mt_view in_v = {ih, iw, ic, in_rs, in_cs}, out_v = {oh, ow, oc, out_rs, out_cs};
    const mt_dims fd = {oc, kh, kw, ic};
    const int32_t n_in = ih * in_rs, n_out = oh * out_rs, n_w = oc * kh * kw * ic;
    int16_t *x = malloc(sizeof(int16_t) * (size_t)n_in);
    int8_t *w = malloc((size_t)n_w);
    int16_t *y0 = malloc(sizeof(int16_t) * (size_t)n_out), *y1 = malloc(sizeof(int16_t) * (size_t)n_out);
    int64_t *b64 = malloc(sizeof(int64_t) * (size_t)oc);
    int32_t *b32 = malloc(sizeof(int32_t) * (size_t)oc), *mult = malloc(sizeof(int32_t) * (size_t)oc),
            *shift = malloc(sizeof(int32_t) * (size_t)oc);
    const int32_t sz = mt_conv_s16_dsp_get_buffer_size(&fd);
    void *scratch = malloc((size_t)sz);
    fill_x(x, n_in, m);
    fill_w(w, n_w, m);
    fill_quant(mult, shift, oc, m);
    for (int32_t i = 0; i < oc; ++i) {
        b64[i] = (int64_t)(int32_t)rnd32() * 256;
        b32[i] = (int32_t)rnd32() >> 4;
    }
    for (int32_t i = 0; i < n_out; ++i) {
        y0[i] = y1[i] = (int16_t)SENTINEL;
    }
    const mt_pc_quant q = {mult, shift};
    const int64_t *pb64 = bias_kind == 1 ? b64 : 0;
    const int32_t *pb32 = bias_kind == 2 ? b32 : 0;
    int bad = mt_conv_s16_dsp(&p, &q, x, &in_v, w, &fd, pb64, pb32, y0, &out_v, scratch) != MT_OK ||
              mt_conv_s16(&p, &q, x, &in_v, w, &fd, pb64, pb32, y1, &out_v) != MT_OK;
    if (bad) {
        printf("FAIL conv case %d: status\n", case_no);
    } else {
        bad = check_out("conv", case_no, y0, y1, n_out);
    }
    free(x), free(w), free(y0), free(y1), free(b64), free(b32), free(mult), free(shift), free(scratch);
    return bad;
}

static int dw_case(int32_t case_no, int32_t kh, int32_t kw, int32_t ch, int32_t ih, int32_t iw, fill_mode m,
                   int32_t mult_d, int bias_kind)
{
    mt_conv_params p;
    memset(&p, 0, sizeof p);
    p.stride_h = m.corner ? 1 : rint_in(1, 3);
    p.stride_w = m.corner ? 1 : rint_in(1, 3);
    p.dilation_h = m.corner ? 1 : rint_in(1, 2);
    p.dilation_w = m.corner ? 1 : rint_in(1, 2);
    p.pad.top = m.corner ? 0 : rint_in(0, kh - 1);
    p.pad.left = m.corner ? 0 : rint_in(0, kw - 1);
    p.pad.bottom = m.corner ? 0 : rint_in(0, kh - 1);
    p.pad.right = m.corner ? 0 : rint_in(0, kw - 1);
    p.output_offset = 0;
    p.act_min = m.corner || rnd32() % 2 ? -32768 : rint_in(-32768, 0);
    p.act_max = m.corner || rnd32() % 2 ? 32767 : rint_in(0, 32767);
    const int32_t eh = (kh - 1) * p.dilation_h + 1, ew = (kw - 1) * p.dilation_w + 1;
    if (ih + p.pad.top + p.pad.bottom < eh || iw + p.pad.left + p.pad.right < ew) {
        return 0;
    }
    const int32_t oh = (ih + p.pad.top + p.pad.bottom - eh) / p.stride_h + 1;
    const int32_t ow = (iw + p.pad.left + p.pad.right - ew) / p.stride_w + 1;
    const int32_t oc = ch * mult_d;
    const int32_t in_cs = ch + (m.corner ? 0 : rint_in(0, 3)), in_rs = iw * in_cs + (m.corner ? 0 : rint_in(0, 3));
    const int32_t out_cs = oc + (m.corner ? 0 : rint_in(0, 2)), out_rs = ow * out_cs + (m.corner ? 0 : rint_in(0, 3));
    const mt_view in_v = {ih, iw, ch, in_rs, in_cs}, out_v = {oh, ow, oc, out_rs, out_cs};
    const mt_dims fd = {1, kh, kw, oc};
    const int32_t n_in = ih * in_rs, n_out = oh * out_rs, n_w = kh * kw * oc;
    int16_t *x = malloc(sizeof(int16_t) * (size_t)n_in);
    int8_t *w = malloc((size_t)n_w);
    int16_t *y0 = malloc(sizeof(int16_t) * (size_t)n_out), *y1 = malloc(sizeof(int16_t) * (size_t)n_out);
    int64_t *b64 = malloc(sizeof(int64_t) * (size_t)oc);
    int32_t *mult = malloc(sizeof(int32_t) * (size_t)oc), *shift = malloc(sizeof(int32_t) * (size_t)oc);
    fill_x(x, n_in, m);
    fill_w(w, n_w, m);
    fill_quant(mult, shift, oc, m);
    for (int32_t i = 0; i < oc; ++i) {
        b64[i] = (int64_t)(int32_t)rnd32() * 16;
    }
    for (int32_t i = 0; i < n_out; ++i) {
        y0[i] = y1[i] = (int16_t)SENTINEL;
    }
    const mt_pc_quant q = {mult, shift};
    const int64_t *pb = bias_kind ? b64 : 0;
    int bad = mt_depthwise_conv_s16_dsp(&p, &q, mult_d, x, &in_v, w, &fd, pb, y0, &out_v) != MT_OK ||
              mt_depthwise_conv_s16(&p, &q, mult_d, x, &in_v, w, &fd, pb, y1, &out_v) != MT_OK;
    if (bad) {
        printf("FAIL dw case %d: status\n", case_no);
    } else {
        bad = check_out("depthwise", case_no, y0, y1, n_out);
    }
    free(x), free(w), free(y0), free(y1), free(b64), free(mult), free(shift);
    return bad;
}

static int fc_case(int32_t case_no, int32_t batches, int32_t in_f, int32_t out_f, fill_mode m, int bias_kind,
                   int32_t per_channel)
{
    mt_fc_params p = {0, 0, 0, -32768, 32767};
    if (!m.corner && rnd32() % 2) {
        p.act_min = rint_in(-32768, 0);
        p.act_max = rint_in(0, 32767);
    }
    const int32_t n_in = batches * in_f, n_out = batches * out_f, n_w = out_f * in_f;
    int16_t *x = malloc(sizeof(int16_t) * (size_t)(n_in > 0 ? n_in : 1));
    int8_t *w = malloc((size_t)(n_w > 0 ? n_w : 1));
    int16_t *y0 = malloc(sizeof(int16_t) * (size_t)(n_out + 1)), *y1 = malloc(sizeof(int16_t) * (size_t)(n_out + 1));
    int64_t *b64 = malloc(sizeof(int64_t) * (size_t)out_f);
    int32_t *b32 = malloc(sizeof(int32_t) * (size_t)out_f), *mult = malloc(sizeof(int32_t) * (size_t)out_f),
            *shift = malloc(sizeof(int32_t) * (size_t)out_f);
    void *scratch = malloc((size_t)mt_fully_connected_s16_dsp_get_buffer_size(in_f) + 1);
    fill_x(x, n_in, m);
    fill_w(w, n_w, m);
    fill_quant(mult, shift, out_f, m);
    for (int32_t i = 0; i < out_f; ++i) {
        b64[i] = (int64_t)(int32_t)rnd32() * 256;
        b32[i] = (int32_t)rnd32() >> 4;
    }
    for (int32_t i = 0; i <= n_out; ++i) {
        y0[i] = y1[i] = (int16_t)SENTINEL;
    }
    const mt_pc_quant q = {mult, shift};
    const int64_t *pb64 = bias_kind == 1 ? b64 : 0;
    const int32_t *pb32 = bias_kind == 2 ? b32 : 0;
    int bad = mt_fully_connected_s16_dsp(&p, &q, per_channel, x, batches, in_f, w, pb64, pb32, out_f, y0,
                                         scratch) != MT_OK ||
              mt_fully_connected_s16(&p, &q, per_channel, x, batches, in_f, w, pb64, pb32, out_f, y1) != MT_OK;
    if (bad) {
        printf("FAIL fc case %d: status\n", case_no);
    } else {
        bad = check_out("fully_connected", case_no, y0, y1, n_out + 1);
    }
    free(x), free(w), free(y0), free(y1), free(b64), free(b32), free(mult), free(shift), free(scratch);
    return bad;
}

int main(int argc, char **argv)
{
    const int32_t n = argc > 1 ? atoi(argv[1]) : 200;
    rng_state = argc > 2 ? (uint64_t)atoll(argv[2]) : 1;
    int32_t done[3] = {0, 0, 0};
    for (int32_t i = 0; i < n; ++i) {
        const int32_t kh = rint_in(1, 5), kw = rint_in(1, 5), ic = rint_in(1, 20), oc = rint_in(1, 9);
        const fill_mode m = {0, ilog2((int64_t)kh * kw * ic) + 21};
        if (conv_case(i, kh, kw, ic, oc, rint_in(1, 9), rint_in(1, 9), m, (int)(rnd32() % 3))) {
            return 1;
        }
        const int32_t dkh = rint_in(1, 5), dkw = rint_in(1, 5);
        const fill_mode md = {0, ilog2((int64_t)dkh * dkw) + 21};
        if (dw_case(i, dkh, dkw, rint_in(1, 13), rint_in(1, 9), rint_in(1, 9), md, rnd32() % 4 ? 1 : 2,
                    (int)(rnd32() % 2))) {
            return 1;
        }
        const int32_t in_f = rint_in(1, 70);
        const fill_mode mf = {0, ilog2(in_f) + 21};
        if (fc_case(i, rint_in(1, 3), in_f, rint_in(1, 11), mf, (int)(rnd32() % 3), (int32_t)(rnd32() % 2))) {
            return 1;
        }
        done[0] += 1, done[1] += 1, done[2] += 1;
    }
    /* the overflow corners: products of 2^22 (and -2^22 + 2^15 * 2^7 - ...) over long sums */
    const int32_t ks[] = {127, 128, 512, 1025}; /* 1x1 conv in_ch: K = 4 * ... below */
    for (int corner = 1; corner <= 2; ++corner) {
        for (int32_t j = 0; j < 4; ++j) {
            const int32_t ic = 4 * ks[j] + (j & 1); /* 508, 513, 2048, 4101 */
            const fill_mode m = {corner, ilog2((int64_t)ic << 22)};
            for (int b = 0; b < 3; ++b) {
                if (conv_case(1000 + j, 1, 1, ic, 3, 2, 3, m, b) || conv_case(2000 + j, 2, 2, ic / 4, 3, 3, 3, m, b)) {
                    return 1;
                }
                done[0] += 2;
            }
        }
        const fill_mode mf = {corner, ilog2((int64_t)5003 << 22)};
        for (int b = 0; b < 3; ++b) {
            if (fc_case(3000, 2, 5003, 6, mf, b, 1) || fc_case(3001, 1, 508, 5, mf, b, 0)) {
                return 1;
            }
            done[2] += 2;
        }
        const fill_mode md = {corner, ilog2((int64_t)511 << 22)};
        if (dw_case(4000, 7, 73, 6, 7, 73, md, 1, 1) || dw_case(4001, 16, 32, 5, 16, 32, md, 1, 0)) {
            return 1; /* 511 taps (the DSP path's limit) and 512 taps (the portable fallback) */
        }
        done[1] += 2;
    }
    printf("ok conv %d depthwise %d fully_connected %d\n", done[0], done[1], done[2]);
    return 0;
}
