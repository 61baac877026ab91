/* edgec kernel internals: requantization arithmetic and the DSP-extension primitives.
 *
 * edgec_mbqm() is TFLite's MultiplyByQuantizedMultiplier in the rounding the project was
 * generated for (edgec_config.h): double rounding (SRDHM rounding half up, then a rounding
 * divide by a power of two rounding half away from zero), or single rounding. On cores
 * without the DSP extension (and on the host) the SIMD primitives are plain C with the
 * same results, so the DSP code paths can be tested anywhere.
 */
#ifndef EDGEC_ARITH_H
#define EDGEC_ARITH_H

#include <stdint.h>
#include <string.h>

#include "edgec_config.h"

#if defined(__ARM_FEATURE_SAT) || defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

#define EDGEC_INLINE static inline __attribute__((always_inline))

/* Double rounding in one 64-bit step. With r = -shift >= 1 the two roundings
 *   h = floor((x*m + 2^30) / 2^31),  out = h / 2^r rounded half away from zero
 * equal floor((x*m + 2^30 + 2^(30+r) - [x < 0] * 2^31) / 2^(31+r)): the half-away nudge
 * 2^(r-1) - [h < 0] moves inside the first floor, and [h < 0] may be replaced by [x < 0]
 * (they differ only where the result is 0 either way). Checked against the reference
 * arithmetic in the test suite. With shift >= 0 there is one rounding, after x << shift. */
EDGEC_INLINE int32_t edgec_mbqm_double(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift >= 0) {
        const int32_t scaled = (int32_t)((uint32_t)x << shift);
        return (int32_t)(((int64_t)scaled * multiplier + ((int64_t)1 << 30)) >> 31);
    }
    const int32_t right = -shift;
    const int64_t nudge = ((int64_t)1 << 30) + ((int64_t)1 << (30 + right)) - (int64_t)((uint32_t)x & 0x80000000u);
    const int64_t total = (int64_t)x * multiplier + nudge;
    return (int32_t)((int32_t)(total >> 32) >> (right - 1));
}

/* Single rounding: (x*m + 2^(30-shift)) >> (31-shift), saturated to int32. With shift in
 * [-31, -1] the sum is below 2^63 and the result within int32, so it is the high word
 * shifted right by -shift - 1 (nested floors), with no 64-bit variable shift or saturation. */
EDGEC_INLINE int32_t edgec_mbqm_single(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift <= -1) {
        return (int32_t)(((int64_t)x * multiplier + ((int64_t)1 << (30 - shift))) >> 32) >> (-shift - 1);
    }
    const int32_t total = 31 - shift;
    const int64_t rounded = ((int64_t)x * multiplier + ((int64_t)1 << (total - 1))) >> total;
    return rounded > INT32_MAX ? INT32_MAX : rounded < INT32_MIN ? INT32_MIN : (int32_t)rounded;
}

/* single: 0 for double rounding, 1 for single rounding (a compile-time constant at call sites). */
EDGEC_INLINE int32_t edgec_mbqm(int32_t x, int32_t multiplier, int32_t shift, int single)
{
    return single ? edgec_mbqm_single(x, multiplier, shift) : edgec_mbqm_double(x, multiplier, shift);
}

/* Per-channel requantization: multiplier and right = -shift (TFLite's shift, negative to the
 * right). The fast stage (layers whose every channel has 1 <= right <= 22 and whose
 * accumulators stay below 2^30 in magnitude: backends/cortex_m/layers.py checks both) computes
 * requantize(x) + zero point from x2 = 2x: with R = 2^(right-1) + zero_point * 2^right
 * (`rounding`),
 *   double rounding: (hi(x2 * m + R * 2^32 + 2^31) - [x < 0]) >> right
 *   single rounding:  hi(x2 * m + R * 2^32) >> right
 * where hi() is the high word. Doubling turns SRDHM's 2^30 nudge into the 2^31 of a rounding
 * high multiply (SMMLAR on DSP cores, SMMLA for single rounding); the half-away nudge
 * 2^(right-1) - [h < 0] of the rounding divide moves inside the floors (see
 * edgec_mbqm_double), and since the zero point times 2^right is a whole multiple of the
 * divisor it passes the floor unchanged. Checked against the exact arithmetic in
 * tests/test_output_stage.py. Other layers take the generic stage (edgec_mbqm, then the zero point). */
