/* data/sft.c - SFT files read into examples, packed into bins, and served as samples. */
#include "data/sft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "data/gpt_index.h"
#include "data/mt19937.h"
#include "io/jsonl.h"
#include "io/lines.h"

/* Tokenized examples, back to back. */
struct sft_set {
    int64_t n, cap;
    int64_t *off;               /* [n + 1] into ids and mask */
    int32_t *ids;
    uint8_t *mask;              /* unshifted: 1 where the token is supervised */
    size_t ids_cap, off_cap;
    int64_t skipped;            /* rows whose answer truncation removed */
};

/* One dataset of samples: its examples one by one, or packed into bins. */
struct sft_source {
    struct sft_set ex;
    int64_t nsamples;
    int64_t *bin_off;           /* packed: bin b holds bin_ex[bin_off[b] .. bin_off[b + 1]) */
    int64_t *bin_ex;
    int64_t *order;             /* [nsamples] the samples of epoch order_epoch */
    int64_t order_epoch;        /* -1: none yet */
    uint32_t seed;
    bool shuffle;
};

struct mb_sft_data {
    int64_t seq;
    bool packed;
    int32_t eos;
    int n_train;
    struct sft_source *train;   /* [n_train]: one per weighted file, else one pool */
    struct sft_source valid;
    bool has_valid;
    int16_t *dindex;            /* weighted blend: dataset of sample k */
    int64_t *dsample;           /* and its sample within that dataset */
    int64_t blend_size;
};

static void set_append(struct sft_set *s, const struct mb_ids *ids, const uint8_t *mask)
{
    if (!s->off) {
        MB_GROW(s->off, s->off_cap, 1);
        s->off[0] = 0;
    }
    MB_GROW(s->off, s->off_cap, (size_t)s->n + 2);
    size_t at = (size_t)s->off[s->n], need = at + ids->len;
    if (need > s->ids_cap) {
        size_t cap = MB_MAX(need, 2 * s->ids_cap);
        s->ids = mb_xrealloc(s->ids, cap * sizeof *s->ids);
        s->mask = mb_xrealloc(s->mask, cap);
        s->ids_cap = cap;
    }
    memcpy(s->ids + at, ids->v, ids->len * sizeof *ids->v);
    memcpy(s->mask + at, mask, ids->len);
    s->n++;
    s->off[s->n] = (int64_t)need;
}

static void set_free(struct sft_set *s)
{
    free(s->off);
    free(s->ids);
    free(s->mask);
}

static bool blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            return false;
    return true;
}

/* Every row of PATH into S. */
static int read_file(const char *path, const struct mb_sft_format *f, mb_tok_encoder *enc,
                     struct sft_set *s)
{
    mb_lines *in = mb_lines_open(path);
    if (!in)
        return -1;
    struct mb_jsonl_record rec = MB_JSONL_RECORD_INIT;
    struct mb_ids ids = MB_IDS_INIT;
    const char *line;
    size_t len;
    int64_t lineno, offset;
    int rc;
    while ((rc = mb_lines_next(in, &line, &len, &lineno, &offset)) == 1) {
        if (blank(line, len))
            continue;
        char where[4200];
        snprintf(where, sizeof where, "%s:%lld", path, (long long)lineno);
        uint8_t *mask = NULL;
        rc = mb_jsonl_parse(&rec, line, len, NULL, 0, where);
        if (rc == 0)
            rc = mb_sft_encode_row(f, enc, rec.root, where, &ids, &mask);
        if (rc < 0)
            break;
        if (rc == MB_SFT_ROW_OK)
            set_append(s, &ids, mask);
        else
            s->skipped++;
        free(mask);
    }
    if (rc == 0 && s->n == 0)
        rc = mb_err_set(MB_E_INVALID, path, "no examples (empty, or every answer truncated away "
                        "at data.seq_length %lld)", (long long)f->max_length);
    mb_ids_release(&ids);
    mb_jsonl_record_release(&rec);
    mb_lines_close(in);
    return rc < 0 ? -1 : 0;
}

/* Tokens an example takes in a row: its ids but the last. */
static int64_t ex_len(const struct sft_set *s, int64_t i)
{
    return s->off[i + 1] - s->off[i] - 1;
}

