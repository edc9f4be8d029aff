/* ckpt/reader.c - open a checkpoint, list its datasets, read tensors, scalars, blobs
 * and attributes, without knowing the model. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckpt/internal.h"
#include "core/fs.h"
#include "core/mem.h"

/* A string attribute longer than this is damage: the longest ckpt/ writes are configs
 * and weight maps of a few hundred KiB. */
#define MAX_ATTR_BYTES (64 << 20)

struct mb_ckpt_reader {
    char *file;
    hid_t h5;
    struct mb_ckpt_info *items; /* sorted by path */
    int n;
    size_t cap;
    int visit_err; /* the visit callback set mb_err */
    const unsigned char *map; /* the whole file, read-only, once mb_ckpt_reader_map_rows asks */
    size_t map_size;
    int gheap_ok; /* ckpt_gheap_check passed: variable-length strings can be read */
    int mpi;      /* opened with MPI-IO: collective reads are possible */
};

static int add_item(mb_ckpt_reader *r, const char *name, hid_t dset)
{
    hid_t type = H5Dget_type(dset), space = H5Dget_space(dset);
    int ndim = H5Sget_simple_extent_ndims(space);
    hsize_t dims[H5S_MAX_RANK];
    int rc = 0;

    if (type < 0 || ndim < 0 || ndim > MB_CKPT_MAX_DIM) {
        rc = ckpt_h5_err(MB_E_UNSUPPORTED, r->file, "dataset '/%s': unreadable or more than %d "
                         "dimensions", name, MB_CKPT_MAX_DIM);
        goto out;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    /* a damaged file can claim any extent: the byte count (8-byte elements at most) must
     * fit int64 */
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] > (hsize_t)INT64_MAX / 8 ||
            (dims[i] && numel > INT64_MAX / 8 / (int64_t)dims[i])) {
            rc = ckpt_h5_err(MB_E_INVALID, r->file, "dataset '/%s': extent too large", name);
            goto out;
        }
        numel *= (int64_t)dims[i];
    }
    MB_GROW(r->items, r->cap, (size_t)r->n + 1);
    struct mb_ckpt_info *it = &r->items[r->n++];
    memset(it, 0, sizeof *it);
    char *path = mb_xmalloc(strlen(name) + 2);
    path[0] = '/';
    strcpy(path + 1, name);
    it->path = path;
    it->dtype = ckpt_h5_classify(type);
    it->ndim = ndim;
    it->numel = numel;
    for (int i = 0; i < ndim; i++)
        it->shape[i] = (int64_t)dims[i];
out:
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

static herr_t visit(hid_t obj, const char *name, const H5O_info_t *info, void *arg)
{
    mb_ckpt_reader *r = arg;

    if (info->type != H5O_TYPE_DATASET)
        return 0;
    hid_t dset = H5Oopen(obj, name, H5P_DEFAULT);
    if (dset < 0) {
        r->visit_err = 1;
        return ckpt_h5_err(MB_E_PARSE, r->file, "cannot open dataset '/%s'", name);
    }
    int rc = add_item(r, name, dset);
    H5Oclose(dset);
    r->visit_err = rc != 0;
    return rc;
}

static int cmp_info(const void *a, const void *b)
{
    return strcmp(((const struct mb_ckpt_info *)a)->path, ((const struct mb_ckpt_info *)b)->path);
}

/* Refuse HDF5 files that are not mb checkpoints, by their `format` attribute. */
static int check_format(mb_ckpt_reader *r)
{
    char *format;

    if (H5Aexists(r->h5, "format") <= 0)
        return mb_err_set(MB_E_PARSE, r->file, "not an mb checkpoint (no 'format' attribute)");
    if (mb_ckpt_reader_attr(r, "format", &format) != 0)
        return -1;
    int rc = 0;
    if (strcmp(format, MB_CKPT_FORMAT) != 0)
        rc = mb_err_set(MB_E_UNSUPPORTED, r->file, "checkpoint format '%s' (expected '%s')",
                        format, MB_CKPT_FORMAT);
    free(format);
    return rc;
}

