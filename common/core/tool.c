/* core/tool.c - exit status, error printing and signal clean-up for the tools. */
#include "core/tool.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"

static void on_fatal_signal(int sig)
{
    mb_fs_remove_temps();
    signal(sig, SIG_DFL);
    raise(sig);
}

void mb_tool_start(const char *name)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

    mb_log_set_tool(name);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], on_fatal_signal);
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
        mb_err_errno("standard output", "write failed");
        mb_log_error_record();
        return 1;
    }
    return 0;
}
