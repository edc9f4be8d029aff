/* tests/helpers/gpt_samples.c - open GPT training data with data/gpt_dataset.h and dump
 * what the oracle compares: split sizes, cache names and the first samples of each split.
 *
 * usage: gpt_samples [options] PREFIX | W1 PREFIX1 W2 PREFIX2 ...
 *   --split S  --seq N  --seed N  --eod ID  --pad ID  --eod-mask-loss
 *   --reset-position-ids  --cache-dir DIR  --samples TRAIN,VALID,TEST  --first N
 *   --tokenizer-id KEY=VALUE (repeatable)  --mock VOCAB  --out DIR (default .)
 *   --mock-lengths FILE (write the mock sequence lengths as .npy and exit)
 * Writes DIR/sizes.txt ("train N" per split), DIR/cache.txt ("split i base" per dataset)
 * and DIR/{train,valid,test}_{tokens,labels,loss_mask,position_ids}.npy holding the
 * first min(N, size) samples. Exit 1 with "gpt_samples: error: WHERE: WHAT" on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "data/gpt_dataset.h"
#include "data/mock.h"
#include "io/npy.h"

#define MAX_PATHS 16
#define MAX_IDS 8

struct args {
    struct mb_gpt_data_config c;
    const char *paths[MAX_PATHS], *ids[2 * MAX_IDS], *out, *mock_lengths;
    double weights[MAX_PATHS];
    int64_t first;
};

static int fail(void)
{
    fprintf(stderr, "gpt_samples: error: %s: %s\n", mb_err_where(), mb_err_what());
    return 1;
}

static int parse_option(struct args *a, const char *opt, const char *val)
{
    struct mb_gpt_data_config *c = &a->c;

    if (!strcmp(opt, "--split"))
        snprintf(c->split, sizeof c->split, "%s", val);
    else if (!strcmp(opt, "--seq"))
        c->seq_length = atoll(val);
    else if (!strcmp(opt, "--seed"))
        c->seed = strtoull(val, NULL, 10);
    else if (!strcmp(opt, "--eod"))
        c->eod_id = atoi(val);
    else if (!strcmp(opt, "--pad"))
        c->pad_id = atoi(val);
    else if (!strcmp(opt, "--cache-dir"))
        c->cache_dir = val;
    else if (!strcmp(opt, "--first"))
        a->first = atoll(val);
    else if (!strcmp(opt, "--out"))
        a->out = val;
    else if (!strcmp(opt, "--mock-lengths"))
        a->mock_lengths = val;
    else if (!strcmp(opt, "--mock"))
        c->mock = true, c->mock_vocab = atoll(val);
    else if (!strcmp(opt, "--samples"))
        sscanf(val, "%lld,%lld,%lld", (long long *)&c->num_samples[0],
               (long long *)&c->num_samples[1], (long long *)&c->num_samples[2]);
    else if (!strcmp(opt, "--tokenizer-id") && c->n_tokenizer_ids < MAX_IDS) {
        char *kv = mb_xstrdup(val), *eq = strchr(kv, '=');
        if (!eq)
            return -1;
        *eq = '\0';
        a->ids[2 * c->n_tokenizer_ids] = kv;
        a->ids[2 * c->n_tokenizer_ids++ + 1] = eq + 1;
    } else
        return -1;
    return 0;
}

static int finish_args(struct args *a);

static int parse_args(struct args *a, int argc, char **argv)
{
    int i = 1, npos = 0;
    const char *pos[2 * MAX_PATHS];

    a->c.seq_length = 64;
    a->c.seed = 1234;
    a->c.pad_id = -1;
    a->c.num_samples[0] = a->c.num_samples[1] = a->c.num_samples[2] = -1;
    a->out = ".";
    a->first = 8;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--eod-mask-loss"))
            a->c.eod_mask_loss = true;
        else if (!strcmp(argv[i], "--reset-position-ids"))
            a->c.reset_position_ids = true;
        else if (!strncmp(argv[i], "--", 2) && i + 1 < argc) {
            if (parse_option(a, argv[i], argv[i + 1]) != 0)
                return -1;
            i++;
        } else if (npos < 2 * MAX_PATHS)
            pos[npos++] = argv[i];
        else
            return -1;
    }
    if (npos == 1) {
        a->paths[0] = pos[0];
        a->c.n_paths = 1;
        return finish_args(a);
    }
    /* get_blend_from_list: an even list whose every other item is a number is weighted */
    bool weighted = npos % 2 == 0;
    for (int k = 0; k < npos / 2 && weighted; k++) {
        char *end;
        a->weights[k] = strtod(pos[2 * k], &end);
        weighted = *end == '\0' && end != pos[2 * k];
    }
    a->c.n_paths = weighted ? npos / 2 : npos;
    for (int k = 0; k < a->c.n_paths; k++)
        a->paths[k] = weighted ? pos[2 * k + 1] : pos[k];
    a->c.weights = weighted ? a->weights : NULL;
    return finish_args(a);
}

