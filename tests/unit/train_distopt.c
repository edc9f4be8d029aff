/* train_distopt - the distributed optimizer's pieces that need no MPI.
 *
 * - Overlap: with the gradient reduction hooked into the model's backward pass
 *   (mb_model.grad_ready), every bucket is started only when its gradients are final:
 *   a snapshot of the bucket taken when it starts equals, bit for bit, the gradient at the
 *   end of the step (two micro-batches, buckets as small as one unit, every family: tied
 *   embeddings, learned positions, biases, sandwich and QK norms). And some buckets do
 *   start before the backward ends.
 * - Buckets tile the flat buffer from its end down, each of at least ddp.bucket_size
 *   floats but the last, cut only between layer slices of parameters.
 * - Shards: for DP sizes 1 to 5 the ranks' shards tile the buffer, every one of
 *   ceil(P / d) floats but the last, and each bucket's per-rank counts are its overlap
 *   with the ranks' shards.
 * - AdamW over the shards of a cut buffer (parameters cut mid-row) is bitwise AdamW over
 *   the whole, weight decay per parameter included; the norm's sum of squares over the
 *   shards is the whole one, and per-parameter weights skip what they should.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "kern/ops.h"
#include "nn/model.h"
#include "tests/lib/tap.h"
#include "train/gradsync.h"
#include "train/optim.h"

#define B 2
#define T 8

static float uniform(uint64_t key)
{
    return (float)(mb_splitmix64(key) >> 40) / (float)(1 << 24) - 0.5f;
}

static int load_model(struct mb_model *m, const char *root, const char *family)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/models/%s.json", root, family);
    mb_json *j = mb_json_parse_file(path);
    struct mb_model_config cfg;
    int rc = j && mb_model_config_from_json(&cfg, j, path) == 0 ? 0 : -1;
    mb_json_free(j);
    if (rc == 0)
        rc = mb_model_init(m, &cfg, mb_ops_cpu());
    if (rc == 0)
        mb_model_init_weights(m, 5);
    return rc;
}

/* What the hook saw: each bucket's gradients when it was started. */
struct watch {
    struct mb_grad_sync *s;
    float **snap;
    int early; /* buckets started before the end of the backward */
};

static void hook(void *ctx, int64_t layer)
{
    struct watch *w = ctx;
    struct mb_grad_sync *s = w->s;
    bool was[4096];
    for (int k = 0; k < s->nbuckets; k++)
        was[k] = s->buckets[k].started;
    mb_grad_sync_ready(s, mb_grad_stage_of_layer(s->num_layers, layer));
    for (int k = 0; k < s->nbuckets; k++)
        if (!was[k] && s->buckets[k].started) {
            const struct mb_grad_bucket *b = &s->buckets[k];
            size_t bytes = (size_t)(b->end - b->start) * sizeof(float);
            w->snap[k] = mb_xmalloc(bytes);
            memcpy(w->snap[k], s->g + b->start, bytes);
            w->early++;
        }
}

static void batch_of(int32_t *tokens, int32_t *labels, float *mask, int64_t vocab, int salt)
{
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (int32_t)(mb_splitmix64((uint64_t)(i + 100 * salt)) % (uint64_t)vocab);
        labels[i] = (int32_t)(mb_splitmix64((uint64_t)(i + 100 * salt) + 7) % (uint64_t)vocab);
        mask[i] = 1.0f;
    }
}

/* Buckets from the end of the buffer down, contiguous, each >= SIZE but the last, cut
 * only at a parameter or layer-slice boundary. */
static int tiles(const struct mb_grad_sync *s, const struct mb_param_table *p, int64_t size)
{
    int64_t end = s->total;
    for (int k = 0; k < s->nbuckets; k++) {
        const struct mb_grad_bucket *b = &s->buckets[k];
        if (b->end != end || b->start >= b->end || (b->end - b->start < size && b->start != 0))
            return 0;
        bool boundary = b->start == 0;
        for (int i = 0; i < p->count && !boundary; i++) {
            const struct mb_param *q = &p->items[i];
            int64_t units = q->per_layer ? q->shape[0] : 1, unit = q->numel / units;
            int64_t rel = b->start - q->offset;
            boundary = rel >= 0 && rel < q->numel && rel % unit == 0;
        }
        if (!boundary)
            return 0;
        end = b->start;
    }
    return end == 0;
}

