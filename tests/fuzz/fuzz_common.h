/* tests/fuzz/fuzz_common.h - what the libFuzzer targets share.
 *
 * Each target (fuzz_NAME.c) defines LLVMFuzzerTestOneInput and hands the input to a
 * reader of mb as a file: fuzz_file() writes it into a private scratch directory (under
 * $TMPDIR, removed at exit), because the readers take paths. A broken promise of a
 * reader (a range outside the file it accepted) is reported with fuzz_check(), which
 * aborts so that libFuzzer keeps the input.
 */
#ifndef MB_TESTS_FUZZ_COMMON_H
#define MB_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Write DATA[len] to NAME in the scratch directory; returns its path (static storage,
 * valid until the next call with another name). */
const char *fuzz_file(const char *name, const void *data, size_t len);

/* The scratch directory itself. */
const char *fuzz_dir(void);

/* Quiet the tool's standard output (mb-ckpt info prints) for the whole run. */
void fuzz_quiet_stdout(void);

/* Abort with MSG when COND is false (a broken invariant, not bad input). */
#define fuzz_check(cond, msg) fuzz_check_at((cond), (msg), __FILE__, __LINE__)
void fuzz_check_at(int cond, const char *msg, const char *file, int line);

#endif /* MB_TESTS_FUZZ_COMMON_H */
