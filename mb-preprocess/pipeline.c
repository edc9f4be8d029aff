/* mb-preprocess/pipeline.c - reader thread, worker threads, in-order writer. */
#include "pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/defs.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/progress.h"
#include "core/str.h"
#include "io/jsonl.h"
#include "io/lines.h"

#define BATCH_BYTES (1 << 18)
#define BATCH_LINES 1024

struct line_ref {
    size_t off, len;
    int64_t lineno;
};

struct key_out {
    struct mb_ids ids;      /* every token of the batch for this key */
    struct mb_ids seq_lens; /* tokens per sequence */
    struct mb_ids doc_nseq; /* sequences per document */
};

struct batch {
    int64_t seq;
    struct batch *next;
    const char *path;
    struct mb_buf text;
    struct line_ref *lines;
    size_t nlines, lines_cap;
    struct key_out *out;    /* [nkeys] */
    int64_t skipped, repairs, tokens;
    int64_t progress;       /* input units done once this batch is written */
    int failed;
    struct mb_err_record err;
};

struct pipeline {
    struct pp_job *job;
    pthread_mutex_t lock;
    pthread_cond_t todo_cv, space_cv, done_cv;
    struct batch *todo_head, *todo_tail;
    struct batch **done;     /* [limit], indexed by seq % limit */
    size_t limit;
    int64_t next_seq;        /* next sequence number the reader hands out */
    int64_t inflight;
    int reader_finished, stop;
    mb_bpe_trainer **trainers; /* [workers], training mode */
    int next_worker_id;
};

/* ---- batches ------------------------------------------------------------ */

static struct batch *batch_new(const struct pp_job *job, const char *path)
{
    struct batch *b = mb_xcalloc(1, sizeof *b);

    b->path = path;
    b->out = mb_xcalloc(job->nkeys, sizeof *b->out);
    return b;
}

static void batch_free(struct batch *b, size_t nkeys)
{
    if (!b)
        return;
    for (size_t k = 0; k < nkeys; k++) {
        mb_ids_release(&b->out[k].ids);
        mb_ids_release(&b->out[k].seq_lens);
        mb_ids_release(&b->out[k].doc_nseq);
    }
    free(b->out);
    mb_buf_release(&b->text);
    free(b->lines);
    free(b);
}

static void batch_add_line(struct batch *b, const char *line, size_t len, int64_t lineno)
{
    MB_GROW(b->lines, b->lines_cap, b->nlines + 1);
    b->lines[b->nlines++] = (struct line_ref){ b->text.len, len, lineno };
    mb_buf_add(&b->text, line, len);
}

/* ---- queue -------------------------------------------------------------- */

/* Hand B to the workers; waits while too many batches are in flight. 0 if stopped. */
static int submit(struct pipeline *p, struct batch *b)
{
    pthread_mutex_lock(&p->lock);
    while (p->inflight >= (int64_t)p->limit && !p->stop)
        pthread_cond_wait(&p->space_cv, &p->lock);
    if (p->stop) {
        pthread_mutex_unlock(&p->lock);
        batch_free(b, p->job->nkeys);
        return 0;
    }
    b->seq = p->next_seq++;
    p->inflight++;
    if (p->todo_tail)
        p->todo_tail->next = b;
    else
        p->todo_head = b;
    p->todo_tail = b;
    pthread_cond_signal(&p->todo_cv);
    pthread_mutex_unlock(&p->lock);
    return 1;
}

static struct batch *take_todo(struct pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    while (!p->todo_head && !p->reader_finished && !p->stop)
        pthread_cond_wait(&p->todo_cv, &p->lock);
    struct batch *b = p->todo_head;
    if (b && !p->stop) {
        p->todo_head = b->next;
        if (!p->todo_head)
            p->todo_tail = NULL;
    } else {
        b = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    return b;
}

static void put_done(struct pipeline *p, struct batch *b)
{
    pthread_mutex_lock(&p->lock);
    p->done[b->seq % (int64_t)p->limit] = b;
    pthread_cond_broadcast(&p->done_cv);
    pthread_mutex_unlock(&p->lock);
}

/* The finished batch SEQ, or NULL when the reader ended before producing it. */
static struct batch *take_done(struct pipeline *p, int64_t seq)
{
    struct batch *b;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        b = p->done[seq % (int64_t)p->limit];
        if (b && b->seq == seq)
            break;
        if (p->reader_finished && seq >= p->next_seq) {
            b = NULL;
            break;
        }
        pthread_cond_wait(&p->done_cv, &p->lock);
    }
    if (b) {
        p->done[seq % (int64_t)p->limit] = NULL;
        p->inflight--;
        pthread_cond_signal(&p->space_cv);
    }
    pthread_mutex_unlock(&p->lock);
    return b;
}

