/* The 16x8 scheme's kernels: int16 activations, int8 weights (TFLite's
 * ACTIVATIONS_INT16_WEIGHTS_INT8). Plain C, the reference executor's arithmetic:
 *
 * - Conv, DepthwiseConv and FullyConnected accumulate sum(w * (x - input_zero_point)) + bias
 *   in 64 bits. With `wide` (an int64 bias, TFLM's default for 16x8) the sum is scaled by
 *   TFLite's 64-bit MultiplyByQuantizedMultiplier (the multiplier reduced to 16 bits, one
 *   rounding); otherwise it is an int32 accumulator (wrapping, as TFLM's) scaled by
 *   edgec_mbqm in the layer's rounding.
 * - Add/Sub rescale both inputs (left shift 15) and Mul multiplies them, as the int8 operators
 *   do, over a 4-D broadcast given by per-axis strides (0 along broadcast axes).
 * - Requantize converts between int8 and int16 (either way) or rescales int16.
 */
#include "edgec_kernels.h"

/* TFLite's MultiplyByQuantizedMultiplier for a 64-bit accumulator (|acc| < 2^47). */
EDGEC_INLINE int32_t edgec_mbqm_wide(int64_t acc, int32_t multiplier, int32_t shift)
{
    const int64_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total = 15 - shift;
    return (int32_t)((acc * reduced + ((int64_t)1 << (total - 1))) >> total);
}

/* The output of channel c from its accumulator (bias not yet added). */
EDGEC_INLINE int16_t edgec_s16_output(const edgec_s16_conv_params *p, int64_t acc, uint32_t c)
{
    acc += p->bias[c];
    const int32_t scaled = p->wide ? edgec_mbqm_wide(acc, p->multiplier[c], p->shift[c])
                                   : edgec_mbqm((int32_t)(uint32_t)(uint64_t)acc, p->multiplier[c], p->shift[c],
                                                (int)p->single);
    return edgec_clamp_s16(scaled + p->output_zero_point, p->activation_min, p->activation_max);
}

/* The sum over one tap's inputs of output channel oc: Conv's depth channels of its group
 * (weights [out_c][k_h][k_w][depth]), or DepthwiseConv's one channel oc / depth_multiplier
 * (weights [k_h][k_w][out_c]). pixel: the tap's input pixel. */
EDGEC_INLINE int64_t edgec_s16_tap(const edgec_s16_conv_params *p, const int16_t *pixel, uint32_t oc, uint32_t tap,
                                   int depthwise)
{
    const int32_t zero_point = p->input_zero_point;
    if (depthwise) {
        return (int64_t)p->weights[(size_t)tap * p->out_c + oc] * (pixel[oc / p->depth_multiplier] - zero_point);
    }
    const uint32_t depth = p->depth, per_group = p->out_c / (p->in_c / depth);
    const int16_t *x = pixel + (oc / per_group) * depth;
    const int8_t *w = p->weights + ((size_t)oc * p->k_h * p->k_w + tap) * depth;
    int64_t sum = 0;
    for (uint32_t c = 0; c < depth; c++) {
        sum += (int32_t)w[c] * ((int32_t)x[c] - zero_point);
    }
    return sum;
}

/* Every output of a Conv or DepthwiseConv: the in-bounds taps of its window (padding adds nothing). */
EDGEC_INLINE void edgec_s16_windows(const edgec_s16_conv_params *p, const int16_t *input, int16_t *output,
                                    int depthwise)
{
    for (uint32_t b = 0; b < p->batches; b++) {
        const int16_t *image = input + (size_t)b * p->in_h * p->in_w * p->in_c;
        for (uint32_t oy = 0; oy < p->out_h; oy++) {
            for (uint32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t y0 = (int32_t)(oy * p->stride_h) - (int32_t)p->pad_top;
                const int32_t x0 = (int32_t)(ox * p->stride_w) - (int32_t)p->pad_left;
                for (uint32_t oc = 0; oc < p->out_c; oc++) {
                    int64_t acc = 0;
                    for (uint32_t ky = 0; ky < p->k_h; ky++) {
                        const int32_t iy = y0 + (int32_t)(ky * p->dilation_h);
                        if (iy < 0 || iy >= (int32_t)p->in_h) {
                            continue;
                        }
                        for (uint32_t kx = 0; kx < p->k_w; kx++) {
                            const int32_t ix = x0 + (int32_t)(kx * p->dilation_w);
                            if (ix < 0 || ix >= (int32_t)p->in_w) {
                                continue;
                            }
                            const int16_t *pixel = image + ((size_t)iy * p->in_w + (size_t)ix) * p->in_c;
                            acc += edgec_s16_tap(p, pixel, oc, ky * p->k_w + kx, depthwise);
                        }
                    }
                    *output++ = edgec_s16_output(p, acc, oc);
                }
            }
        }
    }
}

