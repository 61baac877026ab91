/* Every block of four output channels of a pixel pair in one Thumb-2 loop, on cores without the
 * DSP extension (the M3): the packed-pixel SMLAL dot product of edgec_dot_packed_2x4, the lane
 * split and the fast output stage with a full int8 range (edgec_arith.h), without returning to C
 * between blocks. Compiled C keeps the eight lane sums in memory between the dot product, the
 * split and the output stage; here they stay in registers (three of the four channels' sums wait
 * in the job block while the first is finished) and the loop's state waits in the job block.
 * Used by edgec_conv.c for the channel blocks of per-channel layers with a full-range output and
 * k_padded <= 256 (one lane chunk); the other layers take the C path, which computes the same
 * values.
 *
 * The split: the sums start at 2^22 + 2^45 instead of 0, so that the low 23 bits of a sum are
 * pixel 0's sum L + 2^22 (L lies in [-2^22, 2^22)) and the bits above are pixel 1's H + 2^22,
 * each read with a shift or a bit-field extract; B = 2 * bias - 2^23 then gives both doubled
 * accumulators of the fast stage with one add each: x2 = B + 2 (L + 2^22) = 2 (bias + L).
 */
#ifndef EDGEC_BLOCK_CHANNELS_H
#define EDGEC_BLOCK_CHANNELS_H

#include "edgec_arith.h"
#include "edgec_dot.h"

#if !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP) && defined(__arm__) && defined(__thumb2__)
#define EDGEC_BLOCK_CHANNELS 1

/* The loop's state, read and advanced by the assembly (field offsets are used there). */
typedef struct {
    const int32_t *bias;            /* 0: the next block's biases */
    const edgec_requant_t *requant; /* 4: their constants (per channel) */
    int8_t *out0;                   /* 8: their pixel-0 outputs */
    uint32_t out_stride;            /* 12: pixel 1's outputs are out0 + out_stride */
    uint32_t blocks;                /* 16: blocks left, >= 1 */
    const int32_t *cols;            /* 20: the packed columns (x0 + x1 * 2^23 per k) */
    uint32_t passes;                /* 24: k_padded / 4, 1..64 */
    uint32_t spill[6];              /* 28: the sums of channels 1-3 while channel 0 is finished */
} edgec_block_job;

/* One output from the doubled accumulator in register ACC: the high word of ACC * m + R * 2^32
 * (+ 2^31, then - [ACC < 0], for double rounding), >> right, saturated, stored by STORE. In the
 * output stage hi1 holds B, lo2 the multiplier, hi2 the right shift, lo3 the rounding term R;
 * SCRATCH is free, and hi3 takes the result. */
#define EDGEC_BLOCK_DOUBLE(ACC, SCRATCH, STORE)                   \
    "add %[" ACC "], %[hi1], %[" ACC "], lsl #1\n\t"              \
    "mov %[" SCRATCH "], #0x80000000\n\t"                         \
    "add %[hi3], %[lo3], %[" ACC "], asr #31\n\t"                 \
    "smlal %[" SCRATCH "], %[hi3], %[" ACC "], %[lo2]\n\t"        \
    "asr %[hi3], %[hi3], %[hi2]\n\t"                              \
    "ssat %[hi3], #8, %[hi3]\n\t"                                 \
    STORE
#define EDGEC_BLOCK_SINGLE(ACC, SCRATCH, STORE)                   \
    "add %[" ACC "], %[hi1], %[" ACC "], lsl #1\n\t"              \
    "smull %[" SCRATCH "], %[hi3], %[" ACC "], %[lo2]\n\t"        \
    "add %[hi3], %[hi3], %[lo3]\n\t"                              \
    "asr %[hi3], %[hi3], %[hi2]\n\t"                              \
    "ssat %[hi3], #8, %[hi3]\n\t"                                 \
    STORE

/* Both outputs of the channel whose sum is in LO:HI; x, xa walk the biases and constants, xb
 * the pixel-0 outputs, wv is the stride to pixel 1's. */
#define EDGEC_BLOCK_CHANNEL(OUTPUT, LO, HI)                                   \
    "ubfx %[lo1], %[" LO "], #0, #23\n\t"                                     \
    "lsr %[" LO "], %[" LO "], #23\n\t"                                       \
    "orr %[" HI "], %[" LO "], %[" HI "], lsl #9\n\t"                         \
    "ldr %[hi1], [%[x]], #4\n\t"                                              \
    "lsl %[hi1], %[hi1], #1\n\t"                                              \
    "sub %[hi1], %[hi1], #0x800000\n\t"                                       \
    "ldr %[lo2], [%[xa]], #4\n\t"                                             \
    "ldrd %[hi2], %[lo3], [%[xa]], #8\n\t"                                    \
    OUTPUT("lo1", LO, "strb %[hi3], [%[xb]]\n\t")                             \
    OUTPUT(HI, LO, "strb %[hi3], [%[xb], %[wv]]\n\t")                         \
    "add %[xb], %[xb], #1\n\t"

