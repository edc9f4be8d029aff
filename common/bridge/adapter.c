/* bridge/adapter.c - read and check an adapter-only checkpoint (adapter.h). */
#include "bridge/adapter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"

/* The modules an adapter may target (Megatron Bridge's LoRA target names, finetune.md
 * 1.3) and where they are in the model. */
static const struct {
    const char *target, *name;
} modules[] = {
    { "linear_qkv", "decoder.layers.self_attention.linear_qkv" },
    { "linear_proj", "decoder.layers.self_attention.linear_proj" },
    { "linear_fc1", "decoder.layers.mlp.linear_fc1" },
    { "linear_fc2", "decoder.layers.mlp.linear_fc2" },
};

/* The tensors of one adapter below its module's name. */
#define SUFFIX_A ".adapter.linear_in.weight"
#define SUFFIX_B ".adapter.linear_out.weight"
#define SUFFIX_M ".adapter.weight_magnitude"

static int peft_error(const struct mb_bridge_adapter *a, const char *what)
{
    return mb_err_set(MB_E_INVALID, a->file, "attribute 'peft': %s", what);
}

/* Add the module targeted by NAME (a peft.target_modules entry). */
static int add_target(struct mb_bridge_adapter *a, const char *name)
{
    char what[256];

    for (size_t i = 0; i < MB_ARRAY_LEN(modules); i++) {
        if (strcmp(name, modules[i].target) != 0)
            continue;
        for (int k = 0; k < a->n; k++)
            if (a->mod[k].target == modules[i].target) {
                snprintf(what, sizeof what, "target module '%s' is listed twice", name);
                return peft_error(a, what);
            }
        char *weight = mb_xasprintf("%s.weight", modules[i].name);
        const struct mb_param *p = NULL;
        for (int k = 0; k < a->pt.count && !p; k++)
            if (strcmp(a->pt.items[k].name, weight) == 0)
                p = &a->pt.items[k];
        free(weight);
        if (!p || p->ndim != 3) {
            snprintf(what, sizeof what, "the model has no module '%s' (target '%s')",
                     modules[i].name, name);
            return peft_error(a, what);
        }
        struct mb_bridge_adapter_module *m = &a->mod[a->n++];
        m->target = modules[i].target;
        m->name = modules[i].name;
        m->base = p;
        m->out = p->shape[1];
        m->in = p->shape[2];
        return 0;
    }
    snprintf(what, sizeof what, "target module '%s' is not one of linear_qkv, linear_proj, "
             "linear_fc1, linear_fc2", name);
    return peft_error(a, what);
}

static int parse_peft(struct mb_bridge_adapter *a, const char *text)
{
    mb_json *j = mb_json_parse(text, strlen(text), a->file);
    const mb_json *kind = mb_json_get(j, "peft"), *dim = mb_json_get(j, "dim");
    const mb_json *alpha = mb_json_get(j, "alpha"), *drop = mb_json_get(j, "dropout");
    const mb_json *tm = mb_json_get(j, "target_modules");
    const char *k = mb_json_str(kind, NULL);
    int rc = 0;

    if (!j)
        rc = peft_error(a, "not JSON");
    else if (!k || (strcmp(k, "lora") != 0 && strcmp(k, "dora") != 0))
        rc = peft_error(a, "\"peft\" is not \"lora\" or \"dora\"");
    else if (!dim || mb_json_type_of(dim) != MB_JSON_INT || mb_json_int(dim) < 1)
        rc = peft_error(a, "\"dim\" is not a positive integer");
    else if (!alpha || (mb_json_type_of(alpha) != MB_JSON_INT &&
                        mb_json_type_of(alpha) != MB_JSON_REAL))
        rc = peft_error(a, "\"alpha\" is not a number");
    else if (!tm || mb_json_type_of(tm) != MB_JSON_ARRAY || mb_json_len(tm) == 0)
        rc = peft_error(a, "\"target_modules\" is not a list of module names");
    if (rc == 0) {
        a->dora = strcmp(k, "dora") == 0;
        a->dim = mb_json_int(dim);
        a->alpha = mb_json_number(alpha);
        a->dropout = drop ? mb_json_number(drop) : 0.0;
    }
    for (size_t i = 0; rc == 0 && i < mb_json_len(tm); i++) {
        const char *name = mb_json_str(mb_json_at(tm, i), NULL);
        /* duplicates are refused, so no more than MB_BRIDGE_ADAPTER_MODULES are added */
        rc = name ? add_target(a, name)
                  : peft_error(a, "\"target_modules\" is not a list of module names");
    }
    mb_json_free(j);
    return rc;
}

