/* mb-convert/to_peft.c - adapter-only checkpoint -> HF PEFT adapter directory (rank 0
 * writes; others wait).
 *
 * adapter_model.safetensors holds, for every adapted HF module of every layer,
 * base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight [out, r] (DoRA:
 * .lora_magnitude_vector [out]), as PEFT saves them (finetune.md 3.3). A fused Megatron
 * layer is one adapter whose B rows follow the base weight's fused order; it goes out
 * as one adapter per HF module, as Megatron Bridge exports it (finetune.md 3.4): B and m
 * cut by the same row moves that split the base weight (q/k/v by query group, gate/up
 * halves, GPT-2's c_attn regrouped), A the same for each. adapter_config.json carries
 * r, lora_alpha (so PEFT's scale lora_alpha / r is mb's alpha / dim), the dropout, DoRA,
 * and the target module names. Both files go into a temporary directory beside the
 * output that takes its place when complete (outdir.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bridge/adapter.h"
#include "bridge/bridge.h"
#include "convert.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "outdir.h"

#define ST_NAME "adapter_model.safetensors"
#define CONFIG_NAME "adapter_config.json"

enum pt_kind { PT_A, PT_B, PT_M };

struct pt_tensor {
    char *name; /* base_model.model.<HF module>.lora_A.weight ... */
    int mod;    /* the adapter module it comes from */
    const struct mb_bridge_rule *rule;
    int64_t layer;
    enum pt_kind kind;
    struct mb_st_tensor spec;
};

struct to_peft {
    const struct cv_opts *o;
    char *file;
    mb_ckpt_reader *r;
    struct mb_bridge_adapter a;
    const struct mb_bridge_arch *arch;
    struct cv_outdir outdir;
    struct pt_tensor *t;
    int n;
    enum mb_st_dtype out;
    int conv1d; /* an adapted base weight is a GPT-2 Conv1D ([in, out] in HF) */
};

/* A root attribute, or NULL (not an error) when absent. */
static char *opt_attr(struct to_peft *j, const char *name)
{
    char *v = NULL;

    if (mb_ckpt_reader_attr(j->r, name, &v) != 0) {
        mb_err_clear();
        return NULL;
    }
    return v;
}

static int find_arch(struct to_peft *j)
{
    char *arch = opt_attr(j, "hf_architecture");
    int rc = 0;

    j->arch = arch ? mb_bridge_arch_find(arch) : mb_bridge_arch_for_family(j->a.cfg.family);
    if (!j->arch)
        rc = mb_err_set(MB_E_UNSUPPORTED, j->file, "no HF architecture for %s '%s'",
                        arch ? "hf_architecture" : "model family", arch ? arch : j->a.cfg.family);
    free(arch);
    return rc;
}

/* RULE is one of the HF weights of module NAME. */
static int rule_of(const struct mb_bridge_rule *rule, const char *name)
{
    size_t n = strlen(name);

    return strncmp(rule->mb, name, n) == 0 && strcmp(rule->mb + n, ".weight") == 0;
}

/* The HF module of RULE at LAYER: its weight's name without ".weight". */
static void hf_module(const struct mb_bridge_rule *rule, int64_t layer, char *buf, size_t cap)
{
    mb_bridge_hf_name(rule, layer, buf, cap);
    size_t n = strlen(buf);
    if (n > 7 && strcmp(buf + n - 7, ".weight") == 0)
        buf[n - 7] = '\0';
}

