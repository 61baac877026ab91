/* Pooling over NHWC int8 (and int16): average and maximum over the in-bounds taps of each window, and
 * Mean (TFLite MEAN) over a contiguous run of axes. */
#include "edgec_kernels.h"

EDGEC_INLINE void window(const edgec_pool_params *p, int oy, int ox, int *y0, int *y1, int *x0, int *x1)
{
    const int iy = oy * p->stride_h - p->pad_top, ix = ox * p->stride_w - p->pad_left;
    *y0 = iy < 0 ? 0 : iy;
    *x0 = ix < 0 ? 0 : ix;
    *y1 = iy + p->k_h > p->in_h ? p->in_h : iy + p->k_h;
    *x1 = ix + p->k_w > p->in_w ? p->in_w : ix + p->k_w;
}

/* Max and average pooling over one element type: NAME(_SUFFIX) on TYPE, results clamped by CLAMP. */
#define EDGEC_POOLS(MAX_NAME, AVERAGE_NAME, TYPE, CLAMP)                                                    \
    void MAX_NAME(const edgec_pool_params *p, const TYPE *input, TYPE *output)                            \
    {                                                                                                     \
        const uint32_t c_count = p->channels;                                                             \
        for (uint32_t b = 0; b < p->batches; b++) {                                                       \
            const TYPE *image = input + (size_t)b * p->in_h * p->in_w * c_count;                          \
            for (int oy = 0; oy < p->out_h; oy++) {                                                       \
                for (int ox = 0; ox < p->out_w; ox++) {                                                   \
                    int y0, y1, x0, x1;                                                                   \
                    window(p, oy, ox, &y0, &y1, &x0, &x1);                                                \
                    for (uint32_t c = 0; c < c_count; c++) {                                              \
                        int32_t best = INT32_MIN;                                                         \
                        for (int y = y0; y < y1; y++) {                                                   \
                            const TYPE *row = image + ((size_t)y * p->in_w) * c_count + c;                \
                            for (int x = x0; x < x1; x++) {                                               \
                                const int32_t v = row[(size_t)x * c_count];                               \
                                best = v > best ? v : best;                                               \
                            }                                                                             \
                        }                                                                                 \
                        *output++ = CLAMP(best, p->activation_min, p->activation_max);                    \
                    }                                                                                     \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
                                                                                                          \
    void AVERAGE_NAME(const edgec_pool_params *p, const TYPE *input, TYPE *output, int32_t *sums)         \
    {                                                                                                     \
        const uint32_t c_count = p->channels;                                                             \
        for (uint32_t b = 0; b < p->batches; b++) {                                                       \
            const TYPE *image = input + (size_t)b * p->in_h * p->in_w * c_count;                          \
            for (int oy = 0; oy < p->out_h; oy++) {                                                       \
                for (int ox = 0; ox < p->out_w; ox++) {                                                   \
                    int y0, y1, x0, x1;                                                                   \
                    window(p, oy, ox, &y0, &y1, &x0, &x1);                                                \
                    memset(sums, 0, c_count * sizeof *sums);                                              \
                    for (int y = y0; y < y1; y++) {                                                       \
                        for (int x = x0; x < x1; x++) {                                                   \
                            const TYPE *pixel = image + ((size_t)y * p->in_w + (size_t)x) * c_count;      \
                            for (uint32_t c = 0; c < c_count; c++) {                                      \
                                sums[c] += pixel[c];                                                      \
                            }                                                                             \
                        }                                                                                 \
                    }                                                                                     \
                    const int32_t count = (y1 - y0) * (x1 - x0), half = count / 2;                        \
                    for (uint32_t c = 0; c < c_count; c++) {                                              \
                        const int32_t s = sums[c];                                                        \
                        const int32_t average = s > 0 ? (s + half) / count : (s - half) / count;          \
                        *output++ = CLAMP(average, p->activation_min, p->activation_max);                 \
                    }                                                                                     \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }

EDGEC_POOLS(edgec_max_pool, edgec_average_pool, int8_t, edgec_clamp_s8)
EDGEC_POOLS(edgec_max_pool_s16, edgec_average_pool_s16, int16_t, edgec_clamp_s16)

void edgec_mean(const edgec_mean_params *p, const int8_t *input, int8_t *output)
{
    const int32_t offset = p->input_zero_point * (int32_t)p->reduced;
    for (uint32_t o = 0; o < p->outer; o++) {
        const int8_t *block = input + (size_t)o * p->reduced * p->inner;
        for (uint32_t i = 0; i < p->inner; i++) {
            int32_t sum = 0;
            for (uint32_t r = 0; r < p->reduced; r++) {
                sum += block[(size_t)r * p->inner + i];
            }
            const int32_t scaled = edgec_mbqm((int32_t)((uint32_t)sum - (uint32_t)offset), p->multiplier, p->shift,
                                              EDGEC_SINGLE_ROUNDING);
            *output++ = edgec_clamp_s8(scaled + p->output_zero_point, p->activation_min, p->activation_max);
        }
    }
}
