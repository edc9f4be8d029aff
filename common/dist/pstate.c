/* dist/pstate.c - the TP x CP x DP x PP grid, its communicators and collectives. */
#include "dist/pstate.h"

#include <mpi.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "dist/watchdog.h"

/* The grid's axes in Megatron's order, the leftmost fastest. */
enum { AX_TP, AX_CP, AX_DP, AX_PP, AX_COUNT };

/* Which axes vary inside each group. */
static const unsigned group_axes[MB_GROUP_COUNT] = {
    [MB_GROUP_WORLD] = 1u << AX_TP | 1u << AX_CP | 1u << AX_DP | 1u << AX_PP,
    [MB_GROUP_TP] = 1u << AX_TP,
    [MB_GROUP_CP] = 1u << AX_CP,
    [MB_GROUP_DP] = 1u << AX_DP,
    [MB_GROUP_PP] = 1u << AX_PP,
    [MB_GROUP_MP] = 1u << AX_TP | 1u << AX_PP,
    [MB_GROUP_EMB] = 1u << AX_PP, /* then cut to the first and last stage (make_group) */
};

static const char *const group_names[MB_GROUP_COUNT] = { "world", "tp", "cp", "dp", "pp", "tp-pp",
                                                         "embedding" };

static void axes_of(const struct mb_pstate *ps, int size[AX_COUNT], int coord[AX_COUNT])
{
    size[AX_TP] = ps->tp, size[AX_CP] = ps->cp, size[AX_DP] = ps->dp, size[AX_PP] = ps->pp;
    coord[AX_TP] = ps->tp_rank, coord[AX_CP] = ps->cp_rank;
    coord[AX_DP] = ps->dp_rank, coord[AX_PP] = ps->pp_rank;
}

/* Mixed-radix number of COORD over the axes in MASK, the leftmost fastest. */
static int index_over(const int size[AX_COUNT], const int coord[AX_COUNT], unsigned mask)
{
    int index = 0, stride = 1;

    for (int a = 0; a < AX_COUNT; a++)
        if (mask & (1u << a)) {
            index += coord[a] * stride;
            stride *= size[a];
        }
    return index;
}

static int make_group(struct mb_pstate *ps, enum mb_group_kind kind)
{
    int size[AX_COUNT], coord[AX_COUNT];
    struct mb_group *g = &ps->group[kind];

    axes_of(ps, size, coord);
    g->name = group_names[kind];
    g->kind = kind;
    g->rank = index_over(size, coord, group_axes[kind]);
    g->size = 1;
    for (int a = 0; a < AX_COUNT; a++)
        if (group_axes[kind] & (1u << a))
            g->size *= size[a];
    g->comm = NULL;
    if (g->size == 1) /* the same on every rank: no rank calls the split */
        return 0;
    MPI_Comm *comm = mb_xmalloc(sizeof *comm);
    int color = index_over(size, coord, ~group_axes[kind] & ((1u << AX_COUNT) - 1));
    bool end_stage = ps->pp_rank == 0 || ps->pp_rank == ps->pp - 1;
    if (kind == MB_GROUP_EMB) { /* the first and last stage only; every rank splits */
        g->size = 2;
        g->rank = ps->pp_rank == 0 ? 0 : 1;
        if (!end_stage) {
            color = MPI_UNDEFINED;
            g->size = 1, g->rank = 0;
        }
    }
    if (MPI_Comm_split(MPI_COMM_WORLD, color, g->rank, comm) != MPI_SUCCESS) {
        free(comm);
        return mb_err_set(MB_E_IO, NULL, "cannot make the %s communicator", g->name);
    }
    if (*comm == MPI_COMM_NULL) { /* not a member: a group of one */
        free(comm);
        return 0;
    }
    g->comm = comm;
    return 0;
}

int mb_pstate_init(struct mb_pstate *ps, const struct mb_dist *d, int tp, int cp, int pp,
                   const char *where)
{
    memset(ps, 0, sizeof *ps);
    ps->world = d;
    if (tp < 1 || cp < 1 || pp < 1)
        return mb_err_set(MB_E_INVALID, where, "parallel sizes must be at least 1 (tensor %d, "
                          "context %d, pipeline %d)", tp, cp, pp);
    if (d->size % (tp * cp * pp) != 0)
        return mb_err_set(MB_E_INVALID, where,
                          "the world of %d rank%s is not a multiple of tensor %d x context %d x "
                          "pipeline %d parallel", d->size, d->size == 1 ? "" : "s", tp, cp, pp);
    ps->tp = tp, ps->cp = cp, ps->pp = pp;
    ps->dp = d->size / (tp * cp * pp);
    int r = d->rank;
    ps->tp_rank = r % tp;
    r /= tp;
    ps->cp_rank = r % cp;
    r /= cp;
    ps->dp_rank = r % ps->dp;
    ps->pp_rank = r / ps->dp;
    for (int k = 0; k < MB_GROUP_COUNT; k++)
        if (make_group(ps, (enum mb_group_kind)k) != 0) {
            mb_pstate_free(ps);
            return -1;
        }
    return 0;
}

