/* ckpt/writer.c - write a checkpoint one dataset at a time (mb-convert, mb-ckpt).
 *
 * The same commit protocol as save.c: the file is written as FILE.tmp, every rank runs
 * the same collective HDF5 calls and the ranks agree on success after each one, then
 * rank 0 syncs, renames and, when asked, replaces DIR/latest. Datasets stay open from
 * their creation to the commit, so rows can be written in any number of calls. After a
 * failure the file is closed by ckpt_wfile_close (wfile.c), which HDF5 survives.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/internal.h"
#include "core/fs.h"
#include "core/mem.h"
#include "core/cli.h"

struct dataset {
    char *path;
    hid_t id;
    enum mb_ckpt_dtype dtype;
    int ndim;
    hsize_t dims[MB_CKPT_MAX_DIM];
};

struct mb_ckpt_writer {
    struct mb_dist single; /* used when the caller passed no world */
    const struct mb_dist *d;
    char *file, *tmp;
    struct ckpt_wfile f;
    hid_t dxpl, lcpl, bf16; /* bf16: the committed /bf16 type */
    struct dataset *sets;
    int n;
    size_t cap;
};

/* All ranks learn whether every rank succeeded (see save.c). */
static int agree(const mb_ckpt_writer *w, int rc, const char *step)
{
    if (mb_dist_all_ok(w->d, rc == 0))
        return 0;
    if (rc == 0)
        mb_err_set(MB_E_IO, w->tmp, "another rank failed while %s", step);
    return -1;
}

static int commit_types(mb_ckpt_writer *w)
{
    w->bf16 = ckpt_h5_bf16_type();
    if (H5Tcommit2(w->f.h5, "/bf16", w->bf16, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) < 0)
        return ckpt_h5_err(MB_E_IO, w->tmp, "cannot store the bf16 type");
    return 0;
}

/* Reserve room for it, agree, write it; agree again. */
static int write_attr(mb_ckpt_writer *w, const char *name, const char *value)
{
    int rc = ckpt_wfile_need(&w->f, (int64_t)strlen(value ? value : "") + 1024);

    if (agree(w, rc, name) != 0)
        return -1;
    return agree(w, ckpt_h5_write_attr(w->f.h5, w->tmp, name, value), name);
}

static void free_writer(mb_ckpt_writer *w)
{
    for (int i = 0; i < w->n; i++)
        free(w->sets[i].path);
    free(w->sets);
    free(w->file);
    free(w->tmp);
    free(w);
}

mb_ckpt_writer *mb_ckpt_writer_open(const struct mb_dist *d, const char *file)
{
    mb_ckpt_writer *w = mb_xcalloc(1, sizeof *w);

    ckpt_h5_quiet();
    w->single = (struct mb_dist){ 0, 1, 0 };
    w->d = d ? d : &w->single;
    w->file = mb_xstrdup(file);
    w->tmp = mb_xmalloc(strlen(file) + 5);
    sprintf(w->tmp, "%s.tmp", file);
    w->dxpl = w->lcpl = w->bf16 = -1;
    mb_fs_register_temp(w->tmp);
    int rc = ckpt_wfile_create(&w->f, d, w->tmp);
    if (agree(w, rc, "creating the checkpoint file") != 0) {
        mb_ckpt_writer_abort(w);
        return NULL;
    }
    w->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (ckpt_mpi(d))
        H5Pset_dxpl_mpio(w->dxpl, H5FD_MPIO_COLLECTIVE);
    w->lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(w->lcpl, 1);
    rc = commit_types(w);
    if (agree(w, rc, "storing the bf16 type") != 0 ||
        write_attr(w, "format", MB_CKPT_FORMAT) != 0 ||
        write_attr(w, "mb_version", mb_version()) != 0) {
        mb_ckpt_writer_abort(w);
        return NULL;
    }
    return w;
}

static struct dataset *find_set(const mb_ckpt_writer *w, const char *path)
{
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->sets[i].path, path) == 0)
            return &w->sets[i];
    return NULL;
}

