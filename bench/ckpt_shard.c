/* bench/ckpt_shard.c - time a checkpoint save and load of a synthetic Llama-shaped model
 * (weights and Adam moments, fp32) under mpirun, each rank holding the whole tensors
 * (LAYOUT dp) or its tensor-parallel shards (LAYOUT tp: the world is the TP group).
 * Built and run by bench/ckpt_shard; uses only the API that the checkpoint code had
 * before the shards were written in hyperslabs, so the same source times both.
 *
 *   ckpt_shard_bench dp|tp DIR LAYERS HIDDEN VOCAB
 *
 * Rank 0 prints "save S s load L s file B bytes".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/time.h"
#include "dist/comm.h"

#define NT 8

enum kind { WHOLE, ROWS0, ROWS1, GATE_UP, COLS2 };

static void shard(struct mb_ckpt_tensor *x, enum kind kind, int t, int r)
{
    memcpy(x->local_shape, x->shape, sizeof x->shape);
    if (kind == WHOLE || t == 1)
        return;
    int axis = kind == ROWS0 ? 0 : kind == COLS2 ? 2 : 1;
    int64_t n = x->shape[axis] / t;
    x->axis = axis;
    x->local_shape[axis] = n;
    x->nslab = 1;
    x->slab[0] = (struct mb_param_slab){ 0, r * n, n };
    if (kind == GATE_UP) {
        n = x->shape[1] / 2 / t;
        x->nslab = 2;
        x->slab[0] = (struct mb_param_slab){ 0, r * n, n };
        x->slab[1] = (struct mb_param_slab){ n, x->shape[1] / 2 + r * n, n };
    }
}

static int64_t numel(const int64_t *s, int nd)
{
    int64_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= s[d];
    return n;
}

int main(int argc, char **argv)
{
    struct mb_dist d;

    mb_dist_init(&d, &argc, &argv);
    if (argc != 6) {
        fprintf(stderr, "usage: ckpt_shard_bench dp|tp DIR LAYERS HIDDEN VOCAB\n");
        return 2;
    }
    int tp = strcmp(argv[1], "tp") == 0 ? d.size : 1;
    int64_t l = atoll(argv[3]), h = atoll(argv[4]), v = atoll(argv[5]);
    const struct { const char *name; int nd; int64_t shape[3]; enum kind kind; } spec[NT] = {
        { "embedding.word_embeddings.weight", 2, { v, h }, ROWS0 },
        { "decoder.layers.self_attention.linear_qkv.layer_norm_weight", 2, { l, h }, WHOLE },
        { "decoder.layers.self_attention.linear_qkv.weight", 3, { l, 3 * h, h }, ROWS1 },
        { "decoder.layers.self_attention.linear_proj.weight", 3, { l, h, h }, COLS2 },
        { "decoder.layers.mlp.linear_fc1.layer_norm_weight", 2, { l, h }, WHOLE },
        { "decoder.layers.mlp.linear_fc1.weight", 3, { l, 8 * h, h }, GATE_UP },
        { "decoder.layers.mlp.linear_fc2.weight", 3, { l, h, 4 * h }, COLS2 },
        { "output_layer.weight", 2, { v, h }, ROWS0 },
    };
    struct mb_ckpt_tensor t[3][NT];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < NT; i++) {
            struct mb_ckpt_tensor *x = &t[k][i];
            *x = (struct mb_ckpt_tensor){ .name = spec[i].name, .ndim = spec[i].nd };
            memcpy(x->shape, spec[i].shape, sizeof x->shape);
            shard(x, spec[i].kind, tp, d.rank % tp);
            int64_t n = numel(x->local_shape, x->ndim);
            x->data = malloc((size_t)n * sizeof(float));
            for (int64_t e = 0; e < n; e++)
                x->data[e] = (float)((e * 7 + i + k) % 1000) / 1000.0f;
        }
    struct mb_ckpt_state st = { .iteration = 1, .model_config_json = "{}" };
    char *path = NULL;
    mb_dist_barrier(&d);
    double t0 = mb_now();
    int rc = mb_ckpt_save(&d, argv[2], t[0], NT, t[1], t[2], MB_CKPT_F32, &st, &path);
    mb_dist_barrier(&d);
    double t1 = mb_now();
    if (rc == 0)
        rc = mb_ckpt_load(&d, path, t[0], NT, t[1], t[2], NULL);
    mb_dist_barrier(&d);
    double t2 = mb_now();
    struct stat sb;
    if (rc == 0 && d.rank == 0 && stat(path, &sb) == 0)
        printf("save %.2f s load %.2f s file %lld bytes\n", t1 - t0, t2 - t1,
               (long long)sb.st_size);
    if (rc != 0)
        fprintf(stderr, "error: %s: %s\n", mb_err_where(), mb_err_what());
    free(path);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < NT; i++)
            free(t[k][i].data);
    mb_dist_finalize(&d);
    return rc ? 1 : 0;
}
