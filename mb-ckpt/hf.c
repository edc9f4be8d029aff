/* mb-ckpt/hf.c - info and verify on a HuggingFace model directory.
 *
 * The directory is config.json plus model.safetensors or shards with
 * model.safetensors.index.json, read through io/safetensors (mmap; every header and the
 * index validated on open). config.json goes through the bridge into an mb model config;
 * the bridge's table for the architecture then says which HF tensors, of which shapes,
 * such a model has, so verify checks the same things for an HF directory as for an mb
 * checkpoint: nothing missing, nothing unexpected, shapes, float dtypes, finite values,
 * and CRC-32C checksums of each tensor's bytes as stored. Buffers that some exports carry
 * (rotary inv_freq, GPT-2's attention masks) are not weights and are let through, as
 * mb-convert does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bridge/bridge.h"
#include "ck.h"
#include "core/crc32c.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"
#include "io/safetensors.h"
#include "nn/params.h"

struct hfdir {
    const char *dir;
    char *arch_name;   /* config.json architectures[0], or NULL */
    int cfg_ok;        /* the bridge understood config.json */
    char cfg_err[600]; /* why not */
    struct mb_model_config cfg;
    const struct mb_bridge_arch *arch;
    mb_st_dir *st;
};

int ck_is_hf_dir(const char *arg)
{
    struct stat sb;
    char *path = mb_xmalloc(strlen(arg) + 16);
    int yes = 0;

    if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        sprintf(path, "%s/config.json", arg);
        yes = mb_fs_exists(path);
        sprintf(path, "%s/latest", arg);
        yes = yes && !mb_fs_exists(path);
    }
    free(path);
    return yes;
}

/* config.json: the architecture name, and the mb config when the bridge takes it. */
static int read_config(struct hfdir *h)
{
    char *path = mb_xmalloc(strlen(h->dir) + 16), *text;
    size_t len;

    sprintf(path, "%s/config.json", h->dir);
    int rc = mb_fs_read_all(path, &text, &len);
    if (rc == 0) {
        mb_json *j = mb_json_parse(text, len, path);
        const char *a = j ? mb_json_str(mb_json_at(mb_json_get(j, "architectures"), 0), NULL)
                          : NULL;
        h->arch_name = a ? mb_xstrdup(a) : NULL;
        mb_json_free(j);
        h->cfg_ok = mb_bridge_config_from_hf(text, len, path, &h->cfg, &h->arch) == 0;
        if (!h->cfg_ok)
            snprintf(h->cfg_err, sizeof h->cfg_err, "%s: %s", mb_err_where(), mb_err_what());
        mb_err_clear();
        free(text);
    }
    free(path);
    return rc;
}

static void hf_release(struct hfdir *h)
{
    free(h->arch_name);
    mb_st_dir_close(h->st);
}

static enum mb_ckpt_dtype as_ckpt(enum mb_st_dtype t)
{
    return t == MB_ST_F32 ? MB_CKPT_F32 : t == MB_ST_BF16 ? MB_CKPT_BF16
         : t == MB_ST_F16 ? MB_CKPT_F16 : MB_CKPT_OTHER;
}

/* ---- info --------------------------------------------------------------------------- */

static void totals(const struct hfdir *h, int64_t *params, int64_t *bytes)
{
    *params = *bytes = 0;
    for (int i = 0; i < mb_st_dir_count(h->st); i++) {
        *params += mb_st_dir_at(h->st, i)->numel;
        *bytes += (int64_t)mb_st_dir_at(h->st, i)->nbytes;
    }
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');

    return s ? s + 1 : path;
}

static void print_text(const struct hfdir *h)
{
    int64_t params, bytes;
    char *config = h->cfg_ok ? mb_model_config_to_json(&h->cfg) : NULL;

    totals(h, &params, &bytes);
    printf("directory: %s\nformat: huggingface safetensors, %d file%s%s\n", h->dir,
           mb_st_dir_shards(h->st), mb_st_dir_shards(h->st) == 1 ? "" : "s",
           mb_st_dir_is_sharded(h->st) ? " with index" : "");
    printf("family: %s\narchitecture: %s\n", h->cfg_ok ? h->cfg.family : "unknown",
           h->arch_name ? h->arch_name : "unknown");
    if (config)
        printf("model_config: %s\n", config);
    else
        printf("model_config: - (%s)\n", h->cfg_err);
    printf("iteration: -\nconsumed_train_samples: -\nconsumed_valid_samples: -\n"
           "optimizer_state: absent\nparameters: %lld\ntensors: %d, %lld bytes\n",
           (long long)params, mb_st_dir_count(h->st), (long long)bytes);
    for (int i = 0; i < mb_st_dir_count(h->st); i++) {
        const struct mb_st_tensor *t = mb_st_dir_at(h->st, i);
        char shape[128];
        mb_ckpt_shape_str(shape, sizeof shape, t->ndim, t->shape);
        printf("  %s %s %s %zu %s\n", t->name, mb_st_dtype_name(t->dtype), shape, t->nbytes,
               base_name(t->file));
    }
    free(config);
}