static int finish_args(struct args *a)
{
    a->c.paths = a->paths;
    a->c.tokenizer_ids = a->ids;
    return a->c.n_paths > 0 || a->c.mock || a->mock_lengths ? 0 : -1;
}

static int dump_split(const mb_gpt_data *d, int split, const struct args *a)
{
    int64_t n = MB_MIN(a->first, mb_gpt_data_size(d, split)), seq = a->c.seq_length;
    int64_t shape[2] = { n, seq };
    size_t cells = (size_t)MB_MAX(n * seq, (int64_t)1);
    int32_t *tok = mb_xmalloc(cells * 4), *lab = mb_xmalloc(cells * 4), *pos = mb_xmalloc(cells * 4);
    float *mask = mb_xmalloc(cells * 4);
    char path[4096];
    int rc = 0;

    for (int64_t k = 0; k < n && rc == 0; k++)
        rc = mb_gpt_data_sample(d, split, k, tok + k * seq, lab + k * seq, mask + k * seq,
                                pos + k * seq);
    const char *names[] = { "tokens", "labels", "loss_mask", "position_ids" };
    const void *data[] = { tok, lab, mask, pos };
    for (int f = 0; f < 4 && rc == 0; f++) {
        snprintf(path, sizeof path, "%s/%s_%s.npy", a->out, mb_split_name(split), names[f]);
        rc = mb_npy_write(path, f == 2 ? MB_NPY_F4 : MB_NPY_I4, 2, shape, data[f]);
    }
    free(tok);
    free(lab);
    free(pos);
    free(mask);
    return rc;
}

static int write_mock_lengths(const char *path)
{
    int32_t *len = mb_xmalloc(MB_MOCK_SEQUENCES * sizeof *len);
    int64_t shape[1] = { MB_MOCK_SEQUENCES };

    mb_mock_sequence_lengths(len);
    int rc = mb_npy_write(path, MB_NPY_I4, 1, shape, len);
    free(len);
    return rc;
}

static void write_summary(const mb_gpt_data *d, const struct args *a)
{
    char path[4096];

    snprintf(path, sizeof path, "%s/sizes.txt", a->out);
    FILE *f = fopen(path, "w");
    for (int s = 0; s < MB_SPLIT_COUNT; s++)
        fprintf(f, "%s %lld\n", mb_split_name(s), (long long)mb_gpt_data_size(d, s));
    fclose(f);
    snprintf(path, sizeof path, "%s/cache.txt", a->out);
    f = fopen(path, "w");
    for (int s = 0; s < MB_SPLIT_COUNT; s++)
        for (int i = 0; mb_gpt_data_cache_base(d, s, i); i++)
            fprintf(f, "%s %d %s\n", mb_split_name(s), i, mb_gpt_data_cache_base(d, s, i));
    fclose(f);
}

int main(int argc, char **argv)
{
    struct args a = { 0 };
    mb_gpt_data *d;
    int rc = 0;

    if (parse_args(&a, argc, argv) != 0) {
        fprintf(stderr, "gpt_samples: usage error (see the comment in gpt_samples.c)\n");
        return 2;
    }
    if (a.mock_lengths)
        return write_mock_lengths(a.mock_lengths) == 0 ? 0 : fail();
    if (mb_gpt_data_open(&d, &a.c) != 0)
        return fail();
    write_summary(d, &a);
    for (int s = 0; s < MB_SPLIT_COUNT && rc == 0; s++)
        rc = dump_split(d, s, &a);
    mb_gpt_data_close(d);
    return rc == 0 ? 0 : fail();
}
