/* Elementwise kernels: Add, Sub, Mul and PRelu with 4-D broadcasting, and table lookup
 * (Requantize, Clamp, Table). Input and output may be the same buffer when shapes match (in
 * place; the Helium paths load each vector before storing over it). */
#include "edgec_kernels.h"
#include "edgec_mve.h"

enum { EDGEC_ADD, EDGEC_SUB, EDGEC_MUL, EDGEC_PRELU };

EDGEC_INLINE int8_t combine(const edgec_binary_params *p, int8_t a, int8_t b, int op)
{
    int32_t raw;
    if (op == EDGEC_PRELU) { /* table1: the finished identity branch; below the zero point, x * alpha */
        const int32_t centered = a - p->input1_zero_point;
        if (centered >= 0) {
            return (int8_t)p->table1[(uint8_t)a];
        }
        raw = centered * (b - p->input2_zero_point);
    } else if (op == EDGEC_MUL) {
        raw = (a - p->input1_zero_point) * (b - p->input2_zero_point);
    } else {
        const int32_t x = p->table1[(uint8_t)a], y = p->table2[(uint8_t)b];
        raw = op == EDGEC_ADD ? x + y : x - y;
    }
    const int32_t scaled = edgec_mbqm(raw, p->output_multiplier, p->output_shift, EDGEC_SINGLE_ROUNDING);
    return edgec_clamp_s8(scaled + p->output_zero_point, p->activation_min, p->activation_max);
}

#if EDGEC_MVE
/* n contiguous elements of Add, Sub or Mul four lanes at a time (the last vector predicated):
 * Add/Sub gather each input's rescaled value from its table by the input byte (read as
 * uint8, the tables' order), Mul multiplies the centred inputs; then edgec_mve_mbqm, the zero
 * point and the clamp, as combine(). */
EDGEC_INLINE void mve_run(const edgec_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out, uint32_t n,
                          int op)
{
    const int32x4_t low = vdupq_n_s32(p->activation_min), high = vdupq_n_s32(p->activation_max);
    for (uint32_t i = 0; i < n; i += 4) {
        const mve_pred16_t lanes = vctp32q(n - i);
        int32x4_t raw;
        if (op == EDGEC_MUL) {
            const int32x4_t x = vsubq_n_s32(vldrbq_z_s32(a + i, lanes), p->input1_zero_point);
            const int32x4_t y = vsubq_n_s32(vldrbq_z_s32(b + i, lanes), p->input2_zero_point);
            raw = vmulq_s32(x, y);
        } else {
            const uint32x4_t ia = vldrbq_z_u32((const uint8_t *)a + i, lanes);
            const uint32x4_t ib = vldrbq_z_u32((const uint8_t *)b + i, lanes);
            const int32x4_t x = vldrwq_gather_shifted_offset_z_s32(p->table1, ia, lanes);
            const int32x4_t y = vldrwq_gather_shifted_offset_z_s32(p->table2, ib, lanes);
            raw = op == EDGEC_ADD ? vaddq_s32(x, y) : vsubq_s32(x, y);
        }
        const int32x4_t scaled = vaddq_n_s32(edgec_mve_mbqm(raw, p->output_multiplier, p->output_shift,
                                                            EDGEC_SINGLE_ROUNDING), p->output_zero_point);
        vstrbq_p_s32(out + i, vmaxq_s32(vminq_s32(scaled, high), low), lanes);
    }
}
#endif

/* The parameters are copied to a local first: stores through the int8_t output may alias
 * *params, and would otherwise force every parameter to be reloaded per element. */
EDGEC_INLINE void binary(const edgec_binary_params *params, const int8_t *a, const int8_t *b, int8_t *out, int op)
{
    const edgec_binary_params local = *params, *p = &local;
    const uint32_t *n = p->shape, *s1 = p->strides1, *s2 = p->strides2;
    for (uint32_t i0 = 0; i0 < n[0]; i0++) {
        for (uint32_t i1 = 0; i1 < n[1]; i1++) {
            for (uint32_t i2 = 0; i2 < n[2]; i2++) {
                const int8_t *x = a + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *y = b + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                if (s1[3] == 1 && s2[3] == 1) {
#if EDGEC_MVE
                    if (op != EDGEC_PRELU && edgec_mve_mbqm_vectorizes(p->output_shift, EDGEC_SINGLE_ROUNDING)) {
                        mve_run(p, x, y, out, n[3], op);
                        out += n[3];
                        continue;
                    }
#endif
                    for (uint32_t i3 = 0; i3 < n[3]; i3++) {
                        *out++ = combine(p, x[i3], y[i3], op);
                    }
                } else {
                    for (uint32_t i3 = 0; i3 < n[3]; i3++) {
                        *out++ = combine(p, x[i3 * s1[3]], y[i3 * s2[3]], op);
                    }
                }
            }
        }
    }
}

void edgec_add(const edgec_binary_params *p, const int8_t *a, const int8_t *b, int8_t *output)
{
    binary(p, a, b, output, EDGEC_ADD);
}

void edgec_sub(const edgec_binary_params *p, const int8_t *a, const int8_t *b, int8_t *output)
{
    binary(p, a, b, output, EDGEC_SUB);
}

void edgec_mul(const edgec_binary_params *p, const int8_t *a, const int8_t *b, int8_t *output)
{
    binary(p, a, b, output, EDGEC_MUL);
}

void edgec_prelu(const edgec_binary_params *p, const int8_t *x, const int8_t *alpha, int8_t *output)
{
    binary(p, x, alpha, output, EDGEC_PRELU);
}

/* On Helium, sixteen bytes a vector: the input bytes are the offsets of a byte gather
 * (VLDRB.U8 Q, [table, Q]); the last vector is predicated. */
void edgec_lookup(uint32_t size, const int8_t *table, const int8_t *input, int8_t *output)
{
#if EDGEC_MVE
    for (uint32_t i = 0; i < size; i += 16) {
        const mve_pred16_t lanes = vctp8q(size - i);
        const uint8x16_t offsets = vldrbq_z_u8((const uint8_t *)input + i, lanes);
        vstrbq_p_s8(output + i, vldrbq_gather_offset_z_s8(table, offsets, lanes), lanes);
    }
#else
    for (uint32_t i = 0; i < size; i++) {
        output[i] = table[(uint8_t)input[i]];
    }
#endif
}
