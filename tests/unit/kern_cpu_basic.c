/* tests/unit/kern_cpu_basic.c - the op table (cpu, then cpu-guarded): memory, matmul,
 * elementwise, bias, embedding and the grouped QKV layout, against plain double-precision
 * loops. Written once against the table: host data, the backend's copies (tests/lib/mirror.h). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern/ops.h"
#include "tests/lib/mirror.h"
#include "tests/lib/tap.h"

static const struct mb_ops *ops;
static struct mb_exec *ex;
static uint64_t rng_state = 88172645463325252ull;

static float urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *rand_buf(int64_t n)
{
    float *x = mirror_alloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = urand();
    return x;
}

/* The memory entries themselves, on backend memory seen only through the copies. */
static void test_memory(void)
{
    float *x = ops->alloc(ex, 13 * sizeof *x), h[13], back[13];
    mb_to_host_f32(ops, ex, back, x, 13);
    int zeroed = 1;
    for (int i = 0; i < 13; i++)
        zeroed &= back[i] == 0.0f;
    ok(x && ((uintptr_t)x & 63) == 0 && zeroed, "alloc: zeroed and 64-byte aligned");
    for (int i = 0; i < 13; i++)
        h[i] = (float)i + 0.5f;
    mb_from_host_f32(ops, ex, x, h, 13);
    mb_to_host_f32(ops, ex, back, x, 13);
    ok(memcmp(h, back, sizeof h) == 0, "from_host/to_host round trip");
    ops->zero(ex, x, 7);
    ops->sync(ex);
    mb_to_host_f32(ops, ex, back, x, 13);
    ok(back[6] == 0.0f && back[7] == 7.5f, "zero clears exactly n elements");
    int32_t ids[5] = { 3, -1, 7, 0, 2 }, ids_back[5];
    int32_t *d = ops->alloc(ex, sizeof ids);
    mb_from_host_typed(ops, ex, d, ids, 5, MB_DTYPE_I32);
    mb_to_host_typed(ops, ex, ids_back, d, 5, MB_DTYPE_I32);
    ok(memcmp(ids, ids_back, sizeof ids) == 0, "typed int32 copies round trip");
    ops->free(ex, d);
    ops->free(ex, x);
    ops->free(ex, NULL);
}

static void matmul_case(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                        float beta)
{
    int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    float *a = rand_buf((ta ? k : m) * lda), *b = rand_buf((tb ? n : k) * ldb);
    float *c = rand_buf(m * ldc);
    double *want = malloc((size_t)m * ldc * sizeof *want);

    for (int64_t i = 0; i < m * ldc; i++)
        want[i] = c[i];
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++)
                s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                     (tb ? b[j * ldb + p] : b[p * ldb + j]);
            want[i * ldc + j] = alpha * s + beta * c[i * ldc + j];
        }
    ops->matmul(ex, ta, tb, m, n, k, alpha, M(a), lda, M(b), ldb, beta, M(c), ldc);
    mirror_back();
    char what[96];
    snprintf(what, sizeof what, "matmul ta=%d tb=%d %lldx%lldx%lld alpha=%g beta=%g", ta, tb,
             (long long)m, (long long)n, (long long)k, alpha, beta);
    tap_close_to(what, c, want, m * ldc, 1e-5, 1e-5);
    mirror_free(a);
    mirror_free(b);
    mirror_free(c);
    free(want);
}

static void test_matmul(void)
{
    for (int t = 0; t < 4; t++)
        matmul_case(t & 1, t >> 1, 37, 29, 53, 1.0f, 0.0f);
    matmul_case(false, true, 5, 130, 17, 0.5f, 1.0f);
    matmul_case(true, false, 64, 3, 200, -2.0f, 0.25f);
}

/* C split across threads by rows (tall C) or by columns (wide C) holds the same bits as
 * one thread's single call: each element is still one sgemm over the whole K. */
static void matmul_split_case(bool ta, bool tb, int64_t m, int64_t n, int64_t k)
{
    float *a = rand_buf(m * k), *b = rand_buf(n * k);
    float *one = mirror_alloc((size_t)(m * n) * sizeof(float));
    float *two = mirror_alloc((size_t)(m * n) * sizeof(float));
    omp_set_num_threads(1);
    ops->matmul(ex, ta, tb, m, n, k, 1.0f, M(a), ta ? m : k, M(b), tb ? k : n, 0.0f, M(one), n);
    mirror_back();
    omp_set_num_threads(2);
    ops->matmul(ex, ta, tb, m, n, k, 1.0f, M(a), ta ? m : k, M(b), tb ? k : n, 0.0f, M(two), n);
    mirror_back();
    ok(memcmp(one, two, (size_t)(m * n) * sizeof(float)) == 0,
       "matmul ta=%d tb=%d %lldx%lldx%lld: same bits with 1 and 2 threads", ta, tb,
       (long long)m, (long long)n, (long long)k);
    mirror_free(a);
    mirror_free(b);
    mirror_free(one);
    mirror_free(two);
}

