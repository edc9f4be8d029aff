/* io/idx_reader.c - validated read-only view of a Megatron .bin/.idx pair. */
#include "io/idx_reader.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

#define IDX_HEADER_SIZE 34
static const char idx_magic[9] = { 'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0 };

struct mb_idx_reader {
    char *idx_path, *bin_path;
    const unsigned char *idx;
    size_t idx_size;
    const unsigned char *bin;
    size_t bin_size;
    int dtype;
    size_t itemsize;
    int64_t nseq, ndoc_entries;
    const unsigned char *lengths;   /* int32[nseq], unaligned */
    const unsigned char *pointers;  /* int64[nseq], unaligned */
    const unsigned char *doc_index; /* int64[ndoc_entries], unaligned */
};

static uint64_t rd_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int32_t rd_i32(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int64_t rd_i64(const unsigned char *p)
{
    int64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int parse_header(mb_idx_reader *r)
{
    const char *where = r->idx_path;

    if (r->idx_size < IDX_HEADER_SIZE)
        return mb_err_set(MB_E_PARSE, where, "file is %zu bytes, shorter than the %d-byte header",
                          r->idx_size, IDX_HEADER_SIZE);
    if (memcmp(r->idx, idx_magic, sizeof idx_magic) != 0)
        return mb_err_set(MB_E_PARSE, where, "not a Megatron index (bad magic)");
    uint64_t version = rd_u64(r->idx + 9);
    if (version != 1)
        return mb_err_set(MB_E_UNSUPPORTED, where, "index version %llu (only 1 is known)",
                          (unsigned long long)version);
    r->dtype = r->idx[17];
    r->itemsize = mb_dtype_is_megatron(r->dtype) ? mb_dtype_size(r->dtype) : 0;
    if (r->itemsize == 0)
        return mb_err_set(MB_E_PARSE, where, "unknown dtype code %d", r->dtype);
    uint64_t nseq = rd_u64(r->idx + 18), ndoc = rd_u64(r->idx + 26);
    uint64_t body = r->idx_size - IDX_HEADER_SIZE;
    /* 12 bytes per sequence and 8 per document entry, optionally 1 mode byte per sequence */
    if (nseq > body / 12 || ndoc > body / 8 ||
        (body != 12 * nseq + 8 * ndoc && body != 13 * nseq + 8 * ndoc))
        return mb_err_set(MB_E_PARSE, where,
                          "header says %llu sequences and %llu document entries but the "
                          "file holds %zu bytes (truncated or corrupt)",
                          (unsigned long long)nseq, (unsigned long long)ndoc, r->idx_size);
    r->nseq = (int64_t)nseq;
    r->ndoc_entries = (int64_t)ndoc;
    r->lengths = r->idx + IDX_HEADER_SIZE;
    r->pointers = r->lengths + 4 * nseq;
    r->doc_index = r->pointers + 8 * nseq;
    return 0;
}

static int check_sequences(mb_idx_reader *r)
{
    int64_t expect = 0;

    for (int64_t i = 0; i < r->nseq; i++) {
        int32_t len = rd_i32(r->lengths + 4 * i);
        int64_t ptr = rd_i64(r->pointers + 8 * i);
        if (len < 0)
            return mb_err_set(MB_E_PARSE, r->idx_path, "sequence %lld has length %d",
                              (long long)i, len);
        if (ptr != expect)
            return mb_err_set(MB_E_PARSE, r->idx_path,
                              "sequence %lld starts at byte %lld, expected %lld",
                              (long long)i, (long long)ptr, (long long)expect);
        expect += (int64_t)len * (int64_t)r->itemsize;
    }
    if ((uint64_t)expect != r->bin_size)
        return mb_err_set(MB_E_PARSE, r->bin_path,
                          "file is %zu bytes but the index describes %lld (truncated or "
                          "not the pair of this index)", r->bin_size, (long long)expect);
    return 0;
}

static int check_documents(mb_idx_reader *r)
{
    if (r->ndoc_entries < 1 || rd_i64(r->doc_index) != 0)
        return mb_err_set(MB_E_PARSE, r->idx_path, "document index does not start at 0");
    for (int64_t i = 1; i < r->ndoc_entries; i++) {
        int64_t prev = rd_i64(r->doc_index + 8 * (i - 1)), cur = rd_i64(r->doc_index + 8 * i);
        if (cur < prev || cur > r->nseq)
            return mb_err_set(MB_E_PARSE, r->idx_path, "document index entry %lld is %lld",
                              (long long)i, (long long)cur);
    }
    if (rd_i64(r->doc_index + 8 * (r->ndoc_entries - 1)) != r->nseq)
        return mb_err_set(MB_E_PARSE, r->idx_path,
                          "last document index entry is not the sequence count %lld",
                          (long long)r->nseq);
    return 0;
}

static char *join(const char *prefix, const char *ext)
{
    char *p = mb_xmalloc(strlen(prefix) + strlen(ext) + 1);
    strcpy(p, prefix);
    strcat(p, ext);
    return p;
}

mb_idx_reader *mb_idx_reader_open(const char *prefix)
{
    mb_idx_reader *r = mb_xcalloc(1, sizeof *r);
    const void *map;

    r->idx_path = join(prefix, ".idx");
    r->bin_path = join(prefix, ".bin");
    if (mb_fs_map(r->idx_path, &map, &r->idx_size) != 0)
        goto fail;
    r->idx = map;
    if (parse_header(r) != 0)
        goto fail;
    if (mb_fs_map(r->bin_path, &map, &r->bin_size) != 0)
        goto fail;
    r->bin = map;
    if (check_sequences(r) != 0 || check_documents(r) != 0)
        goto fail;
    return r;

fail:
    mb_idx_reader_close(r);
    return NULL;
}

void mb_idx_reader_close(mb_idx_reader *r)
{
    if (!r)
        return;
    mb_fs_unmap(r->idx, r->idx_size);
    mb_fs_unmap(r->bin, r->bin_size);
    free(r->idx_path);
    free(r->bin_path);
    free(r);
}

enum mb_dtype mb_idx_reader_dtype(const mb_idx_reader *r)
{
    return (enum mb_dtype)r->dtype;
}

int64_t mb_idx_reader_nseq(const mb_idx_reader *r)
{
    return r->nseq;
}

int64_t mb_idx_reader_ndocs(const mb_idx_reader *r)
{
    return r->ndoc_entries - 1;
}

int64_t mb_idx_reader_ntokens(const mb_idx_reader *r)
{
    return (int64_t)(r->bin_size / r->itemsize);
}

int32_t mb_idx_reader_seq_len(const mb_idx_reader *r, int64_t i)
{
    return rd_i32(r->lengths + 4 * i);
}

int64_t mb_idx_reader_seq_ptr(const mb_idx_reader *r, int64_t i)
{
    return rd_i64(r->pointers + 8 * i);
}

int64_t mb_idx_reader_doc_index(const mb_idx_reader *r, int64_t i)
{
    return rd_i64(r->doc_index + 8 * i);
}

void mb_idx_reader_tokens(const mb_idx_reader *r, int64_t seq, int64_t offset, int64_t n,
                          int32_t *out)
{
    const unsigned char *p = r->bin + mb_idx_reader_seq_ptr(r, seq) + offset * (int64_t)r->itemsize;

    for (int64_t k = 0; k < n; k++, p += r->itemsize) {
        switch (r->dtype) {
        case MB_DTYPE_U16: {
            uint16_t v;
            memcpy(&v, p, 2);
            out[k] = v;
            break;
        }
        case MB_DTYPE_I32:
            memcpy(&out[k], p, 4);
            break;
        case MB_DTYPE_U8:
            out[k] = *p;
            break;
        case MB_DTYPE_I8:
            out[k] = (int8_t)*p;
            break;
        case MB_DTYPE_I16: {
            int16_t v;
            memcpy(&v, p, 2);
            out[k] = v;
            break;
        }
        default: { /* int64 (float types are not token data) */
            int64_t v;
            memcpy(&v, p, 8);
            out[k] = (int32_t)v;
        }
        }
    }
}

const void *mb_idx_reader_bin(const mb_idx_reader *r, size_t *size)
{
    *size = r->bin_size;
    return r->bin;
}
