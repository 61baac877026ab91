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
#include "edgec_depthwise_pairs.h"
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

#ifdef EDGEC_DEPTHWISE_PAIRS
/* The staged chunk of a group of channels (edgec_depthwise_pairs.h): input rows iy0.. (three)
 * by `cols` columns from ix0, laid out [column][row][16 bytes], the `words` words (four channels
 * each) of the group from channel c per input pixel, `zero` (the zero point in every byte)
 * outside the input. */
EDGEC_INLINE void stage_chunk(const edgec_depthwise_params *p, const int8_t *image, int iy0, int ix0, int cols,
                              uint32_t c, uint32_t words, uint32_t zero, uint32_t *chunk)
{
    const size_t in_c = p->in_c;
    const int k_first = ix0 < 0 ? -ix0 : 0, k_end = ix0 + cols > p->in_w ? p->in_w - ix0 : cols;
    for (int r = 0; r < 3; r++) {
        const int iy = iy0 + r;
        uint32_t *to = chunk + 4 * r;
        int k = 0;
        if (iy >= 0 && iy < p->in_h) {
            for (; k < k_first; k++, to += 12) {
                to[0] = to[1] = to[2] = to[3] = zero;
            }
            const int8_t *from = image + ((size_t)iy * p->in_w + (size_t)(ix0 + k)) * in_c + c;
            for (; k < k_end; k++, to += 12, from += in_c) {
                if (words == 4) {
                    memcpy(to, from, 16);
                } else {
                    for (uint32_t i = 0; i < words; i++) {
                        to[i] = edgec_load32(from + 4 * i);
                    }
                }
            }
        }
        for (; k < cols; k++, to += 12) {
            to[0] = to[1] = to[2] = to[3] = zero;
        }
    }
}

/* The channels from `first` on (fewer than four, weights [taps][rest]) of the chunk's `pixels`
 * pixels from (iy0, ix0) in C, into out ([pixel][rest]). */
static void rest_of_chunk(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *image, int iy0,
                          int ix0, int pixels, uint32_t first, int8_t *out)
{
    const uint32_t rest = p->out_c - first;
    const int8_t *w = p->weights + (size_t)first * 9u;
    for (int q = 0; q < pixels; q++) {
        for (uint32_t j = 0; j < rest; j++) {
            int32_t acc = o->bias[first + j];
            for (int t = 0; t < 9; t++) {
                const int iy = iy0 + t / 3, ix = ix0 + q * p->stride_w + t % 3;
                const int32_t x = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w
                                      ? image[((size_t)iy * p->in_w + (size_t)ix) * p->in_c + first + j]
                                      : p->input_zero_point;
                acc += x * w[(size_t)t * rest + j];
            }
            out[(uint32_t)q * rest + j] =
                edgec_output_stage_biased(o, acc, first + j, EDGEC_SINGLE_ROUNDING, EDGEC_STAGE_FULL_RANGE);
        }
    }
}

/* The pairs walk (edgec_depthwise_pairs.h): the blocks' B terms into scratch after the staged
 * chunk; per output row, per chunk of p->chunk pixels, every group of sixteen channels staged in
 * scratch and the channels after the last block computed, then each block of four of each pixel
 * pair in assembly. A chunk reads all its inputs before writing any output, so the output's lag
 * is a single pixel walk's (backends/cortex_m/overlap.py's depthwise_memory). */
