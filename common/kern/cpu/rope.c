/* kern/cpu/rope.c - rotary position embedding (rotate-half convention), in place.
 *
 * For j < rot_dim/2 with (c, s) = cos_sin[pos][j]: x[j] pairs with x[j + rot_dim/2],
 *   fwd: (a, b) -> (a c - b s, b c + a s);  bwd (the transpose): (a, b) -> (a c + b s, b c - a s).
 * Dimensions from rot_dim on are left alone (partial rotary).
 */
#include "core/err.h"
#include "kern/cpu/internal.h"

MB_CPU_CLONES static void rope_row(float *restrict x, const float *restrict cs, int64_t half,
                                   float dir)
{
#pragma omp simd
    for (int64_t j = 0; j < half; j++) {
        float c = cs[2 * j], s = cs[2 * j + 1] * dir;
        float a = x[j], b = x[j + half];
        x[j] = a * c - b * s;
        x[j + half] = b * c + a * s;
    }
}

static void rope_apply(float *x, const float *cos_sin, const int32_t *pos, int64_t batch,
                       int64_t heads, int64_t seq, int64_t head_dim, int64_t rot_dim, float dir)
{
    int64_t half = rot_dim / 2, rows = batch * heads * seq;

    MB_ASSERT(rot_dim % 2 == 0 && rot_dim <= head_dim);
#pragma omp parallel for schedule(static) if (rows * head_dim > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++) {
        int64_t b = r / (heads * seq), t = r % seq;
        int32_t p = pos[b * seq + t];
        MB_ASSERT(p >= 0);
        rope_row(x + (size_t)r * head_dim, cos_sin + (size_t)p * rot_dim, half, dir);
    }
}

void mb_cpu_rope_fwd(float *x, const float *cos_sin, const int32_t *pos, int64_t batch,
                     int64_t heads, int64_t seq, int64_t head_dim, int64_t rot_dim)
{
    rope_apply(x, cos_sin, pos, batch, heads, seq, head_dim, rot_dim, 1.0f);
}

void mb_cpu_rope_bwd(float *dx, const float *cos_sin, const int32_t *pos, int64_t batch,
                     int64_t heads, int64_t seq, int64_t head_dim, int64_t rot_dim)
{
    rope_apply(dx, cos_sin, pos, batch, heads, seq, head_dim, rot_dim, -1.0f);
}