static void test_matmul_split(void)
{
    for (int t = 0; t < 4; t++) {
        matmul_split_case(t & 1, t >> 1, 300, 200, 72);  /* split by rows */
        matmul_split_case(t & 1, t >> 1, 100, 900, 72);  /* split by columns */
    }
}

static void test_elementwise(void)
{
    int64_t n = 40000 + 7; /* more than one parallel chunk, odd tail */
    float *x = rand_buf(n), *y = rand_buf(n);
    double *want = malloc((size_t)n * sizeof *want), ss = 0;

    for (int64_t i = 0; i < n; i++)
        want[i] = (double)y[i] + x[i];
    ops->add(ex, M(y), M(x), n);
    mirror_back();
    tap_close_to("add", y, want, n, 1e-7, 1e-7);
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    double got = ops->sumsq(ex, M(x), n);
    mirror_back();
    ok(fabs(got - ss) <= 1e-12 * ss, "sumsq in double (%.17g vs %.17g)", got, ss);
    omp_set_num_threads(1);
    double one = ops->sumsq(ex, M(x), n);
    mirror_back();
    omp_set_num_threads(2);
    ok(one == got, "sumsq: same bits with 1 and 2 threads");
    free(want);
    mirror_free(x);
    mirror_free(y);
}

static void test_bias(void)
{
    int64_t rows = 301, cols = 131;
    float *y = rand_buf(rows * cols), *b = rand_buf(cols), *db = rand_buf(cols);
    double *want = malloc((size_t)rows * cols * sizeof *want);

    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            want[r * cols + c] = (double)y[r * cols + c] + b[c];
    ops->add_bias(ex, M(y), M(b), rows, cols);
    mirror_back();
    tap_close_to("add_bias", y, want, rows * cols, 1e-7, 1e-7);
    for (int64_t c = 0; c < cols; c++) {
        want[c] = db[c];
        for (int64_t r = 0; r < rows; r++)
            want[c] += y[r * cols + c];
    }
    float *db1 = mirror_alloc((size_t)cols * sizeof *db1);
    memcpy(db1, db, (size_t)cols * sizeof *db);
    ops->bias_grad(ex, M(db), M(y), rows, cols);
    mirror_back();
    tap_close_to("bias_grad accumulates the column sums", db, want, cols, 1e-5, 1e-5);
    omp_set_num_threads(1);
    ops->bias_grad(ex, M(db1), M(y), rows, cols);
    mirror_back();
    omp_set_num_threads(2);
    ok(memcmp(db, db1, (size_t)cols * sizeof *db) == 0, "bias_grad: same bits with 1 and 2 threads");
    mirror_free(db1);
    free(want);
    mirror_free(y);
    mirror_free(b);
    mirror_free(db);
}

static void test_embedding(void)
{
    int64_t vocab = 11, dim = 150, rows = 257;
    float *table = rand_buf(vocab * dim), *out = rand_buf(rows * dim), *dout = rand_buf(rows * dim);
    float *dt = rand_buf(vocab * dim), *dt1 = mirror_alloc((size_t)vocab * dim * sizeof *dt1);
    int32_t *ids = mirror_alloc((size_t)rows * sizeof *ids);
    double *want = malloc((size_t)rows * dim * sizeof *want);
    float sc = 1.5f;

    for (int64_t r = 0; r < rows; r++)
        ids[r] = (int32_t)((r * 7 + r / 3) % vocab); /* every id repeats */
    for (int64_t i = 0; i < rows * dim; i++)
        want[i] = (double)table[ids[i / dim] * dim + i % dim] * sc;
    ops->embedding_fwd(ex, M(out), M(table), M(ids), rows, dim, sc, false);
    mirror_back();
    tap_close_to("embedding_fwd", out, want, rows * dim, 1e-7, 0);
    for (int64_t i = 0; i < rows * dim; i++)
        want[i] += (double)table[ids[i / dim] * dim + i % dim] * sc;
    ops->embedding_fwd(ex, M(out), M(table), M(ids), rows, dim, sc, true);
    mirror_back();
    tap_close_to("embedding_fwd accumulate", out, want, rows * dim, 1e-7, 0);
    ops->copy(ex, M(dt1), M(dt), vocab * dim);
    mirror_back();
    for (int64_t i = 0; i < vocab * dim; i++)
        want[i] = dt[i];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < dim; c++)
            want[ids[r] * dim + c] += (double)dout[r * dim + c] * sc;
    ops->embedding_bwd(ex, M(dt), M(dout), M(ids), rows, dim, sc);
    mirror_back();
    tap_close_to("embedding_bwd accumulates repeated ids", dt, want, vocab * dim, 1e-5, 1e-5);
    omp_set_num_threads(1);
    ops->embedding_bwd(ex, M(dt1), M(dout), M(ids), rows, dim, sc);
    mirror_back();
    omp_set_num_threads(2);
    ok(memcmp(dt, dt1, (size_t)vocab * dim * sizeof *dt) == 0,
       "embedding_bwd: same bits with 1 and 2 threads");
    mirror_free(ids);
    free(want);
    mirror_free(table);
    mirror_free(out);
    mirror_free(dout);
    mirror_free(dt);
    mirror_free(dt1);
}

