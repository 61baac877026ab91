/* The walk of a DepthwiseConv over its output pixels, shared by edgec_depthwise.c and the
 * packed-weight kernels (edgec_depthwise_packed.h): each pixel's window is read in place when
 * it lies inside the input, else from a copy in scratch with the input zero point in place of
 * padding (biases are folded over all taps, so every tap must read a value). The including
 * file defines, before including this header,
 *   pixel(p, o, x, row_step, col_step, out, stage): every output channel of one pixel, x at
 *   the window's first tap, channel 0, taps row_step and col_step bytes apart.
 */
#ifndef EDGEC_DEPTHWISE_WALK_H
#define EDGEC_DEPTHWISE_WALK_H

#include "edgec_kernels.h"

/* Copies the window at (iy0, ix0) into patch [k_h][k_w][in_c], the zero point outside. */
static void border_patch(const edgec_depthwise_params *p, const int8_t *image, int iy0, int ix0, int8_t *patch)
{
    const size_t in_c = p->in_c;
    for (int ky = 0; ky < p->k_h; ky++) {
        const int iy = iy0 + ky * p->dilation_h;
        for (int kx = 0; kx < p->k_w; kx++) {
            const int ix = ix0 + kx * p->dilation_w;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                memset(patch, p->input_zero_point, in_c);
            } else {
                memcpy(patch, image + ((size_t)iy * p->in_w + (size_t)ix) * in_c, in_c);
            }
            patch += in_c;
        }
    }
}

EDGEC_INLINE void depthwise(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *input,
                            int8_t *output, int8_t *scratch, int stage)
{
    const int span_h = (p->k_h - 1) * p->dilation_h, span_w = (p->k_w - 1) * p->dilation_w;
    const size_t in_c = p->in_c;
    for (uint32_t b = 0; b < p->batches; b++) {
        const int8_t *image = input + (size_t)b * p->in_h * p->in_w * in_c;
        for (int oy = 0; oy < p->out_h; oy++) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            for (int ox = 0; ox < p->out_w; ox++) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                int8_t *out = output + (((size_t)b * p->out_h + (size_t)oy) * p->out_w + (size_t)ox) * p->out_c;
                if (iy0 >= 0 && ix0 >= 0 && iy0 + span_h < p->in_h && ix0 + span_w < p->in_w) {
                    pixel(p, o, image + ((size_t)iy0 * p->in_w + (size_t)ix0) * in_c,
                          (size_t)p->dilation_h * p->in_w * in_c, (size_t)p->dilation_w * in_c, out, stage);
                } else {
                    border_patch(p, image, iy0, ix0, scratch);
                    pixel(p, o, scratch, (size_t)p->k_w * in_c, in_c, out, stage);
                }
            }
        }
    }
}

/* One instance of the walk per output stage (a constant inside each). */
EDGEC_INLINE void depthwise_dispatch(const edgec_depthwise_params *p, const int8_t *input, int8_t *output,
                                     int8_t *scratch)
{
    const edgec_outputs_t o = {p->bias, p->requant, p->output_zero_point, p->activation_min, p->activation_max, 1};
    switch (edgec_stage_of(&o, p->generic)) {
    case EDGEC_STAGE_FULL_RANGE:
        depthwise(p, &o, input, output, scratch, EDGEC_STAGE_FULL_RANGE);
        break;
    case EDGEC_STAGE_CLAMP:
        depthwise(p, &o, input, output, scratch, EDGEC_STAGE_CLAMP);
        break;
    default:
        depthwise(p, &o, input, output, scratch, EDGEC_STAGE_GENERIC);
        break;
    }
}

#endif /* EDGEC_DEPTHWISE_WALK_H */
