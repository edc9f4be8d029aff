/* io/idx_writer.c - Megatron IndexedDatasetBuilder semantics over atomic output files. */
#include "io/idx_writer.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

struct mb_idx_writer {
    struct mb_outfile bin, idx;
    char *idx_path;
    enum mb_dtype dtype;
    size_t itemsize;
    int32_t *seq_lens;      /* [nseq] */
    size_t nseq, seq_cap;
    int64_t *doc_index;     /* [ndoc + 1], starts with 0 */
    size_t ndoc_entries, doc_cap;
    int64_t ntokens;
    unsigned char *scratch; /* ids converted to the dtype */
    size_t scratch_cap;
};

mb_idx_writer *mb_idx_writer_open(const char *prefix, enum mb_dtype dtype)
{
    mb_idx_writer *w = mb_xcalloc(1, sizeof *w);
    size_t n = strlen(prefix);
    char *bin_path = mb_xmalloc(n + 5);

    MB_ASSERT(dtype == MB_DTYPE_U16 || dtype == MB_DTYPE_I32);
    w->dtype = dtype;
    w->itemsize = mb_dtype_size(dtype);
    memcpy(bin_path, prefix, n);
    strcpy(bin_path + n, ".bin");
    w->idx_path = mb_xmalloc(n + 5);
    memcpy(w->idx_path, prefix, n);
    strcpy(w->idx_path + n, ".idx");
    int rc = mb_outfile_open(&w->bin, bin_path);
    free(bin_path);
    if (rc != 0) {
        free(w->idx_path);
        free(w);
        return NULL;
    }
    MB_GROW(w->doc_index, w->doc_cap, 1);
    w->doc_index[0] = 0;
    w->ndoc_entries = 1;
    return w;
}

static int write_tokens(mb_idx_writer *w, const int32_t *ids, size_t n)
{
    MB_GROW(w->scratch, w->scratch_cap, n * w->itemsize);
    if (w->dtype == MB_DTYPE_U16) {
        uint16_t *out = (uint16_t *)w->scratch;
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] > 65535)
                return mb_err_set(MB_E_INVALID, w->bin.path,
                                  "token id %d does not fit uint16", ids[i]);
            out[i] = (uint16_t)ids[i];
        }
    } else if (n > 0) { /* scratch is NULL before the first token */
        memcpy(w->scratch, ids, n * 4);
    }
    mb_outfile_write(&w->bin, w->scratch, n * w->itemsize);
    w->ntokens += (int64_t)n;
    return 0;
}

int mb_idx_writer_add_doc(mb_idx_writer *w, const int32_t *ids, size_t n,
                          const int32_t *seq_lens, size_t nseq)
{
    if (write_tokens(w, ids, n) != 0)
        return -1;
    MB_GROW(w->seq_lens, w->seq_cap, w->nseq + nseq);
    if (nseq > 0) /* an empty document has no sequences (and SEQ_LENS may be NULL) */
        memcpy(w->seq_lens + w->nseq, seq_lens, nseq * sizeof *seq_lens);
    w->nseq += nseq;
    MB_GROW(w->doc_index, w->doc_cap, w->ndoc_entries + 1);
    w->doc_index[w->ndoc_entries++] = (int64_t)w->nseq;
    return 0;
}

int mb_idx_writer_append(mb_idx_writer *w, const mb_idx_reader *r)
{
    size_t bin_size;
    const void *bin = mb_idx_reader_bin(r, &bin_size);
    int64_t nseq = mb_idx_reader_nseq(r), ndocs = mb_idx_reader_ndocs(r);

    if (mb_idx_reader_dtype(r) != w->dtype)
        return mb_err_set(MB_E_INVALID, w->bin.path, "cannot append %s tokens to a %s file",
                          mb_dtype_name(mb_idx_reader_dtype(r)), mb_dtype_name(w->dtype));
    mb_outfile_write(&w->bin, bin, bin_size);
    w->ntokens += (int64_t)(bin_size / w->itemsize);
    size_t base = w->nseq;
    MB_GROW(w->seq_lens, w->seq_cap, w->nseq + (size_t)nseq);
    for (int64_t i = 0; i < nseq; i++)
        w->seq_lens[w->nseq++] = mb_idx_reader_seq_len(r, i);
    MB_GROW(w->doc_index, w->doc_cap, w->ndoc_entries + (size_t)ndocs);
    for (int64_t d = 1; d <= ndocs; d++)
        w->doc_index[w->ndoc_entries++] = (int64_t)base + mb_idx_reader_doc_index(r, d);
    return 0;
}

int64_t mb_idx_writer_ndocs(const mb_idx_writer *w)
{
    return (int64_t)w->ndoc_entries - 1;
}

int64_t mb_idx_writer_ntokens(const mb_idx_writer *w)
{
    return w->ntokens;
}

static void write_u64(struct mb_outfile *of, uint64_t v)
{
    mb_outfile_write(of, &v, 8);
}

static void write_index(mb_idx_writer *w)
{
    static const char magic[9] = { 'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0 };
    unsigned char code = (unsigned char)w->dtype;

    mb_outfile_write(&w->idx, magic, sizeof magic);
    write_u64(&w->idx, 1);
    mb_outfile_write(&w->idx, &code, 1);
    write_u64(&w->idx, w->nseq);
    write_u64(&w->idx, w->ndoc_entries);
    mb_outfile_write(&w->idx, w->seq_lens, w->nseq * sizeof *w->seq_lens);
    int64_t ptr = 0;
    for (size_t i = 0; i < w->nseq; i++) {
        mb_outfile_write(&w->idx, &ptr, 8);
        ptr += (int64_t)w->seq_lens[i] * (int64_t)w->itemsize;
    }
    mb_outfile_write(&w->idx, w->doc_index, w->ndoc_entries * sizeof *w->doc_index);
}

static void writer_free(mb_idx_writer *w)
{
    free(w->idx_path);
    free(w->seq_lens);
    free(w->doc_index);
    free(w->scratch);
    free(w);
}

int mb_idx_writer_close(mb_idx_writer *w)
{
    char *bin_path = mb_xstrdup(w->bin.path);
    int rc = -1;

    if (mb_outfile_open(&w->idx, w->idx_path) != 0) {
        mb_outfile_abort(&w->bin);
        goto out;
    }
    write_index(w);
    if (mb_outfile_commit(&w->bin) != 0) {
        mb_outfile_abort(&w->idx);
        goto out;
    }
    if (mb_outfile_commit(&w->idx) != 0) {
        remove(bin_path); /* never leave a .bin without its index */
        goto out;
    }
    rc = 0;
out:
    free(bin_path);
    writer_free(w);
    return rc;
}

void mb_idx_writer_discard(mb_idx_writer *w)
{
    if (!w)
        return;
    mb_outfile_abort(&w->bin);
    mb_outfile_abort(&w->idx);
    writer_free(w);
}
