/* TEMPORARY lead version for wiring; replaced by the helper's. */
#include "train/pipe_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

static void emit(struct mb_pipe_sched *s, enum mb_pipe_op op, int micro, int chunk)
{
    s->ev[s->n++] = (struct mb_pipe_event){ op, micro, chunk };
}

/* forward k-th virtual microbatch -> (micro, chunk) */
static void fwd_of(const struct mb_pipe_sched *s, int k, int *micro, int *chunk)
{
    int p = s->pp, v = s->vp, M = s->micro;
    if (v == 1) { *micro = k; *chunk = 0; return; }
    int G = p; /* groups of G micro-batches */
    int group = k / (G * v), in = k % (G * v);
    int size = (group + 1) * G <= M ? G : M - group * G;
    (void)size;
    *chunk = in / G;
    *micro = group * G + in % G;
}

static void bwd_of(const struct mb_pipe_sched *s, int k, int *micro, int *chunk)
{
    fwd_of(s, k, micro, chunk);
    *chunk = s->vp - 1 - *chunk;
}

static void do_fwd(struct mb_pipe_sched *s, int k, int *inflight)
{
    int m, c;
    fwd_of(s, k, &m, &c);
    if (!(s->rank == 0 && c == 0))
        emit(s, MB_PIPE_RECV_FWD, m, c);
    emit(s, MB_PIPE_FWD, m, c);
    if (!(s->rank == s->pp - 1 && c == s->vp - 1))
        emit(s, MB_PIPE_SEND_FWD, m, c);
    if (++*inflight > s->max_in_flight)
        s->max_in_flight = *inflight;
}

static void do_bwd(struct mb_pipe_sched *s, int k, int *inflight)
{
    int m, c;
    bwd_of(s, k, &m, &c);
    if (!(s->rank == s->pp - 1 && c == s->vp - 1))
        emit(s, MB_PIPE_RECV_BWD, m, c);
    emit(s, MB_PIPE_BWD, m, c);
    if (!(s->rank == 0 && c == 0))
        emit(s, MB_PIPE_SEND_BWD, m, c);
    --*inflight;
}

int mb_pipe_sched_build(struct mb_pipe_sched *s, int pp, int rank, int vp, int micro,
                        const char *where)
{
    memset(s, 0, sizeof *s);
    if (vp > 1 && (pp < 2 || micro < pp || micro % pp != 0))
        return mb_err_set(MB_E_INVALID, where, "interleaved schedule: %d micro-batches over %d stages", micro, pp);
    s->pp = pp, s->rank = rank, s->vp = vp, s->micro = micro;
    int total = micro * vp;
    int w = vp == 1 ? pp - rank - 1 : (pp - rank - 1) * 2 + (vp - 1) * pp;
    if (w > total) w = total;
    s->warmup = w;
    s->ev = mb_xmalloc((size_t)total * 6 * sizeof(*s->ev));
    int inflight = 0, f = 0, b = 0;
    for (; f < w; f++) do_fwd(s, f, &inflight);
    for (; f < total; f++, b++) { do_fwd(s, f, &inflight); do_bwd(s, b, &inflight); }
    for (; b < total; b++) do_bwd(s, b, &inflight);
    return 0;
}

void mb_pipe_sched_free(struct mb_pipe_sched *s)
{
    free(s->ev);
    s->ev = NULL;
}

char *mb_pipe_sched_string(const struct mb_pipe_sched *s, bool comm)
{
    (void)comm;
    char *out = mb_xmalloc((size_t)s->n * 16 + 1);
    out[0] = 0;
    return out;
}
