/* kern/cpu/bf16_avx512.c - f32 <-> bf16 conversion with AVX512-BF16.
 *
 * Compiled for every CPU (a target attribute on each function, not a -m flag on the
 * file) and called only where the CPU has the instructions (mb_cpu_bf16_have_avx512, in
 * bf16.c, asks at run time).
 *
 * VCVTNE2PS2BF16 rounds to nearest even and quiets NaN the way the portable kernel does,
 * but it treats a denormal input as zero whatever MXCSR says (Intel SDM: "DAZ" for this
 * instruction), where PyTorch and the portable kernel round it (0x007fffff -> 0x0080). So
 * a 16-lane block that holds a denormal gets those lanes redone by the integer rounding;
 * the test compares both kernels on all 2^32 inputs.
 */
#include <immintrin.h>
#include <string.h>

#include "kern/cpu/bf16.h"

#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* The lanes of X (as bits U) that are denormal, rounded by integers: RNE on the low 16. */
AVX512_BF16 static __m256i fix_denormals(__m256i r, __m512i u)
{
    const __m512i expo = _mm512_set1_epi32(0x7f800000), mant = _mm512_set1_epi32(0x007fffff);
    __mmask16 den = _mm512_testn_epi32_mask(u, expo) & _mm512_test_epi32_mask(u, mant);

    if (!den)
        return r;
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i rnd = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
    __m256i fixed = _mm512_cvtepi32_epi16(_mm512_srli_epi32(rnd, 16));
    return _mm256_mask_blend_epi16(den, r, fixed);
}

AVX512_BF16 static __m256i round16(const float *src)
{
    __m512i u = _mm512_loadu_si512(src);
    __m256bh r = _mm512_cvtneps_pbh(_mm512_castsi512_ps(u));
    __m256i ri;

    memcpy(&ri, &r, sizeof ri);
    return fix_denormals(ri, u);
}

AVX512_BF16 void mb_cpu_bf16_round_avx512(uint16_t *dst, const float *src, int64_t n)
{
    int64_t i = 0;

    /* two blocks per step through VCVTNE2PS2BF16 */
    for (; i + 32 <= n; i += 32) {
        __m512i u0 = _mm512_loadu_si512(src + i), u1 = _mm512_loadu_si512(src + i + 16);
        __m512bh r = _mm512_cvtne2ps_pbh(_mm512_castsi512_ps(u1), _mm512_castsi512_ps(u0));
        __m512i ri;

        memcpy(&ri, &r, sizeof ri);
        _mm256_storeu_si256((__m256i *)(dst + i),
                            fix_denormals(_mm512_castsi512_si256(ri), u0));
        _mm256_storeu_si256((__m256i *)(dst + i + 16),
                            fix_denormals(_mm512_extracti64x4_epi64(ri, 1), u1));
    }
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), round16(src + i));
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        __m512i u = _mm512_maskz_loadu_epi32(tail, src + i);
        __m256bh r = _mm512_cvtneps_pbh(_mm512_castsi512_ps(u));
        __m256i ri;

        memcpy(&ri, &r, sizeof ri);
        _mm256_mask_storeu_epi16(dst + i, tail, fix_denormals(ri, u));
    }
}

AVX512_BF16 void mb_cpu_bf16_widen_avx512(float *dst, const uint16_t *src, int64_t n)
{
    int64_t i = 0;

    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
        _mm512_storeu_si512(dst + i, _mm512_slli_epi32(w, 16));
    }
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(tail, src + i));
        _mm512_mask_storeu_epi32(dst + i, tail, _mm512_slli_epi32(w, 16));
    }
}
