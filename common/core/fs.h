/* core/fs.h - atomic output files and whole-file read-only maps.
 *
 * An mb_outfile is written under "PATH.tmp.PID" in the same directory and renamed over
 * PATH only by mb_outfile_commit() after fflush and fsync, so a reader never sees a
 * half-written file. Every live temporary is registered process-wide: a fatal signal
 * or mb_fs_remove_temps() deletes them, so a killed run leaves nothing that looks done.
 */
#ifndef MB_CORE_FS_H
#define MB_CORE_FS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "core/defs.h"

struct mb_outfile {
    char *path; /* final name */
    char *tmp;  /* temporary name in the same directory */
    FILE *fp;
};
#define MB_OUTFILE_INIT { 0 }

/* Create the temporary for PATH. Returns 0, or -1 with mb_err set. */
MB_MUST_CHECK int mb_outfile_open(struct mb_outfile *of, const char *path);
/* Append LEN bytes; errors are reported at commit. */
void mb_outfile_write(struct mb_outfile *of, const void *data, size_t len);
/* fflush, fsync, fclose, rename over PATH, fsync the directory. On failure the
 * temporary is removed and mb_err names the step. */
MB_MUST_CHECK int mb_outfile_commit(struct mb_outfile *of);
/* Close and remove the temporary. No-op after commit; accepts a zeroed struct. */
void mb_outfile_abort(struct mb_outfile *of);

/* Delete every registered temporary (async-signal-safe): files, then directories, which
 * are removed once the files registered in them are gone. */
void mb_fs_remove_temps(void);
/* Register or forget a temporary made elsewhere (e.g. per-rank part files). */
void mb_fs_register_temp(const char *path);
void mb_fs_forget_temp(const char *path);
/* Create the file TMP (write-only, truncated) as a registered temporary: registered
 * before open(2), forgotten again if open fails. Returns the fd, or -1 with errno set. */
int mb_fs_create_temp(const char *tmp, mode_t mode);

/* Map all of PATH read-only. Returns 0 with *DATA (NULL for an empty file) and *SIZE,
 * or -1 with mb_err set. */
MB_MUST_CHECK int mb_fs_map(const char *path, const void **data, size_t *size);
void mb_fs_unmap(const void *data, size_t size);

/* Read all of PATH into a NUL-terminated heap buffer. A file larger than
 * mb_fs_read_limit() bytes (a device like /dev/zero never ends) is an error naming the
 * file and the limit, found before the memory is spent. */
MB_MUST_CHECK int mb_fs_read_all(const char *path, char **data, size_t *size);

/* The most bytes mb_fs_read_all reads (tokenizer.json, config.json, `latest` ...):
 * $MB_MAX_FILE_BYTES if set to a positive integer, else MB_FS_READ_LIMIT_DEFAULT. */
#define MB_FS_READ_LIMIT_DEFAULT ((size_t)128 << 20)
size_t mb_fs_read_limit(void);

/* 1 if PATH exists. */
int mb_fs_exists(const char *path);

/* mkdir -p: create DIR and any missing parents. On failure mb_err reads
 * "PATH: cannot create WHAT: strerror" (WHAT e.g. "checkpoint directory"). */
MB_MUST_CHECK int mb_fs_mkdirs(const char *dir, const char *what);

/* fsync the directory holding PATH. */
MB_MUST_CHECK int mb_fs_sync_parent(const char *path);

#endif /* MB_CORE_FS_H */
