/* dist/devcomm.c - group collectives on backend memory, staged through the host when the
 * backend's memory is not host memory (dist/devcomm.h). */
#include "dist/devcomm.h"

#include <stdlib.h>

#include "core/mem.h"
#include "kern/ops.h"

/* Whether a collective of G on O's memory needs a host copy: off host memory, when G
 * communicates (a group of one leaves a sum, a maximum or a broadcast as it is). */
static bool staged(const struct mb_ops *o, const struct mb_group *g)
{
    return !o->host_memory && g->comm;
}

void mb_dev_sum_f32(const struct mb_ops *o, struct mb_exec *ex, const struct mb_group *g,
                    float *buf, int64_t n)
{
    if (!staged(o, g)) {
        mb_group_sum_f32(g, buf, n);
        return;
    }
    size_t bytes = (size_t)n * sizeof(float);
    float *h = mb_host_view(o, ex, buf, bytes);
    mb_group_sum_f32(g, h, n);
    mb_host_view_end(o, ex, buf, h, bytes, true);
}

void mb_dev_sum_f64(const struct mb_ops *o, struct mb_exec *ex, const struct mb_group *g,
                    double *buf, int64_t n)
{
    if (!staged(o, g)) {
        mb_group_sum_f64(g, buf, n);
        return;
    }
    size_t bytes = (size_t)n * sizeof(double);
    double *h = mb_host_view(o, ex, buf, bytes);
    mb_group_sum_f64(g, h, n);
    mb_host_view_end(o, ex, buf, h, bytes, true);
}

void mb_dev_max_f32(const struct mb_ops *o, struct mb_exec *ex, const struct mb_group *g,
                    float *buf, int64_t n)
{
    if (!staged(o, g)) {
        mb_group_max_f32(g, buf, n);
        return;
    }
    size_t bytes = (size_t)n * sizeof(float);
    float *h = mb_host_view(o, ex, buf, bytes);
    mb_group_max_f32(g, h, n);
    mb_host_view_end(o, ex, buf, h, bytes, true);
}

void mb_dev_all_gather_f32(const struct mb_ops *o, struct mb_exec *ex, const struct mb_group *g,
                           const float *mine, float *all, int64_t n)
{
    if (!staged(o, g)) { /* a group of one copies MINE to ALL: the backend's copy then */
        if (o->host_memory)
            mb_group_all_gather_f32(g, mine, all, n);
        else if (all != mine)
            o->copy(ex, all, mine, n);
        return;
    }
    float *h_mine = mb_host_view(o, ex, mine, (size_t)n * sizeof(float));
    float *h_all = mb_xmalloc((size_t)(n * g->size) * sizeof(float) + 1);
    mb_group_all_gather_f32(g, h_mine, h_all, n);
    free(h_mine);
    mb_host_view_end(o, ex, all, h_all, (size_t)(n * g->size) * sizeof(float), true);
}

void mb_dev_reduce_scatter_f32(const struct mb_ops *o, struct mb_exec *ex,
                               const struct mb_group *g, const float *in, float *out, int64_t n)
{
    if (!staged(o, g)) { /* a group of one copies IN to OUT: the backend's copy then */
        if (o->host_memory)
            mb_group_reduce_scatter_f32(g, in, out, n);
        else if (out != in)
            o->copy(ex, out, in, n);
        return;
    }
    float *h_in = mb_host_view(o, ex, in, (size_t)(n * g->size) * sizeof(float));
    float *h_out = mb_xmalloc((size_t)n * sizeof(float) + 1);
    mb_group_reduce_scatter_f32(g, h_in, h_out, n);
    free(h_in);
    mb_host_view_end(o, ex, out, h_out, (size_t)n * sizeof(float), true);
}

void mb_dev_broadcast(const struct mb_ops *o, struct mb_exec *ex, const struct mb_group *g,
                      void *buf, int64_t bytes, int root)
{
    if (!staged(o, g)) {
        mb_group_broadcast(g, buf, bytes, root);
        return;
    }
    void *h = mb_host_view(o, ex, buf, (size_t)bytes);
    mb_group_broadcast(g, h, bytes, root);
    mb_host_view_end(o, ex, buf, h, (size_t)bytes, true);
}
