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

/* The words of a row in one chunk of k (EDGEC_PACKED_CHUNK k on DSP cores, EDGEC_LANE_CHUNK otherwise). */
#if EDGEC_DSP
#define EDGEC_CHUNK_WORDS (EDGEC_PACKED_CHUNK / EDGEC_ROW_STEP)
#define EDGEC_SUM_SCALE (16 - EDGEC_WEIGHT_BITS)
#else
#define EDGEC_CHUNK_WORDS (EDGEC_LANE_CHUNK / EDGEC_ROW_STEP)
#endif

#if EDGEC_DSP

/* acc = {c0 p0, c0 p1, c1 p0, c1 p1} of the row pair at w: one dot per chunk, its scaled sums
 * shifted back (most rows are a single chunk: the loop is for longer ones). */
EDGEC_INLINE void pair_sums(const int8_t *w, const uint32_t *cols, uint32_t kp, int32_t acc[4])
{
    const uint32_t words = kp / EDGEC_ROW_STEP;
    uint32_t done = words < EDGEC_CHUNK_WORDS ? words : EDGEC_CHUNK_WORDS;
    int32_t part[4];
    edgec_packed_dot_2x2(w, cols, done, EDGEC_WEIGHT_BITS, part);
    int32_t s00 = part[0] >> EDGEC_SUM_SCALE, s01 = part[1] >> EDGEC_SUM_SCALE;
    int32_t s10 = part[2] >> EDGEC_SUM_SCALE, s11 = part[3] >> EDGEC_SUM_SCALE;
    while (done < words) {
        const uint32_t n = words - done < EDGEC_CHUNK_WORDS ? words - done : EDGEC_CHUNK_WORDS;
        edgec_packed_dot_2x2(w + 8u * done, cols + EDGEC_ROW_STEP * done, n, EDGEC_WEIGHT_BITS, part);
        s00 += part[0] >> EDGEC_SUM_SCALE;
        s01 += part[1] >> EDGEC_SUM_SCALE;
        s10 += part[2] >> EDGEC_SUM_SCALE;
        s11 += part[3] >> EDGEC_SUM_SCALE;
        done += n;
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}

/* acc = {c0, c1} of the row pair at w for pixel 0 of the prepared columns (chunks as pair_sums). */
EDGEC_INLINE void lone_sums(const int8_t *w, const uint32_t *cols, uint32_t kp, int32_t acc[2])
{
    const uint32_t words = kp / EDGEC_ROW_STEP;
    uint32_t done = words < EDGEC_CHUNK_WORDS ? words : EDGEC_CHUNK_WORDS;
    int32_t part[2];
    edgec_packed_dot_1x2(w, cols, done, EDGEC_WEIGHT_BITS, part);
    int32_t s0 = part[0] >> EDGEC_SUM_SCALE, s1 = part[1] >> EDGEC_SUM_SCALE;
    while (done < words) {
        const uint32_t n = words - done < EDGEC_CHUNK_WORDS ? words - done : EDGEC_CHUNK_WORDS;
        edgec_packed_dot_1x2(w + 8u * done, cols + EDGEC_ROW_STEP * done, n, EDGEC_WEIGHT_BITS, part);
        s0 += part[0] >> EDGEC_SUM_SCALE;
        s1 += part[1] >> EDGEC_SUM_SCALE;
        done += n;
    }
    acc[0] = s0;
    acc[1] = s1;
}

#else

/* acc = {c0 p0, c0 p1, c1 p0, c1 p1} of the row pair at w: the two-lane sums of each chunk, split. */
EDGEC_INLINE void pair_sums(const int8_t *w, const uint32_t *cols, uint32_t kp, int32_t acc[4])
{
    uint32_t words = kp / EDGEC_ROW_STEP;
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    for (;;) {
        const uint32_t n = words < EDGEC_CHUNK_WORDS ? words : EDGEC_CHUNK_WORDS;
        int64_t s0, s1;
        edgec_packed_dot_lanes(w, (const int32_t *)cols, n, EDGEC_WEIGHT_BITS, &s0, &s1);
        split_add(s0, &s00, &s01);
        split_add(s1, &s10, &s11);
        words -= n;
        if (words == 0) {
            break;
        }
        w += 8u * n;
        cols += EDGEC_ROW_STEP * n;
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
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
            edgec_output_2x2(o, acc, c, out0, out1, c + 1 < out_c, single, stage);
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
