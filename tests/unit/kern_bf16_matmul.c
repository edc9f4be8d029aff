/* tests/unit/kern_bf16_matmul.c - the op table's matmul_bf16 on the CPU against PyTorch.
 *
 * Every transpose combination x sizes 1, 3, 17, 67, 130, 1000+ x packed and padded leading
 * dimensions x alpha/beta (1/0, 1/1, 0.5/-2, and 2/0 over a C full of NaN, which beta 0
 * must not read), operands bf16 of values up to 300 and C up to 1e5 (a real layer's
 * magnitudes), the padding of A and B filled with NaN (never read) and of C with a
 * sentinel (never written). tests/oracle/bf16_ops.py gives the exact answer (float64 of
 * the bf16 values) and torch.matmul's. Each product of two bf16 is exact in fp32, so the
 * only error is the fp32 summation, alpha and beta; the bound is the classic one for a
 * K-term fp32 sum in any order:
 *     |mb - exact| <= (k + 3) u (|alpha| |op(A)| |op(B)| + |beta| |C|),   u = 2^-24,
 * and the worst ratio to it is printed beside torch's fp32 result's own.
 *
 * Both paths are checked: oneDNN (the default where it has a native bf16 implementation)
 * and the portable one (widen + OpenBLAS, forced by the test hook). The op table's result
 * is bitwise the path it claims to take (oneDNN's or, where oneDNN has none, as under
 * ONEDNN_MAX_CPU_ISA=AVX2 in t9120, the portable one; on a CPU with AVX512-BF16 it must
 * be oneDNN's), and the same call twice gives the same bits (the trainer's bitwise resume
 * needs it). The two paths are NOT bitwise equal
 * to each other (different summation orders); how many elements differ is printed.
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
#include "tests/lib/oracle.h"
#include "tests/lib/tap.h"

#define U 5.9604644775390625e-8 /* 2^-24, fp32's unit roundoff */
#define SENTINEL 12345.0f

static const struct mb_ops *ops;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

struct mcase {
    char name[32];
    bool ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
    uint16_t *a, *b;
    float *c0;
    float *got[2]; /* [0] default path, [1] portable */
};

static double unif(void) /* [0, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static uint16_t bf16_of(float x)
{
    uint16_t h;
    mb_cpu_bf16_round_portable(&h, &x, 1);
    return h;
}

static void *xcalloc(int64_t n, size_t size)
{
    void *p = calloc((size_t)(n > 0 ? n : 1), size);
    if (!p)
        abort();
    return p;
}

/* A stored ROWS x COLS bf16 matrix with leading dimension LD: values up to 300, the
 * padding NaN. */
static uint16_t *operand(int64_t rows, int64_t cols, int64_t ld)
{
    uint16_t *x = xcalloc(rows * ld, sizeof *x);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < ld; c++)
            x[r * ld + c] = c < cols ? bf16_of((float)((2 * unif() - 1) * 300)) : 0x7fc0;
    return x;
}

static float *out_copy(const struct mcase *c)
{
    float *x = xcalloc(c->m * c->ldc, sizeof *x);
    memcpy(x, c->c0, (size_t)(c->m * c->ldc) * sizeof *x);
    return x;
}

static void call(const struct mcase *c, float *out)
{
    ops->matmul_bf16(ops->exec, c->ta, c->tb, c->m, c->n, c->k, c->alpha, c->a, c->lda, c->b,
                     c->ldb, c->beta, out, c->ldc);
}

static int npy_out(const char *name, const char *what, enum mb_npy_dtype dt, int64_t n,
                   const void *data)
{
    char path[96];
    int64_t shape[1] = {n};
    snprintf(path, sizeof path, "%s.%s.npy", name, what);
    return mb_npy_write(path, dt, 1, shape, data);
}

