/* edgec int8 (and 16x8) kernels for Arm Cortex-M: parameter blocks and entry points.
 *
 * Semantics are those of edgec's integer reference executor (TFLite/CMSIS-NN int8), bit for
 * bit. Activations are int8 NHWC; every kernel reads its inputs and writes its output through
 * pointers into buffers the caller owns (no allocation). Accumulating kernels take biases with
 * the input zero point already folded in (bias[c] - input_zero_point * sum(weights of c)), so
 * they multiply raw int8 inputs; padding taps therefore read the input zero point.
 */
#ifndef EDGEC_KERNELS_H
#define EDGEC_KERNELS_H

#include <stdint.h>

#include "edgec_arith.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Conv and FullyConnected: weights [out_c][k_padded], k = k_h*k_w*in_c rounded up to a
 * multiple of 4 with zero weights. Scratch: see edgec_conv.c. */
typedef struct {
    const int8_t *weights;
    const int32_t *bias;              /* folded, see above */
    const edgec_requant_t *requant;   /* per output channel (or one when per_channel == 0) */
    int32_t output_zero_point, activation_min, activation_max, input_zero_point;
    uint16_t batches, in_h, in_w, in_c, out_h, out_w, out_c;
    uint16_t k_h, k_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
    uint16_t k_padded, per_channel;
    uint16_t generic; /* the generic output stage (backends/cortex_m/layers.py, output_stage) */
    uint16_t blocked; /* weights blocked by four channels (edgec_conv.c: the layout is the core's) */
} edgec_conv_params;

/* edgec_conv_params.blocked of a single-pixel layer on cores without the DSP extension: blocks
 * of four channels in edgec_dot_lanes.h's form. */
#define EDGEC_BLOCKED_LANE_PAIRS 2

/* DepthwiseConv: weights [k_h*k_w][out_c] (TFLite's layout). Scratch: k_h*k_w*in_c bytes
 * (a border pixel's window with the zero point in place of padding). */
typedef struct {
    const int8_t *weights;
    const int32_t *bias;
    const edgec_requant_t *requant;   /* per output channel */
    int32_t output_zero_point, activation_min, activation_max, input_zero_point;
    uint16_t batches, in_h, in_w, in_c, out_h, out_w, out_c;
    uint16_t k_h, k_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
    uint16_t depth_multiplier, generic;
    uint16_t plain; /* weights [k_h*k_w][out_c] even at depth multiplier 1 (Helium builds) */
    uint16_t rows;  /* the rows walk of edgec_depthwise.c (DSP cores): scratch 24 * ((out_w - 1) * stride_w + 3) */
    uint16_t chunk; /* the pairs walk's pixels per chunk (cores without DSP; 0: not taken): scratch
                     * 48 * ((chunk - 1) * stride_w + 3) per group of sixteen of the blocks' channels,
                     * then 4 bytes per channel of the blocks */
} edgec_depthwise_params;

/* Delta-encoded weights (backends/cortex_m/delta_layers.py states the layout): the params'
 * `weights` point at the delta stream, rows of row_bytes bytes of `bits`-bit two's complement
 * deltas, least significant bit first; `bases` holds `segments` bases per row. A weight is
 * base + delta (running == 0) or the previous weight + delta (running == 1, from the base),
 * restarting at every segment of segment_length weights. Decoded rows take row_buffer bytes
 * of scratch each (edgec_delta.h). */
typedef struct {
    const int8_t *bases;
    uint16_t k, row_bytes, segment_length, segments, row_buffer;
    uint8_t bits, running;
} edgec_delta_t;

/* Add / Sub / Mul with broadcasting over 4-D shapes: strides are element strides of each
 * input in the output's index space (0 along broadcast axes). Add and Sub read each input's
 * rescaled value, MBQM((x - zero_point) << left_shift, m, s), from a 256-entry table indexed
 * by the input byte (computed when the project was generated); Mul uses the zero points. */
typedef struct {
    const int32_t *table1, *table2;
    int32_t input1_zero_point, input2_zero_point;
    int32_t output_multiplier, output_shift, output_zero_point, activation_min, activation_max;
    uint32_t shape[4], strides1[4], strides2[4];
} edgec_binary_params;

typedef struct {
    uint16_t batches, in_h, in_w, channels, out_h, out_w;
    uint16_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t activation_min, activation_max;
} edgec_pool_params;

/* Mean over a contiguous run of axes: the input is [outer][reduced][inner]. */
typedef struct {
    uint32_t outer, reduced, inner;
    int32_t input_zero_point, output_zero_point, multiplier, shift;
    int32_t activation_min, activation_max;
} edgec_mean_params;

