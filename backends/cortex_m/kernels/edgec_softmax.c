/* Softmax over the last axis (TFLite int8 SOFTMAX, gemmlowp fixed point); output scale
 * 1/256, zero point -128. Mirrors edgec/reference/softmax.py step for step. */
#include "edgec_kernels.h"

#define SCALED_DIFF_INTEGER_BITS 5
#define ACCUMULATION_INTEGER_BITS 12

EDGEC_INLINE int32_t srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

EDGEC_INLINE int32_t rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t threshold = (mask >> 1) + (x < 0);
    return (x >> exponent) + ((x & mask) > threshold);
}

EDGEC_INLINE int32_t saturating_shift_left(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    return x > threshold ? INT32_MAX : x < -threshold ? INT32_MIN : (int32_t)((uint32_t)x << exponent);
}

static int32_t exp_on_interval(int32_t a)
{
    const int32_t constant_term = 1895147668, one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = srdhm(x, x), x3 = srdhm(x2, x), x4 = srdhm(x2, x2);
    const int32_t x4_over_4 = rounding_divide_by_pot(x4, 2);
    const int32_t poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, one_third) + x2, 1);
    return constant_term + srdhm(constant_term, x + poly);
}

/* exp(a) for a <= 0 in Q5.26; result in Q0.31. */
static int32_t exp_on_negative_values(int32_t a)
{
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int fractional_bits = 31 - SCALED_DIFF_INTEGER_BITS;
    const int32_t one_quarter = 1 << (fractional_bits - 2), mask = one_quarter - 1;
    const int32_t a_mod = (a & mask) - one_quarter;
    int32_t result = exp_on_interval(saturating_shift_left(a_mod, SCALED_DIFF_INTEGER_BITS));
    const int32_t remainder = a_mod - a;
    for (int i = 0; i < 7; i++) {
        if (remainder & (1 << (fractional_bits - 2 + i))) {
            result = srdhm(result, barrel[i]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t total = (int64_t)a + INT32_MAX;
    const int64_t numerator = total + (total >= 0 ? 1 : -1);
    const int32_t half_denominator = (int32_t)(numerator / 2);
    int32_t x = 1515870810 + srdhm(half_denominator, -1010580540);
    for (int i = 0; i < 3; i++) {
        const int32_t one_minus = (1 << 29) - srdhm(half_denominator, x);
        x = x + saturating_shift_left(srdhm(x, one_minus), 2);
    }
    return saturating_shift_left(x, 1);
}

EDGEC_INLINE int count_leading_zeros(uint32_t x)
{
    return x == 0 ? 32 : __builtin_clz(x);
}

void edgec_softmax(const edgec_softmax_params *p, const int8_t *input, int8_t *output)
{
    for (uint32_t r = 0; r < p->rows; r++) {
        const int8_t *x = input + (size_t)r * p->depth;
        int8_t *y = output + (size_t)r * p->depth;
        int32_t max = -128;
        for (uint32_t i = 0; i < p->depth; i++) {
            max = x[i] > max ? x[i] : max;
        }
        int32_t sum = 0;
        for (uint32_t i = 0; i < p->depth; i++) {
            const int32_t diff = x[i] - max;
            if (diff >= p->diff_min) {
                const int32_t scaled = srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                sum += rounding_divide_by_pot(exp_on_negative_values(scaled), ACCUMULATION_INTEGER_BITS);
            }
        }
        const int headroom = count_leading_zeros((uint32_t)sum);
        const int bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom;
        const int32_t reciprocal = one_over_one_plus_x((int32_t)(((uint32_t)sum << headroom) - (1u << 31)));
        for (uint32_t i = 0; i < p->depth; i++) {
            const int32_t diff = x[i] - max;
            int32_t out = -128;
            if (diff >= p->diff_min) {
                const int32_t scaled = srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                const int32_t e = exp_on_negative_values(scaled);
                out = rounding_divide_by_pot(srdhm(reciprocal, e), bits_over_unit + 31 - 8) - 128;
            }
            y[i] = edgec_saturate_s8(out);
        }
    }
}