static void add_tensor(struct to_peft *j, size_t *cap, int mod, const struct mb_bridge_rule *rule,
                       int64_t layer, enum pt_kind kind)
{
    static const char *const suffix[] = { "lora_A.weight", "lora_B.weight",
                                          "lora_magnitude_vector" };
    const struct mb_bridge_adapter_module *m = &j->a.mod[mod];
    char module[256];
    int64_t r = j->a.dim;
    /* B and m: the rows that this HF module takes, those of its base weight */
    int64_t rows = mb_bridge_adapter_hf_row_count(rule, &j->a.cfg, m->out);

    MB_GROW(j->t, *cap, (size_t)j->n + 1);
    struct pt_tensor *t = &j->t[j->n++];
    memset(t, 0, sizeof *t);
    hf_module(rule, layer, module, sizeof module);
    t->name = mb_xasprintf("base_model.model.%s.%s", module, suffix[kind]);
    t->mod = mod;
    t->rule = rule;
    t->layer = layer;
    t->kind = kind;
    t->spec.name = t->name;
    t->spec.dtype = j->out;
    t->spec.ndim = kind == PT_M ? 1 : 2;
    t->spec.shape[0] = kind == PT_A ? r : rows;
    t->spec.shape[1] = kind == PT_A ? m->in : r;
    t->spec.numel = t->spec.shape[0] * (kind == PT_M ? 1 : t->spec.shape[1]);
    t->spec.nbytes = (size_t)t->spec.numel * mb_st_dtype_size(t->spec.dtype);
}

/* Every module's tensors, layer by layer, in the architecture's module order. */
static void list_tensors(struct to_peft *j)
{
    size_t cap = 0;

    for (int k = 0; k < j->a.n; k++)
        for (int64_t l = 0; l < j->a.cfg.num_layers; l++)
            for (int ri = 0; ri < j->arch->nrules; ri++) {
                const struct mb_bridge_rule *rule = &j->arch->rules[ri];
                if (!rule_of(rule, j->a.mod[k].name))
                    continue;
                j->conv1d |= rule->op == MB_BR_T || rule->op == MB_BR_QKV_T;
                add_tensor(j, &cap, k, rule, l, PT_A);
                add_tensor(j, &cap, k, rule, l, PT_B);
                if (j->a.dora)
                    add_tensor(j, &cap, k, rule, l, PT_M);
            }
}

/* Layer L of tensor T from the module's whole A, B and m: A as it is, the rows of B or m
 * that T's HF module takes; cast, then put. */
static int put_tensor(struct to_peft *j, mb_st_writer *w, const struct pt_tensor *t,
                      const float *A, const float *B, const float *mag, float *rows, float *tmp,
                      void *cast)
{
    const struct mb_bridge_adapter_module *m = &j->a.mod[t->mod];
    int64_t r = j->a.dim, l = t->layer;
    const float *src = rows;

    if (t->kind == PT_A)
        src = A + l * r * m->in;
    else if (t->kind == PT_B)
        mb_bridge_adapter_hf_rows(t->rule, &j->a.cfg, B + l * m->out * r, m->out, r, rows, tmp);
    else
        mb_bridge_adapter_hf_rows(t->rule, &j->a.cfg, mag + l * m->out, m->out, 1, rows, tmp);
    cv_cast(src, MB_ST_F32, cast, j->out, (size_t)t->spec.numel);
    return mb_st_writer_put(w, t->name, 0, cast, t->spec.nbytes);
}

/* Module K's tensors: its adapter read whole once (adapters are small). */
static int put_module(struct to_peft *j, mb_st_writer *w, int k)
{
    const struct mb_bridge_adapter_module *m = &j->a.mod[k];
    size_t most = (size_t)MB_MAX(m->out, m->in) * (size_t)j->a.dim;
    float *A, *B, *mag;

    if (mb_bridge_adapter_read(&j->a, j->r, k, &A, &B, &mag) != 0)
        return -1;
    float *rows = mb_xmalloc(most * sizeof(float)), *tmp = mb_xmalloc(most * sizeof(float));
    void *cast = mb_xmalloc(most * sizeof(float));
    int rc = 0;
    for (int i = 0; rc == 0 && i < j->n; i++)
        if (j->t[i].mod == k)
            rc = put_tensor(j, w, &j->t[i], A, B, mag, rows, tmp, cast);
    free(rows);
    free(tmp);
    free(cast);
    free(A);
    free(B);
    free(mag);
    return rc;
}

static char *join(const char *dir, const char *name)
{
    return mb_xasprintf("%s/%s", dir, name);
}