static void json_tensors(struct mb_buf *b, const struct hfdir *h)
{
    mb_buf_adds(b, "\"tensors\": [");
    for (int i = 0; i < mb_st_dir_count(h->st); i++) {
        const struct mb_st_tensor *t = mb_st_dir_at(h->st, i);
        char shape[128];
        mb_ckpt_shape_str(shape, sizeof shape, t->ndim, t->shape);
        mb_buf_adds(b, i ? ",\n  {" : "\n  {");
        ck_json_str(b, "name", t->name);
        mb_buf_addf(b, ", \"dtype\": \"%s\", \"shape\": %s, \"bytes\": %zu, ",
                    mb_st_dtype_name(t->dtype), shape, t->nbytes);
        ck_json_str(b, "file", base_name(t->file));
        mb_buf_adds(b, "}");
    }
    mb_buf_adds(b, "\n]");
}

static void print_json(const struct hfdir *h)
{
    struct mb_buf b = MB_BUF_INIT;
    int64_t params, bytes;
    char *config = h->cfg_ok ? mb_model_config_to_json(&h->cfg) : NULL;

    totals(h, &params, &bytes);
    mb_buf_adds(&b, "{");
    ck_json_str(&b, "file", h->dir);
    mb_buf_addf(&b, ", \"kind\": \"hf\", \"format\": \"safetensors\", \"shards\": %d, "
                "\"sharded\": %s, ", mb_st_dir_shards(h->st),
                mb_st_dir_is_sharded(h->st) ? "true" : "false");
    ck_json_str(&b, "family", h->cfg_ok ? h->cfg.family : NULL);
    mb_buf_adds(&b, ", ");
    ck_json_str(&b, "architecture", h->arch_name);
    mb_buf_addf(&b, ",\n\"model_config\": %s", config ? config : "null");
    mb_buf_adds(&b, ",\n\"iteration\": null, \"consumed_train_samples\": null, "
                "\"consumed_valid_samples\": null,\n\"optimizer_state\": false");
    mb_buf_addf(&b, ",\n\"parameters\": %lld, \"bytes\": %lld,\n", (long long)params,
                (long long)bytes);
    json_tensors(&b, h);
    mb_buf_adds(&b, "}\n");
    fputs(b.data, stdout);
    mb_buf_release(&b);
    free(config);
}

int ck_info_hf(const char *dir, int json)
{
    struct hfdir h = { .dir = dir };
    int rc = read_config(&h);

    if (rc == 0 && !(h.st = mb_st_dir_open(dir)))
        rc = -1;
    if (rc == 0 && json)
        print_json(&h);
    else if (rc == 0)
        print_text(&h);
    hf_release(&h);
    return rc;
}

/* ---- verify ------------------------------------------------------------------------- */

/* Buffers and rotary tables some checkpoints carry: not weights (as mb-convert). */
static int skippable(const char *name)
{
    static const char *const ends[] = { ".rotary_emb.inv_freq", ".attn.bias",
                                        ".attn.masked_bias" };
    size_t n = strlen(name);

    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        if (n > strlen(ends[i]) && strcmp(name + n - strlen(ends[i]), ends[i]) == 0)
            return 1;
    return 0;
}

/* Index of HF tensor NAME (also without the architecture's optional prefix), or -1. */
static int find(const struct hfdir *h, const char *name)
{
    const struct mb_st_tensor *t = mb_st_dir_find(h->st, name);
    const char *pre = h->arch->strip_prefix;

    if (!t && pre && strncmp(name, pre, strlen(pre)) == 0)
        t = mb_st_dir_find(h->st, name + strlen(pre));
    for (int i = 0; t && i < mb_st_dir_count(h->st); i++)
        if (mb_st_dir_at(h->st, i) == t)
            return i;
    return -1;
}

