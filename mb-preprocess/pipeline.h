/* mb-preprocess/pipeline.h - read, tokenize and write one rank's share of the input.
 *
 * One reader thread cuts the input into batches of whole lines, N worker threads parse
 * and tokenize batches, and the calling thread writes finished batches strictly in
 * input order. The output therefore does not depend on the worker count. In training
 * mode workers count pre-tokens into per-worker BPE trainers instead.
 */
#ifndef MB_PREPROCESS_PIPELINE_H
#define MB_PREPROCESS_PIPELINE_H

#include <stdint.h>

#include "io/idx_writer.h"
#include "tok/tokenizer.h"
#include "tok/train_bpe.h"

/* Lines of PATH whose start offset (in the decompressed stream) is in [begin, end). */
struct pp_segment {
    const char *path;
    int64_t begin, end;
    /* for progress: the segment's size, in decompressed bytes of [begin, end) when
     * MEASURED (the stream was measured to share it out), else in bytes of the file;
     * -1 when unknown (standard input, a pipe) */
    int64_t units;
    int measured;
};

struct pp_job {
    const struct pp_segment *segs;
    size_t nsegs;
    const char *const *keys;
    size_t nkeys;
    int workers;
    int skip_bad;
    int show_progress;        /* a progress line on a terminal stderr */
    int64_t log_interval;     /* > 0: a log line every this many documents */
    size_t max_line;          /* longest input line accepted (--max-line-bytes) */
    /* encoding: */
    const mb_tokenizer *tok;
    int add_special;
    int append_eod;
    mb_idx_writer **writers;  /* [nkeys] */
    /* training (tok == NULL): counts end up here */
    mb_bpe_trainer *trainer;
    int train_vocab;
    /* results */
    int64_t docs, lines_skipped, bytes, tokens, utf8_repairs;
};

/* Run the job. Returns 0, or -1 with mb_err set (the first bad line in input order). */
int pp_run(struct pp_job *job);

#endif /* MB_PREPROCESS_PIPELINE_H */
