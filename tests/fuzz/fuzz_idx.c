/* tests/fuzz/fuzz_idx.c - the Megatron .idx/.bin reader (io/idx_reader.c) on any bytes.
 *
 * Input: 4 bytes giving the .bin size (little-endian, modulo 1 MiB; the .bin holds the
 * bytes 0, 1, 2 ...), then the .idx file. Once mb_idx_reader_open accepts the pair,
 * every sequence must lie inside the .bin and the document index must stay within the
 * sequences (its promise), and every token of every sequence is read.
 */
#include <stdlib.h>
#include <string.h>

#include "io/idx_reader.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char bin[1 << 20];
    uint32_t bin_size;
    char prefix[4200];

    if (size < 4)
        return 0;
    if (!bin[1])
        for (size_t i = 0; i < sizeof bin; i++)
            bin[i] = (unsigned char)(i * 7 + 1);
    memcpy(&bin_size, data, 4);
    bin_size %= sizeof bin;
    fuzz_file("d.idx", data + 4, size - 4);
    fuzz_file("d.bin", bin, bin_size);
    snprintf(prefix, sizeof prefix, "%s/d", fuzz_dir());
    mb_idx_reader *r = mb_idx_reader_open(prefix);
    if (!r)
        return 0;
    size_t got_size;
    (void)mb_idx_reader_bin(r, &got_size);
    fuzz_check(got_size == bin_size, "bin size");
    int64_t nseq = mb_idx_reader_nseq(r), ndocs = mb_idx_reader_ndocs(r);
    int64_t item = (int64_t)mb_dtype_size(mb_idx_reader_dtype(r));
    fuzz_check(nseq >= 0 && ndocs >= 0, "negative counts");
    for (int64_t i = 0; i < nseq; i++) {
        int64_t len = mb_idx_reader_seq_len(r, i), ptr = mb_idx_reader_seq_ptr(r, i);
        fuzz_check(len >= 0 && ptr >= 0 && ptr + len * item <= (int64_t)got_size,
                   "sequence outside the .bin");
        int32_t *tok = malloc((size_t)(len ? len : 1) * sizeof *tok);
        mb_idx_reader_tokens(r, i, 0, len, tok);
        free(tok);
    }
    for (int64_t d = 0; d <= ndocs; d++) {
        int64_t s = mb_idx_reader_doc_index(r, d);
        fuzz_check(s >= 0 && s <= nseq, "document index outside the sequences");
    }
    mb_idx_reader_close(r);
    return 0;
}