static void check_overlap(const char *root, const char *family, int64_t bucket_size)
{
    struct mb_model m;
    memset(&m, 0, sizeof m);
    if (!ok(load_model(&m, root, family) == 0, "%s: model builds", family))
        return;
    struct mb_group one = { .rank = 0, .size = 1, .comm = NULL, .name = "dp", .kind = MB_GROUP_DP };
    struct mb_grad_sync s;
    if (!ok(mb_grad_sync_init(&s, &one, m.ops, &m.params, m.cfg.num_layers, m.g, false, true,
                              bucket_size, "test") == 0 && s.nbuckets <= 4096,
            "%s: gradient sync set up", family))
        return;
    ok(tiles(&s, &m.params, bucket_size), "%s, bucket_size %lld: %d buckets tile the buffer "
       "from its end down at unit boundaries", family, (long long)bucket_size, s.nbuckets);
    struct watch w = { &s, mb_xcalloc((size_t)s.nbuckets, sizeof(float *)), 0 };
    int32_t tokens[B * T], labels[B * T];
    float mask[B * T];
    double ls, ms;
    mb_model_zero_grad(&m);
    mb_grad_sync_begin(&s);
    int rc = 0;
    for (int mb = 0; mb < 2; mb++) { /* the hook only on the last micro-batch */
        batch_of(tokens, labels, mask, m.cfg.vocab_size, mb);
        struct mb_batch b = { B, T, tokens, labels, mask, NULL, NULL };
        m.grad_ready = mb == 1 ? hook : NULL;
        m.grad_ready_ctx = &w;
        rc |= mb_model_step(&m, &b, 0.05f, &ls, &ms, NULL);
    }
    m.grad_ready = NULL;
    mb_grad_sync_finish(&s);
    int final = 0, bad = -1;
    for (int k = 0; k < s.nbuckets; k++) {
        const struct mb_grad_bucket *b = &s.buckets[k];
        if (!w.snap[k])
            continue;
        if (memcmp(w.snap[k], s.g + b->start, (size_t)(b->end - b->start) * sizeof(float)) == 0)
            final++;
        else if (bad < 0)
            bad = k;
    }
    if (bad >= 0)
        tap_diag("bucket %d [%lld, %lld) stage %lld changed after it was started", bad,
                 (long long)s.buckets[bad].start, (long long)s.buckets[bad].end,
                 (long long)s.buckets[bad].stage);
    ok(rc == 0 && bad < 0 && final == w.early,
       "%s: the %d bucket%s started during the backward held final gradients", family,
       w.early, w.early == 1 ? "" : "s");
    ok(w.early > 0 && w.early < s.nbuckets,
       "%s: %d of %d buckets started before the backward ended", family, w.early, s.nbuckets);
    for (int k = 0; k < s.nbuckets; k++)
        free(w.snap[k]);
    free(w.snap);
    mb_grad_sync_free(&s);
    mb_model_free(&m);
}

/* Shards of every DP size tile the buffer; bucket counts are overlaps with them. */
static void check_shards(const char *root)
{
    struct mb_model m;
    memset(&m, 0, sizeof m);
    if (!ok(load_model(&m, root, "gpt2") == 0, "gpt2: model builds"))
        return;
    int good = 1;
    for (int d = 1; d <= 5; d++) {
        int64_t next = 0;
        for (int q = 0; q < d; q++) {
            struct mb_group g = { .rank = q, .size = d, .comm = NULL, .name = "dp" };
            struct mb_grad_sync s;
            if (mb_grad_sync_init(&s, &g, m.ops, &m.params, m.cfg.num_layers, m.g, true, true,
                                  1000, "test") < 0)
                return (void)ok(0, "init");
            int64_t want = (m.params.total + d - 1) / d;
            good &= s.lo == next && (s.hi - s.lo == want || (q == d - 1 && s.hi == s.total));
            good &= s.shard_counts[q] == s.hi - s.lo && s.shard_displs[q] == s.lo;
            next = s.hi;
            for (int k = 0; k < s.nbuckets; k++) {
                const struct mb_grad_bucket *b = &s.buckets[k];
                int64_t sum = 0;
                for (int r = 0; r < d; r++)
                    sum += b->counts[r];
                int64_t mine = MB_MIN(b->end, s.hi) - MB_MAX(b->start, s.lo);
                good &= sum == b->end - b->start && b->counts[q] == (mine > 0 ? mine : 0);
            }
            mb_grad_sync_free(&s);
        }
        good &= next == m.params.total;
    }
    ok(good, "DP 1 to 5: shards of ceil(P/d) tile the buffer; bucket counts are the overlaps");
    mb_model_free(&m);
}

