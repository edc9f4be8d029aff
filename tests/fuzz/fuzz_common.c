/* tests/fuzz/fuzz_common.c - scratch files for the fuzz targets. */
#include "tests/fuzz/fuzz_common.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static char dir[PATH_MAX];
static char path[PATH_MAX];

static int remove_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void remove_dir(void)
{
    if (dir[0])
        nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_dir(void)
{
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/mb-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror(dir);
            abort();
        }
        atexit(remove_dir);
        mb_log_set_tool("fuzz");
    }
    return dir;
}

const char *fuzz_file(const char *name, const void *data, size_t len)
{
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) || close(fd) != 0) {
        perror(path);
        abort();
    }
    return path;
}

void fuzz_quiet_stdout(void)
{
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        close(fd);
    }
}

void fuzz_check_at(int cond, const char *msg, const char *file, int line)
{
    if (cond)
        return;
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, msg);
    abort();
}
