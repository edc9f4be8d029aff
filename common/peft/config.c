/* peft/config.c - the peft.* keys, and the `peft` attribute of adapter checkpoints. */
#include "peft/peft.h"

#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/str.h"

static const char *const module_names[MB_PEFT_MODULES] = { "linear_qkv", "linear_proj",
                                                           "linear_fc1", "linear_fc2" };
static const char *const kind_names[] = { "none", "lora", "dora" };
static const char *const init_names[] = { "xavier", "normal", "kaiming", "zero" };

const char *mb_peft_module_name(enum mb_peft_module m)
{
    return module_names[m];
}

const char *mb_peft_kind_name(enum mb_peft_kind k)
{
    return kind_names[k];
}

float mb_peft_scale(const struct mb_peft_config *pc)
{
    return (float)(pc->alpha / (double)pc->dim);
}

/* Index of S in NAMES[N], or -1. */
static int lookup(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int parse_init(const mb_config *cfg, const char *key, enum mb_peft_init *out)
{
    const char *s = mb_config_str(cfg, key);
    int i = lookup(s, init_names, (int)MB_ARRAY_LEN(init_names));
    if (i < 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, key),
                          "%s '%s': use xavier, normal, kaiming or zero", key, s);
    *out = (enum mb_peft_init)i;
    return 0;
}

static int parse_targets(const mb_config *cfg, struct mb_peft_config *pc)
{
    const char *key = "peft.target_modules";
    size_t n = 0;
    const char *const *list = mb_config_list(cfg, key, &n);
    if (n == 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, key),
                          "%s is empty: name at least one of linear_qkv, linear_proj, "
                          "linear_fc1, linear_fc2", key);
    for (size_t i = 0; i < n; i++) {
        int m = lookup(list[i], module_names, MB_PEFT_MODULES);
        if (m < 0)
            return mb_err_set(MB_E_INVALID, mb_config_where(cfg, key),
                              "%s: the model has no module '%s' to adapt (its linear layers "
                              "are linear_qkv, linear_proj, linear_fc1, linear_fc2)", key,
                              list[i]);
        pc->target[m] = true;
    }
    return 0;
}

int mb_peft_config_from(struct mb_peft_config *pc, const mb_config *cfg)
{
    memset(pc, 0, sizeof(*pc));
    const char *s = mb_config_str(cfg, "peft.peft");
    int k = lookup(s, kind_names, (int)MB_ARRAY_LEN(kind_names));
    if (k < 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "peft.peft"),
                          "peft.peft '%s': use none, lora or dora", s);
    pc->kind = (enum mb_peft_kind)k;
    if (pc->kind == MB_PEFT_NONE)
        return 0;
    pc->dim = mb_config_i64(cfg, "peft.dim");
    pc->alpha = mb_config_double(cfg, "peft.alpha");
    pc->dropout = mb_config_double(cfg, "peft.dropout");
    if (pc->dim < 1)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "peft.dim"),
                          "peft.dim must be 1 or more, not %lld", (long long)pc->dim);
    if (!(pc->dropout >= 0.0 && pc->dropout < 1.0))
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "peft.dropout"),
                          "peft.dropout %g: must be at least 0 and less than 1", pc->dropout);
    if (pc->dropout > 0 && pc->kind == MB_PEFT_DORA)
        return mb_err_set(MB_E_UNSUPPORTED, mb_config_where(cfg, "peft.dropout"),
                          "peft.dropout %g with peft.peft=dora: DoRA's dropout is not "
                          "supported yet (use 0, Megatron Bridge's default)", pc->dropout);
    const char *pos = mb_config_str(cfg, "peft.dropout_position");
    if (strcmp(pos, "pre") != 0 && strcmp(pos, "post") != 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "peft.dropout_position"),
                          "peft.dropout_position '%s': use pre or post", pos);
    if (pc->dropout > 0 && strcmp(pos, "pre") != 0)
        return mb_err_set(MB_E_UNSUPPORTED, mb_config_where(cfg, "peft.dropout_position"),
                          "peft.dropout_position %s: only pre (on the adapter's input, as "
                          "PEFT does) is supported with peft.dropout > 0", pos);
    if (parse_targets(cfg, pc) < 0 || parse_init(cfg, "peft.lora_A_init_method", &pc->a_init) < 0 ||
        parse_init(cfg, "peft.lora_B_init_method", &pc->b_init) < 0)
        return -1;
    return 0;
}

char *mb_peft_config_to_json(const struct mb_peft_config *pc)
{
    struct mb_buf b = MB_BUF_INIT;
    mb_buf_addf(&b, "{\"peft\": \"%s\", \"dim\": %lld, \"alpha\": ", kind_names[pc->kind],
                (long long)pc->dim);
    mb_buf_add_real(&b, pc->alpha);
    mb_buf_adds(&b, ", \"dropout\": ");
    mb_buf_add_real(&b, pc->dropout);
    mb_buf_adds(&b, ", \"target_modules\": [");
    const char *sep = "";
    for (int m = 0; m < MB_PEFT_MODULES; m++) {
        if (!pc->target[m])
            continue;
        mb_buf_addf(&b, "%s\"%s\"", sep, module_names[m]);
        sep = ", ";
    }
    mb_buf_adds(&b, "]}");
    return b.data;
}

int mb_peft_config_from_json(struct mb_peft_config *pc, const char *json, const char *where)
{
    memset(pc, 0, sizeof(*pc));
    mb_json *root = mb_json_parse(json, strlen(json), where);
    if (!root)
        return -1;
    int rc = 0;
    const char *kind = mb_json_str(mb_json_get(root, "peft"), NULL);
    int k = kind ? lookup(kind, kind_names, (int)MB_ARRAY_LEN(kind_names)) : -1;
    const mb_json *targets = mb_json_get(root, "target_modules");
    if (k < 0 || !targets)
        rc = mb_err_set(MB_E_PARSE, where, "attribute peft: no valid \"peft\" or "
                        "\"target_modules\" in %s", json);
    pc->kind = k < 0 ? MB_PEFT_NONE : (enum mb_peft_kind)k;
    pc->dim = mb_json_int(mb_json_get(root, "dim"));
    pc->alpha = mb_json_number(mb_json_get(root, "alpha"));
    pc->dropout = mb_json_number(mb_json_get(root, "dropout"));
    for (size_t i = 0; rc == 0 && i < mb_json_len(targets); i++) {
        const char *s = mb_json_str(mb_json_at(targets, i), NULL);
        int m = s ? lookup(s, module_names, MB_PEFT_MODULES) : -1;
        if (m < 0)
            rc = mb_err_set(MB_E_PARSE, where, "attribute peft: unknown target module '%s'",
                            s ? s : "?");
        else
            pc->target[m] = true;
    }
    if (rc == 0 && pc->kind != MB_PEFT_NONE && pc->dim < 1)
        rc = mb_err_set(MB_E_PARSE, where, "attribute peft: dim %lld", (long long)pc->dim);
    mb_json_free(root);
    return rc;
}

bool mb_peft_config_same(const struct mb_peft_config *a, const struct mb_peft_config *b)
{
    if (a->kind != b->kind || a->dim != b->dim || a->alpha != b->alpha)
        return false;
    for (int m = 0; m < MB_PEFT_MODULES; m++)
        if (a->target[m] != b->target[m])
            return false;
    return true;
}
