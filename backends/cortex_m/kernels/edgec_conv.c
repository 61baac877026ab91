/* Conv and FullyConnected: out[p][c] = requantize(bias[c] + sum_k col_p[k] * w[c][k]).
 *
 * Output pixels are taken two at a time. Their input columns (im2col, raw int8, padding taps
 * holding the input zero point) are turned once into the form the inner loop wants, then
 * every output channel is computed against them:
 *
 *  - DSP extension (M4, M7, M33): the offset-pair form of edgec_dot.h, two words per group of
 *    four k and pixel, against weights stored in that form, so one SMLAD does two MACs and one
 *    SXTB16 serves four weights (two pixels x two channels: 8 SMLAD per four k).
 *  - otherwise (M3, host): SIMD within a register. Both pixels' inputs share one int32,
 *    x0 + x1 * 2^23, and one SMLAL multiply-accumulates it with a weight into a 64-bit sum
 *    holding both pixels' sums 23 bits apart; a 23-bit lane holds 256 products exactly, so
 *    sums are split every 256 k. With four channels or more (`blocked`) the weights of each
 *    block of four channels are laid out [k][4] (the channels after the last block as plain
 *    rows), so that one pointer feeds four SMLAL per loaded input: 9 instructions per 8 MACs;
 *    per-channel layers with a full-range output and k_padded <= 256 run every block of a pixel
 *    pair in one assembly loop (edgec_block_channels.h).
 *
 *  - Helium (M55): the raw int8 columns as they are, sixteen MACs per VMLADAVA (edgec_mve.h),
 *    two pixels x four channels per pass, the output stage four channels a vector (the
 *    prepared area of the scratch goes unused).
 *
 * A lone pixel (a fully connected layer, the last pixel of an odd count) uses a one-column
 * loop over four channels at a time instead, on its column prepared alone (DSP cores) or its
 * raw int8 column (elsewhere, and on Helium). On DSP cores a layer with a single pixel, k a
 * multiple of 8 and out_c of 4 (`blocked`) has its weights laid out
 * [out_c / 4][k / 4][4 channels][4 k], so that one pointer walks a block's four rows, and
 * reads its raw column, preparing it as it goes (no scratch for it). On the others a layer with
 * a single pixel and out_c >= 4 (`blocked` EDGEC_BLOCKED_LANE_PAIRS) has lane-pair blocks, two
 * channels per SMLAL (edgec_dot_lanes.h).
 * Scratch: 4 * k_padded bytes for the prepared columns when there are two pixels or more
 * (2 * k_padded for an unblocked single pixel on DSP cores without Helium), then, when
 * windows must be gathered (not a 1x1 over a multiple of four channels whose every window lies
 * inside the input), k_padded bytes per column.
 */
#if defined(EDGEC_HOST) && defined(EDGEC_HELIUM_PROJECT)
/* A host build of a Helium project, which has no Helium to run: its plain rows (Helium's) are
 * read with the scalar forms. */
#define EDGEC_SCALAR_DOT 1
#endif
#include "edgec_kernels.h"
#include "edgec_dot.h"
#include "edgec_dot_lanes.h"
#define EDGEC_COLUMN_K_MASK 3u
#include "edgec_im2col.h"
#include "edgec_conv_sums.h"
#include "edgec_pair_channels.h"
#include "edgec_block_channels.h"
#include "edgec_mve.h"

#if !EDGEC_DSP_DOT
/* acc = {c0 p0, c0 p1, c1 p0, ..., c3 p1}: a block of four channels laid out [k][4] against a
 * prepared pixel pair, two-lane sums split every EDGEC_LANE_CHUNK k. */
EDGEC_INLINE void block_sums(const int8_t *w, const uint32_t *cols, uint32_t kp, int32_t acc[8])
{
    int64_t s[4];
    if (kp <= EDGEC_LANE_CHUNK) { /* one chunk: no running sums to keep */
        edgec_dot_packed_2x4(w, (const int32_t *)cols, kp, s);
        for (uint32_t i = 0; i < 4; i++) {
            split(s[i], &acc[2 * i], &acc[2 * i + 1]);
        }
        return;
    }
    for (uint32_t i = 0; i < 8; i++) {
        acc[i] = 0;
    }
    for (uint32_t start = 0; start < kp; start += EDGEC_LANE_CHUNK) {
        const uint32_t count = kp - start < EDGEC_LANE_CHUNK ? kp - start : EDGEC_LANE_CHUNK;
        edgec_dot_packed_2x4(w + 4u * start, (const int32_t *)cols + start, count, s);
        for (uint32_t i = 0; i < 4; i++) {
            split_add(s[i], &acc[2 * i], &acc[2 * i + 1]);
        }
    }
}
#endif