/* The loop; n holds the job's address on entry (kept on the stack while n counts passes). */
#define EDGEC_BLOCK_LOOP(OUTPUT)                                                                            \
    __asm__ volatile(                                                                                       \
        "push {%[n]}\n\t"                                                                                   \
        "2:\n\t"                                                                                            \
        "ldr %[x], [%[n], #20]\n\t"                                                                         \
        "ldr %[n], [%[n], #24]\n\t"                                                                         \
        "mov %[lo0], #0x400000\n\t"                                                                         \
        "mov %[hi0], #0x2000\n\t"                                                                           \
        "mov %[lo1], #0x400000\n\t"                                                                         \
        "mov %[hi1], #0x2000\n\t"                                                                           \
        "mov %[lo2], #0x400000\n\t"                                                                         \
        "mov %[hi2], #0x2000\n\t"                                                                           \
        "mov %[lo3], #0x400000\n\t"                                                                         \
        "mov %[hi3], #0x2000\n\t"                                                                           \
        EDGEC_PACKED_2X4_PASSES                                                                             \
        "ldr %[n], [sp]\n\t"                                                                                \
        "strd %[lo1], %[hi1], [%[n], #28]\n\t"                                                              \
        "strd %[lo2], %[hi2], [%[n], #36]\n\t"                                                              \
        "strd %[lo3], %[hi3], [%[n], #44]\n\t"                                                              \
        "ldrd %[x], %[xa], [%[n], #0]\n\t"                                                                  \
        "ldrd %[xb], %[wv], [%[n], #8]\n\t"                                                                 \
        EDGEC_BLOCK_CHANNEL(OUTPUT, "lo0", "hi0")                                                           \
        "ldrd %[lo0], %[hi0], [%[n], #28]\n\t"                                                              \
        EDGEC_BLOCK_CHANNEL(OUTPUT, "lo0", "hi0")                                                           \
        "ldrd %[lo0], %[hi0], [%[n], #36]\n\t"                                                              \
        EDGEC_BLOCK_CHANNEL(OUTPUT, "lo0", "hi0")                                                           \
        "ldrd %[lo0], %[hi0], [%[n], #44]\n\t"                                                              \
        EDGEC_BLOCK_CHANNEL(OUTPUT, "lo0", "hi0")                                                           \
        "strd %[x], %[xa], [%[n], #0]\n\t"                                                                  \
        "str %[xb], [%[n], #8]\n\t"                                                                         \
        "ldr %[lo0], [%[n], #16]\n\t"                                                                       \
        "subs %[lo0], %[lo0], #1\n\t"                                                                       \
        "str %[lo0], [%[n], #16]\n\t"                                                                       \
        "bne 2b\n\t"                                                                                        \
        "add sp, sp, #4\n\t"                                                                                \
        : [lo0] "=&r"(lo0), [hi0] "=&r"(hi0), [lo1] "=&r"(lo1), [hi1] "=&r"(hi1), [lo2] "=&r"(lo2),         \
          [hi2] "=&r"(hi2), [lo3] "=&r"(lo3), [hi3] "=&r"(hi3), [w] "+r"(w), [x] "=&r"(x), [n] "+r"(n),     \
          [xa] "=&r"(xa), [xb] "=&r"(xb), [wv] "=&r"(wv)                                                    \
        :                                                                                                   \
        : "cc", "memory")

/* Runs the job over the channel blocks from w (each [k][4], 4 * k_padded bytes). */
EDGEC_INLINE void edgec_block_channels(edgec_block_job *job, const int8_t *w, int single)
{
    uint32_t n = (uint32_t)job, lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3, x, xa, xb, wv;
    if (single) {
        EDGEC_BLOCK_LOOP(EDGEC_BLOCK_SINGLE);
    } else {
        EDGEC_BLOCK_LOOP(EDGEC_BLOCK_DOUBLE);
    }
    /* the registers' final values are of no use: */
    (void)lo0, (void)hi0, (void)lo1, (void)hi1, (void)lo2, (void)hi2, (void)lo3, (void)hi3, (void)x, (void)xa,
        (void)xb, (void)wv, (void)n, (void)w;
}

#endif

#endif /* EDGEC_BLOCK_CHANNELS_H */
