/* Per-axis gathers (Slice, Pad in its mirror, edge and wrap modes, nearest Resize) and the
 * bilinear Resize: both copy or blend input bytes along tables computed by the compiler with
 * the reference executor's own index arithmetic (backends/cortex_m/layout_layers.py). */
#include "edgec_kernels.h"

void edgec_gather(const edgec_gather_params *p, const int8_t *input, int8_t *output)
{
    const uint32_t *n = p->shape;
    const uint32_t *m0 = p->offsets, *m1 = m0 + n[0], *m2 = m1 + n[1], *m3 = m2 + n[2];
    const uint32_t n3 = n[3], contiguous = p->contiguous;
    for (uint32_t i0 = 0; i0 < n[0]; i0++) {
        for (uint32_t i1 = 0; i1 < n[1]; i1++) {
            for (uint32_t i2 = 0; i2 < n[2]; i2++) {
                const int8_t *row = input + m0[i0] + m1[i1] + m2[i2];
                if (contiguous) {
                    memcpy(output, row + m3[0], n3);
                    output += n3;
                } else {
                    for (uint32_t i3 = 0; i3 < n3; i3++) {
                        *output++ = row[m3[i3]];
                    }
                }
            }
        }
    }
}

/* total / 2^20 rounded half away from zero (TFLM's default) or half up (single rounding). */
static inline int8_t edgec_resize_round(int32_t total, uint32_t single_rounding)
{
    const int32_t half = 1 << 19;
    if (single_rounding || total >= 0) {
        return (int8_t)((total + half) >> 20);
    }
    return (int8_t)(-((half - total) >> 20));
}

/* Each neighbour's weight product is at most 1536 * 1536 and only when both neighbours of an
 * axis coincide, so every partial sum stays below 2^28 in magnitude (edgec/reference/resize.py). */
void edgec_resize_bilinear(const edgec_resize_params *p, const int8_t *input, int8_t *output)
{
    const int32_t one = 1 << 10;
    const uint32_t channels = p->channels, image = p->in_h * p->in_w * channels;
    for (uint32_t b = 0; b < p->batches; b++, input += image) {
        for (uint32_t y = 0; y < p->out_h; y++) {
            const int32_t *row = p->rows + 3 * y;
            const int8_t *top = input + row[0], *bottom = input + row[1];
            const int32_t wy = row[2];
            for (uint32_t x = 0; x < p->out_w; x++) {
                const int32_t *column = p->columns + 3 * x;
                const int8_t *tl = top + column[0], *tr = top + column[1];
                const int8_t *bl = bottom + column[0], *br = bottom + column[1];
                const int32_t wx = column[2];
                for (uint32_t c = 0; c < channels; c++) {
                    const int32_t upper = tl[c] * (one - wx) + tr[c] * wx;
                    const int32_t lower = bl[c] * (one - wx) + br[c] * wx;
                    *output++ = edgec_resize_round(upper * (one - wy) + lower * wy, p->single_rounding);
                }
            }
        }
    }
}
