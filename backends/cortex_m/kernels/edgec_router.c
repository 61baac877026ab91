/* Router: the condition of a branch (edgec::Router). The input is a vector of k channels, or a
 * feature map of `positions` pixels of k channels (NHWC) summed per channel. The accumulator is
 * exact in int64: the dot product of the weight row with the per-channel sums, plus the bias
 * folded with the input zero point (b - zp * positions * sum(w)), exactly the reference's
 * bias + sum_c w[c] sum_p (x[p][c] - zp). */
#include "edgec_kernels.h"

int edgec_router(const edgec_router_params *p, const int8_t *input)
{
    int64_t acc = p->bias;
    for (uint32_t c = 0; c < p->k; c++) {
        int32_t sum = 0;
        for (uint32_t i = 0; i < p->positions; i++) {
            sum += input[(size_t)i * p->k + c];
        }
        acc += (int64_t)p->weights[c] * sum;
    }
    return p->strict ? acc > 0 : acc >= 0;
}
