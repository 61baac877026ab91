/* Data movement: Transpose and Pad over 4-D shapes, Concat, a channel run of every pixel
 * (a grouped Conv's groups), and the model-boundary Quantize/Dequantize used by the float
 * convenience wrapper. */
#include "edgec_kernels.h"

/* The innermost extent and stride and the direction are read once into locals: stores
 * through the int8_t output may alias *p and would otherwise force reloads per element. */
void edgec_transpose(const edgec_transpose_params *p, const int8_t *input, int8_t *output)
{
    const uint32_t *n = p->shape, *s = p->strides;
    const uint32_t n3 = n[3], s3 = s[3], scatter = p->scatter;
    for (uint32_t i0 = 0; i0 < n[0]; i0++) {
        for (uint32_t i1 = 0; i1 < n[1]; i1++) {
            for (uint32_t i2 = 0; i2 < n[2]; i2++) {
                const size_t offset = i0 * s[0] + i1 * s[1] + i2 * s[2];
                if (scatter) {
                    int8_t *element = output + offset;
                    for (uint32_t i3 = 0; i3 < n3; i3++, element += s3) {
                        *element = *input++;
                    }
                } else {
                    const int8_t *element = input + offset;
                    for (uint32_t i3 = 0; i3 < n3; i3++, element += s3) {
                        *output++ = *element;
                    }
                }
            }
        }
    }
}

void edgec_pad(const edgec_pad_params *p, const int8_t *input, int8_t *output)
{
    const uint32_t *in = p->in_shape, *out = p->out_shape, *before = p->before;
    memset(output, p->value, (size_t)out[0] * out[1] * out[2] * out[3]);
    for (uint32_t i0 = 0; i0 < in[0]; i0++) {
        for (uint32_t i1 = 0; i1 < in[1]; i1++) {
            for (uint32_t i2 = 0; i2 < in[2]; i2++) {
                const size_t target = (((size_t)(i0 + before[0]) * out[1] + (i1 + before[1])) * out[2]
                                       + (i2 + before[2])) * out[3] + before[3];
                memcpy(output + target, input, in[3]);
                input += in[3];
            }
        }
    }
}

void edgec_concat(uint32_t outer, uint32_t out_inner, uint32_t count, const int8_t *const *inputs,
                  const uint32_t *in_inner, int8_t *output)
{
    uint32_t offset = 0;
    for (uint32_t k = 0; k < count; k++) {
        for (uint32_t o = 0; o < outer; o++) {
            memcpy(output + (size_t)o * out_inner + offset, inputs[k] + (size_t)o * in_inner[k], in_inner[k]);
        }
        offset += in_inner[k];
    }
}

void edgec_copy_channels(uint32_t pixels, uint32_t channels, const int8_t *input, uint32_t input_stride,
                         int8_t *output, uint32_t output_stride)
{
    for (uint32_t i = 0; i < pixels; i++, input += input_stride, output += output_stride) {
        memcpy(output, input, channels);
    }
}

/* round(x / scale) + zero_point, for x / scale clipped to [-limit, limit] first (results
 * beyond it saturate anyway; below 2^23 the casts are exact). */
EDGEC_INLINE int32_t edgec_quantized(float x, float scale, int32_t zero_point, float limit)
{
    float q = x / scale; /* float32 division, as TFLite */
    q = q < -limit ? -limit : q > limit ? limit : q;
    int32_t rounded = (int32_t)q; /* truncation */
    const float fraction = q - (float)rounded;
    rounded += fraction >= 0.5f ? 1 : fraction <= -0.5f ? -1 : 0; /* round half away from zero */
    return rounded + zero_point;
}

void edgec_quantize(uint32_t size, float scale, int32_t zero_point, const float *input, int8_t *output)
{
    for (uint32_t i = 0; i < size; i++) {
        output[i] = edgec_saturate_s8(edgec_quantized(input[i], scale, zero_point, 512.0f));
    }
}

void edgec_quantize_s16(uint32_t size, float scale, int32_t zero_point, const float *input, int16_t *output)
{
    for (uint32_t i = 0; i < size; i++) {
        const int32_t q = edgec_quantized(input[i], scale, zero_point, 131072.0f);
        output[i] = (int16_t)(q < INT16_MIN ? INT16_MIN : q > INT16_MAX ? INT16_MAX : q);
    }
}

/* float(scale * (x - zero_point)) as TFLite computes it in double: x - zero_point is exact in
 * float (|x - zero_point| < 2^24 for any int8 or int16 zero point) and the exact product fits a
 * double, so both forms round the exact product to float once; single precision avoids soft
 * double. */
void edgec_dequantize(uint32_t size, float scale, int32_t zero_point, const int8_t *input, float *output)
{
    for (uint32_t i = 0; i < size; i++) {
        output[i] = scale * (float)(input[i] - zero_point);
    }
}

void edgec_dequantize_s16(uint32_t size, float scale, int32_t zero_point, const int16_t *input, float *output)
{
    for (uint32_t i = 0; i < size; i++) {
        output[i] = scale * (float)(input[i] - zero_point);
    }
}
