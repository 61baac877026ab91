/* The dot products of Conv and FullyConnected over int8 weight rows, shared by edgec_conv.c
 * and edgec_conv_delta.c: two channels against a prepared pixel pair (edgec_im2col.h's
 * prepare), and four channels against one raw int8 column. kp (k_padded) is a multiple of 4.
 * Included after edgec_im2col.h (which wants EDGEC_COLUMN_K_MASK defined first).
 */
#ifndef EDGEC_CONV_SUMS_H
#define EDGEC_CONV_SUMS_H

#include "edgec_kernels.h"
#include "edgec_dot.h"
#include "edgec_im2col.h"

#if EDGEC_DSP

/* acc = {c0 p0, c0 p1, c1 p0, c1 p1}: int8 rows w0 (c0) and w1 (c1) against a prepared pair
 * (int16 lane pairs for SMLAD on DSP cores, x0 + x1 * 2^23 for SMLAL elsewhere). */
EDGEC_INLINE void pair_sums(const int8_t *w0, const int8_t *w1, const uint32_t *cols, uint32_t kp, int32_t acc[4])
{
    edgec_dot_2x2(w0, w1, cols, kp / 4u, acc);
}

/* acc[i] = the raw int8 column col dotted with the row at rows + i * stride, i < 4. */
EDGEC_INLINE void lone_sums(const int8_t *rows, uint32_t stride, const int8_t *col, uint32_t kp, int32_t acc[4])
{
    edgec_dot_1x4(rows, stride, col, kp / 4u, acc);
}

#else

EDGEC_INLINE void pair_sums(const int8_t *w0, const int8_t *w1, const uint32_t *cols, uint32_t kp, int32_t acc[4])
{
    int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0; /* [channel][pixel] */
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

EDGEC_INLINE void lone_sums(const int8_t *rows, uint32_t stride, const int8_t *col, uint32_t kp, int32_t acc[4])
{
    edgec_dot_1x4_s8(rows, stride, col, kp, acc);
}

#endif

#endif /* EDGEC_CONV_SUMS_H */
