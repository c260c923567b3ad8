/* Matrix products in the ring Z_2^64: C = A @ B modulo 2^64 (A and B by their strides, C row-major).
 *
 * torch multiplies int64 matrices with plain scalar loops. Here a block of 4 rows of A times
 * 8 columns of B is kept in vector registers over the whole inner dimension. AVX2 has no
 * 64 x 64-bit multiply, so each word is split in 32-bit halves:
 *
 *     a * b = lo(a) lo(b) + (hi(a) lo(b) + lo(a) hi(b)) 2^32   (mod 2^64)
 *
 * The first term needs all 64 bits (one 32 x 32 -> 64 multiply); the cross terms only their low
 * 32 bits, so they are summed in 32-bit lanes, eight at a time, and shifted in at the end.
 * Unsigned arithmetic wraps modulo 2^64 as the ring requires; the result equals torch.matmul's
 * bit for bit (tests/test_ring.py). Without AVX2 the same loops run in scalar C.
 */
#include <stdint.h>

#ifdef __AVX2__
#include <immintrin.h>
#define ROWS 4
#define COLUMNS 8

/* One block: rows i..i+3 of C, columns j..j+7. a_low/a_high, b_low/b_high: the 32-bit halves of
 * A (n x k) and B (k x m), row-major (so a half of A is broadcast straight from memory). */
static void block(const uint32_t *a_low, const uint32_t *a_high, const uint32_t *b_low, const uint32_t *b_high,
                  uint64_t *C, int64_t i, int64_t j, int64_t k, int64_t m)
{
    __m256i full0[ROWS], full1[ROWS], cross[ROWS];
    for (int r = 0; r < ROWS; r++) {
        full0[r] = _mm256_setzero_si256();
        full1[r] = full0[r];
        cross[r] = full0[r];
    }
    for (int64_t p = 0; p < k; p++) {
        const __m256i bl = _mm256_loadu_si256((const __m256i *)(b_low + p * m + j));
        const __m256i bh = _mm256_loadu_si256((const __m256i *)(b_high + p * m + j));
        /* lo(b) in 64-bit lanes, for the full 32 x 32 -> 64 products */
        const __m256i b0 = _mm256_cvtepu32_epi64(_mm256_castsi256_si128(bl));
        const __m256i b1 = _mm256_cvtepu32_epi64(_mm256_extracti128_si256(bl, 1));
        for (int r = 0; r < ROWS; r++) {
            /* lo(a) in every 32-bit lane: _mm256_mul_epu32 reads the even ones */
            const __m256i al = _mm256_set1_epi32((int)a_low[(i + r) * k + p]);
            const __m256i ah = _mm256_set1_epi32((int)a_high[(i + r) * k + p]);
            full0[r] = _mm256_add_epi64(full0[r], _mm256_mul_epu32(al, b0));
            full1[r] = _mm256_add_epi64(full1[r], _mm256_mul_epu32(al, b1));
            cross[r] = _mm256_add_epi32(cross[r], _mm256_add_epi32(_mm256_mullo_epi32(ah, bl),
                                                                   _mm256_mullo_epi32(al, bh)));
        }
    }
    for (int r = 0; r < ROWS; r++) {
        const __m256i c0 = _mm256_cvtepu32_epi64(_mm256_castsi256_si128(cross[r]));
        const __m256i c1 = _mm256_cvtepu32_epi64(_mm256_extracti128_si256(cross[r], 1));
        _mm256_storeu_si256((__m256i *)(C + (i + r) * m + j), _mm256_add_epi64(full0[r], _mm256_slli_epi64(c0, 32)));
        _mm256_storeu_si256((__m256i *)(C + (i + r) * m + j + 4), _mm256_add_epi64(full1[r], _mm256_slli_epi64(c1, 32)));
    }
}
#endif

/* One entry of C, in scalar C: the edges, and everything without AVX2. A and B by their strides. */
static uint64_t entry(const uint64_t *A, const uint64_t *B, int64_t i, int64_t j, int64_t k,
                      int64_t a_row, int64_t a_column, int64_t b_row, int64_t b_column)
{
    uint64_t sum = 0;
    for (int64_t p = 0; p < k; p++) sum += A[i * a_row + p * a_column] * B[p * b_row + j * b_column];
    return sum;
}

/* C = A @ B for A (n x k) and B (k x m) given by their strides in words (a transposed view needs
 * no copy: it is read in place while its halves are taken); C is row-major and contiguous.
 * scratch: room for 2 (n + m) k uint32 (the halves of A and B). Returns 1 if vectorised, else 0. */
int ring_gemm(const uint64_t *A, const uint64_t *B, uint64_t *C, int64_t n, int64_t k, int64_t m,
              int64_t a_row, int64_t a_column, int64_t b_row, int64_t b_column, uint32_t *scratch)
{
    int64_t done_rows = 0, done_columns = 0;
    int vectorised = 0;
#ifdef __AVX2__
    done_rows = n - n % ROWS;
    done_columns = m - m % COLUMNS;
    if (done_rows > 0 && done_columns > 0) {
        uint32_t *a_low = scratch, *a_high = a_low + n * k, *b_low = a_high + n * k, *b_high = b_low + k * m;
        for (int64_t i = 0; i < n; i++)
            for (int64_t p = 0; p < k; p++) {
                const uint64_t word = A[i * a_row + p * a_column];
                a_low[i * k + p] = (uint32_t)word;
                a_high[i * k + p] = (uint32_t)(word >> 32);
            }
        for (int64_t p = 0; p < k; p++)
            for (int64_t j = 0; j < m; j++) {
                const uint64_t word = B[p * b_row + j * b_column];
                b_low[p * m + j] = (uint32_t)word;
                b_high[p * m + j] = (uint32_t)(word >> 32);
            }
        for (int64_t j = 0; j < done_columns; j += COLUMNS)
            for (int64_t i = 0; i < done_rows; i += ROWS)
                block(a_low, a_high, b_low, b_high, C, i, j, k, m);
        vectorised = 1;
    } else {
        done_rows = done_columns = 0;
    }
#else
    (void)scratch;
#endif
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = (i < done_rows ? done_columns : 0); j < m; j++)
            C[i * m + j] = entry(A, B, i, j, k, a_row, a_column, b_row, b_column);
    return vectorised;
}
