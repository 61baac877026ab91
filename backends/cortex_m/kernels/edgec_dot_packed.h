/* The dot-product loops of Conv/FullyConnected with 4-bit or 2-bit weights packed in 32-bit words,
 * unpacked inside the loop (Thumb-2 assembly on Arm, plain C elsewhere; both compute the same sums).
 *
 * Weights: a pair of rows, word by word interleaved (row c word i, row c+1 word i, ...); a
 * word holds 32/bits k in two 16-bit lanes, most significant field first, field j of lane l
 * being k = 4 * (j / 2) + j % 2 + 2 * l (backends/cortex_m/packing.py writes them).
 *
 * DSP extension: (word << bits * j) & EDGEC_TOP_FIELDS keeps field j of each lane at the top of
 * its half: an SMLAD operand [w[k], w[k + 2]] scaled by 2^(16 - bits), sign included, which
 * pairs with the int8 kernel's column lanes [x0, x2], [x1, x3] (edgec_im2col.h). Each field
 * is one AND of the mask (held in a register) with the shifted word: W4 takes 32 instructions
 * per 32 MACs in the 2x2 loop (int8: 36), W2 60 per 64 (int8: 72); the 2x2 loop has no
 * register left for a counter, so it ends on x reaching an end pointer kept in memory. Sums
 * come back scaled by 2^(16 - bits); EDGEC_PACKED_CHUNK k keep them below 2^30 (|x w| <= 1024
 * for W4, 256 for W2), so the caller shifts them back exactly.
 * No DSP extension: SBFX extracts each weight, sign-extended, for the 23-bit-lane SMLAL of
 * the int8 kernel (edgec_dot.h): 39 instructions per 32 MACs (int8: 44), W2 75 per 64 (88).
 *
 *   edgec_packed_dot_2x2 (DSP): two channels x two pixels, acc = {c0 p0, c0 p1, c1 p0, c1 p1}.
 *   edgec_packed_dot_1x2 (DSP): two channels x pixel 0 of the prepared columns, acc = {c0, c1}.
 *   edgec_packed_dot_lanes (no DSP): two channels x both lanes, two 64-bit two-lane sums.
 * `words` (per row) is at least one.
 */
#ifndef EDGEC_DOT_PACKED_H
#define EDGEC_DOT_PACKED_H

#include "edgec_arith.h"

#define EDGEC_PACKED_CHUNK 256

/* The lowest bit of k's field in a word (see above). */
#define EDGEC_FIELD_LSB(k, bits) (16 * (((k) >> 1) & 1) + 16 - (bits) * (2 * ((k) >> 2) + ((k) & 1) + 1))

EDGEC_INLINE int32_t edgec_weight_field(uint32_t word, int k, int bits)
{
    return (int32_t)(word << (32 - bits - EDGEC_FIELD_LSB(k, bits))) >> (32 - bits);
}

#if EDGEC_DSP

#define EDGEC_TOP_FIELDS(bits) ((bits) == 4 ? 0xF000F000u : 0xC000C000u)

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* t = field j of word r: one AND of the mask with the word shifted left by `shift` = bits * j. */
#define EDGEC_FIELD(r, shift) "and %[t], %[mask], %[" r "], lsl #" shift "\n\t"
/* The two fields (shifts s1, s2) of one group of four k against its column lanes, for both channels. */
#define EDGEC_GROUP_2X2(s1, s2)                                                                   \
    "ldrd %[x0], %[x1], [%[x]], #8\n\t"                                                        \
    "ldrd %[x2], %[x3], [%[x]], #8\n\t"                                                        \
    EDGEC_FIELD("wa", s1) "smlad %[a00], %[t], %[x0], %[a00]\n\t" "smlad %[a01], %[t], %[x2], %[a01]\n\t" \
    EDGEC_FIELD("wa", s2) "smlad %[a00], %[t], %[x1], %[a00]\n\t" "smlad %[a01], %[t], %[x3], %[a01]\n\t" \
    EDGEC_FIELD("wb", s1) "smlad %[a10], %[t], %[x0], %[a10]\n\t" "smlad %[a11], %[t], %[x2], %[a11]\n\t" \
    EDGEC_FIELD("wb", s2) "smlad %[a10], %[t], %[x1], %[a10]\n\t" "smlad %[a11], %[t], %[x3], %[a11]\n\t"
