/* The 16x8 scheme's kernels: int16 activations, int8 weights (TFLite's
 * ACTIVATIONS_INT16_WEIGHTS_INT8), with the reference executor's arithmetic:
 *
 * - Conv, DepthwiseConv and FullyConnected accumulate sum(w * (x - input_zero_point)) + bias
 *   in 64 bits (Conv and FullyConnected as dot products of weight rows with input columns:
 *   edgec_s16_dot). With `wide` (an int64 bias, TFLM's default for 16x8) the sum is scaled by
 *   TFLite's 64-bit MultiplyByQuantizedMultiplier (the multiplier reduced to 16 bits, one
 *   rounding); otherwise it is an int32 accumulator (wrapping, as TFLM's) scaled by
 *   edgec_mbqm in the layer's rounding.
 * - Add/Sub rescale both inputs (left shift 15) and Mul multiplies them, as the int8 operators
 *   do, over a 4-D broadcast given by per-axis strides (0 along broadcast axes).
 * - Requantize converts between int8 and int16 (either way) or rescales int16.
 */
#include "edgec_kernels.h"
#include "edgec_mve.h"

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

/* sum(w[c] * (x[c] - zero_point)) over n: weights in the layer's row layout (paired: each
 * whole group of four stored w0 w2 w1 w3, so that SXTB16 pairs them as the inputs lie). With
 * zero point 0 (the 16x8 scheme's) Helium runs eight products per VMLALDAVA, the last vector
 * predicated, and DSP cores two per SMLALD; every path sums exactly in 64 bits. */
EDGEC_INLINE int64_t edgec_s16_dot(const edgec_s16_conv_params *p, const int8_t *w, const int16_t *x, uint32_t n)
{
    const int32_t zero_point = p->input_zero_point;
    int64_t sum = 0;
    uint32_t c = 0;
#if EDGEC_MVE
    if (!p->paired && zero_point == 0) {
        for (; c + 8 <= n; c += 8) {
            sum = vmlaldavaq_s16(sum, vld1q_s16(x + c), vldrbq_s16(w + c));
        }
        if (c < n) {
            const mve_pred16_t lanes = vctp16q(n - c);
            sum = vmlaldavaq_p_s16(sum, vldrhq_z_s16(x + c, lanes), vldrbq_z_s16(w + c, lanes), lanes);
            c = n;
        }
    }
#endif
#if EDGEC_DSP
    if (p->paired && zero_point == 0) {
        for (; c + 4 <= n; c += 4) {
            const uint32_t four = edgec_load32(w + c);
            sum = edgec_smlald(edgec_load32(x + c), edgec_sxtb16(four), sum);
            sum = edgec_smlald(edgec_load32(x + c + 2), edgec_sxtb16_ror8(four), sum);
        }
    }
#endif
    for (; c < n; c++) {
        sum += (int32_t)w[c] * ((int32_t)x[c] - zero_point);
    }
    return sum;
}

/* The window of output pixel (oy, ox) of image b as one column [groups][k_h][k_w][depth] (the
 * weights' order), taps outside the input holding the zero point (so they add nothing). */
static void edgec_s16_column(const edgec_s16_conv_params *p, const int16_t *image, uint32_t oy, uint32_t ox,
                             int16_t *column)
{
    const uint32_t depth = p->depth, groups = p->in_c / depth;
    const int32_t y0 = (int32_t)(oy * p->stride_h) - (int32_t)p->pad_top;
    const int32_t x0 = (int32_t)(ox * p->stride_w) - (int32_t)p->pad_left;
    for (uint32_t g = 0; g < groups; g++) {
        for (uint32_t ky = 0; ky < p->k_h; ky++) {
            const int32_t iy = y0 + (int32_t)(ky * p->dilation_h);
            for (uint32_t kx = 0; kx < p->k_w; kx++) {
                const int32_t ix = x0 + (int32_t)(kx * p->dilation_w);
                if (iy < 0 || iy >= (int32_t)p->in_h || ix < 0 || ix >= (int32_t)p->in_w) {
                    for (uint32_t c = 0; c < depth; c++) {
                        column[c] = (int16_t)p->input_zero_point;
                    }
                } else {
                    memcpy(column, image + ((size_t)iy * p->in_w + (size_t)ix) * p->in_c + g * depth,
                           depth * sizeof *column);
                }
                column += depth;
            }
        }
    }
}

/* Conv (grouped when depth < in_c) and FullyConnected (a 1x1 conv over batches pixels): per
 * output pixel one column (the input pixel itself when the layer is 1x1, ungrouped and every
 * window lies in the input unpadded, else gathered into scratch: in_c * k_h * k_w int16), then
 * one dot product per output channel with its row of k_h * k_w * depth weights. */
