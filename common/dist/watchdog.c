/* dist/watchdog.c - a thread that aborts the job when a collective outlives the timeout. */
#include "dist/watchdog.h"

#include <math.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/time.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* on CLOCK_MONOTONIC, the clock of mb_now() */
    bool started;         /* the thread runs */
    bool idle;            /* the thread waits with no deadline: arming must wake it */
    double timeout;       /* seconds; 0 = off */
    bool armed;           /* a collective is in progress */
    double since;         /* when it started */
    const char *op;
    int64_t count;
    int rank, size;
} wd = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Called with the lock held, by the watchdog thread; does not return. */
static void fire(double waited)
{
    char op[128], suspect[48] = "another rank";
    snprintf(op, sizeof op, wd.op, (long long)wd.count, wd.count == 1 ? "" : "s");
    if (wd.size == 2)
        snprintf(suspect, sizeof suspect, "rank %d", 1 - wd.rank);
    char where[32];
    snprintf(where, sizeof where, "rank %d", wd.rank);
    mb_err_set(MB_E_IO, where, "%s did not complete in %g min (waited %.1f s; %s stopped "
               "responding?); aborting the job (dist.timeout_minutes)", op, wd.timeout / 60,
               waited, suspect);
    mb_log_error_record();
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1); /* MPI_Abort does not return; should it, this process still ends */
}

static struct timespec at(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    return ts;
}

/* The thread wakes at least every TICK while a collective is armed. A longer gap between
 * two wake-ups means this process itself was not running (stopped with SIGSTOP, its node
 * suspended): that time is not spent waiting for the others, so it does not count, and
 * a rank that is continued after the others gave up on it does not blame them. */
static void *watch(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd.lock);
    double last = mb_now();
    for (;;) {
        double now = mb_now(), tick = fmin(1.0, wd.timeout / 4);
        if (wd.armed && now - last > tick + 1.0)
            wd.since = fmin(wd.since + (now - last - tick), now);
        last = now;
        wd.idle = !wd.armed || wd.timeout <= 0;
        if (wd.idle) {
            pthread_cond_wait(&wd.wake, &wd.lock);
            last = mb_now();
            continue;
        }
        if (now - wd.since >= wd.timeout)
            fire(now - wd.since);
        struct timespec ts = at(fmin(wd.since + wd.timeout, now + tick));
        pthread_cond_timedwait(&wd.wake, &wd.lock, &ts);
    }
    return NULL;
}

/* Called with the lock held. No signal is delivered to the watchdog thread: the tools'
 * handlers run on the main thread. */
static void start(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wd.wake, &attr);
    pthread_condattr_destroy(&attr);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, watch, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        mb_log_warn("cannot start the collective watchdog thread: running without it");
        wd.timeout = 0;
        return;
    }
    pthread_detach(thread);
    wd.started = true;
}

void mb_watchdog_set(double seconds)
{
    pthread_mutex_lock(&wd.lock);
    wd.timeout = seconds > 0 ? seconds : 0;
    if (wd.timeout > 0 && !wd.started)
        start();
    pthread_mutex_unlock(&wd.lock);
}

void mb_watchdog_arm(const char *op, int64_t count, int rank, int size)
{
    pthread_mutex_lock(&wd.lock);
    if (wd.timeout > 0) {
        wd.armed = true;
        wd.since = mb_now();
        wd.op = op;
        wd.count = count;
        wd.rank = rank;
        wd.size = size;
        if (wd.idle)
            pthread_cond_signal(&wd.wake);
    }
    pthread_mutex_unlock(&wd.lock);
}

void mb_watchdog_disarm(void)
{
    pthread_mutex_lock(&wd.lock);
    wd.armed = false;
    pthread_mutex_unlock(&wd.lock);
}