mb_ckpt_reader *mb_ckpt_reader_open(const struct mb_dist *d, const char *file)
{
    mb_ckpt_reader *r = mb_xcalloc(1, sizeof *r);
    hid_t fapl = ckpt_h5_fapl(d);

    ckpt_h5_quiet();
    r->file = mb_xstrdup(file);
    r->mpi = ckpt_mpi(d);
    r->h5 = H5Fopen(file, H5F_ACC_RDONLY, fapl);
    if (r->h5 < 0) /* take HDF5's reason before the next call clears it */
        ckpt_h5_err(MB_E_PARSE, file, "cannot open checkpoint (missing, truncated or damaged)");
    H5Pclose(fapl);
    if (r->h5 < 0) {
        if (access(file, R_OK) == 0 && H5Fis_hdf5(file) <= 0)
            mb_err_set(MB_E_PARSE, file, "not an HDF5 file");
        goto fail;
    }
    if (check_format(r) != 0)
        goto fail;
    if (H5Ovisit2(r->h5, H5_INDEX_NAME, H5_ITER_INC, visit, r, H5O_INFO_BASIC) < 0) {
        if (!r->visit_err)
            ckpt_h5_err(MB_E_PARSE, file, "cannot list the checkpoint's datasets");
        goto fail;
    }
    qsort(r->items, (size_t)r->n, sizeof *r->items, cmp_info);
    return r;
fail:
    mb_ckpt_reader_close(r);
    return NULL;
}

void mb_ckpt_reader_close(mb_ckpt_reader *r)
{
    if (!r)
        return;
    if (r->h5 > 0)
        H5Fclose(r->h5);
    if (r->map)
        mb_fs_unmap(r->map, r->map_size);
    for (int i = 0; i < r->n; i++)
        free((char *)r->items[i].path);
    free(r->items);
    free(r->file);
    free(r);
}

int mb_ckpt_reader_count(const mb_ckpt_reader *r)
{
    return r->n;
}

const struct mb_ckpt_info *mb_ckpt_reader_info(const mb_ckpt_reader *r, int i)
{
    return &r->items[i];
}

const struct mb_ckpt_info *mb_ckpt_reader_find(const mb_ckpt_reader *r, const char *path)
{
    struct mb_ckpt_info key = { .path = path };

    return bsearch(&key, r->items, (size_t)r->n, sizeof *r->items, cmp_info);
}

/* Find PATH and check that it holds one of the dtypes in the mask WANT. */
static const struct mb_ckpt_info *lookup(const mb_ckpt_reader *r, const char *path,
                                         unsigned want, const char *what)
{
    const struct mb_ckpt_info *it = mb_ckpt_reader_find(r, path);

    if (!it) {
        mb_err_set(MB_E_INVALID, r->file, "no dataset '%s'", path);
        return NULL;
    }
    if (!(want & (1u << it->dtype))) {
        mb_err_set(MB_E_UNSUPPORTED, r->file, "dataset '%s' is %s, expected %s", path,
                   mb_ckpt_dtype_name(it->dtype), what);
        return NULL;
    }
    return it;
}

