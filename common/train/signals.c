/* train/signals.c - the exit signal handler and the time limit of a run. */
#include "train/signals.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/time.h"
#include "core/tool.h"

static const struct {
    int sig;
    const char *name;
} exit_signals[] = {
    { SIGTERM, "SIGTERM" }, { SIGINT, "SIGINT" }, { SIGUSR1, "SIGUSR1" }, { SIGUSR2, "SIGUSR2" },
};

/* The first stop signal's number, 0 before one came. */
static volatile sig_atomic_t received;
/* What the handler prints on a second signal, made before any signal can come. */
static char abort_msg[160];
static size_t abort_len;

/* Async-signal-safe: a flag the first time; the second time, a write(2), unlink(2) of the
 * registered temporaries and death by the signal's default action. */
static void on_stop_signal(int sig)
{
    if (received == 0) {
        received = sig;
        return;
    }
    ssize_t w = write(STDERR_FILENO, abort_msg, abort_len);
    (void)w;
    mb_fs_remove_temps();
    signal(sig, SIG_DFL);
    raise(sig); /* delivered when the handler returns (the signal is blocked until then) */
}

const char *mb_train_signal_name(int sig)
{
    for (size_t i = 0; i < MB_ARRAY_LEN(exit_signals); i++)
        if (exit_signals[i].sig == sig)
            return exit_signals[i].name;
    return "signal";
}

/* SIGTERM, TERM, sigterm ... -> the signal number; 0 when it is none of the four. */
static int parse_signal(const char *s)
{
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < MB_ARRAY_LEN(exit_signals); i++)
        if (strcasecmp(s, exit_signals[i].name + 3) == 0)
            return exit_signals[i].sig;
    return 0;
}

static void install(struct mb_train_stop *s)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART; /* a write or a read of the checkpoint is not cut short */
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 2; i++)
        if (s->signals[i])
            sigaddset(&sa.sa_mask, s->signals[i]);
    for (int i = 0; i < 2; i++)
        if (s->signals[i])
            sigaction(s->signals[i], &sa, NULL);
}

int mb_train_stop_init(struct mb_train_stop *s, const mb_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->start = mb_now();
    double mins = mb_config_double(cfg, "train.exit_duration_in_mins");
    if (!(mins >= 0))
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "train.exit_duration_in_mins"),
                          "train.exit_duration_in_mins must be 0 (off) or positive");
    s->limit_s = mins * 60.0;
    if (!mb_config_bool(cfg, "train.exit_signal_handler"))
        return 0;
    const char *name = mb_config_str(cfg, "train.exit_signal");
    int sig = parse_signal(name);
    if (sig == 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "train.exit_signal"),
                          "train.exit_signal '%s': use SIGTERM, SIGINT, SIGUSR1 or SIGUSR2",
                          name);
    s->signals[0] = sig;
    /* SIGINT too, unless it is the exit signal or was ignored when the tool started (a
     * background job: Ctrl-C at the terminal is not meant for it) */
    s->signals[1] = sig == SIGINT || mb_tool_signal_ignored(SIGINT) ? 0 : SIGINT;
    abort_len = (size_t)snprintf(abort_msg, sizeof abort_msg,
                                 "%s: second signal: aborting at once, nothing more is saved\n",
                                 mb_log_tool());
    if (abort_len >= sizeof abort_msg)
        abort_len = sizeof abort_msg - 1;
    received = 0;
    install(s);
    return 0;
}

int mb_train_stop_check(const struct mb_train_stop *s, const struct mb_dist *d)
{
    /* A signal number, or 1 for the time limit (SIGHUP, never one of ours): the largest
     * wins, so a signal is named even when another rank only ran out of time. */
    int64_t mine = received;
    if (mine == 0 && s->limit_s > 0 && mb_now() - s->start >= s->limit_s)
        mine = 1;
    int64_t agreed = mb_dist_max_i64(d, mine);
    return agreed == 1 ? MB_TRAIN_STOP_DURATION : (int)agreed;
}
