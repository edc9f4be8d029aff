/* dist/devcomm.h - the group collectives (dist/pstate.h) on backend memory.
 *
 * MPI and host loops may touch backend memory only when it is host memory (the CPU's:
 * kern/ops.h host_memory). These take the op table and its context: on host memory they
 * are the dist/ call itself, so the CPU path costs nothing; in a group of one (which never
 * communicates) a sum, maximum or broadcast does nothing and a gather or scatter is the
 * backend's copy; otherwise the data goes through a host buffer (to_host, the
 * collective, from_host). Same arguments as the dist/ functions otherwise.
 */
#ifndef MB_DIST_DEVCOMM_H
#define MB_DIST_DEVCOMM_H

#include <stdbool.h>
#include <stdint.h>

#include "dist/pstate.h"
#include "kern/ops.h"

void mb_dev_sum_f32(const struct mb_ops *o, struct mb_exec *ex, const struct mb_group *g,
                    float *buf, int64_t n);
void mb_dev_sum_f64(const struct mb_ops *o, struct mb_exec *ex, const struct mb_group *g,
                    double *buf, int64_t n);
void mb_dev_max_f32(const struct mb_ops *o, struct mb_exec *ex, const struct mb_group *g,
                    float *buf, int64_t n);
void mb_dev_all_gather_f32(const struct mb_ops *o, struct mb_exec *ex, const struct mb_group *g,
                           const float *mine, float *all, int64_t n);
void mb_dev_reduce_scatter_f32(const struct mb_ops *o, struct mb_exec *ex,
                               const struct mb_group *g, const float *in, float *out, int64_t n);
void mb_dev_broadcast(const struct mb_ops *o, struct mb_exec *ex, const struct mb_group *g,
                      void *buf, int64_t bytes, int root);

#endif /* MB_DIST_DEVCOMM_H */
