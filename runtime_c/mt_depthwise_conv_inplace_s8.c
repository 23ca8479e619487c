/* mt_depthwise_conv_inplace_s8: depthwise convolution that overwrites its own input.
 *
 * What is supported: depth multiplier 1, stride 1 (any kernel size, dilation and padding),
 * output written over the input buffer with the same row/pixel strides and channel count;
 * the output view may be smaller than the input view (same base pointer). Output pixel
 * (y, x) lands where input pixel (y, x) was.
 *
 * How: output row oy reads input rows >= oy - pad.top only, so input row r is dead once
 * output row r + pad.top is computed. Output rows are computed into a ring of
 * (pad.top + 1) rows x out_w x c int8 in `scratch` and row r is copied back over input row r
 * right after output row r + pad.top is done. 1x1 kernels without padding need no scratch
 * (each output pixel reads only its own input pixel, channel by channel).
 */
#include "mt_nn.h"
#include "mt_internal.h"
#include "mt_quant.h"

static int32_t needs_no_scratch(const mt_conv_params *p, const mt_dims *fd)
{
    return fd->h == 1 && fd->w == 1 && p->pad.top == 0 && p->pad.left == 0;
}

int32_t mt_depthwise_conv_inplace_s8_get_buffer_size(const mt_conv_params *p, const mt_dims *fd,
                                                     const mt_view *out_v)
{
    if (needs_no_scratch(p, fd)) {
        return 0;
    }
    return (p->pad.top + 1) * out_v->w * out_v->c;
}

static void commit_row(int8_t *buf, const mt_view *out_v, const int8_t *row, int32_t y)
{
    int8_t *dst = buf + y * out_v->row_stride;
    for (int32_t x = 0; x < out_v->w; ++x) {
        for (int32_t c = 0; c < out_v->c; ++c) {
            dst[x * out_v->col_stride + c] = row[x * out_v->c + c];
        }
    }
}

mt_status mt_depthwise_conv_inplace_s8(const mt_conv_params *p, const mt_pc_quant *q, int8_t *buf,
                                       const mt_view *in_v, const mt_view *out_v, const int8_t *filter,
                                       const mt_dims *fd, const int32_t *bias, void *scratch)
{
    if (p == 0 || q == 0 || buf == 0 || in_v == 0 || out_v == 0 || filter == 0 || fd == 0 ||
        p->stride_h != 1 || p->stride_w != 1 || p->dilation_h < 1 || p->dilation_w < 1 ||
        p->pad.top < 0 || p->pad.left < 0 || fd->c != in_v->c || out_v->c != in_v->c ||
        out_v->row_stride != in_v->row_stride || out_v->col_stride != in_v->col_stride ||
        out_v->h > in_v->h || out_v->w > in_v->w) {
        return MT_ERR_ARG;
    }
    if (needs_no_scratch(p, fd)) {
        /* Channel oc of pixel (y, x) reads only channel oc of the same pixel. */
        int8_t tmp[1];
        for (int32_t y = 0; y < out_v->h; ++y) {
            for (int32_t x = 0; x < out_v->w; ++x) {
                int8_t *px = buf + y * out_v->row_stride + x * out_v->col_stride;
                for (int32_t c = 0; c < out_v->c; ++c) {
                    const mt_view one = {1, 1, 1, 1, 1};
                    const mt_dims fd1 = {1, 1, 1, 1};
                    const mt_pc_quant q1 = {q->multiplier + c, q->shift + c};
                    mt_depthwise_conv_pixel_s8(p, &q1, 1, px + c, &one, filter + c, &fd1,
                                               bias != 0 ? bias + c : 0, 0, 0, tmp);
                    px[c] = tmp[0];
                }
            }
        }
        return MT_OK;
    }
    if (scratch == 0) {
        return MT_ERR_ARG;
    }
    int8_t *ring = (int8_t *)scratch;
    const int32_t rows = p->pad.top + 1;
    const int32_t row_bytes = out_v->w * out_v->c;
    for (int32_t oy = 0; oy < out_v->h; ++oy) {
        int8_t *row = ring + (oy % rows) * row_bytes;
        for (int32_t ox = 0; ox < out_v->w; ++ox) {
            mt_depthwise_conv_pixel_s8(p, q, 1, buf, in_v, filter, fd, bias, oy, ox, row + ox * out_v->c);
        }
        const int32_t done = oy - p->pad.top;
        if (done >= 0) {
            commit_row(buf, out_v, ring + (done % rows) * row_bytes, done);
        }
    }
    for (int32_t y = out_v->h - p->pad.top; y < out_v->h; ++y) {
        if (y >= 0) {
            commit_row(buf, out_v, ring + (y % rows) * row_bytes, y);
        }
    }
    return MT_OK;
}
