/* DepthwiseConv (depth multiplier 1) with 4-bit or 2-bit weights: the kernel of edgec_depthwise_w4.c
 * and edgec_depthwise_w2.c, which define EDGEC_WEIGHT_BITS and include it.
 *
 * Weights (backends/cortex_m/packing.py): channels in blocks of four (the last block
 * zero-padded); per block the taps in 32-bit words of 8 / bits taps, field j of lane l of a
 * word holding tap j / 2 of the word, channel 2 * l + j % 2, most significant field first.
 *  - DSP extension: (word << bits * j) & top-of-each-lane is [w[c0], w[c2]] (j even) or
 *    [w[c1], w[c3]] (j odd) of a tap, scaled by 2^(16 - bits), for SMLABB/SMLATT against
 *    SXTB16 of the inputs as in edgec_depthwise.c; the shift and mask are one AND of the mask
 *    with the shifted word: 9 instructions per tap and block in the 3x3 assembly, plus a word
 *    load per 8 / bits taps (int8: 8, with weights stored as int16 lane pairs); sums are
 *    shifted back at the end (exact: at most 256 taps keep them below 2^31).
 *  - otherwise: SBFX of each weight and MLA with the int8 input, 12 per tap and block in the
 *    3x3 assembly (int8: 12), plus the word loads and an ADD per tap off a row's first column.
 * The last, partial block (out_c not a multiple of four) goes channel by channel. Same sums,
 * walk and output stage as edgec_depthwise.c.
 */
#ifndef EDGEC_DEPTHWISE_PACKED_H
#define EDGEC_DEPTHWISE_PACKED_H

#include "edgec_kernels.h"

#define EDGEC_TAPS_PER_WORD (8 / EDGEC_WEIGHT_BITS)
#define EDGEC_TOP_FIELDS (EDGEC_WEIGHT_BITS == 4 ? 0xF000F000u : 0xC000C000u)

/* Field j of lane `lane` of `word`, sign-extended. */
EDGEC_INLINE int32_t lane_field(uint32_t word, uint32_t j, uint32_t lane)
{
    const uint32_t lsb = 16u * lane + 16u - EDGEC_WEIGHT_BITS * (j + 1u);
    return (int32_t)(word << (32u - EDGEC_WEIGHT_BITS - lsb)) >> (32 - EDGEC_WEIGHT_BITS);
}

/* The word of a block holding tap `tap`. */
EDGEC_INLINE uint32_t tap_word(const int8_t *words, uint32_t tap)
{
    return edgec_load32(words + 4u * (tap / EDGEC_TAPS_PER_WORD));
}

/* The field of tap `tap`'s channels 0 and 2 in its word (channels 1 and 3: the next one). */
EDGEC_INLINE uint32_t tap_field(uint32_t tap)
{
    return 2u * (tap % EDGEC_TAPS_PER_WORD);
}

/* acc0..3 += the four channels of tap `tap` (inputs at x). */
EDGEC_INLINE void packed_tap(const int8_t *x, const int8_t *words, uint32_t tap, int32_t acc[4])
{
    const uint32_t word = tap_word(words, tap), j = tap_field(tap);
#if EDGEC_DSP
    const uint32_t w02 = (word << (EDGEC_WEIGHT_BITS * j)) & EDGEC_TOP_FIELDS;
    const uint32_t w13 = (word << (EDGEC_WEIGHT_BITS * (j + 1u))) & EDGEC_TOP_FIELDS;
    const uint32_t xv = edgec_load32(x), x02 = edgec_sxtb16(xv), x13 = edgec_sxtb16_ror8(xv);
    acc[0] = edgec_smlabb(x02, w02, acc[0]);
    acc[2] = edgec_smlatt(x02, w02, acc[2]);
    acc[1] = edgec_smlabb(x13, w13, acc[1]);
    acc[3] = edgec_smlatt(x13, w13, acc[3]);
#else
    acc[0] += x[0] * lane_field(word, j, 0);
    acc[1] += x[1] * lane_field(word, j + 1u, 0);
    acc[2] += x[2] * lane_field(word, j, 1);
    acc[3] += x[3] * lane_field(word, j + 1u, 1);
#endif
}

