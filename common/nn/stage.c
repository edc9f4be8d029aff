/* nn/stage.c - which layers each pipeline rank holds (parallel.md 4.1). */
#include "nn/stage.h"

#include <string.h>

#include "core/err.h"

void mb_stage_whole(struct mb_stage *s, int64_t layers)
{
    memset(s, 0, sizeof *s);
    s->pp = 1;
    s->chunks = 1;
    s->layers = layers;
    s->total_layers = layers;
    s->chunk_layers[0] = layers;
    s->first = s->last = true;
}

/* Layers of pipeline rank R without virtual stages: FIRST / LAST for the end stages when
 * set, the rest shared evenly by the others. */
static int64_t stage_layers(int64_t layers, int pp, int r, int64_t first, int64_t last)
{
    if (r == 0 && first > 0)
        return first;
    if (r == pp - 1 && last > 0)
        return last;
    int middle = pp - (first > 0) - (last > 0);
    return (layers - first - last) / middle;
}

static int check_uneven(int64_t layers, int pp, int vp, int64_t first, int64_t last,
                        const char *where)
{
    if (first < 0 || last < 0)
        return mb_err_set(MB_E_INVALID, where,
                          "dist.num_layers_in_first/last_pipeline_stage must not be negative");
    if (vp > 1)
        return mb_err_set(MB_E_UNSUPPORTED, where,
                          "dist.num_layers_in_first/last_pipeline_stage with "
                          "dist.virtual_pipeline_model_parallel_size %d: uneven stages are "
                          "supported without virtual stages only", vp);
    int middle = pp - (first > 0) - (last > 0);
    int64_t rest = layers - first - last;
    if (pp < 2 || (middle == 0 && rest != 0) || rest < 0 ||
        (middle > 0 && (rest < middle || rest % middle != 0)))
        return mb_err_set(MB_E_INVALID, where,
                          "model.num_layers %lld with %lld layers on the first stage and %lld "
                          "on the last cannot be cut over %d pipeline stages: the %d other "
                          "stage%s must share the other %lld evenly, at least one each",
                          (long long)layers, (long long)first, (long long)last, pp, middle,
                          middle == 1 ? "" : "s", (long long)rest);
    return 0;
}

static int check_even(int64_t layers, int pp, int vp, const char *where)
{
    if (layers < (int64_t)pp * vp)
        return mb_err_set(MB_E_INVALID, where,
                          "more pipeline stages than layers: %d stages x %d virtual chunks "
                          "need at least %lld layers, model.num_layers is %lld", pp, vp,
                          (long long)pp * vp, (long long)layers);
    if (layers % pp != 0 || (layers / pp) % vp != 0)
        return mb_err_set(MB_E_INVALID, where,
                          "model.num_layers %lld is not divisible by "
                          "dist.pipeline_model_parallel_size %d x "
                          "dist.virtual_pipeline_model_parallel_size %d (set "
                          "dist.num_layers_in_first/last_pipeline_stage for uneven stages)",
                          (long long)layers, pp, vp);
    return 0;
}

int mb_stage_plan(struct mb_stage *s, int64_t layers, int pp, int pp_rank, int vp,
                  int64_t first_layers, int64_t last_layers, const char *where)
{
    mb_stage_whole(s, layers);
    if (pp < 1 || vp < 1 || vp > MB_STAGE_MAX_CHUNKS || pp_rank < 0 || pp_rank >= pp)
        return mb_err_set(MB_E_INVALID, where,
                          "pipeline size %d, rank %d, virtual chunks %d (1 to %d)", pp, pp_rank,
                          vp, MB_STAGE_MAX_CHUNKS);
    if (vp > 1 && pp == 1)
        return mb_err_set(MB_E_INVALID, where,
                          "dist.virtual_pipeline_model_parallel_size %d needs "
                          "dist.pipeline_model_parallel_size > 1", vp);
    bool uneven = first_layers > 0 || last_layers > 0;
    int rc = uneven ? check_uneven(layers, pp, vp, first_layers, last_layers, where)
                    : check_even(layers, pp, vp, where);
    if (rc < 0)
        return -1;
    s->pp = pp, s->pp_rank = pp_rank, s->chunks = vp;
    s->first = pp_rank == 0, s->last = pp_rank == pp - 1;
    if (uneven) {
        int64_t before = 0;
        for (int r = 0; r < pp_rank; r++)
            before += stage_layers(layers, pp, r, first_layers, last_layers);
        s->layers = stage_layers(layers, pp, pp_rank, first_layers, last_layers);
        s->chunk_first[0] = 0, s->chunk_layers[0] = s->layers, s->chunk_global[0] = before;
        return 0;
    }
    int64_t per_chunk = layers / pp / vp;
    s->layers = per_chunk * vp;
    for (int j = 0; j < vp; j++) { /* parallel.md 4.1: offset j (L / v) + r (L / (p v)) */
        s->chunk_first[j] = j * per_chunk;
        s->chunk_layers[j] = per_chunk;
        s->chunk_global[j] = j * (layers / vp) + pp_rank * per_chunk;
    }
    return 0;
}

int64_t mb_stage_global_layer(const struct mb_stage *s, int64_t local)
{
    for (int j = 0; j < s->chunks; j++)
        if (local >= s->chunk_first[j] && local < s->chunk_first[j] + s->chunk_layers[j])
            return s->chunk_global[j] + (local - s->chunk_first[j]);
    return -1;
}

int64_t mb_stage_local_layer(const struct mb_stage *s, int64_t global)
{
    for (int j = 0; j < s->chunks; j++)
        if (global >= s->chunk_global[j] && global < s->chunk_global[j] + s->chunk_layers[j])
            return s->chunk_first[j] + (global - s->chunk_global[j]);
    return -1;
}
