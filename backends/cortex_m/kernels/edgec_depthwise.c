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
 * [taps][rest]. Depth multiplier > 1: weights [taps][out_c], one channel at a time.
 */
#include "edgec_kernels.h"

#if EDGEC_DSP
#define BLOCK_WEIGHT_BYTES 8
#else
#define BLOCK_WEIGHT_BYTES 4
#endif

#define FINISH(o, acc, c) edgec_output_stage((o), (acc), (c), EDGEC_SINGLE_ROUNDING, stage)

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

/* The nine taps of a 3x3 window for four channels: 8 instructions per tap. */
EDGEC_INLINE void block_3x3(const int8_t *x, size_t row_step, size_t col_step, const int8_t *w, int32_t acc[4])
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
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
    acc[0] = acc[1] = acc[2] = acc[3] = 0;
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
    int32_t acc[4] = {0, 0, 0, 0};
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
    out[c] = FINISH(o, acc[0], c);
    out[c + 1] = FINISH(o, acc[1], c + 1);
    out[c + 2] = FINISH(o, acc[2], c + 2);
    out[c + 3] = FINISH(o, acc[3], c + 3);
}

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

EDGEC_INLINE void pixel(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *x, size_t row_step,
                        size_t col_step, int8_t *out, int stage)
{
    const uint32_t taps = (uint32_t)p->k_h * p->k_w;
    if (p->depth_multiplier != 1) {
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
