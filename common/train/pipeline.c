/* train/pipeline.c - run one iteration's micro-batches through the pipeline: walk this
 * rank's schedule (train/pipe_sched.h), passing activations forward and their gradients
 * backward to the neighbouring stages with non-blocking sends and waited receives
 * (parallel.md 4.2-4.4).
 *
 * A send copies nothing: the pass writes into a buffer that stays with the send until
 * it completes. A receive is posted and waited for where the schedule needs its tensor.
 * Since no rank waits on a receive while a send it owes is unposted, and the schedule
 * orders the sends and receives of each pair of ranks alike, this cannot deadlock.
 */
#include "train/internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/time.h"

enum { TAG_FWD = 1, TAG_BWD = 2 };

/* A tensor buffer: a received tensor waiting for its pass, a pass's output waiting for
 * its send or in it, or free. */
struct pipe_buf {
    float *data;  /* backend memory: what the passes read and write */
    float *host;  /* what MPI sends from and receives into: DATA itself on host memory,
                   * else a host copy (kern/ops.h host_memory) */
    struct mb_group_request req;
    bool busy;
    bool sent; /* its tensor went out: free once the send completes */
};

struct pipe_run {
    struct mb_trainer *t;
    const struct mb_group *pp;
    int64_t numel;                 /* floats of an activation */
    struct pipe_buf *bufs;         /* grows as needed */
    int nbufs;
    int *slot_of;                  /* [micro * chunks]: the activation slot, -1 none */
    int *buf_in;                   /* [micro * chunks]: received activation buffer, -1 */
    int *buf_grad;                 /* [micro * chunks]: received gradient buffer, -1 */
    bool *slot_busy;
    bool training;
    float grad_scale;
    double loss_sum;               /* of the micro-batches whose loss is here */
    double busy_s;                 /* in forward and backward passes */
};

/* Let the sends in flight progress (MPI moves a message only inside MPI calls), and free
 * the buffers whose sends have completed: called after each pass, so that a
 * neighbour's receive does not wait for our next MPI call. */
static void progress(struct pipe_run *r)
{
    for (int i = 0; i < r->nbufs; i++) {
        struct pipe_buf *b = &r->bufs[i];
        if (b->busy && b->sent && mb_group_test(&b->req))
            b->busy = false;
    }
}

/* A free buffer (a new one when all are busy), now busy. */
static int take_buf(struct pipe_run *r)
{
    progress(r);
    for (int i = 0; i < r->nbufs; i++)
        if (!r->bufs[i].busy) {
            r->bufs[i].busy = true;
            r->bufs[i].sent = false;
            return i;
        }
    r->bufs = mb_xrealloc(r->bufs, (size_t)(r->nbufs + 1) * sizeof(*r->bufs));
    struct pipe_buf *b = &r->bufs[r->nbufs];
    memset(b, 0, sizeof *b);
    const struct mb_model *m = &r->t->model;
    b->data = m->ops->alloc(m->ex, (size_t)r->numel * sizeof(float));
    MB_ASSERT(b->data != NULL);
    b->host = m->ops->host_memory ? b->data : mb_xmalloc((size_t)r->numel * sizeof(float));
    b->busy = true;
    return r->nbufs++;
}

static void release_buf(struct pipe_run *r, int i)
{
    r->bufs[i].busy = false;
}

static int next_rank(const struct pipe_run *r)
{
    return (r->pp->rank + 1) % r->pp->size;
}

static int prev_rank(const struct pipe_run *r)
{
    return (r->pp->rank + r->pp->size - 1) % r->pp->size;
}

/* Receive NUMEL floats from PEER with TAG into a fresh buffer; its index. */
static int receive(struct pipe_run *r, int peer, int tag)
{
    int i = take_buf(r);
    struct mb_group_request req = { NULL };
    struct pipe_buf *b = &r->bufs[i];
    mb_group_irecv_f32(r->pp, b->host, r->numel, peer, tag, &req);
    mb_group_wait(r->pp, &req, 1);
    if (b->host != b->data)
        mb_from_host_f32(r->t->model.ops, r->t->model.ex, b->data, b->host, r->numel);
    return i;
}

