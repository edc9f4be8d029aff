/* tests/unit/kern_cpu_scratch.c - the CPU context's scratch arena (kern/cpu/scratch.c):
 * one 64-byte aligned buffer per OpenMP thread, kept between calls, grown when a call asks
 * for more, with slots added when the team grows. Then the kernels that use it
 * (attention forward and backward, xent with soft-capping) give the same bits whatever the
 * thread count, the arena having been used and regrown in between. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kern/cpu/internal.h"
#include "kern/ops.h"
#include "tests/lib/tap.h"

static bool aligned64(const void *p)
{
    return ((uintptr_t)p & 63) == 0;
}

/* Each thread of a team of N takes BYTES; the pointers land in GOT[0..N). */
static void team_take(struct mb_exec *ex, int n, size_t bytes, void **got)
{
    omp_set_num_threads(n);
    mb_cpu_scratch_ready(ex);
#pragma omp parallel num_threads(n)
    {
        void *p = mb_cpu_scratch(ex, bytes);
        memset(p, 0xa5, bytes); /* all of it is ours (ASan/valgrind would say otherwise) */
        got[omp_get_thread_num()] = p;
    }
}

static void test_arena(void)
{
    struct mb_exec ex = { .threads = 2 };
    void *a[4] = { 0 }, *b[4] = { 0 };

    team_take(&ex, 2, 100, a);
    ok(ex.nscratch == 2, "two threads: two slots (%d)", ex.nscratch);
    ok(a[0] && a[1] && a[0] != a[1], "each thread its own buffer");
    ok(aligned64(a[0]) && aligned64(a[1]), "64-byte aligned");
    team_take(&ex, 2, 64, b);
    ok(b[0] == a[0] && b[1] == a[1], "a smaller request reuses the buffer");
    team_take(&ex, 4, 5000, b);
    ok(ex.nscratch == 4, "a team of four: slots added (%d)", ex.nscratch);
    int distinct = 1, al = 1;
    for (int i = 0; i < 4; i++) {
        al &= b[i] != NULL && aligned64(b[i]);
        for (int j = 0; j < i; j++)
            distinct &= b[i] != b[j];
    }
    ok(distinct && al, "four distinct aligned buffers of 5000 bytes");
    team_take(&ex, 1, 5000, a);
    ok(a[0] == b[0], "outside a team the caller is thread 0: its buffer");
    mb_cpu_scratch_release(&ex);
    ok(ex.nscratch == 0 && !ex.scratch, "released");
}

static float *fill(int64_t n, float amp, uint64_t *state)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        x[i] = amp * (float)((*state >> 40) * (2.0 / 16777216.0) - 1.0);
    }
    return x;
}

/* Attention fwd + bwd with THREADS threads, into OUT (out, dq, dk, dv one after another). */
static void attention_run(const struct mb_ops *ops, int threads, const struct mb_attn_shape *s,
                          float *const in[4], float *out)
{
    int64_t nq = s->batch * s->heads * s->seq * s->head_dim;
    int64_t nkv = s->batch * s->kv_heads * s->seq * s->head_dim;
    float *lse = malloc((size_t)(s->batch * s->heads * s->seq) * sizeof *lse);

    omp_set_num_threads(threads);
    ops->attention_fwd(ops->exec, out, lse, in[0], in[1], in[2], s);
    ops->attention_bwd(ops->exec, out + nq, out + 2 * nq, out + 2 * nq + nkv, in[3], in[0],
                       in[1], in[2], out, lse, s);
    free(lse);
}

static void test_kernels_any_team(void)
{
    const struct mb_ops *ops = mb_ops_find("cpu", "test");
    struct mb_attn_shape s = { .batch = 2, .seq = 150, .heads = 4, .kv_heads = 2,
                               .head_dim = 32, .scale = 0.17f };
    int64_t nq = s.batch * s.heads * s.seq * s.head_dim;
    int64_t nkv = s.batch * s.kv_heads * s.seq * s.head_dim, nout = 2 * nq + 2 * nkv;
    uint64_t st = 0x9e3779b97f4a7c15ull;
    float *in[4] = { fill(nq, 2.0f, &st), fill(nkv, 2.0f, &st), fill(nkv, 1.0f, &st),
                     fill(nq, 1.0f, &st) };
    float *ref = malloc((size_t)nout * sizeof *ref), *got = malloc((size_t)nout * sizeof *got);

    attention_run(ops, 1, &s, in, ref);
    int same = 1;
    for (int t = 2; t <= 4; t++) {
        attention_run(ops, t, &s, in, got);
        same &= memcmp(ref, got, (size_t)nout * sizeof *ref) == 0;
    }
    attention_run(ops, 2, &s, in, got);
    same &= memcmp(ref, got, (size_t)nout * sizeof *ref) == 0;
    ok(same, "attention fwd+bwd: the same bits with 1, 2, 3, 4 and again 2 threads");

    int64_t rows = 37, vocab = 3001;
    float *z = fill(rows * vocab, 30.0f, &st), *z1 = malloc((size_t)rows * vocab * sizeof *z1);
    float loss1[37], loss2[37];
    int32_t target[37];
    for (int64_t r = 0; r < rows; r++)
        target[r] = (int32_t)((r * 811) % vocab);
    memcpy(z1, z, (size_t)rows * vocab * sizeof *z);
    omp_set_num_threads(1);
    ops->xent(ops->exec, z1, loss1, target, NULL, rows, vocab, 20.0f, 1.0f);
    omp_set_num_threads(3);
    ops->xent(ops->exec, z, loss2, target, NULL, rows, vocab, 20.0f, 1.0f);
    ok(memcmp(z, z1, (size_t)rows * vocab * sizeof *z) == 0 &&
           memcmp(loss1, loss2, sizeof loss1) == 0,
       "xent with soft-capping: the same loss and gradient bits with 1 and 3 threads");
    for (int i = 0; i < 4; i++)
        free(in[i]);
    free(ref);
    free(got);
    free(z);
    free(z1);
}

int main(void)
{
    test_arena();
    test_kernels_any_team();
    return tap_done();
}
