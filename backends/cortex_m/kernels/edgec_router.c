/* Router: the condition of a branch (edgec::Router). The accumulator is the int32 dot product
 * of the int8 input with one weight row plus the bias folded with the input zero point
 * (b - zp * sum(w)), exactly the reference's bias + sum_k w[k] (x[k] - zp). */
#include "edgec_kernels.h"

int edgec_router(const edgec_router_params *p, const int8_t *input)
{
    int32_t acc = p->bias;
    for (uint32_t k = 0; k < p->k; k++) {
        acc += (int32_t)p->weights[k] * input[k];
    }
    return p->strict ? acc > 0 : acc >= 0;
}
