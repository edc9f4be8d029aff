/* tests/helpers/cfg_check.c - load an mb-pretrain recipe with overrides through
 * core/config and the train/schema table, and print the resolved config.
 *
 *   cfg_check [--json] [--where KEY] [--sched] RECIPE [key=value ...]
 *
 * RECIPE is a name or a path (mb_config_find_recipe). Prints YAML (or JSON with
 * --json); --where prints where KEY was set instead; --sched also builds the LR
 * schedule from the config (global batch from train.global_batch_size, else
 * micro_batch_size) so recipes with an invalid schedule fail. Exit status like the
 * tools: 0, 1 on bad input, 2 on usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/tool.h"
#include "train/schema.h"
#include "train/sched.h"

struct opts {
    int json, sched;
    const char *where;
};

static int check_sched(const mb_config *cfg)
{
    struct mb_lr_schedule s;
    int64_t batch = mb_config_i64(cfg, "train.global_batch_size");

    if (batch == 0)
        batch = mb_config_i64(cfg, "train.micro_batch_size");
    return mb_lr_schedule_from_config(&s, cfg, batch);
}

static int output(const mb_config *cfg, const struct opts *o)
{
    if (o->sched && check_sched(cfg) != 0)
        return -1;
    if (o->where) {
        printf("%s\n", mb_config_where(cfg, o->where));
        return 0;
    }
    if (!o->json)
        return mb_config_print(cfg, stdout);
    char *j = mb_config_to_json(cfg);
    printf("%s\n", j);
    free(j);
    return 0;
}

static int run(int argc, char **argv)
{
    struct opts o = { 0 };
    int i = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o.json = 1;
        else if (strcmp(argv[i], "--sched") == 0)
            o.sched = 1;
        else if (strcmp(argv[i], "--where") == 0 && i + 1 < argc)
            o.where = argv[++i];
        else
            return mb_err_set(MB_E_USAGE, argv[i], "unknown option");
    }
    if (i >= argc)
        return mb_err_set(MB_E_USAGE, NULL, "usage: cfg_check [--json] RECIPE [key=value ...]");
    mb_config *cfg = mb_pretrain_config_new();
    char *path = NULL;
    int rc = mb_config_find_recipe(argv[i++], &path);
    if (rc == 0)
        rc = mb_config_load_yaml(cfg, path);
    for (; rc == 0 && i < argc; i++)
        rc = mb_config_override(cfg, argv[i]);
    if (rc == 0)
        rc = output(cfg, &o);
    free(path);
    mb_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    mb_tool_start("cfg_check");
    return mb_tool_end(run(argc, argv));
}