typedef struct {
    int32_t multiplier;
    int32_t right;
    int32_t rounding;
} edgec_requant_t;

/* hi(x2 * m + rounding * 2^32 [+ 2^31 unless single]): the fast stage's high word. */
EDGEC_INLINE int32_t edgec_high_word(int32_t x2, int32_t multiplier, int32_t rounding, int single)
{
    int32_t high;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    if (single) {
        __asm__("smmla %0, %1, %2, %3" : "=r"(high) : "r"(x2), "r"(multiplier), "r"(rounding));
    } else {
        __asm__("smmlar %0, %1, %2, %3" : "=r"(high) : "r"(x2), "r"(multiplier), "r"(rounding));
    }
#else
    const int64_t nudge = (int64_t)(((uint64_t)(uint32_t)rounding << 32) | (single ? 0u : 0x80000000u));
    high = (int32_t)(((int64_t)x2 * multiplier + nudge) >> 32);
#endif
    return high;
}

/* How a layer finishes its outputs (a compile-time constant in the kernels, which are
 * instantiated once per mode): the fast requantization with a full int8 range (a single
 * saturation) or a narrower activation range, or the generic requantization. */
enum { EDGEC_STAGE_FULL_RANGE, EDGEC_STAGE_CLAMP, EDGEC_STAGE_GENERIC };

EDGEC_INLINE int8_t edgec_clamp_s8(int32_t value, int32_t low, int32_t high)
{
    return (int8_t)(value < low ? low : value > high ? high : value);
}

EDGEC_INLINE int16_t edgec_clamp_s16(int32_t value, int32_t low, int32_t high)
{
    return (int16_t)(value < low ? low : value > high ? high : value);
}

EDGEC_INLINE int8_t edgec_saturate_s8(int32_t value)
{
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
    return (int8_t)__ssat(value, 8);
#else
    return edgec_clamp_s8(value, -128, 127);
#endif
}

/* The output stage of an accumulating kernel, its constants copied into locals once per call
 * (so that stores to the output cannot force them to be reloaded). */
typedef struct {
    const int32_t *bias;
    const edgec_requant_t *requant;
    int32_t zero_point, low, high;
    uint32_t per_channel; /* 0: requant[0] serves every channel */
} edgec_outputs_t;

/* requantize(x) + zero point, clamped, with a channel's constants q (a copy: callers load
 * the constants of every output they compute before storing any, since a store through an
 * int8_t pointer may alias them and would force them to be reloaded). */
EDGEC_INLINE int8_t edgec_requantize(const edgec_outputs_t *o, edgec_requant_t q, int32_t x, int single, int stage)
{
    int32_t scaled;
    if (stage == EDGEC_STAGE_GENERIC) {
        scaled = edgec_mbqm(x, q.multiplier, -q.right, single) + o->zero_point;
    } else {
        const int32_t x2 = (int32_t)((uint32_t)x << 1);
        int32_t high = edgec_high_word(x2, q.multiplier, q.rounding, single);
        if (!single) {
            high += x2 >> 31;
        }
        scaled = high >> q.right;
    }
    return stage == EDGEC_STAGE_FULL_RANGE ? edgec_saturate_s8(scaled) : edgec_clamp_s8(scaled, o->low, o->high);
}

/* The constants of channel c. */
EDGEC_INLINE edgec_requant_t edgec_channel_requant(const edgec_outputs_t *o, uint32_t c)
{
    return o->requant[o->per_channel ? c : 0u];
}

/* requantize(x) + zero point, clamped: x is the accumulator plus the channel's bias. */
EDGEC_INLINE int8_t edgec_output_stage_biased(const edgec_outputs_t *o, int32_t x, uint32_t c, int single, int stage)
{
    return edgec_requantize(o, edgec_channel_requant(o, c), x, single, stage);
}