static void depthwise_pairs(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *input,
                            int8_t *output, uint32_t *stage)
{
    const int stride = p->stride_w, chunk = p->chunk;
    const uint32_t out_c = p->out_c, blocked = out_c & ~3u, rest = out_c - blocked;
    const uint32_t zero = (uint32_t)(uint8_t)p->input_zero_point * 0x01010101u;
    int8_t dummy[16], rest_out[EDGEC_DWP_CHUNK * 3];
    uint32_t *const b_terms = stage + 12u * (uint32_t)((chunk - 1) * stride + 3) * ((blocked + 15) / 16);
    for (uint32_t c = 0; c < blocked; c++) {
        b_terms[c] = 2u * (uint32_t)o->bias[c] - 0x800000u;
    }
    for (uint32_t b = 0; b < p->batches; b++) {
        const int8_t *image = input + (size_t)b * p->in_h * p->in_w * p->in_c;
        for (int oy = 0; oy < p->out_h; oy++) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            int8_t *row = output + ((size_t)b * p->out_h + (size_t)oy) * p->out_w * out_c;
            for (int ox0 = 0; ox0 < p->out_w; ox0 += chunk) {
                const int pixels = p->out_w - ox0 < chunk ? p->out_w - ox0 : chunk;
                const int ix0 = ox0 * stride - p->pad_left, cols = ((pixels + 1) / 2 * 2 - 1) * stride + 3;
                uint32_t *group = stage;
                for (uint32_t g = 0; g < blocked; g += 16, group += 12 * cols) {
                    const uint32_t words = blocked - g < 16 ? (blocked - g) / 4 : 4;
                    if (words == 4) { /* the common case, with its copies unrolled */
                        stage_chunk(p, image, iy0, ix0, cols, g, 4, zero, group);
                    } else {
                        stage_chunk(p, image, iy0, ix0, cols, g, words, zero, group);
                    }
                }
                if (rest) {
                    rest_of_chunk(p, o, image, iy0, ix0, pixels, blocked, rest_out);
                }
                group = stage;
                for (uint32_t g = 0; g < blocked; g += 16, group += 12 * cols) {
                    const uint32_t words = blocked - g < 16 ? (blocked - g) / 4 : 4;
                    for (int q = 0; q < pixels; q += 2) {
                        int8_t *out = row + (size_t)(ox0 + q) * out_c + g;
                        edgec_depthwise_pair_blocks((const int8_t *)group + 48 * q * stride, p->weights + (size_t)g * 9u,
                                                    o->requant + g, b_terms + g, out, q + 1 < pixels ? out + out_c : dummy,
                                                    words, stride);
                    }
                }
                for (int q = 0; rest && q < pixels; q++) {
                    memcpy(row + (size_t)(ox0 + q) * out_c + blocked, rest_out + (uint32_t)q * rest, rest);
                }
            }
        }
    }
}
#endif

#if EDGEC_DSP
/* Row iy of the input (columns from x_first, width of them) for the four channels from c, as
 * int16 lane pairs per pixel: SXTB16 of the four bytes ([x0,x2]) and of them rotated by 8
 * ([x1,x3]); outside the input both words hold the zero point in each lane. */