/* AdamW and the norm over the shards of d ranks against the whole buffer. */
static void check_optimizer(const char *root)
{
    struct mb_model m;
    memset(&m, 0, sizeof m);
    if (!ok(load_model(&m, root, "gpt2") == 0, "gpt2: model builds"))
        return;
    const struct mb_ops *ops = m.ops;
    struct mb_exec *ex = m.ex;
    int64_t n = m.params.total;
    float *g = mb_xmalloc((size_t)n * sizeof(float));
    float *w0 = mb_xmalloc((size_t)n * sizeof(float));
    memcpy(w0, m.w, (size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        g[i] = uniform((uint64_t)i) * 0.1f;
    struct mb_adamw whole;
    if (!ok(mb_adamw_init(&whole, ops, &m.params, 0, n, 0.9f, 0.95f, 1e-8f, 0.1f) == 0, "adam"))
        return;
    for (int step = 0; step < 3; step++)
        mb_adamw_step(&whole, m.w, g, 1.0f, 1e-2f);
    double sq_whole = ops->sumsq(ex, g, n);
    ok(mb_grad_sumsq(ops, ex, &m.params, g, 0, n, NULL) == sq_whole,
       "sum of squares without weights is the one-pass whole-buffer sum, bitwise");
    for (int d = 2; d <= 4; d++) {
        float *w = mb_xmalloc((size_t)n * sizeof(float));
        memcpy(w, w0, (size_t)n * sizeof(float));
        int64_t shard = (n + d - 1) / d;
        int same = 1;
        double sq = 0, sq_weighted = 0;
        double *ones = mb_xmalloc((size_t)m.params.count * sizeof(double));
        for (int i = 0; i < m.params.count; i++)
            ones[i] = 1.0;
        for (int q = 0; q < d; q++) {
            int64_t lo = MB_MIN(q * shard, n), hi = MB_MIN(lo + shard, n);
            struct mb_adamw o;
            if (mb_adamw_init(&o, ops, &m.params, lo, hi, 0.9f, 0.95f, 1e-8f, 0.1f) < 0)
                return (void)ok(0, "adam");
            for (int step = 0; step < 3; step++)
                mb_adamw_step(&o, w, g + lo, 1.0f, 1e-2f);
            size_t bytes = (size_t)(hi - lo) * sizeof(float);
            same &= memcmp(o.exp_avg, whole.exp_avg + lo, bytes) == 0;
            same &= memcmp(o.exp_avg_sq, whole.exp_avg_sq + lo, bytes) == 0;
            sq += mb_grad_sumsq(ops, ex, &m.params, g + lo, lo, hi, NULL);
            sq_weighted += mb_grad_sumsq(ops, ex, &m.params, g + lo, lo, hi, ones);
            mb_adamw_free(&o);
        }
        same &= memcmp(w, m.w, (size_t)n * sizeof(float)) == 0;
        ok(same, "DP %d: AdamW over the %d shards is bitwise AdamW over the whole", d, d);
        ok(fabs(sq - sq_whole) <= 1e-12 * sq_whole && fabs(sq_weighted - sq_whole) <= 1e-12 * sq_whole,
           "DP %d: the shards' sums of squares add up to the whole (rel %.1e)", d,
           fabs(sq - sq_whole) / sq_whole);
        free(ones);
        free(w);
    }
    /* weights: a non-trainable parameter and a TP-replicated one on TP rank 1 do not count */
    double *weight = mb_xmalloc((size_t)m.params.count * sizeof(double));
    struct mb_param_table t = m.params;
    t.items[0].trainable = false;
    ok(mb_grad_norm_weights(&m.params, 0, weight) == 1, "TP rank 0, all trainable: all weights 1");
    ok(mb_grad_norm_weights(&t, 0, weight) == 0 && weight[0] == 0 && weight[1] == 1,
       "a non-trainable parameter weighs 0");
    double skip = ops->sumsq(ex, g + t.items[0].offset, t.items[0].numel);
    double got = mb_grad_sumsq(ops, ex, &t, g, 0, n, weight);
    ok(fabs(got - (sq_whole - skip)) <= 1e-12 * sq_whole, "its gradient is left out of the norm");
    mb_grad_norm_weights(&m.params, 1, weight);
    int replicated_zero = 1;
    for (int i = 0; i < m.params.count; i++)
        replicated_zero &= weight[i] == (m.params.items[i].tp_replicated ? 0.0 : 1.0);
    ok(replicated_zero, "on TP rank 1 the TP-replicated parameters weigh 0");
    free(weight);
    mb_adamw_free(&whole);
    free(g);
    free(w0);
    mb_model_free(&m);
}

int main(void)
{
    const char *root = getenv("MB_ROOT") ? getenv("MB_ROOT") : "."; /* prove runs at the top */
    const char *families[] = { "llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gpt2" };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        check_overlap(root, families[i], 1); /* every unit a bucket */
    check_overlap(root, "llama", 20000);
    check_shards(root);
    check_optimizer(root);
    return tap_done();
}
