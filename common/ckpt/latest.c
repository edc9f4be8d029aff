/* ckpt/latest.c - the DIR/latest pointer: publishing a finished checkpoint file under
 * it, and resolving a load path through it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/fs.h"
#include "ckpt/internal.h"
#include "core/mem.h"

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0 || fsync(fd) != 0)
        rc = mb_err_errno(path, "cannot fsync");
    if (fd >= 0)
        close(fd);
    return rc;
}

/* DIR/latest = NAME and a newline, written to a temporary and renamed. */
static int write_latest(const char *dir, const char *name)
{
    struct mb_outfile of = MB_OUTFILE_INIT;
    char *latest = mb_xasprintf("%s/latest", dir);
    int rc = mb_outfile_open(&of, latest);
    if (rc == 0) {
        mb_outfile_write(&of, name, strlen(name));
        mb_outfile_write(&of, "\n", 1);
        rc = mb_outfile_commit(&of);
    }
    free(latest);
    return rc;
}

int ckpt_publish(const char *tmp, const char *final, const char *latest_dir)
{
    if (fsync_path(tmp) != 0)
        return -1;
    if (rename(tmp, final) != 0)
        return mb_err_errno(final, "cannot rename temporary checkpoint into place");
    if (mb_fs_sync_parent(final) != 0)
        return -1;
    const char *slash = strrchr(final, '/');
    return latest_dir ? write_latest(latest_dir, slash ? slash + 1 : final) : 0;
}

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
