/* DepthwiseConv with delta-encoded weights:
 * out[p][oc] = requantize(bias[oc] + sum_t x[tap t of p][oc / M] * w[oc][t]).
 *
 * Depth multiplier 1: four channels at a time. Their rows (k_h * k_w taps each, edgec_delta.h)
 * are decoded once into scratch and laid out as one block of edgec_depthwise.c
 * (edgec_depthwise_block.h), then every output pixel of the four is computed with its sums; a
 * window crossing the border is first copied, those four channels only, with the input zero
 * point in place of padding (biases are folded over all taps). The channels after the last
 * block, and every channel at a depth multiplier > 1, go one at a time from one decoded row.
 *
 * Scratch (delta_layers.depthwise_delta_scratch): the block's weights (taps *
 * BLOCK_WEIGHT_BYTES bytes), a border window of the four channels (taps * 4), then four decoded
 * rows of row_buffer bytes.
 */
#include "edgec_kernels.h"
#include "edgec_delta.h"
#include "edgec_depthwise_block.h"

/* The window sum of channel ic for the window whose first tap is at (iy0, ix0); image points
 * at channel ic of the batch's first pixel, w at the decoded taps. */
EDGEC_INLINE int32_t window_sum(const edgec_depthwise_params *p, const int8_t *image, int iy0, int ix0,
                                const int8_t *w)
{
    const size_t in_c = p->in_c;
    const int span_h = (p->k_h - 1) * p->dilation_h, span_w = (p->k_w - 1) * p->dilation_w;
    int32_t acc = 0;
    if (iy0 >= 0 && ix0 >= 0 && iy0 + span_h < p->in_h && ix0 + span_w < p->in_w) {
        const size_t row_step = (size_t)p->dilation_h * p->in_w * in_c, col_step = (size_t)p->dilation_w * in_c;
        const int8_t *x = image + ((size_t)iy0 * p->in_w + (size_t)ix0) * in_c;
        for (int ky = 0; ky < p->k_h; ky++, x += row_step) {
            const int8_t *tap = x;
            for (int kx = 0; kx < p->k_w; kx++, tap += col_step) {
                acc += *tap * *w++;
            }
        }
        return acc;
    }
    for (int ky = 0; ky < p->k_h; ky++) {
        const int iy = iy0 + ky * p->dilation_h;
        for (int kx = 0; kx < p->k_w; kx++) {
            const int ix = ix0 + kx * p->dilation_w;
            const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
            const int32_t x = inside ? image[((size_t)iy * p->in_w + (size_t)ix) * in_c] : p->input_zero_point;
            acc += x * *w++;
        }
    }
    return acc;
}

/* Every output pixel of channel oc, its taps decoded in w. */
EDGEC_INLINE void channel(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *input,
                          const int8_t *w, uint32_t oc, int8_t *output, int stage)
{
    const size_t image_bytes = (size_t)p->in_h * p->in_w * p->in_c;
    const uint32_t ic = oc / p->depth_multiplier;
    int8_t *out = output + oc;
    for (uint32_t b = 0; b < p->batches; b++) {
        const int8_t *image = input + (size_t)b * image_bytes + ic;
        for (int oy = 0; oy < p->out_h; oy++) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            for (int ox = 0; ox < p->out_w; ox++, out += p->out_c) {
                const int32_t acc = window_sum(p, image, iy0, ox * p->stride_w - p->pad_left, w);
                *out = edgec_output_stage(o, acc, oc, EDGEC_SINGLE_ROUNDING, stage);
            }
        }
    }
}

/* The four decoded rows at rows (row_buffer bytes apart) as one block's weights. */
static void block_weights(const int8_t *rows, uint32_t rb, uint32_t taps, int8_t *w)
{
    for (uint32_t t = 0; t < taps; t++, w += BLOCK_WEIGHT_BYTES) {
#if EDGEC_DSP
        const int16_t lanes[4] = {rows[t], rows[2 * rb + t], rows[rb + t], rows[3 * rb + t]};
        memcpy(w, lanes, sizeof lanes);
#else
        w[0] = rows[t];
        w[1] = rows[rb + t];
        w[2] = rows[2 * rb + t];
        w[3] = rows[3 * rb + t];
#endif
    }
}