static int read_config(struct mb_bridge_adapter *a, mb_ckpt_reader *r)
{
    char *text = NULL, where[600];

    if (mb_ckpt_reader_attr(r, "model_config", &text) != 0)
        return -1;
    snprintf(where, sizeof where, "%s: attribute 'model_config'", a->file);
    mb_json *j = mb_json_parse(text, strlen(text), where);
    int rc = j ? mb_model_config_from_json(&a->cfg, j, where) : -1;
    mb_json_free(j);
    free(text);
    if (rc == 0)
        mb_param_table_build(&a->pt, &a->cfg);
    return rc;
}

/* The module of A whose adapter tensor is DOTTED, with *KIND 'a', 'b' or 'm'; NULL with
 * mb_err naming the tensor when there is none. */
static struct mb_bridge_adapter_module *module_of(struct mb_bridge_adapter *a, const char *dotted,
                                                  char *kind)
{
    static const struct { const char *suffix; char kind; } kinds[] = {
        { SUFFIX_A, 'a' }, { SUFFIX_B, 'b' }, { SUFFIX_M, 'm' },
    };
    size_t n = strlen(dotted), cut = 0;

    for (size_t i = 0; i < MB_ARRAY_LEN(kinds) && !cut; i++) {
        size_t s = strlen(kinds[i].suffix);
        if (n > s && strcmp(dotted + n - s, kinds[i].suffix) == 0) {
            cut = n - s;
            *kind = kinds[i].kind;
        }
    }
    if (!cut) {
        mb_err_set(MB_E_INVALID, a->file, "tensor '%s' is not an adapter's linear_in.weight, "
                   "linear_out.weight or weight_magnitude", dotted);
        return NULL;
    }
    for (int k = 0; k < a->n; k++)
        if (strlen(a->mod[k].name) == cut && strncmp(dotted, a->mod[k].name, cut) == 0)
            return &a->mod[k];
    for (size_t i = 0; i < MB_ARRAY_LEN(modules); i++)
        if (strlen(modules[i].name) == cut && strncmp(dotted, modules[i].name, cut) == 0) {
            mb_err_set(MB_E_INVALID, a->file, "tensor '%s': module '%s' is not in "
                       "peft.target_modules", dotted, modules[i].target);
            return NULL;
        }
    mb_err_set(MB_E_INVALID, a->file, "tensor '%s': the model has no module '%.*s' (adapters "
               "go on linear_qkv, linear_proj, linear_fc1, linear_fc2)", dotted, (int)cut, dotted);
    return NULL;
}

/* Dataset IT (under /adapter) has the shape its kind needs. */
static int check_shape(const struct mb_bridge_adapter *a, const struct mb_bridge_adapter_module *m,
                       const struct mb_ckpt_info *it, const char *dotted, char kind)
{
    int64_t L = a->cfg.num_layers, r = a->dim;
    int64_t want[3] = { L, kind == 'a' ? r : m->out, kind == 'a' ? m->in : r };
    int nd = kind == 'm' ? 2 : 3;
    char have_s[96], want_s[96];

    if (it->ndim == nd && memcmp(it->shape, want, (size_t)nd * sizeof *want) == 0) {
        if (it->dtype == MB_CKPT_F32 || it->dtype == MB_CKPT_BF16 || it->dtype == MB_CKPT_F16)
            return 0;
        return mb_err_set(MB_E_UNSUPPORTED, a->file, "tensor '%s' is %s", dotted,
                          mb_ckpt_dtype_name(it->dtype));
    }
    mb_ckpt_shape_str(have_s, sizeof have_s, it->ndim, it->shape);
    mb_ckpt_shape_str(want_s, sizeof want_s, nd, want);
    return mb_err_set(MB_E_INVALID, a->file, "tensor '%s' is %s, expected %s (r %lld on the "
                      "model's %s [%lld, %lld])", dotted, have_s, want_s, (long long)r,
                      m->target, (long long)m->out, (long long)m->in);
}

/* Every dataset under /adapter: a tensor of a target, of its shape. */
static int scan_datasets(struct mb_bridge_adapter *a, mb_ckpt_reader *r)
{
    for (int i = 0; i < mb_ckpt_reader_count(r); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(r, i);
        if (strncmp(it->path, "/adapter/", 9) != 0)
            continue;
        char *dotted = mb_xstrdup(it->path + 9), kind = 0;
        for (char *c = dotted; *c; c++)
            if (*c == '/')
                *c = '.';
        struct mb_bridge_adapter_module *m = module_of(a, dotted, &kind);
        int rc = m ? check_shape(a, m, it, dotted, kind) : -1;
        if (rc == 0 && kind == 'm' && !a->dora)
            rc = mb_err_set(MB_E_INVALID, a->file, "tensor '%s': a DoRA magnitude in a LoRA "
                            "adapter (peft \"lora\")", dotted);
        free(dotted);
        if (rc != 0)
            return -1;
        char **slot = kind == 'a' ? &m->a : kind == 'b' ? &m->b : &m->m;
        *slot = mb_xstrdup(it->path);
    }
    for (int k = 0; k < a->n; k++) {
        const struct mb_bridge_adapter_module *m = &a->mod[k];
        const char *missing = !m->a ? SUFFIX_A : !m->b ? SUFFIX_B : a->dora && !m->m ? SUFFIX_M
                                                                                       : NULL;
        if (missing)
            return mb_err_set(MB_E_INVALID, a->file, "missing tensor '%s%s' (peft.target_modules "
                              "has %s)", m->name, missing, m->target);
    }
    return 0;
}

