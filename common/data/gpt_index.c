/* data/gpt_index.c - GPTDataset and BlendedDataset index construction, after
 * megatron-core 0.16.1. Each function names the Megatron function it reproduces; the
 * float64 arithmetic follows numpy's order of operations so that ratios, book-ends and
 * weights round exactly as they do in Python. */
#include "data/gpt_index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "data/mt19937.h"

#define EXTRA 1 /* add_extra_token_to_sequence */

const char *mb_split_name(int split)
{
    static const char *const names[] = { "train", "valid", "test" };
    return split >= 0 && split < MB_SPLIT_COUNT ? names[split] : "?";
}

/* numpy's pairwise summation (loops_utils.h), which numpy.sum uses for float64 */
static double np_pairwise_sum(const double *a, int64_t n)
{
    if (n < 8) {
        double res = 0.;
        for (int64_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        int64_t i;
        memcpy(r, a, sizeof r);
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_pairwise_sum(a, n2) + np_pairwise_sum(a + n2, n - n2);
}

void mb_blend_normalize(double *w, int n)
{
    double sum = np_pairwise_sum(w, n);

    for (int i = 0; i < n; i++)
        w[i] = w[i] / sum;
}

int mb_split_parse(struct mb_split *s, const char *text, const char *where)
{
    double v[MB_SPLIT_COUNT] = { 0 };
    int n = 0;

    memset(s, 0, sizeof *s);
    for (const char *p = text; *p;) {
        size_t len = strspn(p, ".0123456789");
        if (len == 0) {
            p++;
            continue;
        }
        char num[64], *end;
        if (n == MB_SPLIT_COUNT || len >= sizeof num)
            return mb_err_set(MB_E_INVALID, where, "split '%s': more than three numbers", text);
        memcpy(num, p, len);
        num[len] = '\0';
        v[n++] = strtod(num, &end);
        if (*end != '\0')
            return mb_err_set(MB_E_INVALID, where, "split '%s': bad number '%s'", text, num);
        p += len;
    }
    if (np_pairwise_sum(v, MB_SPLIT_COUNT) <= 0.0)
        return mb_err_set(MB_E_INVALID, where, "split '%s': the ratios sum to zero", text);
    memcpy(s->ratio, v, sizeof v);
    mb_blend_normalize(s->ratio, MB_SPLIT_COUNT);
    /* book-ends: cumulative sums from 0; an empty interval is None */
    double acc = 0.0;
    for (int i = 0; i < MB_SPLIT_COUNT; i++) {
        s->lo[i] = acc;
        acc = acc + s->ratio[i];
        s->hi[i] = acc;
        s->present[i] = s->hi[i] > s->lo[i];
    }
    return 0;
}

void mb_split_range(const struct mb_split *s, int split, int64_t n, int64_t *beg, int64_t *end)
{
    *beg = *end = 0;
    if (!s->present[split])
        return;
    /* Python's round() on a float rounds half to even, as rint does in the default mode */
    *beg = (int64_t)rint(s->lo[split] * (double)n);
    *end = (int64_t)rint(s->hi[split] * (double)n);
}

int mb_gpt_plan(struct mb_gpt_plan *p, const int32_t *sizes, int64_t nseq, int64_t beg,
                int64_t end, int64_t seq_len, int64_t requested, const char *where)
{
    memset(p, 0, sizeof *p);
    if (seq_len < 2 || seq_len > INT32_MAX - EXTRA)
        return mb_err_set(MB_E_INVALID, where, "sequence length %lld out of range",
                          (long long)seq_len);
    MB_ASSERT(beg >= 0 && beg <= end && end <= nseq);
    for (int64_t i = beg; i < end; i++)
        p->tokens_per_epoch += sizes[i];
    if (p->tokens_per_epoch <= EXTRA)
        return mb_err_set(MB_E_INVALID, where,
                          "sequences %lld..%lld hold %lld tokens: too few to draw a sample",
                          (long long)beg, (long long)end, (long long)p->tokens_per_epoch);
    /* _get_num_epochs */
    p->num_epochs = 1;
    if (requested >= 0) {
        int64_t want = requested * seq_len + EXTRA;
        p->num_epochs = MB_MAX((int64_t)1, MB_CEIL_DIV(want, p->tokens_per_epoch));
    }
    p->num_samples = (p->num_epochs * p->tokens_per_epoch - EXTRA) / seq_len;
    if (p->num_epochs > 1) {
        int64_t per_epoch = (p->tokens_per_epoch - EXTRA) / seq_len;
        p->sans_final = ((p->num_epochs - 1) * p->tokens_per_epoch - EXTRA) / seq_len;
        /* int(0.80 * per_epoch): float64 product truncated */
        p->separate_final = requested - p->sans_final < (int64_t)(0.80 * (double)per_epoch);
    }
    int64_t n_doc = p->num_epochs * (end - beg), max_size = 0;
    for (int64_t i = 0; i < nseq; i++)
        max_size = MB_MAX(max_size, (int64_t)sizes[i]);
    p->sample_i64 = MB_MAX(n_doc, max_size) > INT32_MAX;
    p->shuffle_i64 = p->num_samples >= (int64_t)UINT32_MAX - 1;
    return 0;
}

/* _build_document_index: EPOCHS copies of [beg, end), shuffled together */
static void build_doc_epochs(int32_t *out, int64_t epochs, int64_t beg, int64_t end,
                             struct mb_mt19937 *mt)
{
    int64_t n = end - beg;

    for (int64_t e = 0; e < epochs; e++)
        for (int64_t i = 0; i < n; i++)
            out[e * n + i] = (int32_t)(beg + i);
    mb_mt_shuffle_i32(mt, out, epochs * n);
}

/* helpers.cpp build_sample_idx into OUT[2 * (num_samples + 1)] (int64 here) */
static void build_sample_rows(int64_t *out, const struct mb_gpt_plan *p, const int32_t *sizes,
                              const int32_t *doc, int64_t n_doc, int64_t seq_len)
{
    int64_t di = 0, off = 0;

    out[0] = 0;
    out[1] = 0;
    for (int64_t row = 1; row <= p->num_samples; row++) {
        int64_t remaining = seq_len + EXTRA;
        while (remaining != 0) {
            int64_t len = sizes[doc[di]] - off;
            remaining -= len;
            if (remaining <= 0) {
                off += remaining + len - EXTRA;
                remaining = 0;
            } else if (di == n_doc - 1) {
                off = sizes[doc[di]] - EXTRA;
                break;
            } else {
                di++;
                off = 0;
            }
        }
        out[2 * row] = di;
        out[2 * row + 1] = off;
    }
}

/* _build_shuffle_index: arange(first) shuffled, then arange(first, total) shuffled */
static void *build_shuffle(int64_t first, int64_t total, bool i64, struct mb_mt19937 *mt)
{
    if (i64) {
        int64_t *s = mb_xmalloc((size_t)MB_MAX(total, (int64_t)1) * sizeof *s);
        for (int64_t i = 0; i < total; i++)
            s[i] = i;
        mb_mt_shuffle_i64(mt, s, first);
        if (first < total)
            mb_mt_shuffle_i64(mt, s + first, total - first);
        return s;
    }
    uint32_t *s = mb_xmalloc((size_t)MB_MAX(total, (int64_t)1) * sizeof *s);
    for (int64_t i = 0; i < total; i++)
        s[i] = (uint32_t)i;
    mb_mt_shuffle_u32(mt, s, first);
    if (first < total)
        mb_mt_shuffle_u32(mt, s + first, total - first);
    return s;
}

void mb_gpt_index_build(struct mb_gpt_index *ix, const struct mb_gpt_plan *p,
                        const int32_t *sizes, int64_t beg, int64_t end, int64_t seq_len,
                        uint32_t seed)
{
    struct mb_mt19937 mt;
    int64_t n = end - beg, rows = p->num_samples + 1;

    memset(ix, 0, sizeof *ix);
    mb_mt_seed(&mt, seed);
    ix->n_doc = p->num_epochs * n;
    ix->doc = mb_xmalloc((size_t)MB_MAX(ix->n_doc, (int64_t)1) * sizeof *ix->doc);
    if (p->separate_final) {
        build_doc_epochs(ix->doc, p->num_epochs - 1, beg, end, &mt);
        build_doc_epochs(ix->doc + (p->num_epochs - 1) * n, 1, beg, end, &mt);
    } else {
        build_doc_epochs(ix->doc, p->num_epochs, beg, end, &mt);
    }
    int64_t *rows64 = mb_xmalloc((size_t)rows * 2 * sizeof *rows64);
    build_sample_rows(rows64, p, sizes, ix->doc, ix->n_doc, seq_len);
    ix->n_samples = p->num_samples;
    ix->sample_i64 = p->sample_i64;
    if (p->sample_i64) {
        ix->sample = rows64;
    } else {
        int32_t *rows32 = mb_xmalloc((size_t)rows * 2 * sizeof *rows32);
        for (int64_t i = 0; i < 2 * rows; i++)
            rows32[i] = (int32_t)rows64[i];
        free(rows64);
        ix->sample = rows32;
    }
    ix->shuffle_i64 = p->shuffle_i64;
    ix->shuffle = build_shuffle(p->separate_final ? p->sans_final : p->num_samples,
                                p->num_samples, p->shuffle_i64, &mt);
}

void mb_gpt_index_free(struct mb_gpt_index *ix)
{
    free(ix->doc);
    free(ix->sample);
    free(ix->shuffle);
    memset(ix, 0, sizeof *ix);
}

int64_t mb_blend_request(int64_t target, double w, double surplus)
{
    return (int64_t)ceil(ceil((double)target * w) * (1.0 + surplus));
}

void mb_blend_indices(const double *w, int n, int64_t size, int16_t *dataset_index,
                      int64_t *dataset_sample_index)
{
    int64_t *count = mb_xcalloc((size_t)n, sizeof *count);

    for (int64_t t = 0; t < size; t++) {
        double x = MB_MAX((double)t, 1.0);
        int best = 0;
        double best_err = w[0] * x - (double)count[0];
        for (int d = 1; d < n; d++) {
            double err = w[d] * x - (double)count[d];
            if (err > best_err) {
                best_err = err;
                best = d;
            }
        }
        dataset_index[t] = (int16_t)best;
        dataset_sample_index[t] = count[best]++;
    }
    free(count);
}
