/* BatchMatMul (TFLite BATCH_MATMUL): per batch, out[i][j] = MBQM(sum_k (a[i][k] - za)(b[k][j] - zb))
 * + zo, clamped. Operands are read through element strides, so a transposed operand (adj_x,
 * adj_y) or a broadcast batch (stride 0) needs no copy. Exact int32 accumulation, as TFLM;
 * the generic requantization stage (edgec_mbqm). */
#include "edgec_kernels.h"

void edgec_batch_matmul(const edgec_batch_matmul_params *params, const int8_t *a, const int8_t *b, int8_t *output)
{
    const edgec_batch_matmul_params local = *params, *p = &local;
    for (uint32_t b0 = 0; b0 < p->batches[0]; b0++) {
        for (uint32_t b1 = 0; b1 < p->batches[1]; b1++) {
            for (uint32_t b2 = 0; b2 < p->batches[2]; b2++) {
                const int8_t *left = a + b0 * p->a_batch[0] + b1 * p->a_batch[1] + b2 * p->a_batch[2];
                const int8_t *right = b + b0 * p->b_batch[0] + b1 * p->b_batch[1] + b2 * p->b_batch[2];
                for (uint32_t i = 0; i < p->rows; i++) {
                    for (uint32_t j = 0; j < p->columns; j++) {
                        const int8_t *x = left + i * p->a_row, *y = right + j * p->b_column;
                        int32_t acc = 0;
                        for (uint32_t k = 0; k < p->depth; k++, x += p->a_depth, y += p->b_depth) {
                            acc += (*x - p->input1_zero_point) * (*y - p->input2_zero_point);
                        }
                        const int32_t scaled = edgec_mbqm(acc, p->multiplier, p->shift, EDGEC_SINGLE_ROUNDING);
                        *output++ = edgec_clamp_s8(scaled + p->output_zero_point, p->activation_min,
                                                   p->activation_max);
                    }
                }
            }
        }
    }
}
