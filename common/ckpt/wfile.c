/* ckpt/wfile.c - the HDF5 file of a checkpoint being written: room reserved before
 * HDF5 writes, and a close that never leaves HDF5 anything to write that can fail.
 *
 * HDF5 1.10 cannot take back a file whose closing flush fails (a full disk, a quota, a
 * file-size limit): H5Fclose returns an error with the id half destroyed, and the
 * library crashes in its exit handler when it tries again. Under MPI a write that fails
 * on one rank leaves the ranks in different collective calls, and they hang. So:
 *  - rank 0 reserves the blocks of the file before HDF5 writes into them
 *    (ckpt_wfile_need: fallocate with FALLOC_FL_KEEP_SIZE, so the size HDF5 sees is
 *    unchanged), and a full disk or a file-size limit is an error before any write;
 *    blocks reserved and not used are given back when the file is closed;
 *  - a file is closed only after every object of it is closed, and a failed one (or
 *    one whose flush failed) without MPI only after the sec2 driver's descriptor is
 *    pointed at an anonymous in-memory file, so what HDF5 still writes cannot fail
 *    (on file systems without fallocate, where nothing could be reserved; under MPI
 *    such a file system can still see a rank hang on a full disk).
 * The caller removes the temporary after a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/internal.h"
#include "core/mem.h"

int ckpt_wfile_create(struct ckpt_wfile *f, const struct mb_dist *d, const char *tmp)
{
    static const struct mb_dist single = { 0, 1, 0 };
    hid_t fapl = ckpt_h5_fapl(d);

    f->d = d ? d : &single;
    f->tmp = tmp;
    f->reserved = 0;
    /* the newest format: checksums on every piece of metadata */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    f->h5 = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    int rc = f->h5 < 0 ? ckpt_h5_err(MB_E_IO, tmp, "cannot create checkpoint file") : 0;
    H5Pclose(fapl);
    return rc ? rc : ckpt_wfile_need(f, 64 << 10); /* superblock, root group, attributes */
}

/* The file-size limit of the process (ulimit -f), or -1 for none. */
static int64_t size_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return -1;
    return (int64_t)rl.rlim_cur;
}

int ckpt_wfile_need(struct ckpt_wfile *f, int64_t bytes)
{
    if (f->d->rank != 0)
        return 0;
    f->reserved += bytes;
    int64_t limit = size_limit();
    int fd = open(f->tmp, O_WRONLY | O_CLOEXEC);
    int err = fd < 0 ? errno : limit >= 0 && f->reserved > limit ? EFBIG : 0;

    /* only a lack of room is an error: a file system that cannot reserve (EOPNOTSUPP,
     * or EINVAL for the mode) is written without */
    if (err == 0 && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)f->reserved) != 0 &&
        (errno == ENOSPC || errno == EDQUOT || errno == EFBIG))
        err = errno;
    if (fd >= 0)
        close(fd);
    if (err != 0) {
        errno = err;
        return mb_err_errno(f->tmp, "no room for a checkpoint of about %lld bytes",
                            (long long)f->reserved);
    }
    return 0;
}

/* Close every dataset, group, committed datatype and attribute still open in FILE. */
static void close_objects(hid_t file)
{
    unsigned kinds = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR;
    ssize_t n = H5Fget_obj_count(file, kinds);

    if (n <= 0)
        return;
    hid_t *ids = mb_xcalloc((size_t)n, sizeof *ids);
    n = H5Fget_obj_ids(file, kinds, (size_t)n, ids);
    for (ssize_t i = 0; i < n; i++) {
        if (H5Iget_type(ids[i]) == H5I_ATTR)
            H5Aclose(ids[i]);
        else
            H5Oclose(ids[i]);
    }
    free(ids);
    H5Eclear2(H5E_DEFAULT);
}

/* Without MPI: point the sec2 descriptor of FILE at an anonymous in-memory file, so
 * that what HDF5 still writes before the close (and the truncation) succeeds. */
static void discard_writes(hid_t file)
{
    hid_t fapl = H5Fget_access_plist(file);
    void *handle = NULL;

    if (fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2 &&
        H5Fget_vfd_handle(file, fapl, &handle) >= 0 && handle) {
        int sink = memfd_create("mb-ckpt-discard", MFD_CLOEXEC);
        if (sink >= 0) {
            dup2(sink, *(int *)handle);
            close(sink);
        }
    }
    if (fapl >= 0)
        H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
}

/* Rank 0, once every rank has closed the file: give back the blocks reserved past its
 * end (truncating a file to its own size drops them). */
static void trim(const struct ckpt_wfile *f)
{
    struct stat sb;

    mb_dist_barrier(f->d);
    if (f->d->rank == 0 && f->reserved > 0 && stat(f->tmp, &sb) == 0)
        (void)!truncate(f->tmp, sb.st_size);
}

int ckpt_wfile_close(struct ckpt_wfile *f, int failed)
{
    int rc = 0;

    if (f->h5 < 0)
        return 0;
    close_objects(f->h5);
    /* under MPI a failed file is flushed too: H5Fclose alone can leave the ranks in
     * different collective calls */
    if ((!failed || ckpt_mpi(f->d)) && H5Fflush(f->h5, H5F_SCOPE_GLOBAL) < 0 && !failed)
        rc = ckpt_h5_err(MB_E_IO, f->tmp, "cannot write checkpoint file");
    if ((failed || rc != 0) && !ckpt_mpi(f->d))
        discard_writes(f->h5);
    if (H5Fclose(f->h5) < 0 && rc == 0)
        rc = ckpt_h5_err(MB_E_IO, f->tmp, "cannot close checkpoint file");
    f->h5 = -1;
    trim(f);
    return rc;
}
