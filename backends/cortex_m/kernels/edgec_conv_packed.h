/* Conv and FullyConnected with 4-bit or 2-bit weights packed 8 or 16 to a 32-bit word: the
 * kernel of edgec_conv_w4.c and edgec_conv_w2.c, which define EDGEC_WEIGHT_BITS and include it.
 *
 * Same sums and output stage as edgec_conv.c; only the weights differ. k_padded is a multiple
 * of the row step 32 / bits, rows go in pairs interleaved word by word (an odd last channel
 * paired with a zero row), and the weights are unpacked inside the MAC loops of
 * edgec_dot_packed.h, against the columns edgec_conv.c prepares: both the pixel pairs and a
 * lone pixel (prepared as a pair of itself) read prepared columns, so the scratch is always
 * 4 * k_padded bytes for them, then k_padded bytes per gathered column (none when the window
 * is a 1x1 over a multiple of the row step of channels whose every window lies inside the
 * input).
 */
#ifndef EDGEC_CONV_PACKED_H
#define EDGEC_CONV_PACKED_H

#include "edgec_kernels.h"
#include "edgec_dot_packed.h"

#define EDGEC_COLUMN_K_MASK (32u / EDGEC_WEIGHT_BITS - 1u)
#include "edgec_im2col.h"

#define EDGEC_ROW_STEP (32u / EDGEC_WEIGHT_BITS)

#if EDGEC_DSP

/* acc = {c0 p0, c0 p1, c1 p0, c1 p1} of the row pair at w (scaled sums shifted back per chunk). */
EDGEC_INLINE void pair_sums(const int8_t *w, const uint32_t *cols, uint32_t kp, int32_t acc[4])
{
    acc[0] = acc[1] = acc[2] = acc[3] = 0;
    for (uint32_t start = 0; start < kp; start += EDGEC_PACKED_CHUNK) {
        const uint32_t count = kp - start < EDGEC_PACKED_CHUNK ? kp - start : EDGEC_PACKED_CHUNK;
        int32_t part[4];
        edgec_packed_dot_2x2(w + start * EDGEC_WEIGHT_BITS / 4u, cols + start, count / EDGEC_ROW_STEP,
                             EDGEC_WEIGHT_BITS, part);
        for (int i = 0; i < 4; i++) {
            acc[i] += part[i] >> (16 - EDGEC_WEIGHT_BITS);
        }
    }
}

/* acc = {c0, c1} of the row pair at w for pixel 0 of the prepared columns. */
EDGEC_INLINE void lone_sums(const int8_t *w, const uint32_t *cols, uint32_t kp, int32_t acc[2])
{
    acc[0] = acc[1] = 0;
    for (uint32_t start = 0; start < kp; start += EDGEC_PACKED_CHUNK) {
        const uint32_t count = kp - start < EDGEC_PACKED_CHUNK ? kp - start : EDGEC_PACKED_CHUNK;
        int32_t part[2];
        edgec_packed_dot_1x2(w + start * EDGEC_WEIGHT_BITS / 4u, cols + start, count / EDGEC_ROW_STEP,
                             EDGEC_WEIGHT_BITS, part);
        acc[0] += part[0] >> (16 - EDGEC_WEIGHT_BITS);
        acc[1] += part[1] >> (16 - EDGEC_WEIGHT_BITS);
    }
}

#else

EDGEC_INLINE void pair_sums(const int8_t *w, const uint32_t *cols, uint32_t kp, int32_t acc[4])
{
    acc[0] = acc[1] = acc[2] = acc[3] = 0;
    for (uint32_t start = 0; start < kp; start += EDGEC_LANE_CHUNK) {
        const uint32_t count = kp - start < EDGEC_LANE_CHUNK ? kp - start : EDGEC_LANE_CHUNK;
        int64_t s0, s1;
        edgec_packed_dot_lanes(w + start * EDGEC_WEIGHT_BITS / 4u, (const int32_t *)cols + start,
                               count / EDGEC_ROW_STEP, EDGEC_WEIGHT_BITS, &s0, &s1);
        split(s0, &acc[0], &acc[1]);
        split(s1, &acc[2], &acc[3]);
    }
}

/* A lone pixel is prepared as a pair of itself: its sums are the pair's pixel-0 sums. */
EDGEC_INLINE void lone_sums(const int8_t *w, const uint32_t *cols, uint32_t kp, int32_t acc[2])
{
    int32_t both[4];
    pair_sums(w, cols, kp, both);
    acc[0] = both[0];
    acc[1] = both[2];
}

#endif

EDGEC_INLINE void packed_convolve(const edgec_conv_params *p, const edgec_outputs_t *o, const int8_t *input,
                                  int8_t *output, void *scratch, int single, int stage)
{
    const uint32_t pixels = (uint32_t)p->batches * p->out_h * p->out_w, kp = p->k_padded, out_c = p->out_c;
    const uint32_t pair_bytes = kp * EDGEC_WEIGHT_BITS / 4u;
    uint32_t *cols = (uint32_t *)scratch;
    int8_t *staging0 = (int8_t *)scratch + 4u * kp, *staging1 = staging0 + kp;
    uint32_t pixel = 0;
    for (; pixel + 1 < pixels; pixel += 2) {
        prepare(column(p, input, pixel, staging0), column(p, input, pixel + 1, staging1), kp, cols);
        int8_t *restrict out0 = output + (size_t)pixel * out_c, *restrict out1 = out0 + out_c;
        const int8_t *w = p->weights;
        for (uint32_t c = 0; c < out_c; c += 2, w += pair_bytes) {
            int32_t acc[4];
            pair_sums(w, cols, kp, acc);
            out0[c] = edgec_output_stage(o, acc[0], c, single, stage);
            out1[c] = edgec_output_stage(o, acc[1], c, single, stage);
            if (c + 1 < out_c) {
                out0[c + 1] = edgec_output_stage(o, acc[2], c + 1, single, stage);
                out1[c + 1] = edgec_output_stage(o, acc[3], c + 1, single, stage);
            }
        }
    }
    if (pixel < pixels) {
        const int8_t *col = column(p, input, pixel, staging0);
        prepare(col, col, kp, cols);
        int8_t *out = output + (size_t)pixel * out_c;
        const int8_t *w = p->weights;
        for (uint32_t c = 0; c < out_c; c += 2, w += pair_bytes) {
            int32_t acc[2];
            lone_sums(w, cols, kp, acc);
            out[c] = edgec_output_stage(o, acc[0], c, single, stage);
            if (c + 1 < out_c) {
                out[c + 1] = edgec_output_stage(o, acc[1], c + 1, single, stage);
            }
        }
    }
}

/* One instance of the kernel per output stage (a constant inside each). */
EDGEC_INLINE void packed_dispatch(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch,
                                  int single)
{
    const edgec_outputs_t o = {p->bias, p->requant, p->output_zero_point, p->activation_min, p->activation_max,
                               p->per_channel};
    switch (edgec_stage_of(&o, p->generic)) {
    case EDGEC_STAGE_FULL_RANGE:
        packed_convolve(p, &o, input, output, scratch, single, EDGEC_STAGE_FULL_RANGE);
        break;
    case EDGEC_STAGE_CLAMP:
        packed_convolve(p, &o, input, output, scratch, single, EDGEC_STAGE_CLAMP);
        break;
    default:
        packed_convolve(p, &o, input, output, scratch, single, EDGEC_STAGE_GENERIC);
        break;
    }
}

#endif /* EDGEC_CONV_PACKED_H */
