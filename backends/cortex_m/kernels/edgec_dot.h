/* The innermost dot-product loops of Conv/FullyConnected, in Thumb-2 assembly on Arm (where
 * GCC's register allocation spills) and in plain C elsewhere; both compute the same sums.
 *
 * DSP (SMLAD) forms read int8 weights in the offset-pair form, one SXTB16 per four weights.
 * Each group of four k of a row, [w0 w1 w2 w3], is stored [w0 + 128, w1, w2 + 128, w3]
 * (backends/cortex_m/conv_rows.py), so that each 16-bit half h of the raw word
 * reads as the int16 256 * w1 + w0 + 128, and t = SXTB16(word, ror 8) holds [w1, w3]. Against
 * a column prepared as edgec_im2col.h's prepare_pairs does, first = [x0, x2] and second =
 * [x1 - 128 - 256 x0, ...], two SMLAD give per half
 *     h * x0 + t * (x1 - 128 - 256 x0) = w0 x0 + w1 x1 + 128 x0 - 128 w1.
 * The 128 x0 terms are the column's correction (prepare_pairs returns it; the sums start from
 * it), the 128 w1 terms are folded into the bias offline; int32 sums wrap exactly.
 *   edgec_dot_2x2: two channels x two pixels, `groups` groups of four k; columns interleaved
 *                  per group (x0 first, x0 second, x1 first, x1 second); four groups a pass.
 *                  14 per 16 MACs, and 2 per pass.
 *   edgec_dot_1x4: four channels x one prepared pixel. 19 per 16 MACs.
 *   edgec_dot_1x4_blocked: four channels blocked (see edgec_conv.c) x one raw int8 column,
 *                  prepared as it is read, eight k a pass, two passes a loop. 36 per 32 MACs.
 * Scalar forms (no DSP extension), over plain int8 rows:
 *   edgec_dot_packed_2x2: two channels x two pixels packed x0 + x1 * 2^23 per k, SMLAL into
 *                  two 64-bit two-lane sums; `count` k (<= 256 per call). 11 per 8 MACs.
 *   edgec_dot_packed_2x4: the same pixel pair against four channels blocked [k][4] (see
 *                  edgec_conv.c). 36 per 32 MACs.
 *   edgec_dot_1x4_s8: four channels x one pixel of raw int8. 20 per 8 MACs.
 *   edgec_dot_1x4_blocked_s8: four channels blocked [k][4] x one pixel of raw int8. 20 per
 *                  8 MACs, one pointer walking the block.
 * The loops run at least once: `groups` >= 1, and `count` is a positive multiple of 4. The
 * DSP forms add to the sums in acc (the corrections, on entry).
 */
#ifndef EDGEC_DOT_H
#define EDGEC_DOT_H

#include "edgec_arith.h"

#if EDGEC_DSP_DOT

/* One group of four k of edgec_dot_2x2 in Thumb-2 (operand names shared with
 * edgec_pair_channels.h): columns at x (four words a group), rows at w0 and w1, wa scratch. */
#define EDGEC_DOT_2X2_GROUP                                \
    "ldrd %[x0], %[x1], [%[x]], #8\n\t"                    \
    "ldrd %[x2], %[x3], [%[x]], #8\n\t"                    \
    "ldr %[wa], [%[w0]], #4\n\t"                           \
    "smlad %[a00], %[wa], %[x0], %[a00]\n\t"               \
    "smlad %[a01], %[wa], %[x2], %[a01]\n\t"               \
    "sxtb16 %[wa], %[wa], ror #8\n\t"                      \
    "smlad %[a00], %[wa], %[x1], %[a00]\n\t"               \
    "smlad %[a01], %[wa], %[x3], %[a01]\n\t"               \
    "ldr %[wa], [%[w1]], #4\n\t"                           \
    "smlad %[a10], %[wa], %[x0], %[a10]\n\t"               \
    "smlad %[a11], %[wa], %[x2], %[a11]\n\t"               \
    "sxtb16 %[wa], %[wa], ror #8\n\t"                      \
    "smlad %[a10], %[wa], %[x1], %[a10]\n\t"               \
    "smlad %[a11], %[wa], %[x3], %[a11]\n\t"

/* Every group of edgec_dot_2x2, four per pass: on entry n holds the passes, ceil(groups / 4),
 * and wa groups % 4; TBB enters the first pass at the group that leaves groups % 4 of it to run
 * (all four when 0). Uses labels 4 to 8. */