/* Channels c .. c + 3 of the window at (iy0, ix0) into patch [k_h][k_w][4], the zero point outside. */
static void block_patch(const edgec_depthwise_params *p, const int8_t *image, int iy0, int ix0, uint32_t c,
                        int8_t *patch)
{
    const uint32_t zero_points = 0x01010101u * (uint8_t)p->input_zero_point;
    for (int ky = 0; ky < p->k_h; ky++) {
        const int iy = iy0 + ky * p->dilation_h;
        for (int kx = 0; kx < p->k_w; kx++, patch += 4) {
            const int ix = ix0 + kx * p->dilation_w;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                memcpy(patch, &zero_points, 4);
            } else {
                memcpy(patch, image + ((size_t)iy * p->in_w + (size_t)ix) * p->in_c + c, 4);
            }
        }
    }
}

/* Every output pixel of channels c .. c + 3, their block weights at w. */
EDGEC_INLINE void block_pixels(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *input,
                               const int8_t *w, int8_t *patch, uint32_t c, int8_t *output, int stage)
{
    const int span_h = (p->k_h - 1) * p->dilation_h, span_w = (p->k_w - 1) * p->dilation_w;
    const size_t in_c = p->in_c, row_step = (size_t)p->dilation_h * p->in_w * in_c;
    const size_t col_step = (size_t)p->dilation_w * in_c;
    int8_t *out = output;
    for (uint32_t b = 0; b < p->batches; b++) {
        const int8_t *image = input + (size_t)b * p->in_h * p->in_w * in_c;
        for (int oy = 0; oy < p->out_h; oy++) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            for (int ox = 0; ox < p->out_w; ox++, out += p->out_c) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                if (iy0 >= 0 && ix0 >= 0 && iy0 + span_h < p->in_h && ix0 + span_w < p->in_w) {
                    block_of_four(p, o, image + ((size_t)iy0 * p->in_w + (size_t)ix0) * in_c + c, row_step, col_step,
                                  w, out, c, stage);
                } else {
                    block_patch(p, image, iy0, ix0, c, patch);
                    block_of_four(p, o, patch, (size_t)p->k_w * 4u, 4u, w, out, c, stage);
                }
            }
        }
    }
}

EDGEC_INLINE void depthwise(const edgec_depthwise_params *p, const edgec_delta_t *d, const edgec_outputs_t *o,
                            const int8_t *input, int8_t *output, int8_t *scratch, int stage)
{
    const uint32_t taps = d->k, rb = d->row_buffer;
    const uint32_t blocked = p->depth_multiplier == 1 ? p->out_c & ~3u : 0u;
    int8_t *w = scratch, *patch = w + taps * BLOCK_WEIGHT_BYTES, *rows = patch + taps * 4u;
    for (uint32_t c = 0; c < blocked; c += 4) {
        for (uint32_t i = 0; i < 4; i++) {
            edgec_delta_row(d, p->weights, c + i, rows + i * rb, taps);
        }
        block_weights(rows, rb, taps, w);
        block_pixels(p, o, input, w, patch, c, output, stage);
    }
    for (uint32_t oc = blocked; oc < p->out_c; oc++) {
        edgec_delta_row(d, p->weights, oc, rows, taps);
        channel(p, o, input, rows, oc, output, stage);
    }
}

void edgec_depthwise_conv_delta(const edgec_depthwise_params *p, const edgec_delta_t *d, const int8_t *input,
                                int8_t *output, int8_t *scratch)
{
    const edgec_outputs_t o = {p->bias, p->requant, p->output_zero_point, p->activation_min, p->activation_max, 1};
    switch (edgec_stage_of(&o, p->generic)) {
    case EDGEC_STAGE_FULL_RANGE:
        depthwise(p, d, &o, input, output, scratch, EDGEC_STAGE_FULL_RANGE);
        break;
    case EDGEC_STAGE_CLAMP:
        depthwise(p, d, &o, input, output, scratch, EDGEC_STAGE_CLAMP);
        break;
    default:
        depthwise(p, d, &o, input, output, scratch, EDGEC_STAGE_GENERIC);
        break;
    }
}
