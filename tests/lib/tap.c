/* tests/lib/tap.c - TAP producer for C tests. */
#include "tests/lib/tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int count, failed;
static char scratch[512];

static void report(int pass, const char *fmt, va_list ap)
{
    printf("%sok %d - ", pass ? "" : "not ", ++count);
    vprintf(fmt, ap);
    printf("\n");
    if (!pass)
        failed++;
}

int tap_ok_at(const char *file, int line, int pass, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report(pass, fmt, ap);
    va_end(ap);
    if (!pass)
        printf("#   failed at %s:%d\n", file, line);
    return pass;
}

int tap_is_int_at(const char *file, int line, long long got, long long want, const char *fmt, ...)
{
    va_list ap;
    int pass = got == want;

    va_start(ap, fmt);
    report(pass, fmt, ap);
    va_end(ap);
    if (!pass)
        printf("#   failed at %s:%d\n#   got: %lld\n#  want: %lld\n", file, line, got, want);
    return pass;
}

int tap_is_str_at(const char *file, int line, const char *got, const char *want, const char *fmt, ...)
{
    va_list ap;
    int pass = got && want ? strcmp(got, want) == 0 : got == want;

    va_start(ap, fmt);
    report(pass, fmt, ap);
    va_end(ap);
    if (!pass)
        printf("#   failed at %s:%d\n#   got: '%s'\n#  want: '%s'\n", file, line,
               got ? got : "(null)", want ? want : "(null)");
    return pass;
}

void tap_diag(const char *fmt, ...)
{
    va_list ap;

    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

void tap_skip(int n, const char *why)
{
    for (int i = 0; i < n; i++)
        printf("ok %d # skip %s\n", ++count, why);
}

void tap_enter_scratch_dir(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(scratch, sizeof scratch, "%s/mb-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch) || chdir(scratch) != 0) {
        printf("Bail out! cannot make a scratch directory\n");
        exit(1);
    }
}

int tap_done(void)
{
    printf("1..%d\n", count);
    fflush(stdout);
    if (scratch[0] && failed == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
        if (chdir("/") == 0 && system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", scratch);
    }
    return failed ? 1 : 0;
}
