/* Every output channel pair of a pixel pair in one Thumb-2 loop (cores with the DSP extension):
 * the offset-pair SMLAD dot product of edgec_dot_2x2 and the fast output stage with a full int8
 * range (edgec_arith.h), without returning to C between channels. Compiled C keeps about fourteen
 * values live around the dot product and spills them; here the loop's state waits in a small
 * job block in memory while the dot product uses every register, and the output stage reloads
 * only what it needs. Used by edgec_conv.c for the channel pairs of per-channel layers with a
 * full-range output; an odd last channel and other layers take the C path, which computes the
 * same values.
 */
#ifndef EDGEC_PAIR_CHANNELS_H
#define EDGEC_PAIR_CHANNELS_H

#include "edgec_arith.h"
#include "edgec_dot.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define EDGEC_PAIR_CHANNELS 1

/* The loop's state, read and advanced by the assembly (field offsets are used there). */
typedef struct {
    const int32_t *bias;            /* 0: the next channel pair's biases */
    const edgec_requant_t *requant; /* 4: their constants (per channel) */
    int8_t *out0;                   /* 8: their pixel-0 outputs */
    uint32_t out_stride;            /* 12: pixel 1's outputs are out0 + out_stride */
    uint32_t pairs;                 /* 16: channel pairs left, >= 1 */
    const uint32_t *cols;           /* 20: the prepared columns */
    uint32_t passes;                /* 24: passes of edgec_dot.h's EDGEC_DOT_2X2_GROUPS, >= 1 */
    uint32_t row_bytes;             /* 28: k_padded */
    int32_t corr0;                  /* 32: pixel 0's column correction (edgec_dot.h) */
    int32_t corr1;                  /* 36: pixel 1's */
    uint32_t entry;                 /* 40: groups of four k, modulo 4 */
} edgec_pair_job;

/* One output from the accumulator in register ACC (with its bias): x2 = 2 * ACC, the high
 * word of x2 * m + k * 2^32 (+ 2^31: SMMLAR, double rounding, then - [x2 < 0]; SMMLA for single
 * rounding), >> r, saturated, stored by STORE. In the output stage x holds the result (t in
 * edgec_arith.h's terms) and x3, wa, wb the channel's multiplier, right shift and rounding. */
#define EDGEC_PAIR_DOUBLE(ACC, STORE)                             \
    "lsl %[" ACC "], %[" ACC "], #1\n\t"                          \
    "smmlar %[x], %[" ACC "], %[x3], %[wb]\n\t"                   \
    "add %[x], %[x], %[" ACC "], asr #31\n\t"                     \
    "asr %[x], %[x], %[wa]\n\t"                                   \
    "ssat %[x], #8, %[x]\n\t"                                     \
    STORE
#define EDGEC_PAIR_SINGLE(ACC, STORE)                             \
    "lsl %[" ACC "], %[" ACC "], #1\n\t"                          \
    "smmla %[x], %[" ACC "], %[x3], %[wb]\n\t"                    \
    "asr %[x], %[x], %[wa]\n\t"                                   \
    "ssat %[x], #8, %[x]\n\t"                                     \
    STORE

/* The loop; n holds the job's address on entry (kept on the stack while n counts passes). */
#define EDGEC_PAIR_LOOP(OUTPUT)                                                                             \
    __asm__ volatile(                                                                                       \
        "push {%[n]}\n\t"                                                                                   \
        "2:\n\t" /* the accumulators start at the pair's biases plus the pixels' corrections */           \
        "ldr %[x], [%[n], #0]\n\t"                                                                          \
        "ldrd %[a00], %[a10], [%[x]], #8\n\t"                                                               \
        "str %[x], [%[n], #0]\n\t"                                                                          \
        "ldrd %[x0], %[x1], [%[n], #32]\n\t"                                                                \
        "add %[a01], %[a00], %[x1]\n\t"                                                                     \
        "add %[a11], %[a10], %[x1]\n\t"                                                                     \
        "add %[a00], %[a00], %[x0]\n\t"                                                                     \
        "add %[a10], %[a10], %[x0]\n\t"                                                                     \
        "ldr %[x], [%[n], #20]\n\t"                                                                         \
        "ldr %[wa], [%[n], #40]\n\t"                                                                        \
        "ldr %[n], [%[n], #24]\n\t"                                                                         \
        EDGEC_DOT_2X2_GROUPS                                                                                \
        /* n = job, x0 = constants, x1 = out0, x2 = stride */                                               \
        "ldr %[n], [sp]\n\t"                                                                                \
        "ldr %[x0], [%[n], #4]\n\t"                                                                         \
        "ldr %[x1], [%[n], #8]\n\t"                                                                         \
        "ldr %[x2], [%[n], #12]\n\t"                                                                        \
        "ldr %[x3], [%[x0]], #4\n\t"                                                                     \
        "ldrd %[wa], %[wb], [%[x0]], #8\n\t"                                                             \
        OUTPUT("a00", "strb %[x], [%[x1]]\n\t")                                                             \
        OUTPUT("a01", "strb %[x], [%[x1], %[x2]]\n\t")                                                      \
        "add %[x1], %[x1], #1\n\t"                                                                          \
        "ldr %[x3], [%[x0]], #4\n\t"                                                                     \
        "ldrd %[wa], %[wb], [%[x0]], #8\n\t"                                                             \
        OUTPUT("a10", "strb %[x], [%[x1]]\n\t")                                                             \
        OUTPUT("a11", "strb %[x], [%[x1], %[x2]]\n\t")                                                      \
        "add %[x1], %[x1], #1\n\t"                                                                          \
        "str %[x0], [%[n], #4]\n\t"                                                                         \
        "str %[x1], [%[n], #8]\n\t"                                                                         \
        "ldr %[x], [%[n], #16]\n\t"                                                                         \
        "subs %[x], %[x], #1\n\t"                                                                           \
        "str %[x], [%[n], #16]\n\t"                                                                         \
        "beq 3f\n\t"                                                                                        \
        "ldr %[x], [%[n], #28]\n\t"                                                                         \
        "mov %[w0], %[w1]\n\t"                                                                              \
        "add %[w1], %[w1], %[x]\n\t"                                                                        \
        "b 2b\n\t"                                                                                          \
        "3:\n\t"                                                                                            \
        "add sp, sp, #4\n\t"                                                                                \
        : [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11), [w0] "+r"(w0),            \
          [w1] "+r"(w1), [x] "=&r"(x), [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2),         \
          [x3] "=&r"(x3), [wa] "=&r"(wa), [wb] "=&r"(wb)                                                    \
        :                                                                                                   \
        : "cc", "memory")

/* Runs the job over the weight rows from w (row pairs of job->row_bytes each). */
EDGEC_INLINE void edgec_pair_channels(edgec_pair_job *job, const int8_t *w, int single)
{
    const int8_t *w0 = w, *w1 = w + job->row_bytes;
    uint32_t n = (uint32_t)job, x, x0, x1, x2, x3, wa, wb;
    int32_t a00, a01, a10, a11;
    if (single) {
        EDGEC_PAIR_LOOP(EDGEC_PAIR_SINGLE);
    } else {
        EDGEC_PAIR_LOOP(EDGEC_PAIR_DOUBLE);
    }
    /* the registers' final values are of no use: */
    (void)a00, (void)a01, (void)a10, (void)a11, (void)x, (void)x0, (void)x1, (void)x2, (void)x3, (void)wa,
        (void)wb, (void)n, (void)w0, (void)w1;
}

#endif

#endif /* EDGEC_PAIR_CHANNELS_H */
