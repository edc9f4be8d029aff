/* tests/lib/oracle.h - running a Python oracle (tests/oracle/) from a C unit test. */
#ifndef MB_TESTS_ORACLE_H
#define MB_TESTS_ORACLE_H

/* Run SCRIPT (an absolute path: tests run in a scratch directory) with ARGS (a shell
 * word list) under the oracle venv's python, $MB_CACHE/venv or else
 * ~/.cache/mb/venv (scripts/install-deps.sh makes it). Returns system()'s status. */
int oracle_run(const char *script, const char *args);

/* That python's path (a static buffer). */
const char *oracle_python(void);

#endif /* MB_TESTS_ORACLE_H */