static int write_weights(struct to_peft *j)
{
    struct mb_st_tensor *spec = mb_xmalloc((size_t)j->n * sizeof *spec);
    char *path = join(j->outdir.tmp, ST_NAME);

    for (int i = 0; i < j->n; i++)
        spec[i] = j->t[i].spec;
    cv_outdir_add(&j->outdir, ST_NAME);
    mb_st_writer *w = mb_st_writer_open(path, spec, j->n, "{\"format\": \"pt\"}");
    int rc = w ? 0 : -1;
    for (int k = 0; rc == 0 && k < j->a.n; k++)
        rc = put_module(j, w, k);
    if (rc == 0)
        rc = mb_st_writer_close(w);
    else
        mb_st_writer_abort(w);
    free(path);
    free(spec);
    return rc;
}

/* The name of RULE's module within a layer ("self_attn.q_proj", "attn.c_proj"). */
static void in_layer(const struct mb_bridge_rule *rule, char *buf, size_t cap)
{
    const char *s = strstr(rule->hf, "%d.");

    snprintf(buf, cap, "%s", s ? s + 3 : rule->hf);
    size_t n = strlen(buf);
    if (n > 7 && strcmp(buf + n - 7, ".weight") == 0)
        buf[n - 7] = '\0';
}

static const char *last_part(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

/* 1 if a module of the layer that is not adapted has the last name part LAST. */
static int unadapted_named(const struct to_peft *j, const char *last)
{
    char other[128];

    for (int i = 0; mb_bridge_adapter_module_name(i); i++) {
        const char *name = mb_bridge_adapter_module_name(i);
        int adapted = 0;
        for (int k = 0; k < j->a.n; k++)
            adapted |= strcmp(j->a.mod[k].name, name) == 0;
        for (int ri = 0; !adapted && ri < j->arch->nrules; ri++) {
            if (!rule_of(&j->arch->rules[ri], name))
                continue;
            in_layer(&j->arch->rules[ri], other, sizeof other);
            if (strcmp(last_part(other), last) == 0)
                return 1;
        }
    }
    return 0;
}

/* Add to the sorted set NAMES[*N] the name PEFT matches the adapted HF module of RULE
 * by: its last part ("q_proj"), or, when a module of the layer that is not adapted ends
 * the same way (GPT-2's attn.c_proj and mlp.c_proj), its name within the layer
 * ("attn.c_proj"): PEFT matches a list entry as a suffix of the module's name. */
static void add_target_name(const struct to_peft *j, const struct mb_bridge_rule *rule,
                            char (*names)[128], int *n)
{
    char module[128], name[128];

    in_layer(rule, module, sizeof module);
    const char *last = last_part(module);
    snprintf(name, sizeof name, "%s", unadapted_named(j, last) ? module : last);
    int at = 0;
    while (at < *n && strcmp(names[at], name) < 0)
        at++;
    if (at < *n && strcmp(names[at], name) == 0)
        return;
    memmove(names[at + 1], names[at], (size_t)(*n - at) * sizeof *names);
    snprintf(names[at], sizeof *names, "%s", name);
    (*n)++;
}

/* base_model_name_or_path: the HF id the base came from, when its config.json kept it. */
static void add_base_name(struct to_peft *j, struct mb_buf *b)
{
    char *cfg = opt_attr(j, "hf_config");
    mb_json *obj = cfg ? mb_json_parse(cfg, strlen(cfg), "hf_config") : NULL;
    size_t len = 0;
    const char *name = mb_json_str(mb_json_get(obj, "_name_or_path"), &len);

    mb_err_clear();
    mb_buf_adds(b, "  \"base_model_name_or_path\": ");
    if (name && len)
        mb_json_escape(b, name, len);
    else
        mb_buf_adds(b, "null");
    mb_buf_adds(b, ",\n");
    mb_json_free(obj);
    free(cfg);
}

/* adapter_config.json as PEFT's save_pretrained writes it: 2-space indent, keys sorted;
 * the fields Megatron Bridge writes (finetune.md 3.2) and PEFT's defaults for the rest. */
static char *config_text(struct to_peft *j)
{
    struct mb_buf b = MB_BUF_INIT;
    char names[32][128];
    int n = 0;

    for (int ri = 0; ri < j->arch->nrules; ri++)
        for (int k = 0; k < j->a.n && n < 32; k++)
            if (rule_of(&j->arch->rules[ri], j->a.mod[k].name))
                add_target_name(j, &j->arch->rules[ri], names, &n);
    mb_buf_adds(&b, "{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,\n");
    add_base_name(j, &b);
    mb_buf_adds(&b, "  \"bias\": \"none\",\n  \"exclude_modules\": null,\n");
    mb_buf_addf(&b, "  \"fan_in_fan_out\": %s,\n", j->conv1d ? "true" : "false");
    mb_buf_adds(&b, "  \"inference_mode\": true,\n  \"init_lora_weights\": true,\n"
                    "  \"layers_pattern\": null,\n  \"layers_to_transform\": null,\n"
                    "  \"lora_alpha\": ");
    if (j->a.alpha == (double)(int64_t)j->a.alpha)
        mb_buf_addf(&b, "%lld", (long long)j->a.alpha);
    else
        mb_buf_add_real(&b, j->a.alpha);
    mb_buf_adds(&b, ",\n  \"lora_bias\": false,\n  \"lora_dropout\": ");
    mb_buf_add_real(&b, j->a.dropout);
    mb_buf_adds(&b, ",\n  \"modules_to_save\": null,\n  \"peft_type\": \"LORA\",\n");
    mb_buf_addf(&b, "  \"r\": %lld,\n", (long long)j->a.dim);
    mb_buf_adds(&b, "  \"rank_pattern\": {},\n  \"revision\": null,\n  \"target_modules\": [");
    for (int i = 0; i < n; i++) {
        mb_buf_adds(&b, i ? ",\n    " : "\n    ");
        mb_json_escape(&b, names[i], strlen(names[i]));
    }
    mb_buf_adds(&b, "\n  ],\n  \"task_type\": \"CAUSAL_LM\",\n");
    mb_buf_addf(&b, "  \"use_dora\": %s,\n", j->a.dora ? "true" : "false");
    mb_buf_adds(&b, "  \"use_rslora\": false\n}\n");
    return b.data;
}

static int write_config(struct to_peft *j)
{
    struct mb_outfile of = MB_OUTFILE_INIT;
    char *path = join(j->outdir.tmp, CONFIG_NAME), *text = config_text(j);

    cv_outdir_add(&j->outdir, CONFIG_NAME);
    int rc = mb_outfile_open(&of, path);
    if (rc == 0) {
        mb_outfile_write(&of, text, strlen(text));
        rc = mb_outfile_commit(&of);
    }
    free(path);
    free(text);
    return rc;
}

static int convert(struct to_peft *j, const char *dst)
{
    if (mb_bridge_adapter_open(&j->a, j->r, j->file) != 0 || find_arch(j) != 0)
        return -1;
    j->out = j->o->cast ? j->o->out : MB_ST_F32;
    list_tensors(j);
    if (cv_outdir_open(&j->outdir, dst) != 0)
        return -1;
    int rc = write_weights(j);
    if (rc == 0)
        rc = write_config(j);
    if (rc != 0) {
        cv_outdir_abort(&j->outdir);
        return rc;
    }
    if (cv_outdir_commit(&j->outdir) != 0)
        return -1;
    mb_log_info("%s -> %s: %s adapter for %s, r %lld, %d tensors", j->file, dst,
                j->a.dora ? "DoRA" : "LoRA", j->arch->hf_name, (long long)j->a.dim, j->n);
    return 0;
}

static void release(struct to_peft *j)
{
    for (int i = 0; i < j->n; i++)
        free(j->t[i].name);
    free(j->t);
    mb_bridge_adapter_release(&j->a);
    mb_ckpt_reader_close(j->r);
    free(j->file);
}

int cv_h5_to_peft(const struct mb_dist *d, const struct cv_opts *o, const char *src,
                  const char *dst)
{
    struct to_peft j = { .o = o };
    int rc = 0;

    if (d->rank == 0) {
        rc = cv_open_ckpt(src, &j.file, &j.r);
        if (rc == 0)
            rc = convert(&j, dst);
        release(&j);
    }
    if (!mb_dist_all_ok(d, rc == 0) && rc == 0)
        rc = mb_err_set(MB_E_IO, dst, "rank 0 failed to write the adapter");
    return rc;
}