/* The stored type of T; only fp16's is transient (close it). */
static hid_t file_type(const mb_ckpt_writer *w, enum mb_ckpt_dtype t)
{
    switch (t) {
    case MB_CKPT_F32: return H5T_IEEE_F32LE;
    case MB_CKPT_BF16: return w->bf16; /* datasets name the committed type, as save.c's */
    case MB_CKPT_I64: return H5T_STD_I64LE;
    case MB_CKPT_U8: return H5T_STD_U8LE;
    default: return ckpt_h5_f16_type();
    }
}

static int check_create(const mb_ckpt_writer *w, const char *path, enum mb_ckpt_dtype dtype,
                        int ndim, const int64_t *shape)
{
    if (dtype == MB_CKPT_OTHER || mb_ckpt_dtype_size(dtype) == 0)
        return mb_err_set(MB_E_INVALID, w->tmp, "dataset '%s': unknown element type", path);
    if (ndim < 0 || ndim > MB_CKPT_MAX_DIM)
        return mb_err_set(MB_E_INVALID, w->tmp, "dataset '%s': %d dimensions (0 to %d)", path,
                          ndim, MB_CKPT_MAX_DIM);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return mb_err_set(MB_E_INVALID, w->tmp, "dataset '%s': negative dimension", path);
    if (!path || path[0] != '/' || find_set(w, path))
        return mb_err_set(MB_E_INVALID, w->tmp, "dataset '%s': bad or repeated path",
                          path ? path : "(null)");
    return 0;
}

