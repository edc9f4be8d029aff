/* dist/comm.h - the MPI world: started only when a launcher (mpirun, srun) started us.
 *
 * A tool run directly is a world of one and never touches MPI, so single-process use
 * costs nothing. Under MPI a fatal error calls MPI_Abort, so no rank is left hanging,
 * and a watchdog (once a timeout is set) aborts the job when a rank waits too long in a
 * collective for one that stopped responding.
 */
#ifndef MB_DIST_COMM_H
#define MB_DIST_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"

struct mb_dist {
    int rank;
    int size;
    int mpi; /* 1 if MPI was initialised */
};

/* Initialise MPI if the environment shows a launcher. Sets the log rank prefix.
 * -1 (mb_err set) when the launcher started a different number of processes than MPI
 * sees (srun --mpi=none -n 2: two worlds of one); the caller then exits 1, after
 * mb_dist_finalize. */
int mb_dist_init(struct mb_dist *d, int *argc, char ***argv);
void mb_dist_finalize(struct mb_dist *d);

/* Watchdog of the collectives below: a rank that waits in one for more than MINUTES
 * prints the rank, the operation and the wait, and aborts the job (dist/watchdog.h).
 * 0 = none, the default; mb-pretrain sets dist.timeout_minutes. -1 (mb_err set, naming
 * WHERE) for a negative or absurd value. */
int mb_dist_set_timeout(double minutes, const char *where);

/* 1 if OK is non-zero on every rank (all ranks must call). */
int mb_dist_all_ok(const struct mb_dist *d, int ok);
/* Sum of VALUE over ranks. */
int64_t mb_dist_sum_i64(const struct mb_dist *d, int64_t value);
/* Largest VALUE over ranks (flags that any rank may raise). */
int64_t mb_dist_max_i64(const struct mb_dist *d, int64_t value);
void mb_dist_barrier(const struct mb_dist *d);
/* ALL receives the N int64 of MINE of every rank, in rank order (ALL holds size * N):
 * descriptions that every rank must know (the shards of checkpoint tensors). */
void mb_dist_all_gather_i64(const struct mb_dist *d, const int64_t *mine, int64_t *all,
                            int64_t n);
/* In-place sums over ranks (data-parallel gradients and loss counters). The reduction
 * order is MPI's, fixed for a given number of ranks. */
void mb_dist_sum_f32(const struct mb_dist *d, float *buf, int64_t n);
void mb_dist_sum_f64(const struct mb_dist *d, double *buf, int64_t n);

/* Version string of the MPI library, for --version. */
const char *mb_dist_library_version(void);

#endif /* MB_DIST_COMM_H */
