/* tests/unit/kern_bf16_out.c - the ops with bf16 outputs: matmul_bf16_rounded,
 * act_fwd_bf16 and act_bwd_bf16 (kern/ops.h), on cpu and cpu-guarded (tests/lib/mirror.h),
 * each on the default path and on the portable one (the test hook, as on a CPU without
 * AVX512-BF16).
 *
 * Each op promises the bits of the fp32 path it replaces in training: matmul_bf16 then
 * convert, or convert, the fp32 activation op, convert. So each is held bitwise against
 * those ops of the same table, on the training shapes and on odd ones, with operands of
 * real magnitude: gates up to +-12 and a few far out (+-60, +-100, where exp saturates),
 * tiny and denormal values, zeros of both signs; GEMM operands up to 300. C's padding
 * must keep its sentinel. The activations are also held against PyTorch's ops and
 * autograd in float64 on the same bf16 inputs, rounded to bf16 (tests/oracle/bf16_ops.py
 * act): mb's fp32 result is a few fp32 ulps from the exact one, so after rounding the two
 * must agree to one bf16 ulp (or be noise around zero); how many differ is printed.
 */
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
#include "kern/cpu/bf16.h"
#include "kern/ops.h"
#include "tests/lib/mirror.h"
#include "tests/lib/oracle.h"
#include "tests/lib/tap.h"

#define SENTINEL 0x1234 /* bf16 bits in C's padding */

static const struct mb_ops *ops;
static struct mb_exec *ex;
static uint64_t rng = 0x853c49e6748fea9bull;
static char oracle[PATH_MAX]; /* tests/oracle/bf16_ops.py, found before the scratch dir */

static double unif(void) /* [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

static uint16_t bf16_of(float x)
{
    uint16_t h;
    mb_cpu_bf16_round_portable(&h, &x, 1);
    return h;
}

/* N bf16 values up to AMP in size, every 17th one of the specials. */
static uint16_t *bf16_values(int64_t n, float amp)
{
    static const uint16_t special[] = {
        0x4270 /* 60 */, 0xc270, 0x42c8 /* 100 */, 0xc2c8, 0x0001 /* denormal */, 0x8001,
        0x0000, 0x8000, 0x0d00 /* ~4e-31 */, 0x3f80 /* 1 */,
    };
    uint16_t *x = mirror_alloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = i % 17 == 5 ? special[(i / 17) % 10] : bf16_of((float)(unif() * amp));
    return x;
}

static float *f32_values(int64_t n, float amp)
{
    float *x = mirror_alloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(unif() * amp) * (i % 29 == 3 ? 1e4f : 1.0f);
    return x;
}

/* ---- activations ---- */

static const char *const act_names[] = {"swiglu", "geglu", "gelu"};

/* The fp32 op of KIND through the table (all pointers the backend's). */
static void act_fwd_f32(enum mb_act_kind kind, float *y, const float *x, int64_t rows,
                        int64_t inner)
{
    switch (kind) {
    case MB_ACT_SWIGLU: ops->swiglu_fwd(ex, y, x, rows, inner); break;
    case MB_ACT_GEGLU: ops->geglu_fwd(ex, y, x, rows, inner); break;
    case MB_ACT_GELU: ops->gelu_fwd(ex, y, x, rows * inner); break;
    }
}

static void act_bwd_f32(enum mb_act_kind kind, float *dx, const float *dy, const float *x,
                        int64_t rows, int64_t inner)
{
    switch (kind) {
    case MB_ACT_SWIGLU: ops->swiglu_bwd(ex, dx, dy, x, rows, inner); break;
    case MB_ACT_GEGLU: ops->geglu_bwd(ex, dx, dy, x, rows, inner); break;
    case MB_ACT_GELU: ops->gelu_bwd(ex, dx, dy, x, rows * inner); break;
    }
}