/* Every output channel of a pixel pair: on cores without DSP, blocks of four channels first
 * when the weights are blocked; then two channels at a time (pair_sums: SMLAD on DSP cores, the
 * two-lane SMLAL sums elsewhere). */
EDGEC_INLINE void pixel_pair(const edgec_conv_params *p, const edgec_outputs_t *o, const uint32_t *cols,
                             const int32_t corr[2], int8_t *restrict out0, int8_t *restrict out1, int single,
                             int stage)
{
    const uint32_t kp = p->k_padded, out_c = p->out_c;
    const int8_t *w = p->weights;
    int32_t acc[4];
    uint32_t c = 0;
#ifdef EDGEC_PAIR_CHANNELS
    if (stage == EDGEC_STAGE_FULL_RANGE && o->per_channel && out_c >= 2) {
        edgec_pair_job job = {o->bias, o->requant, out0, (uint32_t)(out1 - out0), out_c / 2u, cols,
                              (kp / 4u + 3u) / 4u, kp, corr[0], corr[1], (kp / 4u) & 3u};
        edgec_pair_channels(&job, w, single);
        c = out_c & ~1u;
        w += (size_t)c * kp;
    }
#endif
#ifdef EDGEC_BLOCK_CHANNELS
    if (p->blocked && stage == EDGEC_STAGE_FULL_RANGE && o->per_channel && kp <= EDGEC_LANE_CHUNK && out_c >= 4) {
        edgec_block_job job = {o->bias, o->requant, out0, (uint32_t)(out1 - out0), out_c / 4u, (const int32_t *)cols,
                               kp / 4u, {0}};
        edgec_block_channels(&job, w, single);
        c = out_c & ~3u;
        w += (size_t)c * kp;
    }
#endif
#if !EDGEC_DSP_DOT
    if (p->blocked) {
        for (; c + 4 <= out_c; c += 4, w += 4 * kp) {
            int32_t sums[8];
            block_sums(w, cols, kp, sums);
            edgec_output_2x2(o, sums, c, out0, out1, 1, single, stage);
            edgec_output_2x2(o, sums + 4, c + 2, out0, out1, 1, single, stage);
        }
    }
#endif
    for (; c + 1 < out_c; c += 2, w += 2 * kp) {
        pair_sums(w, w + kp, cols, kp, corr, acc);
        edgec_output_2x2(o, acc, c, out0, out1, 1, single, stage);
    }
    if (c < out_c) {
        pair_sums(w, w, cols, kp, corr, acc);
        edgec_output_2x2(o, acc, c, out0, out1, 0, single, stage);
    }
}

/* out[c..c+3] from the sums of channels c..c+3 of a lone pixel. */
EDGEC_INLINE void four_outputs(const edgec_outputs_t *o, const int32_t acc[4], int8_t *restrict out, uint32_t c,
                               int single, int stage)
{
#if EDGEC_MVE
    if (stage != EDGEC_STAGE_GENERIC && o->per_channel) {
        edgec_mve_output_4(o, vldrwq_s32(acc), c, 4, out, single);
        return;
    }
#endif
    if (!o->per_channel) { /* one set of constants, loaded once: every output before any store */
        const edgec_requant_t q = o->requant[0];
        const int8_t y0 = edgec_requantize(o, q, acc[0] + o->bias[c], single, stage);
        const int8_t y1 = edgec_requantize(o, q, acc[1] + o->bias[c + 1], single, stage);
        const int8_t y2 = edgec_requantize(o, q, acc[2] + o->bias[c + 2], single, stage);
        const int8_t y3 = edgec_requantize(o, q, acc[3] + o->bias[c + 3], single, stage);
        out[c] = y0;
        out[c + 1] = y1;
        out[c + 2] = y2;
        out[c + 3] = y3;
        return;
    }
    for (uint32_t i = 0; i < 4; i++) {
        out[c + i] = edgec_output_stage(o, acc[i], c + i, single, stage);
    }
}

