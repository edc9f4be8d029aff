/* ckpt/shard.c - the part of a logical tensor a rank holds, as HDF5 selections, and who
 * writes what.
 *
 * A rank's tensor (struct mb_ckpt_tensor) is its local tensor: the logical one cut along
 * AXIS in NSLAB blocks (tensor parallelism) and along axis 0 in NLAYER_SLAB blocks (the
 * layers of a pipeline stage, one block per model chunk), or the whole of it, and of
 * that perhaps only the elements [part_start, +part_count) in row-major order. Any run
 * of local elements is a few boxes of the local tensor (at most 2 per dimension), and
 * each box is, on every axis, one piece per slab it crosses there: its logical image is
 * the product of those pieces. The slabs are in the same order locally and in the
 * logical tensor, so the map from local to logical coordinates is increasing on every
 * axis and keeps row-major order: HDF5 walks the union of the logical boxes in the order
 * of the local elements, and the memory side of a transfer is the run of elements
 * itself, contiguous.
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
    D_AXIS = D_SHAPE + MB_CKPT_MAX_DIM,       /* the TP cut's axis, -1 for none */
    D_NSLAB,
    D_SLAB,                                   /* local_start, global_start, count each */
    D_NLAYER = D_SLAB + 3 * MB_PARAM_MAX_SLABS, /* the layer cut on axis 0 */
    D_LAYER,
    D_LO = D_LAYER + 3 * MB_STAGE_MAX_CHUNKS, /* held local elements [lo, hi) */
    D_HI,
    D_LEN
};
#define D_PART_FIRST D_AXIS /* from here on: which part; before: the logical tensor */
#define MAX_PIECES (MB_STAGE_MAX_CHUNKS > MB_PARAM_MAX_SLABS ? MB_STAGE_MAX_CHUNKS \
                                                             : MB_PARAM_MAX_SLABS)

/* T is cut (has a local shape of its own): by TP slabs, pipeline layer slabs or both. */
static int is_cut(const struct mb_ckpt_tensor *t)
{
    return t->nslab != 0 || t->nlayer_slab != 0;
}

static int64_t local_dim(const struct mb_ckpt_tensor *t, int d)
{
    return is_cut(t) ? t->local_shape[d] : t->shape[d];
}

/* The slabs of T on axis D: its TP slabs, its layer slabs (axis 0), or WHOLE, one slab of
 * the whole axis. */
