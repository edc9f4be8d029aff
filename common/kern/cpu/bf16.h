/* kern/cpu/bf16.h - the pieces of the CPU bf16 ops (bf16.c, bf16_avx512.c, gemm_bf16.c)
 * that the op table does not show: the per-ISA conversion kernels, the oneDNN matmul and
 * the portable fallbacks, each callable alone so the tests can hold them against each
 * other.
 */
#ifndef MB_KERN_CPU_BF16_H
#define MB_KERN_CPU_BF16_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* f32 -> bf16, round to nearest even; a NaN keeps its sign and top payload bits and is
 * made quiet ((bits >> 16) | 0x40, what VCVTNEPS2BF16 does); denormals are rounded, not
 * flushed. The AVX512-BF16 kernel is bitwise equal to the portable one on every input. */
void mb_cpu_bf16_round_portable(uint16_t *dst, const float *src, int64_t n);
/* The portable kernel's rule for one float, for loops that write a bf16 copy on their
 * way (AdamW's weights): vectorises where the loop does. */
static inline uint16_t mb_cpu_bf16_rne(float x)
{
    uint32_t u;

    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu))
        return (uint16_t)((u >> 16) | 0x0040u); /* NaN: keep the sign, make it quiet */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16); /* ties to even */
}
void mb_cpu_bf16_round_avx512(uint16_t *dst, const float *src, int64_t n);
/* bf16 -> f32: exact (the bf16 bits become the top half of the float) */
void mb_cpu_bf16_widen_portable(float *dst, const uint16_t *src, int64_t n);
void mb_cpu_bf16_widen_avx512(float *dst, const uint16_t *src, int64_t n);
/* The two above on this CPU's kernel, one thread (for rows inside a parallel loop). */
void mb_cpu_bf16_round_span(uint16_t *dst, const float *src, int64_t n);
void mb_cpu_bf16_widen_span(float *dst, const uint16_t *src, int64_t n);
/* Whether this CPU runs the AVX512-BF16 kernels (and they are not switched off). */
bool mb_cpu_bf16_have_avx512(void);

/* The matmul_bf16 of the op table, by oneDNN's matmul primitive: false, with nothing
 * written, when oneDNN has no native bf16 implementation for this CPU (only its reference
 * loops), so the caller takes the portable path. */
bool mb_cpu_matmul_bf16_dnnl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                             const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                             float beta, float *c, int64_t ldc);
/* The same with a bf16 C (matmul_bf16_rounded): oneDNN rounds its fp32 sums to bf16. */
bool mb_cpu_matmul_bf16_rounded_dnnl(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                     const uint16_t *a, int64_t lda, const uint16_t *b,
                                     int64_t ldb, uint16_t *c, int64_t ldc);
/* oneDNN's name for the implementation it took for this shape ("brg:avx512_core_bf16",
 * ...), or NULL where it has none but the reference one. */
const char *mb_cpu_matmul_bf16_dnnl_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                         int64_t lda, int64_t ldb, int64_t ldc);
/* The portable matmul_bf16: widen to fp32, then the fp32 OpenBLAS matmul. */
void mb_cpu_matmul_bf16_portable(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                 float alpha, const uint16_t *a, int64_t lda, const uint16_t *b,
                                 int64_t ldb, float beta, float *c, int64_t ldc);

/* Test hook: true makes convert and matmul_bf16 take the portable paths, as on a CPU
 * without AVX512-BF16. */
void mb_cpu_bf16_force_portable(bool on);

#endif /* MB_KERN_CPU_BF16_H */
