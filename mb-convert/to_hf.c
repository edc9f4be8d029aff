/* mb-convert/to_hf.c - mb checkpoint -> HF directory (rank 0 writes; others wait).
 *
 * The tensor list is built in transformers' state-dict order from the architecture's
 * table, assigned to shards (the stored weight map, or huggingface_hub's greedy plan),
 * and every shard is opened with its full header; then each Megatron tensor is read one
 * layer slice at a time and its HF tensors are put into their shards. config.json is
 * the stored text (its dtype updated on a cast) or generated; side files come back from
 * /hf/files. Everything goes into a temporary directory beside the output that takes its
 * place when complete (outdir.c).
 */
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
#include "peft/peft.h"

struct hft {
    char *name;
    const struct mb_bridge_rule *rule;
    const struct mb_param *p;
    int64_t layer;
    struct mb_st_tensor spec;
    int shard;
};

struct to_hf {
    const struct cv_opts *o;
    const char *dst; /* where the files go: the output directory's temporary */
    struct cv_outdir outdir;
    char *file;
    mb_ckpt_reader *r;
    struct mb_model_config cfg;
    const struct mb_bridge_arch *arch;
    struct mb_param_table pt;
    enum mb_st_dtype in[MB_P_COUNT], out[MB_P_COUNT]; /* per param table item */
    struct hft *t;
    int n;
    char **shard_names;
    int nshards;
    mb_st_writer **w;
    char *slice, *hf, *tmp, *cast; /* work buffers, sized for the largest slice */
    char *omit; /* hf_omitted_prefix: the prefix the original names went without */
    char *tied_head; /* hf_tied_head: the output matrix the original kept beside the
                      * tied embedding, written again from the embedding */
};

/* A root attribute, or NULL (not an error) when absent. */
static char *opt_attr(struct to_hf *j, const char *name)
{
    char *v = NULL;

    if (mb_ckpt_reader_attr(j->r, name, &v) != 0) {
        mb_err_clear();
        return NULL;
    }
    return v;
}

/* An adapter-only checkpoint has no /model: say what to do with it instead. */
static int refuse_adapters(struct to_hf *j)
{
    struct mb_peft_config pc;
    char *base = NULL;
    if (mb_ckpt_reader_peft(j->r, j->file, &pc, &base) < 0)
        return -1;
    free(base);
    if (pc.kind == MB_PEFT_NONE)
        return 0;
    return mb_err_set(MB_E_INVALID, j->file,
                      "an adapter-only checkpoint (%s): export the adapter with --to peft, or "
                      "fold it into its base with mb-ckpt merge-adapter and convert that",
                      mb_peft_kind_name(pc.kind));
}

static int read_model(struct to_hf *j)
{
    char *cfg = NULL, *arch = NULL;

    if (refuse_adapters(j) < 0 || mb_ckpt_reader_attr(j->r, "model_config", &cfg) != 0)
        return -1;
    mb_json *obj = mb_json_parse(cfg, strlen(cfg), j->file);
    int rc = obj ? mb_model_config_from_json(&j->cfg, obj, j->file) : -1;
    mb_json_free(obj);
    free(cfg);
    if (rc != 0)
        return -1;
    arch = opt_attr(j, "hf_architecture");
    j->arch = arch ? mb_bridge_arch_find(arch) : mb_bridge_arch_for_family(j->cfg.family);
    if (!j->arch)
        rc = mb_err_set(MB_E_UNSUPPORTED, j->file, "no HF architecture for %s '%s'",
                        arch ? "hf_architecture" : "model family", arch ? arch : j->cfg.family);
    free(arch);
    j->omit = opt_attr(j, "hf_omitted_prefix");
    j->tied_head = j->cfg.share_embeddings_and_output_weights ? opt_attr(j, "hf_tied_head") : NULL;
    mb_param_table_build(&j->pt, &j->cfg);
    return rc;
}

