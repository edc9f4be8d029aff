/* io/idx_reader.h - read Megatron indexed token files PREFIX.bin / PREFIX.idx (mmap).
 *
 * The header and every array are checked on open (formats.md 1.3): magic, version,
 * dtype, counts against the file sizes, pointers against lengths, document indices
 * non-decreasing from 0 to the sequence count. After a successful open every accessor
 * is safe for any index in range, from any thread.
 */
#ifndef MB_IO_IDX_READER_H
#define MB_IO_IDX_READER_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"
#include "core/dtype.h"

typedef struct mb_idx_reader mb_idx_reader;

/* Open PREFIX.idx and PREFIX.bin. NULL with mb_err naming the file and field. */
mb_idx_reader *mb_idx_reader_open(const char *prefix);
void mb_idx_reader_close(mb_idx_reader *r);

enum mb_dtype mb_idx_reader_dtype(const mb_idx_reader *r);
int64_t mb_idx_reader_nseq(const mb_idx_reader *r);
/* Number of documents (the document-index array has one more entry). */
int64_t mb_idx_reader_ndocs(const mb_idx_reader *r);
int64_t mb_idx_reader_ntokens(const mb_idx_reader *r);

/* Tokens in sequence I. */
int32_t mb_idx_reader_seq_len(const mb_idx_reader *r, int64_t i);
/* Byte offset of sequence I in .bin. */
int64_t mb_idx_reader_seq_ptr(const mb_idx_reader *r, int64_t i);
/* Entry I of the document-index array, 0 <= I <= ndocs. */
int64_t mb_idx_reader_doc_index(const mb_idx_reader *r, int64_t i);

/* Copy N tokens of sequence SEQ starting at token OFFSET into OUT as int32.
 * The range must lie inside the sequence. */
void mb_idx_reader_tokens(const mb_idx_reader *r, int64_t seq, int64_t offset, int64_t n,
                          int32_t *out);

/* The raw .bin bytes and their size. */
const void *mb_idx_reader_bin(const mb_idx_reader *r, size_t *size);

#endif /* MB_IO_IDX_READER_H */
