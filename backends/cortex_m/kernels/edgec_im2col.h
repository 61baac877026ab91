/* The columns of Conv/FullyConnected (edgec_conv.c, edgec_conv_packed.h): im2col gathering of an
 * output pixel's window, and the preparation of two columns into the form the dot-product loops
 * read (see edgec_conv.c and edgec_dot.h):
 *
 *  - DSP extension, int8 rows: the offset-pair form (prepare_pairs; edgec_dot.h says why);
 *  - DSP extension, packed rows: int16 lane pairs x0[0,2] x0[1,3] x1[0,2] x1[1,3] per group of
 *    four k;
 *  - otherwise: one int32 per k, x0 + x1 * 2^23 (two 23-bit lanes of a 64-bit SMLAL sum,
 *    split every EDGEC_LANE_CHUNK k).
 */
#ifndef EDGEC_IM2COL_H
#define EDGEC_IM2COL_H

#include "edgec_kernels.h"

/* k_padded is a multiple of EDGEC_COLUMN_K_MASK + 1 (4 for int8 rows, the row step of packed
 * ones); the including kernel defines it. */
#ifndef EDGEC_COLUMN_K_MASK
#error "define EDGEC_COLUMN_K_MASK before including edgec_im2col.h"
#endif

#define EDGEC_LANE_BITS 23
#define EDGEC_LANE_CHUNK 256

/* n bytes from src to dst: runs under 16 bytes (the rows of small windows, where a library call
 * costs more than the copy) as at most two words, a halfword and a byte; longer ones by memcpy. */
EDGEC_INLINE void copy_run(int8_t *dst, const int8_t *src, size_t n)
{
    if (n >= 16) {
        memcpy(dst, src, n);
        return;
    }
    if (n & 8u) {
        memcpy(dst, src, 8);
        dst += 8, src += 8;
    }
    if (n & 4u) {
        memcpy(dst, src, 4);
        dst += 4, src += 4;
    }
    if (n & 2u) {
        memcpy(dst, src, 2);
        dst += 2, src += 2;
    }
    if (n & 1u) {
        *dst = *src;
    }
}

/* Copies the taps kx = 0..k_w-1 of input row iy into dst (padding taps: the zero point). */
static int8_t *gather_row(const edgec_conv_params *p, const int8_t *image, int iy, int ix0, int8_t *dst)
{
    const uint32_t in_c = p->in_c;
    const int8_t pad = (int8_t)p->input_zero_point;
    if (iy < 0 || iy >= p->in_h) {
        memset(dst, pad, (size_t)p->k_w * in_c);
        return dst + (size_t)p->k_w * in_c;
    }
    const int8_t *row = image + (size_t)iy * p->in_w * in_c;
    if (p->dilation_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w) {
        copy_run(dst, row + (size_t)ix0 * in_c, (size_t)p->k_w * in_c);
        return dst + (size_t)p->k_w * in_c;
    }
    for (int kx = 0; kx < p->k_w; kx++) {
        const int ix = ix0 + kx * p->dilation_w;
        if (ix < 0 || ix >= p->in_w) {
            memset(dst, pad, in_c);
        } else {
            memcpy(dst, row + (size_t)ix * in_c, in_c);
        }
        dst += in_c;
    }
    return dst;
}

/* The int8 column of output pixel `pixel` (batch-major): a pointer into the input when the
 * window is one contiguous run of exactly k_padded bytes (a 1x1 window inside the input, and
 * in_c & EDGEC_COLUMN_K_MASK == 0); otherwise gathered into `staging` and zero-padded to k_padded. */
static const int8_t *column(const edgec_conv_params *p, const int8_t *input, uint32_t pixel, int8_t *staging)
{
    const uint32_t per_image = (uint32_t)p->out_h * p->out_w;
    const uint32_t b = pixel / per_image, rest = pixel % per_image;
    const int oy = (int)(rest / p->out_w), ox = (int)(rest % p->out_w);
    const int8_t *image = input + (size_t)b * p->in_h * p->in_w * p->in_c;
    const int iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    if (p->k_h == 1 && p->k_w == 1 && (p->in_c & EDGEC_COLUMN_K_MASK) == 0 && iy0 >= 0 && ix0 >= 0 && iy0 < p->in_h && ix0 < p->in_w) {
        return image + ((size_t)iy0 * p->in_w + (size_t)ix0) * p->in_c;
    }
    int8_t *dst = staging;
    for (int ky = 0; ky < p->k_h; ky++) {
        dst = gather_row(p, image, iy0 + ky * p->dilation_h, ix0, dst);
    }
    memset(dst, 0, (size_t)(staging + p->k_padded - dst));
    return staging;
}