/* Conv (grouped when depth < in_c) and FullyConnected (a 1x1 conv over batches pixels). */
void edgec_conv_s16(const edgec_s16_conv_params *p, const int16_t *input, int16_t *output)
{
    edgec_s16_windows(p, input, output, 0);
}

/* DepthwiseConv: output channel c * depth_multiplier + m reads input channel c. */
void edgec_depthwise_conv_s16(const edgec_s16_conv_params *p, const int16_t *input, int16_t *output)
{
    edgec_s16_windows(p, input, output, 1);
}

/* MBQM((x - zero_point) << left_shift) of one Add/Sub operand. */
EDGEC_INLINE int32_t edgec_s16_rescaled(int32_t x, int32_t zero_point, const edgec_s16_binary_params *p,
                                        int32_t multiplier, int32_t shift)
{
    return edgec_mbqm((int32_t)((uint32_t)(x - zero_point) << p->left_shift), multiplier, shift, (int)p->single);
}

void edgec_binary_s16(const edgec_s16_binary_params *p, const int16_t *a, const int16_t *b, int16_t *output)
{
    const uint32_t *n = p->shape, *sa = p->strides1, *sb = p->strides2;
    for (uint32_t i0 = 0; i0 < n[0]; i0++) {
        for (uint32_t i1 = 0; i1 < n[1]; i1++) {
            for (uint32_t i2 = 0; i2 < n[2]; i2++) {
                const int16_t *ra = a + i0 * sa[0] + i1 * sa[1] + i2 * sa[2];
                const int16_t *rb = b + i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
                for (uint32_t i3 = 0; i3 < n[3]; i3++) {
                    const int32_t x = ra[i3 * sa[3]], y = rb[i3 * sb[3]];
                    int32_t raw;
                    if (p->op == EDGEC_S16_MUL) {
                        raw = (x - p->input1_zero_point) * (y - p->input2_zero_point);
                    } else {
                        const int32_t u = edgec_s16_rescaled(x, p->input1_zero_point, p, p->input1_multiplier,
                                                             p->input1_shift);
                        const int32_t v = edgec_s16_rescaled(y, p->input2_zero_point, p, p->input2_multiplier,
                                                             p->input2_shift);
                        raw = p->op == EDGEC_S16_ADD ? u + v : u - v;
                    }
                    const int32_t scaled = edgec_mbqm(raw, p->output_multiplier, p->output_shift, (int)p->single);
                    *output++ = edgec_clamp_s16(scaled + p->output_zero_point, p->activation_min, p->activation_max);
                }
            }
        }
    }
}

/* TFLite QUANTIZE between integer types: MBQM(x - zin) + zout, clamped; input and output
 * elements of 1 or 2 bytes. Reads every input before writing over it, so it may run in place
 * when the output element is no wider than the input's. */
void edgec_requantize_s16(const edgec_s16_requantize_params *p, const void *input, void *output)
{
    const int8_t *in8 = input;
    const int16_t *in16 = input;
    int8_t *out8 = output;
    int16_t *out16 = output;
    for (uint32_t i = 0; i < p->size; i++) {
        const int32_t x = (p->input_bytes == 2 ? in16[i] : in8[i]) - p->input_zero_point;
        const int32_t scaled = edgec_mbqm(x, p->multiplier, p->shift, (int)p->single) + p->output_zero_point;
        const int32_t value = scaled < p->activation_min ? p->activation_min
                              : scaled > p->activation_max ? p->activation_max : scaled;
        if (p->output_bytes == 2) {
            out16[i] = (int16_t)value;
        } else {
            out8[i] = (int8_t)value;
        }
    }
}