/* Every parameter's dataset: present, the right shape, a float type. */
static int check_datasets(struct to_hf *j)
{
    for (int i = 0; i < j->pt.count; i++) {
        const struct mb_param *p = &j->pt.items[i];
        char *path = mb_ckpt_dataset_path("/model", p->name);
        const struct mb_ckpt_info *it = mb_ckpt_reader_find(j->r, path);
        int rc = 0;
        if (!it)
            rc = mb_err_set(MB_E_INVALID, j->file, "missing tensor '%s'", p->name);
        else if (it->ndim != p->ndim ||
                 memcmp(it->shape, p->shape, (size_t)p->ndim * sizeof *p->shape) != 0)
            rc = mb_err_set(MB_E_INVALID, j->file, "tensor '%s' does not have the shape its "
                            "model config gives", p->name);
        else if (cv_st_dtype(it->dtype, &j->in[i]) != 0)
            rc = mb_err_set(MB_E_UNSUPPORTED, j->file, "tensor '%s' is %s", p->name,
                            mb_ckpt_dtype_name(it->dtype));
        j->out[i] = j->o->cast ? j->o->out : j->in[i];
        free(path);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static void add_tensor(struct to_hf *j, size_t *cap, int pi, const struct mb_bridge_rule *rule,
                       int64_t layer)
{
    char name[256];
    const struct mb_param *p = &j->pt.items[pi];

    MB_GROW(j->t, *cap, (size_t)j->n + 1);
    struct hft *t = &j->t[j->n++];
    memset(t, 0, sizeof *t);
    mb_bridge_hf_name(rule, layer, name, sizeof name);
    size_t cut = j->omit && strncmp(name, j->omit, strlen(j->omit)) == 0 ? strlen(j->omit) : 0;
    t->name = mb_xstrdup(name + cut);
    t->rule = rule;
    t->p = p;
    t->layer = layer;
    t->spec.name = t->name;
    t->spec.dtype = j->out[pi];
    t->spec.ndim = mb_bridge_hf_shape(rule, p, &j->cfg, t->spec.shape);
    t->spec.numel = 1;
    for (int k = 0; k < t->spec.ndim; k++)
        t->spec.numel *= t->spec.shape[k];
    t->spec.nbytes = (size_t)t->spec.numel * mb_st_dtype_size(t->spec.dtype);
}

static int param_index(const struct to_hf *j, const char *mb_name)
{
    for (int i = 0; i < j->pt.count; i++)
        if (strcmp(j->pt.items[i].name, mb_name) == 0)
            return i;
    return -1;
}

/* HF tensors in state-dict order: the global rules before the layers, every layer's
 * rules, then the global rules after. */
static void list_tensors(struct to_hf *j)
{
    size_t cap = 0;
    const struct mb_bridge_rule *rules = j->arch->rules;
    int nr = j->arch->nrules, first = nr;

    for (int r = 0; r < nr && first == nr; r++)
        if (strstr(rules[r].hf, "%d"))
            first = r;
    for (int pass = 0; pass < 3; pass++) {
        int64_t layers = pass == 1 ? j->cfg.num_layers : 1;
        for (int64_t l = 0; l < layers; l++) {
            for (int r = pass == 2 ? first : 0; r < (pass == 0 ? first : nr); r++) {
                int layered = strstr(rules[r].hf, "%d") != NULL, pi = param_index(j, rules[r].mb);
                if (pi < 0 && j->tied_head && strcmp(rules[r].mb, "output_layer.weight") == 0)
                    pi = param_index(j, "embedding.word_embeddings.weight");
                if (pi >= 0 && layered == (pass == 1))
                    add_tensor(j, &cap, pi, &rules[r], l);
            }
        }
    }
}

static int shard_number(struct to_hf *j, const char *file)
{
    for (int i = 0; i < j->nshards; i++)
        if (strcmp(j->shard_names[i], file) == 0)
            return i;
    j->shard_names = mb_xrealloc(j->shard_names, (size_t)(j->nshards + 1) * sizeof(char *));
    j->shard_names[j->nshards] = mb_xstrdup(file);
    return j->nshards++;
}

/* The stored weight map, if it names exactly our tensors. */
static int plan_from_map(struct to_hf *j, const char *map)
{
    mb_json *obj = mb_json_parse(map, strlen(map), "hf_weight_map");
    int ok = obj && (int)mb_json_len(obj) == j->n;

    for (int i = 0; ok && i < j->n; i++) {
        const mb_json *v = mb_json_get(obj, j->t[i].name);
        const char *f = v ? mb_json_str(v, NULL) : NULL;
        ok = f && !strchr(f, '/');
        if (ok)
            j->t[i].shard = shard_number(j, f);
    }
    mb_json_free(obj);
    if (!ok) { /* forget a partial assignment */
        for (int i = 0; i < j->nshards; i++)
            free(j->shard_names[i]);
        j->nshards = 0;
    }
    return ok;
}

static void plan_shards(struct to_hf *j)
{
    char *map = j->o->max_shard_bytes ? NULL : opt_attr(j, "hf_weight_map");

    if (map && plan_from_map(j, map)) {
        free(map);
        return;
    }
    free(map);
    size_t *sizes = mb_xmalloc((size_t)j->n * sizeof *sizes);
    int *shard = mb_xmalloc((size_t)j->n * sizeof *shard);
    for (int i = 0; i < j->n; i++)
        sizes[i] = j->t[i].spec.nbytes;
    uint64_t max = j->o->max_shard_bytes ? j->o->max_shard_bytes : 5000000000ull;
    /* a checkpoint converted from one unsharded file goes back as one file */
    char *cfg = j->o->max_shard_bytes ? NULL : opt_attr(j, "hf_config");
    if (cfg)
        max = UINT64_MAX;
    free(cfg);
    int n = mb_st_plan_shards(sizes, j->n, max, shard);
    for (int s = 0; s < n; s++) {
        char name[64];
        mb_st_shard_name(name, sizeof name, s, n);
        shard_number(j, name);
    }
    for (int i = 0; i < j->n; i++)
        j->t[i].shard = shard[i];
    free(sizes);
    free(shard);
}

static char *join(const char *dir, const char *name)
{
    char *p = mb_xmalloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

/* NAME is about to be written: registered for removal on a fatal signal before it
 * exists, so that no moment (such as the rename of its own temporary) leaves it out. */
static void will_write(struct to_hf *j, const char *name)
{
    cv_outdir_add(&j->outdir, name);
}

static int open_shards(struct to_hf *j)
{
    char *meta = opt_attr(j, "hf_metadata");

    j->w = mb_xcalloc((size_t)j->nshards, sizeof *j->w);
    for (int s = 0; s < j->nshards; s++) {
        struct mb_st_tensor *spec = mb_xmalloc((size_t)j->n * sizeof *spec);
        int k = 0;
        for (int i = 0; i < j->n; i++)
            if (j->t[i].shard == s)
                spec[k++] = j->t[i].spec;
        char *path = join(j->dst, j->shard_names[s]);
        will_write(j, j->shard_names[s]);
        j->w[s] = mb_st_writer_open(path, spec, k, meta ? meta : "{\"format\": \"pt\"}");
        free(path);
        free(spec);
        if (!j->w[s]) {
            free(meta);
            return -1;
        }
    }
    free(meta);
    return 0;
}

static struct hft *tensor_of(struct to_hf *j, const struct mb_bridge_rule *rule, int64_t layer)
{
    for (int i = 0; i < j->n; i++)
        if (j->t[i].rule == rule && j->t[i].layer == layer)
            return &j->t[i];
    return NULL;
}

/* Allocate the work buffers once, for the largest slice of any parameter: a fresh
 * buffer per parameter would cost a page fault (and a page cleared) per 4 KiB each time. */
static void alloc_buffers(struct to_hf *j)
{
    size_t in_bytes = 0, out_bytes = 0;
    for (int i = 0; i < j->pt.count; i++) {
        const struct mb_param *p = &j->pt.items[i];
        size_t es = mb_st_dtype_size(j->in[i]), bytes = mb_bridge_slice_bytes(p, es);
        in_bytes = MB_MAX(in_bytes, bytes);
        out_bytes = MB_MAX(out_bytes, bytes / es * mb_st_dtype_size(j->out[i]));
    }
    j->slice = mb_xmalloc(in_bytes);
    j->hf = mb_xmalloc(in_bytes);
    j->tmp = mb_xmalloc(in_bytes);
    j->cast = mb_xmalloc(out_bytes);
}

static void free_buffers(struct to_hf *j)
{
    free(j->slice);
    free(j->hf);
    free(j->tmp);
    free(j->cast);
    j->slice = j->hf = j->tmp = j->cast = NULL;
}

/* Tensor T from SLICE (the parameter's rows just read, or mapped): moved out of the fused
 * layout unless it is a plain copy, cast unless the dtype stays, then put in its shard. */
static int put_tensor(struct to_hf *j, int pi, const struct hft *t, const char *slice)
{
    const struct mb_param *p = &j->pt.items[pi];
    size_t es = mb_st_dtype_size(j->in[pi]);
    const char *hf = slice;
    if (t->rule->op != MB_BR_COPY) {
        /* from mb to HF the slice is only read */
        mb_bridge_move(t->rule, p, &j->cfg, es, 0, (void *)slice, j->hf, j->tmp);
        hf = j->hf;
    }
    if (j->out[pi] != j->in[pi]) {
        cv_cast(hf, j->in[pi], j->cast, j->out[pi], (size_t)t->spec.numel);
        hf = j->cast;
    }
    return mb_st_writer_put(j->w[t->shard], t->name, 0, hf, t->spec.nbytes);
}

/* Rows [ROW0, ROW0 + NROWS) of the dataset at PATH: in place in the file when it is
 * stored contiguously (no copy), else read into the slice buffer. */
static const char *rows_of(struct to_hf *j, const char *path, int64_t row0, int64_t nrows)
{
    const char *mapped = mb_ckpt_reader_map_rows(j->r, path, row0, nrows);
    if (mapped)
        return mapped;
    return mb_ckpt_reader_read_rows(j->r, path, row0, nrows, j->slice) == 0 ? j->slice : NULL;
}

/* Parameter PI one slice at a time: its HF tensors into their shards. */
static int put_param(struct to_hf *j, int pi)
{
    const struct mb_param *p = &j->pt.items[pi];
    char *path = mb_ckpt_dataset_path("/model", p->name);
    int64_t layers = p->per_layer ? j->cfg.num_layers : 1;
    int64_t nrows = p->per_layer ? 1 : p->shape[0];
    size_t bytes = mb_bridge_slice_bytes(p, mb_st_dtype_size(j->in[pi]));
    int rc = 0;

    for (int64_t l = 0; rc == 0 && l < layers; l++) {
        const char *slice = rows_of(j, path, p->per_layer ? l : 0, nrows);
        if (!slice)
            rc = -1;
        for (int r = 0; rc == 0 && r < j->arch->nrules; r++) {
            struct hft *t = tensor_of(j, &j->arch->rules[r], p->per_layer ? l : 0);
            if (t && t->p == p)
                rc = put_tensor(j, pi, t, slice);
        }
        if (slice && slice != j->slice)
            mb_ckpt_reader_unmap_rows(j->r, slice, bytes);
    }
    free(path);
    return rc;
}

static int write_weights(struct to_hf *j)
{
    int rc = open_shards(j);

    if (rc == 0)
        alloc_buffers(j);
    for (int i = 0; rc == 0 && i < j->pt.count; i++)
        rc = put_param(j, i);
    free_buffers(j);
    for (int s = 0; s < j->nshards; s++) {
        if (rc == 0)
            rc = mb_st_writer_close(j->w[s]);
        else
            mb_st_writer_abort(j->w[s]);
        j->w[s] = NULL;
    }
    if (rc != 0 || j->nshards == 1)
        return rc;
    const char **names = mb_xmalloc((size_t)j->n * sizeof *names);
    const char **shards = mb_xmalloc((size_t)j->n * sizeof *shards);
    uint64_t total = 0;
    for (int i = 0; i < j->n; i++) {
        names[i] = j->t[i].name;
        shards[i] = j->shard_names[j->t[i].shard];
        total += j->t[i].spec.nbytes;
    }
    will_write(j, "model.safetensors.index.json");
    rc = mb_st_index_write(j->dst, names, shards, j->n, total);
    free(names);
    free(shards);
    return rc;
}

/* Replace the string values of "torch_dtype" and "dtype" in TEXT with DTYPE. */
static char *set_dtype(const char *text, const char *dtype)
{
    struct mb_buf b = MB_BUF_INIT;
    const char *s = text;

    while (*s) {
        const char *k1 = strstr(s, "\"torch_dtype\""), *k2 = strstr(s, "\"dtype\"");
        const char *k = k1 && (!k2 || k1 < k2) ? k1 : k2;
        if (!k)
            break;
        const char *v = k + (k == k1 ? 13 : 7);
        while (*v == ' ' || *v == '\t' || *v == '\n' || *v == ':')
            v++;
        const char *end = *v == '"' ? strchr(v + 1, '"') : NULL;
        if (!end) {
            mb_buf_add(&b, s, (size_t)(v - s));
            s = v;
            continue;
        }
        mb_buf_add(&b, s, (size_t)(v - s));
        mb_buf_addf(&b, "\"%s\"", dtype);
        s = end + 1;
    }
    mb_buf_adds(&b, s);
    return b.data;
}

static int write_text(struct to_hf *j, const char *name, const void *data, size_t len)
{
    struct mb_outfile of = MB_OUTFILE_INIT;
    char *path = join(j->dst, name);

    will_write(j, name);
    int rc = mb_outfile_open(&of, path);
    if (rc == 0) {
        mb_outfile_write(&of, data, len);
        rc = mb_outfile_commit(&of);
    }
    free(path);
    return rc;
}

static int write_config(struct to_hf *j)
{
    char *text = opt_attr(j, "hf_config");
    enum mb_st_dtype dt = j->pt.count ? j->out[0] : MB_ST_F32;
    int mixed = strcmp(cv_dtypes_name(j->out, j->pt.count), "mixed") == 0;

    /* the stored text says the dtype the model came in; a cast, or a model trained on in
     * fp32 from a bf16 original, writes another. Types that still mix (fp32 norms beside
     * bf16 weights) are the original's: its text stays. */
    if (text && !mixed) {
        char *t2 = set_dtype(text, cv_torch_dtype(dt));
        free(text);
        text = t2;
    } else if (!text) { /* generated: the type of the embedding, the bulk of the bytes */
        text = mb_bridge_config_to_hf(j->arch, &j->cfg, cv_torch_dtype(dt));
        if (!text)
            return -1;
    }
    int rc = write_text(j, "config.json", text, strlen(text));
    free(text);
    return rc;
}

/* A checkpoint mb-pretrain made from scratch carries no HF files, but names the
 * tokenizer.json it was trained with (its `tokenizer` attribute): copy that one. */
static int copy_named_tokenizer(struct to_hf *j)
{
    char *spec = opt_attr(j, "tokenizer");
    char *file = NULL, *data = NULL;
    size_t len = 0;
    struct stat sb;
    int rc = 0;

    if (spec && *spec && stat(spec, &sb) == 0)
        file = S_ISDIR(sb.st_mode) ? join(spec, "tokenizer.json") : mb_xstrdup(spec);
    if (file && access(file, R_OK) == 0) {
        rc = mb_fs_read_all(file, &data, &len);
        if (rc == 0)
            rc = write_text(j, "tokenizer.json", data, len);
    } else if (spec && *spec && strcmp(spec, "bytes") != 0) {
        mb_log_warn("%s: the tokenizer it names (%s) is not there: no tokenizer.json written",
                    j->file, spec);
    }
    free(data);
    free(file);
    free(spec);
    return rc;
}

static int write_side_files(struct to_hf *j)
{
    if (!mb_ckpt_reader_find(j->r, "/hf/files/tokenizer.json") && copy_named_tokenizer(j) != 0)
        return -1;
    for (int i = 0; i < mb_ckpt_reader_count(j->r); i++) {
        const char *path = mb_ckpt_reader_info(j->r, i)->path;
        void *data;
        size_t len;
        if (strncmp(path, "/hf/files/", 10) != 0)
            continue;
        if (mb_ckpt_reader_read_blob(j->r, path, &data, &len) != 0)
            return -1;
        int rc = write_text(j, path + 10, data ? data : "", len);
        free(data);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* A model trained from scratch (no HF config of its own) whose tokenizer.json came
 * along: the tokenizer and generation configs transformers needs to know its special
 * tokens and to stop at the end of a document, unless they came along too. */
static int write_tok_configs(struct to_hf *j)
{
    char *hf = opt_attr(j, "hf_config");
    char *tok = join(j->dst, "tokenizer.json"), *tc = join(j->dst, "tokenizer_config.json");
    char *gc = join(j->dst, "generation_config.json"), *tc_text = NULL, *gc_text = NULL;
    int rc = 0;

    if (!hf && mb_fs_exists(tok) && !(mb_fs_exists(tc) && mb_fs_exists(gc)))
        rc = cv_tok_configs(j->dst, j->cfg.max_position_embeddings, &tc_text, &gc_text);
    if (rc == 0 && tc_text && !mb_fs_exists(tc))
        rc = write_text(j, "tokenizer_config.json", tc_text, strlen(tc_text));
    if (rc == 0 && gc_text && !mb_fs_exists(gc))
        rc = write_text(j, "generation_config.json", gc_text, strlen(gc_text));
    free(hf);
    free(tok);
    free(tc);
    free(gc);
    free(tc_text);
    free(gc_text);
    return rc;
}

/* Written into a temporary directory beside DST that replaces it when complete
 * (outdir.c): an interrupted or failed run leaves DST as it was. */
static int convert(struct to_hf *j, const char *dst)
{
    if (read_model(j) != 0 || check_datasets(j) != 0 || cv_outdir_open(&j->outdir, dst) != 0)
        return -1;
    j->dst = j->outdir.tmp;
    list_tensors(j);
    plan_shards(j);
    int rc = write_weights(j);
    if (rc == 0)
        rc = write_config(j);
    if (rc == 0)
        rc = write_side_files(j);
    if (rc == 0)
        rc = write_tok_configs(j);
    if (rc != 0) {
        cv_outdir_abort(&j->outdir);
        return rc;
    }
    if (cv_outdir_commit(&j->outdir) != 0)
        return -1;
    mb_log_info("%s -> %s: %s, %d tensors in %d file%s", j->file, dst, j->arch->hf_name, j->n,
                j->nshards, j->nshards == 1 ? "" : "s");
    return 0;
}

static void release(struct to_hf *j)
{
    for (int i = 0; i < j->n; i++)
        free(j->t[i].name);
    free(j->t);
    for (int i = 0; i < j->nshards; i++)
        free(j->shard_names[i]);
    free(j->shard_names);
    free(j->w);
    free(j->omit);
    free(j->tied_head);
    mb_ckpt_reader_close(j->r);
    free(j->file);
}

int cv_h5_to_hf(const struct mb_dist *d, const struct cv_opts *o, const char *src,
                const char *dst)
{
    struct to_hf j = { .o = o };
    int rc = 0;

    if (d->rank == 0) {
        rc = cv_open_ckpt(src, &j.file, &j.r);
        if (rc == 0)
            rc = convert(&j, dst);
        release(&j);
    }
    if (!mb_dist_all_ok(d, rc == 0) && rc == 0)
        rc = mb_err_set(MB_E_IO, dst, "rank 0 failed to write the model");
    return rc;
}
