/* kern/cpu/gemm_bf16.c - matmul_bf16 through oneDNN's matmul primitive.
 *
 * bf16 A and B, fp32 C; the transposes and leading dimensions become the operands'
 * strides, alpha an output scale and beta a sum post-op (C = alpha AB + beta C; beta 0
 * never reads C). oneDNN sums in fp32. Creating a primitive costs a JIT compile
 * (milliseconds), so each is kept in a small table keyed by everything it was made for:
 * transposes, sizes, leading dimensions, alpha, beta and the thread count. A training run
 * has a few dozen keys; past the table's size the oldest in a slot's probe run is dropped.
 * One mutex makes a call whole; the primitive itself runs on all the OpenMP threads.
 *
 * Which implementation oneDNN takes is its own choice per shape (ONEDNN_VERBOSE=1 prints
 * it): on this Zen 4 (AVX512-BF16, no AMX) "brg:avx512_core_bf16" for every training
 * shape. Where oneDNN has no bf16 matmul (2.6 refuses bf16 outright below AVX512, e.g. under
 * ONEDNN_MAX_CPU_ISA=AVX2) or only its reference loops, the key is remembered as not native
 * and the caller takes the portable path instead (bf16.c).
 *
 * Measured (1 thread, CPU time, the small Llama's and GPT-2 124M's training GEMMs with 1024
 * token rows): fp32 OpenBLAS 85-100 GFLOP/s, this path 145-190, 1.75-2.1x, except the
 * head's weight gradient (dy^T x with m = vocab) at 1.4-1.6x. Tried for the transposed-A
 * (weight gradient) shapes and kept out, because slower: computing C^T = op(B)^T op(A)^T
 * with a transposed destination (about 0.9x of fp32), and transposing A into a packed
 * copy first (no gain, sometimes a loss).
 *
 * Determinism: oneDNN splits the work by the thread count fixed when the primitive is made
 * (part of the key), and the same call gave the same bits every time at a fixed thread
 * count on every shape tried (tests/unit/kern_bf16_matmul.c runs each case twice; the
 * training shapes of both models, beta 1, at 2 threads too). Across thread counts the
 * bits may differ.
 */
#include <limits.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "kern/cpu/bf16.h"
#include "kern/cpu/internal.h"

#define SLOTS 128 /* primitives kept */
#define PROBE 8   /* slots tried from a key's home */

struct key {
    int64_t m, n, k, lda, ldb, ldc;
    uint32_t alpha, beta; /* the bits */
    int32_t threads;
    uint8_t ta, tb;
    uint8_t c_bf16; /* C is bf16 (matmul_bf16_rounded), else fp32 */
};

struct slot {
    bool used;
    bool native; /* false: oneDNN has only its reference implementation */
    struct key key;
    uint64_t last; /* call count when last used */
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static struct slot slots[SLOTS];
static uint64_t calls;

static void engine_init(void)
{
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        mb_log_warn("oneDNN: no CPU engine; bf16 matmuls take the portable path");
        engine = NULL;
    }
}

static uint64_t key_hash(const struct key *k)
{
    const unsigned char *p = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < sizeof *k; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static struct key make_key(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                           int64_t lda, int64_t ldb, float beta, int64_t ldc, bool c_bf16)
{
    struct key key;

    memset(&key, 0, sizeof key); /* the padding is hashed too */
    key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldb = ldb, key.ldc = ldc;
    memcpy(&key.alpha, &alpha, sizeof alpha);
    memcpy(&key.beta, &beta, sizeof beta);
    key.threads = omp_get_max_threads();
    key.ta = ta, key.tb = tb;
    key.c_bf16 = c_bf16;
    return key;
}

static void slot_free(struct slot *s)
{
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    if (s->a)
        dnnl_memory_destroy(s->a);
    if (s->b)
        dnnl_memory_destroy(s->b);
    if (s->c)
        dnnl_memory_destroy(s->c);
    memset(s, 0, sizeof *s);
}

/* A ROWS x COLS matrix of TYPE; stored transposed (COLS x ROWS, leading dimension LD)
 * when TRANS. */
static dnnl_status_t matrix_md(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int64_t ld,
                               bool trans, dnnl_data_type_t type)
{
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {trans ? 1 : ld, trans ? ld : 1};

    return dnnl_memory_desc_init_by_strides(md, 2, dims, type, strides);
}

static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, const struct key *k)
{
    float alpha, beta;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t st;

    memcpy(&alpha, &k->alpha, sizeof alpha);
    memcpy(&beta, &k->beta, sizeof beta);
    if ((st = dnnl_primitive_attr_create(attr)) != dnnl_success)
        return st;
    if (alpha != 1.0f && (st = dnnl_primitive_attr_set_output_scales(*attr, 1, 0, &alpha)))
        return st;
    if (beta == 0.0f)
        return dnnl_success;
    if ((st = dnnl_post_ops_create(&po)) == dnnl_success &&
        (st = dnnl_post_ops_append_sum(po, beta)) == dnnl_success)
        st = dnnl_primitive_attr_set_post_ops(*attr, po);
    if (po)
        dnnl_post_ops_destroy(po);
    return st;
}

/* The primitive (and its three memory objects, without data) for key K into S; S->native
 * false where oneDNN offers no implementation or only the reference one. */
