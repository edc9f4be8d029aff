/* core/mem.h - allocation that stops the tool with the size on failure, and a growable
 * array.
 *
 * Out of memory is not an input error (style B.6): these print a sentence on stderr
 * ("mb-TOOL: error: out of memory: cannot allocate N bytes (N MiB) for WHAT"), remove
 * the tool's registered temporaries and exit with status 1 (under MPI the abort hook of
 * core/err.h stops every rank), so callers never check for NULL. The _for variants name
 * what the memory is for (a file, a tensor) when the caller knows.
 */
#ifndef MB_CORE_MEM_H
#define MB_CORE_MEM_H

#include <stddef.h>

#include "core/defs.h"

void *mb_xmalloc(size_t bytes);
void *mb_xcalloc(size_t n, size_t size);
void *mb_xrealloc(void *p, size_t bytes);
void *mb_xmalloc_for(size_t bytes, const char *what);
void *mb_xrealloc_for(void *p, size_t bytes, const char *what);
/* BYTES (rounded up to a multiple of 64) at a 64-byte aligned address; free() releases it. */
void *mb_xaligned64_for(size_t bytes, const char *what);
char *mb_xstrdup(const char *s);
char *mb_xstrndup(const char *s, size_t n);
/* A malloc'd string formatted as printf does. */
MB_PRINTF(1, 2) char *mb_xasprintf(const char *fmt, ...);

/* Grow *P (an array of SIZE-byte elements with capacity *CAP) to hold at least NEED. */
void mb_grow(void **p, size_t *cap, size_t need, size_t size);

#define MB_GROW(ptr, cap, need) mb_grow((void **)&(ptr), &(cap), (need), sizeof *(ptr))

#endif /* MB_CORE_MEM_H */