EDGEC_INLINE int8_t edgec_output_stage(const edgec_outputs_t *o, int32_t acc, uint32_t c, int single, int stage)
{
    return edgec_output_stage_biased(o, acc + o->bias[c], c, single, stage);
}

/* The outputs of channels c and c+1 (the second only when two_channels) for two pixels:
 * acc = {c p0, c p1, c+1 p0, c+1 p1} without the biases. Every constant is loaded before the
 * first store. */
EDGEC_INLINE void edgec_output_2x2(const edgec_outputs_t *o, const int32_t acc[4], uint32_t c, int8_t *out0,
                                   int8_t *out1, int two_channels, int single, int stage)
{
    const edgec_requant_t q0 = edgec_channel_requant(o, c);
    const int32_t b0 = o->bias[c];
    if (!two_channels) {
        const int8_t r00 = edgec_requantize(o, q0, acc[0] + b0, single, stage);
        const int8_t r01 = edgec_requantize(o, q0, acc[1] + b0, single, stage);
        out0[c] = r00;
        out1[c] = r01;
        return;
    }
    const edgec_requant_t q1 = edgec_channel_requant(o, c + 1);
    const int32_t b1 = o->bias[c + 1];
    const int8_t r00 = edgec_requantize(o, q0, acc[0] + b0, single, stage);
    const int8_t r01 = edgec_requantize(o, q0, acc[1] + b0, single, stage);
    const int8_t r10 = edgec_requantize(o, q1, acc[2] + b1, single, stage);
    const int8_t r11 = edgec_requantize(o, q1, acc[3] + b1, single, stage);
    out0[c] = r00;
    out1[c] = r01;
    out0[c + 1] = r10;
    out1[c + 1] = r11;
}

