/* ckpt/shard.c - the part of a logical tensor a rank holds, as HDF5 selections, and who
 * writes what.
 *
 * A rank's tensor (struct mb_ckpt_tensor) is its local tensor: the logical one cut along
 * AXIS in NSLAB blocks, or the whole of it (NSLAB 0, taken as one block on axis 0), and
 * of that perhaps only the elements [part_start, +part_count) in row-major order. Any
 * run of local elements is a few boxes of the local tensor (at most 2 per dimension),
 * and each box is one box of the logical tensor per slab it crosses. The slabs are in
 * the same order locally and in the logical tensor, so the map from local to logical
 * coordinates is increasing on every axis and keeps row-major order: HDF5 walks the
 * union of the logical boxes in the order of the local elements, and the memory side of
 * a transfer is the run of elements itself, contiguous.
 *
 * Writing: ranks whose parts are the same (DP replicas, TP-replicated tensors) split
 * that part evenly by elements, so every element is written once; parts that differ
 * must not overlap and must cover the tensor, which every rank checks from the same
 * gathered descriptions, so all of them agree on the error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/internal.h"
#include "core/hash.h"
#include "core/mem.h"

/* One rank's description of its part of a tensor, as gathered from every rank. */
enum {
    D_NAME, /* a hash of the name */
    D_NDIM,
    D_SHAPE,                                  /* MB_CKPT_MAX_DIM logical dimensions */
    D_AXIS = D_SHAPE + MB_CKPT_MAX_DIM,
    D_NSLAB,
    D_SLAB,                                   /* local_start, global_start, count each */
    D_LO = D_SLAB + 3 * MB_PARAM_MAX_SLABS,   /* held local elements [lo, hi) */
    D_HI,
    D_LEN
};
#define D_PART_FIRST D_AXIS /* from here on: which part; before: the logical tensor */

/* T's slabs, with NSLAB 0 taken as one slab of all of axis 0. */
static int slabs_of(const struct mb_ckpt_tensor *t, int *axis, struct mb_param_slab *slab)
{
    if (t->nslab == 0) {
        *axis = 0;
        slab[0] = (struct mb_param_slab){ 0, 0, t->shape[0] };
        return 1;
    }
    *axis = t->axis;
    memcpy(slab, t->slab, (size_t)t->nslab * sizeof *slab);
    return t->nslab;
}

static int64_t local_dim(const struct mb_ckpt_tensor *t, int d)
{
    return t->nslab ? t->local_shape[d] : t->shape[d];
}

int64_t ckpt_local_numel(const struct mb_ckpt_tensor *t)
{
    int64_t n = 1;

    for (int d = 0; d < t->ndim; d++)
        n *= local_dim(t, d);
    return n;
}

void ckpt_held(const struct mb_ckpt_tensor *t, int64_t *lo, int64_t *hi)
{
    *lo = t->part ? t->part_start : 0;
    *hi = t->part ? t->part_start + t->part_count : ckpt_local_numel(t);
}

static int check_slabs(const struct mb_ckpt_tensor *t, const char *what)
{
    const char *name = t->name;
    int64_t next_local = 0, next_global = 0;

    if (t->nslab < 0 || t->nslab > MB_PARAM_MAX_SLABS || t->axis < 0 || t->axis >= t->ndim)
        return mb_err_set(MB_E_INVALID, name, "%s: %d slabs on axis %d (0 to %d slabs, axis "
                          "0 to %d)", what, t->nslab, t->axis, MB_PARAM_MAX_SLABS, t->ndim - 1);
    for (int d = 0; d < t->ndim; d++)
        if (t->local_shape[d] < 0 || (d != t->axis && t->local_shape[d] != t->shape[d]))
            return mb_err_set(MB_E_INVALID, name, "%s: local dimension %d is %lld, the "
                              "logical one %lld", what, d, (long long)t->local_shape[d],
                              (long long)t->shape[d]);
    for (int k = 0; k < t->nslab; k++) {
        const struct mb_param_slab *s = &t->slab[k];
        /* the slabs tile the local axis in order, and keep that order in the tensor */
        if (s->count < 0 || s->local_start != next_local || s->global_start < next_global ||
            s->global_start + s->count > t->shape[t->axis])
            return mb_err_set(MB_E_INVALID, name, "%s: slab %d (local %lld, global %lld, %lld "
                              "long) is out of order or outside [0, %lld) on axis %d", what, k,
                              (long long)s->local_start, (long long)s->global_start,
                              (long long)s->count, (long long)t->shape[t->axis], t->axis);
        next_local = s->local_start + s->count;
        next_global = s->global_start + s->count;
    }
    if (next_local != t->local_shape[t->axis])
        return mb_err_set(MB_E_INVALID, name, "%s: the slabs cover %lld of the %lld local "
                          "indices on axis %d", what, (long long)next_local,
                          (long long)t->local_shape[t->axis], t->axis);
    return 0;
}