static void stop_all(struct pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->todo_cv);
    pthread_cond_broadcast(&p->space_cv);
    pthread_cond_broadcast(&p->done_cv);
    pthread_mutex_unlock(&p->lock);
}

/* ---- reader ------------------------------------------------------------- */

/* Units of SEG read so far (see struct pp_segment), the next line starting at NEXT. */
static int64_t seg_done(const struct pp_segment *seg, mb_lines *r, int64_t next)
{
    if (seg->measured)
        return MB_MIN(next, seg->begin + seg->units) - seg->begin;
    return MB_MIN(mb_lines_file_offset(r), seg->units);
}

/* Read the lines of one segment into batches; BASE is the units of the segments before.
 * Returns 0, or -1 after submitting a failed batch carrying the read error (so it is
 * reported in input order). */
static int read_segment(struct pipeline *p, const struct pp_segment *seg, int64_t base)
{
    mb_lines *r = mb_lines_open(seg->path);
    struct batch *b = NULL;
    const char *line;
    size_t len;
    int64_t lineno, off;
    int rc;

    if (!r)
        goto fail;
    mb_lines_set_max_line(r, p->job->max_line, "--max-line-bytes");
    while ((rc = mb_lines_next(r, &line, &len, &lineno, &off)) == 1) {
        if (off < seg->begin)
            continue;
        if (off >= seg->end)
            break;
        if (!b)
            b = batch_new(p->job, seg->path);
        batch_add_line(b, line, len, lineno);
        if (b->text.len >= BATCH_BYTES || b->nlines >= BATCH_LINES) {
            b->progress = base + seg_done(seg, r, off + (int64_t)len + 1);
            if (!submit(p, b))
                goto stopped;
            b = NULL;
        }
    }
    if (rc < 0)
        goto fail;
    if (b)
        b->progress = base + MB_MAX(seg->units, (int64_t)0);
    if (b && !submit(p, b))
        goto stopped;
    mb_lines_close(r);
    return 0;

fail:
    if (!b)
        b = batch_new(p->job, seg->path);
    b->failed = 1;
    mb_err_save(&b->err);
    submit(p, b);
    mb_lines_close(r);
    return -1;
stopped:
    mb_lines_close(r);
    return -1;
}