static void make_case(struct mcase *c, int idx, bool ta, bool tb, const int64_t *mnk, bool pad,
                      int ab, FILE *manifest)
{
    static const float alphas[] = {1, 1, 0.5f, 2}, betas[] = {0, 1, -2, 0};

    snprintf(c->name, sizeof c->name, "c%03d", idx);
    c->ta = ta, c->tb = tb;
    c->m = mnk[0], c->n = mnk[1], c->k = mnk[2];
    int64_t a_cols = ta ? c->m : c->k, b_cols = tb ? c->k : c->n;
    c->lda = a_cols + (pad ? 3 : 0);
    c->ldb = b_cols + (pad ? 7 : 0);
    c->ldc = c->n + (pad ? 5 : 0);
    c->alpha = alphas[ab], c->beta = betas[ab];
    c->a = operand(ta ? c->k : c->m, a_cols, c->lda);
    c->b = operand(tb ? c->n : c->k, b_cols, c->ldb);
    c->c0 = xcalloc(c->m * c->ldc, sizeof *c->c0);
    for (int64_t r = 0; r < c->m; r++)
        for (int64_t j = 0; j < c->ldc; j++)
            c->c0[r * c->ldc + j] = j >= c->n ? SENTINEL
                                  : ab == 3  ? NAN
                                             : (float)((2 * unif() - 1) * 1e5);
    if (npy_out(c->name, "a", MB_NPY_U2, (ta ? c->k : c->m) * c->lda, c->a) < 0 ||
        npy_out(c->name, "b", MB_NPY_U2, (tb ? c->n : c->k) * c->ldb, c->b) < 0 ||
        npy_out(c->name, "c", MB_NPY_F4, c->m * c->ldc, c->c0) < 0)
        abort();
    fprintf(manifest, "%s %d %d %lld %lld %lld %lld %lld %lld %.9g %.9g\n", c->name, ta, tb,
            (long long)c->m, (long long)c->n, (long long)c->k, (long long)c->lda,
            (long long)c->ldb, (long long)c->ldc, c->alpha, c->beta);
}

static double *load(const struct mcase *c, const char *what)
{
    char path[96];
    struct mb_npy a;
    snprintf(path, sizeof path, "%s.%s.npy", c->name, what);
    if (mb_npy_read(path, &a) < 0 || a.dtype != MB_NPY_F8 || a.count != c->m * c->n) {
        if (a.dtype == MB_NPY_F8)
            mb_npy_free(&a);
        return NULL;
    }
    double *x = xcalloc(a.count, sizeof *x);
    memcpy(x, a.data, (size_t)a.count * sizeof *x);
    mb_npy_free(&a);
    return x;
}

/* The worst |x - ref| / bound over case C (inf when x is NaN or the padding moved). */
static double worst_ratio(const struct mcase *c, const float *x, const double *ref,
                          const double *bnd, bool stored_c)
{
    double worst = 0;
    for (int64_t r = 0; r < c->m; r++)
        for (int64_t j = 0; j < (stored_c ? c->ldc : c->n); j++) {
            double v = stored_c ? x[r * c->ldc + j] : x[r * c->n + j];
            if (j >= c->n) {
                worst = v == SENTINEL ? worst : INFINITY;
                continue;
            }
            int64_t i = r * c->n + j;
            double tol = (double)(c->k + 3) * U * bnd[i] + 1e-30;
            double e = isnan(v) ? INFINITY : fabs(v - ref[i]) / tol;
            worst = e > worst ? e : worst;
        }
    return worst;
}

static const int64_t shapes[][3] = {
    {1, 1, 1}, {3, 17, 5}, {17, 3, 1000}, {130, 1030, 67}, {1031, 67, 130},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))
#define NCASES (4 * NSHAPES * 2 * 4)

static struct mcase cases[NCASES];

/* The op table's path: oneDNN's where it has a native bf16 matmul, else portable. Each
 * case's default result must be bitwise that path's, and the same twice. */
