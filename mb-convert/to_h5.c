/* mb-convert/to_h5.c - HF directory -> mb checkpoint.
 *
 * Every rank maps the safetensors (nothing is read until touched), checks the whole
 * tensor list against the architecture's table, then writes its share: layers
 * [L*r/n, L*(r+1)/n) of each stacked tensor, one layer slice at a time, and rows of
 * the other tensors; the HDF5 writes are collective. Peak memory is about one layer
 * slice (one whole tensor for the embedding when casting).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge/bridge.h"
#include "convert.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "outdir.h"

struct to_h5 {
    const struct mb_dist *d;
    const struct cv_opts *o;
    const char *src;
    mb_st_dir *st;
    char *text; /* config.json */
    size_t text_len;
    struct mb_model_config cfg;
    const struct mb_bridge_arch *arch;
    struct mb_param_table pt;
    enum mb_st_dtype in[MB_P_COUNT], out[MB_P_COUNT]; /* per parameter: types may mix */
    const char *tied_head; /* lm_head.weight kept beside tied embeddings, equal to them */
    unsigned char *used; /* per tensor of st, in name order */
    mb_ckpt_writer *w;
};

/* HF tensor NAME, also without the architecture's optional prefix. */
static const struct mb_st_tensor *find(const struct to_h5 *j, const char *name)
{
    return mb_bridge_find_tensor(j->st, j->arch, name);
}