int mb_bridge_adapter_open(struct mb_bridge_adapter *a, mb_ckpt_reader *r, const char *file)
{
    char *text = NULL;

    memset(a, 0, sizeof *a);
    a->file = mb_xstrdup(file);
    if (!mb_ckpt_reader_has_attr(r, "peft"))
        return mb_err_set(MB_E_INVALID, file, "not an adapter checkpoint (no 'peft' attribute)");
    if (read_config(a, r) != 0 || mb_ckpt_reader_attr(r, "peft", &text) != 0)
        return -1;
    int rc = parse_peft(a, text);
    free(text);
    if (rc == 0 && mb_ckpt_reader_has_attr(r, "base_checkpoint") &&
        mb_ckpt_reader_attr(r, "base_checkpoint", &a->base_checkpoint) != 0)
        rc = -1;
    return rc == 0 ? scan_datasets(a, r) : rc;
}

void mb_bridge_adapter_release(struct mb_bridge_adapter *a)
{
    for (int k = 0; k < a->n; k++) {
        free(a->mod[k].a);
        free(a->mod[k].b);
        free(a->mod[k].m);
    }
    free(a->file);
    free(a->base_checkpoint);
    memset(a, 0, sizeof *a);
}

const char *mb_bridge_adapter_module_name(int i)
{
    return i >= 0 && i < (int)MB_ARRAY_LEN(modules) ? modules[i].name : NULL;
}

double mb_bridge_adapter_scale(const struct mb_bridge_adapter *a)
{
    return a->alpha / (double)a->dim;
}

static float *read_whole(mb_ckpt_reader *r, const char *path, int64_t n)
{
    float *x = mb_xmalloc(sizeof(float) * (size_t)n);

    if (mb_ckpt_reader_read_f32(r, path, x, n) != 0) {
        free(x);
        return NULL;
    }
    return x;
}

int mb_bridge_adapter_read(const struct mb_bridge_adapter *a, mb_ckpt_reader *r, int m,
                           float **A, float **B, float **mag)
{
    const struct mb_bridge_adapter_module *md = &a->mod[m];
    int64_t L = a->cfg.num_layers;

    *A = read_whole(r, md->a, L * a->dim * md->in);
    *B = *A ? read_whole(r, md->b, L * md->out * a->dim) : NULL;
    *mag = *B && md->m ? read_whole(r, md->m, L * md->out) : NULL;
    if (*A && *B && (*mag || !md->m))
        return 0;
    free(*A);
    free(*B);
    *A = *B = NULL;
    return -1;
}

/* RULE with its transposes left out: the row moves only. */
static struct mb_bridge_rule rows_only(const struct mb_bridge_rule *rule)
{
    struct mb_bridge_rule r = *rule;

    if (rule->op == MB_BR_T)
        r.op = MB_BR_COPY;
    else if (rule->op == MB_BR_QKV_T)
        r.op = MB_BR_QKV;
    return r;
}

int64_t mb_bridge_adapter_hf_row_count(const struct mb_bridge_rule *rule,
                                       const struct mb_model_config *c, int64_t rows)
{
    struct mb_bridge_rule ro = rows_only(rule);
    struct mb_param p = { .ndim = 2, .shape = { rows, 1 } };
    int64_t shape[2];

    mb_bridge_hf_shape(&ro, &p, c, shape);
    return shape[0];
}

int64_t mb_bridge_adapter_hf_rows(const struct mb_bridge_rule *rule,
                                  const struct mb_model_config *c, const float *src,
                                  int64_t rows, int64_t cols, float *dst, float *tmp)
{
    struct mb_bridge_rule ro = rows_only(rule);
    struct mb_param p = { .ndim = 2, .shape = { rows, cols } };

    /* from mb to HF the slice is only read */
    mb_bridge_move(&ro, &p, c, sizeof(float), 0, (void *)src, dst, tmp);
    return mb_bridge_adapter_hf_row_count(rule, c, rows);
}
