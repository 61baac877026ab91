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

/* Per-channel requantization. For shift <= -1 (r = -shift) the result is the high word of
 * acc * multiplier + N (double rounding: N = 2^30 + 2^(30+r), less 2^31 for a negative
 * acc; single: N = 2^(30+r)) shifted right by high_shift = r - 1 (see edgec_mbqm_double).
 * A layer with a channel of shift >= 0 takes the generic path (shift = -high_shift - 1). */
typedef struct {
    int32_t multiplier;
    uint32_t nudge_lo;
    int32_t nudge_hi;
    int32_t high_shift;
} edgec_requant_t;

/* How a layer finishes its outputs (a compile-time constant in the kernels, which are
 * instantiated once per mode): the fast requantization with a full int8 range (a single
 * saturation) or a narrower activation range, or the generic requantization. */
enum { EDGEC_STAGE_FULL_RANGE, EDGEC_STAGE_CLAMP, EDGEC_STAGE_GENERIC };

EDGEC_INLINE int8_t edgec_clamp_s8(int32_t value, int32_t low, int32_t high)
{
    return (int8_t)(value < low ? low : value > high ? high : value);
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

/* requantize(x) + zero point, clamped: x is the accumulator plus the channel's bias. */
EDGEC_INLINE int8_t edgec_output_stage_biased(const edgec_outputs_t *o, int32_t x, uint32_t c, int single, int stage)
{
    const edgec_requant_t *q = &o->requant[o->per_channel ? c : 0u];
    int32_t scaled;
    if (stage == EDGEC_STAGE_GENERIC) {
        scaled = edgec_mbqm(x, q->multiplier, -q->high_shift - 1, single);
    } else {
        int64_t total = (int64_t)(((uint64_t)(uint32_t)q->nudge_hi << 32) | q->nudge_lo) + (int64_t)x * q->multiplier;
        if (!single) {
            total -= (int64_t)((uint32_t)x & 0x80000000u);
        }
        scaled = (int32_t)(total >> 32) >> q->high_shift;
    }
    scaled += o->zero_point;
    return stage == EDGEC_STAGE_FULL_RANGE ? edgec_saturate_s8(scaled) : edgec_clamp_s8(scaled, o->low, o->high);
}

EDGEC_INLINE int8_t edgec_output_stage(const edgec_outputs_t *o, int32_t acc, uint32_t c, int single, int stage)
{
    return edgec_output_stage_biased(o, acc + o->bias[c], c, single, stage);
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
/* acc + low halves multiplied (SMLABB), acc + high halves multiplied (SMLATT). */
EDGEC_INLINE int32_t edgec_smlabb(uint32_t a, uint32_t b, int32_t acc) { return __smlabb((int32_t)a, (int32_t)b, acc); }
EDGEC_INLINE int32_t edgec_smlatt(uint32_t a, uint32_t b, int32_t acc) { return __smlatt((int32_t)a, (int32_t)b, acc); }
#elif defined(EDGEC_EMULATE_DSP)
#define EDGEC_DSP 1
EDGEC_INLINE uint32_t edgec_sxtb16(uint32_t x)
{
    return ((uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xFF)) | ((uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xFF) << 16);
}
EDGEC_INLINE uint32_t edgec_sxtb16_ror8(uint32_t x) { return edgec_sxtb16((x >> 8) | (x << 24)); }
EDGEC_INLINE int32_t edgec_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + (int32_t)(int16_t)(a & 0xFFFF) * (int16_t)(b & 0xFFFF);
}
EDGEC_INLINE int32_t edgec_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + (int32_t)(int16_t)(a >> 16) * (int16_t)(b >> 16);
}
EDGEC_INLINE int32_t edgec_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return edgec_smlatt(a, b, edgec_smlabb(a, b, acc));
}
#else
#define EDGEC_DSP 0
#endif

#endif /* EDGEC_ARITH_H */
