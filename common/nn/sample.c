/* nn/sample.c - greedy choice and HF-style temperature / top-k / top-p sampling. */
#include "nn/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"

void mb_sampler_init(struct mb_sampler *s, const struct mb_sample_opts *o)
{
    memset(s, 0, sizeof(*s));
    s->o = *o;
}

void mb_sampler_free(struct mb_sampler *s)
{
    free(s->order);
    free(s->z);
    free(s->p);
    memset(s, 0, sizeof(*s));
}

static void reserve(struct mb_sampler *s, int64_t vocab)
{
    if (s->cap >= vocab)
        return;
    s->order = mb_xrealloc(s->order, (size_t)vocab * sizeof(*s->order));
    s->z = mb_xrealloc(s->z, (size_t)vocab * sizeof(*s->z));
    s->p = mb_xrealloc(s->p, (size_t)vocab * sizeof(*s->p));
    s->cap = vocab;
}

static int32_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

/* qsort context: the warped logits (qsort has none of its own). */
static _Thread_local const float *sort_z;

/* Descending by logit, then ascending by id (a total order, so any qsort agrees). */
static int by_logit_desc(const void *a, const void *b)
{
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (sort_z[i] != sort_z[j])
        return sort_z[i] > sort_z[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* Sort the first N ids of s->order by s->z, largest first. */
static void sort_desc(struct mb_sampler *s, int64_t n)
{
    sort_z = s->z;
    qsort(s->order, (size_t)n, sizeof(*s->order), by_logit_desc);
}

/* The kept tokens are s->order[0 .. return) (descending); their z are s->z. */
static int64_t filter(struct mb_sampler *s, const float *logits, int64_t vocab)
{
    float t = (float)s->o.temperature;
    for (int64_t i = 0; i < vocab; i++) {
        s->z[i] = t != 1.0f ? logits[i] / t : logits[i];
        s->order[i] = (int32_t)i;
    }
    sort_desc(s, vocab);
    int64_t kept = vocab;
    if (s->o.top_k > 0 && s->o.top_k < vocab) {
        float kth = s->z[s->order[s->o.top_k - 1]];
        kept = s->o.top_k;
        while (kept < vocab && s->z[s->order[kept]] >= kth) /* ties with the k-th stay */
            kept++;
    }
    if (s->o.top_p >= 1.0)
        return kept;
    /* softmax of the kept tokens, then HF's walk from the least likely upwards */
    float mx = s->z[s->order[0]];
    double sum = 0, cum = 0;
    for (int64_t r = 0; r < kept; r++)
        sum += exp((double)(s->z[s->order[r]] - mx));
    int64_t keep_top_p = kept;
    for (int64_t r = kept - 1; r > 0; r--) {
        cum += exp((double)(s->z[s->order[r]] - mx)) / sum;
        if (cum > 1.0 - s->o.top_p)
            break;
        keep_top_p = r;
    }
    return keep_top_p;
}

void mb_sample_probs(struct mb_sampler *s, const float *logits, int64_t vocab, double *probs)
{
    memset(probs, 0, (size_t)vocab * sizeof(*probs));
    if (s->o.greedy) {
        probs[argmax(logits, vocab)] = 1.0;
        return;
    }
    reserve(s, vocab);
    int64_t kept = filter(s, logits, vocab);
    float mx = s->z[s->order[0]];
    double sum = 0;
    for (int64_t r = 0; r < kept; r++) {
        int32_t id = s->order[r];
        probs[id] = exp((double)(s->z[id] - mx));
        sum += probs[id];
    }
    for (int64_t r = 0; r < kept; r++)
        probs[s->order[r]] /= sum;
}

const char *mb_logits_nonfinite(const float *logits, int64_t vocab)
{
    static const char *const kinds[8] = {
        NULL, "NaN", "inf", "NaN, inf", "-inf", "NaN, -inf", "inf, -inf", "NaN, inf, -inf",
    };
    unsigned seen = 0;
    for (int64_t i = 0; i < vocab; i++)
        if (!isfinite(logits[i]))
            seen |= isnan(logits[i]) ? 1u : (logits[i] > 0 ? 2u : 4u);
    return kinds[seen];
}

/* Uniform in [0, 1) from draw I of SEED. */
static double uniform(uint64_t seed, uint64_t i)
{
    uint64_t x = mb_splitmix64(mb_splitmix64(seed) + i);
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

int32_t mb_sample_next(struct mb_sampler *s, const float *logits, int64_t vocab)
{
    if (s->o.greedy)
        return argmax(logits, vocab);
    reserve(s, vocab);
    int64_t kept = filter(s, logits, vocab);
    float mx = s->z[s->order[0]];
    double sum = 0;
    for (int64_t r = 0; r < kept; r++) {
        s->p[r] = exp((double)(s->z[s->order[r]] - mx));
        sum += s->p[r];
    }
    double u = uniform(s->o.seed, s->draws++) * sum, cum = 0;
    for (int64_t r = 0; r < kept; r++) {
        cum += s->p[r];
        if (u < cum)
            return s->order[r];
    }
    return s->order[kept - 1];
}
