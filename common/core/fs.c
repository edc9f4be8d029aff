/* core/fs.c - atomic output files, temp registry, mapping. */
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"

/* A fixed table, so the signal handler can walk it without taking a lock. */
#define MAX_TEMPS 256
static char *temps[MAX_TEMPS];
static pthread_mutex_t temps_lock = PTHREAD_MUTEX_INITIALIZER;

void mb_fs_register_temp(const char *path)
{
    pthread_mutex_lock(&temps_lock);
    for (int i = 0; i < MAX_TEMPS; i++) {
        if (!temps[i]) {
            temps[i] = mb_xstrdup(path);
            break;
        }
    }
    pthread_mutex_unlock(&temps_lock);
}

void mb_fs_forget_temp(const char *path)
{
    pthread_mutex_lock(&temps_lock);
    for (int i = 0; i < MAX_TEMPS; i++) {
        if (temps[i] && strcmp(temps[i], path) == 0) {
            char *p = temps[i];
            temps[i] = NULL;
            free(p);
            break;
        }
    }
    pthread_mutex_unlock(&temps_lock);
}

/* Files first, then directories (a temporary directory is registered with its files, in
 * any slot order): rmdir of a file or of a path already gone fails harmlessly. */
void mb_fs_remove_temps(void)
{
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temps[i])
            unlink(temps[i]);
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temps[i])
            rmdir(temps[i]);
}

int mb_fs_create_temp(const char *tmp, mode_t mode)
{
    /* registered before it exists: a fatal signal as open(2) returns still removes it */
    mb_fs_register_temp(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        int saved = errno;
        mb_fs_forget_temp(tmp);
        errno = saved;
    }
    return fd;
}

int mb_outfile_open(struct mb_outfile *of, const char *path)
{
    char suffix[48];

    snprintf(suffix, sizeof suffix, ".tmp.%ld", (long)getpid());
    of->path = mb_xstrdup(path);
    of->tmp = mb_xmalloc(strlen(path) + strlen(suffix) + 1);
    strcpy(of->tmp, path);
    strcat(of->tmp, suffix);
    int fd = mb_fs_create_temp(of->tmp, 0644);
    if (fd < 0) {
        mb_err_errno(path, "cannot create output file");
        free(of->path);
        free(of->tmp);
        of->path = of->tmp = NULL;
        return -1;
    }
    of->fp = fdopen(fd, "wb");
    setvbuf(of->fp, NULL, _IOFBF, 1 << 20);
    return 0;
}

void mb_outfile_write(struct mb_outfile *of, const void *data, size_t len)
{
    if (len)
        fwrite(data, 1, len, of->fp);
}

static void outfile_release(struct mb_outfile *of)
{
    free(of->path);
    free(of->tmp);
    of->path = of->tmp = NULL;
    of->fp = NULL;
}

int mb_outfile_commit(struct mb_outfile *of)
{
    int rc = 0;

    if (fflush(of->fp) != 0 || ferror(of->fp))
        rc = mb_err_errno(of->path, "cannot write");
    else if (fsync(fileno(of->fp)) != 0)
        rc = mb_err_errno(of->path, "cannot fsync");
    if (fclose(of->fp) != 0 && rc == 0)
        rc = mb_err_errno(of->path, "cannot close");
    of->fp = NULL;
    if (rc == 0 && rename(of->tmp, of->path) != 0)
        rc = mb_err_errno(of->path, "cannot rename temporary into place");
    if (rc != 0)
        unlink(of->tmp);
    mb_fs_forget_temp(of->tmp);
    if (rc == 0 && mb_fs_sync_parent(of->path) != 0)
        rc = -1;
    outfile_release(of);
    return rc;
}

void mb_outfile_abort(struct mb_outfile *of)
{
    if (!of->tmp)
        return;
    if (of->fp)
        fclose(of->fp);
    unlink(of->tmp);
    mb_fs_forget_temp(of->tmp);
    outfile_release(of);
}

int mb_fs_sync_parent(const char *path)
{
    char *copy = mb_xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0 || fsync(fd) != 0)
        rc = mb_err_errno(path, "cannot sync directory");
    if (fd >= 0)
        close(fd);
    free(copy);
    return rc;
}

int mb_fs_map(const char *path, const void **data, size_t *size)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return mb_err_errno(path, "cannot open");
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return mb_err_errno(path, "cannot stat");
    }
    *size = (size_t)sb.st_size;
    *data = NULL;
    if (*size > 0) {
        void *p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return mb_err_errno(path, "cannot map %zu bytes", *size);
        }
        *data = p;
    }
    close(fd);
    return 0;
}

void mb_fs_unmap(const void *data, size_t size)
{
    if (data)
        munmap((void *)data, size);
}

size_t mb_fs_read_limit(void)
{
    const char *env = getenv("MB_MAX_FILE_BYTES");
    char *end;

    if (env && *env) {
        errno = 0;
        unsigned long long v = strtoull(env, &end, 10);
        if (errno == 0 && *end == '\0' && v > 0 && env[0] != '-')
            return v > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)v;
    }
    return MB_FS_READ_LIMIT_DEFAULT;
}

static int too_large(const char *path, size_t limit)
{
    return mb_err_set(MB_E_INVALID, path,
                      "larger than the limit of %zu bytes for a file read whole (a file this "
                      "size is not what mb expects here; MB_MAX_FILE_BYTES raises the limit)",
                      limit);
}

int mb_fs_read_all(const char *path, char **data, size_t *size)
{
    size_t limit = mb_fs_read_limit();
    struct stat sb;
    FILE *fp = fopen(path, "rb");

    if (!fp)
        return mb_err_errno(path, "cannot open");
    /* a regular file says its size up front; a device or pipe is read up to the limit */
    if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) && (uintmax_t)sb.st_size > limit) {
        fclose(fp);
        return too_large(path, limit);
    }
    char what[600];
    snprintf(what, sizeof what, "the contents of %s", path);
    size_t cap = 1 << 16, len = 0;
    char *buf = mb_xmalloc_for(cap, what);
    size_t n;
    while (len <= limit && (n = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap = cap > limit ? cap + (1 << 16) : cap * 2;
            buf = mb_xrealloc_for(buf, cap, what);
        }
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad || len > limit) {
        free(buf);
        return bad ? mb_err_errno(path, "cannot read") : too_large(path, limit);
    }
    buf[len] = '\0';
    *data = buf;
    *size = len;
    return 0;
}

int mb_fs_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

int mb_fs_mkdirs(const char *dir, const char *what)
{
    char *p = mb_xstrdup(dir);
    int rc = 0;

    for (char *s = p + 1; rc == 0; s++) {
        int last = *s == '\0';
        if (*s != '/' && !last)
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = mb_err_errno(p, "cannot create %s", what);
        if (last)
            break;
        *s = '/';
    }
    struct stat st;
    if (rc == 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = mb_err_set(MB_E_IO, dir, "not a directory");
    free(p);
    return rc;
}
