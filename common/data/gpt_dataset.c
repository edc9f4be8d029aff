/* data/gpt_dataset.c - splits, blends, the index cache and sample assembly over
 * indexed token files or mock data (see gpt_dataset.h for the rules). */
#include "data/gpt_dataset.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "core/time.h"
#include "data/gpt_desc.h"
#include "data/md5.h"
#include "data/mock.h"
#include "io/idx_reader.h"
#include "io/npy.h"

#define DEFAULT_SPLIT "969, 30, 1"
#define BLEND_SURPLUS 0.005 /* mid_level_dataset_surplus */

/* One low-level dataset: a prefix's files, or the mock generator. */
struct source {
    char *prefix;      /* NULL for mock */
    mb_idx_reader *r;  /* NULL for mock */
    int32_t *sizes;    /* [nseq] tokens per sequence */
    int64_t nseq;
};

/* One GPTDataset: a source, a split, its three arrays (built or mapped from cache). */
struct gpt_ds {
    const struct source *src;
    int64_t n_doc, n_samples;
    const int32_t *doc;
    const void *sample, *shuffle;
    bool sample_i64, shuffle_i64;
    struct mb_gpt_index built;
    struct mb_npy npy[3];
    char *cache_base;  /* DIR/{md5}-GPTDataset-{split}, or NULL */
};

struct split_set {
    int n;             /* datasets; 0 for an absent split */
    struct gpt_ds *ds; /* [n] */
    bool blended;
    int64_t size;
    int16_t *dindex;   /* [size] when blended */
    int64_t *dsample;  /* [size] when blended */
};

struct mb_gpt_data {
    int64_t seq_len;
    bool eod_mask_loss, reset_position_ids, mock;
    int32_t eod, pad;
    int64_t mock_vocab;
    int n_src;
    struct source *src;
    struct split_set split[MB_SPLIT_COUNT];
};

/* ---- sources ---------------------------------------------------------------- */

static int source_open(struct source *s, const char *prefix)
{
    s->prefix = mb_xstrdup(prefix);
    s->r = mb_idx_reader_open(prefix);
    if (!s->r)
        return -1;
    s->nseq = mb_idx_reader_nseq(s->r);
    s->sizes = mb_xmalloc((size_t)MB_MAX(s->nseq, (int64_t)1) * sizeof *s->sizes);
    for (int64_t i = 0; i < s->nseq; i++)
        s->sizes[i] = mb_idx_reader_seq_len(s->r, i);
    return 0;
}

static void source_mock(struct source *s)
{
    s->nseq = MB_MOCK_SEQUENCES;
    s->sizes = mb_xmalloc((size_t)s->nseq * sizeof *s->sizes);
    mb_mock_sequence_lengths(s->sizes);
}

static void source_close(struct source *s)
{
    if (s->r)
        mb_idx_reader_close(s->r);
    free(s->sizes);
    free(s->prefix);
}

/* ---- the cache -------------------------------------------------------------- */

static char *cache_path(const struct gpt_ds *ds, const char *affix)
{
    struct mb_buf b = MB_BUF_INIT;

    mb_buf_addf(&b, "%s-%s", ds->cache_base, affix);
    return b.data;
}

/* Entries of the loaded or built arrays all in range for plan P over [BEG, END)? */
static bool ds_consistent(const struct gpt_ds *ds, int64_t beg, int64_t end)
{
    for (int64_t i = 0; i < ds->n_doc; i++)
        if (ds->doc[i] < beg || ds->doc[i] >= end)
            return false;
    for (int64_t r = 0; r <= ds->n_samples; r++) {
        int64_t pos = mb_gpt_sample_at(ds->sample, ds->sample_i64, r, 0);
        int64_t off = mb_gpt_sample_at(ds->sample, ds->sample_i64, r, 1);
        if (pos < 0 || pos >= ds->n_doc || off < 0 || off >= ds->src->sizes[ds->doc[pos]])
            return false;
    }
    for (int64_t k = 0; k < ds->n_samples; k++)
        if ((uint64_t)mb_gpt_shuffle_at(ds->shuffle, ds->shuffle_i64, k) >=
            (uint64_t)ds->n_samples)
            return false;
    return true;
}