/* Elements of A and B (N bf16 bits) that differ at all. */
static int64_t bf16_differ(const uint16_t *a, const uint16_t *b, int64_t n)
{
    int64_t d = 0;
    for (int64_t i = 0; i < n; i++)
        d += a[i] != b[i];
    return d;
}

/* One check of N bf16 results GOT against WANT (bf16 bits): within one bf16 ulp (2^-7
 * of the value) or 1e-9 of the tensor's largest value, for results that are rounding
 * noise around zero (the tanh form of GELU cancels to 0 where mb's e/(1+e) form keeps
 * a tiny value). */
static void bf16_close(const char *what, const uint16_t *got, const uint16_t *want, int64_t n)
{
    float *g = malloc((size_t)n * sizeof *g);
    double *w = malloc((size_t)n * sizeof *w), top = 0;
    char title[200];
    for (int64_t i = 0; i < n; i++) {
        uint32_t gu = (uint32_t)got[i] << 16, wu = (uint32_t)want[i] << 16;
        float wf;
        memcpy(&g[i], &gu, sizeof gu);
        memcpy(&wf, &wu, sizeof wu);
        w[i] = wf;
        top = fmax(top, fabs(w[i]));
    }
    snprintf(title, sizeof title, "%s (%lld of %lld differ)", what,
             (long long)bf16_differ(got, want, n), (long long)n);
    tap_close_to(title, g, w, n, 0x1p-7, 1e-9 * top);
    free(g);
    free(w);
}

/* The activation cases held against PyTorch (the cpu backend's default path only: the
 * others are bitwise these): their inputs and mb's results are saved as NAME.*.npy, and
 * one oracle run takes them all. */
struct torch_case {
    char name[16];
    enum mb_act_kind kind;
    int64_t rows, inner;
};

static struct torch_case torch_cases[8];
static int ntorch;

static void npy_save(const char *name, const char *what, enum mb_npy_dtype dt, int64_t n,
                     const void *data)
{
    char path[64];
    int64_t shape[1] = {n};
    snprintf(path, sizeof path, "%s.%s.npy", name, what);
    if (mb_npy_write(path, dt, 1, shape, data) < 0)
        abort();
}

static void save_for_torch(enum mb_act_kind kind, int64_t rows, int64_t inner,
                           const uint16_t *x, const float *dy, const uint16_t *y,
                           const uint16_t *dx)
{
    if (ntorch == (int)(sizeof torch_cases / sizeof *torch_cases))
        abort(); /* a test bug: more cases than room */
    struct torch_case *c = &torch_cases[ntorch++];
    int64_t nx = rows * mb_act_x_cols(kind, inner), ny = rows * inner;
    snprintf(c->name, sizeof c->name, "act%d", ntorch);
    c->kind = kind, c->rows = rows, c->inner = inner;
    npy_save(c->name, "x", MB_NPY_U2, nx, x);
    npy_save(c->name, "dy", MB_NPY_F4, ny, dy);
    npy_save(c->name, "y", MB_NPY_U2, ny, y);
    npy_save(c->name, "dx", MB_NPY_U2, nx, dx);
}

/* NAME.WHAT.npy, N bf16 bits, into A (false if it is not that). */
static bool npy_load_u2(const char *name, const char *what, int64_t n, struct mb_npy *a)
{
    char path[64];
    snprintf(path, sizeof path, "%s.%s.npy", name, what);
    return mb_npy_read(path, a) == 0 && a->dtype == MB_NPY_U2 && a->count == n;
}