/* Bins of first-fit: a max-tree over the room left in N bins (all start with CAP), so that
 * the leftmost bin with room for an item is found in O(log N), as Bridge's segment tree
 * does. Bins are opened left to right, so the leftmost fitting bin is an open one when one
 * fits and else the next new one. */
struct fit_tree {
    int64_t leaves;             /* a power of two >= N */
    int64_t *room;              /* [2 * leaves]: node i covers its leaves; room[1] the root */
};

static void fit_init(struct fit_tree *f, int64_t n, int64_t cap)
{
    f->leaves = 1;
    while (f->leaves < n)
        f->leaves *= 2;
    f->room = mb_xmalloc((size_t)(2 * f->leaves) * sizeof *f->room);
    for (int64_t i = 0; i < 2 * f->leaves; i++)
        f->room[i] = cap;
}

/* Put LEN into the leftmost bin with room (there is one: a new bin holds any example);
 * returns the bin. */
static int64_t fit_put(struct fit_tree *f, int64_t len)
{
    int64_t i = 1;
    while (i < f->leaves)
        i = f->room[2 * i] >= len ? 2 * i : 2 * i + 1;
    f->room[i] -= len;
    for (int64_t up = i / 2; up >= 1; up /= 2)
        f->room[up] = MB_MAX(f->room[2 * up], f->room[2 * up + 1]);
    return i - f->leaves;
}

/* First-fit of the examples, taken in a shuffled order, into bins of SEQ tokens
 * (Bridge's first_fit_shuffle, finetune.md 4.6). */
static void pack(struct sft_source *src, int64_t seq, uint32_t seed)
{
    const struct sft_set *s = &src->ex;
    int64_t *order = mb_xmalloc((size_t)s->n * sizeof *order);
    int64_t *bin_of = mb_xmalloc((size_t)s->n * sizeof *bin_of);
    int64_t nbins = 0;
    for (int64_t i = 0; i < s->n; i++)
        order[i] = i;
    struct mb_mt19937 mt;
    mb_mt_seed(&mt, seed);
    mb_mt_shuffle_i64(&mt, order, s->n);
    struct fit_tree tree;
    fit_init(&tree, s->n, seq);
    for (int64_t k = 0; k < s->n; k++) {
        int64_t i = order[k];
        bin_of[i] = fit_put(&tree, ex_len(s, i));
        nbins = MB_MAX(nbins, bin_of[i] + 1);
    }
    free(tree.room);
    src->nsamples = nbins;
    src->bin_off = mb_xcalloc((size_t)nbins + 1, sizeof *src->bin_off);
    src->bin_ex = mb_xmalloc((size_t)s->n * sizeof *src->bin_ex);
    for (int64_t i = 0; i < s->n; i++)
        src->bin_off[bin_of[i] + 1]++;
    for (int64_t b = 0; b < nbins; b++)
        src->bin_off[b + 1] += src->bin_off[b];
    int64_t *next = mb_xmalloc((size_t)nbins * sizeof *next); /* free slot per bin */
    memcpy(next, src->bin_off, (size_t)nbins * sizeof *next);
    for (int64_t k = 0; k < s->n; k++) { /* in packing order within a bin */
        int64_t i = order[k];
        src->bin_ex[next[bin_of[i]]++] = i;
    }
    free(next);
    free(order);
    free(bin_of);
}

static void log_source(const char *what, const struct sft_source *src, bool packed, int64_t seq)
{
    const struct sft_set *s = &src->ex;
    int64_t sup = 0, tokens = 0;
    for (int64_t i = 0; i < s->off[s->n]; i++)
        sup += s->mask[i];
    for (int64_t i = 0; i < s->n; i++)
        tokens += ex_len(s, i);
    mb_log_info("sft data %s: %lld examples, %lld supervised tokens (EOS included), %lld "
                "skipped: no answer token left at data.seq_length %lld", what, (long long)s->n,
                (long long)sup, (long long)s->skipped, (long long)seq);
    if (packed)
        mb_log_info("sft data %s: packed into %lld rows of %lld tokens, %.1f%% filled", what,
                    (long long)src->nsamples, (long long)seq,
                    100.0 * (double)tokens / ((double)src->nsamples * (double)seq));
}