static void ds_drop_cache(struct gpt_ds *ds)
{
    for (int i = 0; i < 3; i++)
        mb_npy_free(&ds->npy[i]);
}

/* Map the cached arrays if all four files exist and agree with plan P. */
static bool ds_load_cache(struct gpt_ds *ds, const struct mb_gpt_plan *p, int64_t beg,
                          int64_t end)
{
    static const char *const affix[] = { "document_index.npy", "sample_index.npy",
                                         "shuffle_index.npy", "description.txt" };
    bool ok = true;

    for (int i = 0; i < 4 && ok; i++) {
        char *path = cache_path(ds, affix[i]);
        ok = mb_fs_exists(path) && (i == 3 || mb_npy_read(path, &ds->npy[i]) == 0);
        free(path);
    }
    mb_err_clear();
    const struct mb_npy *a = ds->npy;
    ok = ok && a[0].dtype == MB_NPY_I4 && a[0].ndim == 1 &&
         a[0].shape[0] == p->num_epochs * (end - beg) &&
         a[1].dtype == (p->sample_i64 ? MB_NPY_I8 : MB_NPY_I4) && a[1].ndim == 2 &&
         a[1].shape[0] == p->num_samples + 1 && a[1].shape[1] == 2 &&
         a[2].dtype == (p->shuffle_i64 ? MB_NPY_I8 : MB_NPY_U4) && a[2].ndim == 1 &&
         a[2].shape[0] == p->num_samples;
    if (ok) {
        ds->n_doc = a[0].shape[0];
        ds->doc = a[0].data;
        ds->n_samples = p->num_samples;
        ds->sample = a[1].data;
        ds->sample_i64 = p->sample_i64;
        ds->shuffle = a[2].data;
        ds->shuffle_i64 = p->shuffle_i64;
        ok = ds_consistent(ds, beg, end);
    }
    if (!ok)
        ds_drop_cache(ds);
    return ok;
}

static int write_text(const char *path, const char *text, size_t len)
{
    struct mb_outfile of = MB_OUTFILE_INIT;

    if (mb_outfile_open(&of, path) != 0)
        return -1;
    mb_outfile_write(&of, text, len);
    return mb_outfile_commit(&of);
}

/* Write the arrays, then the description (each atomically). */
static int ds_save_cache(const struct gpt_ds *ds, const char *dir, const struct mb_buf *desc)
{
    const int64_t doc_shape[] = { ds->n_doc }, sample_shape[] = { ds->n_samples + 1, 2 };
    const int64_t shuffle_shape[] = { ds->n_samples };
    char *paths[4] = { cache_path(ds, "document_index.npy"), cache_path(ds, "sample_index.npy"),
                       cache_path(ds, "shuffle_index.npy"), cache_path(ds, "description.txt") };
    int rc = mb_fs_mkdirs(dir, "the index cache directory");

    if (rc == 0)
        rc = mb_npy_write(paths[0], MB_NPY_I4, 1, doc_shape, ds->doc);
    if (rc == 0)
        rc = mb_npy_write(paths[1], ds->sample_i64 ? MB_NPY_I8 : MB_NPY_I4, 2, sample_shape,
                          ds->sample);
    if (rc == 0)
        rc = mb_npy_write(paths[2], ds->shuffle_i64 ? MB_NPY_I8 : MB_NPY_U4, 1, shuffle_shape,
                          ds->shuffle);
    if (rc == 0)
        rc = write_text(paths[3], desc->data, desc->len);
    for (int i = 0; i < 4; i++)
        free(paths[i]);
    if (rc != 0)
        mb_err_wrap("cannot write the index cache (set data.cache_dir to a writable place)");
    return rc;
}

