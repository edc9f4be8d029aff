/* nn/rope.c - rotary position tables. */
#include "nn/rope.h"

#include <math.h>

int64_t mb_rope_dims(const struct mb_model_config *c)
{
    return (int64_t)((double)c->kv_channels * c->rotary_percent);
}

/* Llama 3's frequency-dependent rescaling (formats.md 4.3). */
static double llama3_scale(const struct mb_model_config *c, double inv_freq)
{
    double orig = (double)c->rope_scaling_original_max_position_embeddings;
    double factor = c->rope_scaling_factor;
    double low = c->rope_scaling_low_freq_factor, high = c->rope_scaling_high_freq_factor;
    double wavelen = 2.0 * M_PI / inv_freq;
    if (wavelen < orig / high)
        return inv_freq;
    if (wavelen > orig / low)
        return inv_freq / factor;
    double s = (orig / wavelen - low) / (high - low);
    return (1.0 - s) * inv_freq / factor + s * inv_freq;
}

void mb_rope_table(float *table, const struct mb_model_config *c, bool local)
{
    int64_t rot = mb_rope_dims(c), half = rot / 2;
    double base = local && c->rotary_base_local > 0 ? c->rotary_base_local : c->rotary_base;
    for (int64_t j = 0; j < half; j++) {
        double inv_freq = 1.0 / pow(base, (double)(2 * j) / (double)rot);
        if (!local && c->rope_scaling_type == MB_ROPE_SCALING_LLAMA3)
            inv_freq = llama3_scale(c, inv_freq);
        else if (!local && c->rope_scaling_type == MB_ROPE_SCALING_LINEAR)
            inv_freq /= c->rope_scaling_factor;
        for (int64_t p = 0; p < c->max_position_embeddings; p++) {
            double angle = (double)p * inv_freq;
            table[(p * half + j) * 2] = (float)cos(angle);
            table[(p * half + j) * 2 + 1] = (float)sin(angle);
        }
    }
}