void mb_pstate_free(struct mb_pstate *ps)
{
    for (int k = 0; k < MB_GROUP_COUNT; k++) {
        MPI_Comm *comm = ps->group[k].comm;
        if (comm) {
            MPI_Comm_free(comm);
            free(comm);
        }
        ps->group[k].comm = NULL;
    }
}

int mb_pstate_member(const struct mb_pstate *ps, enum mb_group_kind kind, int member)
{
    int size[AX_COUNT], coord[AX_COUNT];

    axes_of(ps, size, coord);
    for (int a = 0; a < AX_COUNT; a++)
        if (group_axes[kind] & (1u << a)) {
            coord[a] = member % size[a];
            member /= size[a];
        }
    return index_over(size, coord, (1u << AX_COUNT) - 1);
}

/* MPI counts are int: collectives on more than this many elements go in pieces. */
#define PIECE ((int64_t)1 << 30)

/* Ring-algorithm bytes sent per rank, by group kind (mb_group_traffic). */
static int64_t traffic[MB_GROUP_COUNT];

/* Count a collective of BYTES in all that a ring moves TIMES times (p - 1) / p of. */
static void count(const struct mb_group *g, int64_t bytes, int times)
{
    if (g->comm)
        traffic[g->kind] += (int64_t)times * (bytes / g->size) * (g->size - 1);
}

int64_t mb_group_traffic(const struct mb_group *g)
{
    return g->comm ? traffic[g->kind] : 0;
}

static void reduce(const struct mb_group *g, void *buf, int64_t n, MPI_Datatype type,
                   size_t elem, MPI_Op op, const char *what)
{
    if (!g->comm || n == 0)
        return;
    mb_watchdog_arm(what, n, g->rank, g->size);
    count(g, n * (int64_t)elem, 2);
    for (int64_t done = 0; done < n;) {
        int64_t piece = n - done < PIECE ? n - done : PIECE;
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)done * elem, (int)piece, type, op,
                      *(MPI_Comm *)g->comm);
        done += piece;
    }
    mb_watchdog_disarm();
}

void mb_group_sum_f32(const struct mb_group *g, float *buf, int64_t n)
{
    reduce(g, buf, n, MPI_FLOAT, sizeof(float), MPI_SUM, "all-reduce (sum) of %lld float%s");
}

void mb_group_sum_f64(const struct mb_group *g, double *buf, int64_t n)
{
    reduce(g, buf, n, MPI_DOUBLE, sizeof(double), MPI_SUM, "all-reduce (sum) of %lld double%s");
}

void mb_group_max_f32(const struct mb_group *g, float *buf, int64_t n)
{
    reduce(g, buf, n, MPI_FLOAT, sizeof(float), MPI_MAX, "all-reduce (max) of %lld float%s");
}

void mb_group_all_gather_f32(const struct mb_group *g, const float *mine, float *all, int64_t n)
{
    if (!g->comm) {
        if (all != mine)
            memmove(all, mine, (size_t)n * sizeof(float));
        return;
    }
    MB_ASSERT(n <= PIECE); /* per-rank blocks are layer slices, far below 2^30 floats */
    mb_watchdog_arm("all-gather of %lld float%s per rank", n, g->rank, g->size);
    count(g, n * g->size * (int64_t)sizeof(float), 1);
    const void *send = mine == all + (size_t)g->rank * (size_t)n ? MPI_IN_PLACE : mine;
    MPI_Allgather(send, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, *(MPI_Comm *)g->comm);
    mb_watchdog_disarm();
}

void mb_group_reduce_scatter_f32(const struct mb_group *g, const float *in, float *out, int64_t n)
{
    if (!g->comm) {
        memmove(out, in, (size_t)n * sizeof(float));
        return;
    }
    MB_ASSERT(n <= PIECE);
    mb_watchdog_arm("reduce-scatter of %lld float%s per rank", n, g->rank, g->size);
    count(g, n * g->size * (int64_t)sizeof(float), 1);
    MPI_Reduce_scatter_block(in, out, (int)n, MPI_FLOAT, MPI_SUM, *(MPI_Comm *)g->comm);
    mb_watchdog_disarm();
}

void mb_group_broadcast(const struct mb_group *g, void *buf, int64_t bytes, int root)
{
    if (!g->comm)
        return;
    mb_watchdog_arm("broadcast of %lld byte%s", bytes, g->rank, g->size);
    count(g, bytes, 1);
    for (int64_t done = 0; done < bytes;) {
        int64_t piece = bytes - done < PIECE ? bytes - done : PIECE;
        MPI_Bcast((char *)buf + done, (int)piece, MPI_BYTE, root, *(MPI_Comm *)g->comm);
        done += piece;
    }
    mb_watchdog_disarm();
}