static int axis_slabs(const struct mb_ckpt_tensor *t, int d, const struct mb_param_slab **out,
                      struct mb_param_slab *whole)
{
    if (t->nslab != 0 && d == t->axis) {
        *out = t->slab;
        return t->nslab;
    }
    if (t->nlayer_slab != 0 && d == 0) {
        *out = t->layer_slab;
        return t->nlayer_slab;
    }
    *whole = (struct mb_param_slab){ 0, 0, local_dim(t, d) };
    *out = whole;
    return 1;
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

/* The NSLAB slabs SLAB of T on AXIS tile its local axis in order, and keep that order in
 * the logical tensor. */
static int check_cut(const struct mb_ckpt_tensor *t, const char *what, int axis,
                     const struct mb_param_slab *slab, int nslab)
{
    const char *name = t->name;
    int64_t next_local = 0, next_global = 0;

    for (int k = 0; k < nslab; k++) {
        const struct mb_param_slab *s = &slab[k];
        if (s->count < 0 || s->local_start != next_local || s->global_start < next_global ||
            s->global_start + s->count > t->shape[axis])
            return mb_err_set(MB_E_INVALID, name, "%s: slab %d (local %lld, global %lld, %lld "
                              "long) is out of order or outside [0, %lld) on axis %d", what, k,
                              (long long)s->local_start, (long long)s->global_start,
                              (long long)s->count, (long long)t->shape[axis], axis);
        next_local = s->local_start + s->count;
        next_global = s->global_start + s->count;
    }
    if (next_local != t->local_shape[axis])
        return mb_err_set(MB_E_INVALID, name, "%s: the slabs cover %lld of the %lld local "
                          "indices on axis %d", what, (long long)next_local,
                          (long long)t->local_shape[axis], axis);
    return 0;
}

static int check_slabs(const struct mb_ckpt_tensor *t, const char *what)
{
    const char *name = t->name;

    if (t->nslab < 0 || t->nslab > MB_PARAM_MAX_SLABS ||
        (t->nslab && (t->axis < 0 || t->axis >= t->ndim)))
        return mb_err_set(MB_E_INVALID, name, "%s: %d slabs on axis %d (0 to %d slabs, axis "
                          "0 to %d)", what, t->nslab, t->axis, MB_PARAM_MAX_SLABS, t->ndim - 1);
    if (t->nlayer_slab < 0 || t->nlayer_slab > MB_STAGE_MAX_CHUNKS ||
        (t->nlayer_slab && t->nslab && t->axis == 0))
        return mb_err_set(MB_E_INVALID, name, "%s: %d layer slabs on axis 0 (0 to %d, and "
                          "not on the axis of the tensor-parallel slabs)", what,
                          t->nlayer_slab, MB_STAGE_MAX_CHUNKS);
    for (int d = 0; d < t->ndim; d++)
        if (t->local_shape[d] < 0 ||
            (!(t->nslab && d == t->axis) && !(t->nlayer_slab && d == 0) &&
             t->local_shape[d] != t->shape[d]))
            return mb_err_set(MB_E_INVALID, name, "%s: local dimension %d is %lld, the "
                              "logical one %lld", what, d, (long long)t->local_shape[d],
                              (long long)t->shape[d]);
    if (t->nslab && check_cut(t, what, t->axis, t->slab, t->nslab) != 0)
        return -1;
    return t->nlayer_slab ? check_cut(t, what, 0, t->layer_slab, t->nlayer_slab) : 0;
}

int ckpt_shard_check(const struct mb_ckpt_tensor *t, const char *what)
{
    if (is_cut(t) && check_slabs(t, what) != 0)
        return -1;
    int64_t n = ckpt_local_numel(t);
    if (t->part && (t->part_start < 0 || t->part_count < 0 || t->part_start > n ||
                    t->part_count > n - t->part_start))
        return mb_err_set(MB_E_INVALID, t->name, "%s: part [%lld, +%lld) outside the %lld "
                          "local elements", what, (long long)t->part_start,
                          (long long)t->part_count, (long long)n);
    return 0;
}

/* Add the logical images of the local box START/COUNT to FSPACE (SET for the first):
 * on each axis the box meets some slabs, and its image is the product of those pieces. */
static void add_box(const struct mb_ckpt_tensor *t, const hsize_t *start, const hsize_t *count,
                    hid_t fspace, int *first)
{
    int nd = t->ndim, npiece[MB_CKPT_MAX_DIM], at[MB_CKPT_MAX_DIM] = { 0 };
    hsize_t pstart[MB_CKPT_MAX_DIM][MAX_PIECES], pcount[MB_CKPT_MAX_DIM][MAX_PIECES];

    for (int d = 0; d < nd; d++) {
        const struct mb_param_slab *slab;
        struct mb_param_slab whole;
        int nslab = axis_slabs(t, d, &slab, &whole);
        int64_t a0 = (int64_t)start[d], a1 = a0 + (int64_t)count[d];
        npiece[d] = 0;
        for (int k = 0; k < nslab; k++) {
            int64_t x0 = a0 > slab[k].local_start ? a0 : slab[k].local_start;
            int64_t end = slab[k].local_start + slab[k].count, x1 = a1 < end ? a1 : end;
            if (x1 <= x0)
                continue;
            pstart[d][npiece[d]] = (hsize_t)(slab[k].global_start + x0 - slab[k].local_start);
            pcount[d][npiece[d]++] = (hsize_t)(x1 - x0);
        }
        if (npiece[d] == 0)
            return;
    }
    for (;;) { /* every combination of one piece per axis */
        hsize_t gstart[MB_CKPT_MAX_DIM], gcount[MB_CKPT_MAX_DIM];
        for (int d = 0; d < nd; d++) {
            gstart[d] = pstart[d][at[d]];
            gcount[d] = pcount[d][at[d]];
        }
        H5Sselect_hyperslab(fspace, *first ? H5S_SELECT_SET : H5S_SELECT_OR, gstart, NULL,
                            gcount, NULL);
        *first = 0;
        int d = nd - 1;
        while (d >= 0 && ++at[d] == npiece[d])
            at[d--] = 0;
        if (d < 0)
            return;
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

/* A cut of N slabs on AXIS of a tensor of SHAPE that is no cut at all: one slab of the
 * whole axis. */
static int uncut(const int64_t *shape, int axis, const struct mb_param_slab *slab, int n)
{
    return n == 1 && slab[0].global_start == 0 && slab[0].count == shape[axis];
}

/* T's part, the same for the same part whichever way a rank describes it (a cut of one
 * whole slab is none). */
static void describe(const struct mb_ckpt_tensor *t, int64_t *out)
{
    memset(out, 0, D_LEN * sizeof *out);
    out[D_NAME] = (int64_t)mb_hash_bytes(t->name, strlen(t->name));
    out[D_NDIM] = t->ndim;
    memcpy(out + D_SHAPE, t->shape, (size_t)t->ndim * sizeof *out);
    out[D_AXIS] = -1;
    if (t->nslab && !uncut(t->shape, t->axis, t->slab, t->nslab)) {
        out[D_AXIS] = t->axis;
        out[D_NSLAB] = t->nslab;
        for (int k = 0; k < t->nslab; k++) {
            out[D_SLAB + 3 * k] = t->slab[k].local_start;
            out[D_SLAB + 3 * k + 1] = t->slab[k].global_start;
            out[D_SLAB + 3 * k + 2] = t->slab[k].count;
        }
    }
    if (t->nlayer_slab && !uncut(t->shape, 0, t->layer_slab, t->nlayer_slab)) {
        out[D_NLAYER] = t->nlayer_slab;
        for (int k = 0; k < t->nlayer_slab; k++) {
            out[D_LAYER + 3 * k] = t->layer_slab[k].local_start;
            out[D_LAYER + 3 * k + 1] = t->layer_slab[k].global_start;
            out[D_LAYER + 3 * k + 2] = t->layer_slab[k].count;
        }
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

/* The slabs (local_start, global_start, count triples) of description A on axis D, or
 * WHOLE (one slab of the whole axis); their number. */
static int slabs_on(const int64_t *a, int d, const int64_t **out, int64_t *whole)
{
    if (a[D_AXIS] == d) {
        *out = a + D_SLAB;
        return (int)a[D_NSLAB];
    }
    if (d == 0 && a[D_NLAYER]) {
        *out = a + D_LAYER;
        return (int)a[D_NLAYER];
    }
    whole[0] = whole[1] = 0;
    whole[2] = a[D_SHAPE + d];
    *out = whole;
    return 1;
}

/* 1 if the logical elements of the parts A and B (both held by some rank) can meet: the
 * same slabs with overlapping runs, or slabs that meet on every axis. */
static int parts_meet(const int64_t *a, const int64_t *b)
{
    if (same_slabs(a, b))
        return a[D_LO] < b[D_HI] && b[D_LO] < a[D_HI];
    for (int d = 0; d < a[D_NDIM]; d++) {
        const int64_t *sa, *sb;
        int64_t wa[3], wb[3];
        int na = slabs_on(a, d, &sa, wa), nb = slabs_on(b, d, &sb, wb), meet = 0;
        for (int i = 0; i < na && !meet; i++)
            for (int j = 0; j < nb && !meet; j++) {
                const int64_t *x = sa + 3 * i, *y = sb + 3 * j;
                meet = x[2] > 0 && y[2] > 0 && x[1] < y[1] + y[2] && y[1] < x[1] + x[2];
            }
        if (!meet)
            return 0;
    }
    return 1;
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
        partial[i] = is_cut(&t[i]) || lo != 0 || hi != ckpt_local_numel(&t[i]);
    }
    mb_dist_sum_f64(d ? d : &single, partial, n); /* ranks holding less than all of it */
    for (int i = 0; i < n; i++)
        coll[i] = partial[i] > 0;
    free(partial);
}
