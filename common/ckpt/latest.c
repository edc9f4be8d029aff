/* ckpt/latest.c - the DIR/latest pointer: resolving a load path. (Writing it is part of
 * the commit in save.c.) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

/* The file name held in LATEST_PATH's text, trimmed of surrounding white space. */
static int read_latest(const char *latest_path, char **name)
{
    char *text;
    size_t len;

    if (mb_fs_read_all(latest_path, &text, &len) != 0)
        return -1;
    char *s = text, *e = text + strlen(text);
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        e--;
    *e = '\0';
    if (*s == '\0' || strchr(s, '\n') || strchr(s, '/')) {
        free(text);
        return mb_err_set(MB_E_PARSE, latest_path,
                          "does not hold one checkpoint file name");
    }
    *name = mb_xstrdup(s);
    free(text);
    return 0;
}

static int resolve_dir(const char *dir, char **file)
{
    char *latest = mb_xmalloc(strlen(dir) + 8);
    struct stat sb;
    char *name = NULL;

    sprintf(latest, "%s/latest", dir);
    if (stat(latest, &sb) != 0 && errno == ENOENT) {
        free(latest);
        return 0; /* no checkpoint yet */
    }
    if (read_latest(latest, &name) != 0) {
        free(latest);
        return -1;
    }
    char *path = mb_xmalloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    int rc = 0;
    if (stat(path, &sb) != 0) {
        rc = mb_err_errno(latest, "names checkpoint '%s', which cannot be opened", name);
        free(path);
        path = NULL;
    }
    free(name);
    free(latest);
    *file = path;
    return rc;
}

int mb_ckpt_resolve(const char *load, char **file)
{
    struct stat sb;

    *file = NULL;
    if (!load || !*load)
        return mb_err_set(MB_E_INVALID, "", "empty checkpoint path");
    if (stat(load, &sb) != 0) {
        size_t n = strlen(load);
        if (errno == ENOENT && !(n > 3 && strcmp(load + n - 3, ".h5") == 0))
            return 0; /* a directory that does not exist yet */
        return mb_err_errno(load, "cannot stat");
    }
    if (S_ISDIR(sb.st_mode))
        return resolve_dir(load, file);
    *file = mb_xstrdup(load);
    return 0;
}
