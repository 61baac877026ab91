/* The dot products of Conv and FullyConnected over int8 weight rows, shared by edgec_conv.c
 * and edgec_conv_delta.c: two channels against a prepared pixel pair, and four channels against
 * one lone column, each with the preparation it reads (edgec_dot.h: the offset-pair form on DSP
 * cores, whose rows are stored in that form too). kp (k_padded) is a multiple of 4.
 * Included after edgec_im2col.h (which wants EDGEC_COLUMN_K_MASK defined first).
 */
#ifndef EDGEC_CONV_SUMS_H
#define EDGEC_CONV_SUMS_H

#include "edgec_kernels.h"
#include "edgec_dot.h"
#include "edgec_im2col.h"

#if EDGEC_DSP_DOT

/* A pixel pair's columns in the form pair_sums reads (offset pairs on DSP cores, interleaved per
 * group: x0 first, x0 second, x1 first, x1 second; x0 + x1 * 2^23 per k elsewhere), with each
 * pixel's correction in corr (0 elsewhere). */
EDGEC_INLINE void prepare_pair(const int8_t *col0, const int8_t *col1, uint32_t kp, uint32_t *cols, int32_t corr[2])
{
    corr[0] = prepare_pairs(col0, kp, cols, 4);
    corr[1] = prepare_pairs(col1, kp, cols + 2, 4);
}

/* A lone pixel's column in the form lone_sums reads (offset pairs in out, 2 * kp bytes, on DSP
 * cores; the raw int8 column itself elsewhere), with its correction in *corr. */
EDGEC_INLINE const void *lone_column(const int8_t *col, uint32_t kp, uint32_t *out, int32_t *corr)
{
    *corr = prepare_pairs(col, kp, out, 2);
    return out;
}

/* A plain int8 row of kp weights turned in place into the form the sums read (the offset-pair
 * form on DSP cores, edgec_dot.h; unchanged elsewhere). */
EDGEC_INLINE void offset_pair_row(int8_t *row, uint32_t kp)
{
    for (uint32_t k = 0; k < kp; k += 4) {
        const uint32_t word = edgec_load32(row + k) ^ 0x00800080u;
        memcpy(row + k, &word, sizeof word);
    }
}

/* acc = {c0 p0, c0 p1, c1 p0, c1 p1}: rows w0 (c0) and w1 (c1) against a
 * prepared pair with its corrections corr. */
EDGEC_INLINE void pair_sums(const int8_t *w0, const int8_t *w1, const uint32_t *cols, uint32_t kp,
                            const int32_t corr[2], int32_t acc[4])
{
    acc[0] = acc[2] = corr[0];
    acc[1] = acc[3] = corr[1];
    edgec_dot_2x2(w0, w1, cols, kp / 4u, acc);
}

/* acc[i] = the lone column col (from lone_column, with its correction corr) dotted with the row
 * at rows + i * stride, i < 4. */
EDGEC_INLINE void lone_sums(const int8_t *rows, uint32_t stride, const void *col, uint32_t kp, int32_t corr,
                            int32_t acc[4])
{
    acc[0] = acc[1] = acc[2] = acc[3] = corr;
    edgec_dot_1x4(rows, stride, (const uint32_t *)col, kp / 4u, acc);
}

#else

EDGEC_INLINE void prepare_pair(const int8_t *col0, const int8_t *col1, uint32_t kp, uint32_t *cols, int32_t corr[2])
{
    prepare(col0, col1, kp, cols);
    corr[0] = corr[1] = 0;
}

EDGEC_INLINE const void *lone_column(const int8_t *col, uint32_t kp, uint32_t *out, int32_t *corr)
{
    (void)kp, (void)out;
    *corr = 0;
    return col;
}

EDGEC_INLINE void offset_pair_row(int8_t *row, uint32_t kp) { (void)row, (void)kp; }

EDGEC_INLINE void pair_sums(const int8_t *w0, const int8_t *w1, const uint32_t *cols, uint32_t kp,
                            const int32_t corr[2], int32_t acc[4])
{
    int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0; /* [channel][pixel] */
    (void)corr;
    if (kp <= EDGEC_LANE_CHUNK) { /* one chunk: no running sums to keep */
        int64_t s0, s1;
        edgec_dot_packed_2x2(w0, w1, (const int32_t *)cols, kp, &s0, &s1);
        split(s0, &acc[0], &acc[1]);
        split(s1, &acc[2], &acc[3]);
        return;
    }
    for (uint32_t start = 0; start < kp; start += EDGEC_LANE_CHUNK) {
        const uint32_t count = kp - start < EDGEC_LANE_CHUNK ? kp - start : EDGEC_LANE_CHUNK;
        int64_t s0, s1;
        edgec_dot_packed_2x2(w0 + start, w1 + start, (const int32_t *)cols + start, count, &s0, &s1);
        split_add(s0, &a00, &a01);
        split_add(s1, &a10, &a11);
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

EDGEC_INLINE void lone_sums(const int8_t *rows, uint32_t stride, const void *col, uint32_t kp, int32_t corr,
                            int32_t acc[4])
{
    (void)corr;
    edgec_dot_1x4_s8(rows, stride, (const int8_t *)col, kp, acc);
}

#endif

#endif /* EDGEC_CONV_SUMS_H */
