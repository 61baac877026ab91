/* The innermost dot-product loops of Conv/FullyConnected, in Thumb-2 assembly on Arm (where
 * GCC's register allocation spills) and in plain C elsewhere; both compute the same sums.
 *
 * DSP (SMLAD) forms, columns prepared as int16 lane pairs (see edgec_conv.c):
 *   edgec_dot_2x2: two channels x two pixels, `groups` groups of four k; columns interleaved
 *                  per group (x0[0,2] x0[1,3] x1[0,2] x1[1,3]). 18 instructions per 16 MACs.
 *   edgec_dot_1x4: four channels x one pixel of raw int8 (no preparation). 25 per 16 MACs.
 *   edgec_dot_1x4_blocked: the same over weights blocked by four channels (see
 *                  edgec_conv.c), eight k per iteration. 43 per 32 MACs.
 * Scalar forms (no DSP extension):
 *   edgec_dot_packed_2x2: two channels x two pixels packed x0 + x1 * 2^23 per k, SMLAL into
 *                  two 64-bit two-lane sums; `count` k (<= 256 per call). 11 per 8 MACs.
 *   edgec_dot_1x4_s8: four channels x one pixel of raw int8. 20 per 8 MACs.
 * The loops run at least once: `groups` >= 1, and `count` is a positive multiple of 4.
 */
#ifndef EDGEC_DOT_H
#define EDGEC_DOT_H

#include "edgec_arith.h"

#if EDGEC_DSP

EDGEC_INLINE void edgec_dot_2x2(const int8_t *w0, const int8_t *w1, const uint32_t *x, uint32_t groups, int32_t acc[4])
{
    int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    uint32_t wa, wb, x0, x1, x2, x3;
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[x0], %[x1], [%[x]], #8\n\t"
        "ldrd %[x2], %[x3], [%[x]], #8\n\t"
        "ldr %[wa], [%[w0]], #4\n\t"
        "sxtb16 %[wb], %[wa]\n\t"
        "smlad %[a00], %[wb], %[x0], %[a00]\n\t"
        "smlad %[a01], %[wb], %[x2], %[a01]\n\t"
        "sxtb16 %[wa], %[wa], ror #8\n\t"
        "smlad %[a00], %[wa], %[x1], %[a00]\n\t"
        "smlad %[a01], %[wa], %[x3], %[a01]\n\t"
        "ldr %[wa], [%[w1]], #4\n\t"
        "sxtb16 %[wb], %[wa]\n\t"
        "smlad %[a10], %[wb], %[x0], %[a10]\n\t"
        "smlad %[a11], %[wb], %[x2], %[a11]\n\t"
        "sxtb16 %[wa], %[wa], ror #8\n\t"
        "smlad %[a10], %[wa], %[x1], %[a10]\n\t"
        "smlad %[a11], %[wa], %[x3], %[a11]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [w0] "+r"(w0), [w1] "+r"(w1),
          [x] "+r"(x), [n] "+r"(groups), [wa] "=&r"(wa), [wb] "=&r"(wb), [x0] "=&r"(x0), [x1] "=&r"(x1),
          [x2] "=&r"(x2), [x3] "=&r"(x3)
        :
        : "cc", "memory");
#else
    for (uint32_t g = 0; g < groups; g++, x += 4, w0 += 4, w1 += 4) {
        const uint32_t wa = edgec_load32(w0), wb = edgec_load32(w1);
        a00 = edgec_smlad(edgec_sxtb16_ror8(wa), x[1], edgec_smlad(edgec_sxtb16(wa), x[0], a00));
        a01 = edgec_smlad(edgec_sxtb16_ror8(wa), x[3], edgec_smlad(edgec_sxtb16(wa), x[2], a01));
        a10 = edgec_smlad(edgec_sxtb16_ror8(wb), x[1], edgec_smlad(edgec_sxtb16(wb), x[0], a10));
        a11 = edgec_smlad(edgec_sxtb16_ror8(wb), x[3], edgec_smlad(edgec_sxtb16(wb), x[2], a11));
    }
#endif
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

#if !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
/* The C form of one group of four k for four channels (rows at w0..w3): *ai += x . wi. */
EDGEC_INLINE void group_1x4(const int8_t *x, const int8_t *w0, const int8_t *w1, const int8_t *w2, const int8_t *w3,
                            int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    const uint32_t xv = edgec_load32(x), x02 = edgec_sxtb16(xv), x13 = edgec_sxtb16_ror8(xv);
    const uint32_t v0 = edgec_load32(w0), v1 = edgec_load32(w1), v2 = edgec_load32(w2), v3 = edgec_load32(w3);
    *a0 = edgec_smlad(edgec_sxtb16_ror8(v0), x13, edgec_smlad(edgec_sxtb16(v0), x02, *a0));
    *a1 = edgec_smlad(edgec_sxtb16_ror8(v1), x13, edgec_smlad(edgec_sxtb16(v1), x02, *a1));
    *a2 = edgec_smlad(edgec_sxtb16_ror8(v2), x13, edgec_smlad(edgec_sxtb16(v2), x02, *a2));
    *a3 = edgec_smlad(edgec_sxtb16_ror8(v3), x13, edgec_smlad(edgec_sxtb16(v3), x02, *a3));
}
#endif

