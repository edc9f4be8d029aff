/* tests/lib/tap.c - TAP producer for C tests. */
#include "tests/lib/tap.h"

#include <math.h>
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

int tap_close_to(const char *what, const float *got, const double *want, int64_t n,
                 double rtol, double atol)
{
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (atol + rtol * fabs(want[i]));
        if (!(e <= worst)) {
            worst = e;
            at = i;
        }
    }
    if (!(worst <= 1))
        tap_diag("%s: worst at %lld: got %.9g want %.9g", what, (long long)at, got[at], want[at]);
    return ok(worst <= 1, "%s (worst %.3g of tolerance)", what, worst);
}
