/* train/pipe_sched.h - the pipeline schedules, as the list of events one rank runs
 * (parallel.md 4.3, 4.4).
 *
 * A schedule is computed, not run: the executor (train/pipeline.c) walks the list, so the
 * order of forward and backward passes and of the messages can be tested on its own.
 * Without virtual stages (VP 1) it is Megatron's 1F1B: min(p - r - 1, M) warm-up
 * forwards, steady (forward, backward) pairs, cool-down backwards. With VP > 1 it is the
 * interleaved schedule over M * VP virtual micro-batches, with Megatron's table (groups
 * of G = p micro-batches, for each chunk, for each micro-batch of the group) and warm-up
 * min((p - r - 1) * 2 + (v - 1) * G, M v).
 *
 * Messages: a RECV_FWD precedes the forward that consumes it, a SEND_FWD follows the
 * forward that produced it (none into the first chunk of rank 0, none out of the last
 * chunk of rank p-1); RECV_BWD / SEND_BWD likewise around backwards (none into the head,
 * none out of the embedding's chunk). Where Megatron exchanges in one batched call
 * (send_forward_recv_backward, send_backward_recv_forward) the send comes first: sends
 * are non-blocking, so a rank never waits on a receive before its own pending sends are
 * posted. Forward messages go to pp_rank + 1 (rank p-1: to 0, chunk + 1), backward
 * messages to pp_rank - 1 (rank 0: to p-1, chunk - 1). Per ordered pair of ranks and
 * direction the sends and the receives come in the same (micro-batch, chunk) order, so
 * MPI's non-overtaking rule matches them with one tag per direction.
 */
#ifndef MB_TRAIN_PIPE_SCHED_H
#define MB_TRAIN_PIPE_SCHED_H

#include <stdbool.h>

#include "core/defs.h"

enum mb_pipe_op {
    MB_PIPE_RECV_FWD, /* the input activation of (micro, chunk) from the previous stage */
    MB_PIPE_FWD,      /* forward of (micro, chunk) */
    MB_PIPE_SEND_FWD, /* its output activation to the next stage */
    MB_PIPE_RECV_BWD, /* the gradient of the output of (micro, chunk) from the next stage */
    MB_PIPE_BWD,      /* backward of (micro, chunk) */
    MB_PIPE_SEND_BWD, /* the gradient of its input to the previous stage */
};

struct mb_pipe_event {
    enum mb_pipe_op op;
    int micro; /* micro-batch, 0 .. M-1 */
    int chunk; /* model chunk of this rank, 0 .. VP-1 */
};

struct mb_pipe_sched {
    int pp, rank, vp, micro;     /* p, this rank's r, v, M */
    int warmup;                  /* Megatron's W: forwards before the steady phase */
    int n;
    struct mb_pipe_event *ev;    /* [n], in the order the rank runs them */
    int max_in_flight;           /* most (micro, chunk) forwards whose backward is pending */
};

/* The schedule of pipeline rank RANK of PP with VP chunks each over MICRO micro-batches
 * (VP 1: 1F1B, also for PP 1: F0 B0 F1 B1 ...). -1 with mb_err (naming WHERE, the same on
 * every rank) when Megatron refuses the interleaved schedule: VP > 1 needs PP > 1,
 * MICRO >= PP and MICRO % PP == 0. */
MB_MUST_CHECK int mb_pipe_sched_build(struct mb_pipe_sched *s, int pp, int rank, int vp,
                                      int micro, const char *where);
void mb_pipe_sched_free(struct mb_pipe_sched *s);

/* The events as text (malloc'd), one token each, separated by spaces: "F3.1" (forward of
 * micro-batch 3, chunk 1), "B3.1", and with COMM also "rf3.1" "sf3.1" "rb3.1" "sb3.1"
 * (receive / send of forward activations / backward gradients). Without VP the ".chunk"
 * is left out ("F3", "sf3"). */
char *mb_pipe_sched_string(const struct mb_pipe_sched *s, bool comm);

#endif /* MB_TRAIN_PIPE_SCHED_H */