/* ---- building one GPTDataset ---------------------------------------------------- */

struct ds_request {
    const struct mb_gpt_data_config *c;
    const struct mb_split *split;
    const char *split_text;
    int index_split;
    int64_t num_samples; /* < 0: one epoch */
};

static void ds_use_built(struct gpt_ds *ds)
{
    ds->n_doc = ds->built.n_doc;
    ds->doc = ds->built.doc;
    ds->n_samples = ds->built.n_samples;
    ds->sample = ds->built.sample;
    ds->sample_i64 = ds->built.sample_i64;
    ds->shuffle = ds->built.shuffle;
    ds->shuffle_i64 = ds->built.shuffle_i64;
}

/* The cache directory of a dataset: the configured one, else Megatron's default. */
static char *cache_dir_for(const struct mb_gpt_data_config *c, const struct source *src)
{
    struct mb_buf b = MB_BUF_INIT;

    if (c->cache_dir)
        mb_buf_adds(&b, c->cache_dir);
    else
        mb_buf_addf(&b, "%s/cache/GPTDataset_indices", src->prefix);
    return b.data;
}

static int ds_build(struct gpt_ds *ds, const struct source *src, const struct ds_request *q)
{
    const struct mb_gpt_data_config *c = q->c;
    const char *where = src->prefix ? src->prefix : "mock data";
    struct mb_gpt_plan p;
    int64_t beg, end;

    ds->src = src;
    mb_split_range(q->split, q->index_split, src->nseq, &beg, &end);
    if (mb_gpt_plan(&p, src->sizes, src->nseq, beg, end, c->seq_length, q->num_samples,
                    where) != 0)
        return mb_err_wrap("%s split", mb_split_name(q->index_split));
    if (c->mock) {
        /* Megatron keeps no cache for mock data */
        mb_gpt_index_build(&ds->built, &p, src->sizes, beg, end, c->seq_length,
                           (uint32_t)c->seed);
        ds_use_built(ds);
        return 0;
    }
    struct mb_buf desc = MB_BUF_INIT, base = MB_BUF_INIT;
    struct mb_gpt_desc d = {
        .dataset_path = src->prefix, .num_samples = q->num_samples, .split = q->index_split,
        .seed = c->seed, .seq_length = c->seq_length, .split_text = q->split_text,
        .matrix = q->split, .tokenizer_ids = c->tokenizer_ids,
        .n_tokenizer_ids = c->n_tokenizer_ids,
    };
    char md5[33], *dir = cache_dir_for(c, src);
    mb_gpt_describe(&desc, &d);
    mb_md5_hex(desc.data, desc.len, md5);
    mb_buf_addf(&base, "%s/%s-GPTDataset-%s", dir, md5, mb_split_name(q->index_split));
    ds->cache_base = base.data;
    int rc = 0;
    if (!ds_load_cache(ds, &p, beg, end)) {
        mb_log_info("building the %s indices of %s (%lld samples) into %s",
                    mb_split_name(q->index_split), where, (long long)q->num_samples, dir);
        double start = mb_now();
        mb_gpt_index_build(&ds->built, &p, src->sizes, beg, end, c->seq_length,
                           (uint32_t)c->seed);
        ds_use_built(ds);
        rc = ds_save_cache(ds, dir, &desc);
        if (rc == 0)
            mb_log_info("built the %s indices of %s in %.2f s", mb_split_name(q->index_split),
                        where, mb_now() - start);
    } else {
        mb_log_info("loaded the %s indices of %s from %s", mb_split_name(q->index_split), where,
                    dir);
    }
    free(dir);
    mb_buf_release(&desc);
    return rc;
}

static void ds_free(struct gpt_ds *ds)
{
    mb_gpt_index_free(&ds->built);
    ds_drop_cache(ds);
    free(ds->cache_base);
}

