/* kern/cpu/attention_kv.c - attention of a few new queries over a key/value cache.
 *
 * Generation runs the model on Tq new tokens at positions p0 .. p0+Tq-1 while the keys
 * and values of every earlier position sit in a cache [B, nKV, Tmax, d] (positions
 * along Tmax). One task per (batch, query head, query) scores the visible keys
 * (causal: k <= p0 + t; with a window also p0 + t - k < window), applies the scale and
 * the soft-cap, takes the softmax with its maximum subtracted, and sums the values.
 * Scores of one query are held whole (at most Tmax floats), which is what a decoding
 * step needs; prefill of a long prompt is Tq rows of the same.
 */
#include <math.h>
#include <stdlib.h>

#include "core/defs.h"
#include "core/mem.h"
#include "kern/cpu/internal.h"

/* Scores of query Q against keys K[lo..hi) of one KV head, into S[0 .. hi-lo). */
MB_CPU_CLONES static void kv_scores(float *restrict s, const float *restrict q,
                                    const float *restrict k, int64_t lo, int64_t hi, int64_t d,
                                    float scale, float softcap)
{
    for (int64_t j = lo; j < hi; j++) {
        const float *kj = k + j * d;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t c = 0; c < d; c++)
            dot += q[c] * kj[c];
        dot *= scale;
        if (softcap > 0)
            dot = softcap * tanhf(dot / softcap);
        s[j - lo] = dot;
    }
}

/* out[0..d) = sum_j p_j V[lo + j] / sum_j p_j with p = exp(s - max s). */
MB_CPU_CLONES static void kv_mix(float *restrict out, float *restrict s,
                                 const float *restrict v, int64_t lo, int64_t n, int64_t d)
{
    float mx = -INFINITY, sum = 0.0f;
    for (int64_t j = 0; j < n; j++)
        mx = s[j] > mx ? s[j] : mx;
    for (int64_t j = 0; j < n; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    for (int64_t c = 0; c < d; c++)
        out[c] = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        const float *vj = v + (lo + j) * d;
        float p = s[j];
#pragma omp simd
        for (int64_t c = 0; c < d; c++)
            out[c] += p * vj[c];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t c = 0; c < d; c++)
        out[c] *= inv;
}

void mb_cpu_attention_kv(struct mb_exec *ex, float *out, const float *q, const float *kc,
                         const float *vc, const struct mb_attn_shape *sh, int64_t p0,
                         int64_t tmax)
{
    int64_t B = sh->batch, Tq = sh->seq, H = sh->heads, G = H / sh->kv_heads, d = sh->head_dim;
    int64_t ntask = B * H * Tq;

    mb_cpu_scratch_ready(ex);
#pragma omp parallel if (ntask > 1 && ntask * (p0 + Tq) * d > MB_CPU_CHUNK)
    {
        float *s = mb_cpu_scratch(ex, (size_t)(p0 + Tq) * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t task = 0; task < ntask; task++) {
            int64_t t = task % Tq, h = (task / Tq) % H, b = task / (Tq * H);
            int64_t pos = p0 + t, hi = pos + 1;
            int64_t lo = sh->window > 0 ? MB_MAX(0, pos - sh->window + 1) : 0;
            size_t kv = (size_t)((b * sh->kv_heads + h / G) * tmax) * (size_t)d;
            kv_scores(s, q + ((b * H + h) * Tq + t) * d, kc + kv, lo, hi, d, sh->scale,
                      sh->softcap);
            kv_mix(out + ((b * Tq + t) * H + h) * d, s, vc + kv, lo, hi - lo, d);
        }
    }
}
