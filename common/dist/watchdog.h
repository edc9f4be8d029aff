/* dist/watchdog.h - abort the job when one of our collectives waits too long.
 *
 * A rank that stops responding (stopped, swapping, stuck in a file system) leaves the
 * others waiting in their next collective for ever. comm.c arms the watchdog around
 * each collective it makes; when one has not completed after the timeout, a thread
 * prints which rank waited in which operation for how long and calls MPI_Abort, which
 * ends every rank of the job (Megatron's distributed_timeout_minutes does the same for
 * NCCL and gloo).
 *
 * Why a thread and not non-blocking collectives polled with MPI_Test: the blocking ones
 * keep Open MPI's tuned algorithms (16 MB over 2 ranks here: MPI_Allreduce 18-21 ms,
 * MPI_Iallreduce + MPI_Test 22-24 ms), and arming and disarming cost two mutex
 * operations and a clock read, 0.43 us per collective, a handful per training step.
 * MPI is initialised MPI_THREAD_FUNNELED (MULTIPLE would make Open MPI 4.1 lock every
 * message), so strictly only the main thread may call MPI; the watchdog's single call is
 * MPI_Abort, made while the main thread is blocked in a collective that can no longer
 * complete, and Open MPI's abort goes to the launcher (PMIx), not through the
 * communicator (tests/tools/t8302: mpirun, a rank stopped with SIGSTOP).
 */
#ifndef MB_DIST_WATCHDOG_H
#define MB_DIST_WATCHDOG_H

#include <stdint.h>

/* Timeout in seconds; 0 turns the watchdog off (the default). */
void mb_watchdog_set(double seconds);

/* A collective starts on this rank (of SIZE): OP is a string literal shown if it times
 * out, formatted with COUNT and a plural "s" ("all-reduce of %lld float%s") or with no
 * conversion at all ("barrier"). */
void mb_watchdog_arm(const char *op, int64_t count, int rank, int size);
/* The collective armed last has completed. */
void mb_watchdog_disarm(void);

#endif /* MB_DIST_WATCHDOG_H */