static void *reader_main(void *arg)
{
    struct pipeline *p = arg;

    int64_t base = 0;

    for (size_t i = 0; i < p->job->nsegs; base += MB_MAX(p->job->segs[i].units, (int64_t)0), i++)
        if (read_segment(p, &p->job->segs[i], base) != 0)
            break;
    pthread_mutex_lock(&p->lock);
    p->reader_finished = 1;
    pthread_cond_broadcast(&p->todo_cv);
    pthread_cond_broadcast(&p->done_cv);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- workers ------------------------------------------------------------ */

/* Tokenize the texts of one record into the batch outputs (Megatron's Encoder.encode:
 * empty sentences are dropped, EOD joins the last sentence of a non-empty document). */
static void encode_record(const struct pp_job *job, mb_tok_encoder *enc,
                          const struct mb_jsonl_record *rec, struct batch *b)
{
    for (size_t k = 0; k < job->nkeys; k++) {
        struct key_out *o = &b->out[k];
        size_t nseq = 0, before = o->ids.len;
        for (size_t i = rec->key_first[k]; i < rec->key_first[k + 1]; i++) {
            size_t start = o->ids.len;
            mb_tok_encode(enc, rec->texts[i].s, rec->texts[i].len, job->add_special, &o->ids);
            if (o->ids.len > start) {
                mb_ids_push(&o->seq_lens, (int32_t)(o->ids.len - start));
                nseq++;
            }
        }
        if (nseq > 0 && job->append_eod) {
            mb_ids_push(&o->ids, mb_tokenizer_eod(job->tok));
            o->seq_lens.v[o->seq_lens.len - 1]++;
        }
        mb_ids_push(&o->doc_nseq, (int32_t)nseq);
        b->tokens += (int64_t)(o->ids.len - before);
    }
}

static int train_record(mb_bpe_trainer *t, const struct mb_jsonl_record *rec)
{
    for (size_t i = 0; i < rec->ntexts; i++)
        if (mb_bpe_trainer_feed(t, rec->texts[i].s, rec->texts[i].len) != 0)
            return -1;
    return 0;
}

static void process_batch(struct pipeline *p, mb_tok_encoder *enc, mb_bpe_trainer *trainer,
                          struct mb_jsonl_record *rec, struct batch *b)
{
    const struct pp_job *job = p->job;
    size_t repairs_before = rec->utf8_repairs;

    for (size_t i = 0; i < b->nlines && !b->failed; i++) {
        const struct line_ref *l = &b->lines[i];
        const char *where = mb_at_line(b->path, l->lineno);
        if (mb_jsonl_parse(rec, b->text.data + l->off, l->len, job->keys, job->nkeys, where) != 0) {
            if (job->skip_bad) {
                b->skipped++;
                continue;
            }
            b->failed = 1;
            mb_err_save(&b->err);
            break;
        }
        if (trainer) {
            if (train_record(trainer, rec) != 0) {
                b->failed = 1;
                mb_err_save(&b->err);
            }
        } else {
            encode_record(job, enc, rec, b);
        }
    }
    b->repairs = (int64_t)(rec->utf8_repairs - repairs_before);
}

static void *worker_main(void *arg)
{
    struct pipeline *p = arg;
    struct mb_jsonl_record rec = MB_JSONL_RECORD_INIT;
    mb_tok_encoder *enc = p->job->tok ? mb_tok_encoder_new(p->job->tok) : NULL;
    mb_bpe_trainer *trainer = NULL;
    struct batch *b;

    if (p->trainers) {
        pthread_mutex_lock(&p->lock);
        trainer = p->trainers[p->next_worker_id++];
        pthread_mutex_unlock(&p->lock);
    }
    while ((b = take_todo(p))) {
        process_batch(p, enc, trainer, &rec, b);
        put_done(p, b);
    }
    mb_jsonl_record_release(&rec);
    mb_tok_encoder_free(enc);
    return NULL;
}

/* ---- writer (the calling thread) ---------------------------------------- */

static int write_batch(struct pp_job *job, struct batch *b)
{
    for (size_t k = 0; k < job->nkeys && job->writers; k++) {
        struct key_out *o = &b->out[k];
        size_t tok = 0, seq = 0;
        for (size_t d = 0; d < o->doc_nseq.len; d++) {
            size_t nseq = (size_t)o->doc_nseq.v[d], ntok = 0;
            for (size_t s = 0; s < nseq; s++)
                ntok += (size_t)o->seq_lens.v[seq + s];
            if (mb_idx_writer_add_doc(job->writers[k], o->ids.v + tok, ntok,
                                      (const int32_t *)o->seq_lens.v + seq, nseq) != 0)
                return -1;
            tok += ntok;
            seq += nseq;
        }
    }
    job->docs += (int64_t)(b->nlines - (size_t)b->skipped);
    job->lines_skipped += b->skipped;
    job->bytes += (int64_t)b->text.len;
    job->tokens += b->tokens;
    job->utf8_repairs += b->repairs;
    return 0;
}

/* The input's size in progress units, or -1 when some part is unknown (a pipe). */
static int64_t total_units(const struct pp_job *job)
{
    int64_t total = 0;

    for (size_t i = 0; i < job->nsegs; i++) {
        if (job->segs[i].units < 0)
            return -1;
        total += job->segs[i].units;
    }
    return total;
}

/* ", 42.0% done, ETA 1h02m03s" when the input size is known, else "". */
static void add_eta(struct mb_buf *out, int64_t done, int64_t total, double elapsed)
{
    if (total <= 0 || done <= 0)
        return;
    double frac = MB_MIN((double)done / (double)total, 1.0);
    long long left = (long long)(elapsed * (1.0 - frac) / frac + 0.5);
    mb_buf_addf(out, ", %.1f%% done, ETA ", 100.0 * frac);
    if (left >= 3600)
        mb_buf_addf(out, "%lldh%02lldm%02llds", left / 3600, left / 60 % 60, left % 60);
    else
        mb_buf_addf(out, "%lldm%02llds", left / 60, left % 60);
}

/* The progress line on a terminal, and with --log-interval a log line each time the
 * document count passes a multiple of it (Megatron's "Processed N documents"). */
static void report(const struct pp_job *job, struct mb_progress *prog, int64_t docs_before,
                   int64_t done, int64_t total)
{
    double t = mb_progress_elapsed(prog);
    struct mb_buf eta = MB_BUF_INIT;

    add_eta(&eta, done, total, t);
    mb_progress_update(prog, "%lld documents, %.1f MB, %.0f tokens/s%s", (long long)job->docs,
                       (double)job->bytes / 1e6, t > 0 ? (double)job->tokens / t : 0.0,
                       eta.len ? eta.data : "");
    int64_t every = job->log_interval;
    if (job->show_progress && every > 0 && job->docs / every > docs_before / every) {
        mb_progress_done(prog); /* the log line must not land on the progress line */
        mb_log_info("processed %lld documents (%.1f docs/s, %.2f MB/s)%s", (long long)job->docs,
                    t > 0 ? (double)job->docs / t : 0.0,
                    t > 0 ? (double)job->bytes / t / 1e6 : 0.0, eta.len ? eta.data : "");
    }
    mb_buf_release(&eta);
}

static int write_in_order(struct pipeline *p)
{
    struct pp_job *job = p->job;
    struct mb_progress prog;
    struct batch *b;
    int64_t total = total_units(job);
    int rc = 0;

    mb_progress_init(&prog, job->show_progress);
    for (int64_t seq = 0; rc == 0 && (b = take_done(p, seq)); seq++) {
        int64_t docs_before = job->docs, done = b->progress;
        if (b->failed) {
            mb_err_restore(&b->err);
            rc = -1;
        } else {
            rc = write_batch(job, b);
        }
        batch_free(b, job->nkeys);
        if (rc == 0)
            report(job, &prog, docs_before, done, total);
    }
    mb_progress_done(&prog);
    return rc;
}

/* ---- driver ------------------------------------------------------------- */

static void pipeline_release(struct pipeline *p, pthread_t *workers, int nstarted)
{
    for (int i = 0; i < nstarted; i++)
        pthread_join(workers[i], NULL);
    for (struct batch *b = p->todo_head, *next; b; b = next) {
        next = b->next;
        batch_free(b, p->job->nkeys);
    }
    for (size_t i = 0; i < p->limit; i++)
        batch_free(p->done[i], p->job->nkeys);
    free(p->done);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->todo_cv);
    pthread_cond_destroy(&p->space_cv);
    pthread_cond_destroy(&p->done_cv);
}