/* Output channels c..c+3 of a lone pixel: its column col as lone_column leaves it (the raw
 * int8 column on Helium) with its correction corr. */
EDGEC_INLINE void four_channels(const edgec_conv_params *p, const edgec_outputs_t *o, const void *col, int32_t corr,
                                int8_t *restrict out, uint32_t c, int single, int stage)
{
    const uint32_t kp = p->k_padded;
    int32_t acc[4];
#if EDGEC_MVE
    (void)corr;
    edgec_mve_dot_1x4(p->weights + (size_t)c * kp, kp, (const int8_t *)col, kp, acc);
#else
    lone_sums(p->weights + (size_t)c * kp, kp, col, kp, corr, acc);
#endif
    four_outputs(o, acc, out, c, single, stage);
}

#if EDGEC_MVE
/* Every output channel of a pixel pair from their raw columns: four channels at a time with
 * the fast output stage four channels a vector (per-channel layers), then pairs and a last
 * single channel with the scalar one. */
EDGEC_INLINE void mve_pixel_pair(const edgec_conv_params *p, const edgec_outputs_t *o, const int8_t *col0,
                                 const int8_t *col1, int8_t *restrict out0, int8_t *restrict out1, int single,
                                 int stage)
{
    const uint32_t kp = p->k_padded, out_c = p->out_c;
    const int8_t *w = p->weights;
    int32_t acc[8];
    uint32_t c = 0;
    if (stage != EDGEC_STAGE_GENERIC && o->per_channel) {
        for (; c + 4 <= out_c; c += 4, w += 4 * kp) {
            edgec_mve_dot_2x4(w, kp, col0, col1, kp, acc);
            edgec_mve_output_4(o, vldrwq_s32(acc), c, 4, out0, single);
            edgec_mve_output_4(o, vldrwq_s32(acc + 4), c, 4, out1, single);
        }
    }
    for (; c + 1 < out_c; c += 2, w += 2 * kp) {
        edgec_mve_dot_2x2(w, w + kp, col0, col1, kp, acc);
        edgec_output_2x2(o, acc, c, out0, out1, 1, single, stage);
    }
    if (c < out_c) {
        edgec_mve_dot_2x2(w, w, col0, col1, kp, acc);
        edgec_output_2x2(o, acc, c, out0, out1, 0, single, stage);
    }
}
#endif

/* A lone pixel, four channels at a time, its column as lone_column leaves it (prepared into cols
 * on DSP cores; raw on Helium). With 1-3 channels left over and out_c >= 4, one more block at
 * out_c - 4 overlaps the last full one and rewrites identical values (out is only written),
 * unless the rows are blocked (the M3's: those channels follow as plain rows); with out_c < 4,
 * or after blocks, each channel left is a 4-row dot with stride 0. */
