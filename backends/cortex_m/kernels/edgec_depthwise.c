/* DepthwiseConv: out[p][oc] = requantize(bias[oc] + sum_t x[tap t of p][oc / M] * w[t][oc]).
 *
 * Biases are folded over all taps (bias - zp_in * sum_t w), so inputs are multiplied raw and
 * every tap must read a value: a pixel whose window crosses the border is first copied into
 * scratch with the input zero point in place of padding, and read from there.
 *
 * Depth multiplier 1: channels go four at a time and the weights are laid out for it (by the
 * code generator): for each block of four channels, per tap, the four weights as two words
 * of int16 lane pairs [w0,w2] [w1,w3] on DSP cores (ready for SMLABB/SMLATT against SXTB16
 * of the inputs), or four int8 elsewhere; the channels after the last full block follow as
 * [taps][rest]. Depth multiplier > 1: weights [taps][out_c], one channel at a time.
 */
#include "edgec_kernels.h"
#include "edgec_depthwise_block.h"

/* One output channel; x points at the window's first tap, channel 0; w at tap 0 of the
 * channel in a [taps][stride] layout. */
EDGEC_INLINE void one_channel(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *x,
                              size_t row_step, size_t col_step, const int8_t *w, size_t stride, uint32_t c, uint32_t oc,
                              int8_t *out, int stage)
{
    int32_t acc = 0;
    for (int ky = 0; ky < p->k_h; ky++, x += row_step) {
        const int8_t *tap = x + c;
        for (int kx = 0; kx < p->k_w; kx++, tap += col_step, w += stride) {
            acc += *tap * *w;
        }
    }
    out[oc] = FINISH(o, acc, oc);
}

EDGEC_INLINE void pixel(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *x, size_t row_step,
                        size_t col_step, int8_t *out, int stage)
{
    const uint32_t taps = (uint32_t)p->k_h * p->k_w;
    if (p->depth_multiplier != 1) {
        for (uint32_t oc = 0; oc < p->out_c; oc++) {
            one_channel(p, o, x, row_step, col_step, p->weights + oc, p->out_c, oc / p->depth_multiplier, oc, out, stage);
        }
        return;
    }
    const uint32_t blocked = p->out_c & ~3u, rest = p->out_c - blocked;
    const int8_t *w = p->weights;
    uint32_t c = 0;
    for (; c < blocked; c += 4, w += taps * BLOCK_WEIGHT_BYTES) {
        block_of_four(p, o, x + c, row_step, col_step, w, out, c, stage);
    }
    for (uint32_t i = 0; i < rest; i++) {
        one_channel(p, o, x, row_step, col_step, w + i, rest, c + i, c + i, out, stage);
    }
}

#include "edgec_depthwise_walk.h"

void edgec_depthwise_conv(const edgec_depthwise_params *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    depthwise_dispatch(p, input, output, scratch);
}