#define EDGEC_GROUP_1X2(s1, s2)                                                                   \
    "ldrd %[x0], %[x1], [%[x]], #16\n\t"                                                       \
    EDGEC_FIELD("wa", s1) "smlad %[a0], %[t], %[x0], %[a0]\n\t" EDGEC_FIELD("wa", s2) "smlad %[a0], %[t], %[x1], %[a0]\n\t" \
    EDGEC_FIELD("wb", s1) "smlad %[a1], %[t], %[x0], %[a1]\n\t" EDGEC_FIELD("wb", s2) "smlad %[a1], %[t], %[x1], %[a1]\n\t"
#define EDGEC_W4_GROUPS(group) group("0", "4") group("8", "12")
#define EDGEC_W2_GROUPS(group) group("0", "2") group("4", "6") group("8", "10") group("12", "14")
#endif

EDGEC_INLINE void edgec_packed_dot_2x2(const int8_t *w, const uint32_t *x, uint32_t words, int bits, int32_t acc[4])
{
    int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    /* Every register goes to the loop: it ends when x reaches `end`, read from memory. */
    const uint32_t *const end = x + words * (32u / (uint32_t)bits);
    const uint32_t mask = EDGEC_TOP_FIELDS(bits);
    uint32_t wa, wb, t, x0, x1, x2, x3;
    if (bits == 4) {
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[wa], %[wb], [%[w]], #8\n\t"
            EDGEC_W4_GROUPS(EDGEC_GROUP_2X2)
            "ldr %[t], %[end]\n\t"
            "cmp %[x], %[t]\n\t"
            "bne 1b\n\t"
            : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [w] "+r"(w), [x] "+r"(x),
              [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2),
              [x3] "=&r"(x3)
            : [end] "m"(end), [mask] "r"(mask)
            : "cc", "memory");
    } else {
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[wa], %[wb], [%[w]], #8\n\t"
            EDGEC_W2_GROUPS(EDGEC_GROUP_2X2)
            "ldr %[t], %[end]\n\t"
            "cmp %[x], %[t]\n\t"
            "bne 1b\n\t"
            : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [w] "+r"(w), [x] "+r"(x),
              [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2),
              [x3] "=&r"(x3)
            : [end] "m"(end), [mask] "r"(mask)
            : "cc", "memory");
    }
#else
    const uint32_t top = EDGEC_TOP_FIELDS(bits);
    for (uint32_t i = 0; i < words; i++, w += 8) {
        const uint32_t wa = edgec_load32(w), wb = edgec_load32(w + 4);
        for (int j = 0; j < 16 / bits; j += 2, x += 4) {
            const uint32_t a0 = (wa << (bits * j)) & top, a1 = (wa << (bits * (j + 1))) & top;
            const uint32_t b0 = (wb << (bits * j)) & top, b1 = (wb << (bits * (j + 1))) & top;
            a00 = edgec_smlad(a1, x[1], edgec_smlad(a0, x[0], a00));
            a01 = edgec_smlad(a1, x[3], edgec_smlad(a0, x[2], a01));
            a10 = edgec_smlad(b1, x[1], edgec_smlad(b0, x[0], a10));
            a11 = edgec_smlad(b1, x[3], edgec_smlad(b0, x[2], a11));
        }
    }
#endif
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

EDGEC_INLINE void edgec_packed_dot_1x2(const int8_t *w, const uint32_t *x, uint32_t words, int bits, int32_t acc[2])
{
    int32_t a0 = 0, a1 = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    const uint32_t mask = EDGEC_TOP_FIELDS(bits);
    uint32_t wa, wb, t, x0, x1;
    if (bits == 4) {
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[wa], %[wb], [%[w]], #8\n\t"
            EDGEC_W4_GROUPS(EDGEC_GROUP_1X2)
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [w] "+r"(w), [x] "+r"(x), [n] "+r"(words), [wa] "=&r"(wa),
              [wb] "=&r"(wb), [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1)
            : [mask] "r"(mask)
            : "cc", "memory");
    } else {
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[wa], %[wb], [%[w]], #8\n\t"
            EDGEC_W2_GROUPS(EDGEC_GROUP_1X2)
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [w] "+r"(w), [x] "+r"(x), [n] "+r"(words), [wa] "=&r"(wa),
              [wb] "=&r"(wb), [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1)
            : [mask] "r"(mask)
            : "cc", "memory");
    }
