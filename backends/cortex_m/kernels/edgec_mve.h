/* Helium (MVE, Armv8.1-M: the Cortex-M55) dot products of int8 rows, for Conv and
 * FullyConnected. VMLADAVA.S8 multiplies sixteen int8 pairs and adds all sixteen products to a
 * scalar int32 accumulator; whole vectors load unpredicated and only the last partial vector of
 * a row is predicated (VCTP.8: lanes past k load as zero and add nothing). Exact int32 sums, the same as the scalar paths'.
 * EDGEC_MVE is 1 when the compiler targets MVE (__ARM_FEATURE_MVE), else 0 and nothing here is
 * defined (the host and older cores take the DSP or SWAR paths).
 */
#ifndef EDGEC_MVE_H
#define EDGEC_MVE_H

#include "edgec_arith.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define EDGEC_MVE 1
#include <arm_mve.h>

/* acc = {c0 p0, c0 p1, c1 p0, c1 p1}: rows w0 (c0), w1 (c1) against columns x0 (p0), x1 (p1), k bytes each. */
EDGEC_INLINE void edgec_mve_dot_2x2(const int8_t *w0, const int8_t *w1, const int8_t *x0, const int8_t *x1,
                                    uint32_t k, int32_t acc[4])
{
    int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
    uint32_t left = k;
    for (; left >= 16; left -= 16, x0 += 16, x1 += 16, w0 += 16, w1 += 16) {
        const int8x16_t p0 = vldrbq_s8(x0), p1 = vldrbq_s8(x1), r0 = vldrbq_s8(w0), r1 = vldrbq_s8(w1);
        a00 = vmladavaq_s8(a00, r0, p0);
        a01 = vmladavaq_s8(a01, r0, p1);
        a10 = vmladavaq_s8(a10, r1, p0);
        a11 = vmladavaq_s8(a11, r1, p1);
    }
    if (left) {
        const mve_pred16_t lanes = vctp8q(left);
        const int8x16_t p0 = vldrbq_z_s8(x0, lanes), p1 = vldrbq_z_s8(x1, lanes);
        const int8x16_t r0 = vldrbq_z_s8(w0, lanes), r1 = vldrbq_z_s8(w1, lanes);
        a00 = vmladavaq_s8(a00, r0, p0);
        a01 = vmladavaq_s8(a01, r0, p1);
        a10 = vmladavaq_s8(a10, r1, p0);
        a11 = vmladavaq_s8(a11, r1, p1);
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* acc[4 p + i] = column x_p (p < 2) dotted with the row at rows + i * stride, i < 4 (k bytes). */
EDGEC_INLINE void edgec_mve_dot_2x4(const int8_t *rows, uint32_t stride, const int8_t *x0, const int8_t *x1,
                                    uint32_t k, int32_t acc[8])
{
    const int8_t *w0 = rows, *w1 = rows + stride, *w2 = rows + 2 * stride, *w3 = rows + 3 * stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    uint32_t left = k;
    for (; left >= 16; left -= 16, x0 += 16, x1 += 16, w0 += 16, w1 += 16, w2 += 16, w3 += 16) {
        const int8x16_t p0 = vldrbq_s8(x0), p1 = vldrbq_s8(x1), r0 = vldrbq_s8(w0), r1 = vldrbq_s8(w1);
        a0 = vmladavaq_s8(a0, r0, p0);
        b0 = vmladavaq_s8(b0, r0, p1);
        a1 = vmladavaq_s8(a1, r1, p0);
        b1 = vmladavaq_s8(b1, r1, p1);
        const int8x16_t r2 = vldrbq_s8(w2), r3 = vldrbq_s8(w3);
        a2 = vmladavaq_s8(a2, r2, p0);
        b2 = vmladavaq_s8(b2, r2, p1);
        a3 = vmladavaq_s8(a3, r3, p0);
        b3 = vmladavaq_s8(b3, r3, p1);
    }
    if (left) {
        const mve_pred16_t lanes = vctp8q(left);
        const int8x16_t p0 = vldrbq_z_s8(x0, lanes), p1 = vldrbq_z_s8(x1, lanes);
        const int8x16_t r0 = vldrbq_z_s8(w0, lanes), r1 = vldrbq_z_s8(w1, lanes);
        const int8x16_t r2 = vldrbq_z_s8(w2, lanes), r3 = vldrbq_z_s8(w3, lanes);
        a0 = vmladavaq_s8(a0, r0, p0);
        b0 = vmladavaq_s8(b0, r0, p1);
        a1 = vmladavaq_s8(a1, r1, p0);
        b1 = vmladavaq_s8(b1, r1, p1);
        a2 = vmladavaq_s8(a2, r2, p0);
        b2 = vmladavaq_s8(b2, r2, p1);
        a3 = vmladavaq_s8(a3, r3, p0);
        b3 = vmladavaq_s8(b3, r3, p1);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    acc[4] = b0;
    acc[5] = b1;
    acc[6] = b2;
    acc[7] = b3;
}

/* acc[i] = the column col dotted with the row at rows + i * stride, i < 4 (k bytes). */
EDGEC_INLINE void edgec_mve_dot_1x4(const int8_t *rows, uint32_t stride, const int8_t *col, uint32_t k,
                                    int32_t acc[4])
{
    const int8_t *w0 = rows, *w1 = rows + stride, *w2 = rows + 2 * stride, *w3 = rows + 3 * stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t left = k;
    for (; left >= 16; left -= 16, col += 16, w0 += 16, w1 += 16, w2 += 16, w3 += 16) {
        const int8x16_t x = vldrbq_s8(col);
        a0 = vmladavaq_s8(a0, vldrbq_s8(w0), x);
        a1 = vmladavaq_s8(a1, vldrbq_s8(w1), x);
        a2 = vmladavaq_s8(a2, vldrbq_s8(w2), x);
        a3 = vmladavaq_s8(a3, vldrbq_s8(w3), x);
    }
    if (left) {
        const mve_pred16_t lanes = vctp8q(left);
        const int8x16_t x = vldrbq_z_s8(col, lanes);
        a0 = vmladavaq_s8(a0, vldrbq_z_s8(w0, lanes), x);
        a1 = vmladavaq_s8(a1, vldrbq_z_s8(w1, lanes), x);
        a2 = vmladavaq_s8(a2, vldrbq_z_s8(w2, lanes), x);
        a3 = vmladavaq_s8(a3, vldrbq_z_s8(w3, lanes), x);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
/* The fast output stage (edgec_requantize's, for stages FULL_RANGE and CLAMP) of channels
 * c .. c + count - 1 (count <= 4) at once: acc plus bias, VQRDMULH (double rounding; VQDMULH
 * for single) by the multiplier is the high word of x2 * m + 2^31 (+ 0), then the rounding
 * term, the sign nudge (double rounding) and the arithmetic right shift, clamped to the
 * activation range and stored as bytes. The channels' edgec_requant_t rows are gathered
 * three words apart. Every channel has its own row (o->per_channel). */
EDGEC_INLINE void edgec_mve_output_4(const edgec_outputs_t *o, int32x4_t acc, uint32_t c, uint32_t count,
                                     int8_t *out, int single)
{
    const mve_pred16_t lanes = vctp32q(count);
    const uint32x4_t rows = vmulq_n_u32(vidupq_n_u32(0u, 1), 3u);
    const int32_t *requant = (const int32_t *)(o->requant + c);
    const int32x4_t x = vaddq_s32(acc, vldrwq_z_s32(o->bias + c, lanes));
    const int32x4_t multiplier = vldrwq_gather_shifted_offset_z_s32(requant, rows, lanes);
    const int32x4_t right = vldrwq_gather_shifted_offset_z_s32(requant + 1, rows, lanes);
    const int32x4_t rounding = vldrwq_gather_shifted_offset_z_s32(requant + 2, rows, lanes);
    int32x4_t high = vaddq_s32(single ? vqdmulhq_s32(x, multiplier) : vqrdmulhq_s32(x, multiplier), rounding);
    if (!single) {
        high = vaddq_s32(high, vshrq_n_s32(x, 31));
    }
    const int32x4_t scaled = vshlq_s32(high, vnegq_s32(right));
    vstrbq_p_s32(out + c, vmaxq_s32(vminq_s32(scaled, vdupq_n_s32(o->high)), vdupq_n_s32(o->low)), lanes);
}
/* edgec_mbqm of four lanes with one multiplier and shift: double rounding is VQRDMULH (after
 * the left shift, shift >= 0) or VQRDMULH then the rounding divide by 2^-shift, half away from
 * zero (VRSHL rounds half up: one less for negative lanes moves their ties away from zero);
 * single rounding (shift <= -1 only, see edgec_mve_mbqm_vectorizes) is VQDMULH, the product's
 * floor / 2^31, then VRSHL's half-up rounding shift: the nested floors of edgec_mbqm_single. */
EDGEC_INLINE int edgec_mve_mbqm_vectorizes(int32_t shift, int single)
{
    return !single || shift <= -1;
}

EDGEC_INLINE int32x4_t edgec_mve_mbqm(int32x4_t x, int32_t multiplier, int32_t shift, int single)
{
    if (single) {
        return vrshlq_s32(vqdmulhq_n_s32(x, multiplier), vdupq_n_s32(shift));
    }
    if (shift >= 0) {
        return vqrdmulhq_n_s32(vshlq_s32(x, vdupq_n_s32(shift)), multiplier);
    }
    const int32x4_t high = vqrdmulhq_n_s32(x, multiplier);
    return vrshlq_s32(vaddq_s32(high, vshrq_n_s32(high, 31)), vdupq_n_s32(shift));
}
#else
#define EDGEC_MVE 0
#endif

#endif /* EDGEC_MVE_H */
