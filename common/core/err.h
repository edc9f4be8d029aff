/* core/err.h - the thread-local error record every library function reports through.
 *
 * Library code never prints or exits on bad input: it records WHERE (the place in the
 * user's input: "corpus.jsonl:1842", "tokenizer.json: model.merges[12]") and WHAT, and
 * returns -1 or NULL. The tool prints "mb-TOOL: error: WHERE: WHAT" and picks the exit
 * status. Broken invariants go through MB_ASSERT, which prints "BUG:" and aborts.
 */
#ifndef MB_CORE_ERR_H
#define MB_CORE_ERR_H

#include "core/defs.h"

enum mb_errc {
    MB_E_OK = 0,
    MB_E_IO,          /* a system call failed; strerror(errno) is in the text */
    MB_E_PARSE,       /* input is malformed: JSON, YAML, .idx, gzip stream */
    MB_E_INVALID,     /* well-formed but unacceptable: missing key, bad value */
    MB_E_UNSUPPORTED, /* valid but not handled here: tokenizer type, dtype */
    MB_E_USAGE,       /* bad command line; the tool exits 2 */
};

/* Record an error for this thread and return -1. WHERE may be NULL or "". */
MB_PRINTF(3, 4) int mb_err_set(enum mb_errc code, const char *where, const char *fmt, ...);

/* Like mb_err_set with MB_E_IO, appending ": strerror(errno)". */
MB_PRINTF(2, 3) int mb_err_errno(const char *where, const char *fmt, ...);

/* Prefix the current message with outer context ("shard 3: "); returns -1. */
MB_PRINTF(1, 2) int mb_err_wrap(const char *fmt, ...);

/* Clear this thread's record. */
void mb_err_clear(void);

/* Copy this thread's error record into another thread's (used to hand a worker's
 * error to the thread that reports it). */
struct mb_err_record {
    enum mb_errc code;
    char where[512];
    char what[1024];
};
void mb_err_save(struct mb_err_record *rec);
void mb_err_restore(const struct mb_err_record *rec);

enum mb_errc mb_err_code(void);
const char *mb_err_where(void);
const char *mb_err_what(void);

/* "PATH:LINE" in a thread-local buffer, valid until the next call on this thread. */
const char *mb_at_line(const char *path, long long line);

/* Fatal paths: print and call the abort hook (MPI_Abort under MPI, else abort()). */
typedef void (*mb_abort_fn)(void);
void mb_err_set_abort_hook(mb_abort_fn fn);
/* Run the hook if one is set (under MPI it does not return); else return. */
void mb_err_call_abort_hook(void);
MB_NORETURN void mb_bug(const char *file, int line, const char *cond);

#define MB_ASSERT(cond)                                  \
    do {                                                 \
        if (!(cond))                                     \
            mb_bug(__FILE__, __LINE__, #cond);           \
    } while (0)

#endif /* MB_CORE_ERR_H */