/* The HF tensor of RULE at LAYER: present, float, of the shape the config implies. */
static void expect(const struct hfdir *h, struct ck_verify *v, const struct mb_bridge_rule *rule,
                   const struct mb_param *p, int64_t layer, char *used)
{
    char name[256], have[128], want[128];
    int64_t shape[MB_ST_MAX_DIM];

    mb_bridge_hf_name(rule, layer, name, sizeof name);
    int nd = mb_bridge_hf_shape(rule, p, &h->cfg, shape);
    int i = find(h, name);
    mb_ckpt_shape_str(want, sizeof want, nd, shape);
    if (i < 0) {
        ck_problem(v, name, "missing (a %s with this config.json has it, %s)",
                   h->arch->hf_name, want);
        return;
    }
    const struct mb_st_tensor *t = mb_st_dir_at(h->st, i);
    used[i] = 1;
    mb_ckpt_shape_str(have, sizeof have, t->ndim, t->shape);
    if (t->ndim != nd || memcmp(t->shape, shape, (size_t)nd * sizeof *shape) != 0)
        ck_problem(v, t->name, "shape %s, expected %s for config.json", have, want);
    else if (as_ckpt(t->dtype) == MB_CKPT_OTHER)
        ck_problem(v, t->name, "dtype %s, expected F32, BF16 or F16",
                   mb_st_dtype_name(t->dtype));
}

static void check_structure(const struct hfdir *h, struct ck_verify *v)
{
    struct mb_param_table pt;
    char *used = mb_xcalloc((size_t)mb_st_dir_count(h->st) + 1, 1);

    mb_param_table_build(&pt, &h->cfg);
    for (int i = 0; i < pt.count; i++) {
        const struct mb_param *p = &pt.items[i];
        for (int r = 0; r < h->arch->nrules; r++)
            if (strcmp(h->arch->rules[r].mb, p->name) == 0)
                for (int64_t l = 0; l < (p->per_layer ? h->cfg.num_layers : 1); l++)
                    expect(h, v, &h->arch->rules[r], p, l, used);
    }
    /* a tied model may keep lm_head.weight equal to the embedding (bridge/tied.c) */
    const char *head = NULL;
    if (mb_bridge_tied_head(h->st, h->arch, &h->cfg, h->dir, &head) != 0)
        ck_problem(v, "lm_head.weight", "%s", mb_err_what());
    for (int i = 0; i < mb_st_dir_count(h->st); i++) {
        const char *name = mb_st_dir_at(h->st, i)->name;
        if (!used[i] && !skippable(name) && !(head && strcmp(name, head) == 0))
            ck_problem(v, name, "unexpected tensor: not part of a %s with this config.json",
                       h->arch->hf_name);
    }
    free(used);
}

static void check_values(const struct hfdir *h, struct ck_verify *v)
{
    for (int i = 0; i < v->n; i++) {
        const struct mb_st_tensor *t = mb_st_dir_at(h->st, i);
        if (as_ckpt(t->dtype) != MB_CKPT_OTHER)
            ck_check_finite(v, t->name, as_ckpt(t->dtype), t->data, t->ndim, t->shape,
                            t->numel);
        v->crc[i] = mb_crc32c(0, t->data, t->nbytes);
    }
}

int ck_verify_hf(const char *dir, const char *check, const char *write)
{
    struct hfdir h = { .dir = dir };
    struct ck_verify v = { 0 };

    if (read_config(&h) != 0)
        return -1;
    h.st = mb_st_dir_open(dir);
    if (!h.st) { /* headers, byte ranges or index broken: nothing more can be read */
        ck_problem(&v, mb_err_where(), "%s", mb_err_what());
        mb_err_clear();
    } else {
        v.n = mb_st_dir_count(h.st);
        v.names = mb_xcalloc((size_t)v.n + 1, sizeof *v.names);
        v.crc = mb_xcalloc((size_t)v.n + 1, sizeof *v.crc);
        for (int i = 0; i < v.n; i++)
            v.names[i] = mb_st_dir_at(h.st, i)->name; /* in name order */
        if (!h.cfg_ok)
            ck_problem(&v, dir, "config.json: %s", h.cfg_err);
        else
            check_structure(&h, &v);
        check_values(&h, &v);
    }
    int rc = ck_verify_finish(&v, dir, h.st ? check : NULL, write);
    free(v.names);
    free(v.crc);
    hf_release(&h);
    return rc;
}