int ckpt_shard_check(const struct mb_ckpt_tensor *t, const char *what)
{
    if (t->nslab != 0 && check_slabs(t, what) != 0)
        return -1;
    int64_t n = ckpt_local_numel(t);
    if (t->part && (t->part_start < 0 || t->part_count < 0 || t->part_start > n ||
                    t->part_count > n - t->part_start))
        return mb_err_set(MB_E_INVALID, t->name, "%s: part [%lld, +%lld) outside the %lld "
                          "local elements", what, (long long)t->part_start,
                          (long long)t->part_count, (long long)n);
    return 0;
}

/* Add the logical images of the local box START/COUNT to FSPACE (SET for the first). */
static void add_box(const struct mb_ckpt_tensor *t, const hsize_t *start, const hsize_t *count,
                    hid_t fspace, int *first)
{
    struct mb_param_slab slab[MB_PARAM_MAX_SLABS];
    int axis, nslab = slabs_of(t, &axis, slab);
    hsize_t gstart[MB_CKPT_MAX_DIM], gcount[MB_CKPT_MAX_DIM];
    int64_t a0 = (int64_t)start[axis], a1 = a0 + (int64_t)count[axis];

    memcpy(gstart, start, (size_t)t->ndim * sizeof *gstart);
    memcpy(gcount, count, (size_t)t->ndim * sizeof *gcount);
    for (int k = 0; k < nslab; k++) {
        int64_t x0 = a0 > slab[k].local_start ? a0 : slab[k].local_start;
        int64_t end = slab[k].local_start + slab[k].count, x1 = a1 < end ? a1 : end;
        if (x1 <= x0)
            continue;
        gstart[axis] = (hsize_t)(slab[k].global_start + x0 - slab[k].local_start);
        gcount[axis] = (hsize_t)(x1 - x0);
        H5Sselect_hyperslab(fspace, *first ? H5S_SELECT_SET : H5S_SELECT_OR, gstart, NULL,
                            gcount, NULL);
        *first = 0;
    }
}

int ckpt_shard_select(const struct mb_ckpt_tensor *t, int64_t lo, int64_t hi, hid_t fspace)
{
    int nd = t->ndim, first = 1;
    int64_t dim[MB_CKPT_MAX_DIM], stride[MB_CKPT_MAX_DIM];

    H5Sselect_none(fspace);
    for (int d = 0; d < nd; d++)
        dim[d] = local_dim(t, d);
    stride[nd - 1] = 1;
    for (int d = nd - 2; d >= 0; d--)
        stride[d] = stride[d + 1] * dim[d + 1];
    /* the run [lo, hi) as boxes: at each step the widest box that starts at LO */
    while (lo < hi) {
        int d = 0;
        while (lo % stride[d] != 0 || hi - lo < stride[d])
            d++; /* stops at the last axis, of stride 1 */
        hsize_t start[MB_CKPT_MAX_DIM], count[MB_CKPT_MAX_DIM];
        for (int j = 0; j < nd; j++) {
            start[j] = j <= d ? (hsize_t)((lo / stride[j]) % dim[j]) : 0;
            count[j] = j < d ? 1 : (hsize_t)dim[j];
        }
        int64_t room = dim[d] - (int64_t)start[d], want = (hi - lo) / stride[d];
        count[d] = (hsize_t)(room < want ? room : want);
        add_box(t, start, count, fspace, &first);
        lo += (int64_t)count[d] * stride[d];
    }
    return H5Sselect_valid(fspace) > 0 ? 0 : -1;
}

static void describe(const struct mb_ckpt_tensor *t, int64_t *out)
{
    struct mb_param_slab slab[MB_PARAM_MAX_SLABS] = { { 0, 0, 0 } };
    int axis, nslab = slabs_of(t, &axis, slab);

    memset(out, 0, D_LEN * sizeof *out);
    out[D_NAME] = (int64_t)mb_hash_bytes(t->name, strlen(t->name));
    out[D_NDIM] = t->ndim;
    memcpy(out + D_SHAPE, t->shape, (size_t)t->ndim * sizeof *out);
    out[D_AXIS] = axis;
    out[D_NSLAB] = nslab;
    for (int k = 0; k < nslab; k++) {
        out[D_SLAB + 3 * k] = slab[k].local_start;
        out[D_SLAB + 3 * k + 1] = slab[k].global_start;
        out[D_SLAB + 3 * k + 2] = slab[k].count;
    }
    ckpt_held(t, &out[D_LO], &out[D_HI]);
}

static int same_slabs(const int64_t *a, const int64_t *b)
{
    return memcmp(a + D_PART_FIRST, b + D_PART_FIRST, (D_LO - D_PART_FIRST) * sizeof *a) == 0;
}

static int same_part(const int64_t *a, const int64_t *b)
{
    return memcmp(a + D_PART_FIRST, b + D_PART_FIRST, (D_LEN - D_PART_FIRST) * sizeof *a) == 0;
}

/* 1 if the logical elements of the parts A and B (both held by some rank) can meet: the
 * same slabs with overlapping runs, or slabs that meet (on different axes, any two do). */
