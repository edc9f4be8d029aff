/* nn/sample.h - the next token from a row of logits: greedy, or sampled with temperature,
 * top-k and top-p from a seeded generator.
 *
 * The filters are those of HF transformers' generate(do_sample=True), in its order:
 * the logits are divided by the temperature; top-k keeps the tokens whose logit is at
 * least the k-th largest (ties kept); top-p sorts the remaining tokens by probability,
 * ascending, and removes those whose cumulative probability is <= 1 - p, always keeping
 * the most likely one (so it keeps the smallest set with probability >= p). The token is
 * drawn from the softmax of what is left. Draw i of seed S uses mb_splitmix64 of
 * (S, i) only, so a seed gives the same tokens on every machine.
 */
#ifndef MB_NN_SAMPLE_H
#define MB_NN_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

struct mb_sample_opts {
    bool greedy;        /* argmax (the first of equal maxima); the rest is ignored */
    double temperature; /* > 0; 1 leaves the logits alone */
    int64_t top_k;      /* 0: off */
    double top_p;       /* in (0, 1]; 1: off */
    uint64_t seed;
};

struct mb_sampler {
    struct mb_sample_opts o;
    uint64_t draws;     /* draws made so far */
    int64_t cap;        /* scratch capacity in tokens */
    int32_t *order;     /* [cap] token ids sorted by logit */
    float *z;           /* [cap] warped logits */
    double *p;          /* [cap] probabilities */
};

/* A sampler with options O (copied). */
void mb_sampler_init(struct mb_sampler *s, const struct mb_sample_opts *o);
void mb_sampler_free(struct mb_sampler *s);

/* PROBS[V] = the distribution the next token is drawn from for LOGITS[V]: the filtered,
 * renormalised softmax (0 for removed tokens); for greedy, 1 at the argmax. */
void mb_sample_probs(struct mb_sampler *s, const float *logits, int64_t vocab, double *probs);

/* NULL when every value of LOGITS[V] is finite; else the kinds of non-finite values it
 * holds, "NaN", "inf", "-inf" or several of them ("NaN, inf"). No token is to be chosen
 * from such logits (greedy would pick an arbitrary one, sampling NaN probabilities). */
const char *mb_logits_nonfinite(const float *logits, int64_t vocab);

/* The next token for LOGITS[V]; a sampled one uses the sampler's next draw. */
int32_t mb_sample_next(struct mb_sampler *s, const float *logits, int64_t vocab);

#endif /* MB_NN_SAMPLE_H */
