/* Two output channels per multiply for a lone pixel on cores without the DSP extension (the M3),
 * whose weights are each used once per inference, over int8 weights stored one byte each.
 *
 * A block of four channels c0..c3 is stored [k][4] (backends/cortex_m/conv_rows.py,
 * lane_pair_rows), each k's word holding, low byte first,
 *     [w0 + 128, w3, w2 + 128, w1]      (w0, w2 as uint8; w1, w3 as int8)
 * so that with m = 0xFF0000FF
 *     word & m          = (w0 + 128) + 2^24 * w1
 *     ror(word, 16) & m = (w2 + 128) + 2^24 * w3
 * exactly, as int32. One SMLAL of an int8 input x by each adds x * (w + 128) to the low 24
 * bits of a 64-bit sum and x * w' above them. Over at most EDGEC_LANE_PAIR_CHUNK k the low lane
 * stays inside [-2^23, 2^23) (|x * (w + 128)| <= 32640), so it is read back exactly as the low
 * 24 bits sign-extended, and the high lane as the rest shifted down by 24. The low lanes carry
 * 128 * sum(x) more than the true sums: the caller subtracts it once per column.
 *
 *   edgec_dot_lanes_1x4: one chunk (count a positive multiple of 4, at most 256), 24
 *                        instructions per 16 MACs; edgec_lane_block_sums: a whole column.
 */
#ifndef EDGEC_DOT_LANES_H
#define EDGEC_DOT_LANES_H

#include "edgec_arith.h"

#define EDGEC_LANE_PAIR_CHUNK 256u
#define EDGEC_LANE_PAIR_MASK 0xFF0000FFu

/* s[0] = sum_k x[k] * (word_k & m), s[1] = sum_k x[k] * (ror(word_k, 16) & m), over count k of
 * the block at w (word-aligned). */
EDGEC_INLINE void edgec_dot_lanes_1x4(const int8_t *w, const int8_t *x, uint32_t count, int64_t s[2])
{
#if defined(__arm__) && defined(__thumb2__)
    uint32_t lo0 = 0, hi0 = 0, lo1 = 0, hi1 = 0, n = count >> 2, wa, wb, t;
    const uint32_t mask = EDGEC_LANE_PAIR_MASK;
    int32_t xv;
#define EDGEC_LANES_K(WV)                                  \
    "ldrsb %[xv], [%[x]], #1\n\t"                          \
    "and %[t], %[" WV "], %[mask]\n\t"                     \
    "smlal %[lo0], %[hi0], %[xv], %[t]\n\t"                \
    "and %[t], %[mask], %[" WV "], ror #16\n\t"            \
    "smlal %[lo1], %[hi1], %[xv], %[t]\n\t"
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[wa], %[wb], [%[w]], #8\n\t"
        EDGEC_LANES_K("wa") EDGEC_LANES_K("wb")
        "ldrd %[wa], %[wb], [%[w]], #8\n\t"
        EDGEC_LANES_K("wa") EDGEC_LANES_K("wb")
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [lo0] "+r"(lo0), [hi0] "+r"(hi0), [lo1] "+r"(lo1), [hi1] "+r"(hi1), [w] "+r"(w), [x] "+r"(x), [n] "+r"(n),
          [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t), [xv] "=&r"(xv)
        : [mask] "r"(mask)
        : "cc", "memory");
#undef EDGEC_LANES_K
    s[0] = (int64_t)(((uint64_t)hi0 << 32) | lo0);
    s[1] = (int64_t)(((uint64_t)hi1 << 32) | lo1);
#else
    int64_t t0 = 0, t1 = 0;
    for (uint32_t k = 0; k < count; k++, w += 4) {
        const uint32_t word = edgec_load32(w);
        const uint32_t turned = (word >> 16) | (word << 16);
        t0 += (int64_t)x[k] * (int32_t)(word & EDGEC_LANE_PAIR_MASK);
        t1 += (int64_t)x[k] * (int32_t)(turned & EDGEC_LANE_PAIR_MASK);
    }
    s[0] = t0;
    s[1] = t1;
#endif
}

/* Adds a chunk's two-lane sum to the low and high channels' sums (modulo 2^32: only the
 * finished sums are bounded). */
EDGEC_INLINE void edgec_lane_pair_add(int64_t sum, uint32_t *low, uint32_t *high)
{
    const int32_t l = (int32_t)((uint32_t)sum << 8) >> 8;
    *low += (uint32_t)l;
    *high += (uint32_t)(int32_t)((sum - l) >> 24);
}

/* acc[i] = sum_k x[k] * w_i[k] over k < kp (a positive multiple of 4) for the block of four
 * channels at w, laid out as above; x_sum is edgec_column_sum of x. */
EDGEC_INLINE void edgec_lane_block_sums(const int8_t *w, const int8_t *x, uint32_t kp, int32_t x_sum,
                                        int32_t acc[4])
{
    uint32_t a0 = (uint32_t)x_sum * 0xFFFFFF80u, a1 = 0, a2 = a0, a3 = 0; /* -128 * x_sum */
    for (uint32_t start = 0; start < kp; start += EDGEC_LANE_PAIR_CHUNK) {
        const uint32_t count = kp - start < EDGEC_LANE_PAIR_CHUNK ? kp - start : EDGEC_LANE_PAIR_CHUNK;
        int64_t s[2];
        edgec_dot_lanes_1x4(w + 4u * start, x + start, count, s);
        edgec_lane_pair_add(s[0], &a0, &a1);
        edgec_lane_pair_add(s[1], &a2, &a3);
    }
    acc[0] = (int32_t)a0;
    acc[1] = (int32_t)a1;
    acc[2] = (int32_t)a2;
    acc[3] = (int32_t)a3;
}

/* The sum of a column's kp int8 inputs (the low lanes' excess, divided by 128). */
EDGEC_INLINE int32_t edgec_column_sum(const int8_t *x, uint32_t kp)
{
    int32_t sum = 0;
    for (uint32_t k = 0; k < kp; k++) {
        sum += x[k];
    }
    return sum;
}

#endif /* EDGEC_DOT_LANES_H */