EDGEC_INLINE void single_pixel(const edgec_conv_params *p, const edgec_outputs_t *o, const int8_t *raw,
                               uint32_t *cols, int8_t *restrict out, int single, int stage)
{
    const uint32_t kp = p->k_padded, out_c = p->out_c;
    uint32_t c = 0;
#if EDGEC_DSP_DOT
    if (p->blocked) { /* the raw column, prepared as it is read */
        const int32_t first = edgec_pair_correction(raw, kp);
        for (; c < out_c; c += 4) {
            int32_t acc[4] = {first, first, first, first};
            edgec_dot_1x4_blocked(p->weights + (size_t)c * kp, raw, kp / 8u, acc);
            four_outputs(o, acc, out, c, single, stage);
        }
        return;
    }
#endif
#if EDGEC_MVE
    const void *col = raw;
    const int32_t corr = 0;
    (void)cols;
#else
    int32_t corr;
    const void *col = lone_column(raw, kp, cols, &corr);
#endif
#if !EDGEC_DSP_DOT
    if (p->blocked == EDGEC_BLOCKED_LANE_PAIRS) { /* two channels a multiply, then plain rows */
        const int32_t x_sum = edgec_column_sum((const int8_t *)col, kp);
        for (; c + 4 <= out_c; c += 4) {
            int32_t acc[4];
            edgec_lane_block_sums(p->weights + (size_t)c * kp, (const int8_t *)col, kp, x_sum, acc);
            four_outputs(o, acc, out, c, single, stage);
        }
    } else if (p->blocked) { /* the blocks of four channels, then plain rows */
        for (; c + 4 <= out_c; c += 4) {
            int32_t acc[4];
            edgec_dot_1x4_blocked_s8(p->weights + (size_t)c * kp, (const int8_t *)col, kp, acc);
            four_outputs(o, acc, out, c, single, stage);
        }
    }
#endif
    for (; c + 4 <= out_c; c += 4) {
        four_channels(p, o, col, corr, out, c, single, stage);
    }
    if (c < out_c && out_c >= 4 && !p->blocked) {
        four_channels(p, o, col, corr, out, out_c - 4, single, stage);
        return;
    }
    for (; c < out_c; c++) {
        int32_t acc[4];
#if EDGEC_MVE
        edgec_mve_dot_1x4(p->weights + (size_t)c * kp, 0, raw, kp, acc);
#else
        lone_sums(p->weights + (size_t)c * kp, 0, col, kp, corr, acc);
#endif
        out[c] = edgec_output_stage(o, acc[0], c, single, stage);
    }
}

EDGEC_INLINE void convolve(const edgec_conv_params *p, const edgec_outputs_t *o, const int8_t *input, int8_t *output,
                           void *scratch, int single, int stage)
{
    const uint32_t pixels = (uint32_t)p->batches * p->out_h * p->out_w;
    uint32_t *cols = (uint32_t *)scratch;
#if EDGEC_DSP_DOT && !EDGEC_MVE
    const uint32_t lone_bytes = 2u * p->k_padded;
#else
    const uint32_t lone_bytes = 0u;
#endif
    int8_t *staging0 = (int8_t *)scratch + (pixels > 1 ? 4u * p->k_padded : lone_bytes);
    int8_t *staging1 = staging0 + p->k_padded;
    uint32_t pixel = 0;
    for (; pixel + 1 < pixels; pixel += 2) {
        const int8_t *col0 = column(p, input, pixel, staging0);
        const int8_t *col1 = column(p, input, pixel + 1, staging1);
#if EDGEC_MVE
        (void)cols;
        mve_pixel_pair(p, o, col0, col1, output + (size_t)pixel * p->out_c, output + (size_t)(pixel + 1) * p->out_c,
                       single, stage);
#else
        int32_t corr[2];
        prepare_pair(col0, col1, p->k_padded, cols, corr);
        pixel_pair(p, o, cols, corr, output + (size_t)pixel * p->out_c, output + (size_t)(pixel + 1) * p->out_c, single,
                   stage);
#endif
    }
    if (pixel < pixels) {
        single_pixel(p, o, column(p, input, pixel, staging0), cols, output + (size_t)pixel * p->out_c, single,
                     stage);
    }
}

/* One instance of the kernel per output stage (a constant inside each). */
EDGEC_INLINE void dispatch(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch, int single)
{
    const edgec_outputs_t o = {p->bias, p->requant, p->output_zero_point, p->activation_min, p->activation_max,
                               p->per_channel};
    switch (edgec_stage_of(&o, p->generic)) {
    case EDGEC_STAGE_FULL_RANGE:
        convolve(p, &o, input, output, scratch, single, EDGEC_STAGE_FULL_RANGE);
        break;
    case EDGEC_STAGE_CLAMP:
        convolve(p, &o, input, output, scratch, single, EDGEC_STAGE_CLAMP);
        break;
    default:
        convolve(p, &o, input, output, scratch, single, EDGEC_STAGE_GENERIC);
        break;
    }
}

void edgec_conv(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch)
{
    dispatch(p, input, output, scratch, EDGEC_SINGLE_ROUNDING);
}

void edgec_fully_connected(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch)
{
    dispatch(p, input, output, scratch, EDGEC_FC_SINGLE_ROUNDING);
}