static void widen_row(const edgec_depthwise_params *p, const int8_t *image, int iy, uint32_t c, int x_first,
                      uint32_t width, uint32_t *row)
{
    const uint32_t zero = (uint32_t)(uint16_t)(int16_t)p->input_zero_point * 0x10001u;
    uint32_t *const end = row + 2 * width;
    if (iy >= 0 && iy < p->in_h) {
        const int first = x_first < 0 ? 0 : x_first, last = x_first + (int)width < p->in_w ? x_first + (int)width
                                                                                             : p->in_w;
        for (int ix = x_first; ix < first; ix++, row += 2) {
            row[0] = row[1] = zero;
        }
        const int8_t *x = image + ((size_t)iy * p->in_w + (size_t)first) * p->in_c + c;
        for (int ix = first; ix < last; ix++, row += 2, x += p->in_c) {
            const uint32_t four = edgec_load32(x);
            row[0] = edgec_sxtb16(four);
            row[1] = edgec_sxtb16_ror8(four);
        }
    }
    for (; row < end; row++) {
        *row = zero;
    }
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* One tap: the widened inputs at [r, off] against the block weights at [w], post-incremented. */
#define EDGEC_WIDE_TAP(r, off)                             \
    "ldrd %[x02], %[x13], [%[" r "], #" off "]\n\t"        \
    "ldrd %[w02], %[w13], [%[w]], #8\n\t"                 \
    "smlabb %[a0], %[x02], %[w02], %[a0]\n\t"             \
    "smlatt %[a2], %[x02], %[w02], %[a2]\n\t"             \
    "smlabb %[a1], %[x13], %[w13], %[a1]\n\t"             \
    "smlatt %[a3], %[x13], %[w13], %[a3]\n\t"

/* The nine taps of four channels from three widened rows (each at the window's first
 * column): 6 instructions a tap, the inputs widened once per row instead of once per tap. */
EDGEC_INLINE void wide_3x3(const uint32_t *r0, const uint32_t *r1, const uint32_t *r2, const int8_t *w, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    uint32_t x02, x13, w02, w13;
    __asm__ volatile(
        EDGEC_WIDE_TAP("r0", "0") EDGEC_WIDE_TAP("r0", "8") EDGEC_WIDE_TAP("r0", "16")
        EDGEC_WIDE_TAP("r1", "0") EDGEC_WIDE_TAP("r1", "8") EDGEC_WIDE_TAP("r1", "16")
        EDGEC_WIDE_TAP("r2", "0") EDGEC_WIDE_TAP("r2", "8") EDGEC_WIDE_TAP("r2", "16")
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [x02] "=&r"(x02), [x13] "=&r"(x13),
          [w02] "=&r"(w02), [w13] "=&r"(w13)
        : [r0] "r"(r0), [r1] "r"(r1), [r2] "r"(r2)
        : "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#undef EDGEC_WIDE_TAP
#else
/* The same in C (the host's emulated DSP build). */
EDGEC_INLINE void wide_3x3(const uint32_t *r0, const uint32_t *r1, const uint32_t *r2, const int8_t *w, int32_t acc[4])
{
    const uint32_t *rows[3] = {r0, r1, r2};
    for (int ky = 0; ky < 3; ky++) {
        for (int kx = 0; kx < 3; kx++, w += BLOCK_WEIGHT_BYTES) {
            const uint32_t x02 = rows[ky][2 * kx], x13 = rows[ky][2 * kx + 1];
            const uint32_t w02 = edgec_load32(w), w13 = edgec_load32(w + 4);
            acc[0] = edgec_smlabb(x02, w02, acc[0]);
            acc[2] = edgec_smlatt(x02, w02, acc[2]);
            acc[1] = edgec_smlabb(x13, w13, acc[1]);
            acc[3] = edgec_smlatt(x13, w13, acc[3]);
        }
    }
}
#endif

/* The rows walk (`rows`: 3x3 windows, dilation 1, depth multiplier 1, channels in fours, one
 * batch, DSP weight blocks): per block of four channels, output rows top to bottom, each
 * reading three input rows widened into a ring of three in scratch (a row is widened once per
 * block, when it first enters the ring; padding rows and columns hold the zero point). A
 * block reads its input bytes only while widening, so the output may overlap the input as
 * backends/cortex_m/overlap.py's rows_lag says: in place for a stride-1 SAME layer. */
EDGEC_INLINE void depthwise_rows(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *input,
                                 int8_t *output, uint32_t *ring, int stage)
{
    const uint32_t width = (uint32_t)(p->out_w - 1) * p->stride_w + 3, out_c = p->out_c;
    const int x_first = -(int)p->pad_left;
    const int8_t *w = p->weights;
    for (uint32_t c = 0; c < out_c; c += 4, w += 9 * BLOCK_WEIGHT_BYTES) {
        int held[3] = {INT32_MIN, INT32_MIN, INT32_MIN};
        for (int oy = 0; oy < p->out_h; oy++) {
            const uint32_t *rows[3];
            for (int k = 0; k < 3; k++) {
                const int iy = oy * p->stride_h - p->pad_top + k;
                const uint32_t slot = (uint32_t)(iy + 3 * p->pad_top + 3) % 3u;
                uint32_t *row = ring + slot * 2 * width;
                if (held[slot] != iy) {
                    widen_row(p, input, iy, c, x_first, width, row);
                    held[slot] = iy;
                }
                rows[k] = row;
            }
            int8_t *out = output + (size_t)oy * p->out_w * out_c + c;
            const uint32_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
            const uint32_t step = 2u * p->stride_w;
            for (uint32_t ox = 0; ox < p->out_w; ox++, out += out_c, r0 += step, r1 += step, r2 += step) {
                int32_t acc[4] = {o->bias[c], o->bias[c + 1], o->bias[c + 2], o->bias[c + 3]};
                wide_3x3(r0, r1, r2, w, acc);
                out[0] = FINISH_BIASED(o, acc[0], c);
                out[1] = FINISH_BIASED(o, acc[1], c + 1);
                out[2] = FINISH_BIASED(o, acc[2], c + 2);
                out[3] = FINISH_BIASED(o, acc[3], c + 3);
            }
        }
    }
}

/* The rows walk, one instance per output stage. */
static void rows_dispatch(const edgec_depthwise_params *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const edgec_outputs_t o = {p->bias, p->requant, p->output_zero_point, p->activation_min, p->activation_max, 1};
    uint32_t *ring = (uint32_t *)(void *)scratch;
    switch (edgec_stage_of(&o, p->generic)) {
    case EDGEC_STAGE_FULL_RANGE:
        depthwise_rows(p, &o, input, output, ring, EDGEC_STAGE_FULL_RANGE);
        break;
    case EDGEC_STAGE_CLAMP:
        depthwise_rows(p, &o, input, output, ring, EDGEC_STAGE_CLAMP);
        break;
    default:
        depthwise_rows(p, &o, input, output, ring, EDGEC_STAGE_GENERIC);
        break;
    }
}
#endif

void edgec_depthwise_conv(const edgec_depthwise_params *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
#ifdef EDGEC_DEPTHWISE_PAIRS
    const edgec_outputs_t o = {p->bias, p->requant, p->output_zero_point, p->activation_min, p->activation_max, 1};
    if (p->chunk && edgec_stage_of(&o, p->generic) == EDGEC_STAGE_FULL_RANGE) {
        depthwise_pairs(p, &o, input, output, (uint32_t *)(void *)scratch);
        return;
    }
#endif
#if EDGEC_DSP
    if (p->rows) {
        rows_dispatch(p, input, output, scratch);
        return;
    }
#endif
    depthwise_dispatch(p, input, output, scratch);
}
