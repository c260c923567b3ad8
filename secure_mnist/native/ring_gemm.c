/* Matrix products in the ring Z_2^64: C = A @ B modulo 2^64 (A and B by their strides, C row-major).
 *
 * torch multiplies int64 matrices with plain scalar loops. Here a block of 4 rows of A times
 * 4 columns of B is kept in vector registers over the whole inner dimension. AVX2 has no
 * 64 x 64-bit multiply; it multiplies 32-bit halves. With a = hi(a) 2^32 + lo(a):
 *
 *     a * b = lo(a) lo(b) + (hi(a) lo(b) + lo(a) hi(b)) 2^32   (mod 2^64)
 *
 * The first term needs all 64 bits: one 32 x 32 -> 64 multiply (vpmuludq reads the low half of
 * each 64-bit lane, so a and b go in as they are). The cross terms need only their low 32 bits:
 * one 32-bit multiply (vpmulld) of a by b with its halves swapped gives both, side by side in
 * the two halves of a 64-bit lane, and they are summed there and folded together at the end.
 * So four products cost two multiplies, and a block needs 8 accumulators and 3 operands: it fits
 * the 16 vector registers with nothing spilled to memory.
 * Unsigned arithmetic wraps modulo 2^64 as the ring requires; the result equals torch.matmul's
 * bit for bit (tests/test_ring.py). Without AVX2 the same loops run in scalar C.
 */
#include <stdint.h>

#ifdef __AVX2__
#include <immintrin.h>
#define ROWS 4
#define COLUMNS 4

/* One block: rows i..i+3 of C, columns j..j+3. a: A (n x k) row-major. panel: for each p, the
 * block's 4 words of B's row p, then the same 4 words with their halves swapped. */
static void block(const uint64_t *a, const uint64_t *panel, uint64_t *C, int64_t i, int64_t j, int64_t k,
                  int64_t m)
{
    __m256i full[ROWS], cross[ROWS];
    for (int r = 0; r < ROWS; r++) {
        full[r] = _mm256_setzero_si256();
        cross[r] = full[r];
    }
    for (int64_t p = 0; p < k; p++) {
        const __m256i b = _mm256_loadu_si256((const __m256i *)(panel + 2 * COLUMNS * p));
        const __m256i swapped = _mm256_loadu_si256((const __m256i *)(panel + 2 * COLUMNS * p + COLUMNS));
        for (int r = 0; r < ROWS; r++) {
            const __m256i word = _mm256_set1_epi64x((long long)a[(i + r) * k + p]);
            full[r] = _mm256_add_epi64(full[r], _mm256_mul_epu32(word, b));
            cross[r] = _mm256_add_epi32(cross[r], _mm256_mullo_epi32(word, swapped));
        }
    }
    for (int r = 0; r < ROWS; r++) {
        /* lane = [lo(a) hi(b) | hi(a) lo(b)] summed: add the upper half to the lower, shift it up */
        const __m256i folded = _mm256_add_epi32(cross[r], _mm256_srli_epi64(cross[r], 32));
        _mm256_storeu_si256((__m256i *)(C + (i + r) * m + j),
                            _mm256_add_epi64(full[r], _mm256_slli_epi64(folded, 32)));
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
 * no copy: it is read in place while it is packed); C is row-major and contiguous.
 * scratch: room for (n + 2 m) k words (A row-major, and B in panels of 4 columns).
 * Returns 1 if vectorised, else 0. */
int ring_gemm(const uint64_t *A, const uint64_t *B, uint64_t *C, int64_t n, int64_t k, int64_t m,
              int64_t a_row, int64_t a_column, int64_t b_row, int64_t b_column, uint64_t *scratch)
{
    int64_t done_rows = 0, done_columns = 0;
    int vectorised = 0;
#ifdef __AVX2__
    done_rows = n - n % ROWS;
    done_columns = m - m % COLUMNS;
    if (done_rows > 0 && done_columns > 0) {
        uint64_t *a = scratch, *panels = a + n * k;
        for (int64_t i = 0; i < done_rows; i++)
            for (int64_t p = 0; p < k; p++) a[i * k + p] = A[i * a_row + p * a_column];
        for (int64_t j = 0; j < done_columns; j += COLUMNS) {
            uint64_t *panel = panels + 2 * k * j;
            for (int64_t p = 0; p < k; p++)
                for (int64_t c = 0; c < COLUMNS; c++) {
                    const uint64_t word = B[p * b_row + (j + c) * b_column];
                    panel[2 * COLUMNS * p + c] = word;
                    panel[2 * COLUMNS * p + COLUMNS + c] = (word >> 32) | (word << 32);
                }
            for (int64_t i = 0; i < done_rows; i += ROWS) block(a, panel, C, i, j, k, m);
        }
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
