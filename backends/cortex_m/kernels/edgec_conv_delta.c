/* Conv and FullyConnected with delta-encoded weights: the sums and output stage of
 * edgec_conv.c, with each weight row rebuilt from its deltas (edgec_delta.h) into a row
 * buffer in scratch just before the dot products that read it.
 *
 * Output pixels go in tiles of up to TILE_PAIRS pairs: the tile's columns are gathered and
 * prepared once (as edgec_conv.c prepares a pair: offset pairs on DSP cores, x0 + x1 * 2^23
 * for SMLAL elsewhere), then every pair of rows is decoded once (and turned into the offset-pair
 * form on DSP cores) and dotted with every pixel pair of the tile (edgec_dot.h), so a row is
 * decoded once per 2 * TILE_PAIRS pixels. A lone pixel (a fully connected layer, the last of an
 * odd count) decodes four rows at a time and dots them with its column prepared alone.
 *
 * Scratch (delta_layers.conv_delta_scratch): 4 * k_padded bytes of prepared columns per pixel
 * pair of a tile (2 * k_padded for a single pixel on DSP cores, else none), then four decoded
 * rows of row_buffer bytes, then
 * the gathered columns of k_padded bytes (two, one for a single pixel; none when every column
 * is read in place, as in edgec_conv.c).
 */
#include "edgec_kernels.h"
#include "edgec_dot.h"
#define EDGEC_COLUMN_K_MASK 3u
#include "edgec_im2col.h"
#include "edgec_conv_sums.h"
#include "edgec_delta.h"

#define TILE_PAIRS 4u

/* Row c of the layer decoded into out in the form the sums read. */
EDGEC_INLINE void decoded_row(const edgec_conv_params *p, const edgec_delta_t *d, uint32_t c, int8_t *out)
{
    edgec_delta_row(d, p->weights, c, out, p->k_padded);
    offset_pair_row(out, p->k_padded);
}

/* Pixels pixel .. pixel + 2 * pairs - 1, their columns prepared in cols (kp words per pair) with
 * their corrections in corr (two per pair). */
EDGEC_INLINE void tile(const edgec_conv_params *p, const edgec_delta_t *d, const edgec_outputs_t *o,
                       const uint32_t *cols, const int32_t *corr, uint32_t pairs, int8_t *rows, int8_t *output,
                       int single, int stage)
{
    const uint32_t kp = p->k_padded, out_c = p->out_c, rb = d->row_buffer;
    for (uint32_t c = 0; c < out_c; c += 2) {
        const int second = c + 1 < out_c;
        decoded_row(p, d, c, rows);
        decoded_row(p, d, second ? c + 1 : c, rows + rb);
        for (uint32_t t = 0; t < pairs; t++) {
            int32_t acc[4];
            pair_sums(rows, rows + rb, cols + (size_t)t * kp, kp, corr + 2 * t, acc);
            int8_t *restrict out0 = output + (size_t)2 * t * out_c, *restrict out1 = out0 + out_c;
            edgec_output_2x2(o, acc, c, out0, out1, second, single, stage);
        }
    }
}

/* A lone pixel, its column prepared in cols: four rows at a time (zero rows past out_c, their
 * sums unused). */
EDGEC_INLINE void lone_pixel(const edgec_conv_params *p, const edgec_delta_t *d, const edgec_outputs_t *o,
                             const int8_t *raw, uint32_t *cols, int8_t *rows, int8_t *restrict out, int single,
                             int stage)
{
    const uint32_t kp = p->k_padded, out_c = p->out_c, rb = d->row_buffer;
    int32_t corr;
    const void *col = lone_column(raw, kp, cols, &corr);
    for (uint32_t c = 0; c < out_c; c += 4) {
        for (uint32_t i = 0; i < 4; i++) {
            if (c + i < out_c) {
                decoded_row(p, d, c + i, rows + (size_t)i * rb);
            } else {
                memset(rows + (size_t)i * rb, 0, kp);
            }
        }
        int32_t acc[4];
        lone_sums(rows, rb, col, kp, corr, acc);
        for (uint32_t i = 0; i < 4 && c + i < out_c; i++) {
            out[c + i] = edgec_output_stage(o, acc[i], c + i, single, stage);
        }
    }
}

EDGEC_INLINE void convolve(const edgec_conv_params *p, const edgec_delta_t *d, const edgec_outputs_t *o,
                           const int8_t *input, int8_t *output, void *scratch, int single, int stage)
{
    const uint32_t pixels = (uint32_t)p->batches * p->out_h * p->out_w, kp = p->k_padded;
    const uint32_t most = pixels / 2u < TILE_PAIRS ? pixels / 2u : TILE_PAIRS;
    uint32_t *cols = (uint32_t *)scratch;
    int32_t corr[2 * TILE_PAIRS];
#if EDGEC_DSP
    const size_t prepared_words = most ? (size_t)most * kp : kp / 2u; /* a lone column: 2 * kp bytes */
#else
    const size_t prepared_words = (size_t)most * kp;
#endif
    int8_t *rows = (int8_t *)(cols + prepared_words);
    int8_t *staging0 = rows + 4u * d->row_buffer, *staging1 = staging0 + kp;
    uint32_t pixel = 0;
    while (pixel + 1 < pixels) {
        const uint32_t pairs = (pixels - pixel) / 2u < most ? (pixels - pixel) / 2u : most;
        for (uint32_t t = 0; t < pairs; t++) {
            const uint32_t first = pixel + 2u * t;
            prepare_pair(column(p, input, first, staging0), column(p, input, first + 1, staging1), kp,
                         cols + (size_t)t * kp, corr + 2 * t);
        }
        tile(p, d, o, cols, corr, pairs, rows, output + (size_t)pixel * p->out_c, single, stage);
        pixel += 2u * pairs;
    }
    if (pixel < pixels) {
        lone_pixel(p, d, o, column(p, input, pixel, staging0), cols, rows, output + (size_t)pixel * p->out_c, single,
                   stage);
    }
}

/* One instance of the kernel per output stage (a constant inside each). */
EDGEC_INLINE void dispatch(const edgec_conv_params *p, const edgec_delta_t *d, const int8_t *input, int8_t *output,
                           void *scratch, int single)
{
    const edgec_outputs_t o = {p->bias, p->requant, p->output_zero_point, p->activation_min, p->activation_max,
                               p->per_channel};
    switch (edgec_stage_of(&o, p->generic)) {
    case EDGEC_STAGE_FULL_RANGE:
        convolve(p, d, &o, input, output, scratch, single, EDGEC_STAGE_FULL_RANGE);
        break;
    case EDGEC_STAGE_CLAMP:
        convolve(p, d, &o, input, output, scratch, single, EDGEC_STAGE_CLAMP);
        break;
    default:
        convolve(p, d, &o, input, output, scratch, single, EDGEC_STAGE_GENERIC);
        break;
    }
}

void edgec_conv_delta(const edgec_conv_params *p, const edgec_delta_t *d, const int8_t *input, int8_t *output,
                      void *scratch)
{
    dispatch(p, d, input, output, scratch, EDGEC_SINGLE_ROUNDING);
}

void edgec_fully_connected_delta(const edgec_conv_params *p, const edgec_delta_t *d, const int8_t *input,
                                 int8_t *output, void *scratch)
{
    dispatch(p, d, input, output, scratch, EDGEC_FC_SINGLE_ROUNDING);
}
