/* tests/lib/oracle.c - see oracle.h. */
#include "tests/lib/oracle.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

const char *oracle_python(void)
{
    static char py[PATH_MAX];
    const char *cache = getenv("MB_CACHE"), *home = getenv("HOME");

    if (cache && *cache)
        snprintf(py, sizeof py, "%s/venv/bin/python", cache);
    else
        snprintf(py, sizeof py, "%s/.cache/mb/venv/bin/python", home ? home : "");
    return py;
}

int oracle_run(const char *script, const char *args)
{
    char cmd[3 * PATH_MAX];

    snprintf(cmd, sizeof cmd, "'%s' '%s' %s", oracle_python(), script, args);
    return system(cmd);
}
