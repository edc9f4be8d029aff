/* tests/helpers/tb_write.c - write a TensorBoard event file through train/tb from a
 * list of commands on stdin, one per line, and print the file's path:
 *
 *   scalar TAG STEP VALUE     VALUE parsed with strtod ("nan", "-inf", "1e39" allowed)
 *   text TAG STEP FILE        the whole of FILE as the text
 *
 *   tb_write DIR <commands
 *
 * Exits 0, 1 with "tb_write: error: WHERE: WHAT" when the library fails, or 2 on a
 * malformed command (a test bug, not a library failure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/fs.h"
#include "train/tb.h"

static int fail(void)
{
    fprintf(stderr, "tb_write: error: %s: %s\n", mb_err_where(), mb_err_what());
    return 1;
}

static int usage(const char *line)
{
    fprintf(stderr, "tb_write: bad command: %s", line);
    return 2;
}

/* Run one command line; returns 0, 1 (library error) or 2 (bad command). */
static int run_line(mb_tb *tb, char *line)
{
    char kind[16], tag[256], arg[4096];
    long long step;

    if (sscanf(line, "%15s %255s %lld %4095s", kind, tag, &step, arg) != 4)
        return usage(line);
    if (strcmp(kind, "scalar") == 0) {
        char *end;
        double v = strtod(arg, &end);
        if (*end != '\0')
            return usage(line);
        return mb_tb_scalar(tb, tag, step, v) == 0 ? 0 : fail();
    }
    if (strcmp(kind, "text") == 0) {
        char *text;
        size_t len;
        if (mb_fs_read_all(arg, &text, &len) != 0)
            return fail();
        int rc = mb_tb_text(tb, tag, step, text, len) == 0 ? 0 : fail();
        free(text);
        return rc;
    }
    return usage(line);
}

int main(int argc, char **argv)
{
    mb_tb *tb;
    char line[8192];
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: tb_write DIR <commands\n");
        return 2;
    }
    if (mb_tb_open(&tb, argv[1]) != 0)
        return fail();
    printf("%s\n", mb_tb_path(tb));
    while (rc == 0 && fgets(line, sizeof line, stdin))
        rc = run_line(tb, line);
    mb_tb_close(tb);
    return rc;
}
