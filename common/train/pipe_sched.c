/* train/pipe_sched.c - the 1F1B and interleaved pipeline schedules as event lists
 * (parallel.md 4.3, 4.4; megatron/core/pipeline_parallel/schedules.py).
 *
 * Both schedules are one walk over Megatron's table of virtual micro-batches k: warm-up
 * forwards of table[0 .. W-1], then R = M v - W steady pairs (forward of table[W + k],
 * backward of k), then the cool-down backwards of k = R .. M v - 1. Without VP the table
 * is the identity (k, 0) and W = min(p - r - 1, M), which is 1F1B. The backward of k is
 * (micro(table[k]), v - 1 - chunk(table[k])): Megatron pops each chunk's saved micro-
 * batches in FIFO order, and the table lists every chunk's micro-batches in order 0 .. M-1,
 * so the k-th pop of a chunk is micro-batch micro(table[k]).
 *
 * Each receive sits right before the pass that consumes it and each send right after the
 * pass that produced it. That gives Megatron's order of the combined exchanges (after a
 * forward its send, then the receive of the backward's gradient; after a backward its
 * send, then the receive of the next forward's input), and it only posts receives later
 * and sends no later than Megatron does, so it cannot wait where Megatron would not
 * (t9010 checks both against Megatron's own run).
 *
 * The order needs sends that never block: Megatron posts a combined exchange in one batch,
 * this list posts the send first. Had a rank to wait for its send to complete before its
 * next receive (MPI_Ssend, or MPI_Wait right after an MPI_Isend large enough for the
 * rendezvous protocol), PP2 M4 would deadlock at once: rank 0 in sf1 waits for rank 1's
 * rf1, rank 1 in sb0 for rank 0's rb0. So the executor keeps the send requests (and their
 * buffers) pending and completes them at the end of the step, or tests them on the way.
 */
#include "train/pipe_sched.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/str.h"

struct pipe_pos {
    int micro, chunk;
};

static int check_layout(int pp, int rank, int vp, int micro, const char *where)
{
    if (pp < 1 || rank < 0 || rank >= pp || vp < 1 || micro < 1)
        return mb_err_set(MB_E_INVALID, where,
                          "pipeline schedule of rank %d of %d stages with %d virtual chunks "
                          "over %d micro-batches: need 0 <= rank < stages and at least one "
                          "stage, chunk and micro-batch", rank, pp, vp, micro);
    if (vp == 1)
        return 0;
    if (pp == 1)
        return mb_err_set(MB_E_INVALID, where,
                          "dist.virtual_pipeline_model_parallel_size %d needs "
                          "dist.pipeline_model_parallel_size > 1", vp);
    if (micro < pp || micro % pp != 0)
        return mb_err_set(MB_E_INVALID, where,
                          "the interleaved schedule (dist.virtual_pipeline_model_parallel_size "
                          "%d) needs the number of micro-batches per step (train.global_batch_size "
                          "/ (train.micro_batch_size x data-parallel size)) to be a multiple of "
                          "dist.pipeline_model_parallel_size %d and at least %d; it is %d",
                          vp, pp, pp, micro);
    return 0;
}

/* Megatron's get_schedule_table: for each group of GROUP micro-batches (the last one takes
 * what is left), for each chunk, the group's micro-batches in order. */
static void schedule_table(struct pipe_pos *table, int micro, int vp, int group)
{
    int k = 0;
    for (int first = 0; first < micro; first += group) {
        int end = MB_MIN(first + group, micro);
        for (int c = 0; c < vp; c++)
            for (int m = first; m < end; m++)
                table[k++] = (struct pipe_pos){ m, c };
    }
}

/* get_pp_rank_microbatches: forwards before the first backward. */
static int warmup_count(int pp, int rank, int vp, int micro)
{
    if (vp == 1)
        return MB_MIN(pp - rank - 1, micro);
    int group = pp; /* microbatch_group_size_per_vp_stage, Megatron's default */
    return MB_MIN((pp - rank - 1) * 2 + (vp - 1) * group, micro * vp);
}

