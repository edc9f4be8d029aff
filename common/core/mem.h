/* core/mem.h - allocation that aborts with the size on failure, and a growable array.
 *
 * Out of memory is not an input error (style B.6): these print the size asked for and
 * abort, so callers never check for NULL.
 */
#ifndef MB_CORE_MEM_H
#define MB_CORE_MEM_H

#include <stddef.h>

#include "core/defs.h"

void *mb_xmalloc(size_t bytes);
void *mb_xcalloc(size_t n, size_t size);
void *mb_xrealloc(void *p, size_t bytes);
char *mb_xstrdup(const char *s);
char *mb_xstrndup(const char *s, size_t n);
/* A malloc'd string formatted as printf does. */
MB_PRINTF(1, 2) char *mb_xasprintf(const char *fmt, ...);

/* Grow *P (an array of SIZE-byte elements with capacity *CAP) to hold at least NEED. */
void mb_grow(void **p, size_t *cap, size_t need, size_t size);

#define MB_GROW(ptr, cap, need) mb_grow((void **)&(ptr), &(cap), (need), sizeof *(ptr))

#endif /* MB_CORE_MEM_H */
