/* io/idx_writer.h - write Megatron-compatible token files PREFIX.bin / PREFIX.idx.
 *
 * Both files are written under temporary names and appear only when
 * mb_idx_writer_close() succeeds: .bin is committed first and .idx last, so the index is
 * the completion marker. Semantics follow Megatron's IndexedDatasetBuilder: a document
 * is a list of sequences; an empty document still gets a document-index entry.
 * Not thread-safe.
 */
#ifndef MB_IO_IDX_WRITER_H
#define MB_IO_IDX_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"
#include "core/dtype.h"
#include "io/idx_reader.h"

typedef struct mb_idx_writer mb_idx_writer;

/* Start PREFIX.bin/.idx holding tokens as DTYPE (MB_DTYPE_U16 or MB_DTYPE_I32). NULL
 * with mb_err set on failure. */
mb_idx_writer *mb_idx_writer_open(const char *prefix, enum mb_dtype dtype);

/* Append one document: IDS[n] split into NSEQ sequences of SEQ_LENS tokens (their sum
 * must be N). Returns 0, or -1 if an id does not fit the dtype. */
MB_MUST_CHECK int mb_idx_writer_add_doc(mb_idx_writer *w, const int32_t *ids, size_t n,
                                        const int32_t *seq_lens, size_t nseq);

/* Append every document of R (same dtype required), like Megatron's add_index. */
MB_MUST_CHECK int mb_idx_writer_append(mb_idx_writer *w, const mb_idx_reader *r);

int64_t mb_idx_writer_ndocs(const mb_idx_writer *w);
int64_t mb_idx_writer_ntokens(const mb_idx_writer *w);

/* Write the index, sync both files and move them into place. W is freed either way.
 * Returns 0 when both files are in place, or -1 with mb_err set and neither present. */
MB_MUST_CHECK int mb_idx_writer_close(mb_idx_writer *w);

/* Free W and delete its temporaries. Accepts NULL. */
void mb_idx_writer_discard(mb_idx_writer *w);

#endif /* MB_IO_IDX_WRITER_H */
