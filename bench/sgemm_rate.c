/*
 * bench/sgemm_rate.c - this machine's OpenBLAS sgemm rate on the GEMMs of one training step.
 *
 *   sgemm_rate [-v] [-t THREADS] [-r REPEATS] [-m llama|gpt2|all]
 *
 * For the model's shapes (N = B*T = 1024 tokens; every linear layer y = x W^T with W
 * [out, in], row-major, as mb and PyTorch store it) it times the three GEMMs a linear layer
 * costs per step:
 *     forward   Y[N,out]  = X[N,in]   W^T      (NoTrans, Trans)
 *     data grad dX[N,in]  = dY[N,out] W        (NoTrans, NoTrans)
 *     weight    dW[out,in]= dY^T X             (Trans, NoTrans)
 * each the best of REPEATS runs, and prints one number: the GFLOP/s of the whole mix, each
 * shape weighted by how often one step uses it (sum of flops / sum of best times), which is
 * the rate at which this machine can do the step's matmul work with OpenBLAS.
 * -v prints each shape's rate on stderr. Model shapes are those of bench/torch_train.py.
 *
 * Build (bench/train_cpu does this):
 *   cc -O2 -o sgemm_rate bench/sgemm_rate.c $(pkg-config --cflags --libs openblas)
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *filled(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "sgemm_rate: out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    return p;
}

/* best time of REPEATS runs of the forward, data-grad and weight-grad GEMMs of one shape */
static double time_shape(const struct shape *s, int repeats)
{
    size_t n = NTOK, in = (size_t)s->in, out = (size_t)s->out;
    float *x = filled(n * in), *w = filled(out * in), *y = filled(n * out);
    float *dx = filled(n * in), *dw = filled(out * in);
    double best[3] = {1e30, 1e30, 1e30};

    for (int r = 0; r < repeats + 1; r++) { /* the first run warms up */
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in, 1.0f,
                    x, (int)in, w, (int)in, 0.0f, y, (int)out);
        double t1 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)in, (int)out, 1.0f,
                    y, (int)out, w, (int)in, 0.0f, dx, (int)in);
        double t2 = now();
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)n, 1.0f,
                    y, (int)out, x, (int)in, 0.0f, dw, (int)in);
        double t3 = now();
        if (r == 0)
            continue;
        double t[3] = {t1 - t0, t2 - t1, t3 - t2};
        for (int k = 0; k < 3; k++)
            if (t[k] < best[k])
                best[k] = t[k];
    }
    free(x), free(w), free(y), free(dx), free(dw);
    return best[0] + best[1] + best[2];
}

static void add_mix(const struct shape *mix, size_t n, int repeats, int verbose,
                    double *flops, double *secs)
{
    for (size_t i = 0; i < n; i++) {
        double f = 3.0 * 2.0 * NTOK * mix[i].in * (double)mix[i].out;
        double t = time_shape(&mix[i], repeats);
        if (verbose)
            fprintf(stderr, "%-11s N=%d in=%-5d out=%-5d x%-2d %8.1f GFLOP/s (fwd+dgrad+wgrad)\n",
                    mix[i].name, NTOK, mix[i].in, mix[i].out, mix[i].count, f / t * 1e-9);
        *flops += f * mix[i].count;
        *secs += t * mix[i].count;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: sgemm_rate [-v] [-t THREADS] [-r REPEATS] [-m llama|gpt2|all]\n");
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
    if (repeats < 1 || threads < 0)
        usage();
    if (threads > 0)
        openblas_set_num_threads(threads);

    double flops = 0, secs = 0;
    int all = !strcmp(model, "all");
    if (all || !strcmp(model, "llama"))
        add_mix(llama, sizeof llama / sizeof *llama, repeats, verbose, &flops, &secs);
    if (all || !strcmp(model, "gpt2"))
        add_mix(gpt2, sizeof gpt2 / sizeof *gpt2, repeats, verbose, &flops, &secs);
    if (secs == 0)
        usage();
    if (verbose)
        fprintf(stderr, "threads %d (OpenBLAS %s)\n", openblas_get_num_threads(),
                openblas_get_config());
    printf("%.1f\n", flops / secs * 1e-9);
    return 0;
}