EDGEC_INLINE uint32_t edgec_load32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The stage a layer needs (see the enum above). */
EDGEC_INLINE int edgec_stage_of(const edgec_outputs_t *o, int generic)
{
    return generic ? EDGEC_STAGE_GENERIC
                   : (o->low == -128 && o->high == 127) ? EDGEC_STAGE_FULL_RANGE : EDGEC_STAGE_CLAMP;
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define EDGEC_DSP 1
/* [b0, b2] and [b1, b3] of a word of four int8, sign-extended to int16 lanes. */
EDGEC_INLINE uint32_t edgec_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int32_t)x); }
EDGEC_INLINE uint32_t edgec_sxtb16_ror8(uint32_t x)
{
    uint32_t result;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(x));
    return result;
}
EDGEC_INLINE int32_t edgec_smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad((int32_t)a, (int32_t)b, acc); }
/* The bytes of each 16-bit half swapped: [b1 b0 b3 b2]. */
EDGEC_INLINE uint32_t edgec_rev16(uint32_t x)
{
    uint32_t result;
    __asm__("rev16 %0, %1" : "=r"(result) : "r"(x));
    return result;
}
/* acc + low halves multiplied (SMLABB), acc + high halves multiplied (SMLATT). */
EDGEC_INLINE int32_t edgec_smlabb(uint32_t a, uint32_t b, int32_t acc) { return __smlabb((int32_t)a, (int32_t)b, acc); }
EDGEC_INLINE int32_t edgec_smlatt(uint32_t a, uint32_t b, int32_t acc) { return __smlatt((int32_t)a, (int32_t)b, acc); }
/* acc + a's high half times b's low half (SMLATB), a's low half times b's high half (SMLABT). */
EDGEC_INLINE int32_t edgec_smlatb(uint32_t a, uint32_t b, int32_t acc) { return __smlatb((int32_t)a, (int32_t)b, acc); }
EDGEC_INLINE int32_t edgec_smlabt(uint32_t a, uint32_t b, int32_t acc) { return __smlabt((int32_t)a, (int32_t)b, acc); }
/* acc + both int16 lane products, in 64 bits (SMLALD). */
EDGEC_INLINE int64_t edgec_smlald(uint32_t a, uint32_t b, int64_t acc) { return __smlald((int32_t)a, (int32_t)b, acc); }
#elif defined(EDGEC_EMULATE_DSP)
#define EDGEC_DSP 1
/* As the instructions: products of int16 halves, sums wrapping modulo 2^32. */
EDGEC_INLINE uint32_t edgec_sxtb16(uint32_t x)
{
    return ((uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xFF)) | ((uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xFF) << 16);
}
EDGEC_INLINE uint32_t edgec_sxtb16_ror8(uint32_t x) { return edgec_sxtb16((x >> 8) | (x << 24)); }
EDGEC_INLINE uint32_t edgec_rev16(uint32_t x) { return ((x & 0x00FF00FFu) << 8) | ((x >> 8) & 0x00FF00FFu); }
EDGEC_INLINE int32_t edgec_half(uint32_t x, int high) { return (int16_t)(high ? x >> 16 : x & 0xFFFF); }
EDGEC_INLINE int32_t edgec_product_add(int32_t acc, int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(a * b));
}
EDGEC_INLINE int32_t edgec_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return edgec_product_add(acc, edgec_half(a, 0), edgec_half(b, 0));
}
EDGEC_INLINE int32_t edgec_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return edgec_product_add(acc, edgec_half(a, 1), edgec_half(b, 1));
}
EDGEC_INLINE int32_t edgec_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return edgec_smlatt(a, b, edgec_smlabb(a, b, acc));
}
EDGEC_INLINE int32_t edgec_smlatb(uint32_t a, uint32_t b, int32_t acc)
{
    return edgec_product_add(acc, edgec_half(a, 1), edgec_half(b, 0));
}
EDGEC_INLINE int32_t edgec_smlabt(uint32_t a, uint32_t b, int32_t acc)
{
    return edgec_product_add(acc, edgec_half(a, 0), edgec_half(b, 1));
}
EDGEC_INLINE int64_t edgec_smlald(uint32_t a, uint32_t b, int64_t acc)
{
    return acc + edgec_half(a, 0) * edgec_half(b, 0) + edgec_half(a, 1) * edgec_half(b, 1);
}
#else
#define EDGEC_DSP 0
#endif

/* The dot-product forms of Conv/FullyConnected (edgec_dot.h, edgec_im2col.h, edgec_conv_sums.h):
 * the DSP ones on DSP cores, the scalar ones elsewhere and in a translation unit that defines
 * EDGEC_SCALAR_DOT before its first include. */
#if EDGEC_DSP && !defined(EDGEC_SCALAR_DOT)
#define EDGEC_DSP_DOT 1
#else
#define EDGEC_DSP_DOT 0
#endif

#if EDGEC_DSP
/* The offset-pair form of four int8 inputs a = [x0 x1 x2 x3] (edgec_dot.h): the first word is
 * [x0, x2] in int16 lanes, the second [x1 - 128 - 256 x0, x3 - 128 - 256 x2], which is in int16
 * range for every int8 input (its high byte is ~x0, its low byte x1 ^ 0x80). */
#define EDGEC_PAIR_SECOND_FLIP 0xFF80FF80u
EDGEC_INLINE uint32_t edgec_pair_first(uint32_t a) { return edgec_sxtb16(a); }
EDGEC_INLINE uint32_t edgec_pair_second(uint32_t a) { return edgec_rev16(a) ^ EDGEC_PAIR_SECOND_FLIP; }

/* A column's offset-pair correction: -128 * the sum of its inputs at k = 0, 2 mod 4. */
EDGEC_INLINE int32_t edgec_pair_correction(const int8_t *col, uint32_t k_padded)
{
    int32_t firsts = 0;
    for (uint32_t k = 0; k < k_padded; k += 4) {
        firsts = edgec_smlad(edgec_pair_first(edgec_load32(col + k)), 0x00010001u, firsts);
    }
    return -128 * firsts;
}
#endif

#endif /* EDGEC_ARITH_H */