static void mark_used(struct to_h5 *j, const struct mb_st_tensor *t)
{
    int lo = 0, hi = mb_st_dir_count(j->st) - 1;

    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(mb_st_dir_at(j->st, mid)->name, t->name);
        if (c == 0) {
            j->used[mid] = 1;
            return;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
}

/* One HF tensor of RULE at LAYER: present, a float type shared by the tensors of
 * parameter P (number PI), right shape. */
static int check_one(struct to_h5 *j, const struct mb_bridge_rule *rule, const struct mb_param *p,
                     int pi, int64_t layer)
{
    char name[256], have[96], want[96];
    int64_t shape[2];

    mb_bridge_hf_name(rule, layer, name, sizeof name);
    const struct mb_st_tensor *t = find(j, name);
    if (!t)
        return mb_err_set(MB_E_INVALID, j->src, "missing tensor '%s' (a %s with this config "
                          "has it)", name, j->arch->hf_name);
    if (cv_ckpt_dtype(t->dtype) == MB_CKPT_OTHER)
        return mb_err_set(MB_E_UNSUPPORTED, j->src, "tensor '%s' is %s (F32, BF16 or F16 "
                          "expected)", t->name, mb_st_dtype_name(t->dtype));
    if (j->in[pi] == MB_ST_DTYPE_COUNT)
        j->in[pi] = t->dtype;
    else if (t->dtype != j->in[pi])
        return mb_err_set(MB_E_UNSUPPORTED, j->src, "tensor '%s' is %s, the others that make "
                          "up %s are %s", t->name, mb_st_dtype_name(t->dtype), p->name,
                          mb_st_dtype_name(j->in[pi]));
    int nd = mb_bridge_hf_shape(rule, p, &j->cfg, shape);
    if (nd != t->ndim || memcmp(shape, t->shape, (size_t)nd * sizeof *shape) != 0) {
        mb_ckpt_shape_str(have, sizeof have, t->ndim, t->shape);
        mb_ckpt_shape_str(want, sizeof want, nd, shape);
        return mb_err_set(MB_E_INVALID, j->src, "tensor '%s' has shape %s, the config says %s",
                          t->name, have, want);
    }
    mark_used(j, t);
    return 0;
}

/* Buffers and rotary tables some checkpoints carry: not weights. */
static int skippable(const char *name)
{
    static const char *const ends[] = { ".rotary_emb.inv_freq", ".attn.bias", ".attn.masked_bias" };
    size_t n = strlen(name);

    for (size_t i = 0; i < MB_ARRAY_LEN(ends); i++)
        if (n > strlen(ends[i]) && strcmp(name + n - strlen(ends[i]), ends[i]) == 0)
            return 1;
    return 0;
}

static int check_tensors(struct to_h5 *j)
{
    int n = mb_st_dir_count(j->st);

    j->used = mb_xcalloc((size_t)n + 1, 1);
    for (int i = 0; i < j->pt.count; i++) {
        const struct mb_param *p = &j->pt.items[i];
        int64_t layers = p->per_layer ? j->cfg.num_layers : 1;
        j->in[i] = MB_ST_DTYPE_COUNT;
        for (int r = 0; r < j->arch->nrules; r++) {
            const struct mb_bridge_rule *rule = &j->arch->rules[r];
            if (strcmp(rule->mb, p->name) != 0)
                continue;
            for (int64_t l = 0; l < layers; l++)
                if (check_one(j, rule, p, i, l) != 0)
                    return -1;
        }
        j->out[i] = j->o->cast ? j->o->out : j->in[i];
    }
    if (mb_bridge_tied_head(j->st, j->arch, &j->cfg, j->src, &j->tied_head) != 0)
        return -1;
    if (j->tied_head)
        mark_used(j, mb_st_dir_find(j->st, j->tied_head));
    for (int i = 0; i < n; i++) {
        const char *name = mb_st_dir_at(j->st, i)->name;
        if (!j->used[i] && !skippable(name))
            return mb_err_set(MB_E_INVALID, j->src, "extra tensor '%s': not part of a %s with "
                              "this config.json", name, j->arch->hf_name);
    }
    return 0;
}

static int read_config(struct to_h5 *j)
{
    char *path = mb_xmalloc(strlen(j->src) + 16);

    sprintf(path, "%s/config.json", j->src);
    int rc = mb_fs_read_all(path, &j->text, &j->text_len);
    if (rc == 0)
        rc = mb_bridge_config_from_hf(j->text, j->text_len, path, &j->cfg, &j->arch);
    free(path);
    if (rc == 0)
        mb_param_table_build(&j->pt, &j->cfg);
    return rc;
}

/* ---- writing ------------------------------------------------------------------------ */

static int write_param_layers(struct to_h5 *j, int pi, const char *path)
{
    const struct mb_param *p = &j->pt.items[pi];
    enum mb_st_dtype in = j->in[pi], to = j->out[pi];
    int64_t L = j->cfg.num_layers, n = j->d->size, r = j->d->rank;
    int64_t lo = L * r / n, hi = L * (r + 1) / n, per = (L + n - 1) / n;
    size_t es = mb_st_dtype_size(in), bytes = mb_bridge_slice_bytes(p, es);
    size_t numel = bytes / es;
    char *slice = mb_xmalloc(bytes), *tmp = mb_xmalloc(bytes);
    char *out = in == to ? slice : mb_xmalloc(numel * mb_st_dtype_size(to));
    int rc = 0;

    for (int64_t k = 0; rc == 0 && k < per; k++) {
        int64_t layer = lo + k;
        if (layer >= hi) {
            rc = mb_ckpt_writer_write_rows(j->w, path, 0, 0, NULL);
            continue;
        }
        for (int i = 0; i < j->arch->nrules; i++) {
            const struct mb_bridge_rule *rule = &j->arch->rules[i];
            char name[256];
            if (strcmp(rule->mb, p->name) != 0)
                continue;
            mb_bridge_hf_name(rule, layer, name, sizeof name);
            const struct mb_st_tensor *t = find(j, name);
            mb_bridge_move(rule, p, &j->cfg, es, 1, slice, (void *)t->data, tmp);
            mb_st_release(t);
        }
        if (out != slice)
            cv_cast(slice, in, out, to, numel);
        rc = mb_ckpt_writer_write_rows(j->w, path, layer, 1, out);
    }
    if (out != slice)
        free(out);
    free(slice);
    free(tmp);
    return rc;
}

/* A tensor outside the layers: a straight copy, so each rank takes rows of it. */
static int write_param_whole(struct to_h5 *j, int pi, const char *path)
{
    const struct mb_param *p = &j->pt.items[pi];
    const struct mb_bridge_rule *rule = NULL;

    for (int i = 0; i < j->arch->nrules && !rule; i++)
        if (strcmp(j->arch->rules[i].mb, p->name) == 0)
            rule = &j->arch->rules[i];
    const struct mb_st_tensor *t = find(j, rule->hf);
    int64_t rows = p->shape[0], n = j->d->size, r = j->d->rank;
    int64_t r0 = rows * r / n, r1 = rows * (r + 1) / n;
    size_t per_row = (size_t)(p->numel / rows);
    size_t es = mb_st_dtype_size(j->in[pi]);
    const char *src = (const char *)t->data + (size_t)r0 * per_row * es;
    void *buf = NULL;

    if (rule->op != MB_BR_COPY)
        return mb_err_set(MB_E_INVALID, p->name, "bridge table: only copies outside layers");
    if (j->in[pi] != j->out[pi] && r1 > r0) {
        buf = mb_xmalloc((size_t)(r1 - r0) * per_row * mb_st_dtype_size(j->out[pi]));
        cv_cast(src, j->in[pi], buf, j->out[pi], (size_t)(r1 - r0) * per_row);
        src = buf;
    }
    int rc = mb_ckpt_writer_write_rows(j->w, path, r0, r1 - r0, src);
    mb_st_release(t);
    free(buf);
    return rc;
}

static int write_params(struct to_h5 *j)
{
    for (int i = 0; i < j->pt.count; i++) {
        const struct mb_param *p = &j->pt.items[i];
        char *path = mb_ckpt_dataset_path("/model", p->name);
        int rc = mb_ckpt_writer_create(j->w, path, cv_ckpt_dtype(j->out[i]), p->ndim, p->shape);
        if (rc == 0)
            rc = p->per_layer ? write_param_layers(j, i, path) : write_param_whole(j, i, path);
        free(path);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int write_scalar(struct to_h5 *j, const char *path, int64_t v)
{
    int rc = mb_ckpt_writer_create(j->w, path, MB_CKPT_I64, 0, NULL);
    return rc ? rc : mb_ckpt_writer_write_rows(j->w, path, 0, 1, &v);
}

/* A uint8 blob; DATA only needed on rank 0. */
static int write_blob(struct to_h5 *j, const char *path, const void *data, size_t len)
{
    int64_t n = (int64_t)len;
    int rc = mb_ckpt_writer_create(j->w, path, MB_CKPT_U8, 1, &n);
    int mine = j->d->rank == 0 && n > 0;
    return rc ? rc : mb_ckpt_writer_write_rows(j->w, path, 0, mine ? n : 0, data);
}

/* The __metadata__ object of the safetensors file holding tensor T, as JSON text. */
static char *read_metadata(const struct mb_st_tensor *t)
{
    FILE *f = fopen(t->file, "rb");
    unsigned char n8[8];
    struct mb_buf out = MB_BUF_INIT;

    mb_buf_adds(&out, "{");
    if (f && fread(n8, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = n << 8 | n8[i];
        char *hdr = n < 100000000 ? mb_xmalloc(n + 1) : NULL;
        mb_json *root = hdr && fread(hdr, 1, n, f) == n ? mb_json_parse(hdr, n, t->file) : NULL;
        const mb_json *meta = root ? mb_json_get(root, "__metadata__") : NULL;
        void *it = NULL;
        const char *key;
        mb_json *v;
        for (int k = 0; meta && mb_json_next(meta, &it, &key, &v); k++) {
            size_t len = 0;
            const char *s = mb_json_str(v, &len);
            mb_buf_adds(&out, k ? ", " : "");
            mb_json_escape(&out, key, strlen(key));
            mb_buf_adds(&out, ": ");
            mb_json_escape(&out, s ? s : "", s ? len : 0);
        }
        mb_json_free(root);
        free(hdr);
    }
    if (f)
        fclose(f);
    mb_buf_adds(&out, "}");
    return out.data;
}

static char *weight_map_json(const struct to_h5 *j)
{
    struct mb_buf out = MB_BUF_INIT;

    mb_buf_adds(&out, "{");
    for (int i = 0; i < mb_st_dir_count(j->st); i++) {
        const char *name = mb_st_dir_at(j->st, i)->name, *shard = mb_st_dir_shard_of(j->st, name);
        mb_buf_adds(&out, i ? ", " : "");
        mb_json_escape(&out, name, strlen(name));
        mb_buf_adds(&out, ": ");
        mb_json_escape(&out, shard, strlen(shard));
    }
    mb_buf_adds(&out, "}");
    return out.data;
}

/* The architecture's optional prefix when the input's names go without it (GPT-2 files
 * on the hub say "wte.weight", save_pretrained writes "transformer.wte.weight"), so that
 * --to hf gives back the names it was given; NULL otherwise. */
static const char *omitted_prefix(const struct to_h5 *j)
{
    const char *pre = j->arch->strip_prefix, *first = j->arch->rules[0].hf;
    if (!pre || strncmp(first, pre, strlen(pre)) != 0 || mb_st_dir_find(j->st, first))
        return NULL;
    return pre;
}

static int write_attrs(struct to_h5 *j)
{
    char *cfg = mb_model_config_to_json(&j->cfg);
    char *meta = read_metadata(mb_st_dir_at(j->st, 0));
    char *wmap = mb_st_dir_is_sharded(j->st) ? weight_map_json(j) : NULL;
    int rc = mb_ckpt_writer_attr(j->w, "model_config", cfg);

    rc = rc ? rc : mb_ckpt_writer_attr(j->w, "recipe", "{}");
    rc = rc ? rc : mb_ckpt_writer_attr(j->w, "tokenizer", "");
    rc = rc ? rc : mb_ckpt_writer_attr(j->w, "hf_config", j->text);
    rc = rc ? rc : mb_ckpt_writer_attr(j->w, "hf_architecture", j->arch->hf_name);
    rc = rc ? rc : mb_ckpt_writer_attr(j->w, "hf_metadata", meta);
    if (rc == 0 && wmap)
        rc = mb_ckpt_writer_attr(j->w, "hf_weight_map", wmap);
    if (rc == 0 && omitted_prefix(j))
        rc = mb_ckpt_writer_attr(j->w, "hf_omitted_prefix", omitted_prefix(j));
    if (rc == 0 && j->tied_head)
        rc = mb_ckpt_writer_attr(j->w, "hf_tied_head", j->tied_head);
    free(cfg);
    free(meta);
    free(wmap);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files of the HF directory other than the config and weights, sorted (every rank
 * lists the same). */
static int side_files(const char *dir, char ***names, int *count)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    size_t cap = 0;

    *names = NULL;
    *count = 0;
    if (!dp)
        return mb_err_errno(dir, "cannot list the directory");
    while ((e = readdir(dp))) {
        size_t n = strlen(e->d_name);
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || !strcmp(e->d_name, "config.json") ||
            !strcmp(e->d_name, "model.safetensors.index.json") ||
            (n > 12 && !strcmp(e->d_name + n - 12, ".safetensors")))
            continue;
        MB_GROW(*names, cap, (size_t)*count + 1);
        (*names)[(*count)++] = mb_xstrdup(e->d_name);
    }
    closedir(dp);
    qsort(*names, (size_t)*count, sizeof **names, cmp_str);
    return 0;
}

static int write_side_files(struct to_h5 *j)
{
    char **names;
    int n, rc = side_files(j->src, &names, &n);

    for (int i = 0; i < n; i++) {
        char path[4096], *data = NULL, *dset;
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", j->src, names[i]);
        if (rc == 0 && mb_fs_read_all(path, &data, &len) != 0)
            rc = -1;
        dset = mb_xmalloc(strlen(names[i]) + 12);
        sprintf(dset, "/hf/files/%s", names[i]);
        if (rc == 0)
            rc = write_blob(j, dset, data, len);
        free(dset);
        free(data);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int write_all(struct to_h5 *j)
{
    if (write_params(j) != 0 || write_scalar(j, "/train/iteration", 0) != 0 ||
        write_scalar(j, "/train/consumed_train_samples", 0) != 0 ||
        write_scalar(j, "/train/consumed_valid_samples", 0) != 0 ||
        write_blob(j, "/train/rng_state", NULL, 0) != 0 ||
        write_blob(j, "/train/data_state", NULL, 0) != 0 || write_attrs(j) != 0)
        return -1;
    return write_side_files(j);
}

/* DST: a .h5 file, or a directory (created) given iter_0000000.h5 and `latest`. */
static char *output_file(const struct to_h5 *j, const char *dst, int *is_dir, int *made_dir)
{
    size_t n = strlen(dst);
    struct stat sb;

    *is_dir = !(n > 3 && strcmp(dst + n - 3, ".h5") == 0);
    *made_dir = *is_dir && stat(dst, &sb) != 0;
    if (!*is_dir)
        return mb_xstrdup(dst);
    if (*made_dir && j->d->rank == 0)
        mb_fs_register_temp(dst); /* a fatal signal removes it while it is still empty */
    int rc = j->d->rank == 0 ? mb_fs_mkdirs(dst, "checkpoint directory") : 0;
    if (!mb_dist_all_ok(j->d, rc == 0)) {
        if (rc == 0)
            mb_err_set(MB_E_IO, dst, "another rank failed to create the directory");
        return NULL;
    }
    char *file = mb_xmalloc(n + 24);
    sprintf(file, "%s/iter_0000000.h5", dst);
    return file;
}

static int convert(struct to_h5 *j, const char *dst)
{
    int is_dir, made_dir;
    char *file = output_file(j, dst, &is_dir, &made_dir);

    if (!file)
        return -1;
    j->w = mb_ckpt_writer_open(j->d, file);
    int rc = j->w ? write_all(j) : -1;
    sigset_t saved;
    cv_hold_signals(&saved); /* a signal waits for the file and the `latest` naming it */
    if (rc == 0)
        rc = mb_ckpt_writer_commit(j->w, is_dir ? dst : NULL);
    else
        mb_ckpt_writer_abort(j->w);
    if (rc != 0 && made_dir && j->d->rank == 0)
        rmdir(dst);
    if (made_dir && j->d->rank == 0)
        mb_fs_forget_temp(dst);
    cv_release_signals(&saved);
    if (rc == 0 && j->d->rank == 0)
        mb_log_info("%s -> %s: %s, %d tensors, %s", j->src, file, j->arch->hf_name,
                    mb_st_dir_count(j->st), cv_dtypes_name(j->out, j->pt.count));
    free(file);
    return rc;
}

int cv_hf_to_h5(const struct mb_dist *d, const struct cv_opts *o, const char *src,
                const char *dst)
{
    struct to_h5 j = { .d = d, .o = o, .src = src };
    int rc = read_config(&j);

    if (rc == 0 && !(j.st = mb_st_dir_open(src)))
        rc = -1;
    if (rc == 0)
        rc = check_tensors(&j);
    /* all ranks read the same files; still, never enter collective writes unless all can */
    if (!mb_dist_all_ok(d, rc == 0)) {
        if (rc == 0)
            mb_err_set(MB_E_INVALID, src, "another rank failed to read the model");
        rc = -1;
    } else {
        rc = convert(&j, dst);
    }
    mb_st_dir_close(j.st);
    free(j.used);
    free(j.text);
    return rc;
}