static void source_ready(struct sft_source *src, const struct mb_sft_config *c, uint32_t seed,
                         bool shuffle)
{
    src->seed = seed;
    src->shuffle = shuffle;
    src->order_epoch = -1;
    if (c->packed)
        pack(src, c->seq_length, seed);
    else
        src->nsamples = src->ex.n;
}

static int open_train(mb_sft_data *d, const struct mb_sft_config *c, mb_tok_encoder *enc,
                      bool log)
{
    d->n_train = c->weights ? c->n_paths : 1;
    d->train = mb_xcalloc((size_t)d->n_train, sizeof *d->train);
    for (int i = 0; i < c->n_paths; i++) {
        struct sft_source *src = &d->train[c->weights ? i : 0];
        if (read_file(c->paths[i], &c->fmt, enc, &src->ex) < 0)
            return -1;
    }
    for (int i = 0; i < d->n_train; i++) {
        source_ready(&d->train[i], c, (uint32_t)(c->seed + (uint64_t)i * 7919u), true);
        if (log)
            log_source(c->weights ? c->paths[i] : "train", &d->train[i], c->packed,
                       c->seq_length);
    }
    if (!c->weights)
        return 0;
    double *w = mb_xmalloc((size_t)c->n_paths * sizeof *w);
    memcpy(w, c->weights, (size_t)c->n_paths * sizeof *w);
    mb_blend_normalize(w, c->n_paths);
    d->blend_size = MB_MAX(c->train_samples, 1);
    d->dindex = mb_xmalloc((size_t)d->blend_size * sizeof *d->dindex);
    d->dsample = mb_xmalloc((size_t)d->blend_size * sizeof *d->dsample);
    mb_blend_indices(w, c->n_paths, d->blend_size, d->dindex, d->dsample);
    free(w);
    return 0;
}

int mb_sft_open(mb_sft_data **out, const struct mb_sft_config *c, const mb_tokenizer *tok)
{
    *out = NULL;
    if (c->n_paths < 1 || c->n_paths > INT16_MAX)
        return mb_err_set(MB_E_INVALID, "data.data_path", "give 1 to %d JSONL files",
                          INT16_MAX);
    if (c->seq_length < 2)
        return mb_err_set(MB_E_INVALID, "data.seq_length", "must be at least 2 for SFT");
    mb_sft_data *d = mb_xcalloc(1, sizeof *d);
    d->seq = c->seq_length;
    d->packed = c->packed;
    d->eos = c->fmt.eos_id;
    mb_tok_encoder *enc = mb_tok_encoder_new(tok);
    struct mb_sft_format fmt = c->fmt;
    fmt.space_sensitive = mb_sft_space_sensitive(enc);
    struct mb_sft_config cc = *c;
    cc.fmt = fmt;
    int rc = open_train(d, &cc, enc, !c->quiet);
    if (rc == 0 && c->valid_path) {
        d->has_valid = true;
        rc = read_file(c->valid_path, &fmt, enc, &d->valid.ex);
        if (rc == 0) {
            source_ready(&d->valid, &cc, (uint32_t)c->seed, false);
            if (!c->quiet)
                log_source("validation", &d->valid, c->packed, c->seq_length);
        }
    }
    mb_tok_encoder_free(enc);
    if (rc < 0) {
        mb_sft_close(d);
        return -1;
    }
    *out = d;
    return 0;
}

int64_t mb_sft_size(const mb_sft_data *d, int split)
{
    if (split == MB_SPLIT_VALID)
        return d->has_valid ? d->valid.nsamples : 0;
    if (split != MB_SPLIT_TRAIN)
        return 0;
    int64_t n = 0;
    for (int i = 0; i < d->n_train; i++)
        n += d->train[i].nsamples;
    return n;
}