/* ---- splits and blends ---------------------------------------------------------- */

static int check_requested(const struct mb_gpt_data_config *c, const struct mb_split *s,
                           int i, const char *split_text)
{
    if (!s->present[i] && c->num_samples[i] > 0)
        return mb_err_set(MB_E_INVALID, "data.split",
                          "split '%s' gives the %s split nothing, but %lld samples are "
                          "requested from it", split_text, mb_split_name(i),
                          (long long)c->num_samples[i]);
    return 0;
}

/* BlendedDataset over the split's datasets: normalised weights, SIZE samples. */
static int blend(struct split_set *ss, double *w, int64_t size, int index_split)
{
    mb_blend_normalize(w, ss->n);
    ss->blended = true;
    ss->size = size;
    ss->dindex = mb_xmalloc((size_t)MB_MAX(size, (int64_t)1) * sizeof *ss->dindex);
    ss->dsample = mb_xmalloc((size_t)MB_MAX(size, (int64_t)1) * sizeof *ss->dsample);
    mb_blend_indices(w, ss->n, size, ss->dindex, ss->dsample);
    int64_t *count = mb_xcalloc((size_t)ss->n, sizeof *count);
    for (int64_t t = 0; t < size; t++)
        count[ss->dindex[t]]++;
    int rc = 0;
    for (int d = 0; d < ss->n && rc == 0; d++)
        if (count[d] > ss->ds[d].n_samples)
            rc = mb_err_set(MB_E_INVALID, ss->ds[d].src->prefix,
                            "the %s blend takes %lld samples from this dataset, which has "
                            "%lld", mb_split_name(index_split), (long long)count[d],
                            (long long)ss->ds[d].n_samples);
    free(count);
    return rc;
}

static int build_blend(mb_gpt_data *g, struct split_set *ss, struct ds_request *q)
{
    const struct mb_gpt_data_config *c = q->c;
    int64_t target = c->num_samples[q->index_split];
    double *w = mb_xcalloc((size_t)g->n_src, sizeof *w);
    int64_t size = 0;
    int rc = 0;

    if (target < 0)
        rc = mb_err_set(MB_E_INVALID, "data", "a blend needs the number of %s samples",
                        mb_split_name(q->index_split));
    if (c->weights) {
        memcpy(w, c->weights, (size_t)g->n_src * sizeof *w);
        mb_blend_normalize(w, g->n_src);
    }
    ss->n = g->n_src;
    ss->ds = mb_xcalloc((size_t)ss->n, sizeof *ss->ds);
    for (int d = 0; d < ss->n && rc == 0; d++) {
        q->num_samples = c->weights ? mb_blend_request(target, w[d], BLEND_SURPLUS) : -1;
        if (c->weights)
            size += (int64_t)ceil((double)target * w[d]);
        rc = ds_build(&ss->ds[d], &g->src[d], q);
    }
    if (rc == 0 && !c->weights) {
        /* weights are the datasets' lengths; size capped at their sum */
        for (int d = 0; d < ss->n; d++) {
            w[d] = (double)ss->ds[d].n_samples;
            size += ss->ds[d].n_samples;
        }
        size = MB_MIN(size, target);
    }
    if (rc == 0)
        rc = blend(ss, w, size, q->index_split);
    free(w);
    return rc;
}

static int build_split(mb_gpt_data *g, const struct mb_gpt_data_config *c, int i,
                       const struct mb_split *s, const char *split_text)
{
    struct split_set *ss = &g->split[i];
    struct ds_request q = {
        .c = c, .split = s, .split_text = split_text, .index_split = i,
        .num_samples = c->num_samples[i],
    };

    if (!s->present[i])
        return 0;
    if (c->mock || (g->n_src == 1 && !c->weights)) {
        int64_t beg, end;
        mb_split_range(s, i, g->src[0].nseq, &beg, &end);
        /* Megatron would loop forever here; with nothing asked for, the split is empty */
        if (beg == end && q.num_samples <= 0)
            return 0;
        ss->n = 1;
        ss->ds = mb_xcalloc(1, sizeof *ss->ds);
        if (ds_build(&ss->ds[0], &g->src[0], &q) != 0)
            return -1;
        ss->size = ss->ds[0].n_samples;
        return 0;
    }
    return build_blend(g, ss, &q);
}

