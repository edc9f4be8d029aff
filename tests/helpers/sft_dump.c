/* tests/helpers/sft_dump.c - SFT rows and samples of data/sft.h, for the oracles.
 *
 * usage: sft_dump [options] FILE...
 *   --tokenizer SPEC (required)  --template T  --answer-key K  --separator S  --seq N
 *   --rows N       print the first N rows of the first FILE through mb_sft_encode_row:
 *                  "ids 1 2 3" and "mask 0 0 1" lines, or "skip" (no answer left)
 *   --samples N    open FILE... with mb_sft_open and print training samples 0..N-1:
 *                  "sample K", then tokens, labels, mask, pos, seg lines
 *   --packed  --seed N  --weights W1,W2,...
 * Exit 1 with "sft_dump: error: WHERE: WHAT" on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "data/gpt_index.h"
#include "data/sft.h"
#include "io/jsonl.h"
#include "io/lines.h"

#define MAX_PATHS 16

struct args {
    struct mb_sft_config c;
    const char *tokenizer, *paths[MAX_PATHS];
    double weights[MAX_PATHS];
    int64_t rows, samples;
};

static int fail(void)
{
    fprintf(stderr, "sft_dump: error: %s: %s\n", mb_err_where(), mb_err_what());
    return 1;
}

static void print_ints(const char *name, const int32_t *v, int64_t n)
{
    printf("%s", name);
    for (int64_t i = 0; i < n; i++)
        printf(" %d", v[i]);
    printf("\n");
}

static int dump_rows(const struct args *a, mb_tok_encoder *enc)
{
    mb_lines *in = mb_lines_open(a->paths[0]);
    if (!in)
        return -1;
    struct mb_jsonl_record rec = MB_JSONL_RECORD_INIT;
    struct mb_ids ids = MB_IDS_INIT;
    const char *line;
    size_t len;
    int64_t lineno, off;
    int rc;
    while ((rc = mb_lines_next(in, &line, &len, &lineno, &off)) == 1 && lineno <= a->rows) {
        char where[512];
        uint8_t *mask = NULL;
        snprintf(where, sizeof where, "%s:%lld", a->paths[0], (long long)lineno);
        rc = mb_jsonl_parse(&rec, line, len, NULL, 0, where);
        if (rc == 0)
            rc = mb_sft_encode_row(&a->c.fmt, enc, rec.root, where, &ids, &mask);
        if (rc < 0)
            break;
        if (rc == MB_SFT_ROW_NO_ANSWER) {
            printf("skip\n");
            continue;
        }
        print_ints("ids", ids.v, (int64_t)ids.len);
        printf("mask");
        for (size_t i = 0; i < ids.len; i++)
            printf(" %d", mask[i]);
        printf("\n");
        free(mask);
    }
    mb_ids_release(&ids);
    mb_jsonl_record_release(&rec);
    mb_lines_close(in);
    return rc < 0 ? -1 : 0;
}

static int dump_samples(const struct args *a, const mb_tokenizer *tok)
{
    mb_sft_data *d;
    if (mb_sft_open(&d, &a->c, tok) < 0)
        return -1;
    int64_t T = a->c.seq_length;
    int32_t *tokens = mb_xmalloc((size_t)T * 16), *labels = tokens + T, *pos = tokens + 2 * T,
            *seg = tokens + 3 * T;
    float *mask = mb_xmalloc((size_t)T * sizeof *mask);
    int rc = 0;
    printf("size %lld\n", (long long)mb_sft_size(d, MB_SPLIT_TRAIN));
    for (int64_t k = 0; rc == 0 && k < a->samples; k++) {
        rc = mb_sft_sample(d, MB_SPLIT_TRAIN, k, tokens, labels, mask, pos, seg);
        printf("sample %lld\n", (long long)k);
        print_ints("tokens", tokens, T);
        print_ints("labels", labels, T);
        printf("mask");
        for (int64_t i = 0; i < T; i++)
            printf(" %d", (int)mask[i]);
        printf("\n");
        print_ints("pos", pos, T);
        print_ints("seg", seg, T);
    }
    free(tokens);
    free(mask);
    mb_sft_close(d);
    return rc;
}

static int parse(struct args *a, int argc, char **argv)
{
    struct mb_sft_format *f = &a->c.fmt;
    f->prompt_template = "{input}";
    f->answer_key = "output";
    f->separator = " ";
    a->c.seq_length = f->max_length = 2048;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--packed") == 0) {
            a->c.packed = true;
            continue;
        }
        if (strncmp(o, "--", 2) != 0) {
            if (a->c.n_paths == MAX_PATHS)
                return mb_err_set(MB_E_USAGE, o, "too many files");
            a->paths[a->c.n_paths++] = o;
            continue;
        }
        if (!v)
            return mb_err_set(MB_E_USAGE, o, "needs a value");
        i++;
        if (strcmp(o, "--tokenizer") == 0)
            a->tokenizer = v;
        else if (strcmp(o, "--template") == 0)
            f->prompt_template = v;
        else if (strcmp(o, "--answer-key") == 0)
            f->answer_key = v;
        else if (strcmp(o, "--separator") == 0)
            f->separator = v;
        else if (strcmp(o, "--seq") == 0)
            a->c.seq_length = f->max_length = atoll(v);
        else if (strcmp(o, "--rows") == 0)
            a->rows = atoll(v);
        else if (strcmp(o, "--samples") == 0)
            a->samples = atoll(v);
        else if (strcmp(o, "--seed") == 0)
            a->c.seed = (uint64_t)atoll(v);
        else if (strcmp(o, "--weights") == 0) {
            char *end = (char *)v;
            for (int n = 0; n < MAX_PATHS && *end; n++) {
                a->weights[n] = strtod(end, &end);
                end += *end == ',';
            }
            a->c.weights = a->weights;
        } else
            return mb_err_set(MB_E_USAGE, o, "unknown option");
    }
    if (!a->tokenizer || a->c.n_paths == 0)
        return mb_err_set(MB_E_USAGE, "sft_dump", "give --tokenizer SPEC and a FILE");
    a->c.paths = a->paths;
    a->c.train_samples = a->samples;
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    memset(&a, 0, sizeof a);
    if (parse(&a, argc, argv) < 0)
        return fail();
    mb_tokenizer *tok = mb_tokenizer_load(a.tokenizer);
    if (!tok)
        return fail();
    a.c.fmt.eos_id = mb_tokenizer_eod(tok);
    int rc;
    if (a.rows > 0) {
        mb_tok_encoder *enc = mb_tok_encoder_new(tok);
        a.c.fmt.space_sensitive = mb_sft_space_sensitive(enc);
        rc = dump_rows(&a, enc);
        mb_tok_encoder_free(enc);
    } else {
        rc = dump_samples(&a, tok);
    }
    mb_tokenizer_free(tok);
    return rc < 0 ? fail() : 0;
}
