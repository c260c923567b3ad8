/* Bit planes of 64-bit words: the compiled twin of mpc/primitives/binary.py's bit_planes.
 *
 * Each block of 64 words is a 64 x 64 bit matrix (row r = word r, column b = bit b). Transposing
 * it turns "bit b of word r" into "bit r of word b": word i of the transposed block packs bit i of
 * the block's 64 words. The transpose swaps ever smaller off-diagonal blocks (32, 16, ..., 1 bits
 * wide), the same six steps of shifts and XORs as the reference, but on one block at a time, in
 * registers, instead of six passes over the whole tensor. planes[i * blocks + w] receives row i
 * of block w's transpose.
 */
#include <stdint.h>

void bit_planes(const uint64_t *words, uint64_t *planes, int64_t blocks)
{
    static const uint64_t masks[6] = {
        0x00000000FFFFFFFFull, 0x0000FFFF0000FFFFull, 0x00FF00FF00FF00FFull,
        0x0F0F0F0F0F0F0F0Full, 0x3333333333333333ull, 0x5555555555555555ull,
    };
    for (int64_t w = 0; w < blocks; w++) {
        uint64_t rows[64];
        for (int r = 0; r < 64; r++) rows[r] = words[w * 64 + r];
        for (int step = 0, j = 32; step < 6; step++, j >>= 1) {
            const uint64_t mask = masks[step];
            for (int k = 0; k < 64; k += 2 * j)
                for (int r = k; r < k + j; r++) {
                    /* the upper j bits of row r against the lower j bits of row r + j */
                    const uint64_t swap = ((rows[r] >> j) ^ rows[r + j]) & mask;
                    rows[r + j] ^= swap;
                    rows[r] ^= swap << j;
                }
        }
        for (int i = 0; i < 64; i++) planes[(int64_t)i * blocks + w] = rows[i];
    }
}
