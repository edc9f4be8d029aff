/* tests/helpers/idx_dump.c - print an indexed dataset through mb's reader, in the text
 * form tests/oracle/megatron_read.py --dump prints through megatron-core's (one line
 * of ids per sequence, then "document_indices: ..."), so the two readers can be
 * compared with cmp.
 *
 *   idx_dump PREFIX
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/err.h"
#include "io/idx_reader.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: idx_dump PREFIX\n");
        return 2;
    }
    mb_idx_reader *r = mb_idx_reader_open(argv[1]);
    if (!r) {
        fprintf(stderr, "idx_dump: error: %s: %s\n", mb_err_where(), mb_err_what());
        return 1;
    }
    int64_t nseq = mb_idx_reader_nseq(r), ndocs = mb_idx_reader_ndocs(r);
    int32_t *ids = NULL;
    for (int64_t i = 0; i < nseq; i++) {
        int32_t n = mb_idx_reader_seq_len(r, i);
        ids = realloc(ids, (size_t)(n ? n : 1) * sizeof *ids);
        mb_idx_reader_tokens(r, i, 0, n, ids);
        for (int32_t k = 0; k < n; k++)
            printf(k ? " %d" : "%d", ids[k]);
        printf("\n");
    }
    printf("document_indices:");
    for (int64_t d = 0; d <= ndocs; d++)
        printf(" %lld", (long long)mb_idx_reader_doc_index(r, d));
    printf("\n");
    free(ids);
    mb_idx_reader_close(r);
    return 0;
}
