/* Floor division of int64 words by a public positive integer: the compiled twin of
 * torch.div(x, d, rounding_mode="floor") in mpc/primitives/truncation.py.
 *
 * Hardware division takes tens of cycles per word; a multiplication takes one. For a divisor d
 * that is not a power of two, with 2^(l-1) < d < 2^l, and any t < 2^63,
 *
 *     floor(t / d) = floor(t m / 2^(63 + l)),   m = ceil(2^(63 + l) / d) < 2^64,
 *
 * because m d - 2^(63 + l) < d <= 2^l (Granlund and Montgomery's bound, for 63-bit numerators).
 * Negative x reduce to that case: with s = x >> 63 (all ones when x < 0), t = x ^ s is x or
 * -x - 1, both below 2^63, and floor(x / d) = floor(t / d) ^ s. `negate` computes
 * -floor(-x / d), the second worker's rounding, with -x wrapping modulo 2^64 as torch's does.
 */
#include <stdint.h>

void floor_divide(const int64_t *x, int64_t *out, int64_t count, int64_t divisor, int negate)
{
    const uint64_t d = (uint64_t)divisor;
    int l = 0;
    while (l < 63 && ((uint64_t)1 << l) < d) l++;  /* 2^(l-1) < d <= 2^l */
    if (d == ((uint64_t)1 << l)) {                 /* a power of two: an arithmetic shift */
        for (int64_t i = 0; i < count; i++) {
            const int64_t v = negate ? (int64_t)(0 - (uint64_t)x[i]) : x[i];
            const int64_t q = v >> l;
            out[i] = negate ? (int64_t)(0 - (uint64_t)q) : q;
        }
        return;
    }
    /* m = ceil(2^(63 + l) / d), computed in 128 bits */
    const unsigned __int128 power = (unsigned __int128)1 << (63 + l);
    const uint64_t m = (uint64_t)((power + d - 1) / d);
    for (int64_t i = 0; i < count; i++) {
        const int64_t v = negate ? (int64_t)(0 - (uint64_t)x[i]) : x[i];
        const uint64_t s = (uint64_t)(v >> 63);
        const uint64_t t = (uint64_t)v ^ s;
        const uint64_t q = (uint64_t)(((unsigned __int128)t * m) >> (63 + l)) ^ s;
        out[i] = negate ? (int64_t)(0 - q) : (int64_t)q;
    }
}