void edgec_conv_s16(const edgec_s16_conv_params *p, const int16_t *input, int16_t *output, int16_t *scratch)
{
    const uint32_t k = p->k_h * p->k_w * p->depth, per_group = p->out_c / (p->in_c / p->depth);
    const int inside = (p->out_h - 1) * p->stride_h < p->in_h && (p->out_w - 1) * p->stride_w < p->in_w;
    const int direct = p->k_h == 1 && p->k_w == 1 && p->depth == p->in_c && p->pad_top == 0 && p->pad_left == 0 &&
                       inside;
    for (uint32_t b = 0; b < p->batches; b++) {
        const int16_t *image = input + (size_t)b * p->in_h * p->in_w * p->in_c;
        for (uint32_t oy = 0; oy < p->out_h; oy++) {
            for (uint32_t ox = 0; ox < p->out_w; ox++) {
                const int16_t *column = scratch;
                if (direct) {
                    column = image + ((size_t)(oy * p->stride_h) * p->in_w + ox * p->stride_w) * p->in_c;
                } else {
                    edgec_s16_column(p, image, oy, ox, scratch);
                }
                for (uint32_t oc = 0; oc < p->out_c; oc++) {
                    const int64_t acc = edgec_s16_dot(p, p->weights + (size_t)oc * k, column + (oc / per_group) * k, k);
                    *output++ = edgec_s16_output(p, acc, oc);
                }
            }
        }
    }
}

#if EDGEC_DSP
/* acc[0..3] += channels c..c+3 of one tap: x four int16 inputs, w their four int8 weights
 * (SXTB16 gives (w0, w2) and (w1, w3); each SMLAxy takes the lane of its channel). */
EDGEC_INLINE void edgec_s16_tap4(const int16_t *x, const int8_t *w, int32_t acc[4])
{
    const uint32_t x01 = edgec_load32(x), x23 = edgec_load32(x + 2), four = edgec_load32(w);
    const uint32_t w02 = edgec_sxtb16(four), w13 = edgec_sxtb16_ror8(four);
    acc[0] = edgec_smlabb(x01, w02, acc[0]);
    acc[1] = edgec_smlatb(x01, w13, acc[1]);
    acc[2] = edgec_smlabt(x23, w02, acc[2]);
    acc[3] = edgec_smlatt(x23, w13, acc[3]);
}
#endif

/* DepthwiseConv: output channel c * depth_multiplier + m reads input channel c; weights
 * [k_h][k_w][out_c]; padding taps add nothing. Per output pixel the in-bounds taps are listed
 * once; a channel's sum over them fits int32 (fewer than 256 taps of |w (x - zp)| < 2^23,
 * backends/cortex_m/s16_layers.py checks the tap count). DSP cores take four channels at a
 * time when the multiplier is 1, the zero point 0 and the channels a multiple of four. */
void edgec_depthwise_conv_s16(const edgec_s16_conv_params *p, const int16_t *input, int16_t *output)
{
    const int32_t zero_point = p->input_zero_point;
    const uint32_t out_c = p->out_c, in_c = p->in_c;
    uint32_t pixels[256], weights[256];
    for (uint32_t b = 0; b < p->batches; b++) {
        const int16_t *image = input + (size_t)b * p->in_h * p->in_w * in_c;
        for (uint32_t oy = 0; oy < p->out_h; oy++) {
            for (uint32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t y0 = (int32_t)(oy * p->stride_h) - (int32_t)p->pad_top;
                const int32_t x0 = (int32_t)(ox * p->stride_w) - (int32_t)p->pad_left;
                uint32_t taps = 0;
                for (uint32_t ky = 0; ky < p->k_h; ky++) {
                    const int32_t iy = y0 + (int32_t)(ky * p->dilation_h);
                    for (uint32_t kx = 0; kx < p->k_w; kx++) {
                        const int32_t ix = x0 + (int32_t)(kx * p->dilation_w);
                        if (iy >= 0 && iy < (int32_t)p->in_h && ix >= 0 && ix < (int32_t)p->in_w) {
                            pixels[taps] = ((uint32_t)iy * p->in_w + (uint32_t)ix) * in_c;
                            weights[taps++] = (ky * p->k_w + kx) * out_c;
                        }
                    }
                }
                uint32_t oc = 0;
#if EDGEC_DSP
                if (p->depth_multiplier == 1 && zero_point == 0 && out_c % 4 == 0) {
                    for (; oc < out_c; oc += 4) {
                        int32_t acc[4] = {0, 0, 0, 0};
                        for (uint32_t t = 0; t < taps; t++) {
                            edgec_s16_tap4(image + pixels[t] + oc, p->weights + weights[t] + oc, acc);
                        }
                        for (uint32_t j = 0; j < 4; j++) {
                            output[oc + j] = edgec_s16_output(p, acc[j], oc + j);
                        }
                    }
                }
#endif
                for (; oc < out_c; oc++) {
                    const uint32_t ic = oc / p->depth_multiplier;
                    int32_t acc = 0;
                    for (uint32_t t = 0; t < taps; t++) {
                        acc += (int32_t)p->weights[weights[t] + oc] * (image[pixels[t] + ic] - zero_point);
                    }
                    output[oc] = edgec_s16_output(p, acc, oc);
                }
                output += out_c;
            }
        }
    }
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