#if EDGEC_DSP_DOT

/* One column in offset-pair form: two words per group of four k, a group every `step` words of
 * out. Returns the column's correction, -128 * the sum of its first-lane inputs x0 + x2, which
 * the sums of every channel start from. */
__attribute__((unused)) static int32_t prepare_pairs(const int8_t *col, uint32_t k_padded, uint32_t *out,
                                                     uint32_t step)
{
    int32_t firsts = 0;
    for (uint32_t k = 0; k < k_padded; k += 4, out += step) {
        const uint32_t a = edgec_load32(col + k), first = edgec_pair_first(a);
        out[0] = first;
        out[1] = edgec_pair_second(a);
        firsts = edgec_smlad(first, 0x00010001u, firsts);
    }
    return -128 * firsts;
}

/* Two columns as int16 lane pairs, interleaved per group of four k: x0[0,2] x0[1,3] x1[0,2] x1[1,3]. */
__attribute__((unused)) static void prepare(const int8_t *col0, const int8_t *col1, uint32_t k_padded, uint32_t *out)
{
    for (uint32_t k = 0; k < k_padded; k += 4) {
        const uint32_t a = edgec_load32(col0 + k), b = edgec_load32(col1 + k);
        out[0] = edgec_sxtb16(a);
        out[1] = edgec_sxtb16_ror8(a);
        out[2] = edgec_sxtb16(b);
        out[3] = edgec_sxtb16_ror8(b);
        out += 4;
    }
}

#else

/* Byte i of a word, sign-extended, as a uint32 (the lanes wrap modulo 2^32). */
#define EDGEC_BYTE(word, i) ((uint32_t)(int32_t)(int8_t)((word) >> (8 * (i))))

/* Two columns packed per k: x0 + x1 * 2^23 (exact in int32 for int8 values), four k a word. */
__attribute__((unused)) static void prepare(const int8_t *col0, const int8_t *col1, uint32_t k_padded, uint32_t *out)
{
    for (uint32_t k = 0; k < k_padded; k += 4, out += 4) {
        const uint32_t a = edgec_load32(col0 + k), b = edgec_load32(col1 + k);
        out[0] = EDGEC_BYTE(a, 0) + (EDGEC_BYTE(b, 0) << EDGEC_LANE_BITS);
        out[1] = EDGEC_BYTE(a, 1) + (EDGEC_BYTE(b, 1) << EDGEC_LANE_BITS);
        out[2] = EDGEC_BYTE(a, 2) + (EDGEC_BYTE(b, 2) << EDGEC_LANE_BITS);
        out[3] = EDGEC_BYTE(a, 3) + (EDGEC_BYTE(b, 3) << EDGEC_LANE_BITS);
    }
}
#undef EDGEC_BYTE

/* Splits a two-lane sum into the pixel-0 and pixel-1 sums: sum = high * 2^23 + low with low
 * in [-2^22, 2^22), so high = floor((sum + 2^22) / 2^23). */
EDGEC_INLINE void split(int64_t sum, int32_t *low, int32_t *high)
{
    *low = (int32_t)((uint32_t)sum << (32 - EDGEC_LANE_BITS)) >> (32 - EDGEC_LANE_BITS);
    *high = (int32_t)((sum + (1 << (EDGEC_LANE_BITS - 1))) >> EDGEC_LANE_BITS);
}

/* The same, added to acc0/acc1. */
EDGEC_INLINE void split_add(int64_t sum, int32_t *acc0, int32_t *acc1)
{
    int32_t low, high;
    split(sum, &low, &high);
    *acc0 += low;
    *acc1 += high;
}

#endif

#endif /* EDGEC_IM2COL_H */
