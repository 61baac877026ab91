/* 3x3 DepthwiseConv on cores without the DSP extension (the M3): two output pixels of a row per
 * SMLAL, four channels at a time in Thumb-2.
 *
 * The walk goes output row by row, chunk of up to EDGEC_DWP_CHUNK pixels (the layer's `chunk`)
 * by chunk along the row. For a chunk, the three input rows under it are copied into scratch,
 * per group of sixteen channels laid out [column][row][16 bytes] (the group's channels), the zero
 * point outside the input (biases are folded over all taps, so padding taps must read it). The
 * assembly then reads every input and weight of a block of four channels of a pixel pair
 * (ox, ox + 1) at an immediate offset from the pair's first column: per channel and tap the two
 * pixels' inputs packed as x0 + x1 * 2^23 multiply one weight, as edgec_block_channels.h's sums
 * do, and the same lane split and fast output stage finish both pixels. It walks the blocks of a
 * group in one loop. A lone last pixel of a row runs as a pair whose second outputs go to a
 * dummy.
 *
 * Used by edgec_depthwise.c for layers with a 3x3 window, dilation 1, depth multiplier 1,
 * stride_w 1 or 2 (backends/cortex_m/overlap.py's depthwise_pairs and pairs_chunk) and a
 * full-range output; the channels after the last block of four are computed in C.
 */
#ifndef EDGEC_DEPTHWISE_PAIRS_H
#define EDGEC_DEPTHWISE_PAIRS_H

#include "edgec_kernels.h"

#if !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP) && defined(__arm__) && defined(__thumb2__)
#define EDGEC_DEPTHWISE_PAIRS 1

#define EDGEC_STR(x) #x
#define EDGEC_XSTR(x) EDGEC_STR(x)

/* One row R of channel I: the inputs of the pair's columns (4 at stride 1, 5 at stride 2) in
 * the staged chunk, packed in pairs P_kx = x(kx) + x(kx + stride) * 2^23, each multiplied by its
 * tap's weight. */
#define EDGEC_DWP_ROW_1(I, R)                                                                \
    "ldrsb %[a], [%[s], #" EDGEC_XSTR((0 * 3 + R) * 16 + I) "]\n\t"                           \
    "ldrsb %[b], [%[s], #" EDGEC_XSTR((1 * 3 + R) * 16 + I) "]\n\t"                           \
    "ldrsb %[c], [%[s], #" EDGEC_XSTR((2 * 3 + R) * 16 + I) "]\n\t"                           \
    "ldrsb %[d], [%[s], #" EDGEC_XSTR((3 * 3 + R) * 16 + I) "]\n\t"                           \
    "add %[a], %[a], %[b], lsl #23\n\t"                                                      \
    "add %[b], %[b], %[c], lsl #23\n\t"                                                      \
    "add %[c], %[c], %[d], lsl #23\n\t"                                                      \
    EDGEC_DWP_TAPS(I, R)
#define EDGEC_DWP_ROW_2(I, R)                                                                \
    "ldrsb %[a], [%[s], #" EDGEC_XSTR((0 * 3 + R) * 16 + I) "]\n\t"                           \
    "ldrsb %[b], [%[s], #" EDGEC_XSTR((1 * 3 + R) * 16 + I) "]\n\t"                           \
    "ldrsb %[c], [%[s], #" EDGEC_XSTR((2 * 3 + R) * 16 + I) "]\n\t"                           \
    "ldrsb %[d], [%[s], #" EDGEC_XSTR((3 * 3 + R) * 16 + I) "]\n\t"                           \
    "ldrsb %[e], [%[s], #" EDGEC_XSTR((4 * 3 + R) * 16 + I) "]\n\t"                           \
    "add %[a], %[a], %[c], lsl #23\n\t"                                                      \
    "add %[b], %[b], %[d], lsl #23\n\t"                                                      \
    "add %[c], %[c], %[e], lsl #23\n\t"                                                      \
    EDGEC_DWP_TAPS(I, R)
#define EDGEC_DWP_TAPS(I, R)                                                                 \
    "ldrsb %[wv], [%[w], #" EDGEC_XSTR((R * 3 + 0) * 4 + I) "]\n\t"                          \
    "smlal %[lo], %[hi], %[a], %[wv]\n\t"                                                    \
    "ldrsb %[wv], [%[w], #" EDGEC_XSTR((R * 3 + 1) * 4 + I) "]\n\t"                          \
    "smlal %[lo], %[hi], %[b], %[wv]\n\t"                                                    \
    "ldrsb %[wv], [%[w], #" EDGEC_XSTR((R * 3 + 2) * 4 + I) "]\n\t"                          \
    "smlal %[lo], %[hi], %[c], %[wv]\n\t"

/* One output from the doubled accumulator ACC (see edgec_block_channels.h): b holds the
 * multiplier, c the right shift, d the rounding term, wv B = 2 * bias - 2^23; lo is scratch
 * and e takes the result. */
#define EDGEC_DWP_DOUBLE(ACC, STORE)                                                          \
    "add %[" ACC "], %[wv], %[" ACC "], lsl #1\n\t"                                           \
    "mov %[lo], #0x80000000\n\t"                                                              \
    "add %[e], %[d], %[" ACC "], asr #31\n\t"                                                 \
    "smlal %[lo], %[e], %[" ACC "], %[b]\n\t"                                                 \
    "asr %[e], %[e], %[c]\n\t"                                                                \
    "ssat %[e], #8, %[e]\n\t"                                                                 \
    STORE
