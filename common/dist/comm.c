/* dist/comm.c - MPI start-up and the few collectives the tools need. */
#include "dist/comm.h"

#include <mpi.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/log.h"

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

void mb_dist_init(struct mb_dist *d, int *argc, char ***argv)
{
    int provided;

    d->rank = 0;
    d->size = 1;
    d->mpi = 0;
    if (!launched_by_mpi())
        return;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->mpi = 1;
    mb_log_set_rank(d->rank, d->size);
    mb_err_set_abort_hook(abort_world);
}

void mb_dist_finalize(struct mb_dist *d)
{
    if (d->mpi)
        MPI_Finalize();
    d->mpi = 0;
}

int mb_dist_all_ok(const struct mb_dist *d, int ok)
{
    int all = ok ? 1 : 0;

    if (d->mpi) /* world: every rank's status */
        MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all;
}

int64_t mb_dist_sum_i64(const struct mb_dist *d, int64_t value)
{
    int64_t sum = value;

    if (d->mpi) /* world: per-rank counters */
        MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    return sum;
}

int64_t mb_dist_max_i64(const struct mb_dist *d, int64_t value)
{
    int64_t max = value;

    if (d->mpi) /* world: a stop request of any rank */
        MPI_Allreduce(MPI_IN_PLACE, &max, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    return max;
}

/* MPI counts are int: reduce in pieces of at most 2^30 elements. */
static void sum_in_pieces(const struct mb_dist *d, void *buf, int64_t n, MPI_Datatype type,
                          size_t size)
{
    if (!d->mpi)
        return;
    for (int64_t done = 0; done < n;) {
        int64_t piece = n - done < ((int64_t)1 << 30) ? n - done : ((int64_t)1 << 30);
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)done * size, (int)piece, type, MPI_SUM,
                      MPI_COMM_WORLD);
        done += piece;
    }
}

void mb_dist_sum_f32(const struct mb_dist *d, float *buf, int64_t n)
{
    sum_in_pieces(d, buf, n, MPI_FLOAT, sizeof(float));
}

void mb_dist_sum_f64(const struct mb_dist *d, double *buf, int64_t n)
{
    sum_in_pieces(d, buf, n, MPI_DOUBLE, sizeof(double));
}

void mb_dist_barrier(const struct mb_dist *d)
{
    if (d->mpi)
        MPI_Barrier(MPI_COMM_WORLD);
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