EDGEC_INLINE void edgec_dot_1x4(const int8_t *w0, uint32_t stride, const int8_t *x, uint32_t groups, int32_t acc[4])
{
    const int8_t *w1 = w0 + stride, *w2 = w1 + stride, *w3 = w2 + stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    uint32_t wa, wb, x02, x13;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[x13], [%[x]], #4\n\t"
        "sxtb16 %[x02], %[x13]\n\t"
        "sxtb16 %[x13], %[x13], ror #8\n\t"
        "ldr %[wa], [%[w0]], #4\n\t"
        "sxtb16 %[wb], %[wa]\n\t"
        "smlad %[a0], %[wb], %[x02], %[a0]\n\t"
        "sxtb16 %[wa], %[wa], ror #8\n\t"
        "smlad %[a0], %[wa], %[x13], %[a0]\n\t"
        "ldr %[wa], [%[w1]], #4\n\t"
        "sxtb16 %[wb], %[wa]\n\t"
        "smlad %[a1], %[wb], %[x02], %[a1]\n\t"
        "sxtb16 %[wa], %[wa], ror #8\n\t"
        "smlad %[a1], %[wa], %[x13], %[a1]\n\t"
        "ldr %[wa], [%[w2]], #4\n\t"
        "sxtb16 %[wb], %[wa]\n\t"
        "smlad %[a2], %[wb], %[x02], %[a2]\n\t"
        "sxtb16 %[wa], %[wa], ror #8\n\t"
        "smlad %[a2], %[wa], %[x13], %[a2]\n\t"
        "ldr %[wa], [%[w3]], #4\n\t"
        "sxtb16 %[wb], %[wa]\n\t"
        "smlad %[a3], %[wb], %[x02], %[a3]\n\t"
        "sxtb16 %[wa], %[wa], ror #8\n\t"
        "smlad %[a3], %[wa], %[x13], %[a3]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1),
          [w2] "+r"(w2), [w3] "+r"(w3), [x] "+r"(x), [n] "+r"(groups), [wa] "=&r"(wa), [wb] "=&r"(wb),
          [x02] "=&r"(x02), [x13] "=&r"(x13)
        :
        : "cc", "memory");
#else
    for (uint32_t g = 0; g < groups; g++, x += 4, w0 += 4, w1 += 4, w2 += 4, w3 += 4) {
        group_1x4(x, w0, w1, w2, w3, &a0, &a1, &a2, &a3);
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* acc[i] += the raw int8 column x dotted with channel i of a block of four channels laid out
 * [k / 4][channel][4] (one block of backends/cortex_m/layers.py's blocked_rows), over
 * 8 * pairs k (pairs >= 1). */
EDGEC_INLINE void edgec_dot_1x4_blocked(const int8_t *w, const int8_t *x, uint32_t pairs, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    uint32_t xa, xb, x02, x13, wa, wb;
#define EDGEC_BLOCK_CHANNELS(acc0, acc1)                   \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                    \
    "sxtb16 %[xa], %[wa]\n\t"                              \
    "smlad %[" acc0 "], %[xa], %[x02], %[" acc0 "]\n\t"    \
    "sxtb16 %[wa], %[wa], ror #8\n\t"                      \
    "smlad %[" acc0 "], %[wa], %[x13], %[" acc0 "]\n\t"    \
    "sxtb16 %[xa], %[wb]\n\t"                              \
    "smlad %[" acc1 "], %[xa], %[x02], %[" acc1 "]\n\t"    \
    "sxtb16 %[wb], %[wb], ror #8\n\t"                      \
    "smlad %[" acc1 "], %[wb], %[x13], %[" acc1 "]\n\t"
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[xa], %[xb], [%[x]], #8\n\t"
        "sxtb16 %[x02], %[xa]\n\t"
        "sxtb16 %[x13], %[xa], ror #8\n\t"
        EDGEC_BLOCK_CHANNELS("a0", "a1")
        EDGEC_BLOCK_CHANNELS("a2", "a3")
        "sxtb16 %[x02], %[xb]\n\t"
        "sxtb16 %[x13], %[xb], ror #8\n\t"
        EDGEC_BLOCK_CHANNELS("a0", "a1")
        EDGEC_BLOCK_CHANNELS("a2", "a3")
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [x] "+r"(x), [n] "+r"(pairs),
          [xa] "=&r"(xa), [xb] "=&r"(xb), [x02] "=&r"(x02), [x13] "=&r"(x13), [wa] "=&r"(wa), [wb] "=&r"(wb)
        :
        : "cc", "memory");
#undef EDGEC_BLOCK_CHANNELS
#else
    for (uint32_t g = 0; g < 2 * pairs; g++, x += 4, w += 16) {
        group_1x4(x, w, w + 4, w + 8, w + 12, &a0, &a1, &a2, &a3);
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