static void merge_trainers(struct pipeline *p)
{
    for (int i = 0; i < p->job->workers; i++) {
        mb_bpe_trainer_merge(p->job->trainer, p->trainers[i]);
        mb_bpe_trainer_free(p->trainers[i]);
    }
    free(p->trainers);
}

int pp_run(struct pp_job *job)
{
    struct pipeline p = { .job = job };
    pthread_t reader, *workers = mb_xcalloc((size_t)job->workers, sizeof *workers);

    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.todo_cv, NULL);
    pthread_cond_init(&p.space_cv, NULL);
    pthread_cond_init(&p.done_cv, NULL);
    p.limit = (size_t)(2 * job->workers + 2);
    p.done = mb_xcalloc(p.limit, sizeof *p.done);
    if (!job->tok) {
        p.trainers = mb_xcalloc((size_t)job->workers, sizeof *p.trainers);
        for (int i = 0; i < job->workers; i++)
            p.trainers[i] = mb_bpe_trainer_new(job->train_vocab);
    }
    pthread_create(&reader, NULL, reader_main, &p);
    for (int i = 0; i < job->workers; i++)
        pthread_create(&workers[i], NULL, worker_main, &p);
    int rc = write_in_order(&p);
    struct mb_err_record err;
    mb_err_save(&err);
    stop_all(&p);
    pthread_join(reader, NULL);
    pipeline_release(&p, workers, job->workers);
    free(workers);
    if (p.trainers)
        merge_trainers(&p);
    mb_err_restore(&err);
    return rc;
}