typedef struct {
    const int8_t *weights;            /* one row of k (channels) */
    int64_t bias;                     /* folded: b - input_zero_point * positions * sum(weights) */
    uint32_t k, positions;            /* the input: positions x k, channels last */
    uint32_t strict;                  /* 1: acc > 0, 0: acc >= 0 */
} edgec_router_params;

typedef struct {
    uint32_t rows, depth;
    int32_t input_multiplier, input_left_shift, diff_min;
} edgec_softmax_params;

/* Transpose and Pad over 4-D shapes (lower ranks padded with leading 1s). A transpose walks
 * `shape` in order, reading contiguously and writing with `strides` (scatter), or writing
 * contiguously and reading with `strides` (gather): whichever makes the innermost run long. */
typedef struct {
    uint32_t shape[4], strides[4];
    uint32_t scatter;
} edgec_transpose_params;

typedef struct {
    uint32_t in_shape[4], out_shape[4], before[4];
    int8_t value;
} edgec_pad_params;

/* BatchMatMul: up to three batch axes (element strides per operand, 0 when broadcast), then
 * rows x depth times depth x columns, each operand addressed by its element strides. */
typedef struct {
    uint32_t batches[3], a_batch[3], b_batch[3];
    uint32_t rows, columns, depth, a_row, a_depth, b_depth, b_column;
    int32_t input1_zero_point, input2_zero_point, output_zero_point, multiplier, shift;
    int32_t activation_min, activation_max;
} edgec_batch_matmul_params;

typedef struct {
    const int8_t *weights;            /* [out_c][k_h][k_w][in_c] */
    const int32_t *bias;              /* [out_c], zeros when the node has none */
    const int32_t *weight_sums;       /* [out_c][k_h][k_w]: input_zero_point * sum over in_c of w */
    const edgec_requant_t *requant;   /* per output channel; the generic stage */
    uint32_t batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w;
    int32_t pad_top, pad_left, output_zero_point, activation_min, activation_max;
} edgec_transpose_conv_params;

typedef struct {
    uint32_t shape[4];                /* the output */
    const uint32_t *offsets;          /* per axis, per output index: input element offset */
    uint32_t contiguous;              /* 1: the last axis's offsets are consecutive */
} edgec_gather_params;

typedef struct {
    uint32_t batches, in_h, in_w, channels, out_h, out_w;
    const int32_t *rows;              /* per output row: offsets of its two input rows, weight of the second */
    const int32_t *columns;           /* per output column: the same, in elements of a row */
    uint32_t single_rounding;         /* 1: round half up; 0: half away from zero */
} edgec_resize_params;

/* The 16x8 scheme (int16 activations, int8 weights; edgec_s16.c). Conv weights
 * [out_c][k_h][k_w][depth] (depth = in_c / groups), depthwise [k_h][k_w][out_c]; FullyConnected
 * is a 1x1 Conv over batches pixels. Biases int64, multiplier and shift per output channel. */
typedef struct {
    const int8_t *weights;
    const int64_t *bias;
    const int32_t *multiplier, *shift;
    uint32_t batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
    uint32_t stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
    uint32_t depth, depth_multiplier;
    int32_t input_zero_point, output_zero_point, activation_min, activation_max;
    uint32_t wide;                    /* 1: 64-bit accumulator and scaling (an int64 bias) */
    uint32_t paired;                  /* 1: Conv rows' groups of four stored w0 w2 w1 w3 (the DSP path) */
    uint32_t single;                  /* the int32 path's rounding: 1 single, 0 double */
} edgec_s16_conv_params;

enum { EDGEC_S16_ADD, EDGEC_S16_SUB, EDGEC_S16_MUL };

/* Add, Sub, Mul on int16: shape is the output's (4-D), strides each input's (0 along broadcast axes). */
typedef struct {
    uint32_t shape[4], strides1[4], strides2[4];
    int32_t input1_zero_point, input2_zero_point, output_zero_point, left_shift;
    int32_t input1_multiplier, input1_shift, input2_multiplier, input2_shift, output_multiplier, output_shift;
    int32_t activation_min, activation_max;
    uint32_t op, single;
} edgec_s16_binary_params;

typedef struct {
    uint32_t size, input_bytes, output_bytes;
    int32_t input_zero_point, output_zero_point, multiplier, shift, activation_min, activation_max;
    uint32_t single;
} edgec_s16_requantize_params;

