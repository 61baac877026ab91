/* Four channels of a DepthwiseConv pixel at a time, shared by edgec_depthwise.c and
 * edgec_depthwise_delta.c: the block weight layout and its sums.
 *
 * Block layout (per block of four channels, per tap): the four weights as two words of int16
 * lane pairs [w0,w2] [w1,w3] on DSP cores (ready for SMLABB/SMLATT against SXTB16 of the
 * inputs), or four int8 elsewhere; BLOCK_WEIGHT_BYTES per tap. FINISH(o, acc, c) is the
 * output stage, for the `stage` in scope where it is used.
 */
#ifndef EDGEC_DEPTHWISE_BLOCK_H
#define EDGEC_DEPTHWISE_BLOCK_H

#include "edgec_kernels.h"

#if EDGEC_DSP
#define BLOCK_WEIGHT_BYTES 8
#else
#define BLOCK_WEIGHT_BYTES 4
#endif

#define FINISH(o, acc, c) edgec_output_stage((o), (acc), (c), EDGEC_SINGLE_ROUNDING, stage)
/* The same for an accumulator that already holds the channel's bias. */
#define FINISH_BIASED(o, acc, c) edgec_output_stage_biased((o), (acc), (c), EDGEC_SINGLE_ROUNDING, stage)

/* acc0..3 += the four channels of one tap (inputs at x, the tap's block weights at w). */
EDGEC_INLINE void tap_of_four(const int8_t *x, const int8_t *w, int32_t acc[4])
{
#if EDGEC_DSP
    const uint32_t xv = edgec_load32(x), w02 = edgec_load32(w), w13 = edgec_load32(w + 4);
    const uint32_t x02 = edgec_sxtb16(xv), x13 = edgec_sxtb16_ror8(xv);
    acc[0] = edgec_smlabb(x02, w02, acc[0]);
    acc[2] = edgec_smlatt(x02, w02, acc[2]);
    acc[1] = edgec_smlabb(x13, w13, acc[1]);
    acc[3] = edgec_smlatt(x13, w13, acc[3]);
#else
    acc[0] += x[0] * w[0];
    acc[1] += x[1] * w[1];
    acc[2] += x[2] * w[2];
    acc[3] += x[3] * w[3];
#endif
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* One tap of a 3x3 block in Thumb-2: inputs at [x, off], block weights at [w], post-incremented. */
#define EDGEC_DW_TAP(off)                                  \
    "ldr %[xv], [%[x], " off "]\n\t"                      \
    "ldrd %[w02], %[w13], [%[w]], #8\n\t"                 \
    "sxtb16 %[t], %[xv]\n\t"                              \
    "smlabb %[a0], %[t], %[w02], %[a0]\n\t"               \
    "smlatt %[a2], %[t], %[w02], %[a2]\n\t"               \
    "sxtb16 %[t], %[xv], ror #8\n\t"                      \
    "smlabb %[a1], %[t], %[w13], %[a1]\n\t"               \
    "smlatt %[a3], %[t], %[w13], %[a3]\n\t"

/* The nine taps of a 3x3 window for four channels added to acc: 8 instructions per tap. */
EDGEC_INLINE void block_3x3(const int8_t *x, size_t row_step, size_t col_step, const int8_t *w, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    uint32_t xv, w02, w13, t;
    const size_t col_step2 = 2 * col_step;
    __asm__ volatile(
        EDGEC_DW_TAP("#0") EDGEC_DW_TAP("%[cs]") EDGEC_DW_TAP("%[cs2]")
        "add %[x], %[x], %[rs]\n\t"
        EDGEC_DW_TAP("#0") EDGEC_DW_TAP("%[cs]") EDGEC_DW_TAP("%[cs2]")
        "add %[x], %[x], %[rs]\n\t"
        EDGEC_DW_TAP("#0") EDGEC_DW_TAP("%[cs]") EDGEC_DW_TAP("%[cs2]")
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w), [xv] "=&r"(xv),
          [w02] "=&r"(w02), [w13] "=&r"(w13), [t] "=&r"(t)
        : [rs] "r"(row_step), [cs] "r"(col_step), [cs2] "r"(col_step2)
        : "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#undef EDGEC_DW_TAP
#else
EDGEC_INLINE void block_3x3(const int8_t *x, size_t row_step, size_t col_step, const int8_t *w, int32_t acc[4])
{
    for (int ky = 0; ky < 3; ky++, x += row_step, w += 3 * BLOCK_WEIGHT_BYTES) {
        tap_of_four(x, w, acc);
        tap_of_four(x + col_step, w + BLOCK_WEIGHT_BYTES, acc);
        tap_of_four(x + 2 * col_step, w + 2 * BLOCK_WEIGHT_BYTES, acc);
    }
}
#endif

/* Four channels of one pixel; x points at the window's first tap, channel c. */
EDGEC_INLINE void block_of_four(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *x,
                                size_t row_step, size_t col_step, const int8_t *w, int8_t *restrict out, uint32_t c,
                                int stage)
{
    /* The accumulators start at the biases, so that the output stage adds none. */
    int32_t acc[4] = {o->bias[c], o->bias[c + 1], o->bias[c + 2], o->bias[c + 3]};
    if (p->k_h == 3 && p->k_w == 3) {
        block_3x3(x, row_step, col_step, w, acc);
    } else {
        for (int ky = 0; ky < p->k_h; ky++, x += row_step) {
            const int8_t *tap = x;
            for (int kx = 0; kx < p->k_w; kx++, tap += col_step, w += BLOCK_WEIGHT_BYTES) {
                tap_of_four(tap, w, acc);
            }
        }
    }
    out[c] = FINISH_BIASED(o, acc[0], c);
    out[c + 1] = FINISH_BIASED(o, acc[1], c + 1);
    out[c + 2] = FINISH_BIASED(o, acc[2], c + 2);
    out[c + 3] = FINISH_BIASED(o, acc[3], c + 3);
}

#endif /* EDGEC_DEPTHWISE_BLOCK_H */
