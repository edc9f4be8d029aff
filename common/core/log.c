/* core/log.c - stderr messages with tool and rank prefix. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/err.h"

static const char *tool_name = "mb";
static int world_rank, world_size = 1;

void mb_log_set_tool(const char *tool)
{
    tool_name = tool;
}

const char *mb_log_tool(void)
{
    return tool_name;
}

void mb_log_set_rank(int rank, int size)
{
    world_rank = rank;
    world_size = size;
}

static void vlog(const char *kind, const char *fmt, va_list ap)
{
    char msg[2048];

    vsnprintf(msg, sizeof msg, fmt, ap);
    fflush(stdout);
    if (world_size > 1)
        fprintf(stderr, "%s: [r%d] %s%s\n", tool_name, world_rank, kind, msg);
    else
        fprintf(stderr, "%s: %s%s\n", tool_name, kind, msg);
}

void mb_log_info(const char *fmt, ...)
{
    va_list ap;

    if (world_rank != 0)
        return;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void mb_log_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog("warning: ", fmt, ap);
    va_end(ap);
}

static void log_line(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog("error: ", fmt, ap);
    va_end(ap);
}

void mb_log_error_record(void)
{
    const char *where = mb_err_where();

    if (where[0])
        log_line("%s: %s", where, mb_err_what());
    else
        log_line("%s", mb_err_what());
}