static void compare_with_torch(const struct torch_case *c)
{
    int64_t nx = c->rows * mb_act_x_cols(c->kind, c->inner), ny = c->rows * c->inner;
    struct mb_npy y = {0}, dx = {0}, ty = {0}, tdx = {0};
    const char *kind = act_names[c->kind];
    char what[160];

    if (ok(npy_load_u2(c->name, "y", ny, &y) && npy_load_u2(c->name, "dx", nx, &dx) &&
           npy_load_u2(c->name, "ty", ny, &ty) && npy_load_u2(c->name, "tdx", nx, &tdx),
           "%s %s: results and oracle outputs read", c->name, kind)) {
        snprintf(what, sizeof what, "act_fwd_bf16 %s %lldx%lld vs torch, float64 on the bf16 "
                 "inputs, rounded", kind, (long long)c->rows, (long long)c->inner);
        bf16_close(what, y.data, ty.data, ny);
        snprintf(what, sizeof what, "act_bwd_bf16 %s %lldx%lld vs torch autograd, float64 on "
                 "the bf16 inputs, rounded", kind, (long long)c->rows, (long long)c->inner);
        bf16_close(what, dx.data, tdx.data, nx);
    }
    mb_npy_free(&y), mb_npy_free(&dx), mb_npy_free(&ty), mb_npy_free(&tdx);
}

static void act_vs_torch(void)
{
    FILE *manifest = fopen("act.txt", "w");
    if (!manifest)
        abort();
    for (int i = 0; i < ntorch; i++)
        fprintf(manifest, "%s %s %lld %lld\n", torch_cases[i].name,
                act_names[torch_cases[i].kind], (long long)torch_cases[i].rows,
                (long long)torch_cases[i].inner);
    fclose(manifest);
    int rc = oracle_run(oracle, "act act.txt");
    if (!ok(rc == 0, "PyTorch oracle ran (tests/oracle/bf16_ops.py act, rc %d)", rc))
        return;
    for (int i = 0; i < ntorch; i++)
        compare_with_torch(&torch_cases[i]);
}

static void test_act(enum mb_act_kind kind, int64_t rows, int64_t inner, const char *path,
                     bool torch)
{
    int64_t nx = rows * mb_act_x_cols(kind, inner), ny = rows * inner;
    uint16_t *x = bf16_values(nx, 12.0f), *y = mirror_alloc((size_t)ny * 2);
    uint16_t *dx = mirror_alloc((size_t)nx * 2), *y_ref = mirror_alloc((size_t)ny * 2);
    uint16_t *dx_ref = mirror_alloc((size_t)nx * 2);
    float *dy = f32_values(ny, 1.0f), *xw = mirror_alloc((size_t)nx * 4);
    float *yw = mirror_alloc((size_t)ny * 4), *dxw = mirror_alloc((size_t)nx * 4);

    ops->act_fwd_bf16(ex, kind, M(y), M(x), rows, inner);
    ops->act_bwd_bf16(ex, kind, M(dx), M(dy), M(x), rows, inner);
    ops->convert(ex, M(xw), MB_DTYPE_F32, M(x), MB_DTYPE_BF16, nx);
    act_fwd_f32(kind, M(yw), M(xw), rows, inner);
    ops->convert(ex, M(y_ref), MB_DTYPE_BF16, M(yw), MB_DTYPE_F32, ny);
    act_bwd_f32(kind, M(dxw), M(dy), M(xw), rows, inner);
    ops->convert(ex, M(dx_ref), MB_DTYPE_BF16, M(dxw), MB_DTYPE_F32, nx);
    mirror_back();
    ok(!memcmp(y, y_ref, (size_t)ny * 2), "%s: act_fwd_bf16 %s %lldx%lld bitwise convert, "
       "%s_fwd, convert", path, act_names[kind], (long long)rows, (long long)inner,
       act_names[kind]);
    ok(!memcmp(dx, dx_ref, (size_t)nx * 2), "%s: act_bwd_bf16 %s %lldx%lld bitwise convert, "
       "%s_bwd, convert", path, act_names[kind], (long long)rows, (long long)inner,
       act_names[kind]);
    if (torch)
        save_for_torch(kind, rows, inner, x, dy, y, dx);
    void *bufs[] = {x, y, dx, y_ref, dx_ref, dy, xw, yw, dxw};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        mirror_free(bufs[i]);
}

