/* tests/fuzz/fuzz_recipe.c - YAML recipes and key=value overrides (core/config.c) under
 * mb-pretrain's schema, then the checks mb-pretrain runs on them (model config, learning
 * rate schedule, data blend), on any bytes.
 *
 * Input: the recipe, then optionally a NUL byte and NUL-separated command-line words
 * (each applied as an override when it looks like one, as mb-pretrain does). A config
 * that loads must print as YAML that loads back, and convert to JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "train/sched.h"
#include "train/schema.h"
#include "train/setup.h"
#include "tests/fuzz/fuzz_common.h"

static void run_checks(const mb_config *cfg)
{
    struct mb_model_config model;
    struct mb_lr_schedule sched;
    const char **paths = NULL;
    double *weights = NULL;

    (void)mb_setup_model_config(cfg, 0, &model);
    (void)mb_setup_model_config(cfg, 50257, &model);
    int64_t batch = mb_config_i64(cfg, "train.global_batch_size");
    (void)mb_lr_schedule_from_config(&sched, cfg, batch > 0 ? batch : 1);
    if (mb_setup_blend(cfg, &paths, &weights) >= 0) {
        free(paths);
        free(weights);
    }
}

/* Print CFG as YAML and load it into a fresh config: the printer's promise. */
static void print_round_trip(const mb_config *cfg, const struct mb_config_key *schema, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);

    fuzz_check(mb_config_print(cfg, fp) == 0, "print failed");
    fclose(fp);
    const char *path = fuzz_file("printed.yaml", text, len);
    mb_config *back = mb_config_new(schema, n);
    if (mb_config_load_yaml(back, path) != 0) {
        fprintf(stderr, "%s: %s\n--- printed:\n%s", mb_err_where(), mb_err_what(), text);
        fuzz_check(0, "the printed config does not load back");
    }
    char *a = mb_config_to_json(cfg), *b = mb_config_to_json(back);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "--- before:\n%s\n--- after:\n%s\n", a, b);
        fuzz_check(0, "the printed config loads back different");
    }
    free(a);
    free(b);
    mb_config_free(back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t yaml_len = nul ? (size_t)(nul - data) : size;
    size_t n;
    const struct mb_config_key *schema = mb_pretrain_schema(&n);
    mb_config *cfg = mb_config_new(schema, n);

    int rc = mb_config_load_yaml(cfg, fuzz_file("recipe.yaml", data, yaml_len));
    if (rc == 0 && nul) {
        /* the words after the recipe, NUL-terminated copies */
        char *words = mb_xstrndup((const char *)nul + 1, size - yaml_len - 1);
        size_t wlen = size - yaml_len - 1;
        for (size_t at = 0; rc == 0 && at < wlen; at += strlen(words + at) + 1)
            if (mb_config_is_override(words + at))
                rc = mb_config_override(cfg, words + at);
        free(words);
    }
    if (rc == 0) {
        run_checks(cfg);
        print_round_trip(cfg, schema, n);
    }
    mb_config_free(cfg);
    return 0;
}