/* Sum of the N ints of COUNTS. */
static int64_t total_of(const int *counts, int n)
{
    int64_t total = 0;

    for (int i = 0; i < n; i++)
        total += counts[i];
    return total;
}

void mb_group_reduce_scatter_v_f32(const struct mb_group *g, const float *in, float *out,
                                   const int *counts)
{
    if (!g->comm) {
        memmove(out, in, (size_t)counts[0] * sizeof(float));
        return;
    }
    int64_t total = total_of(counts, g->size);
    mb_watchdog_arm("reduce-scatter of %lld float%s in all", total, g->rank, g->size);
    count(g, total * (int64_t)sizeof(float), 1);
    MPI_Reduce_scatter(in == out ? MPI_IN_PLACE : in, out, counts, MPI_FLOAT, MPI_SUM,
                       *(MPI_Comm *)g->comm);
    mb_watchdog_disarm();
}

void mb_group_all_gather_v_f32(const struct mb_group *g, float *buf, const int *counts,
                               const int *displs)
{
    if (!g->comm)
        return;
    int64_t total = total_of(counts, g->size);
    mb_watchdog_arm("all-gather of %lld float%s in all", total, g->rank, g->size);
    count(g, total * (int64_t)sizeof(float), 1);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                   *(MPI_Comm *)g->comm);
    mb_watchdog_disarm();
}

/* A request's MPI_Request, allocated on the first start. */
static MPI_Request *request_of(struct mb_group_request *req)
{
    if (!req->mpi)
        req->mpi = mb_xmalloc(sizeof(MPI_Request));
    return req->mpi;
}

void mb_group_isum_f32(const struct mb_group *g, float *buf, int64_t n,
                       struct mb_group_request *req)
{
    if (!g->comm || n == 0)
        return;
    MB_ASSERT(n < PIECE * 2); /* buckets are far below 2^31 floats */
    count(g, n * (int64_t)sizeof(float), 2);
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, *(MPI_Comm *)g->comm,
                   request_of(req));
}

void mb_group_ireduce_scatter_v_f32(const struct mb_group *g, const float *in, float *out,
                                    const int *counts, struct mb_group_request *req)
{
    if (!g->comm) {
        memmove(out, in, (size_t)counts[0] * sizeof(float));
        return;
    }
    count(g, total_of(counts, g->size) * (int64_t)sizeof(float), 1);
    MPI_Ireduce_scatter(in == out ? MPI_IN_PLACE : in, out, counts, MPI_FLOAT, MPI_SUM,
                        *(MPI_Comm *)g->comm, request_of(req));
}

void mb_group_isend_f32(const struct mb_group *g, const float *buf, int64_t n, int peer,
                        int tag, struct mb_group_request *req)
{
    MB_ASSERT(g->comm && n < PIECE * 2); /* an activation of one micro-batch */
    traffic[g->kind] += n * (int64_t)sizeof(float);
    MPI_Isend(buf, (int)n, MPI_FLOAT, peer, tag, *(MPI_Comm *)g->comm, request_of(req));
}

void mb_group_irecv_f32(const struct mb_group *g, float *buf, int64_t n, int peer, int tag,
                        struct mb_group_request *req)
{
    MB_ASSERT(g->comm && n < PIECE * 2);
    MPI_Irecv(buf, (int)n, MPI_FLOAT, peer, tag, *(MPI_Comm *)g->comm, request_of(req));
}

void mb_group_poll(struct mb_group_request *reqs, int n)
{
    for (int i = 0; i < n; i++) {
        int done = 0;
        if (reqs[i].mpi && *(MPI_Request *)reqs[i].mpi != MPI_REQUEST_NULL)
            MPI_Test(reqs[i].mpi, &done, MPI_STATUS_IGNORE);
    }
}

bool mb_group_test(struct mb_group_request *req)
{
    int done = 1;
    if (req->mpi)
        MPI_Test(req->mpi, &done, MPI_STATUS_IGNORE);
    if (done && req->mpi) {
        free(req->mpi);
        req->mpi = NULL;
    }
    return done != 0;
}

void mb_group_wait(const struct mb_group *g, struct mb_group_request *reqs, int n)
{
    if (!g->comm)
        return;
    mb_watchdog_arm("wait for %lld non-blocking collective%s", n, g->rank, g->size);
    for (int i = 0; i < n; i++)
        if (reqs[i].mpi) {
            MPI_Wait(reqs[i].mpi, MPI_STATUS_IGNORE);
            free(reqs[i].mpi);
            reqs[i].mpi = NULL;
        }
    mb_watchdog_disarm();
}
