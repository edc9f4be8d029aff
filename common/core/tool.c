/* core/tool.c - exit status, error printing and signal clean-up for the tools. */
#include "core/tool.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"

/* Set while a tool publishes an output (mb_tool_hold_signals): a fatal signal waits. */
static volatile sig_atomic_t signals_held, signal_pending;

static void on_fatal_signal(int sig)
{
    if (signals_held) {
        signal_pending = sig;
        return;
    }
    mb_fs_remove_temps();
    signal(sig, SIG_DFL);
    raise(sig);
}

void mb_tool_hold_signals(void)
{
    signals_held = 1;
}

void mb_tool_release_signals(void)
{
    signals_held = 0;
    if (signal_pending)
        raise(signal_pending);
}

int mb_tool_signal_ignored(int sig)
{
    struct sigaction now;

    return sigaction(sig, NULL, &now) == 0 && now.sa_handler == SIG_IGN;
}

void mb_tool_start(const char *name)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

    mb_log_set_tool(name);
    /* a signal the parent chose to ignore stays ignored: nohup's SIGHUP, the SIGINT and
     * SIGQUIT of a background job of a non-interactive shell */
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (!mb_tool_signal_ignored(sigs[i]))
            signal(sigs[i], on_fatal_signal);
    /* A write past `ulimit -f` or into a closed pipe fails with EFBIG or EPIPE instead of
     * killing the process, so the error path runs: a message, temporaries removed. */
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
}

/* 1 if standard output is a pipe whose reader has gone (the error may be older than
 * errno). */
static int stdout_gone(void)
{
    struct pollfd p = { .fd = STDOUT_FILENO, .events = POLLOUT };

    /* the write end of a pipe polls POLLERR once no reader is left */
    return poll(&p, 1, 0) > 0 && (p.revents & POLLERR);
}

int mb_tool_end(int rc)
{
    mb_fs_remove_temps();
    if (rc == MB_CLI_EXIT)
        rc = 0;
    if (rc != 0) {
        mb_log_error_record();
        if (mb_err_code() == MB_E_USAGE)
            fprintf(stderr, "try '%s --help'\n", mb_log_tool());
        return mb_err_code() == MB_E_USAGE ? 2 : 1;
    }
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
        /* the reader went away (mb-ckpt info | head -1): as quiet as dying of SIGPIPE */
        if (errno == EPIPE || stdout_gone())
            return 1;
        mb_err_errno("standard output", "write failed");
        mb_log_error_record();
        return 1;
    }
    return 0;
}
