/* DepthwiseConv with 2-bit weights, four channels to a byte per tap (edgec_depthwise_packed.h). */
#define EDGEC_WEIGHT_BITS 2
#include "edgec_depthwise_packed.h"

void edgec_depthwise_conv_w2(const edgec_depthwise_params *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    depthwise_dispatch(p, input, output, scratch);
}
