/* TransposeConv (TFLite TRANSPOSE_CONV), gathered per output pixel: output (oy, ox) sums, over
 * the taps (ky, kx) with oy + pad_top - ky and ox + pad_left - kx non-negative multiples of the
 * strides inside the input, the dot products of the input pixel they reach with the weights
 * w[co][ky][kx][:]. That is TFLM's scatter of every input pixel summed in another order: the
 * same exact int32 accumulator, with no output-sized int32 buffer. The input zero point is
 * folded per tap (weight_sums). Requantization is the generic stage (edgec_mbqm). */
#include "edgec_kernels.h"

/* The input index a tap reads for output index `out` (pad added), or -1 when none. */
EDGEC_INLINE int32_t edgec_source_index(int32_t shifted, uint32_t stride, uint32_t size)
{
    if (shifted < 0 || shifted % (int32_t)stride != 0) {
        return -1;
    }
    const int32_t index = shifted / (int32_t)stride;
    return index < (int32_t)size ? index : -1;
}

void edgec_transpose_conv(const edgec_transpose_conv_params *params, const int8_t *input, int8_t *output)
{
    const edgec_transpose_conv_params local = *params, *p = &local;
    const uint32_t taps = p->k_h * p->k_w;
    for (uint32_t b = 0; b < p->batches; b++) {
        const int8_t *image = input + (size_t)b * p->in_h * p->in_w * p->in_c;
        for (uint32_t oy = 0; oy < p->out_h; oy++) {
            for (uint32_t ox = 0; ox < p->out_w; ox++) {
                for (uint32_t co = 0; co < p->out_c; co++) {
                    int32_t acc = p->bias[co];
                    for (uint32_t ky = 0; ky < p->k_h; ky++) {
                        const int32_t iy = edgec_source_index((int32_t)oy + p->pad_top - (int32_t)ky, p->stride_h,
                                                              p->in_h);
                        if (iy < 0) {
                            continue;
                        }
                        for (uint32_t kx = 0; kx < p->k_w; kx++) {
                            const int32_t ix = edgec_source_index((int32_t)ox + p->pad_left - (int32_t)kx,
                                                                  p->stride_w, p->in_w);
                            if (ix < 0) {
                                continue;
                            }
                            const uint32_t tap = co * taps + ky * p->k_w + kx;
                            const int8_t *x = image + ((size_t)iy * p->in_w + (uint32_t)ix) * p->in_c;
                            const int8_t *w = p->weights + (size_t)tap * p->in_c;
                            int32_t dot = 0;
                            for (uint32_t ci = 0; ci < p->in_c; ci++) {
                                dot += x[ci] * w[ci];
                            }
                            acc += dot - p->weight_sums[tap];
                        }
                    }
                    const edgec_requant_t *r = &p->requant[co];
                    const int32_t scaled = edgec_mbqm(acc, r->multiplier, -r->right, EDGEC_SINGLE_ROUNDING);
                    *output++ = edgec_clamp_s8(scaled + p->output_zero_point, p->activation_min, p->activation_max);
                }
            }
        }
    }
}
