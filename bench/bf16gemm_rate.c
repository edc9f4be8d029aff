/*
 * bench/bf16gemm_rate.c - this machine's oneDNN bf16 matmul rate on the GEMMs of one
 * training step: the bf16 counterpart of bench/sgemm_rate.c.
 *
 *   bf16gemm_rate [-v] [-t THREADS] [-r REPEATS] [-m llama|gpt2|all]
 *
 * For the model's shapes (N = B*T = 1024 tokens; every linear layer y = x W^T with W
 * [out, in], row-major, as mb and PyTorch store it) it times the three GEMMs a linear layer
 * costs per step, bf16 operands and an f32 result (fp32 accumulation), the GEMMs of
 * Megatron's bf16_mixed and of mb's matmul_bf16:
 *     forward   Y[N,out]  = X[N,in]   W^T      (NoTrans, Trans)
 *     data grad dX[N,in]  = dY[N,out] W        (NoTrans, NoTrans)
 *     weight    dW[out,in]= dY^T X             (Trans, NoTrans)
 * each with oneDNN's matmul primitive (transposes given as strides, no reorder), each the
 * best of REPEATS runs, and prints one number: the GFLOP/s of the whole mix, each shape
 * weighted by how often one step uses it (sum of flops / sum of best times). The primitives
 * are created once per shape before the timing (a trainer caches them per shape), so the
 * time is the execution alone; beta = 0 as in sgemm_rate. -v prints each shape's rate and
 * oneDNN's implementation (its ISA, e.g. brg:avx512_core_bf16) on stderr. Model shapes are
 * those of bench/sgemm_rate.c and bench/torch_train.py.
 *
 * oneDNN's threads are OpenMP's (Debian's libdnnl is built with DNNL_CPU_RUNTIME=OMP):
 * -t sets omp_set_num_threads. Written against the oneDNN 2.x C API (Debian 12: 2.6.3).
 *
 * Build (bench/train_cpu does this):
 *   cc -O2 -fopenmp -o bf16gemm_rate bench/bf16gemm_rate.c -ldnnl
 */
#define _POSIX_C_SOURCE 200809L
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if DNNL_VERSION_MAJOR != 2
#error "bench/bf16gemm_rate.c is written against the oneDNN 2.x C API"
#endif

#define NTOK 1024 /* B=4 x T=256 */

/* one linear layer shape and how many times one step uses it */
struct shape {
    const char *name;
    int in, out, count;
};

/* small Llama: D=512, 8 layers, 8 heads, 2 query groups of E=64, F=1408 (SwiGLU), V=32000 */
static const struct shape llama[] = {
    {"llama qkv", 512, 512 + 2 * 2 * 64, 8},
    {"llama proj", 512, 512, 8},
    {"llama fc1", 512, 2 * 1408, 8},
    {"llama fc2", 1408, 512, 8},
    {"llama head", 512, 32000, 1},
};

/* GPT-2 124M: D=768, 12 layers, F=3072, V=50257 (tied head) */
static const struct shape gpt2[] = {
    {"gpt2 qkv", 768, 3 * 768, 12},
    {"gpt2 proj", 768, 768, 12},
    {"gpt2 fc1", 768, 3072, 12},
    {"gpt2 fc2", 3072, 768, 12},
    {"gpt2 head", 768, 50257, 1},
};

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static void check(dnnl_status_t st, const char *what)
{
    if (st != dnnl_success) {
        fprintf(stderr, "bf16gemm_rate: %s: oneDNN status %d\n", what, (int)st);
        exit(1);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *alloc_or_die(size_t bytes)
{
    void *p = malloc(bytes);
    if (!p) {
        fprintf(stderr, "bf16gemm_rate: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* n bf16 values in [-0.5, 0.5): the same pattern as sgemm_rate's, truncated to bf16 */
static uint16_t *filled_bf16(size_t n)
{
    uint16_t *p = alloc_or_die(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        float f = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        p[i] = (uint16_t)(u >> 16);
    }
    return p;
}

/*
 * A matrix of logical shape [rows, cols] stored row-major, or (trans) stored as the
 * row-major [cols, rows] matrix whose transpose it is: the transpose is in the strides.
 */
static dnnl_memory_desc_t matrix_md(int64_t rows, int64_t cols, int trans, dnnl_data_type_t dt)
{
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {cols, 1};
    if (trans) {
        strides[0] = 1;
        strides[1] = rows;
    }
    check(dnnl_memory_desc_init_by_strides(&md, 2, dims, dt, strides), "memory descriptor");
    return md;
}

/* C[m,n] (f32) = op(A)[m,k] op(B)[k,n] (bf16), one primitive with its memory objects */
struct gemm {
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
    char impl[64]; /* oneDNN's implementation name, e.g. brg:avx512_core_bf16 */
};

static struct gemm gemm_make(int64_t m, int64_t n, int64_t k, int ta, int tb,
                             uint16_t *a, uint16_t *b, float *c)
{
    struct gemm g;
    dnnl_memory_desc_t a_md = matrix_md(m, k, ta, dnnl_bf16);
    dnnl_memory_desc_t b_md = matrix_md(k, n, tb, dnnl_bf16);
    dnnl_memory_desc_t c_md = matrix_md(m, n, 0, dnnl_f32);
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd;
    const char *impl;

    check(dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md), "matmul descriptor");
    check(dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL), "matmul primitive desc");
    check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl), "impl query");
    snprintf(g.impl, sizeof g.impl, "%s", impl); /* the string belongs to pd */
    check(dnnl_primitive_create(&g.prim, pd), "matmul primitive");
    check(dnnl_memory_create(&g.a, &a_md, engine, a), "memory A");
    check(dnnl_memory_create(&g.b, &b_md, engine, b), "memory B");
    check(dnnl_memory_create(&g.c, &c_md, engine, c), "memory C");
    dnnl_primitive_desc_destroy(pd);
    return g;
}

static void gemm_run(const struct gemm *g)
{
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_SRC, g->a}, {DNNL_ARG_WEIGHTS, g->b}, {DNNL_ARG_DST, g->c}};
    check(dnnl_primitive_execute(g->prim, stream, 3, args), "matmul execute");
    check(dnnl_stream_wait(stream), "stream wait");
}