/* ---- matmul_bf16_rounded ---- */

static void test_matmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, bool pad,
                        const char *path)
{
    int64_t lda = (ta ? m : k) + (pad ? 3 : 0), ldb = (tb ? k : n) + (pad ? 7 : 0);
    int64_t ldc = n + (pad ? 5 : 0);
    uint16_t *a = bf16_values((ta ? k : m) * lda, 300.0f), *b = bf16_values((tb ? n : k) * ldb, 300.0f);
    uint16_t *c = mirror_alloc((size_t)(m * ldc) * 2), *c_ref = mirror_alloc((size_t)(m * n) * 2);
    float *c32 = mirror_alloc((size_t)(m * n) * 4);
    bool padding_kept = true;

    for (int64_t i = 0; i < m * ldc; i++)
        c[i] = SENTINEL;
    ops->matmul_bf16_rounded(ex, ta, tb, m, n, k, M(a), lda, M(b), ldb, M(c), ldc);
    ops->matmul_bf16(ex, ta, tb, m, n, k, 1.0f, M(a), lda, M(b), ldb, 0.0f, M(c32), n);
    ops->convert(ex, M(c_ref), MB_DTYPE_BF16, M(c32), MB_DTYPE_F32, m * n);
    mirror_back();
    int64_t differ = 0;
    for (int64_t r = 0; r < m; r++) {
        differ += memcmp(c + r * ldc, c_ref + r * n, (size_t)n * 2) != 0;
        for (int64_t j = n; j < ldc; j++)
            padding_kept &= c[r * ldc + j] == SENTINEL;
    }
    ok(differ == 0 && padding_kept, "%s: matmul_bf16_rounded %s%s %lldx%lldx%lld%s bitwise "
       "matmul_bf16 then convert (%lld rows differ%s)", path, ta ? "A^T" : "A", tb ? " B^T" : " B",
       (long long)m, (long long)n, (long long)k, pad ? ", padded" : "", (long long)differ,
       padding_kept ? "" : ", C's padding written");
    mirror_free(a), mirror_free(b), mirror_free(c), mirror_free(c_ref), mirror_free(c32);
}

static void run_all(const char *backend, bool portable)
{
    static const int64_t shapes[][3] = {{1, 1, 1}, {3, 17, 5}, {130, 67, 1030}};
    char path[64];

    snprintf(path, sizeof path, "%s, %s path", backend, portable ? "portable" : "default");
    mb_cpu_bf16_force_portable(portable);
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            test_matmul(t & 2, t & 1, shapes[s][0], shapes[s][1], shapes[s][2], s == 2, path);
    /* the small Llama's fc1 forward and its weight gradient, the training shapes */
    test_matmul(false, true, 1024, 2816, 512, false, path);
    test_matmul(true, false, 512, 1408, 1024, false, path);
    bool torch = !strcmp(backend, "cpu") && !portable;
    for (int kind = 0; kind < 3; kind++) {
        test_act(kind, 13, 37, path, torch);
        test_act(kind, 64, 700, path, torch); /* several threads' rows */
    }
    mb_cpu_bf16_force_portable(false);
}

int main(void)
{
    const char *backends[] = {"cpu", "cpu-guarded"};

    omp_set_num_threads(2);
    if (!realpath("tests/oracle/bf16_ops.py", oracle)) {
        ok(0, "tests/oracle/bf16_ops.py found (run from the repository root)");
        return tap_done();
    }
    tap_enter_scratch_dir();
    for (int b = 0; b < 2; b++) {
        ops = mb_ops_find(backends[b], "test");
        ex = ops->exec;
        mirror_use(ops);
        tap_diag("backend %s", backends[b]);
        run_all(backends[b], false);
        run_all(backends[b], true);
    }
    act_vs_torch();
    return tap_done();
}