/* Read all of dataset PATH as MTYPE into BUF. */
static int read_raw(mb_ckpt_reader *r, const char *path, hid_t mtype, void *buf)
{
    hid_t dset = H5Dopen2(r->h5, path, H5P_DEFAULT);
    int rc = 0;

    if (dset < 0)
        return ckpt_h5_err(MB_E_PARSE, r->file, "cannot open dataset '%s'", path);
    if (H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = ckpt_h5_err(MB_E_PARSE, r->file, "cannot read dataset '%s'", path);
    H5Dclose(dset);
    return rc;
}

int mb_ckpt_reader_read_f32(mb_ckpt_reader *r, const char *path, float *out, int64_t count)
{
    const struct mb_ckpt_info *it = lookup(
        r, path, 1u << MB_CKPT_F32 | 1u << MB_CKPT_BF16 | 1u << MB_CKPT_F16,
        "fp32 or bf16 or fp16");

    if (!it)
        return -1;
    if (it->numel != count)
        return mb_err_set(MB_E_INVALID, r->file, "dataset '%s' has %lld elements, expected %lld",
                          path, (long long)it->numel, (long long)count);
    if (count == 0)
        return 0;
    if (it->dtype == MB_CKPT_F32)
        return read_raw(r, path, H5T_NATIVE_FLOAT, out);
    /* 16-bit: read the bits in place (first half of OUT), then widen from the end */
    uint16_t *half = (uint16_t *)out;
    hid_t mtype = ckpt_h5_mem_type(it->dtype);
    int rc = read_raw(r, path, mtype, half);
    ckpt_h5_type_close(it->dtype, mtype);
    int f16 = it->dtype == MB_CKPT_F16;
    for (int64_t i = count - 1; rc == 0 && i >= 0; i--)
        out[i] = f16 ? mb_ckpt_f32_from_f16(half[i]) : mb_ckpt_f32_from_bf16(half[i]);
    return rc;
}

/* Read the selection of FSPACE of DSET as MTYPE into a run of N elements at BUF. */
static int read_selection(mb_ckpt_reader *r, hid_t dset, hid_t fspace, hid_t mtype, int64_t n,
                          void *buf, int collective)
{
    hid_t mspace = H5Screate_simple(1, (hsize_t[]){ n ? (hsize_t)n : 1 }, NULL);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    static float none; /* HDF5 wants a buffer even when nothing is selected */

    if (n == 0)
        H5Sselect_none(mspace);
    if (collective && r->mpi)
        H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    herr_t rc = H5Dread(dset, mtype, mspace, fspace, dxpl, n ? buf : &none);
    H5Pclose(dxpl);
    H5Sclose(mspace);
    return rc < 0 ? -1 : 0;
}

int ckpt_reader_read_part(mb_ckpt_reader *r, const char *path, const struct mb_ckpt_tensor *t,
                          int64_t lo, int64_t hi, float *out, int collective)
{
    const struct mb_ckpt_info *it = lookup(
        r, path, 1u << MB_CKPT_F32 | 1u << MB_CKPT_BF16 | 1u << MB_CKPT_F16,
        "fp32 or bf16 or fp16");

    if (!it)
        return -1;
    if (it->numel == 0) /* no storage, and every rank knows it */
        return 0;
    hid_t dset = H5Dopen2(r->h5, path, H5P_DEFAULT);
    if (dset < 0)
        return ckpt_h5_err(MB_E_PARSE, r->file, "cannot open dataset '%s'", path);
    hid_t fspace = H5Dget_space(dset), mtype = ckpt_h5_mem_type(it->dtype);
    int64_t n = hi - lo;
    /* 16-bit: the bits go to the first half of OUT and are widened from the end */
    int rc = ckpt_shard_select(t, lo, hi, fspace);
    if (rc == 0)
        rc = read_selection(r, dset, fspace, mtype, n, out, collective);
    if (rc != 0)
        rc = ckpt_h5_err(MB_E_PARSE, r->file, "cannot read dataset '%s'", path);
    ckpt_h5_type_close(it->dtype, mtype);
    H5Sclose(fspace);
    H5Dclose(dset);
    const uint16_t *half = (const uint16_t *)out;
    int f16 = it->dtype == MB_CKPT_F16;
    for (int64_t i = n - 1; rc == 0 && it->dtype != MB_CKPT_F32 && i >= 0; i--)
        out[i] = f16 ? mb_ckpt_f32_from_f16(half[i]) : mb_ckpt_f32_from_bf16(half[i]);
    return rc;
}

/* Select rows [ROW0, ROW0 + NROWS) of the first axis of a dataset of IT's shape. */
static int select_rows(hid_t fspace, const struct mb_ckpt_info *it, int64_t row0,
                       int64_t nrows)
{
    hsize_t start[MB_CKPT_MAX_DIM] = { 0 }, count[MB_CKPT_MAX_DIM];

    if (it->ndim == 0)
        return H5Sselect_all(fspace);
    for (int i = 0; i < it->ndim; i++)
        count[i] = (hsize_t)it->shape[i];
    start[0] = (hsize_t)row0;
    count[0] = (hsize_t)nrows;
    return H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
}

int mb_ckpt_reader_read_rows(mb_ckpt_reader *r, const char *path, int64_t row0, int64_t nrows,
                             void *out)
{
    const struct mb_ckpt_info *it = lookup(r, path, ~(1u << MB_CKPT_OTHER), "a known type");

    if (!it)
        return -1;
    int64_t rows = it->ndim ? it->shape[0] : 1;
    if (row0 < 0 || nrows < 0 || row0 + nrows > rows)
        return mb_err_set(MB_E_INVALID, r->file, "dataset '%s': rows [%lld, %lld) outside "
                          "[0, %lld)", path, (long long)row0, (long long)(row0 + nrows),
                          (long long)rows);
    if (nrows == 0 || it->numel == 0)
        return 0;
    hid_t dset = H5Dopen2(r->h5, path, H5P_DEFAULT);
    if (dset < 0)
        return ckpt_h5_err(MB_E_PARSE, r->file, "cannot open dataset '%s'", path);
    hid_t fspace = H5Dget_space(dset), mtype = ckpt_h5_mem_type(it->dtype);
    hsize_t n = (hsize_t)(it->numel / rows * nrows);
    hid_t mspace = H5Screate_simple(1, &n, NULL);
    int rc = 0;
    if (select_rows(fspace, it, row0, nrows) < 0 ||
        H5Dread(dset, mtype, mspace, fspace, H5P_DEFAULT, out) < 0)
        rc = ckpt_h5_err(MB_E_PARSE, r->file, "cannot read rows of dataset '%s'", path);
    ckpt_h5_type_close(it->dtype, mtype);
    H5Sclose(mspace);
    H5Sclose(fspace);
    H5Dclose(dset);
    return rc;
}

int mb_ckpt_reader_read_i64(mb_ckpt_reader *r, const char *path, int64_t *out)
{
    const struct mb_ckpt_info *it = lookup(r, path, 1u << MB_CKPT_I64, "int64");

    if (!it)
        return -1;
    if (it->numel != 1)
        return mb_err_set(MB_E_INVALID, r->file, "dataset '%s' is not a scalar", path);
    return read_raw(r, path, H5T_NATIVE_INT64, out);
}

int mb_ckpt_reader_read_blob(mb_ckpt_reader *r, const char *path, void **data, size_t *len)
{
    const struct mb_ckpt_info *it = lookup(r, path, 1u << MB_CKPT_U8, "uint8");

    *data = NULL;
    *len = 0;
    if (!it)
        return -1;
    if (it->ndim != 1)
        return mb_err_set(MB_E_INVALID, r->file, "dataset '%s' is not a byte string", path);
    if (it->numel == 0)
        return 0;
    void *buf = mb_xmalloc((size_t)it->numel);
    if (read_raw(r, path, H5T_NATIVE_UINT8, buf) != 0) {
        free(buf);
        return -1;
    }
    *data = buf;
    *len = (size_t)it->numel;
    return 0;
}

/* A fixed-length string attribute (how ckpt/ writes them; h5py writes bytes so). Its
 * bytes up to the first NUL, whatever the padding. */
static int read_fixed_attr(hid_t a, hid_t ftype, char **value)
{
    size_t n = H5Tget_size(ftype);
    hid_t mtype = H5Tcopy(ftype); /* the bytes as they are */
    char *buf = mb_xcalloc(1, n + 1);

    int rc = H5Aread(a, mtype, buf) < 0 ? -1 : 0;
    H5Tclose(mtype);
    if (rc != 0)
        free(buf);
    else
        *value = buf;
    return rc;
}

static int read_var_attr(hid_t a, char **value)
{
    hid_t mtype = ckpt_h5_str_type();
    char *s = NULL;
    int rc = H5Aread(a, mtype, &s) < 0 ? -1 : 0;

    H5Tclose(mtype);
    if (rc == 0) {
        *value = mb_xstrdup(s ? s : "");
        H5free_memory(s);
    }
    return rc;
}

/* libhdf5 can spin for ever on a damaged global heap (ckpt/gheap.c): check the file's
 * heaps before its first variable-length string is read. */
static int gheap_check_once(mb_ckpt_reader *r)
{
    if (!r->gheap_ok && ckpt_gheap_check(r->file) == 0)
        r->gheap_ok = 1;
    return r->gheap_ok ? 0 : -1;
}

/* Elements of attribute A (1 for a string), -1 if its dataspace cannot be read. */
static hssize_t attr_points(hid_t a)
{
    hid_t space = H5Aget_space(a);
    hssize_t n = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);

    if (space >= 0)
        H5Sclose(space);
    return n;
}