static void push(struct mb_pipe_sched *s, enum mb_pipe_op op, struct pipe_pos at)
{
    s->ev[s->n++] = (struct mb_pipe_event){ op, at.micro, at.chunk };
}

/* The embedding's chunk has no input activation and sends no input gradient; the head's
 * chunk sends no activation and receives no output gradient. */
static bool is_embedding_chunk(const struct mb_pipe_sched *s, int chunk)
{
    return s->rank == 0 && chunk == 0;
}

static bool is_head_chunk(const struct mb_pipe_sched *s, int chunk)
{
    return s->rank == s->pp - 1 && chunk == s->vp - 1;
}

static void emit_forward(struct mb_pipe_sched *s, struct pipe_pos at, int *in_flight)
{
    if (!is_embedding_chunk(s, at.chunk))
        push(s, MB_PIPE_RECV_FWD, at);
    push(s, MB_PIPE_FWD, at);
    if (!is_head_chunk(s, at.chunk))
        push(s, MB_PIPE_SEND_FWD, at);
    if (++*in_flight > s->max_in_flight)
        s->max_in_flight = *in_flight;
}

static void emit_backward(struct mb_pipe_sched *s, struct pipe_pos fwd_at, int *in_flight)
{
    struct pipe_pos at = { fwd_at.micro, s->vp - 1 - fwd_at.chunk };
    if (!is_head_chunk(s, at.chunk))
        push(s, MB_PIPE_RECV_BWD, at);
    push(s, MB_PIPE_BWD, at);
    if (!is_embedding_chunk(s, at.chunk))
        push(s, MB_PIPE_SEND_BWD, at);
    --*in_flight;
}

int mb_pipe_sched_build(struct mb_pipe_sched *s, int pp, int rank, int vp, int micro,
                        const char *where)
{
    memset(s, 0, sizeof *s);
    if (check_layout(pp, rank, vp, micro, where) < 0)
        return -1;
    int total = micro * vp;
    struct pipe_pos *table = mb_xmalloc_for(sizeof *table * (size_t)total,
                                            "the pipeline schedule table");
    schedule_table(table, micro, vp, pp);
    s->pp = pp, s->rank = rank, s->vp = vp, s->micro = micro;
    s->warmup = warmup_count(pp, rank, vp, micro);
    s->ev = mb_xmalloc_for(sizeof *s->ev * 6 * (size_t)total, "the pipeline schedule");
    int steady = total - s->warmup, in_flight = 0;
    for (int k = 0; k < s->warmup; k++)
        emit_forward(s, table[k], &in_flight);
    for (int k = 0; k < steady; k++) {
        emit_forward(s, table[s->warmup + k], &in_flight);
        emit_backward(s, table[k], &in_flight);
    }
    for (int k = steady; k < total; k++)
        emit_backward(s, table[k], &in_flight);
    MB_ASSERT(in_flight == 0);
    free(table);
    return 0;
}

void mb_pipe_sched_free(struct mb_pipe_sched *s)
{
    free(s->ev);
    memset(s, 0, sizeof *s);
}

char *mb_pipe_sched_string(const struct mb_pipe_sched *s, bool comm)
{
    static const char *names[] = {
        [MB_PIPE_RECV_FWD] = "rf", [MB_PIPE_FWD] = "F", [MB_PIPE_SEND_FWD] = "sf",
        [MB_PIPE_RECV_BWD] = "rb", [MB_PIPE_BWD] = "B", [MB_PIPE_SEND_BWD] = "sb",
    };
    struct mb_buf b = MB_BUF_INIT;
    mb_buf_add(&b, "", 0); /* "" rather than NULL if nothing is printed */
    for (int i = 0; i < s->n; i++) {
        const struct mb_pipe_event *e = &s->ev[i];
        if (!comm && e->op != MB_PIPE_FWD && e->op != MB_PIPE_BWD)
            continue;
        if (b.len > 0)
            mb_buf_addc(&b, ' ');
        mb_buf_addf(&b, "%s%d", names[e->op], e->micro);
        if (s->vp > 1)
            mb_buf_addf(&b, ".%d", e->chunk);
    }
    return b.data;
}