#define EDGEC_DWP_SINGLE(ACC, STORE)                                                          \
    "add %[" ACC "], %[wv], %[" ACC "], lsl #1\n\t"                                           \
    "smull %[lo], %[e], %[" ACC "], %[b]\n\t"                                                 \
    "add %[e], %[e], %[d]\n\t"                                                                \
    "asr %[e], %[e], %[c]\n\t"                                                                \
    "ssat %[e], #8, %[e]\n\t"                                                                 \
    STORE

/* Channel I of the block: nine taps for both pixels, the split of the sum (started at
 * 2^22 + 2^45), the channel's constants (from rq, and B = 2 * bias - 2^23 from bt), both
 * outputs: pixel 0's to o, pixel 1's to o1. */
#define EDGEC_DWP_CHANNEL(ROW, OUTPUT, I)                                                     \
    "mov %[lo], #0x400000\n\t"                                                                \
    "mov %[hi], #0x2000\n\t"                                                                  \
    ROW(I, 0) ROW(I, 1) ROW(I, 2)                                                             \
    "ubfx %[a], %[lo], #0, #23\n\t"                                                           \
    "lsr %[lo], %[lo], #23\n\t"                                                               \
    "orr %[hi], %[lo], %[hi], lsl #9\n\t"                                                     \
    "ldr %[b], [%[rq], #" EDGEC_XSTR(12 * I) "]\n\t"                                          \
    "ldrd %[c], %[d], [%[rq], #" EDGEC_XSTR(12 * I + 4) "]\n\t"                               \
    "ldr %[wv], [%[bt], #" EDGEC_XSTR(4 * I) "]\n\t"                                          \
    OUTPUT("a", "strb %[e], [%[o], #" EDGEC_XSTR(I) "]\n\t")                                  \
    OUTPUT("hi", "strb %[e], [%[o1], #" EDGEC_XSTR(I) "]\n\t")

/* Every block of a group for one pixel pair: on entry e holds the blocks (kept on the stack while
 * e serves the output stage); s, w, rq, bt, o and o1 move to the next block after each. */
#define EDGEC_DWP_BLOCKS(ROW, OUTPUT)                                                         \
    __asm__ volatile(                                                                         \
        "push {%[e]}\n\t"                                                                     \
        "1:\n\t"                                                                              \
        EDGEC_DWP_CHANNEL(ROW, OUTPUT, 0) EDGEC_DWP_CHANNEL(ROW, OUTPUT, 1)                   \
        EDGEC_DWP_CHANNEL(ROW, OUTPUT, 2) EDGEC_DWP_CHANNEL(ROW, OUTPUT, 3)                   \
        "add %[s], %[s], #4\n\t"                                                              \
        "add %[w], %[w], #36\n\t"                                                             \
        "add %[rq], %[rq], #48\n\t"                                                           \
        "add %[bt], %[bt], #16\n\t"                                                           \
        "add %[o], %[o], #4\n\t"                                                              \
        "add %[o1], %[o1], #4\n\t"                                                            \
        "ldr %[lo], [sp]\n\t"                                                                 \
        "subs %[lo], %[lo], #1\n\t"                                                           \
        "str %[lo], [sp]\n\t"                                                                 \
        "bne 1b\n\t"                                                                          \
        "add sp, sp, #4\n\t"                                                                  \
        : [o] "+r"(o), [o1] "+r"(o1), [s] "+r"(s), [w] "+r"(w), [rq] "+r"(rq), [bt] "+r"(bt), [e] "+r"(e), \
          [lo] "=&r"(lo), [hi] "=&r"(hi), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d), \
          [wv] "=&r"(wv)                                                                      \
        :                                                                                     \
        : "cc", "memory")

/* Pixels a staged chunk covers at most (pairs of them). */
#define EDGEC_DWP_CHUNK 8

/* `blocks` (1 to 4) blocks of four channels of a pixel pair: s at the first block's first
 * channel of the pair's first column in the staged chunk, the blocks' weights w ([tap][4] each),
 * requantization constants rq and B terms bt (2 * bias - 2^23 a channel); pixel 0's outputs to
 * o, pixel 1's to o1. */
EDGEC_INLINE void edgec_depthwise_pair_blocks(const int8_t *s, const int8_t *w, const edgec_requant_t *rq,
                                              const uint32_t *bt, int8_t *o, int8_t *o1, uint32_t blocks, int stride)
{
    uint32_t lo, hi, a, b, c, d, e = blocks, wv;
    if (stride == 1 && EDGEC_SINGLE_ROUNDING) {
        EDGEC_DWP_BLOCKS(EDGEC_DWP_ROW_1, EDGEC_DWP_SINGLE);
    } else if (stride == 1) {
        EDGEC_DWP_BLOCKS(EDGEC_DWP_ROW_1, EDGEC_DWP_DOUBLE);
    } else if (EDGEC_SINGLE_ROUNDING) {
        EDGEC_DWP_BLOCKS(EDGEC_DWP_ROW_2, EDGEC_DWP_SINGLE);
    } else {
        EDGEC_DWP_BLOCKS(EDGEC_DWP_ROW_2, EDGEC_DWP_DOUBLE);
    }
    (void)lo, (void)hi, (void)a, (void)b, (void)c, (void)d, (void)e, (void)wv, (void)o, (void)s, (void)w, (void)rq,
        (void)bt, (void)o1;
}

#endif

#endif /* EDGEC_DEPTHWISE_PAIRS_H */