int mb_ckpt_reader_has_attr(mb_ckpt_reader *r, const char *name)
{
    int has = H5Aexists(r->h5, name) > 0;

    H5Eclear2(H5E_DEFAULT);
    return has;
}

int mb_ckpt_reader_attr(mb_ckpt_reader *r, const char *name, char **value)
{
    *value = NULL;
    if (H5Aexists(r->h5, name) <= 0)
        return mb_err_set(MB_E_INVALID, r->file, "no attribute '%s'", name);
    hid_t a = H5Aopen(r->h5, name, H5P_DEFAULT);
    hid_t ftype = a < 0 ? -1 : H5Aget_type(a);
    int rc;
    if (ftype < 0 || H5Tget_class(ftype) != H5T_STRING || attr_points(a) != 1)
        rc = mb_err_set(MB_E_INVALID, r->file, "attribute '%s' is not a string", name);
    else if (H5Tis_variable_str(ftype) <= 0 && H5Tget_size(ftype) > MAX_ATTR_BYTES)
        rc = mb_err_set(MB_E_INVALID, r->file, "attribute '%s' is %zu bytes (at most %d)",
                        name, H5Tget_size(ftype), MAX_ATTR_BYTES);
    else if (H5Tis_variable_str(ftype) > 0 && gheap_check_once(r) != 0)
        rc = -1;
    else if ((H5Tis_variable_str(ftype) > 0 ? read_var_attr(a, value)
                                            : read_fixed_attr(a, ftype, value)) != 0)
        rc = ckpt_h5_err(MB_E_PARSE, r->file, "cannot read attribute '%s'", name);
    else
        rc = 0;
    if (ftype >= 0)
        H5Tclose(ftype);
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

/* Root attribute NAME as an integer in [LO, HI] into *OUT; an absent one leaves it. */
static int layout_int(mb_ckpt_reader *r, const char *name, int lo, int hi, int *out)
{
    char *v = NULL, *end;

    if (!mb_ckpt_reader_has_attr(r, name))
        return 0;
    if (mb_ckpt_reader_attr(r, name, &v) != 0)
        return -1;
    long x = strtol(v, &end, 10);
    int bad = end == v || *end || x < lo || x > hi, rc = 0;
    if (hi == 1) { /* a flag */
        x = strcmp(v, "true") == 0;
        bad = !x && strcmp(v, "false") != 0;
    }
    if (bad)
        rc = mb_err_set(MB_E_PARSE, r->file, "attribute '%s' holds '%s', not %s", name, v,
                        hi == 1 ? "true or false" : "a size of 1 or more");
    else
        *out = (int)x;
    free(v);
    return rc;
}

int mb_ckpt_reader_layout(mb_ckpt_reader *r, struct mb_ckpt_layout *out)
{
    static const char *const names[] = { "tensor_model_parallel_size", "context_parallel_size",
                                         "data_parallel_size", "pipeline_model_parallel_size" };
    struct mb_ckpt_layout l = { 0 };
    int *size[] = { &l.tp, &l.cp, &l.dp, &l.pp };

    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < MB_ARRAY_LEN(names); i++)
        if (layout_int(r, names[i], 1, 1 << 24, size[i]) != 0)
            return -1;
    if (layout_int(r, "use_distributed_optimizer", 0, 1, &l.distributed_optimizer) != 0)
        return -1;
    if (l.tp && l.cp && l.dp && l.pp) /* all four or nothing recorded */
        *out = l;
    return 0;
}

