/* kern/guarded/internal.h - the guarded arena the cpu-guarded backend allocates from.
 *
 * Two reservations of the same size: the DEVICE one is PROT_NONE, and its addresses are
 * what alloc hands out; the WORK one is read-write, and the CPU kernels run on it, at the
 * same offset, so translating is D - device + work. Host code given a device address
 * faults on its first touch; the SIGSEGV handler (arena.c) names the address and prints
 * a backtrace.
 *
 * Allocations are page-aligned, with a page of gap, and never reuse addresses (freed
 * pages are given back), so a pointer into a freed allocation is caught like a host
 * pointer.
 */
#ifndef MB_KERN_GUARDED_INTERNAL_H
#define MB_KERN_GUARDED_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Map the arena and install the fault handler (once; exits 2 when it cannot). */
void mb_guarded_init(void);
/* BYTES zeroed bytes at a fresh device address; NULL + mb_err when the arena is full. */
void *mb_guarded_alloc(size_t bytes);
/* Free the allocation starting at P (NULL: nothing); anything else exits 2 naming OP. */
void mb_guarded_free(const char *op, void *p);
/* The work address of [P, P + BYTES) after checking that it lies inside one live
 * allocation; NULL P is returned as NULL when OPTIONAL, else an error. An error (a host
 * pointer, a freed one, an extent past the allocation's end) prints
 * "TOOL: error: cpu-guarded: OP: ARG: ..." with a backtrace and exits 2. */
void *mb_guarded_work(const char *op, const char *arg, const void *p, size_t bytes,
                      bool optional);

#endif /* MB_KERN_GUARDED_INTERNAL_H */