/* Every tap of a k_h x k_w window for four channels. */
EDGEC_INLINE void packed_window(const int8_t *x, size_t row_step, size_t col_step, const int8_t *words, int k_h,
                                int k_w, int32_t acc[4])
{
    uint32_t tap = 0;
    for (int ky = 0; ky < k_h; ky++, x += row_step) {
        const int8_t *t = x;
        for (int kx = 0; kx < k_w; kx++, t += col_step, tap++) {
            packed_tap(t, words, tap, acc);
        }
    }
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* One tap of a 3x3 block in Thumb-2: inputs at [x, off]; its fields of the weight word at bit
 * offsets s02 (channels 0, 2) and s13 (1, 3) moved to the top of each lane by one AND of the
 * shifted word with the mask: 9 instructions, plus one word load every EDGEC_TAPS_PER_WORD taps. */
#define EDGEC_DW_PACKED_TAP(off, s02, s13)                   \
    "ldr %[xv], [%[x], " off "]\n\t"                       \
    "sxtb16 %[t], %[xv]\n\t"                               \
    "and %[f], %[mask], %[word], lsl #" s02 "\n\t"          \
    "smlabb %[a0], %[t], %[f], %[a0]\n\t"                  \
    "smlatt %[a2], %[t], %[f], %[a2]\n\t"                  \
    "sxtb16 %[t], %[xv], ror #8\n\t"                       \
    "and %[f], %[mask], %[word], lsl #" s13 "\n\t"          \
    "smlabb %[a1], %[t], %[f], %[a1]\n\t"                  \
    "smlatt %[a3], %[t], %[f], %[a3]\n\t"
#define EDGEC_DW_WORD "ldr %[word], [%[w]], #4\n\t"
#define EDGEC_DW_ROW "add %[x], %[x], %[rs]\n\t"
#if EDGEC_WEIGHT_BITS == 4
#define EDGEC_DW_T0(off) EDGEC_DW_WORD EDGEC_DW_PACKED_TAP(off, "0", "4")
#define EDGEC_DW_T1(off) EDGEC_DW_PACKED_TAP(off, "8", "12")
#define EDGEC_DW_3X3                                                                                 \
    EDGEC_DW_T0("#0") EDGEC_DW_T1("%[cs]") EDGEC_DW_T0("%[cs2]") EDGEC_DW_ROW                        \
    EDGEC_DW_T1("#0") EDGEC_DW_T0("%[cs]") EDGEC_DW_T1("%[cs2]") EDGEC_DW_ROW                        \
    EDGEC_DW_T0("#0") EDGEC_DW_T1("%[cs]") EDGEC_DW_T0("%[cs2]")
#else
#define EDGEC_DW_T0(off) EDGEC_DW_WORD EDGEC_DW_PACKED_TAP(off, "0", "2")
#define EDGEC_DW_T1(off) EDGEC_DW_PACKED_TAP(off, "4", "6")
#define EDGEC_DW_T2(off) EDGEC_DW_PACKED_TAP(off, "8", "10")
#define EDGEC_DW_T3(off) EDGEC_DW_PACKED_TAP(off, "12", "14")
#define EDGEC_DW_3X3                                                                                 \
    EDGEC_DW_T0("#0") EDGEC_DW_T1("%[cs]") EDGEC_DW_T2("%[cs2]") EDGEC_DW_ROW                        \
    EDGEC_DW_T3("#0") EDGEC_DW_T0("%[cs]") EDGEC_DW_T1("%[cs2]") EDGEC_DW_ROW                        \
    EDGEC_DW_T2("#0") EDGEC_DW_T3("%[cs]") EDGEC_DW_T0("%[cs2]")
#endif

/* The nine taps of a 3x3 window for four channels (scaled sums, as packed_tap's). */
EDGEC_INLINE void packed_3x3(const int8_t *x, size_t row_step, size_t col_step, const int8_t *words, int32_t acc[4])
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t xv, t, f, word;
    const uint32_t mask = EDGEC_TOP_FIELDS;
    const size_t col_step2 = 2 * col_step;
    __asm__ volatile(
        EDGEC_DW_3X3
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(words), [xv] "=&r"(xv),
          [t] "=&r"(t), [f] "=&r"(f), [word] "=&r"(word)
        : [rs] "r"(row_step), [cs] "r"(col_step), [cs2] "r"(col_step2), [mask] "r"(mask)
        : "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#elif !EDGEC_DSP && defined(__arm__) && defined(__thumb2__)
/* One tap of a 3x3 block in Thumb-2 without the DSP extension: the four int8 inputs at [p],
 * each times its weight, SBFX of the word at bit l0..l3: 12 instructions, plus one word load
 * every EDGEC_TAPS_PER_WORD taps and one ADD per tap off the row's first column. */
#define EDGEC_DW_CHANNEL(p, i, lsb, a)                                  \
    "ldrsb %[xv], [" p ", #" i "]\n\t"                                 \
    "sbfx %[t], %[word], #" lsb ", #" EDGEC_DW_BITS "\n\t"             \
    "mla %[" a "], %[xv], %[t], %[" a "]\n\t"
#define EDGEC_DW_TAP_AT(p, l0, l1, l2, l3)                                                           \
    EDGEC_DW_CHANNEL(p, "0", l0, "a0") EDGEC_DW_CHANNEL(p, "1", l1, "a1") EDGEC_DW_CHANNEL(p, "2", l2, "a2") \
    EDGEC_DW_CHANNEL(p, "3", l3, "a3")
/* The taps at column 0, 1 and 2 of a row (the four bit offsets: expanded first, hence `...`). */
#define EDGEC_DW_FIRST(...) EDGEC_DW_TAP_AT("%[x]", __VA_ARGS__)
#define EDGEC_DW_SECOND(...) "add %[p], %[x], %[cs]\n\t" EDGEC_DW_TAP_AT("%[p]", __VA_ARGS__)
#define EDGEC_DW_THIRD(...) "add %[p], %[x], %[cs2]\n\t" EDGEC_DW_TAP_AT("%[p]", __VA_ARGS__)
#define EDGEC_DW_WORD "ldr %[word], [%[w]], #4\n\t"
#define EDGEC_DW_ROW "add %[x], %[x], %[rs]\n\t"
#if EDGEC_WEIGHT_BITS == 4
#define EDGEC_DW_BITS "4"
#define EDGEC_DW_3X3                                                                                            \
    EDGEC_DW_WORD EDGEC_DW_FIRST("12", "8", "28", "24") EDGEC_DW_SECOND("4", "0", "20", "16")                    \
    EDGEC_DW_WORD EDGEC_DW_THIRD("12", "8", "28", "24") EDGEC_DW_ROW                                             \
    EDGEC_DW_FIRST("4", "0", "20", "16") EDGEC_DW_WORD EDGEC_DW_SECOND("12", "8", "28", "24")                    \
    EDGEC_DW_THIRD("4", "0", "20", "16") EDGEC_DW_ROW                                                            \
    EDGEC_DW_WORD EDGEC_DW_FIRST("12", "8", "28", "24") EDGEC_DW_SECOND("4", "0", "20", "16")                    \
    EDGEC_DW_WORD EDGEC_DW_THIRD("12", "8", "28", "24")
#else
#define EDGEC_DW_BITS "2"
#define EDGEC_DW_Q0 "14", "12", "30", "28"
#define EDGEC_DW_Q1 "10", "8", "26", "24"
#define EDGEC_DW_Q2 "6", "4", "22", "20"
#define EDGEC_DW_Q3 "2", "0", "18", "16"
#define EDGEC_DW_3X3                                                                                            \
    EDGEC_DW_WORD EDGEC_DW_FIRST(EDGEC_DW_Q0) EDGEC_DW_SECOND(EDGEC_DW_Q1) EDGEC_DW_THIRD(EDGEC_DW_Q2) EDGEC_DW_ROW \
    EDGEC_DW_FIRST(EDGEC_DW_Q3) EDGEC_DW_WORD EDGEC_DW_SECOND(EDGEC_DW_Q0) EDGEC_DW_THIRD(EDGEC_DW_Q1) EDGEC_DW_ROW \
    EDGEC_DW_FIRST(EDGEC_DW_Q2) EDGEC_DW_SECOND(EDGEC_DW_Q3) EDGEC_DW_WORD EDGEC_DW_THIRD(EDGEC_DW_Q0)
#endif

/* The nine taps of a 3x3 window for four channels. */
EDGEC_INLINE void packed_3x3(const int8_t *x, size_t row_step, size_t col_step, const int8_t *words, int32_t acc[4])
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, xv, t;
    uint32_t word;
    const int8_t *p;
    const size_t col_step2 = 2 * col_step;
    __asm__ volatile(
        EDGEC_DW_3X3
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(words), [xv] "=&r"(xv),
          [t] "=&r"(t), [word] "=&r"(word), [p] "=&r"(p)
        : [rs] "r"(row_step), [cs] "r"(col_step), [cs2] "r"(col_step2)
        : "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#else
/* The nine taps of a 3x3 window, unrolled (constant shifts and masks). */
EDGEC_INLINE void packed_3x3(const int8_t *x, size_t row_step, size_t col_step, const int8_t *words, int32_t acc[4])
{
    for (uint32_t row = 0; row < 9; row += 3, x += row_step) {
        packed_tap(x, words, row, acc);
        packed_tap(x + col_step, words, row + 1, acc);
        packed_tap(x + 2 * col_step, words, row + 2, acc);
    }
}
#endif

/* Four channels c..c+3 of one pixel; x at the window's first tap, channel c. */
EDGEC_INLINE void packed_block(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *x,
                               size_t row_step, size_t col_step, const int8_t *words, int8_t *restrict out, uint32_t c,
                               int stage)
{
    int32_t acc[4] = {0, 0, 0, 0};
    if (p->k_h == 3 && p->k_w == 3) {
        packed_3x3(x, row_step, col_step, words, acc);
    } else {
        packed_window(x, row_step, col_step, words, p->k_h, p->k_w, acc);
    }
#if EDGEC_DSP
    const int scale = 16 - EDGEC_WEIGHT_BITS;
#else
    const int scale = 0;
#endif
    out[c] = edgec_output_stage(o, acc[0] >> scale, c, EDGEC_SINGLE_ROUNDING, stage);
    out[c + 1] = edgec_output_stage(o, acc[1] >> scale, c + 1, EDGEC_SINGLE_ROUNDING, stage);
    out[c + 2] = edgec_output_stage(o, acc[2] >> scale, c + 2, EDGEC_SINGLE_ROUNDING, stage);
    out[c + 3] = edgec_output_stage(o, acc[3] >> scale, c + 3, EDGEC_SINGLE_ROUNDING, stage);
}

/* Channel c + i (i < 4) of the last, partial block. */
EDGEC_INLINE void packed_channel(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *x,
                                 size_t row_step, size_t col_step, const int8_t *words, int8_t *out, uint32_t c,
                                 uint32_t i, int stage)
{
    int32_t acc = 0;
    uint32_t tap = 0;
    for (int ky = 0; ky < p->k_h; ky++, x += row_step) {
        const int8_t *t = x + c + i;
        for (int kx = 0; kx < p->k_w; kx++, t += col_step, tap++) {
            acc += *t * lane_field(tap_word(words, tap), tap_field(tap) + (i & 1u), i >> 1);
        }
    }
    out[c + i] = edgec_output_stage(o, acc, c + i, EDGEC_SINGLE_ROUNDING, stage);
}

EDGEC_INLINE void pixel(const edgec_depthwise_params *p, const edgec_outputs_t *o, const int8_t *x, size_t row_step,
                        size_t col_step, int8_t *out, int stage)
{
    const uint32_t taps = (uint32_t)p->k_h * p->k_w, blocked = p->out_c & ~3u;
    const uint32_t block_bytes = 4u * ((taps + EDGEC_TAPS_PER_WORD - 1u) / EDGEC_TAPS_PER_WORD);
    const int8_t *words = p->weights;
    uint32_t c = 0;
    for (; c < blocked; c += 4, words += block_bytes) {
        packed_block(p, o, x + c, row_step, col_step, words, out, c, stage);
    }
    for (uint32_t i = 0; c + i < p->out_c; i++) {
        packed_channel(p, o, x, row_step, col_step, words, out, c, i, stage);
    }
}

#include "edgec_depthwise_walk.h"

#endif /* EDGEC_DEPTHWISE_PACKED_H */