/* scratch: in_c * k_h * k_w int16 unless the layer is 1x1, ungrouped and reads inside the input unpadded (none). */
void edgec_conv_s16(const edgec_s16_conv_params *p, const int16_t *input, int16_t *output, int16_t *scratch);
void edgec_depthwise_conv_s16(const edgec_s16_conv_params *p, const int16_t *input, int16_t *output);
void edgec_binary_s16(const edgec_s16_binary_params *p, const int16_t *a, const int16_t *b, int16_t *output);
void edgec_requantize_s16(const edgec_s16_requantize_params *p, const void *input, void *output);
void edgec_average_pool_s16(const edgec_pool_params *p, const int16_t *input, int16_t *output, int32_t *sums);
void edgec_max_pool_s16(const edgec_pool_params *p, const int16_t *input, int16_t *output);
void edgec_quantize_s16(uint32_t size, float scale, int32_t zero_point, const float *input, int16_t *output);
void edgec_dequantize_s16(uint32_t size, float scale, int32_t zero_point, const int16_t *input, float *output);

void edgec_conv(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch);
void edgec_batch_matmul(const edgec_batch_matmul_params *p, const int8_t *a, const int8_t *b, int8_t *output);
void edgec_transpose_conv(const edgec_transpose_conv_params *p, const int8_t *input, int8_t *output);
void edgec_fully_connected(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch);
void edgec_depthwise_conv(const edgec_depthwise_params *p, const int8_t *input, int8_t *output, int8_t *scratch);
/* The same with 4-bit and 2-bit weights packed (backends/cortex_m/packing.py; edgec_conv_packed.h
 * and edgec_depthwise_packed.h state the layouts and the scratch). */
void edgec_conv_w4(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch);
void edgec_conv_w2(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch);
void edgec_fully_connected_w4(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch);
void edgec_fully_connected_w2(const edgec_conv_params *p, const int8_t *input, int8_t *output, void *scratch);
void edgec_depthwise_conv_w4(const edgec_depthwise_params *p, const int8_t *input, int8_t *output, int8_t *scratch);
void edgec_depthwise_conv_w2(const edgec_depthwise_params *p, const int8_t *input, int8_t *output, int8_t *scratch);
/* The same with delta-encoded weights (see edgec_delta_t; scratch: edgec_conv_delta.c and
 * edgec_depthwise_delta.c). */
void edgec_conv_delta(const edgec_conv_params *p, const edgec_delta_t *d, const int8_t *input, int8_t *output,
                      void *scratch);
void edgec_fully_connected_delta(const edgec_conv_params *p, const edgec_delta_t *d, const int8_t *input,
                                 int8_t *output, void *scratch);
void edgec_depthwise_conv_delta(const edgec_depthwise_params *p, const edgec_delta_t *d, const int8_t *input,
                                int8_t *output, int8_t *scratch);
void edgec_add(const edgec_binary_params *p, const int8_t *a, const int8_t *b, int8_t *output);
void edgec_sub(const edgec_binary_params *p, const int8_t *a, const int8_t *b, int8_t *output);
void edgec_mul(const edgec_binary_params *p, const int8_t *a, const int8_t *b, int8_t *output);
void edgec_prelu(const edgec_binary_params *p, const int8_t *x, const int8_t *alpha, int8_t *output);
/* Requantize and Clamp: out[i] = table[(uint8_t)in[i]] (a 256-entry table made at generation). */
void edgec_lookup(uint32_t size, const int8_t *table, const int8_t *input, int8_t *output);
/* sums: channels int32 of scratch. */
void edgec_average_pool(const edgec_pool_params *p, const int8_t *input, int8_t *output, int32_t *sums);
void edgec_max_pool(const edgec_pool_params *p, const int8_t *input, int8_t *output);
void edgec_mean(const edgec_mean_params *p, const int8_t *input, int8_t *output);
void edgec_softmax(const edgec_softmax_params *p, const int8_t *input, int8_t *output);
/* 1 when the branch condition holds (take the then branch), else 0. */
int edgec_router(const edgec_router_params *p, const int8_t *input);
void edgec_transpose(const edgec_transpose_params *p, const int8_t *input, int8_t *output);
void edgec_pad(const edgec_pad_params *p, const int8_t *input, int8_t *output);
void edgec_gather(const edgec_gather_params *p, const int8_t *input, int8_t *output);
void edgec_resize_bilinear(const edgec_resize_params *p, const int8_t *input, int8_t *output);
void edgec_concat(uint32_t outer, uint32_t out_inner, uint32_t count, const int8_t *const *inputs,
                  const uint32_t *in_inner, int8_t *output);
/* channels bytes of each of pixels pixels, from input (a pixel every input_stride bytes) to
 * output (every output_stride bytes): a grouped Conv's group in and out of the arena. */
void edgec_copy_channels(uint32_t pixels, uint32_t channels, const int8_t *input, uint32_t input_stride,
                         int8_t *output, uint32_t output_stride);
void edgec_quantize(uint32_t size, float scale, int32_t zero_point, const float *input, int8_t *output);
void edgec_dequantize(uint32_t size, float scale, int32_t zero_point, const int8_t *input, float *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_KERNELS_H */
