/* mb-ckpt - inspect, verify, compare, average and cast mb checkpoints.
 *
 *   mb-ckpt info CKPT [--json]
 *   mb-ckpt verify CKPT [--checksums FILE | --write-checksums FILE]
 *   mb-ckpt diff A B [--atol X] [--rtol Y]
 *   mb-ckpt average A B ... -o OUT
 *   mb-ckpt convert-dtype CKPT --dtype bf16|fp16|fp32 -o OUT
 *   mb-ckpt merge-adapter BASE ADAPTER OUT
 *
 * Dispatch only: each subcommand is cmd_<name>() in its own file (info.c, verify.c, ...),
 * with its own option table. Anything before a subcommand name goes to the top-level
 * table, which knows only --help and --version.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/tool.h"

struct ck_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
};

static const struct ck_cmd ck_cmds[] = {
    { "info", cmd_info },
    { "verify", cmd_verify },
    { "diff", cmd_diff },
    { "average", cmd_average },
    { "convert-dtype", cmd_convert_dtype },
    { "merge-adapter", cmd_merge_adapter },
};

struct top_opts {
    char **args;
    int nargs;
};

static const struct mb_opt top_options[] = { { 0 } };

static const struct mb_cli top_cli = {
    .tool = "mb-ckpt",
    .synopsis = "COMMAND [options] CKPT ...",
    .summary = "Inspect, verify, compare, average and cast mb checkpoints; merge adapters.\n\n"
               "Commands:\n"
               "  info CKPT [--json]           architecture, config, counters, tensors\n"
               "  verify CKPT                  structure, shapes, finite values, checksums\n"
               "  diff A B                     per-tensor differences beyond --atol/--rtol\n"
               "  average A B ... -o OUT       element-wise mean of the models\n"
               "  convert-dtype CKPT --dtype T -o OUT   cast the model to bf16, fp16 or fp32\n"
               "  merge-adapter BASE ADAPTER OUT        fold a LoRA/DoRA adapter into the base\n"
               "\nCKPT is a checkpoint file or a directory with 'latest'; info and verify also "
               "take a\nHuggingFace model directory. 'mb-ckpt COMMAND --help' describes a "
               "command's options.",
    .opts = top_options,
    .nopts = 0,
    .args_offset = offsetof(struct top_opts, args),
    .nargs_offset = offsetof(struct top_opts, nargs),
};

static int dispatch(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        for (size_t k = 0; k < sizeof ck_cmds / sizeof ck_cmds[0]; k++)
            if (strcmp(argv[i], ck_cmds[k].name) == 0)
                return ck_cmds[k].run(argc - i, argv + i);
        return mb_err_set(MB_E_USAGE, NULL, "unknown command '%s'", argv[i]);
    }
    struct top_opts o = { 0 };
    int rc = mb_cli_parse(&top_cli, argc, argv, &o);
    free(o.args);
    if (rc == 0)
        rc = mb_err_set(MB_E_USAGE, NULL, "no command given");
    return rc;
}

int main(int argc, char **argv)
{
    mb_tool_start("mb-ckpt");
    return mb_tool_end(dispatch(argc, argv));
}
