/* Decoding one row of delta-encoded weights (edgec_delta_t; the layout is stated in
 * backends/cortex_m/delta_layers.py) into an int8 row buffer, for edgec_conv_delta.c and
 * edgec_depthwise_delta.c.
 *
 * The deltas are unpacked eight at a time: eight fields of `bits` bits are exactly `bits`
 * bytes, so every group starts at a byte and its fields sit at constant bit offsets (one word
 * load, two for 5 and 6 bits, and one sign-extending bit-field extract per delta; one instance
 * per width and decoding). When every segment is whole groups (one segment per row, or blocks
 * of a multiple of 8) each weight is rebuilt as it is unpacked: base + d (fixed) or the
 * running sum from the base (consecutive, closed-loop). Other blocks take two passes: unpack
 * the row, then rebuild each segment in place.
 *
 * Contract: `out` holds row_buffer bytes (k rounded up to whole groups of eight; the bytes
 * after k are scratch until the call ends); on return out[0..k) are the row's weights and
 * out[k..zero_to) are zero (zero_to <= row_buffer). The word loads of the last group may read
 * up to 7 bytes past the row: the stream ends with 8 zero bytes for them.
 */
#ifndef EDGEC_DELTA_H
#define EDGEC_DELTA_H

#include "edgec_kernels.h"

/* Field j of a group of eight `bits`-bit deltas (lo: bits 0..31 of the group, hi: 32..63),
 * sign-extended. j and bits are constants at every call, so this is one bit-field extract
 * (two shifts and an or when the field straddles the words). */
EDGEC_INLINE int8_t delta_field(uint32_t lo, uint32_t hi, int j, int bits)
{
    const int first = j * bits;
    uint32_t top; /* the field in the top `bits` bits */
    if (first + bits <= 32) {
        top = lo << (32 - first - bits);
    } else if (first >= 32) {
        top = hi << (64 - first - bits);
    } else {
        top = (hi << (64 - first - bits)) | (lo >> (first + bits - 32));
    }
    return (int8_t)((int32_t)top >> (32 - bits));
}

/* The deltas of `groups` groups of eight from src into dst (8 * groups bytes). */
EDGEC_INLINE void unpack_groups(const uint8_t *src, int8_t *dst, uint32_t groups, int bits)
{
    for (uint32_t g = 0; g < groups; g++, src += bits, dst += 8) {
        const uint32_t lo = edgec_load32(src), hi = bits > 4 ? edgec_load32(src + 4) : 0u;
        dst[0] = delta_field(lo, hi, 0, bits);
        dst[1] = delta_field(lo, hi, 1, bits);
        dst[2] = delta_field(lo, hi, 2, bits);
        dst[3] = delta_field(lo, hi, 3, bits);
        dst[4] = delta_field(lo, hi, 4, bits);
        dst[5] = delta_field(lo, hi, 5, bits);
        dst[6] = delta_field(lo, hi, 6, bits);
        dst[7] = delta_field(lo, hi, 7, bits);
    }
}

/* Weight j of a group: base + d (the running sum carries it as the next base). */
#define EDGEC_DELTA_WEIGHT(j)                                     \
    do {                                                          \
        const int32_t w = base + delta_field(lo, hi, j, bits);    \
        dst[j] = (int8_t)w;                                       \
        if (running) {                                            \
            base = w;                                             \
        }                                                         \
    } while (0)

/* The weights of `groups` groups of eight into dst, rebuilt as they are unpacked: a segment
 * starts every `per_segment` groups at the next of `bases`; running (a constant) picks the
 * running sum over base + d. */
EDGEC_INLINE void decode_groups(const uint8_t *src, int8_t *dst, uint32_t groups, uint32_t per_segment,
                                const int8_t *bases, int bits, int running)
{
    int32_t base = 0;
    uint32_t left = 0; /* groups left in the current segment */
    for (uint32_t g = 0; g < groups; g++, src += bits, dst += 8) {
        if (left == 0) {
            base = *bases++;
            left = per_segment;
        }
        left--;
        const uint32_t lo = edgec_load32(src), hi = bits > 4 ? edgec_load32(src + 4) : 0u;
        EDGEC_DELTA_WEIGHT(0);
        EDGEC_DELTA_WEIGHT(1);
        EDGEC_DELTA_WEIGHT(2);
        EDGEC_DELTA_WEIGHT(3);
        EDGEC_DELTA_WEIGHT(4);
        EDGEC_DELTA_WEIGHT(5);
        EDGEC_DELTA_WEIGHT(6);
        EDGEC_DELTA_WEIGHT(7);
    }
}

#undef EDGEC_DELTA_WEIGHT

/* decode_groups with a constant width and decoding. */
#define EDGEC_DECODE_CASE(b)                                                           \
    case b:                                                                            \
        if (d->running) {                                                              \
            decode_groups(src, out, groups, per_segment, bases, b, 1);                 \
        } else {                                                                       \
            decode_groups(src, out, groups, per_segment, bases, b, 0);                 \
        }                                                                              \
        break;

/* Two passes, for segments that end inside a group: unpack the row, then rebuild each segment. */
static void rebuild_segments(const edgec_delta_t *d, const uint8_t *src, const int8_t *bases, int8_t *out)
{
    const uint32_t k = d->k, groups = (k + 7u) / 8u;
    switch (d->bits) {
    case 2:
        unpack_groups(src, out, groups, 2);
        break;
    case 3:
        unpack_groups(src, out, groups, 3);
        break;
    case 4:
        unpack_groups(src, out, groups, 4);
        break;
    case 5:
        unpack_groups(src, out, groups, 5);
        break;
    default:
        unpack_groups(src, out, groups, 6);
        break;
    }
    uint32_t start = 0;
    for (uint32_t s = 0; s < d->segments; s++, start += d->segment_length) {
        const uint32_t end = k - start < d->segment_length ? k : start + d->segment_length;
        int32_t w = bases[s];
        if (d->running) {
            for (uint32_t j = start; j < end; j++) {
                w += out[j];
                out[j] = (int8_t)w;
            }
        } else {
            for (uint32_t j = start; j < end; j++) {
                out[j] = (int8_t)(w + out[j]);
            }
        }
    }
}

/* Row `row` of the weights whose delta stream is `stream`, decoded into out (see the contract above). */
static void edgec_delta_row(const edgec_delta_t *d, const int8_t *stream, uint32_t row, int8_t *out, uint32_t zero_to)
{
    const uint8_t *src = (const uint8_t *)stream + (size_t)row * d->row_bytes;
    const int8_t *bases = d->bases + (size_t)row * d->segments;
    const uint32_t k = d->k, groups = (k + 7u) / 8u;
    if (d->segments == 1 || (d->segment_length & 7u) == 0) {
        const uint32_t per_segment = d->segments == 1 ? groups : d->segment_length / 8u;
        switch (d->bits) {
            EDGEC_DECODE_CASE(2)
            EDGEC_DECODE_CASE(3)
            EDGEC_DECODE_CASE(4)
            EDGEC_DECODE_CASE(5)
            EDGEC_DECODE_CASE(6)
        default:
            break;
        }
    } else {
        rebuild_segments(d, src, bases, out);
    }
    for (uint32_t j = k; j < zero_to; j++) {
        out[j] = 0;
    }
}

#undef EDGEC_DECODE_CASE

#endif /* EDGEC_DELTA_H */
