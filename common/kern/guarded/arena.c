/* kern/guarded/arena.c - the guarded arena: a PROT_NONE reservation and its read-write
 * twin, a bump allocator with a table of live allocations, the pointer check, and the
 * fault handler. */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "kern/guarded/internal.h"

/* Addresses reserved (twice; fewer when the system refuses so many): pages exist only
 * once written, and freed ones are given back, so this bounds the addresses a run may
 * ever allocate, not its memory. */
#define ARENA_MAX ((size_t)1 << 40)
#define ARENA_MIN ((size_t)1 << 30)
#define PAGE        ((size_t)4096)

struct span {
    size_t off;   /* from the start of the arena */
    size_t bytes; /* as asked (a page-rounded run of addresses is reserved) */
};

static struct {
    pthread_once_t once;
    pthread_mutex_t lock;
    size_t size;
    char *dev, *work;
    size_t top;           /* next free offset */
    struct span *live;    /* sorted by offset */
    size_t nlive, cap;
    struct sigaction old_segv;
} arena = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER };

static void trace(void)
{
    void *frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, 2);
}

/* Async-signal-safe output for the fault handler. */
static void put(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0)
            return;
        s += w, n -= (size_t)w;
    }
}

static void put_hex(uintptr_t v)
{
    char buf[2 + 16 + 1] = "0x";
    int i = 2;
    for (int shift = 60; shift >= 0; shift -= 4) {
        unsigned d = (unsigned)(v >> shift) & 15;
        if (d || i > 2 || shift == 0)
            buf[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    }
    buf[i] = 0;
    put(buf);
}

/* The live allocation holding offset OFF (its index), or -1. Caller holds the lock, or
 * is the fault handler of a process about to exit. */
static ptrdiff_t span_of(size_t off)
{
    size_t lo = 0, hi = arena.nlive;
    while (lo < hi) { /* first span starting after off */
        size_t mid = lo + (hi - lo) / 2;
        if (arena.live[mid].off <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    const struct span *s = &arena.live[lo - 1];
    return off <= s->off + s->bytes ? (ptrdiff_t)(lo - 1) : -1;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    char *a = si->si_addr;
    if (arena.dev && a >= arena.dev && a < arena.dev + arena.size) {
        put(mb_log_tool());
        put(": error: cpu-guarded: host code touched device memory at ");
        put_hex((uintptr_t)a);
        ptrdiff_t i = span_of((size_t)(a - arena.dev));
        if (i >= 0) {
            put(" (inside the allocation at ");
            put_hex((uintptr_t)(arena.dev + arena.live[i].off));
            put(")");
        }
        put("; only ops and the table's copies may; backtrace:\n");
        trace();
        _exit(2);
    }
    /* not ours: hand it to whoever had it (the default action when nobody did) */
    sigaction(SIGSEGV, &arena.old_segv, NULL);
    if (!(arena.old_segv.sa_flags & SA_SIGINFO) && arena.old_segv.sa_handler != SIG_DFL &&
        arena.old_segv.sa_handler != SIG_IGN)
        arena.old_segv.sa_handler(sig);
    else if (arena.old_segv.sa_flags & SA_SIGINFO)
        arena.old_segv.sa_sigaction(sig, si, uc);
    /* else: returning re-runs the access, which now takes the default action */
}

static void die(const char *what)
{
    fprintf(stderr, "%s: error: cpu-guarded: %s: %s\n", mb_log_tool(), what, strerror(errno));
    exit(2);
}

/* The two reservations: DEV, the addresses handed out, never accessible; WORK, where the
 * kernels run (anonymous memory, not a file: a ulimit -f must not limit the arena). */
static void arena_map(void)
{
    void *dev = MAP_FAILED, *work = MAP_FAILED;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    for (arena.size = ARENA_MAX; arena.size >= ARENA_MIN; arena.size /= 2) {
        dev = mmap(NULL, arena.size, PROT_NONE, flags, -1, 0);
        work = mmap(NULL, arena.size, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (dev != MAP_FAILED && work != MAP_FAILED)
            break;
        if (dev != MAP_FAILED)
            munmap(dev, arena.size);
        if (work != MAP_FAILED)
            munmap(work, arena.size);
    }
    if (dev == MAP_FAILED || work == MAP_FAILED)
        die("reserving the arena's addresses");
    arena.dev = dev, arena.work = work;
    arena.top = PAGE; /* offset 0 unused: no allocation starts at the arena's base */
    void *frame;
    backtrace(&frame, 1); /* loads libgcc now: the fault handler must not */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &arena.old_segv) < 0)
        die("installing the fault handler");
}

void mb_guarded_init(void)
{
    pthread_once(&arena.once, arena_map);
}

void *mb_guarded_alloc(size_t bytes)
{
    size_t run = (bytes + PAGE - 1) / PAGE * PAGE + PAGE; /* and a page of gap */
    pthread_mutex_lock(&arena.lock);
    if (run > arena.size - arena.top) {
        pthread_mutex_unlock(&arena.lock);
        mb_err_set(MB_E_IO, "cpu-guarded backend", "out of arena addresses allocating %zu bytes",
                   bytes);
        return NULL;
    }
    if (arena.nlive == arena.cap) {
        arena.cap = arena.cap ? 2 * arena.cap : 256;
        arena.live = mb_xrealloc(arena.live, arena.cap * sizeof *arena.live);
    }
    struct span s = { arena.top, bytes };
    arena.live[arena.nlive++] = s;
    arena.top += run;
    pthread_mutex_unlock(&arena.lock);
    return arena.dev + s.off;
}

static void fail(const char *op, const char *arg, const void *p, size_t bytes, const char *why)
{
    fflush(stdout);
    fprintf(stderr, "%s: error: cpu-guarded: %s: %s: %p (%zu bytes) %s; backtrace:\n",
            mb_log_tool(), op, arg, p, bytes, why);
    trace();
    exit(2);
}

void mb_guarded_free(const char *op, void *p)
{
    if (!p)
        return;
    char *d = p;
    pthread_mutex_lock(&arena.lock);
    ptrdiff_t i = d >= arena.dev && d < arena.dev + arena.size ? span_of((size_t)(d - arena.dev))
                                                                : -1;
    if (i < 0 || arena.dev + arena.live[i].off != d) {
        pthread_mutex_unlock(&arena.lock);
        fail(op, "p", p, 0, "is not the start of a live allocation of the device arena");
    }
    struct span s = arena.live[i];
    memmove(&arena.live[i], &arena.live[i + 1], (arena.nlive - (size_t)i - 1) * sizeof *arena.live);
    arena.nlive--;
    pthread_mutex_unlock(&arena.lock);
    /* give the pages back; the addresses are never handed out again */
    size_t run = (s.bytes + PAGE - 1) / PAGE * PAGE;
    if (run && madvise(arena.work + s.off, run, MADV_DONTNEED) < 0)
        die("freeing arena pages");
}

void *mb_guarded_work(const char *op, const char *arg, const void *p, size_t bytes,
                      bool optional)
{
    if (!p) {
        if (optional)
            return NULL;
        fail(op, arg, p, bytes, "is NULL");
    }
    const char *d = p;
    if (d < arena.dev || d >= arena.dev + arena.size)
        fail(op, arg, p, bytes, "is host memory, not the device arena's");
    size_t off = (size_t)(d - arena.dev);
    pthread_mutex_lock(&arena.lock);
    ptrdiff_t i = span_of(off);
    bool inside = i >= 0 && bytes <= arena.live[i].off + arena.live[i].bytes - off;
    pthread_mutex_unlock(&arena.lock);
    if (i < 0)
        fail(op, arg, p, bytes, "is in no live allocation of the device arena (freed?)");
    if (!inside)
        fail(op, arg, p, bytes, "runs past the end of its allocation");
    return arena.work + off;
}