struct attr_names {
    char **v;
    int n;
    size_t cap;
};

static herr_t collect_hf_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    struct attr_names *a = data;
    (void)loc;
    (void)info;
    if (strncmp(name, "hf_", 3) == 0) {
        MB_GROW(a->v, a->cap, (size_t)a->n + 1);
        a->v[a->n++] = mb_xstrdup(name);
    }
    return 0;
}

static void add_extra(struct mb_ckpt_extra **out, int *n, size_t *cap, char *name, char *value,
                      size_t len)
{
    MB_GROW(*out, *cap, (size_t)*n + 1);
    (*out)[*n].name = name;
    (*out)[*n].value = value;
    (*out)[*n].len = len;
    (*n)++;
}

int mb_ckpt_reader_extras(mb_ckpt_reader *r, struct mb_ckpt_extra **out, int *n)
{
    struct attr_names names = { 0 };
    size_t cap = 0;
    int rc = 0;

    *out = NULL;
    *n = 0;
    if (H5Aiterate2(r->h5, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_hf_attr, &names) < 0)
        rc = ckpt_h5_err(MB_E_PARSE, r->file, "cannot list the root attributes");
    for (int i = 0; i < names.n; i++) {
        char *value = NULL;
        if (rc == 0 && (rc = mb_ckpt_reader_attr(r, names.v[i], &value)) == 0)
            add_extra(out, n, &cap, names.v[i], value, strlen(value));
        else
            free(names.v[i]);
    }
    free(names.v);
    for (int i = 0; rc == 0 && i < r->n; i++) {
        void *data = NULL;
        size_t len = 0;
        if (strncmp(r->items[i].path, "/hf/", 4) != 0)
            continue;
        if ((rc = mb_ckpt_reader_read_blob(r, r->items[i].path, &data, &len)) == 0)
            add_extra(out, n, &cap, mb_xstrdup(r->items[i].path), data, len);
    }
    if (rc != 0) {
        mb_ckpt_extras_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void mb_ckpt_extras_free(struct mb_ckpt_extra *x, int n)
{
    for (int i = 0; i < n; i++) {
        free(x[i].name);
        free(x[i].value);
    }
    free(x);
}


/* The file offset of dataset PATH's data when it is stored contiguously, unfiltered and
 * allocated (how every writer of ckpt/ stores tensors), else HADDR_UNDEF. */
static haddr_t contiguous_offset(mb_ckpt_reader *r, const char *path)
{
    hid_t dset = H5Dopen2(r->h5, path, H5P_DEFAULT);
    if (dset < 0)
        return HADDR_UNDEF;
    hid_t dcpl = H5Dget_create_plist(dset);
    haddr_t at = HADDR_UNDEF;
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS && H5Pget_nfilters(dcpl) == 0)
        at = H5Dget_offset(dset);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    H5Dclose(dset);
    H5Eclear2(H5E_DEFAULT);
    return at;
}

const void *mb_ckpt_reader_map_rows(mb_ckpt_reader *r, const char *path, int64_t row0,
                                    int64_t nrows)
{
    const struct mb_ckpt_info *it = mb_ckpt_reader_find(r, path);
    size_t es = it ? mb_ckpt_dtype_size(it->dtype) : 0;
    if (!it || es == 0 || it->numel == 0 || row0 < 0 || nrows <= 0 ||
        row0 + nrows > (it->ndim ? it->shape[0] : 1))
        return NULL;
    if (!r->map && mb_fs_map(r->file, (const void **)&r->map, &r->map_size) != 0) {
        mb_err_clear();
        r->map = NULL;
        return NULL;
    }
    haddr_t at = contiguous_offset(r, path);
    size_t row_bytes = (size_t)(it->numel / (it->ndim ? it->shape[0] : 1)) * es;
    if (at == HADDR_UNDEF || at + (size_t)it->numel * es > r->map_size)
        return NULL;
    return r->map + at + (size_t)row0 * row_bytes;
}

void mb_ckpt_reader_unmap_rows(mb_ckpt_reader *r, const void *data, size_t len)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)data + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)data + len) & ~(page - 1);
    (void)r;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
