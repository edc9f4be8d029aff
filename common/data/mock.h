/* data/mock.h - Megatron's MockGPTLowLevelDataset: synthetic sequences, no files.
 *
 * 100000 sequences whose lengths are numpy.random.default_rng(0).integers(1, 4096,
 * 100000, dtype=int32) (PCG64 seeded through SeedSequence, Lemire's bounded draws);
 * sequence i of length L holds (1, 2, ..., L-1) mod vocab followed by EOD. Nothing
 * depends on the rank, so every rank sees the same data.
 */
#ifndef MB_DATA_MOCK_H
#define MB_DATA_MOCK_H

#include <stdint.h>

#define MB_MOCK_SEQUENCES 100000

/* The MB_MOCK_SEQUENCES sequence lengths into OUT. */
void mb_mock_sequence_lengths(int32_t *out);

/* N tokens from OFFSET of a mock sequence of LEN tokens into OUT. */
void mb_mock_tokens(int32_t len, int64_t offset, int64_t n, int64_t vocab, int32_t eod,
                    int32_t *out);

#endif /* MB_DATA_MOCK_H */