/* formats.md 5.2 by hand: nH=4, nKV=2 (g=2), d=2, B=1, T=2. Each fused value encodes
 * 100*t + 10*slot + element, slots per row: q0 q1 k0 v0 q2 q3 k1 v1. */
static void test_qkv_layout(void)
{
    struct mb_attn_shape s = {.batch = 1, .seq = 2, .heads = 4, .kv_heads = 2, .head_dim = 2};
    float *qkv = mirror_alloc(32 * sizeof(float)), *q = mirror_alloc(16 * sizeof(float));
    float *k = mirror_alloc(8 * sizeof(float)), *v = mirror_alloc(8 * sizeof(float));
    float *back = mirror_alloc(32 * sizeof(float));
    static const int qslot[4] = {0, 1, 4, 5}, kslot[2] = {2, 6}, vslot[2] = {3, 7};
    int bad = 0;

    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 16; i++)
            qkv[t * 16 + i] = (float)(100 * t + 10 * (i / 2) + i % 2);
    ops->qkv_split(ex, M(q), M(k), M(v), M(qkv), MS(&s));
    mirror_back();
    for (int t = 0; t < 2; t++)
        for (int e = 0; e < 2; e++) {
            for (int h = 0; h < 4; h++) /* q [B, nH, T, d] */
                bad += q[(h * 2 + t) * 2 + e] != 100 * t + 10 * qslot[h] + e;
            for (int h = 0; h < 2; h++) {
                bad += k[(h * 2 + t) * 2 + e] != 100 * t + 10 * kslot[h] + e;
                bad += v[(h * 2 + t) * 2 + e] != 100 * t + 10 * vslot[h] + e;
            }
        }
    is_int(bad, 0, "qkv_split: grouped layout q0 q1 k0 v0 q2 q3 k1 v1 per token");
    memset(back, 0xff, 32 * sizeof(float));
    ops->qkv_merge(ex, M(back), M(q), M(k), M(v), MS(&s));
    mirror_back();
    ok(memcmp(back, qkv, 32 * sizeof(float)) == 0, "qkv_merge inverts qkv_split");
    mirror_free(qkv);
    mirror_free(q);
    mirror_free(k);
    mirror_free(v);
    mirror_free(back);
}

static void test_qkv_gqa_round_trip(void)
{
    struct mb_attn_shape s = {.batch = 3, .seq = 5, .heads = 6, .kv_heads = 3, .head_dim = 4};
    int64_t width = (6 + 2 * 3) * 4, rows = 15;
    float *qkv = rand_buf(rows * width), *back = rand_buf(rows * width);
    float *q = rand_buf(rows * 24), *k = rand_buf(rows * 12), *v = rand_buf(rows * 12);

    ops->qkv_split(ex, M(q), M(k), M(v), M(qkv), MS(&s));
    mirror_back();
    /* head 3 of batch 2 at t=4 is group 1, slot 1: fused offset (1*4 + 1)*4 */
    ok(memcmp(q + ((2 * 6 + 3) * 5 + 4) * 4, qkv + (2 * 5 + 4) * width + 5 * 4, 16) == 0 &&
       memcmp(v + ((2 * 3 + 2) * 5 + 1) * 4, qkv + (2 * 5 + 1) * width + 11 * 4, 16) == 0,
       "qkv_split: B=3, nH=6, nKV=3 spot checks");
    ops->qkv_merge(ex, M(back), M(q), M(k), M(v), MS(&s));
    mirror_back();
    ok(memcmp(back, qkv, (size_t)rows * width * sizeof *qkv) == 0,
       "qkv_merge(qkv_split(x)) == x for B=3, nH=6, nKV=3");
    mirror_free(qkv);
    mirror_free(back);
    mirror_free(q);
    mirror_free(k);
    mirror_free(v);
}

int main(void)
{
    omp_set_num_threads(2);
    const char *backends[] = { "cpu", "cpu-guarded" };
    for (int i = 0; i < 2; i++) {
        ops = mb_ops_find(backends[i], "test");
        ex = ops->exec;
        mirror_use(ops);
        tap_diag("backend %s", backends[i]);
        is_str(ops->name, backends[i], "backend name");
        ok(ops->host_memory == (i == 0), "host_memory: the CPU's only");
        test_memory();
        test_matmul();
        test_matmul_split();
        test_elementwise();
        test_bias();
        test_embedding();
        test_qkv_layout();
        test_qkv_gqa_round_trip();
    }
    return tap_done();
}
