/* dist/pstate.h - the parallel state: each rank's place in the TP x CP x DP x PP grid
 * and one communicator per group, with the collectives the model and the trainer use.
 *
 * Ranks are laid out as Megatron lays them out (order "tp-cp-dp-pp", the leftmost
 * fastest; parallel.md section 1):
 *
 *     world_rank = tp + TP * (cp + CP * (dp + DP * pp)),   DP = world / (TP * CP * PP)
 *
 * so a tensor-parallel group is TP consecutive ranks (one node). A group holds the ranks
 * that share every coordinate not in its name, listed with its own coordinates varying.
 * Every collective of a group of one returns at once without touching MPI, so the
 * single-process path costs nothing. No code outside dist/ uses MPI_COMM_WORLD or the
 * world size as the data-parallel size: it asks this state.
 *
 * The collectives are behind this one small interface (sum, max, all-gather,
 * reduce-scatter, broadcast, send/receive) so that an NCCL instance can be added later
 * without touching the layers. Each arms the collective watchdog (dist/watchdog.h).
 */
#ifndef MB_DIST_PSTATE_H
#define MB_DIST_PSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/defs.h"
#include "dist/comm.h"

enum mb_group_kind {
    MB_GROUP_WORLD,
    MB_GROUP_TP, /* "tp": the tensor-parallel collectives */
    MB_GROUP_CP, /* "cp" */
    MB_GROUP_DP, /* "dp": data sharding and gradient reduction (CP = 1) */
    MB_GROUP_PP, /* "pp": stage-to-stage send and receive */
    MB_GROUP_MP, /* "tp-pp": the model-parallel group (grad norm without the dist. optimizer) */
    /* "embedding": the first and the last rank of this rank's PP group (parallel.md 4.6),
     * for a tied embedding's gradient; a group of one on the other stages and at PP 1 */
    MB_GROUP_EMB,
    MB_GROUP_COUNT
};

struct mb_group {
    int rank; /* in the group */
    int size;
    void *comm; /* MPI_Comm *, NULL for a group of one or without MPI */
    const char *name;
    enum mb_group_kind kind;
};

/* A non-blocking collective in flight (an MPI_Request); NULL when none is. */
struct mb_group_request {
    void *mpi;
};

struct mb_pstate {
    const struct mb_dist *world;
    int tp, cp, dp, pp;                     /* sizes */
    int tp_rank, cp_rank, dp_rank, pp_rank; /* this rank's coordinates */
    struct mb_group group[MB_GROUP_COUNT];
};

/* Lay out the world D as TP x CP x DP x PP. Every rank must call it with the same sizes;
 * -1 (mb_err set, naming WHERE, the same on every rank) when they do not fit the world. */
MB_MUST_CHECK int mb_pstate_init(struct mb_pstate *ps, const struct mb_dist *d, int tp, int cp,
                                 int pp, const char *where);
void mb_pstate_free(struct mb_pstate *ps);

/* The group KIND of PS. */
static inline const struct mb_group *mb_pstate_group(const struct mb_pstate *ps,
                                                     enum mb_group_kind kind)
{
    return &ps->group[kind];
}

/* World rank of the member MEMBER of this rank's group KIND. */
int mb_pstate_member(const struct mb_pstate *ps, enum mb_group_kind kind, int member);

/* In-place sums and maxima over the group's ranks. The reduction order is MPI's, fixed
 * for a given group size. */
void mb_group_sum_f32(const struct mb_group *g, float *buf, int64_t n);
void mb_group_sum_f64(const struct mb_group *g, double *buf, int64_t n);
void mb_group_max_f32(const struct mb_group *g, float *buf, int64_t n);

/* ALL receives the N floats of MINE of every rank, in rank order (ALL holds size * N).
 * MINE may be ALL + rank * N (in place). */
void mb_group_all_gather_f32(const struct mb_group *g, const float *mine, float *all, int64_t n);

/* OUT receives block `rank` (N floats) of the element-wise sum over ranks of IN (size *
 * N floats). OUT must not overlap IN. */
void mb_group_reduce_scatter_f32(const struct mb_group *g, const float *in, float *out, int64_t n);

/* BUF (BYTES) from member ROOT to every member. */
void mb_group_broadcast(const struct mb_group *g, void *buf, int64_t bytes, int root);

/* Uneven blocks (a flat buffer cut into equal shards but for a shorter last one): IN
 * holds the blocks of every member one after another, COUNTS[r] floats for member r;
 * OUT receives this rank's block of their element-wise sum. OUT == IN reduces in place
 * (MPI_IN_PLACE): this rank's block of the sum is then at the start of IN, the rest of
 * IN undefined. Otherwise OUT must not overlap IN. */
void mb_group_reduce_scatter_v_f32(const struct mb_group *g, const float *in, float *out,
                                   const int *counts);
/* In place: member r's COUNTS[r] floats at BUF + DISPLS[r] go to every member. */
void mb_group_all_gather_v_f32(const struct mb_group *g, float *buf, const int *counts,
                               const int *displs);

/* Non-blocking forms of mb_group_sum_f32 (in place, N < 2^31) and
 * mb_group_reduce_scatter_v_f32: they start the collective and return; REQ is finished
 * by mb_group_wait, before which nothing may touch the buffers or COUNTS. Every member
 * must start the group's collectives in the same order. A group of one completes at
 * once. */
void mb_group_isum_f32(const struct mb_group *g, float *buf, int64_t n,
                       struct mb_group_request *req);
void mb_group_ireduce_scatter_v_f32(const struct mb_group *g, const float *in, float *out,
                                    const int *counts, struct mb_group_request *req);
/* Let started collectives progress (MPI progresses them only inside MPI calls). */
void mb_group_poll(struct mb_group_request *reqs, int n);
/* True when REQ has completed (or none was started); it is then released. */
bool mb_group_test(struct mb_group_request *req);
/* Finish the N requests REQS (those with mpi NULL are skipped). */
void mb_group_wait(const struct mb_group *g, struct mb_group_request *reqs, int n);

/* Point to point within a group (the pipeline's activations and their gradients): N
 * floats to / from member PEER with TAG, non-blocking; finished by mb_group_wait (the
 * request may be waited on alone). BUF must stay as it is until then. Messages from one
 * rank to another with one tag arrive in the order they were sent. */
void mb_group_isend_f32(const struct mb_group *g, const float *buf, int64_t n, int peer,
                        int tag, struct mb_group_request *req);
void mb_group_irecv_f32(const struct mb_group *g, float *buf, int64_t n, int peer, int tag,
                        struct mb_group_request *req);

/* Bytes this rank has sent in the collectives of group G so far, counted as the ring
 * algorithms send them (parallel.md section 9): an all-reduce of n bytes over p ranks
 * 2 (p - 1) / p n, a reduce-scatter or all-gather of n bytes in all (p - 1) / p n, a
 * broadcast n (p - 1) / p. 0 for a group of one. What MPI's chosen algorithm sends on
 * the wire may differ; this is the volume the step asks for. */
int64_t mb_group_traffic(const struct mb_group *g);

#endif /* MB_DIST_PSTATE_H */
