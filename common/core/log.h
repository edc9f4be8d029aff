/* core/log.h - messages on stderr, prefixed with the tool name (and "[rN] " under MPI).
 *
 * Info goes to stderr from rank 0 only; warnings and errors from every rank. Data never
 * goes through here.
 */
#ifndef MB_CORE_LOG_H
#define MB_CORE_LOG_H

#include "core/defs.h"

void mb_log_set_tool(const char *tool);
const char *mb_log_tool(void);
/* Set by dist/ once the world is known: rank prefix when SIZE > 1. */
void mb_log_set_rank(int rank, int size);

MB_PRINTF(1, 2) void mb_log_info(const char *fmt, ...);
MB_PRINTF(1, 2) void mb_log_warn(const char *fmt, ...);
/* "TOOL: error: WHERE: WHAT" for the current mb_err record. */
void mb_log_error_record(void);

#endif /* MB_CORE_LOG_H */
