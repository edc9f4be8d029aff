/* dist/comm.c - MPI start-up and the few collectives the tools need. */
#include "dist/comm.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "dist/watchdog.h"

static void abort_world(void)
{
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Open MPI's mpirun, PMIx (srun --mpi=pmix) and PMI-1/2 launchers set these. */
static int launched_by_mpi(void)
{
    static const char *vars[] = { "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE" };

    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

/* How many processes the launcher started, from the most specific variable that says
 * so: Open MPI's mpirun, then PMI (MPICH and Intel MPI's mpiexec, srun --mpi=pmi2), then
 * the Slurm job step. SLURM_STEP_NUM_TASKS is the step's count, set by srun for its
 * tasks; the batch script itself has only the job's SLURM_NTASKS, so a tool run there
 * directly (or by srun -n 1 inside a larger allocation) is rightly a world of one. Under
 * mpirun the OMPI variable wins over the Slurm ones, which then describe mpirun's own
 * daemons. Returns 0 when no launcher says anything. */
static long launcher_tasks(const char **var, long *index)
{
    static const char *const vars[][2] = { { "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK" },
                                           { "PMI_SIZE", "PMI_RANK" },
                                           { "SLURM_STEP_NUM_TASKS", "SLURM_PROCID" } };

    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *value = getenv(vars[i][0]), *rank = getenv(vars[i][1]);
        char *end;
        long tasks = value ? strtol(value, &end, 10) : 0;
        if (!value || end == value || *end || tasks < 1)
            continue;
        *var = vars[i][0];
        *index = rank ? strtol(rank, NULL, 10) : -1;
        return tasks;
    }
    return 0;
}

/* N processes started as tasks of one job that do not form one MPI world (srun
 * --mpi=none, a launcher of another MPI library) would each train alone and overwrite
 * each other's checkpoints: refuse to start. */
static int check_launch(const struct mb_dist *d)
{
    const char *var = NULL;
    long index = -1;
    long tasks = launcher_tasks(&var, &index);

    if (tasks == 0 || tasks == d->size)
        return 0;
    char task[48] = "";
    if (index >= 0)
        snprintf(task, sizeof task, ", this is task %ld", index);
    return mb_err_set(MB_E_INVALID, NULL,
                      "launched as %ld tasks (%s=%ld%s) but MPI sees %d process%s: the tasks "
                      "do not form one MPI world; start with srun --mpi=pmix or mpirun",
                      tasks, var, tasks, task, d->size, d->size == 1 ? "" : "es");
}

int mb_dist_init(struct mb_dist *d, int *argc, char ***argv)
{
    int provided;

    d->rank = 0;
    d->size = 1;
    d->mpi = 0;
    if (!launched_by_mpi())
        return check_launch(d);
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->mpi = 1;
    mb_log_set_rank(d->rank, d->size);
    mb_err_set_abort_hook(abort_world);
    /* agreed, so that no rank goes on (or waits in MPI_Finalize) while another stops */
    int rc = check_launch(d);
    if (!mb_dist_all_ok(d, rc == 0) && rc == 0)
        rc = mb_err_set(MB_E_INVALID, NULL, "stopped: another rank's launch is wrong");
    return rc;
}

void mb_dist_finalize(struct mb_dist *d)
{
    if (d->mpi)
        MPI_Finalize();
    d->mpi = 0;
}

int mb_dist_set_timeout(double minutes, const char *where)
{
    int initialized = 0, size = 1;

    if (!isfinite(minutes) || minutes < 0 || minutes > 1e7)
        return mb_err_set(MB_E_INVALID, where,
                          "the timeout must be between 0 (none) and 1e7 minutes, not %g", minutes);
    MPI_Initialized(&initialized);
    if (initialized)
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    mb_watchdog_set(size > 1 ? minutes * 60 : 0); /* a world of one never waits */
    return 0;
}

int mb_dist_all_ok(const struct mb_dist *d, int ok)
{
    int all = ok ? 1 : 0;

    if (d->mpi) { /* world: every rank's status */
        mb_watchdog_arm("agreement (all-reduce of every rank's status)", 0, d->rank, d->size);
        MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        mb_watchdog_disarm();
    }
    return all;
}

int64_t mb_dist_sum_i64(const struct mb_dist *d, int64_t value)
{
    int64_t sum = value;

    if (d->mpi) { /* world: per-rank counters */
        mb_watchdog_arm("all-reduce of a counter", 0, d->rank, d->size);
        MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        mb_watchdog_disarm();
    }
    return sum;
}

int64_t mb_dist_max_i64(const struct mb_dist *d, int64_t value)
{
    int64_t max = value;

    if (d->mpi) { /* world: a stop request of any rank */
        mb_watchdog_arm("all-reduce of the stop request", 0, d->rank, d->size);
        MPI_Allreduce(MPI_IN_PLACE, &max, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
        mb_watchdog_disarm();
    }
    return max;
}

/* MPI counts are int: reduce in pieces of at most 2^30 elements. OP names the whole. */
static void sum_in_pieces(const struct mb_dist *d, void *buf, int64_t n, MPI_Datatype type,
                          size_t size, const char *op)
{
    if (!d->mpi)
        return;
    mb_watchdog_arm(op, n, d->rank, d->size);
    for (int64_t done = 0; done < n;) {
        int64_t piece = n - done < ((int64_t)1 << 30) ? n - done : ((int64_t)1 << 30);
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)done * size, (int)piece, type, MPI_SUM,
                      MPI_COMM_WORLD);
        done += piece;
    }
    mb_watchdog_disarm();
}

void mb_dist_sum_f32(const struct mb_dist *d, float *buf, int64_t n)
{
    sum_in_pieces(d, buf, n, MPI_FLOAT, sizeof(float), "all-reduce of %lld float%s");
}

void mb_dist_sum_f64(const struct mb_dist *d, double *buf, int64_t n)
{
    sum_in_pieces(d, buf, n, MPI_DOUBLE, sizeof(double), "all-reduce of %lld double%s");
}

void mb_dist_barrier(const struct mb_dist *d)
{
    if (d->mpi) {
        mb_watchdog_arm("barrier", 0, d->rank, d->size);
        MPI_Barrier(MPI_COMM_WORLD);
        mb_watchdog_disarm();
    }
}

void mb_dist_all_gather_i64(const struct mb_dist *d, const int64_t *mine, int64_t *all,
                            int64_t n)
{
    if (!d->mpi) {
        memmove(all, mine, (size_t)n * sizeof *all);
        return;
    }
    /* the descriptions are small: one call (MPI counts are int) */
    mb_watchdog_arm("all-gather of %lld int64%s", n, d->rank, d->size);
    MPI_Allgather(mine, (int)n, MPI_INT64_T, all, (int)n, MPI_INT64_T, MPI_COMM_WORLD);
    mb_watchdog_disarm();
}

const char *mb_dist_library_version(void)
{
    static char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;

    MPI_Get_library_version(version, &len);
    for (int i = 0; i < len; i++)
        if (version[i] == '\n' || version[i] == ',')
            version[i] = (i > 0 && version[i] == ',') ? '\0' : ' ';
    return version;
}
