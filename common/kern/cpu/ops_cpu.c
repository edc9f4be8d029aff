/* kern/cpu/ops_cpu.c - the CPU op table: memory entries and the table instance. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "kern/cpu/internal.h"

static void *cpu_alloc(size_t bytes)
{
    size_t size = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, size ? size : 64);

    if (!p) {
        mb_err_set(MB_E_IO, "cpu backend", "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, size ? size : 64);
    return p;
}

static void cpu_free(void *p)
{
    free(p);
}

static void cpu_to_host(float *host, const float *dev, int64_t n)
{
    mb_cpu_copy(host, dev, n);
}

static void cpu_from_host(float *dev, const float *host, int64_t n)
{
    mb_cpu_copy(dev, host, n);
}

static const struct mb_ops cpu_ops = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .zero = mb_cpu_zero,
    .copy = mb_cpu_copy,
    .to_host = cpu_to_host,
    .from_host = cpu_from_host,
    .matmul = mb_cpu_matmul,
    .convert = mb_cpu_convert,
    .matmul_bf16 = mb_cpu_matmul_bf16,
    .add = mb_cpu_add,
    .scale = mb_cpu_scale,
    .sumsq = mb_cpu_sumsq,
    .add_bias = mb_cpu_add_bias,
    .bias_grad = mb_cpu_bias_grad,
    .rmsnorm_fwd = mb_cpu_rmsnorm_fwd,
    .rmsnorm_bwd = mb_cpu_rmsnorm_bwd,
    .layernorm_fwd = mb_cpu_layernorm_fwd,
    .layernorm_bwd = mb_cpu_layernorm_bwd,
    .embedding_fwd = mb_cpu_embedding_fwd,
    .embedding_bwd = mb_cpu_embedding_bwd,
    .qkv_split = mb_cpu_qkv_split,
    .qkv_merge = mb_cpu_qkv_merge,
    .rope_fwd = mb_cpu_rope_fwd,
    .rope_bwd = mb_cpu_rope_bwd,
    .attention_fwd = mb_cpu_attention_fwd,
    .attention_bwd = mb_cpu_attention_bwd,
    .swiglu_fwd = mb_cpu_swiglu_fwd,
    .swiglu_bwd = mb_cpu_swiglu_bwd,
    .geglu_fwd = mb_cpu_geglu_fwd,
    .geglu_bwd = mb_cpu_geglu_bwd,
    .gelu_fwd = mb_cpu_gelu_fwd,
    .gelu_bwd = mb_cpu_gelu_bwd,
    .xent = mb_cpu_xent,
    .xent_max = mb_cpu_xent_max,
    .xent_sumexp = mb_cpu_xent_sumexp,
    .xent_finish = mb_cpu_xent_finish,
    .adamw = mb_cpu_adamw,
    .attention_kv = mb_cpu_attention_kv,
};

const struct mb_ops *mb_ops_cpu(void)
{
    mb_cpu_gemm_init();
    mb_cpu_threads_init();
    return &cpu_ops;
}
