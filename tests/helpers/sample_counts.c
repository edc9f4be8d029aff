/* tests/helpers/sample_counts.c - draw the first token N times (seeds 0 .. N-1) with
 * nn/sample.h and count, for the chi-square check against HF's logits warpers
 * (tests/oracle/hf_generate.py chi2).
 *
 *   sample_counts LOGITS.txt N [--temperature T] [--top-k K] [--top-p P] [--probs]
 *
 * LOGITS.txt holds one logit per line. Prints one count per token, a line each; with
 * --probs, mb_sample_probs' distribution instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "nn/sample.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sample_counts LOGITS.txt N [--temperature T] [--top-k K] "
                        "[--top-p P] [--probs]\n");
        return 2;
    }
    struct mb_sample_opts o = { false, 1.0, 0, 1.0, 0 };
    int probs_only = 0;
    for (int i = 3; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--temperature") == 0)
            o.temperature = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--top-k") == 0)
            o.top_k = atoll(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--top-p") == 0)
            o.top_p = atof(argv[++i]);
        else if (strcmp(argv[i], "--probs") == 0)
            probs_only = 1;
        else
            return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    float *z = NULL;
    int64_t v = 0;
    double x;
    while (fscanf(f, "%lf", &x) == 1) {
        z = mb_xrealloc(z, (size_t)(v + 1) * sizeof(*z));
        z[v++] = (float)x;
    }
    fclose(f);
    long long n = atoll(argv[2]);
    double *out = mb_xcalloc((size_t)v, sizeof(*out));
    struct mb_sampler s;
    if (probs_only) {
        mb_sampler_init(&s, &o);
        mb_sample_probs(&s, z, v, out);
        mb_sampler_free(&s);
    }
    for (long long seed = 0; !probs_only && seed < n; seed++) {
        o.seed = (uint64_t)seed;
        mb_sampler_init(&s, &o);
        out[mb_sample_next(&s, z, v)] += 1;
        mb_sampler_free(&s);
    }
    for (int64_t i = 0; i < v; i++)
        printf(probs_only ? "%.17g\n" : "%.0f\n", out[i]);
    free(out);
    free(z);
    return 0;
}
