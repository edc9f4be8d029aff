/* tests/unit/ckpt_save_load.c - checkpoints in one process: bf16 rounding, fp32 and bf16
 * round trips with optimizer state, state and attributes, `latest`, and refusals
 * (wrong shape, missing tensor, failed save leaves the previous checkpoint). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/fs.h"
#include "tests/lib/tap.h"

#define NT 4

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void bf16_rounding(void)
{
    /* expected bit patterns worked out by hand from the IEEE layouts */
    static const struct { uint32_t in; uint16_t out; const char *what; } cases[] = {
        { 0x3f800000u, 0x3f80, "1.0 is exact" },
        { 0x3f808000u, 0x3f80, "tie 1+2^-8 goes to even 1.0" },
        { 0x3f818000u, 0x3f82, "tie 1+3*2^-8 goes to even 1+2^-6" },
        { 0x3f808001u, 0x3f81, "just above a tie rounds up" },
        { 0x3f807fffu, 0x3f80, "just below a tie rounds down" },
        { 0xbf818000u, 0xbf82, "negative tie goes to even" },
        { 0x80000000u, 0x8000, "-0 keeps its sign" },
        { 0x7f800000u, 0x7f80, "+inf stays inf" },
        { 0x7f7fffffu, 0x7f80, "largest float rounds to inf" },
        { 0x00000001u, 0x0000, "smallest subnormal rounds to 0" },
        { 0x00018000u, 0x0002, "subnormal tie goes to even" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        is_int(mb_ckpt_bf16_from_f32(from_bits(cases[i].in)), cases[i].out, "%s", cases[i].what);
    uint16_t nan = mb_ckpt_bf16_from_f32(from_bits(0x7f800001u));
    ok((nan & 0x7f80) == 0x7f80 && (nan & 0x7f), "signalling NaN stays NaN");
    is_int(bits(mb_ckpt_f32_from_bf16(0xc049)), 0xc0490000u, "widening is exact");
}

struct model {
    struct mb_ckpt_tensor w[NT], m1[NT], m2[NT];
};

static float value(int t, int64_t i, int salt)
{
    return (float)((t * 7919 + i * 104729 + salt * 31) % 65537 - 32768) / 1024.0f;
}

static void model_init(struct model *m, int salt)
{
    static const char *names[NT] = { "embedding.word_embeddings.weight",
                                     "decoder.layers.self_attention.linear_qkv.weight",
                                     "decoder.final_layernorm.weight", "empty.bias" };
    static const int ndims[NT] = { 2, 3, 1, 2 };
    static const int64_t shapes[NT][3] = { { 7, 5 }, { 3, 6, 5 }, { 5 }, { 0, 4 } };

    for (int t = 0; t < NT; t++) {
        struct mb_ckpt_tensor *ts[3] = { &m->w[t], &m->m1[t], &m->m2[t] };
        for (int k = 0; k < 3; k++) {
            *ts[k] = (struct mb_ckpt_tensor){ .name = names[t], .ndim = ndims[t] };
            int64_t n = 1;
            for (int i = 0; i < ndims[t]; i++)
                n *= ts[k]->shape[i] = shapes[t][i];
            ts[k]->data = calloc((size_t)n + 1, sizeof(float));
            for (int64_t i = 0; salt >= 0 && i < n; i++)
                ts[k]->data[i] = value(t, i, salt + k * 1000);
        }
    }
}

static void model_free(struct model *m)
{
    for (int t = 0; t < NT; t++) {
        free(m->w[t].data);
        free(m->m1[t].data);
        free(m->m2[t].data);
    }
}

static int64_t numel(const struct mb_ckpt_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

/* Every element equal (bitwise), after bf16 rounding of A when ROUND is set. */
static int same(const struct mb_ckpt_tensor *a, const struct mb_ckpt_tensor *b, int round)
{
    for (int64_t i = 0; i < numel(a); i++) {
        float want = round ? mb_ckpt_f32_from_bf16(mb_ckpt_bf16_from_f32(a->data[i])) : a->data[i];
        if (bits(want) != bits(b->data[i])) {
            tap_diag("%s[%lld]: got %g, want %g", a->name, (long long)i, b->data[i], want);
            return 0;
        }
    }
    return 1;
}

static int all_same(const struct mb_ckpt_tensor *a, const struct mb_ckpt_tensor *b, int round)
{
    for (int t = 0; t < NT; t++)
        if (!same(&a[t], &b[t], round))
            return 0;
    return 1;
}

static const char rng[] = { 1, 0, 2, 0, 3 };

static struct mb_ckpt_state state(int64_t iter)
{
    return (struct mb_ckpt_state){ .iteration = iter, .consumed_train_samples = 64 * iter,
                                   .consumed_valid_samples = 5, .optim_step = iter - 1,
                                   .rng_state = rng, .rng_state_len = sizeof rng,
                                   .model_config_json = "{\"hidden_size\": 5}",
                                   .recipe_json = "{\"train\": {\"seed\": 1234}}",
                                   .tokenizer = "bytes" };
}

static void fp32_round_trip(void)
{
    struct model m, back;
    struct mb_ckpt_state st = state(7), got;
    char *saved = NULL, *file = NULL, *latest = NULL;
    size_t len;

    model_init(&m, 1);
    model_init(&back, -1);
    ok(mb_ckpt_save(NULL, "ck/a", m.w, NT, m.m1, m.m2, MB_CKPT_F32, &st, &saved) == 0,
       "fp32 save with optimizer state");
    is_str(saved, "ck/a/iter_0000007.h5", "file named after the iteration");
    ok(mb_fs_read_all("ck/a/latest", &latest, &len) == 0 && strcmp(latest, "iter_0000007.h5\n") == 0,
       "latest names it");
    ok(!mb_fs_exists("ck/a/iter_0000007.h5.tmp"), "no temporary left");
    ok(mb_ckpt_resolve("ck/a", &file) == 0 && file && strcmp(file, saved) == 0,
       "directory resolves through latest");
    ok(mb_ckpt_load(NULL, file, back.w, NT, back.m1, back.m2, &got) == 0, "load: %s",
       mb_err_what());
    ok(all_same(m.w, back.w, 0) && all_same(m.m1, back.m1, 0) && all_same(m.m2, back.m2, 0),
       "weights and moments bitwise equal");
    ok(got.iteration == 7 && got.consumed_train_samples == 448 &&
       got.consumed_valid_samples == 5 && got.optim_step == 6, "counters read back");
    ok(got.rng_state_len == sizeof rng && memcmp(got.rng_state, rng, sizeof rng) == 0 &&
       got.data_state_len == 0 && got.data_state == NULL, "blobs read back (one empty)");
    is_str(got.model_config_json, st.model_config_json, "model_config attribute");
    is_str(got.recipe_json, st.recipe_json, "recipe attribute");
    is_str(got.tokenizer, "bytes", "tokenizer attribute");
    ok(got.mb_version && *got.mb_version, "mb_version attribute present");
    mb_ckpt_state_release(&got);
    free(saved);
    free(file);
    free(latest);
    model_free(&m);
    model_free(&back);
}

static void bf16_round_trip(void)
{
    struct model m, back;
    struct mb_ckpt_state st = state(20), got;
    char *saved = NULL;

    model_init(&m, 2);
    model_init(&back, -1);
    ok(mb_ckpt_save(NULL, "ck/b", m.w, NT, m.m1, m.m2, MB_CKPT_BF16, &st, &saved) == 0,
       "bf16 save with optimizer state");
    ok(mb_ckpt_load(NULL, saved, back.w, NT, back.m1, back.m2, &got) == 0, "load: %s",
       mb_err_what());
    ok(all_same(m.w, back.w, 0) && all_same(m.m1, back.m1, 0), "master weights are exact fp32");
    mb_ckpt_state_release(&got);

    mb_ckpt_reader *r = mb_ckpt_reader_open(NULL, saved);
    const struct mb_ckpt_info *mi = r ? mb_ckpt_reader_find(r, "/model/decoder/layers/"
                                                           "self_attention/linear_qkv/weight") : NULL;
    const struct mb_ckpt_info *oi = r ? mb_ckpt_reader_find(r, "/optim/master/decoder/layers/"
                                                           "self_attention/linear_qkv/weight") : NULL;
    ok(mi && mi->dtype == MB_CKPT_BF16 && mi->ndim == 3 && mi->shape[0] == 3 && mi->shape[2] == 5,
       "listing: /model tensor is bf16 [3, 6, 5]");
    ok(oi && oi->dtype == MB_CKPT_F32, "listing: /optim/master tensor is fp32");
    ok(r && mb_ckpt_reader_find(r, "/train/iteration") && mb_ckpt_reader_find(r, "/optim/step") &&
       !mb_ckpt_reader_find(r, "/bf16"), "listing has scalars, not the committed type");
    float buf[90];
    ok(r && mb_ckpt_reader_read_f32(r, mi->path, buf, 90) == 0 &&
       same(&m.w[1], &(struct mb_ckpt_tensor){ .name = "qkv", .ndim = 1, .shape = { 90 },
                                              .data = buf }, 1),
       "stored bf16 values are the round-to-nearest-even of the weights");
    ok(r && mb_ckpt_reader_read_f32(r, mi->path, buf, 89) != 0 &&
       strstr(mb_err_what(), "90 elements"), "wrong element count refused");
    mb_ckpt_reader_close(r);
    free(saved);

    /* without optimizer state the loaded weights are the bf16 ones */
    ok(mb_ckpt_save(NULL, "ck/c", m.w, NT, NULL, NULL, MB_CKPT_BF16, &st, &saved) == 0,
       "bf16 save without optimizer state");
    ok(mb_ckpt_load(NULL, saved, back.w, NT, NULL, NULL, NULL) == 0 && all_same(m.w, back.w, 1),
       "weights load as rounded bf16");
    ok(mb_ckpt_load(NULL, saved, back.w, NT, back.m1, back.m2, NULL) != 0 &&
       strstr(mb_err_what(), "no optimizer state"), "asking for moments is an error");
    free(saved);
    model_free(&m);
    model_free(&back);
}

static void refusals(void)
{
    struct model m;
    struct mb_ckpt_state st = state(7);
    char *file = NULL;

    model_init(&m, 1);
    m.w[1].shape[1] = 4;
    m.w[1].shape[2] = 7;
    ok(mb_ckpt_load(NULL, "ck/a/iter_0000007.h5", m.w, NT, NULL, NULL, NULL) != 0,
       "shape mismatch refused");
    ok(strstr(mb_err_what(), "decoder.layers.self_attention.linear_qkv.weight") &&
       strstr(mb_err_what(), "[3, 6, 5]") && strstr(mb_err_what(), "[3, 4, 7]") &&
       strcmp(mb_err_where(), "ck/a/iter_0000007.h5") == 0, "message names tensor, shapes, file: %s",
       mb_err_what());
    m.w[1].shape[1] = 6;
    m.w[1].shape[2] = 5;
    m.w[2].name = "decoder.final_norm.weight";
    ok(mb_ckpt_load(NULL, "ck/a/iter_0000007.h5", m.w, NT, NULL, NULL, NULL) != 0 &&
       strstr(mb_err_what(), "decoder.final_norm.weight"), "missing tensor refused: %s",
       mb_err_what());
    m.w[2].name = "decoder..weight";
    ok(mb_ckpt_save(NULL, "ck/a", m.w, NT, NULL, NULL, MB_CKPT_F32, &st, NULL) != 0 &&
       strstr(mb_err_what(), "decoder..weight"), "bad name refused before writing");

    /* "decoder.layers.self_attention" as a tensor collides with the group of qkv:
     * HDF5 fails half-way through the file */
    m.w[2].name = "decoder.layers.self_attention";
    st.iteration = 8;
    ok(mb_ckpt_save(NULL, "ck/a", m.w, NT, NULL, NULL, MB_CKPT_F32, &st, NULL) != 0,
       "save failing mid-file returns -1: %s", mb_err_what());
    ok(!mb_fs_exists("ck/a/iter_0000008.h5") && !mb_fs_exists("ck/a/iter_0000008.h5.tmp"),
       "nothing of the failed save is left");
    ok(mb_ckpt_resolve("ck/a", &file) == 0 && file && strcmp(file, "ck/a/iter_0000007.h5") == 0,
       "latest still names the previous checkpoint");
    free(file);

    ok(mb_ckpt_resolve("ck/none", &file) == 0 && file == NULL, "missing directory: start fresh");
    ok(mb_ckpt_resolve("ck", &file) == 0 && file == NULL, "directory without latest: fresh");
    FILE *fp = fopen("ck/b/latest", "w");
    fputs("iter_0000099.h5\n", fp);
    fclose(fp);
    ok(mb_ckpt_resolve("ck/b", &file) != 0 && strstr(mb_err_what(), "iter_0000099.h5") &&
       strcmp(mb_err_where(), "ck/b/latest") == 0, "latest naming a missing file: %s",
       mb_err_what());
    fp = fopen("ck/junk.h5", "w");
    fputs("this is not HDF5\n", fp);
    fclose(fp);
    ok(mb_ckpt_load(NULL, "ck/junk.h5", m.w, NT, NULL, NULL, NULL) != 0 &&
       strcmp(mb_err_where(), "ck/junk.h5") == 0 && strstr(mb_err_what(), "not an HDF5 file"),
       "non-HDF5 file refused: %s", mb_err_what());
    model_free(&m);
}

int main(void)
{
    tap_enter_scratch_dir();
    bf16_rounding();
    fp32_round_trip();
    bf16_round_trip();
    refusals();
    return tap_done();
}
