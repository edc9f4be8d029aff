/* nn_tp_params - the tensor-parallel parameter table (nn/params.h), one process.
 *
 * For every family's test config with 4 query groups, and TP 2 and 4: the tables of all
 * ranks together hold every element of every logical tensor exactly once when it is
 * sharded (and whole on every rank when it is replicated), their slabs match formats.md
 * 5.4 (linear_qkv by rows, linear_fc1 gate and up as two slabs, linear_proj and
 * linear_fc2 by columns, the vocabulary in near-equal blocks), and each rank's
 * initialised weights are the whole model's at the global index of each element, so every
 * layout starts from the same weights. This is what a checkpoint writer relies on to put
 * each rank's slabs where they belong in the logical tensor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "nn/params.h"
#include "tests/lib/tap.h"

static int64_t numel(const int64_t *shape, int nd)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    return n;
}

/* The slab layout formats.md 5.4 gives parameter P of rank R of TP. */
static bool slabs_as_documented(const struct mb_param *p, const struct mb_model_config *c,
                                int tp, int r)
{
    int pl = p->per_layer ? 1 : 0;
    switch (p->id) {
    case MB_P_QKV_W:
    case MB_P_QKV_B:
        return p->shard_axis == pl && p->nslab == 1 &&
               p->slab[0].global_start == r * p->global_shape[pl] / tp;
    case MB_P_FC1_W:
    case MB_P_FC1_B:
        if (c->activation == MB_ACT_GELU)
            return p->shard_axis == pl && p->nslab == 1;
        return p->shard_axis == pl && p->nslab == 2 &&
               p->slab[0].global_start == r * c->ffn_hidden_size / tp &&
               p->slab[1].global_start == c->ffn_hidden_size + r * c->ffn_hidden_size / tp &&
               p->slab[1].local_start == c->ffn_hidden_size / tp;
    case MB_P_PROJ_W:
    case MB_P_FC2_W: return p->shard_axis == pl + 1 && p->nslab == 1;
    case MB_P_WORD_EMB:
    case MB_P_OUTPUT_W:
        return p->shard_axis == 0 && p->nslab == 1 &&
               p->slab[0].global_start == c->vocab_size * r / tp;
    default: return p->shard_axis == -1 && p->tp_replicated;
    }
}

static void check(const char *root, const char *family, int tp)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/data/models/%s.json", root, family);
    mb_json *j = mb_json_parse_file(path);
    struct mb_model_config c;
    if (!ok(j && mb_model_config_from_json(&c, j, path) == 0, "%s: config", family)) {
        mb_json_free(j);
        return;
    }
    mb_json_free(j);
    c.num_query_groups = 4;
    c.num_attention_heads = 4;
    c.vocab_size += 3; /* a vocabulary TP does not divide */
    ok(mb_local_sizes_check(&c, tp, "tp") == 0, "%s TP %d: the model cuts", family, tp);

    struct mb_param_table whole, *part = mb_xcalloc((size_t)tp, sizeof(*part));
    mb_param_table_build(&whole, &c);
    float *ww = mb_xmalloc((size_t)whole.total * sizeof(float));
    mb_param_init_all(&whole, &c, 7, ww);
    int64_t *hits = mb_xcalloc((size_t)whole.total, sizeof(int64_t));
    bool layout = true, init = true;
    for (int r = 0; r < tp; r++) {
        mb_param_table_build_tp(&part[r], &c, tp, r);
        float *w = mb_xmalloc((size_t)part[r].total * sizeof(float));
        mb_param_init_all(&part[r], &c, 7, w);
        for (int i = 0; i < part[r].count; i++) {
            const struct mb_param *p = &part[r].items[i], *q = mb_param_get(&whole, p->id);
            layout &= slabs_as_documented(p, &c, tp, r) &&
                      numel(p->global_shape, p->ndim) == q->numel &&
                      numel(p->shape, p->ndim) == p->numel;
            for (int64_t e = 0; e < p->numel; e++) {
                int64_t g = mb_param_global_index(p, e);
                if (g < 0 || g >= q->numel) {
                    layout = false;
                    break;
                }
                hits[q->offset + g]++;
                init &= w[p->offset + e] == ww[q->offset + g];
            }
        }
        free(w);
    }
    ok(layout, "%s TP %d: shard axes and slabs as formats.md 5.4", family, tp);
    bool once = true;
    for (int i = 0; i < whole.count; i++) {
        const struct mb_param *q = &whole.items[i];
        int64_t want = mb_param_get(&part[0], q->id)->tp_replicated ? tp : 1;
        for (int64_t e = 0; e < q->numel; e++)
            once &= hits[q->offset + e] == want;
    }
    ok(once, "%s TP %d: every element of a sharded tensor on exactly one rank, of a "
       "replicated one on all", family, tp);
    ok(init, "%s TP %d: every rank's initial weights are the whole model's at their global "
       "index", family, tp);
    free(hits);
    free(ww);
    free(part);
}

int main(void)
{
    const char *root = getenv("MB_ROOT") ? getenv("MB_ROOT") : "."; /* prove runs at the top */
    const char *families[] = { "llama", "qwen2", "qwen3", "gemma2", "gemma3", "gpt2" };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        for (int tp = 2; tp <= 4; tp += 2)
            check(root, families[i], tp);
    return tap_done();
}
