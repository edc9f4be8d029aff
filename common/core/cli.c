/* core/cli.c - table-driven option parsing and help. */
#include "core/cli.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/str.h"
#include "version.h"

const char *mb_version(void)
{
    return MB_VERSION;
}

void mb_version_print(FILE *out, const char *tool)
{
    fprintf(out, "%s (mb) %s\n", tool, MB_VERSION);
    fprintf(out, "compiler: %s\n", __VERSION__);
    fprintf(out, "flags: %s\n", MB_BUILD_FLAGS);
}

static const struct mb_opt *find_long(const struct mb_cli *cli, const char *name, size_t len)
{
    for (size_t i = 0; i < cli->nopts; i++)
        if (strlen(cli->opts[i].name) == len && strncmp(cli->opts[i].name, name, len) == 0)
            return &cli->opts[i];
    return NULL;
}

static const struct mb_opt *find_short(const struct mb_cli *cli, char c)
{
    for (size_t i = 0; i < cli->nopts; i++)
        if (cli->opts[i].short_name == c)
            return &cli->opts[i];
    return NULL;
}

static int store_value(const struct mb_opt *o, const char *value, void *dest)
{
    char *field = (char *)dest + o->offset;
    char what[128];

    snprintf(what, sizeof what, "--%s", o->name);
    switch (o->kind) {
    case MB_OPT_FLAG:
        *(int *)field = 1;
        return 0;
    case MB_OPT_INT:
        return mb_parse_i64(value, o->min, o->max, (int64_t *)field, what);
    case MB_OPT_DOUBLE:
        return mb_parse_double(value, (double *)field, what);
    case MB_OPT_STR:
        *(const char **)field = value;
        return 0;
    case MB_OPT_WORDS:
    case MB_OPT_REFUSED:
        break; /* parse_option handles them */
    }
    return -1;
}

/* An argument that is a value, not an option ("-" alone names standard input). */
static int is_word(const char *arg)
{
    return arg[0] != '-' || arg[1] == '\0';
}

/* MB_OPT_WORDS: VALUE (from "--name=value") or every following word, joined with ','
 * into a new string that replaces the field's (a repeated option adds to it). */
static int store_words(const struct mb_opt *o, int argc, char **argv, int *i, const char *value,
                       void *dest)
{
    char **field = (char **)((char *)dest + o->offset);
    struct mb_buf all = MB_BUF_INIT;

    if (*field)
        mb_buf_adds(&all, *field);
    if (value)
        mb_buf_addf(&all, "%s%s", all.len ? "," : "", value);
    while (!value && *i + 1 < argc && is_word(argv[*i + 1]) && strcmp(argv[*i + 1], "-") != 0)
        mb_buf_addf(&all, "%s%s", all.len ? "," : "", argv[++*i]);
    if (!all.len) {
        mb_buf_release(&all);
        return mb_err_set(MB_E_USAGE, NULL, "option '--%s' needs a value", o->name);
    }
    free(*field);
    *field = all.data;
    return 0;
}

static int unknown_long(const struct mb_cli *cli, int argc, char **argv, int i, const char *name,
                        size_t len, const char *value)
{
    struct mb_buf hint = MB_BUF_INIT;

    if (!value && i + 1 < argc && is_word(argv[i + 1]))
        value = argv[i + 1];
    if (cli->unknown_hint)
        cli->unknown_hint(&hint, name, len, value);
    int rc = hint.len ? mb_err_set(MB_E_USAGE, NULL, "unknown option '--%.*s' (%s)", (int)len,
                                   name, hint.data)
                      : mb_err_set(MB_E_USAGE, NULL, "unknown option '--%.*s'", (int)len, name);
    mb_buf_release(&hint);
    return rc;
}

/* Handle argv[*i], an option; advances *i past a separate value. */
static int parse_option(const struct mb_cli *cli, int argc, char **argv, int *i, void *dest)
{
    const char *arg = argv[*i];
    const struct mb_opt *o;
    const char *value = NULL;

    if (arg[1] == '-') {
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        o = find_long(cli, name, len);
        if (eq)
            value = eq + 1;
        if (!o)
            return unknown_long(cli, argc, argv, *i, name, len, value);
    } else {
        o = arg[2] == '\0' ? find_short(cli, arg[1]) : NULL;
        if (!o)
            return mb_err_set(MB_E_USAGE, NULL, "unknown option '%s'", arg);
    }
    if (o->kind == MB_OPT_REFUSED)
        return mb_err_set(MB_E_USAGE, NULL, "option '--%s' is not supported: %s", o->name, o->help);
    if (o->kind == MB_OPT_WORDS)
        return store_words(o, argc, argv, i, value, dest);
    if (o->kind == MB_OPT_FLAG) {
        if (value)
            return mb_err_set(MB_E_USAGE, NULL, "option '--%s' takes no value", o->name);
        return store_value(o, NULL, dest);
    }
    if (!value) {
        if (*i + 1 >= argc)
            return mb_err_set(MB_E_USAGE, NULL, "option '--%s' needs a value", o->name);
        value = argv[++*i];
    }
    return store_value(o, value, dest);
}

int mb_cli_parse(const struct mb_cli *cli, int argc, char **argv, void *dest)
{
    char **args = mb_xcalloc((size_t)argc + 1, sizeof *args);
    int nargs = 0, options_done = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || arg[1] == '\0') {
            args[nargs++] = argv[i];
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = 1;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            mb_cli_print_help(cli, stdout);
            free(args);
            return MB_CLI_EXIT;
        } else if (strcmp(arg, "--version") == 0) {
            mb_version_print(stdout, cli->tool);
            if (cli->version_extra)
                cli->version_extra(stdout);
            free(args);
            return MB_CLI_EXIT;
        } else if (parse_option(cli, argc, argv, &i, dest) != 0) {
            free(args);
            return -1;
        }
    }
    *(char ***)((char *)dest + cli->args_offset) = args;
    *(int *)((char *)dest + cli->nargs_offset) = nargs;
    return 0;
}

void mb_cli_print_help(const struct mb_cli *cli, FILE *out)
{
    fprintf(out, "Usage: %s %s\n%s\n\nOptions:\n", cli->tool, cli->synopsis, cli->summary);
    for (size_t i = 0; i < cli->nopts; i++) {
        const struct mb_opt *o = &cli->opts[i];
        if (o->kind == MB_OPT_REFUSED)
            continue;
        char head[96];
        int n = 0;
        if (o->short_name)
            n = snprintf(head, sizeof head, "-%c, ", o->short_name);
        snprintf(head + n, sizeof head - (size_t)n, "--%s%s%s%s", o->name,
                 o->metavar ? " " : "", o->metavar ? o->metavar : "",
                 o->kind == MB_OPT_WORDS ? " ..." : "");
        fprintf(out, "  %-30s %s\n", head, o->help);
    }
    fprintf(out, "  %-30s %s\n", "-h, --help", "show this help and exit");
    fprintf(out, "  %-30s %s\n", "--version", "show version and build information and exit");
}