static void gemm_free(struct gemm *g)
{
    dnnl_primitive_destroy(g->prim);
    dnnl_memory_destroy(g->a), dnnl_memory_destroy(g->b), dnnl_memory_destroy(g->c);
}

/* best time of REPEATS runs of the forward, data-grad and weight-grad GEMMs of one shape */
static double time_shape(const struct shape *s, int repeats, char impl[3][64])
{
    int64_t n = NTOK, in = s->in, out = s->out;
    uint16_t *x = filled_bf16((size_t)(n * in)), *w = filled_bf16((size_t)(out * in));
    uint16_t *dy = filled_bf16((size_t)(n * out));
    float *y = alloc_or_die((size_t)(n * out) * sizeof *y);
    float *dx = alloc_or_die((size_t)(n * in) * sizeof *dx);
    float *dw = alloc_or_die((size_t)(out * in) * sizeof *dw);
    struct gemm g[3] = {
        gemm_make(n, out, in, 0, 1, x, w, y),    /* Y = X W^T */
        gemm_make(n, in, out, 0, 0, dy, w, dx),  /* dX = dY W */
        gemm_make(out, in, n, 1, 0, dy, x, dw),  /* dW = dY^T X */
    };
    double best[3] = {1e30, 1e30, 1e30};

    for (int r = 0; r < repeats + 1; r++) { /* the first run warms up */
        for (int k = 0; k < 3; k++) {
            double t0 = now();
            gemm_run(&g[k]);
            double t = now() - t0;
            if (r > 0 && t < best[k])
                best[k] = t;
        }
    }
    for (int k = 0; k < 3; k++)
        memcpy(impl[k], g[k].impl, sizeof g[k].impl), gemm_free(&g[k]);
    free(x), free(w), free(dy), free(y), free(dx), free(dw);
    return best[0] + best[1] + best[2];
}

static void add_mix(const struct shape *mix, size_t n, int repeats, int verbose,
                    double *flops, double *secs)
{
    for (size_t i = 0; i < n; i++) {
        char impl[3][64];
        double f = 3.0 * 2.0 * NTOK * mix[i].in * (double)mix[i].out;
        double t = time_shape(&mix[i], repeats, impl);
        if (verbose)
            fprintf(stderr,
                    "%-11s N=%d in=%-5d out=%-5d x%-2d %8.1f GFLOP/s (fwd+dgrad+wgrad) %s %s %s\n",
                    mix[i].name, NTOK, mix[i].in, mix[i].out, mix[i].count, f / t * 1e-9,
                    impl[0], impl[1], impl[2]);
        *flops += f * mix[i].count;
        *secs += t * mix[i].count;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: bf16gemm_rate [-v] [-t THREADS] [-r REPEATS] [-m llama|gpt2|all]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int verbose = 0, threads = 0, repeats = 3;
    const char *model = "all";

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            model = argv[++i];
        else
            usage();
    }
    int all = !strcmp(model, "all");
    if (repeats < 1 || threads < 0 || (!all && strcmp(model, "llama") && strcmp(model, "gpt2")))
        usage();
    if (threads > 0)
        omp_set_num_threads(threads);
    check(dnnl_engine_create(&engine, dnnl_cpu, 0), "CPU engine");
    check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "stream");

    double flops = 0, secs = 0;
    if (all || !strcmp(model, "llama"))
        add_mix(llama, sizeof llama / sizeof *llama, repeats, verbose, &flops, &secs);
    if (all || !strcmp(model, "gpt2"))
        add_mix(gpt2, sizeof gpt2 / sizeof *gpt2, repeats, verbose, &flops, &secs);
    if (verbose) {
        const dnnl_version_t *v = dnnl_version();
        fprintf(stderr, "threads %d (oneDNN %d.%d.%d)\n", omp_get_max_threads(), v->major,
                v->minor, v->patch);
    }
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    printf("%.1f\n", flops / secs * 1e-9);
    return 0;
}