static void check_paths(void)
{
    const char *impl = mb_cpu_matmul_bf16_dnnl_impl(false, true, 1024, 1408, 512, 512, 512, 1408);
    int not_path = 0, not_twice = 0;
    int64_t differ = 0, total = 0;

    tap_diag("matmul_bf16 path: %s%s", impl ? "oneDNN " : "portable (oneDNN has no native bf16 "
             "matmul here)", impl ? impl : "");
    /* with AVX512-BF16 and oneDNN left alone, its bf16 kernels must be the ones taken */
    if (mb_cpu_bf16_have_avx512() && !getenv("ONEDNN_MAX_CPU_ISA"))
        ok(impl != NULL, "AVX512-BF16 CPU: oneDNN's native bf16 matmul is taken (%s)",
           impl ? impl : "none");
    for (int i = 0; i < NCASES; i++) {
        struct mcase *c = &cases[i];
        float *again = out_copy(c), *path = out_copy(c);
        size_t bytes = (size_t)(c->m * c->ldc) * sizeof *again;

        call(c, again);
        not_twice += memcmp(again, c->got[0], bytes) != 0;
        if (!impl || !mb_cpu_matmul_bf16_dnnl(c->ta, c->tb, c->m, c->n, c->k, c->alpha, c->a,
                                              c->lda, c->b, c->ldb, c->beta, path, c->ldc))
            mb_cpu_matmul_bf16_portable(c->ta, c->tb, c->m, c->n, c->k, c->alpha, c->a,
                                        c->lda, c->b, c->ldb, c->beta, path, c->ldc);
        not_path += memcmp(path, c->got[0], bytes) != 0;
        for (int64_t e = 0; e < c->m * c->ldc; e++)
            differ += memcmp(&c->got[0][e], &c->got[1][e], sizeof(float)) != 0;
        total += c->m * c->n;
        free(path);
        free(again);
    }
    ok(not_twice == 0, "the same call twice gives the same bits (%d of %d cases differ)",
       not_twice, NCASES);
    ok(not_path == 0, "the op table's result is bitwise the %s path's (%d cases differ)",
       impl ? "oneDNN" : "portable", not_path);
    tap_diag("default vs portable path: %lld of %lld elements differ in their last bits "
             "(summation order)", (long long)differ, (long long)total);
}

int main(void)
{
    char script[PATH_MAX];
    int idx = 0;

    omp_set_num_threads(2);
    ops = mb_ops_cpu();
    if (!realpath("tests/oracle/bf16_ops.py", script)) {
        ok(0, "tests/oracle/bf16_ops.py found (run from the repository root)");
        return tap_done();
    }
    tap_enter_scratch_dir();
    FILE *manifest = fopen("manifest.txt", "w");
    if (!manifest)
        abort();
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < NSHAPES; s++)
            for (int pad = 0; pad < 2; pad++)
                for (int ab = 0; ab < 4; ab++) {
                    make_case(&cases[idx], idx, t & 2, t & 1, shapes[s], pad, ab, manifest);
                    idx++;
                }
    fclose(manifest);
    for (int p = 0; p < 2; p++) {
        mb_cpu_bf16_force_portable(p);
        for (int i = 0; i < NCASES; i++) {
            cases[i].got[p] = out_copy(&cases[i]);
            call(&cases[i], cases[i].got[p]);
        }
    }
    mb_cpu_bf16_force_portable(false);
    int rc = oracle_run(script, "matmul manifest.txt");
    if (!ok(rc == 0, "PyTorch oracle ran (tests/oracle/bf16_ops.py matmul, rc %d)", rc))
        return tap_done();
    for (int t = 0; t < 4; t++) {
        double worst[2] = {0, 0}, worst_torch = 0;
        bool read = true;
        for (int i = 0; i < NCASES; i++) {
            struct mcase *c = &cases[i];
            if (c->ta != (bool)(t & 2) || c->tb != (bool)(t & 1))
                continue;
            double *ref = load(c, "ref"), *bnd = load(c, "bnd"), *t32 = load(c, "t32");
            if (!ref || !bnd || !t32) {
                read = false;
                break;
            }
            for (int p = 0; p < 2; p++)
                worst[p] = fmax(worst[p], worst_ratio(c, c->got[p], ref, bnd, true));
            float *tf = xcalloc(c->m * c->n, sizeof *tf);
            for (int64_t e = 0; e < c->m * c->n; e++)
                tf[e] = (float)t32[e];
            worst_torch = fmax(worst_torch, worst_ratio(c, tf, ref, bnd, false));
            free(tf);
            free(ref), free(bnd), free(t32);
        }
        if (!read) {
            ok(0, "oracle outputs read");
            break;
        }
        const char *op = t == 0 ? "A B" : t == 1 ? "A B^T" : t == 2 ? "A^T B" : "A^T B^T";
        for (int p = 0; p < 2; p++)
            ok(worst[p] <= 1, "%s, %s path: %d cases within (k+3) u |A||B| of the exact result "
               "(worst %.3g of it; torch fp32 %.3g)", op, p ? "portable" : "default",
               NCASES / 4, worst[p], worst_torch);
    }
    check_paths();
    return tap_done();
}
