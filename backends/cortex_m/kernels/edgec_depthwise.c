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
 * [taps][rest]. Depth multiplier > 1, or `plain` (the layout of Helium builds): weights
 * [taps][out_c]; Helium (M55) takes sixteen channels a pass (plain_channels), other cores
 * one channel at a time (a host build of an M55 project).
 */
#include "edgec_kernels.h"
#include "edgec_depthwise_block.h"
#include "edgec_mve.h"

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

#if EDGEC_MVE
/* acc += the products of one tap's sixteen inputs and weights, widened (see plain_channels). */
EDGEC_INLINE void tap_of_sixteen(int8x16_t xv, int8x16_t wv, int32x4x4_t *acc)
{
    const int16x8_t even = vmullbq_int_s8(xv, wv), odd = vmulltq_int_s8(xv, wv);
    acc->val[0] = vaddq_s32(acc->val[0], vmovlbq_s16(even));
    acc->val[1] = vaddq_s32(acc->val[1], vmovlbq_s16(odd));
    acc->val[2] = vaddq_s32(acc->val[2], vmovltq_s16(even));
    acc->val[3] = vaddq_s32(acc->val[3], vmovltq_s16(odd));
}

/* Every channel of a pixel from plain [taps][out_c] weights, sixteen channels a pass: per tap
 * one int8 vector of inputs and one of weights, their products widened to int16 (VMULLB for
 * the even channels, VMULLT for the odd) and then to four int32 accumulators (VMOVLB/VMOVLT)
 * holding channels {0,4,8,12} {1,5,9,13} {2,6,10,14} {3,7,11,15}, which VST4 interleaves back
 * into channel order; the fast output stage runs four channels a vector (edgec_mve_output_4).
 * A last pass of fewer than sixteen channels is predicated: lanes past out_c load zero and are
 * not written. */
EDGEC_INLINE void plain_channels(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *x,
                                 size_t row_step, size_t col_step, int8_t *out, int stage)
{
    const uint32_t out_c = p->out_c;
    for (uint32_t c = 0; c < out_c; c += 16) {
        int32x4x4_t acc = {{vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)}};
        const int8_t *w = p->weights + c, *row = x + c;
        if (out_c - c >= 16) {
            for (int ky = 0; ky < p->k_h; ky++, row += row_step) {
                const int8_t *tap = row;
                for (int kx = 0; kx < p->k_w; kx++, tap += col_step, w += out_c) {
                    tap_of_sixteen(vldrbq_s8(tap), vldrbq_s8(w), &acc);
                }
            }
        } else {
            const mve_pred16_t lanes = vctp8q(out_c - c);
            for (int ky = 0; ky < p->k_h; ky++, row += row_step) {
                const int8_t *tap = row;
                for (int kx = 0; kx < p->k_w; kx++, tap += col_step, w += out_c) {
                    tap_of_sixteen(vldrbq_z_s8(tap, lanes), vldrbq_z_s8(w, lanes), &acc);
                }
            }
        }
        int32_t sums[16];
        vst4q_s32(sums, acc);
        const uint32_t count = out_c - c < 16 ? out_c - c : 16;
        if (stage == EDGEC_STAGE_GENERIC) {
            for (uint32_t i = 0; i < count; i++) {
                out[c + i] = FINISH(o, sums[i], c + i);
            }
            continue;
        }
        for (uint32_t i = 0; i < count; i += 4) {
            edgec_mve_output_4(o, vldrwq_s32(sums + i), c + i, count - i, out, EDGEC_SINGLE_ROUNDING);
        }
    }
}
#endif

EDGEC_INLINE void pixel(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *x, size_t row_step,
                        size_t col_step, int8_t *out, int stage)
{
    const uint32_t taps = (uint32_t)p->k_h * p->k_w;
#if EDGEC_MVE
    if (p->plain && p->depth_multiplier == 1) {
        plain_channels(p, o, x, row_step, col_step, out, stage);
        return;
    }
#endif
    if (p->depth_multiplier != 1 || p->plain) {
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
