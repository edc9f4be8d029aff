/* core/cli.h - one option table that both parses argv and prints --help.
 *
 * Options are "--name VALUE", "--name=VALUE" or "-x VALUE"; flags take no value.
 * Everything that is not an option is a positional argument; "--" ends options.
 * Values are stored into the caller's options struct at each entry's offset.
 */
#ifndef MB_CORE_CLI_H
#define MB_CORE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/defs.h"

struct mb_buf;

enum mb_opt_kind {
    MB_OPT_FLAG,   /* int, set to 1 */
    MB_OPT_INT,    /* int64_t in [min, max] */
    MB_OPT_DOUBLE, /* double */
    MB_OPT_STR,    /* const char *, pointing into argv */
    MB_OPT_WORDS,  /* char *, malloc'd (the caller frees; NULL when not given): one or more
                    * values, as argparse's nargs='+' takes them (every following word up
                    * to the next option), joined with ',' */
    MB_OPT_REFUSED, /* an option of the tool's model (Megatron's) that is not supported:
                     * using it is a usage error quoting HELP (the reason); not in --help */
};

struct mb_opt {
    const char *name;       /* long name without "--" */
    char short_name;        /* 0 for none */
    enum mb_opt_kind kind;
    size_t offset;          /* offsetof(options struct, field) */
    const char *metavar;    /* "N", "FILE"; NULL for flags */
    const char *help;       /* one line, may say the default */
    int64_t min, max;       /* MB_OPT_INT only */
};

struct mb_cli {
    const char *tool;           /* "mb-preprocess" */
    const char *synopsis;       /* "[options] [file ...]" */
    const char *summary;        /* one line: what the tool does */
    const struct mb_opt *opts;
    size_t nopts;
    size_t args_offset;         /* offsetof(struct, char **args) */
    size_t nargs_offset;        /* offsetof(struct, int nargs) */
    void (*version_extra)(FILE *out); /* library versions the tool links, or NULL */
    /* For an unknown long option NAME[len] (VALUE: its "=value" or the next word, or
     * NULL): append a hint to the error ("train.train_iters=10"), or nothing. NULL: none. */
    void (*unknown_hint)(struct mb_buf *out, const char *name, size_t len, const char *value);
};

#define MB_CLI_EXIT 1 /* --help or --version was printed: exit 0 */

/* Parse ARGV into DEST. Returns 0, MB_CLI_EXIT, or -1 with mb_err set (MB_E_USAGE). */
MB_MUST_CHECK int mb_cli_parse(const struct mb_cli *cli, int argc, char **argv, void *dest);

void mb_cli_print_help(const struct mb_cli *cli, FILE *out);

/* "mb VERSION" and the compiler and flags mb was built with. */
void mb_version_print(FILE *out, const char *tool);
const char *mb_version(void);

#endif /* MB_CORE_CLI_H */