static void send(struct pipe_run *r, int i, int peer, int tag)
{
    struct pipe_buf *b = &r->bufs[i];
    if (b->host != b->data)
        mb_to_host_f32(r->t->model.ops, r->t->model.ex, b->host, b->data, r->numel);
    mb_group_isend_f32(r->pp, b->host, r->numel, peer, tag, &b->req);
    b->sent = true;
}

static int free_slot(struct pipe_run *r)
{
    for (int s = 0; s < r->t->model.pipe_nslots; s++)
        if (!r->slot_busy[s]) {
            r->slot_busy[s] = true;
            return s;
        }
    MB_ASSERT(!"more micro-batches in flight than the schedule said");
    return -1;
}

/* Forward of event E; *OUT: the buffer its output went to (-1 in the model's last
 * chunk), which the SEND_FWD of the same (micro, chunk) sends. */
static int forward(struct pipe_run *r, const struct mb_pipe_event *e, int *out)
{
    struct mb_trainer *t = r->t;
    struct mb_model *m = &t->model;
    int k = e->micro * m->stage.chunks + e->chunk;
    struct mb_batch b = mb_train_micro_batch(t, e->micro);
    int slot = r->slot_of[k] = free_slot(r);
    const float *x = r->buf_in[k] >= 0 ? r->bufs[r->buf_in[k]].data : NULL;
    *out = mb_stage_has_head(&m->stage, e->chunk) ? -1 : take_buf(r);
    double ls = 0, ms = 0; /* ms: the mask sum, which the trainer counts itself */
    mb_train_adapter_dropout(t, r->training ? e->micro : -1);
    int rc = mb_model_chunk_forward(m, e->chunk, slot, &b, x, *out >= 0 ? r->bufs[*out].data : NULL,
                                    r->grad_scale, &ls, &ms);
    if (r->buf_in[k] >= 0)
        release_buf(r, r->buf_in[k]);
    r->buf_in[k] = -1;
    if (!r->training) { /* no backward to keep the activations for */
        r->slot_busy[slot] = false;
        r->slot_of[k] = -1;
    }
    r->loss_sum += ls;
    return rc;
}

static int backward(struct pipe_run *r, const struct mb_pipe_event *e)
{
    struct mb_trainer *t = r->t;
    struct mb_model *m = &t->model;
    int k = e->micro * m->stage.chunks + e->chunk;
    struct mb_batch b = mb_train_micro_batch(t, e->micro);
    const float *dy = r->buf_grad[k] >= 0 ? r->bufs[r->buf_grad[k]].data : NULL;
    int out = mb_stage_has_embedding(&m->stage, e->chunk) ? -1 : take_buf(r);
    mb_train_adapter_dropout(t, e->micro);
    if (e->micro == t->batches.count - 1 && t->gsync.overlap) { /* the chunk's last backward */
        m->grad_ready = mb_train_grad_ready;
        m->grad_ready_ctx = &t->gsync;
    }
    mb_model_chunk_backward(m, e->chunk, r->slot_of[k], &b, dy,
                            out >= 0 ? r->bufs[out].data : NULL);
    m->grad_ready = NULL;
    r->slot_busy[r->slot_of[k]] = false;
    r->slot_of[k] = -1;
    if (r->buf_grad[k] >= 0)
        release_buf(r, r->buf_grad[k]);
    r->buf_grad[k] = -1;
    return out;
}

/* Walk the N events EV; -1 when a forward found a bad batch (after which this rank
 * sends nothing more: the trainer's agreement then stops every rank). */
