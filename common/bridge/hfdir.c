/* bridge/hfdir.c - an HF model directory read straight into mb parameters (fp32), for
 * tools that use a model without writing a checkpoint (mb-generate DIR).
 *
 * The directory's tensors are checked against the architecture's table as mb-convert
 * checks them (present, a float type, the shape the config gives) before any byte is
 * read; each Megatron parameter is then assembled one layer slice at a time in the
 * input's element type with the same moves as mb-convert, and widened to fp32.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bridge/bridge.h"
#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

static int ends_with(const char *s, const char *end)
{
    size_t n = strlen(s), m = strlen(end);
    return n >= m && strcmp(s + n - m, end) == 0;
}

int mb_bridge_check_not_gguf(const char *path)
{
    struct stat sb;
    char *found = NULL;

    if (ends_with(path, ".gguf"))
        found = mb_xstrdup(path);
    if (!found && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char *cfg = mb_xasprintf("%s/config.json", path);
        DIR *dp = mb_fs_exists(cfg) ? NULL : opendir(path);
        struct dirent *e;
        while (dp && !found && (e = readdir(dp)))
            if (ends_with(e->d_name, ".gguf"))
                found = mb_xasprintf("%s/%s", path, e->d_name);
        if (dp)
            closedir(dp);
        free(cfg);
    }
    if (!found)
        return 0;
    int rc = mb_err_set(MB_E_UNSUPPORTED, found, "GGUF files are not supported: mb reads "
                        "HuggingFace directories (config.json and *.safetensors)");
    free(found);
    return rc;
}

int mb_bridge_is_hf_dir(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return 0;
    char *cfg = mb_xasprintf("%s/config.json", path), *latest = mb_xasprintf("%s/latest", path);
    int yes = mb_fs_exists(cfg) && !mb_fs_exists(latest);
    free(cfg);
    free(latest);
    return yes;
}

/* HF tensor NAME, also without the architecture's optional prefix. */
static const struct mb_st_tensor *find(const struct mb_bridge_hf *h, const char *name)
{
    return mb_bridge_find_tensor(h->st, h->arch, name);
}

/* Every HF tensor of P: present, of one float type (into *DT), the shape of its rule. */
static int check_param(const struct mb_bridge_hf *h, const struct mb_param *p,
                       enum mb_st_dtype *dt)
{
    int64_t layers = p->per_layer ? h->cfg.num_layers : 1, shape[2];
    char name[256];

    *dt = MB_ST_DTYPE_COUNT;
    for (int r = 0; r < h->arch->nrules; r++) {
        const struct mb_bridge_rule *rule = &h->arch->rules[r];
        if (strcmp(rule->mb, p->name) != 0)
            continue;
        for (int64_t l = 0; l < layers; l++) {
            mb_bridge_hf_name(rule, l, name, sizeof name);
            const struct mb_st_tensor *t = find(h, name);
            if (!t)
                return mb_err_set(MB_E_INVALID, h->dir, "missing tensor '%s' (a %s with this "
                                  "config has it)", name, h->arch->hf_name);
            if (t->dtype != MB_ST_F32 && t->dtype != MB_ST_BF16 && t->dtype != MB_ST_F16)
                return mb_err_set(MB_E_UNSUPPORTED, h->dir, "tensor '%s' is %s (F32, BF16 or "
                                  "F16 expected)", t->name, mb_st_dtype_name(t->dtype));
            if (*dt != MB_ST_DTYPE_COUNT && t->dtype != *dt)
                return mb_err_set(MB_E_UNSUPPORTED, h->dir, "tensor '%s' is %s, the other "
                                  "parts of %s are %s", t->name, mb_st_dtype_name(t->dtype),
                                  p->name, mb_st_dtype_name(*dt));
            *dt = t->dtype;
            int nd = mb_bridge_hf_shape(rule, p, &h->cfg, shape);
            if (nd != t->ndim || memcmp(shape, t->shape, (size_t)nd * sizeof *shape) != 0)
                return mb_err_set(MB_E_INVALID, h->dir, "tensor '%s' does not have the shape "
                                  "the config gives", t->name);
        }
    }
    if (*dt == MB_ST_DTYPE_COUNT)
        return mb_err_set(MB_E_INVALID, h->dir, "no HF tensor maps to %s", p->name);
    return 0;
}

int mb_bridge_hf_open(struct mb_bridge_hf *h, const char *dir)
{
    char *path = mb_xasprintf("%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;

    memset(h, 0, sizeof *h);
    h->dir = mb_xstrdup(dir);
    int rc = mb_bridge_check_not_gguf(dir);
    if (rc == 0)
        rc = mb_fs_read_all(path, &text, &len);
    if (rc == 0)
        rc = mb_bridge_config_from_hf(text, len, path, &h->cfg, &h->arch);
    free(text);
    free(path);
    if (rc == 0 && !(h->st = mb_st_dir_open(dir)))
        rc = -1;
    if (rc == 0) {
        mb_param_table_build(&h->params, &h->cfg);
        h->dtype = mb_xcalloc((size_t)h->params.count, sizeof *h->dtype);
    }
    for (int i = 0; rc == 0 && i < h->params.count; i++)
        rc = check_param(h, &h->params.items[i], &h->dtype[i]);
    if (rc != 0)
        mb_bridge_hf_close(h);
    return rc;
}

static void widen(const void *src, enum mb_st_dtype t, float *out, size_t n)
{
    const uint16_t *h = src;

    if (t == MB_ST_F32) {
        memcpy(out, src, n * sizeof *out);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = t == MB_ST_BF16 ? mb_ckpt_f32_from_bf16(h[i]) : mb_ckpt_f32_from_f16(h[i]);
}

int mb_bridge_hf_read_param(struct mb_bridge_hf *h, int i, float *out)
{
    const struct mb_param *p = &h->params.items[i];
    size_t es = mb_st_dtype_size(h->dtype[i]), bytes = mb_bridge_slice_bytes(p, es);
    int64_t layers = p->per_layer ? h->cfg.num_layers : 1;
    char *slice = mb_xmalloc(bytes), *tmp = mb_xmalloc(bytes), name[256];

    for (int64_t l = 0; l < layers; l++) {
        for (int r = 0; r < h->arch->nrules; r++) {
            const struct mb_bridge_rule *rule = &h->arch->rules[r];
            if (strcmp(rule->mb, p->name) != 0)
                continue;
            mb_bridge_hf_name(rule, l, name, sizeof name);
            const struct mb_st_tensor *t = find(h, name);
            mb_bridge_move(rule, p, &h->cfg, es, 1, slice, (void *)t->data, tmp);
            mb_st_release(t);
        }
        widen(slice, h->dtype[i], out + (size_t)l * (bytes / es), bytes / es);
    }
    free(slice);
    free(tmp);
    return 0;
}

void mb_bridge_hf_close(struct mb_bridge_hf *h)
{
    mb_st_dir_close(h->st);
    free(h->dtype);
    free(h->dir);
    memset(h, 0, sizeof *h);
}
