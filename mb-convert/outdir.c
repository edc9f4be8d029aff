/* mb-convert/outdir.c - an output directory that appears complete or not at all.
 *
 * Everything is written into ".NAME.mb-convert-tmp.HOST.PID" beside NAME. Its files are
 * registered as temporaries (core/fs.h), so SIGINT, SIGTERM, SIGHUP or SIGQUIT remove
 * the whole of it. On commit, with those signals blocked, the directory takes NAME's
 * place: renamed when NAME does not exist, else exchanged with it in one step
 * (renameat2 RENAME_EXCHANGE; two renames where the file system lacks it) and the old
 * export, now under the temporary name, removed - so no file of the old one survives.
 * A SIGKILL can leave a temporary behind: the next run for the same NAME on the same
 * host removes those whose process is gone.
 */
/* renameat2 comes with _GNU_SOURCE, which the build defines */
#include "outdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "core/tool.h"

#define TMP_TAG ".mb-convert-tmp."

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT ? -1 : 0;
}

/* rm -r PATH (one that this program named: a temporary or an old export). */
static int remove_tree(const char *path)
{
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return mb_err_errno(path, "cannot remove");
    return 0;
}

/* PARENT and BASE of DST, trailing slashes ignored. */
static void split(const char *dst, char **parent, char **base)
{
    size_t n = strlen(dst);
    while (n > 1 && dst[n - 1] == '/')
        n--;
    size_t cut = n;
    while (cut > 0 && dst[cut - 1] != '/')
        cut--;
    *base = mb_xstrndup(dst + cut, n - cut);
    *parent = cut == 0 ? mb_xstrdup(".") : cut == 1 ? mb_xstrdup("/")
                                                    : mb_xstrndup(dst, cut - 1);
}

/* Temporaries of earlier runs for BASE in PARENT, made on this host by a process that is
 * gone (killed by SIGKILL or a crash): removed. One with this process's id is such a
 * leftover too (the id was reused): this process has not made its own yet. The names
 * are listed first and removed after, not while the directory is being read. */
static void remove_stale(const char *parent, const char *base, const char *host)
{
    char *prefix = mb_xasprintf(".%s" TMP_TAG "%s.", base, host), **stale = NULL;
    DIR *dp = opendir(parent);
    struct dirent *e;
    size_t cap = 0;
    int n = 0;

    while (dp && (e = readdir(dp))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char *end;
        long pid = strtol(e->d_name + strlen(prefix), &end, 10);
        if (*end || pid <= 0 ||
            (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)))
            continue;
        MB_GROW(stale, cap, (size_t)n + 1);
        stale[n++] = mb_xasprintf("%s/%s", parent, e->d_name);
    }
    if (dp)
        closedir(dp);
    for (int i = 0; i < n; i++) {
        if (remove_tree(stale[i]) == 0)
            mb_log_info("%s: removed the temporary of an interrupted run", stale[i]);
        else
            mb_err_clear();
        free(stale[i]);
    }
    free(stale);
    free(prefix);
}

/* An existing DST is replaced only if it is empty or holds an HF model: never a
 * directory the user keeps other things in. */
static int replaceable(const char *dst)
{
    DIR *dp = opendir(dst);
    struct dirent *e;
    int empty = 1, model = 0;

    if (!dp)
        return mb_err_errno(dst, "cannot list the output directory");
    while ((e = readdir(dp))) {
        size_t n = strlen(e->d_name);
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        empty = 0;
        model |= strcmp(e->d_name, "config.json") == 0 ||
                 (n > 12 && strcmp(e->d_name + n - 12, ".safetensors") == 0);
    }
    closedir(dp);
    if (!empty && !model)
        return mb_err_set(MB_E_INVALID, dst, "exists and is not a HuggingFace model directory "
                          "(no config.json or *.safetensors): not replaced");
    return 0;
}