#else
    const uint32_t top = EDGEC_TOP_FIELDS(bits);
    for (uint32_t i = 0; i < words; i++, w += 8) {
        const uint32_t wa = edgec_load32(w), wb = edgec_load32(w + 4);
        for (int j = 0; j < 16 / bits; j += 2, x += 4) {
            const uint32_t a0w = (wa << (bits * j)) & top, a1w = (wa << (bits * (j + 1))) & top;
            const uint32_t b0w = (wb << (bits * j)) & top, b1w = (wb << (bits * (j + 1))) & top;
            a0 = edgec_smlad(a1w, x[1], edgec_smlad(a0w, x[0], a0));
            a1 = edgec_smlad(b1w, x[1], edgec_smlad(b0w, x[0], a1));
        }
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
}

#else /* no DSP extension */

#if defined(__arm__) && defined(__thumb2__)
/* One k pair (prepared inputs xa, xb) of both rows: SBFX of each weight, SMLAL into the two-lane sums. */
#define EDGEC_LANES_PAIR(bits, lsb_a, lsb_b)                                          \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                                            \
    "sbfx %[t], %[wa], #" lsb_a ", #" bits "\n\t" "smlal %[lo0], %[hi0], %[xa], %[t]\n\t" \
    "sbfx %[t], %[wb], #" lsb_a ", #" bits "\n\t" "smlal %[lo1], %[hi1], %[xa], %[t]\n\t" \
    "sbfx %[t], %[wa], #" lsb_b ", #" bits "\n\t" "smlal %[lo0], %[hi0], %[xb], %[t]\n\t" \
    "sbfx %[t], %[wb], #" lsb_b ", #" bits "\n\t" "smlal %[lo1], %[hi1], %[xb], %[t]\n\t"
#endif

/* *s0, *s1: the two-lane sums (see edgec_dot_packed_2x2 in edgec_dot.h) of rows c and c+1
 * against the prepared int32 columns x, over `words` words per row. */
EDGEC_INLINE void edgec_packed_dot_lanes(const int8_t *w, const int32_t *x, uint32_t words, int bits, int64_t *s0,
                                         int64_t *s1)
{
#if defined(__arm__) && defined(__thumb2__)
    uint32_t lo0 = 0, hi0 = 0, lo1 = 0, hi1 = 0, wa, wb;
    int32_t xa, xb, t;
    if (bits == 4) {
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[wa], %[wb], [%[w]], #8\n\t"
            EDGEC_LANES_PAIR("4", "12", "8") EDGEC_LANES_PAIR("4", "28", "24")
            EDGEC_LANES_PAIR("4", "4", "0") EDGEC_LANES_PAIR("4", "20", "16")
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [lo0] "+r"(lo0), [hi0] "+r"(hi0), [lo1] "+r"(lo1), [hi1] "+r"(hi1), [w] "+r"(w), [x] "+r"(x),
              [n] "+r"(words), [wa] "=&r"(wa), [wb] "=&r"(wb), [xa] "=&r"(xa), [xb] "=&r"(xb), [t] "=&r"(t)
            :
            : "cc", "memory");
    } else {
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[wa], %[wb], [%[w]], #8\n\t"
            EDGEC_LANES_PAIR("2", "14", "12") EDGEC_LANES_PAIR("2", "30", "28")
            EDGEC_LANES_PAIR("2", "10", "8") EDGEC_LANES_PAIR("2", "26", "24")
            EDGEC_LANES_PAIR("2", "6", "4") EDGEC_LANES_PAIR("2", "22", "20")
            EDGEC_LANES_PAIR("2", "2", "0") EDGEC_LANES_PAIR("2", "18", "16")
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [lo0] "+r"(lo0), [hi0] "+r"(hi0), [lo1] "+r"(lo1), [hi1] "+r"(hi1), [w] "+r"(w), [x] "+r"(x),
              [n] "+r"(words), [wa] "=&r"(wa), [wb] "=&r"(wb), [xa] "=&r"(xa), [xb] "=&r"(xb), [t] "=&r"(t)
            :
            : "cc", "memory");
    }
    *s0 = (int64_t)(((uint64_t)hi0 << 32) | lo0);
    *s1 = (int64_t)(((uint64_t)hi1 << 32) | lo1);
#else
    int64_t t0 = 0, t1 = 0;
    const int step = 32 / bits;
    for (uint32_t i = 0; i < words; i++, w += 8, x += step) {
        const uint32_t wa = edgec_load32(w), wb = edgec_load32(w + 4);
        for (int k = 0; k < step; k++) {
            t0 += (int64_t)x[k] * edgec_weight_field(wa, k, bits);
            t1 += (int64_t)x[k] * edgec_weight_field(wb, k, bits);
        }
    }
    *s0 = t0;
    *s1 = t1;
#endif
}

#endif

#endif /* EDGEC_DOT_PACKED_H */