static dnnl_status_t slot_make(struct slot *s, const struct key *k)
{
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    dnnl_status_t st;

    memset(s, 0, sizeof *s);
    s->key = *k;
    s->used = true;
    if ((st = matrix_md(&amd, k->m, k->k, k->lda, k->ta, dnnl_bf16)) ||
        (st = matrix_md(&bmd, k->k, k->n, k->ldb, k->tb, dnnl_bf16)) ||
        (st = matrix_md(&cmd, k->m, k->n, k->ldc, false, k->c_bf16 ? dnnl_bf16 : dnnl_f32)) ||
        (st = dnnl_matmul_desc_init(&desc, &amd, &bmd, NULL, &cmd)) ||
        (st = make_attr(&attr, k)) ||
        (st = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL)) ||
        (st = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl)))
        goto out;
    s->native = strncmp(impl, "ref", 3) != 0;
    if (s->native && ((st = dnnl_primitive_create(&s->prim, pd)) ||
                      (st = dnnl_memory_create(&s->a, &amd, engine, DNNL_MEMORY_NONE)) ||
                      (st = dnnl_memory_create(&s->b, &bmd, engine, DNNL_MEMORY_NONE)) ||
                      (st = dnnl_memory_create(&s->c, &cmd, engine, DNNL_MEMORY_NONE))))
        goto out;
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) {
        slot_free(s);
        s->key = *k;
        s->used = true; /* remembered as not native: asked once per key */
    }
    return st;
}

/* The slot for K, made on first use. */
static struct slot *slot_get(const struct key *k)
{
    uint64_t h = key_hash(k);
    struct slot *victim = NULL;

    calls++;
    for (int i = 0; i < PROBE; i++) {
        struct slot *s = &slots[(h + (uint64_t)i) % SLOTS];
        if (s->used && !memcmp(&s->key, k, sizeof *k)) {
            s->last = calls;
            return s;
        }
        if (!victim || !s->used || (victim->used && s->last < victim->last))
            victim = s;
    }
    if (victim->used)
        slot_free(victim);
    dnnl_status_t st = slot_make(victim, k);
    /* "unimplemented" is a CPU without bf16 support (oneDNN 2.6 then offers not even its
     * reference matmul): the portable path's job, nothing to say */
    if (st != dnnl_success && st != dnnl_unimplemented)
        mb_log_warn("oneDNN: no bf16 matmul for %lldx%lldx%lld (status %d); "
                    "taking the portable path", (long long)k->m, (long long)k->n,
                    (long long)k->k, (int)st);
    victim->last = calls;
    return victim;
}

static bool fits_int(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc)
{
    return m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
           ldc <= INT_MAX;
}

static bool run(struct slot *s, const uint16_t *a, const uint16_t *b, void *c)
{
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_SRC, s->a}, {DNNL_ARG_WEIGHTS, s->b}, {DNNL_ARG_DST, s->c}};

    return dnnl_memory_set_data_handle(s->a, (void *)a) == dnnl_success &&
           dnnl_memory_set_data_handle(s->b, (void *)b) == dnnl_success &&
           dnnl_memory_set_data_handle(s->c, c) == dnnl_success &&
           dnnl_primitive_execute(s->prim, stream, 3, args) == dnnl_success &&
           dnnl_stream_wait(stream) == dnnl_success;
}

/* The matmul of KEY on A, B and C through its primitive; false where oneDNN has none
 * (or too big a problem for its int sizes). */
static bool matmul_run(const struct key *key, const uint16_t *a, const uint16_t *b, void *c)
{
    if (!fits_int(key->m, key->n, key->k, key->lda, key->ldb, key->ldc))
        return false;
    pthread_once(&engine_once, engine_init);
    if (!engine)
        return false;
    bool done = false;

    pthread_mutex_lock(&lock);
    struct slot *s = slot_get(key);
    if (s->native) {
        done = run(s, a, b, c);
        MB_ASSERT(done); /* a made primitive that fails to run is a bug, not bad input */
    }
    pthread_mutex_unlock(&lock);
    return done;
}

bool mb_cpu_matmul_bf16_dnnl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                             const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                             float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return true;
    if (k == 0) /* C = beta C: the portable path's */
        return false;
    struct key key = make_key(ta, tb, m, n, k, alpha, lda, ldb, beta, ldc, false);
    return matmul_run(&key, a, b, c);
}

bool mb_cpu_matmul_bf16_rounded_dnnl(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                     const uint16_t *a, int64_t lda, const uint16_t *b,
                                     int64_t ldb, uint16_t *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return true;
    if (k == 0)
        return false;
    struct key key = make_key(ta, tb, m, n, k, 1.0f, lda, ldb, 0.0f, ldc, true);
    return matmul_run(&key, a, b, c);
}

const char *mb_cpu_matmul_bf16_dnnl_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                         int64_t lda, int64_t ldb, int64_t ldc)
{
    static char name[64];
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;

    pthread_once(&engine_once, engine_init);
    if (!engine || !fits_int(m, n, k, lda, ldb, ldc) ||
        matrix_md(&amd, m, k, lda, ta, dnnl_bf16) || matrix_md(&bmd, k, n, ldb, tb, dnnl_bf16) ||
        matrix_md(&cmd, m, n, ldc, false, dnnl_f32) ||
        dnnl_matmul_desc_init(&desc, &amd, &bmd, NULL, &cmd) ||
        dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL))
        return NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(name, sizeof name, "%s", impl ? impl : "?");
    dnnl_primitive_desc_destroy(pd);
    return strncmp(name, "ref", 3) ? name : NULL;
}
