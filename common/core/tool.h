/* core/tool.h - the frame every mb tool's main() runs in.
 *
 * mb_tool_start names the tool for messages and installs signal handlers that delete
 * registered temporaries before dying; SIGXFSZ and SIGPIPE are ignored, so that a write
 * past `ulimit -f` or into a closed pipe fails (EFBIG, EPIPE) and the error path runs.
 * mb_tool_end turns a 0/-1 result into the exit status (0, 1, or 2 for usage errors),
 * printing the error record, and reports a failed close of stdout.
 */
#ifndef MB_CORE_TOOL_H
#define MB_CORE_TOOL_H

void mb_tool_start(const char *name);
/* 1 when SIG is ignored now (e.g. inherited as ignored from the parent), else 0. */
int mb_tool_signal_ignored(int sig);
/* Between these a fatal signal (INT, TERM, HUP, QUIT) is only noted, and release raises
 * it again: for the few calls that publish an output (a rename and the file naming it).
 * Blocking the signals would not do: the process's other threads (MPI's, OpenMP's) do
 * not block them, and the kernel may hand a signal to any of them. */
void mb_tool_hold_signals(void);
void mb_tool_release_signals(void);

/* RC is 0, -1 (error in mb_err), or MB_CLI_EXIT. Returns the process exit status.
 * Standard output whose reader has gone (EPIPE) gives status 1 without a message. */
int mb_tool_end(int rc);

#endif /* MB_CORE_TOOL_H */