static int parts_meet(const int64_t *a, const int64_t *b)
{
    if (same_slabs(a, b))
        return a[D_LO] < b[D_HI] && b[D_LO] < a[D_HI];
    if (a[D_AXIS] != b[D_AXIS])
        return 1;
    for (int i = 0; i < a[D_NSLAB]; i++)
        for (int j = 0; j < b[D_NSLAB]; j++) {
            const int64_t *x = a + D_SLAB + 3 * i, *y = b + D_SLAB + 3 * j;
            if (x[2] > 0 && y[2] > 0 && x[1] < y[1] + y[2] && y[1] < x[1] + x[2])
                return 1;
        }
    return 0;
}

/* Check the parts of tensor NAME of all NRANKS (ALL: D_LEN each) and set [*LO, *HI),
 * the local elements RANK writes. */
static int plan_one(const char *name, const int64_t *all, int nranks, int rank, int64_t *lo,
                    int64_t *hi)
{
    const int64_t *mine = all + (size_t)rank * D_LEN;
    int64_t numel = 1, covered = 0;
    int k = 0, j = 0;

    for (int d = 0; d < mine[D_NDIM]; d++)
        numel *= mine[D_SHAPE + d];
    for (int r = 0; r < nranks; r++) {
        const int64_t *p = all + (size_t)r * D_LEN;
        if (memcmp(p, all, D_PART_FIRST * sizeof *p) != 0)
            return mb_err_set(MB_E_INVALID, name, "rank %d passes another tensor or logical "
                              "shape here than rank 0", r);
        if (p[D_HI] == p[D_LO])
            continue;
        int first = 1; /* the first rank holding this part counts it */
        for (int q = 0; q < r && first; q++)
            first = !same_part(all + (size_t)q * D_LEN, p);
        for (int q = 0; q < r && first; q++) {
            const int64_t *o = all + (size_t)q * D_LEN;
            if (o[D_HI] > o[D_LO] && parts_meet(o, p))
                return mb_err_set(MB_E_INVALID, name, "the parts of ranks %d and %d overlap",
                                  q, r);
        }
        covered += first ? p[D_HI] - p[D_LO] : 0;
        if (same_part(p, mine)) {
            j += r < rank; /* replicas of my part before me */
            k++;
        }
    }
    if (covered != numel)
        return mb_err_set(MB_E_INVALID, name, "the ranks' parts cover %lld of its %lld "
                          "elements", (long long)covered, (long long)numel);
    int64_t len = mine[D_HI] - mine[D_LO];
    *lo = k ? mine[D_LO] + len * j / k : 0;
    *hi = k ? mine[D_LO] + len * (j + 1) / k : 0;
    return 0;
}

int ckpt_shard_plan(const struct mb_dist *d, const struct mb_ckpt_tensor *t, int n, int64_t *lo,
                    int64_t *hi)
{
    static const struct mb_dist single = { 0, 1, 0 };
    const struct mb_dist *w = d ? d : &single;
    int nranks = w->size, rank = w->rank;

    /* the all-gather needs the same count everywhere (both collectives on every rank) */
    int64_t most = mb_dist_max_i64(w, n), least = -mb_dist_max_i64(w, -(int64_t)n);
    if (most != least)
        return mb_err_set(MB_E_INVALID, "", "the ranks pass different numbers of tensors");
    int64_t *mine = mb_xcalloc((size_t)n * D_LEN + 1, sizeof *mine);
    int64_t *all = mb_xcalloc((size_t)n * D_LEN * (size_t)nranks + 1, sizeof *all);
    int64_t *one = mb_xmalloc((size_t)nranks * D_LEN * sizeof *one);
    int rc = 0;

    for (int i = 0; i < n; i++)
        describe(&t[i], mine + (size_t)i * D_LEN);
    mb_dist_all_gather_i64(w, mine, all, (int64_t)n * D_LEN);
    for (int i = 0; rc == 0 && i < n; i++) {
        for (int r = 0; r < nranks; r++) /* tensor I of every rank, side by side */
            memcpy(one + (size_t)r * D_LEN, all + ((size_t)r * (size_t)n + (size_t)i) * D_LEN,
                   D_LEN * sizeof *one);
        rc = plan_one(t[i].name, one, nranks, rank, &lo[i], &hi[i]);
    }
    free(one);
    free(all);
    free(mine);
    return rc;
}

void ckpt_shard_collective(const struct mb_dist *d, const struct mb_ckpt_tensor *t, int n,
                           int *coll)
{
    static const struct mb_dist single = { 0, 1, 0 };
    double *partial = mb_xcalloc((size_t)n + 1, sizeof *partial);

    for (int i = 0; i < n; i++) {
        int64_t lo, hi;
        ckpt_held(&t[i], &lo, &hi);
        partial[i] = t[i].nslab != 0 || lo != 0 || hi != ckpt_local_numel(&t[i]);
    }
    mb_dist_sum_f64(d ? d : &single, partial, n); /* ranks holding less than all of it */
    for (int i = 0; i < n; i++)
        coll[i] = partial[i] > 0;
    free(partial);
}
