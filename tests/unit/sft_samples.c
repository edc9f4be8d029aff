/* tests/unit/sft_samples.c - the samples of data/sft.h: each epoch a seeded permutation
 * of the examples (a new one per epoch, the same for the same seed), packed rows whose
 * examples keep their own positions and labels (no label crosses an example), every
 * example in exactly one packed row, a weighted blend of two files in proportion, and
 * errors naming file:line and key. Rows: "input" i-th number, "output" a word, encoded
 * with the byte tokenizer, so every example is recognisable from its tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "data/gpt_index.h"
#include "data/sft.h"
#include "tests/lib/tap.h"

#define SEQ 48
#define N 30

static const mb_tokenizer *tok;

static void write_rows(const char *path, const char *tag, int n)
{
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"input\": \"%s%d%.*s\", \"output\": \"w%d\"}\n", tag, i, i % 5 * 3,
                "...............", i);
    fclose(f);
}

static mb_sft_data *open_files(const char *const *paths, const double *w, int n, bool packed,
                               uint64_t seed)
{
    struct mb_sft_config c;
    memset(&c, 0, sizeof c);
    c.fmt = (struct mb_sft_format){ "{input}", "output", " ", SEQ, 256, false, NULL };
    c.paths = paths;
    c.weights = w;
    c.n_paths = n;
    c.seq_length = SEQ;
    c.packed = packed;
    c.seed = seed;
    c.train_samples = 400;
    c.quiet = true;
    c.valid_path = paths[0];
    mb_sft_data *d = NULL;
    return mb_sft_open(&d, &c, tok) == 0 ? d : NULL;
}

/* The example a sample row starts with: its number after the tag byte(s). */
static int example_of(const int32_t *tokens, int skip)
{
    int v = 0;
    for (int t = skip; t < SEQ && tokens[t] >= '0' && tokens[t] <= '9'; t++)
        v = v * 10 + tokens[t] - '0';
    return v;
}

static void epochs(void)
{
    const char *paths[] = { "a.jsonl" };
    mb_sft_data *d = open_files(paths, NULL, 1, false, 7), *e = open_files(paths, NULL, 1, false, 7);
    int32_t tok_row[SEQ];
    int order[3][N], again[N], seen[N];
    for (int ep = 0; ep < 3; ep++) {
        memset(seen, 0, sizeof seen);
        for (int k = 0; k < N; k++) {
            if (mb_sft_sample(d, MB_SPLIT_TRAIN, ep * N + k, tok_row, NULL, NULL, NULL, NULL) < 0)
                return;
            order[ep][k] = example_of(tok_row, 1);
            seen[order[ep][k] % N]++;
        }
        int all = 1;
        for (int i = 0; i < N; i++)
            all &= seen[i] == 1;
        ok(all, "epoch %d is a permutation of the %d examples", ep, N);
    }
    ok(memcmp(order[0], order[1], sizeof order[0]) != 0 &&
           memcmp(order[1], order[2], sizeof order[0]) != 0,
       "each epoch has its own order");
    int inorder = 1;
    for (int k = 0; k < N; k++)
        inorder &= order[0][k] == k;
    ok(!inorder, "the first epoch is shuffled");
    for (int k = 0; k < N; k++) { /* another process, samples asked in another order */
        if (mb_sft_sample(e, MB_SPLIT_TRAIN, N + (N - 1 - k), tok_row, NULL, NULL, NULL, NULL) < 0)
            return;
        again[N - 1 - k] = example_of(tok_row, 1);
    }
    ok(memcmp(again, order[1], sizeof again) == 0, "the same seed gives the same order");
    int valid = 1;
    for (int k = 0; k < 2 * N; k++) {
        if (mb_sft_sample(d, MB_SPLIT_VALID, k, tok_row, NULL, NULL, NULL, NULL) < 0)
            return;
        valid &= example_of(tok_row, 1) == k % N;
    }
    ok(valid, "validation samples in file order, wrapping around");
    mb_sft_close(d);
    mb_sft_close(e);
}