#define EDGEC_DOT_2X2_GROUPS                                                       \
    "tbb [pc, %[wa]]\n\t"                                                          \
    "8:\n\t"                                                                       \
    ".byte (4f - 8b) / 2, (7f - 8b) / 2, (6f - 8b) / 2, (5f - 8b) / 2\n\t"          \
    "4:\n\t" EDGEC_DOT_2X2_GROUP                                                   \
    "5:\n\t" EDGEC_DOT_2X2_GROUP                                                   \
    "6:\n\t" EDGEC_DOT_2X2_GROUP                                                   \
    "7:\n\t" EDGEC_DOT_2X2_GROUP                                                   \
    "subs %[n], %[n], #1\n\t"                                                      \
    "bne 4b\n\t"

/* The C form of one group for one channel: acc + the group's offset-pair sum. */
EDGEC_INLINE int32_t edgec_pair_group(uint32_t word, uint32_t first, uint32_t second, int32_t acc)
{
    return edgec_smlad(edgec_sxtb16_ror8(word), second, edgec_smlad(word, first, acc));
}

EDGEC_INLINE void edgec_dot_2x2(const int8_t *w0, const int8_t *w1, const uint32_t *x, uint32_t groups, int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    uint32_t n = (groups + 3u) >> 2, wa = groups & 3u, x0, x1, x2, x3;
    __asm__ volatile(
        EDGEC_DOT_2X2_GROUPS
        : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [w0] "+r"(w0), [w1] "+r"(w1),
          [x] "+r"(x), [n] "+r"(n), [wa] "+r"(wa), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2),
          [x3] "=&r"(x3)
        :
        : "cc", "memory");
#else
    for (uint32_t g = 0; g < groups; g++, x += 4, w0 += 4, w1 += 4) {
        const uint32_t wa = edgec_load32(w0), wb = edgec_load32(w1);
        a00 = edgec_pair_group(wa, x[0], x[1], a00);
        a01 = edgec_pair_group(wa, x[2], x[3], a01);
        a10 = edgec_pair_group(wb, x[0], x[1], a10);
        a11 = edgec_pair_group(wb, x[2], x[3], a11);
    }
#endif
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* acc[i] += the prepared column x (two words per group) dotted with the row at w0 + i * stride. */
EDGEC_INLINE void edgec_dot_1x4(const int8_t *w0, uint32_t stride, const uint32_t *x, uint32_t groups, int32_t acc[4])
{
    const int8_t *w1 = w0 + stride, *w2 = w1 + stride, *w3 = w2 + stride;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    uint32_t wa, xf, xs;
#define EDGEC_LONE_CHANNEL(row, sum)                       \
    "ldr %[wa], [%[" row "]], #4\n\t"                      \
    "smlad %[" sum "], %[wa], %[xf], %[" sum "]\n\t"       \
    "sxtb16 %[wa], %[wa], ror #8\n\t"                      \
    "smlad %[" sum "], %[wa], %[xs], %[" sum "]\n\t"
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[xf], %[xs], [%[x]], #8\n\t"
        EDGEC_LONE_CHANNEL("w0", "a0")
        EDGEC_LONE_CHANNEL("w1", "a1")
        EDGEC_LONE_CHANNEL("w2", "a2")
        EDGEC_LONE_CHANNEL("w3", "a3")
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1),
          [w2] "+r"(w2), [w3] "+r"(w3), [x] "+r"(x), [n] "+r"(groups), [wa] "=&r"(wa), [xf] "=&r"(xf),
          [xs] "=&r"(xs)
        :
        : "cc", "memory");
