/* ckpt/stale.c - remove the temporaries of killed saves, by mb's own names only. */
#include "ckpt/stale.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* S begins with N digits and then END exactly (or, with END NULL, is 1+ digits). */
static bool digits_then(const char *s, int n, const char *end)
{
    int i = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    if (end == NULL)
        return i > 0 && s[i] == '\0';
    return i == n && strcmp(s + i, end) == 0;
}

static bool is_mb_temporary(const char *name)
{
    if (strncmp(name, "iter_", 5) == 0) /* save.c: iter_%07d.h5 + ".tmp" */
        return digits_then(name + 5, 7, ".h5.tmp");
    if (strncmp(name, "latest.tmp.", 11) == 0) /* core/fs.c: PATH + ".tmp." + pid */
        return digits_then(name + 11, 0, NULL);
    return false;
}

int mb_ckpt_remove_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : mb_err_errno(dir, "cannot read the checkpoint directory");
    int removed = 0, rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!is_mb_temporary(e->d_name))
            continue;
        char *path = mb_xasprintf("%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (unlink(path) == 0) {
                mb_log_info("removed %s, the temporary of a save that did not finish", path);
                removed++;
            } else if (errno != ENOENT) {
                rc = mb_err_errno(path, "cannot remove the stale temporary");
            }
        }
        free(path);
    }
    closedir(d);
    return rc < 0 ? -1 : removed;
}