static int check_config(const struct mb_gpt_data_config *c)
{
    if (c->seed > UINT32_MAX)
        return mb_err_set(MB_E_INVALID, "data.seed", "%llu: numpy's RandomState takes seeds "
                          "below 2^32", (unsigned long long)c->seed);
    if (!c->mock && c->n_paths < 1)
        return mb_err_set(MB_E_INVALID, "data.paths", "no data prefix given");
    if (c->mock && c->mock_vocab < 2)
        return mb_err_set(MB_E_INVALID, "data.mock", "mock data needs a vocabulary size");
    if (c->weights)
        for (int i = 0; i < c->n_paths; i++)
            if (!(c->weights[i] > 0.0))
                return mb_err_set(MB_E_INVALID, c->paths[i], "blend weight %g is not positive",
                                  c->weights[i]);
    return 0;
}

static int open_sources(mb_gpt_data *g, const struct mb_gpt_data_config *c)
{
    g->n_src = c->mock ? 1 : c->n_paths;
    g->src = mb_xcalloc((size_t)g->n_src, sizeof *g->src);
    if (c->mock) {
        source_mock(&g->src[0]);
        return 0;
    }
    for (int i = 0; i < g->n_src; i++)
        if (source_open(&g->src[i], c->paths[i]) != 0)
            return -1;
    return 0;
}

int mb_gpt_data_open(mb_gpt_data **out, const struct mb_gpt_data_config *c)
{
    /* MockGPTDataset splits "1,1,1" whatever the configuration says */
    const char *split_text = c->mock ? "1,1,1" : c->split[0] ? c->split : DEFAULT_SPLIT;
    mb_gpt_data *g = mb_xcalloc(1, sizeof *g);
    struct mb_split s;
    int rc = check_config(c);

    *out = NULL;
    g->seq_len = c->seq_length;
    g->eod_mask_loss = c->eod_mask_loss;
    g->reset_position_ids = c->reset_position_ids;
    g->mock = c->mock;
    g->eod = c->eod_id;
    g->pad = c->pad_id;
    g->mock_vocab = c->mock_vocab;
    if (rc == 0)
        rc = mb_split_parse(&s, split_text, "data.split");
    for (int i = 0; i < MB_SPLIT_COUNT && rc == 0; i++)
        rc = check_requested(c, &s, i, split_text);
    if (rc == 0)
        rc = open_sources(g, c);
    for (int i = 0; i < MB_SPLIT_COUNT && rc == 0; i++)
        rc = build_split(g, c, i, &s, split_text);
    if (rc != 0) {
        mb_gpt_data_close(g);
        return -1;
    }
    *out = g;
    return 0;
}

void mb_gpt_data_close(mb_gpt_data *g)
{
    if (!g)
        return;
    for (int i = 0; i < MB_SPLIT_COUNT; i++) {
        struct split_set *ss = &g->split[i];
        for (int d = 0; d < ss->n; d++)
            ds_free(&ss->ds[d]);
        free(ss->ds);
        free(ss->dindex);
        free(ss->dsample);
    }
    for (int i = 0; i < g->n_src; i++)
        source_close(&g->src[i]);
    free(g->src);
    free(g);
}

int64_t mb_gpt_data_size(const mb_gpt_data *g, int split)
{
    return split >= 0 && split < MB_SPLIT_COUNT ? g->split[split].size : 0;
}