static int walk(struct pipe_run *r, const struct mb_pipe_event *ev, int n)
{
    int chunks = r->t->model.stage.chunks;
    int *pending = mb_xmalloc((size_t)(r->t->batches.count * chunks) * sizeof(int));
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const struct mb_pipe_event *e = &ev[i];
        int k = e->micro * chunks + e->chunk;
        switch (e->op) {
        case MB_PIPE_RECV_FWD: r->buf_in[k] = receive(r, prev_rank(r), TAG_FWD); break;
        case MB_PIPE_RECV_BWD: r->buf_grad[k] = receive(r, next_rank(r), TAG_BWD); break;
        case MB_PIPE_FWD: {
            double t0 = mb_now();
            rc = forward(r, e, &pending[k]);
            r->busy_s += mb_now() - t0;
            progress(r);
            break;
        }
        case MB_PIPE_BWD: {
            double t0 = mb_now();
            pending[k] = backward(r, e);
            r->busy_s += mb_now() - t0;
            progress(r);
            break;
        }
        case MB_PIPE_SEND_FWD: send(r, pending[k], next_rank(r), TAG_FWD); break;
        case MB_PIPE_SEND_BWD: send(r, pending[k], prev_rank(r), TAG_BWD); break;
        }
    }
    free(pending);
    return rc;
}

/* The forward passes only (evaluation): each micro-batch through every chunk in turn. */
static struct mb_pipe_event *forward_only(const struct mb_trainer *t, int *n)
{
    const struct mb_stage *s = &t->model.stage;
    int micro = (int)t->batches.count, chunks = s->chunks, k = 0;
    struct mb_pipe_event *ev = mb_xmalloc((size_t)(3 * micro * chunks) * sizeof(*ev));
    for (int mb = 0; mb < micro; mb++)
        for (int j = 0; j < chunks; j++) {
            if (!mb_stage_has_embedding(s, j))
                ev[k++] = (struct mb_pipe_event){ MB_PIPE_RECV_FWD, mb, j };
            ev[k++] = (struct mb_pipe_event){ MB_PIPE_FWD, mb, j };
            if (!mb_stage_has_head(s, j))
                ev[k++] = (struct mb_pipe_event){ MB_PIPE_SEND_FWD, mb, j };
        }
    *n = k;
    return ev;
}

static void finish(struct pipe_run *r)
{
    for (int i = 0; i < r->nbufs; i++) {
        struct pipe_buf *b = &r->bufs[i];
        mb_group_wait(r->pp, &b->req, 1);
        if (b->host != b->data)
            free(b->host);
        r->t->model.ops->free(r->t->model.ex, b->data);
    }
    free(r->bufs);
    free(r->slot_of);
    free(r->buf_in);
    free(r->buf_grad);
    free(r->slot_busy);
}

int mb_train_pipeline(struct mb_trainer *t, bool training, float grad_scale, double *loss_sum)
{
    struct mb_model *m = &t->model;
    int chunks = m->stage.chunks, n = (int)t->batches.count * chunks;
    struct pipe_run r = {
        .t = t,
        .pp = mb_pstate_group(&t->ps, MB_GROUP_PP),
        .numel = mb_model_pipe_numel(m, t->batches.micro, t->batches.seq),
        .training = training,
        .grad_scale = training ? grad_scale : 0.0f,
    };
    r.slot_of = mb_xmalloc((size_t)n * sizeof(int));
    r.buf_in = mb_xmalloc((size_t)n * sizeof(int));
    r.buf_grad = mb_xmalloc((size_t)n * sizeof(int));
    for (int k = 0; k < n; k++)
        r.slot_of[k] = r.buf_in[k] = r.buf_grad[k] = -1;
    r.slot_busy = mb_xcalloc((size_t)m->pipe_nslots, sizeof(bool));
    int nev = t->pipe.n, rc;
    if (training) {
        /* one window for every stage, from a common start to a common end, so that each
         * stage's idle time includes its share of the fill and of the flush */
        double mark = 0;
        mb_group_sum_f64(r.pp, &mark, 1);
        double t0 = mb_now();
        rc = walk(&r, t->pipe.ev, nev);
        finish(&r);
        mb_group_sum_f64(r.pp, &mark, 1);
        t->pipe_wall_s += mb_now() - t0;
        t->pipe_busy_s += r.busy_s;
    } else {
        struct mb_pipe_event *ev = forward_only(t, &nev);
        rc = walk(&r, ev, nev);
        free(ev);
    }
    mb_train_adapter_dropout(t, -1);
    if (!training)
        finish(&r);
    *loss_sum = r.loss_sum;
    return rc;
}