int cv_outdir_open(struct cv_outdir *od, const char *dst)
{
    char host[256] = "host";
    struct stat sb;
    char *parent, *base, *real = NULL;

    memset(od, 0, sizeof *od);
    /* a link to a directory stays a link: the directory it names is the one replaced */
    if (lstat(dst, &sb) == 0 && S_ISLNK(sb.st_mode) && (real = realpath(dst, NULL)))
        dst = real;
    split(dst, &parent, &base);
    if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || !*base) {
        int rc = mb_err_set(MB_E_USAGE, dst, "name the output directory itself, not . or ..");
        free(parent);
        free(base);
        free(real);
        return rc;
    }
    int rc = mb_fs_mkdirs(parent, "output directory's parent");
    if (rc == 0 && stat(dst, &sb) == 0) {
        od->existed = 1;
        rc = S_ISDIR(sb.st_mode) ? replaceable(dst)
                                 : mb_err_set(MB_E_INVALID, dst, "exists and is not a directory");
    }
    if (rc == 0) {
        if (gethostname(host, sizeof host - 1) != 0 || !host[0])
            strcpy(host, "host"); /* the name only has to be the same for every run here */
        for (char *c = host; *c; c++) /* a name part, whatever the host is called */
            if (*c == '/' || *c == '.')
                *c = '_';
        remove_stale(parent, base, host);
        od->dst = mb_xstrdup(dst);
        od->tmp = mb_xasprintf("%s/.%s" TMP_TAG "%s.%ld", parent, base, host, (long)getpid());
        od->parent = parent;
        parent = NULL;
        mb_fs_register_temp(od->tmp);
        if (mkdir(od->tmp, 0777) != 0) {
            rc = mb_err_errno(od->tmp, "cannot create the temporary output directory");
            mb_fs_forget_temp(od->tmp);
            cv_outdir_release(od);
        }
    }
    free(parent);
    free(base);
    free(real);
    return rc;
}

void cv_outdir_add(struct cv_outdir *od, const char *name)
{
    char *path = mb_xasprintf("%s/%s", od->tmp, name);
    mb_fs_register_temp(path);
    MB_GROW(od->files, od->cap, (size_t)od->n + 1);
    od->files[od->n++] = path;
}

static void forget_all(struct cv_outdir *od)
{
    for (int i = 0; i < od->n; i++)
        mb_fs_forget_temp(od->files[i]);
    mb_fs_forget_temp(od->tmp);
}

/* Put the complete temporary in DST's place. The old DST, if any, ends up at *OLD
 * (malloc'd): the temporary's own name after an exchange, else TMP.old. */
static int swap_in(struct cv_outdir *od, char **old)
{
    *old = NULL;
    if (!od->existed) {
        if (rename(od->tmp, od->dst) != 0)
            return mb_err_errno(od->dst, "cannot rename %s to it", od->tmp);
        return 0;
    }
    if (renameat2(AT_FDCWD, od->tmp, AT_FDCWD, od->dst, RENAME_EXCHANGE) == 0) {
        *old = mb_xstrdup(od->tmp);
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS)
        return mb_err_errno(od->dst, "cannot exchange it with %s", od->tmp);
    *old = mb_xasprintf("%s.old", od->tmp);
    if (rename(od->dst, *old) != 0)
        return mb_err_errno(od->dst, "cannot move the old export to %s", *old);
    if (rename(od->tmp, od->dst) != 0) {
        int rc = mb_err_errno(od->dst, "cannot rename %s to it", od->tmp);
        if (rename(*old, od->dst) != 0)
            mb_log_warn("%s: the old export is left at %s", od->dst, *old);
        free(*old);
        *old = NULL;
        return rc;
    }
    return 0;
}

void cv_hold_signals(sigset_t *saved)
{
    sigset_t block;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    sigprocmask(SIG_BLOCK, &block, saved);
    mb_tool_hold_signals();
}

void cv_release_signals(const sigset_t *saved)
{
    sigprocmask(SIG_SETMASK, saved, NULL); /* a signal blocked meanwhile is only noted */
    mb_tool_release_signals();
}

int cv_outdir_commit(struct cv_outdir *od)
{
    sigset_t saved;
    char *old = NULL;
    int fd = open(od->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : mb_err_errno(od->tmp, "cannot sync directory");

    if (fd >= 0)
        close(fd);
    /* from here until the old export is gone, a signal waits: the handlers must not
     * remove what becomes DST, nor stop between the exchange and the removal */
    cv_hold_signals(&saved);
    if (rc == 0)
        rc = swap_in(od, &old);
    if (rc != 0) {
        cv_release_signals(&saved);
        cv_outdir_abort(od);
        return -1;
    }
    forget_all(od);
    if (old && remove_tree(old) != 0)
        rc = -1;
    if (rc == 0)
        rc = mb_fs_sync_parent(od->dst);
    cv_release_signals(&saved);
    free(old);
    cv_outdir_release(od);
    return rc;
}

void cv_outdir_abort(struct cv_outdir *od)
{
    struct mb_err_record why;

    mb_err_save(&why); /* the error that made us abort, not one of the clean-up */
    if (od->tmp && remove_tree(od->tmp) != 0)
        mb_log_warn("%s: %s", mb_err_where(), mb_err_what());
    if (od->tmp)
        forget_all(od);
    mb_err_restore(&why);
    cv_outdir_release(od);
}

void cv_outdir_release(struct cv_outdir *od)
{
    for (int i = 0; i < od->n; i++)
        free(od->files[i]);
    free(od->files);
    free(od->dst);
    free(od->tmp);
    free(od->parent);
    memset(od, 0, sizeof *od);
}