/* Which sample of SRC is its K-th: epoch K / n in an order shuffled for that epoch. */
static int64_t source_pick(struct sft_source *src, int64_t k)
{
    int64_t n = src->nsamples, epoch = k / n;
    if (!src->shuffle)
        return k % n;
    if (src->order_epoch != epoch) {
        if (!src->order)
            src->order = mb_xmalloc((size_t)n * sizeof *src->order);
        for (int64_t i = 0; i < n; i++)
            src->order[i] = i;
        struct mb_mt19937 mt;
        mb_mt_seed(&mt, src->seed ^ (uint32_t)((uint64_t)(epoch + 1) * 0x9E3779B9u));
        mb_mt_shuffle_i64(&mt, src->order, n);
        src->order_epoch = epoch;
    }
    return src->order[k % n];
}

/* Example I of S as the SEG-th document of a row from position AT, positions from 0. */
static int64_t put_example(const struct sft_set *s, int64_t i, int64_t at, int32_t seg,
                           int32_t *tokens, int32_t *labels, float *loss_mask, int32_t *pos,
                           int32_t *segs)
{
    const int32_t *ids = s->ids + s->off[i];
    const uint8_t *mask = s->mask + s->off[i];
    int64_t n = ex_len(s, i);
    for (int64_t t = 0; t < n; t++) {
        if (tokens)
            tokens[at + t] = ids[t];
        if (labels)
            labels[at + t] = ids[t + 1];
        if (loss_mask)
            loss_mask[at + t] = mask[t + 1];
        if (pos)
            pos[at + t] = (int32_t)t;
        if (segs)
            segs[at + t] = seg;
    }
    return at + n;
}

static int write_sample(const mb_sft_data *d, const struct sft_source *src, int64_t sample,
                        int32_t *tokens, int32_t *labels, float *loss_mask, int32_t *pos,
                        int32_t *segs)
{
    int64_t at = 0;
    int32_t seg = 0;
    if (d->packed) {
        for (int64_t j = src->bin_off[sample]; j < src->bin_off[sample + 1]; j++)
            at = put_example(&src->ex, src->bin_ex[j], at, seg++, tokens, labels, loss_mask,
                             pos, segs);
    } else {
        at = put_example(&src->ex, sample, 0, seg++, tokens, labels, loss_mask, pos, segs);
    }
    MB_ASSERT(at <= d->seq);
    /* padding: EOS, no loss; positions go on from 0 unpacked (Bridge's 0..L-1) and are 0
     * after a packed row, whose padding is one more pseudo-document */
    for (int64_t t = at; t < d->seq; t++) {
        if (tokens)
            tokens[t] = d->eos;
        if (labels)
            labels[t] = d->eos;
        if (loss_mask)
            loss_mask[t] = 0.0f;
        if (pos)
            pos[t] = d->packed ? 0 : (int32_t)t;
        if (segs)
            segs[t] = seg;
    }
    return 0;
}

int mb_sft_sample(mb_sft_data *d, int split, int64_t k, int32_t *tokens, int32_t *labels,
                  float *loss_mask, int32_t *position_ids, int32_t *segment_ids)
{
    struct sft_source *src;
    int64_t j = k;
    if (k < 0)
        return mb_err_set(MB_E_INVALID, "sft data", "sample %lld", (long long)k);
    if (split == MB_SPLIT_VALID) {
        if (!d->has_valid)
            return mb_err_set(MB_E_INVALID, "data.validation_path", "no validation data");
        src = &d->valid;
    } else if (d->dindex) {
        if (k >= d->blend_size)
            return mb_err_set(MB_E_INVALID, "data.data_path",
                              "sample %lld is past the %lld the weighted blend was built for",
                              (long long)k, (long long)d->blend_size);
        src = &d->train[d->dindex[k]];
        j = d->dsample[k];
    } else {
        src = &d->train[0];
    }
    return write_sample(d, src, source_pick(src, j), tokens, labels, loss_mask, position_ids,
                        segment_ids);
}

static void source_free(struct sft_source *src)
{
    set_free(&src->ex);
    free(src->bin_off);
    free(src->bin_ex);
    free(src->order);
}

void mb_sft_close(mb_sft_data *d)
{
    if (!d)
        return;
    for (int i = 0; d->train && i < d->n_train; i++)
        source_free(&d->train[i]);
    source_free(&d->valid);
    free(d->train);
    free(d->dindex);
    free(d->dsample);
    free(d);
}