static int create_set(mb_ckpt_writer *w, const char *path, enum mb_ckpt_dtype dtype, int ndim,
                      const int64_t *shape)
{
    struct dataset s = { .dtype = dtype, .ndim = ndim };

    for (int i = 0; i < ndim; i++)
        s.dims[i] = (hsize_t)shape[i];
    hid_t space = ndim ? H5Screate_simple(ndim, s.dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ftype = file_type(w, dtype);
    s.id = H5Dcreate2(w->f.h5, path, ftype, space, w->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = s.id < 0 ? ckpt_h5_err(MB_E_IO, w->tmp, "cannot create dataset '%s'", path) : 0;
    if (dtype == MB_CKPT_F16)
        H5Tclose(ftype);
    H5Sclose(space);
    if (rc == 0) {
        s.path = mb_xstrdup(path);
        MB_GROW(w->sets, w->cap, (size_t)w->n + 1);
        w->sets[w->n++] = s;
    }
    return rc;
}

int mb_ckpt_writer_create(mb_ckpt_writer *w, const char *path, enum mb_ckpt_dtype dtype,
                          int ndim, const int64_t *shape)
{
    int rc = check_create(w, path, dtype, ndim, shape);

    if (rc == 0) { /* its data and its metadata */
        int64_t bytes = (int64_t)mb_ckpt_dtype_size(dtype);
        for (int i = 0; i < ndim; i++)
            bytes *= shape[i];
        rc = ckpt_wfile_need(&w->f, 4096 + bytes);
    }
    /* creation is collective: every rank must know the room is there */
    if (agree(w, rc, path) != 0)
        return -1;
    return agree(w, create_set(w, path, dtype, ndim, shape), path);
}

/* This rank's part of the write: rows [ROW0, ROW0 + NROWS) of S, selected in FSPACE,
 * with a matching memory space returned (none selected when there is nothing). */
static hid_t select_part(const mb_ckpt_writer *w, const struct dataset *s, hid_t fspace,
                         int64_t row0, int64_t nrows)
{
    hsize_t row = 1, start[MB_CKPT_MAX_DIM] = { 0 }, count[MB_CKPT_MAX_DIM];

    for (int i = 1; i < s->ndim; i++)
        row *= s->dims[i];
    if (s->ndim == 0) /* a scalar: rank 0's value */
        nrows = nrows > 0 && w->d->rank == 0;
    hsize_t n = (hsize_t)nrows * row;
    hid_t mspace = H5Screate_simple(1, (hsize_t[]){ n ? n : 1 }, NULL);
    if (n == 0) {
        H5Sselect_none(mspace);
        H5Sselect_none(fspace);
    } else if (s->ndim > 0) {
        memcpy(count, s->dims, (size_t)s->ndim * sizeof *count);
        start[0] = (hsize_t)row0;
        count[0] = (hsize_t)nrows;
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
    }
    return mspace;
}

static int write_part(mb_ckpt_writer *w, const struct dataset *s, int64_t row0, int64_t nrows,
                      const void *data)
{
    hid_t fspace = H5Dget_space(s->id);
    hid_t mspace = select_part(w, s, fspace, row0, nrows);
    hid_t mtype = ckpt_h5_mem_type(s->dtype);
    static const char none; /* HDF5 wants a buffer even when nothing is selected */
    int rc = 0;

    if (H5Sget_simple_extent_npoints(fspace) > 0 &&
        H5Dwrite(s->id, mtype, mspace, fspace, w->dxpl, nrows > 0 ? data : &none) < 0)
        rc = ckpt_h5_err(MB_E_IO, w->tmp, "cannot write dataset '%s'", s->path);
    ckpt_h5_type_close(s->dtype, mtype);
    H5Sclose(mspace);
    H5Sclose(fspace);
    return rc;
}

int mb_ckpt_writer_write_rows(mb_ckpt_writer *w, const char *path, int64_t row0, int64_t nrows,
                              const void *data)
{
    const struct dataset *s = find_set(w, path);
    int rc = 0;

    if (!s) {
        rc = mb_err_set(MB_E_INVALID, w->tmp, "no dataset '%s' was created", path);
    } else {
        int64_t rows = s->ndim ? (int64_t)s->dims[0] : 1;
        if (row0 < 0 || nrows < 0 || row0 + nrows > rows || (nrows > 0 && !data))
            rc = mb_err_set(MB_E_INVALID, w->tmp, "dataset '%s': rows [%lld, %lld) outside "
                            "[0, %lld)", path, (long long)row0, (long long)(row0 + nrows),
                            (long long)rows);
    }
    /* every rank must reach the collective write, so agree on the arguments first */
    if (agree(w, rc, path) != 0)
        return -1;
    return agree(w, write_part(w, s, row0, nrows, data), path);
}

int mb_ckpt_writer_attr(mb_ckpt_writer *w, const char *name, const char *value)
{
    return write_attr(w, name, value);
}

/* Close every HDF5 object and the file: flushed when COMMIT (-1 with mb_err if a
 * dataset's or the file's last writes failed), else as a failed file. Collective. */
static int close_file(mb_ckpt_writer *w, int commit)
{
    int rc = 0;

    for (int i = 0; commit && i < w->n; i++) /* a close may write buffered data */
        if (H5Dclose(w->sets[i].id) < 0 && rc == 0)
            rc = ckpt_h5_err(MB_E_IO, w->tmp, "cannot write dataset '%s'", w->sets[i].path);
    rc = commit ? agree(w, rc, "writing the datasets") : -1;
    if (w->dxpl >= 0)
        H5Pclose(w->dxpl);
    if (w->lcpl >= 0)
        H5Pclose(w->lcpl);
    w->dxpl = w->lcpl = w->bf16 = -1; /* the committed type goes with the file's objects */
    int closed = ckpt_wfile_close(&w->f, rc != 0);
    return commit && rc == 0 ? closed : -1;
}

int mb_ckpt_writer_commit(mb_ckpt_writer *w, const char *latest_dir)
{
    int rc = agree(w, close_file(w, 1), "writing the checkpoint file");

    if (rc == 0 && w->d->rank == 0)
        rc = ckpt_publish(w->tmp, w->file, latest_dir);
    rc = agree(w, rc, "committing the checkpoint");
    if (rc != 0 && w->d->rank == 0)
        unlink(w->tmp);
    mb_fs_forget_temp(w->tmp);
    free_writer(w);
    return rc;
}

void mb_ckpt_writer_abort(mb_ckpt_writer *w)
{
    if (!w)
        return;
    close_file(w, 0);
    mb_dist_barrier(w->d);
    if (w->d->rank == 0)
        unlink(w->tmp);
    mb_fs_forget_temp(w->tmp);
    free_writer(w);
}
