/* tests/lib/tap.h - TAP output for C unit tests (run under prove).
 *
 * Checks print "ok N - title" or "not ok N - title" with the source place and both
 * values on failure, and return whether they passed. tap_done() prints the plan and
 * returns the exit status: 0 only if every check passed.
 */
#ifndef MB_TESTS_TAP_H
#define MB_TESTS_TAP_H

#include <stdint.h>

#include "core/defs.h"

MB_PRINTF(4, 5) int tap_ok_at(const char *file, int line, int pass, const char *fmt, ...);
MB_PRINTF(5, 6) int tap_is_int_at(const char *file, int line, long long got, long long want,
                                  const char *fmt, ...);
MB_PRINTF(5, 6) int tap_is_str_at(const char *file, int line, const char *got, const char *want,
                                  const char *fmt, ...);
MB_PRINTF(1, 2) void tap_diag(const char *fmt, ...);
void tap_skip(int n, const char *why);
/* One check that every |got[i] - want[i]| <= atol + rtol |want[i]|; the title gives
 * the worst ratio to the tolerance, a diagnostic the worst element. */
int tap_close_to(const char *what, const float *got, const double *want, int64_t n,
                 double rtol, double atol);
int tap_done(void);

/* Run the test in a fresh scratch directory (under $TMPDIR), removed at tap_done. */
void tap_enter_scratch_dir(void);

#define ok(cond, ...) tap_ok_at(__FILE__, __LINE__, !!(cond), __VA_ARGS__)
#define is_int(got, want, ...) tap_is_int_at(__FILE__, __LINE__, (got), (want), __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str_at(__FILE__, __LINE__, (got), (want), __VA_ARGS__)

#endif /* MB_TESTS_TAP_H */