#undef EDGEC_LONE_CHANNEL
#else
    for (uint32_t g = 0; g < groups; g++, x += 2, w0 += 4, w1 += 4, w2 += 4, w3 += 4) {
        a0 = edgec_pair_group(edgec_load32(w0), x[0], x[1], a0);
        a1 = edgec_pair_group(edgec_load32(w1), x[0], x[1], a1);
        a2 = edgec_pair_group(edgec_load32(w2), x[0], x[1], a2);
        a3 = edgec_pair_group(edgec_load32(w3), x[0], x[1], a3);
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* acc[i] += the raw int8 column x dotted with channel i of a block of four channels laid out
 * [k / 4][channel][4] (one block of backends/cortex_m/conv_rows.py's blocked_rows), over
 * 8 * pairs k (pairs >= 1): the column turned into offset pairs as it is read (no scratch), acc
 * starting from its correction (edgec_pair_correction). */
EDGEC_INLINE void edgec_dot_1x4_blocked(const int8_t *w, const int8_t *x, uint32_t pairs, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    uint32_t xa, xb, first, wa, wb;
    /* one group of four k: first = [x0, x2] of X, X becomes the second word */
#define EDGEC_BLOCK_PREPARE(X)                             \
    "sxtb16 %[first], %[" X "]\n\t"                        \
    "rev16 %[" X "], %[" X "]\n\t"                         \
    "eor %[" X "], %[" X "], %[flip]\n\t"
#define EDGEC_BLOCK_CHANNELS(X, acc0, acc1)                \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                    \
    "smlad %[" acc0 "], %[wa], %[first], %[" acc0 "]\n\t"  \
    "sxtb16 %[wa], %[wa], ror #8\n\t"                      \
    "smlad %[" acc0 "], %[wa], %[" X "], %[" acc0 "]\n\t"  \
    "smlad %[" acc1 "], %[wb], %[first], %[" acc1 "]\n\t"  \
    "sxtb16 %[wb], %[wb], ror #8\n\t"                      \
    "smlad %[" acc1 "], %[wb], %[" X "], %[" acc1 "]\n\t"
    /* one pass: eight k of the column */
#define EDGEC_BLOCK_PASS                                   \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                    \
    EDGEC_BLOCK_PREPARE("xa")                              \
    EDGEC_BLOCK_CHANNELS("xa", "a0", "a1")                 \
    EDGEC_BLOCK_CHANNELS("xa", "a2", "a3")                 \
    EDGEC_BLOCK_PREPARE("xb")                              \
    EDGEC_BLOCK_CHANNELS("xb", "a0", "a1")                 \
    EDGEC_BLOCK_CHANNELS("xb", "a2", "a3")
    /* two passes of eight k a loop: n = ceil(pairs / 2), an odd count entering at the second */
    __asm__ volatile(
        "lsrs %[n], %[n], #1\n\t"
        "bcc 1f\n\t"
        "adds %[n], %[n], #1\n\t"
        "b 3f\n\t"
        "1:\n\t"
        EDGEC_BLOCK_PASS
        "3:\n\t"
        EDGEC_BLOCK_PASS
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [x] "+r"(x), [n] "+r"(pairs),
          [xa] "=&r"(xa), [xb] "=&r"(xb), [first] "=&r"(first), [wa] "=&r"(wa), [wb] "=&r"(wb)
        : [flip] "r"(EDGEC_PAIR_SECOND_FLIP)
        : "cc", "memory");
#undef EDGEC_BLOCK_PASS
#undef EDGEC_BLOCK_PREPARE
#undef EDGEC_BLOCK_CHANNELS
#else
    for (uint32_t g = 0; g < 2 * pairs; g++, x += 4, w += 16) {
        const uint32_t word = edgec_load32(x), first = edgec_pair_first(word), second = edgec_pair_second(word);
        a0 = edgec_pair_group(edgec_load32(w), first, second, a0);
        a1 = edgec_pair_group(edgec_load32(w + 4), first, second, a1);
        a2 = edgec_pair_group(edgec_load32(w + 8), first, second, a2);
        a3 = edgec_pair_group(edgec_load32(w + 12), first, second, a3);
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

#else /* no DSP extension */

/* *s0 = sum_k x[k] * w0[k], *s1 = sum_k x[k] * w1[k] over k < count. count is a positive
 * multiple of 4 (k_padded is, and so is every chunk of it: edgec_conv.c). */
EDGEC_INLINE void edgec_dot_packed_2x2(const int8_t *w0, const int8_t *w1, const int32_t *x, uint32_t count,
                                       int64_t *s0, int64_t *s1)
{
#if defined(__arm__) && defined(__thumb2__)
    uint32_t lo0 = 0, hi0 = 0, lo1 = 0, hi1 = 0, pairs = count >> 1;
    int32_t xa, xb, wa, wb;
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[xa], %[xb], [%[x]], #8\n\t"
        "ldrsb %[wa], [%[w0]], #1\n\t"
        "ldrsb %[wb], [%[w1]], #1\n\t"
        "smlal %[lo0], %[hi0], %[xa], %[wa]\n\t"
        "smlal %[lo1], %[hi1], %[xa], %[wb]\n\t"
        "ldrsb %[wa], [%[w0]], #1\n\t"
        "ldrsb %[wb], [%[w1]], #1\n\t"
        "smlal %[lo0], %[hi0], %[xb], %[wa]\n\t"
        "smlal %[lo1], %[hi1], %[xb], %[wb]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [lo0] "+r"(lo0), [hi0] "+r"(hi0), [lo1] "+r"(lo1), [hi1] "+r"(hi1), [w0] "+r"(w0), [w1] "+r"(w1),
          [x] "+r"(x), [n] "+r"(pairs), [xa] "=&r"(xa), [xb] "=&r"(xb), [wa] "=&r"(wa), [wb] "=&r"(wb)
        :
        : "cc", "memory");
    const int64_t t0 = (int64_t)(((uint64_t)hi0 << 32) | lo0), t1 = (int64_t)(((uint64_t)hi1 << 32) | lo1);
#else
    int64_t t0 = 0, t1 = 0;
    for (uint32_t k = 0; k < count; k++) {
        t0 += (int64_t)x[k] * w0[k];
        t1 += (int64_t)x[k] * w1[k];
    }
#endif
    *s0 = t0;
    *s1 = t1;
}

/* One packed k (in register XV) against a block's four weights at w, post-incremented. */
#define EDGEC_PACKED_K(XV)                                 \
    "ldrsb %[wv], [%[w]], #1\n\t"                          \
    "smlal %[lo0], %[hi0], %[" XV "], %[wv]\n\t"           \
    "ldrsb %[wv], [%[w]], #1\n\t"                          \
    "smlal %[lo1], %[hi1], %[" XV "], %[wv]\n\t"           \
    "ldrsb %[wv], [%[w]], #1\n\t"                          \
    "smlal %[lo2], %[hi2], %[" XV "], %[wv]\n\t"           \
    "ldrsb %[wv], [%[w]], #1\n\t"                          \
    "smlal %[lo3], %[hi3], %[" XV "], %[wv]\n\t"

/* The loop of edgec_dot_packed_2x4 in Thumb-2 (operand names shared with
 * edgec_block_channels.h): n passes of four k, the packed inputs at x (two a LDRD, into xa and
 * xb), the block at w, the sums in lo0:hi0 .. lo3:hi3. Uses label 1. */
#define EDGEC_PACKED_2X4_PASSES                            \
    "1:\n\t"                                               \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                    \
    EDGEC_PACKED_K("xa") EDGEC_PACKED_K("xb")              \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                    \
    EDGEC_PACKED_K("xa") EDGEC_PACKED_K("xb")              \
    "subs %[n], %[n], #1\n\t"                              \
    "bne 1b\n\t"

/* s[i] = the two-lane sum of pixel pair x (x0 + x1 * 2^23 per k) with channel i of a block of
 * four channels laid out [k][4], over count k (<= 256, a positive multiple of 4). */
EDGEC_INLINE void edgec_dot_packed_2x4(const int8_t *w, const int32_t *x, uint32_t count, int64_t s[4])
{
#if defined(__arm__) && defined(__thumb2__)
    uint32_t lo0 = 0, hi0 = 0, lo1 = 0, hi1 = 0, lo2 = 0, hi2 = 0, lo3 = 0, hi3 = 0, n = count >> 2;
    int32_t xa, xb, wv;
    __asm__ volatile(
        EDGEC_PACKED_2X4_PASSES
        : [lo0] "+r"(lo0), [hi0] "+r"(hi0), [lo1] "+r"(lo1), [hi1] "+r"(hi1), [lo2] "+r"(lo2), [hi2] "+r"(hi2),
          [lo3] "+r"(lo3), [hi3] "+r"(hi3), [w] "+r"(w), [x] "+r"(x), [n] "+r"(n), [xa] "=&r"(xa), [xb] "=&r"(xb),
          [wv] "=&r"(wv)
        :
        : "cc", "memory");
    s[0] = (int64_t)(((uint64_t)hi0 << 32) | lo0);
    s[1] = (int64_t)(((uint64_t)hi1 << 32) | lo1);
    s[2] = (int64_t)(((uint64_t)hi2 << 32) | lo2);
    s[3] = (int64_t)(((uint64_t)hi3 << 32) | lo3);
#else
    int64_t t[4] = {0, 0, 0, 0};
    for (uint32_t k = 0; k < count; k++, w += 4) {
        for (uint32_t i = 0; i < 4; i++) {
            t[i] += (int64_t)x[k] * w[i];
        }
    }
    for (uint32_t i = 0; i < 4; i++) {
        s[i] = t[i];
    }
#endif
}

/* acc[i] = sum_k x[k] * w[k][i] over k < count (a positive multiple of 4) for four channels
 * blocked [k][4]. */
EDGEC_INLINE void edgec_dot_1x4_blocked_s8(const int8_t *w, const int8_t *x, uint32_t count, int32_t acc[4])
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#if defined(__arm__) && defined(__thumb2__)
    uint32_t pairs = count >> 1;
    int32_t xv, t;
#define EDGEC_BLOCKED_K                                    \
    "ldrsb %[xv], [%[x]], #1\n\t"                          \
    "ldrsb %[t], [%[w]], #1\n\t"                           \
    "mla %[a0], %[xv], %[t], %[a0]\n\t"                    \
    "ldrsb %[t], [%[w]], #1\n\t"                           \
    "mla %[a1], %[xv], %[t], %[a1]\n\t"                    \
    "ldrsb %[t], [%[w]], #1\n\t"                           \
    "mla %[a2], %[xv], %[t], %[a2]\n\t"                    \
    "ldrsb %[t], [%[w]], #1\n\t"                           \
    "mla %[a3], %[xv], %[t], %[a3]\n\t"
    __asm__ volatile(
        "1:\n\t"
        EDGEC_BLOCKED_K EDGEC_BLOCKED_K
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [x] "+r"(x), [n] "+r"(pairs),
          [xv] "=&r"(xv), [t] "=&r"(t)
        :
        : "cc", "memory");
#undef EDGEC_BLOCKED_K
#else
    for (uint32_t k = 0; k < count; k++, w += 4) {
        const int32_t v = x[k];
        a0 += v * w[0];
        a1 += v * w[1];
        a2 += v * w[2];
        a3 += v * w[3];
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* acc[i] = sum_k x[k] * (w0 + i * stride)[k] over k < count, i < 4. count is a positive
 * multiple of 4 (it is k_padded). */
EDGEC_INLINE void edgec_dot_1x4_s8(const int8_t *w0, uint32_t stride, const int8_t *x, uint32_t count, int32_t acc[4])
{
    const int8_t *w1 = w0 + stride, *w2 = w1 + stride, *w3 = w2 + stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#if defined(__arm__) && defined(__thumb2__)
    uint32_t pairs = count >> 1;
    int32_t xv, t;
    __asm__ volatile(
        "1:\n\t"
        "ldrsb %[xv], [%[x]], #1\n\t"
        "ldrsb %[t], [%[w0]], #1\n\t"
        "mla %[a0], %[xv], %[t], %[a0]\n\t"
        "ldrsb %[t], [%[w1]], #1\n\t"
        "mla %[a1], %[xv], %[t], %[a1]\n\t"
        "ldrsb %[t], [%[w2]], #1\n\t"
        "mla %[a2], %[xv], %[t], %[a2]\n\t"
        "ldrsb %[t], [%[w3]], #1\n\t"
        "mla %[a3], %[xv], %[t], %[a3]\n\t"
        "ldrsb %[xv], [%[x]], #1\n\t"
        "ldrsb %[t], [%[w0]], #1\n\t"
        "mla %[a0], %[xv], %[t], %[a0]\n\t"
        "ldrsb %[t], [%[w1]], #1\n\t"
        "mla %[a1], %[xv], %[t], %[a1]\n\t"
        "ldrsb %[t], [%[w2]], #1\n\t"
        "mla %[a2], %[xv], %[t], %[a2]\n\t"
        "ldrsb %[t], [%[w3]], #1\n\t"
        "mla %[a3], %[xv], %[t], %[a3]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1),
          [w2] "+r"(w2), [w3] "+r"(w3), [x] "+r"(x), [n] "+r"(pairs), [xv] "=&r"(xv), [t] "=&r"(t)
        :
        : "cc", "memory");
#else
    for (uint32_t k = 0; k < count; k++) {
        const int32_t v = x[k];
        a0 += v * w0[k];
        a1 += v * w1[k];
        a2 += v * w2[k];
        a3 += v * w3[k];
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

#endif

#endif /* EDGEC_DOT_H */