const char *mb_gpt_data_cache_base(const mb_gpt_data *g, int split, int i)
{
    if (split < 0 || split >= MB_SPLIT_COUNT || i < 0 || i >= g->split[split].n)
        return NULL;
    return g->split[split].ds[i].cache_base;
}

/* ---- samples ------------------------------------------------------------------ */

static void read_tokens(const mb_gpt_data *g, const struct source *src, int64_t seq,
                        int64_t off, int64_t n, int32_t *out)
{
    if (src->r)
        mb_idx_reader_tokens(src->r, seq, off, n, out);
    else
        mb_mock_tokens(src->sizes[seq], off, n, g->mock_vocab, g->eod, out);
}

/* _query_document_sample_shuffle_indices: seq_len + 1 tokens of sample J into TEXT,
 * padded with the pad id. */
static void sample_text(const mb_gpt_data *g, const struct gpt_ds *ds, int64_t j,
                        int32_t *text)
{
    int64_t s = mb_gpt_shuffle_at(ds->shuffle, ds->shuffle_i64, j);
    int64_t b = mb_gpt_sample_at(ds->sample, ds->sample_i64, s, 0);
    int64_t bo = mb_gpt_sample_at(ds->sample, ds->sample_i64, s, 1);
    int64_t e = mb_gpt_sample_at(ds->sample, ds->sample_i64, s + 1, 0);
    int64_t eo = mb_gpt_sample_at(ds->sample, ds->sample_i64, s + 1, 1);
    int64_t want = g->seq_len + 1, n = 0;

    for (int64_t i = b; i <= e && n < want; i++) {
        int64_t seq = ds->doc[i], off = i == b ? bo : 0;
        int64_t len = i < e ? ds->src->sizes[seq] - off : eo + 1 - off;
        len = MB_MIN(len, want - n);
        read_tokens(g, ds->src, seq, off, len, text + n);
        n += len;
    }
    for (; n < want; n++)
        text[n] = g->pad;
}

/* __getitem__ + _get_ltor_masks_and_position_ids on TEXT[seq_len + 1] */
static void sample_fields(const mb_gpt_data *g, const int32_t *text, int32_t *tokens,
                          int32_t *labels, float *loss_mask, int32_t *position_ids)
{
    int32_t pos = 0;

    for (int64_t t = 0; t < g->seq_len; t++) {
        int32_t tok = text[t], lab = text[t + 1];
        if (loss_mask)
            loss_mask[t] = (g->eod_mask_loss && tok == g->eod) || lab == g->pad ? 0.0f : 1.0f;
        if (position_ids)
            position_ids[t] = g->reset_position_ids ? pos : (int32_t)t;
        pos = g->reset_position_ids && tok == g->eod ? 0 : pos + 1;
        if (tokens)
            tokens[t] = tok == g->pad ? 0 : tok;
        if (labels)
            labels[t] = lab == g->pad ? 0 : lab;
    }
}

int mb_gpt_data_sample(const mb_gpt_data *g, int split, int64_t k, int32_t *tokens,
                       int32_t *labels, float *loss_mask, int32_t *position_ids)
{
    const struct split_set *ss = split >= 0 && split < MB_SPLIT_COUNT ? &g->split[split] : NULL;

    if (!ss || k < 0 || k >= ss->size)
        return mb_err_set(MB_E_INVALID, "data", "sample %lld of the %s split: it has %lld",
                          (long long)k, mb_split_name(split), (long long)(ss ? ss->size : 0));
    const struct gpt_ds *ds = &ss->ds[ss->blended ? ss->dindex[k] : 0];
    int64_t j = ss->blended ? ss->dsample[k] : k;
    int32_t *text = mb_xmalloc((size_t)(g->seq_len + 1) * sizeof *text);
    sample_text(g, ds, j, text);
    sample_fields(g, text, tokens, labels, loss_mask, position_ids);
    free(text);
    return 0;
}