static void packed_rows(void)
{
    const char *paths[] = { "a.jsonl" };
    mb_sft_data *d = open_files(paths, NULL, 1, true, 7);
    int64_t rows = mb_sft_size(d, MB_SPLIT_TRAIN);
    int32_t tokens[SEQ], labels[SEQ], pos[SEQ], seg[SEQ];
    float mask[SEQ];
    int seen[N] = { 0 }, good = 1, multi = 0;
    for (int64_t k = 0; k < rows; k++) {
        if (mb_sft_sample(d, MB_SPLIT_TRAIN, k, tokens, labels, mask, pos, seg) < 0)
            return;
        for (int t = 0; t < SEQ; t++) {
            bool starts = t == 0 || seg[t] != seg[t - 1];
            bool ends = t == SEQ - 1 || seg[t + 1] != seg[t];
            bool pad = tokens[t] == 256 && mask[t] == 0;
            good &= starts ? pos[t] == 0 : pos[t] == pos[t - 1] + 1 || pad;
            if (starts && !pad) {
                seen[example_of(tokens + t, 1)]++;
                multi += seg[t] > 0;
            }
            /* inside an example the label is the next input; at its end the EOS */
            if (!pad)
                good &= ends ? labels[t] == 256 && mask[t] == 1 : labels[t] == tokens[t + 1];
        }
    }
    int once = 1;
    for (int i = 0; i < N; i++)
        once &= seen[i] == 1;
    ok(rows < N && multi > 0, "%d examples packed into %lld rows of %d", N, (long long)rows, SEQ);
    ok(once, "every example in exactly one packed row");
    ok(good, "positions restart per example; labels stay inside it, ending on its EOS");
    mb_sft_close(d);
}

static void blend(void)
{
    const char *paths[] = { "a.jsonl", "b.jsonl" };
    double w[] = { 3, 1 };
    mb_sft_data *d = open_files(paths, w, 2, false, 7);
    int32_t row[SEQ];
    int from_b = 0;
    for (int k = 0; k < 400; k++) {
        if (mb_sft_sample(d, MB_SPLIT_TRAIN, k, row, NULL, NULL, NULL, NULL) < 0)
            return;
        from_b += row[0] == 'b';
    }
    ok(from_b == 100, "weights 3:1: %d of 400 samples from the second file", from_b);
    ok(mb_sft_sample(d, MB_SPLIT_TRAIN, 400, row, NULL, NULL, NULL, NULL) < 0,
       "a sample past the blend is an error: %s", mb_err_what());
    mb_sft_close(d);
}

static void errors(void)
{
    FILE *f = fopen("bad.jsonl", "w");
    fprintf(f, "{\"input\": \"x\", \"output\": \"y\"}\n\n{\"input\": \"x\", \"output\": 3}\n");
    fclose(f);
    const char *paths[] = { "bad.jsonl" };
    ok(!open_files(paths, NULL, 1, false, 7) && strcmp(mb_err_where(), "bad.jsonl:3") == 0 &&
           strstr(mb_err_what(), "'output' holds an integer, not a string"),
       "a non-string answer: %s: %s", mb_err_where(), mb_err_what());
    f = fopen("bad.jsonl", "w");
    fprintf(f, "[1, 2]\n");
    fclose(f);
    ok(!open_files(paths, NULL, 1, false, 7) && strcmp(mb_err_where(), "bad.jsonl:1") == 0,
       "a row that is not an object: %s: %s", mb_err_where(), mb_err_what());
}

int main(void)
{
    tap_enter_scratch_dir();
    write_rows("a.jsonl", "a", N);
    write_rows("b.jsonl", "b", N);
    mb_tokenizer *t = mb_tokenizer_load("bytes");
    tok = t;
    epochs();
    packed_rows();
    blend();
    errors();
    mb_tokenizer_free(t);
    return tap_done();
}
