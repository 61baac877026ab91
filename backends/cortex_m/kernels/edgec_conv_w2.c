/* Conv and FullyConnected with 2-bit weights, four to a byte (the kernel: edgec_conv_packed.h). */
#define EDGEC_WEIGHT_BITS 2
#include "edgec_conv_packed.h"

void edgec_conv_w2(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch)
{
    packed_dispatch(p, input, output, scratch, EDGEC_SINGLE_ROUNDING);
}

void edgec_fully_connected_w2(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch)
{
    packed_dispatch(p, input, output, scratch, EDGEC_FC_SINGLE_ROUNDING);
}
