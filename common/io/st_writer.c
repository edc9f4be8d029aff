/* io/st_writer.c - safetensors writing: one file in pieces, the shard plan, the index.
 *
 * The writer lays a file out exactly as the reference writer (huggingface safetensors,
 * serde_json underneath) does, so that a file read and written back is byte-identical:
 * tensors sorted by dtype (the enum order, largest first) and then by name (bytes),
 * compact JSON, "__metadata__" first, strings escaped as serde_json does (only '"',
 * '\\' and control characters; UTF-8 kept), spaces up to a multiple of 8. The file is
 * sized up front and each piece goes to its place with pwrite, so tensors may arrive
 * in any order and from several threads. The index is written as Python's
 * json.dumps(indent=2, sort_keys=True) (ASCII only) plus a newline, as transformers does.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"

struct span {
    size_t a, b; /* bytes [a, b) of a tensor written so far */
};

struct wtensor {
    struct mb_st_tensor t;
    uint64_t begin;     /* data offset */
    struct span *spans; /* sorted, disjoint, not touching */
    size_t nspans, cap;
};

struct mb_st_writer {
    char *path, *tmp;
    int fd;
    uint64_t data_start;
    int n;
    struct wtensor *t;  /* [n] in data order */
    int *by_name;       /* [n] indices into t, sorted by name */
    int failed;         /* a write failed: close fails */
    int created;        /* the temporary exists and is ours */
    pthread_mutex_t lock;
};

/* ---- the header ------------------------------------------------------------------ */

/* S as a JSON string, escaped as serde_json does. */
static void serde_string(struct mb_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";

    mb_buf_addc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b"
                      : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t" : NULL;
        if (e) {
            mb_buf_adds(out, e);
        } else if (c < 0x20) {
            char u[7] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0 };
            mb_buf_adds(out, u);
        } else {
            mb_buf_addc(out, (char)c);
        }
    }
    mb_buf_addc(out, '"');
}

/* "__metadata__":{...}, from a JSON object of strings, members in their order. */
static int add_metadata(struct mb_buf *out, const char *json, const char *where)
{
    mb_json *root = mb_json_parse(json, strlen(json), where);
    void *it = NULL;
    const char *key;
    mb_json *v;
    int first = 1;

    if (!root)
        return -1;
    if (mb_json_type_of(root) != MB_JSON_OBJECT) {
        mb_json_free(root);
        return mb_err_set(MB_E_INVALID, where, "metadata is not a JSON object");
    }
    mb_buf_adds(out, "\"__metadata__\":{");
    while (mb_json_next(root, &it, &key, &v)) {
        size_t len;
        const char *s = mb_json_str(v, &len);
        if (!s) {
            mb_err_set(MB_E_INVALID, where, "metadata value of '%s' is not a string", key);
            mb_json_free(root);
            return -1;
        }
        if (!first)
            mb_buf_addc(out, ',');
        first = 0;
        serde_string(out, key, strlen(key));
        mb_buf_addc(out, ':');
        serde_string(out, s, len);
    }
    mb_buf_addc(out, '}');
    mb_json_free(root);
    return 0;
}

static void add_entry(struct mb_buf *out, const struct wtensor *w)
{
    serde_string(out, w->t.name, strlen(w->t.name));
    mb_buf_addf(out, ":{\"dtype\":\"%s\",\"shape\":[", mb_st_dtype_name(w->t.dtype));
    for (int d = 0; d < w->t.ndim; d++)
        mb_buf_addf(out, d ? ",%lld" : "%lld", (long long)w->t.shape[d]);
    mb_buf_addf(out, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)w->begin,
                (unsigned long long)(w->begin + w->t.nbytes));
}

/* [u64 N][header padded to a multiple of 8] */
static int build_header(const mb_st_writer *w, const char *metadata, struct mb_buf *out)
{
    mb_buf_add(out, "\0\0\0\0\0\0\0\0", 8);
    mb_buf_addc(out, '{');
    if (metadata && add_metadata(out, metadata, w->path) != 0)
        return -1;
    for (int i = 0; i < w->n; i++) {
        if (i || metadata)
            mb_buf_addc(out, ',');
        add_entry(out, &w->t[i]);
    }
    mb_buf_addc(out, '}');
    while ((out->len - 8) % 8)
        mb_buf_addc(out, ' ');
    uint64_t n = out->len - 8;
    for (int i = 0; i < 8; i++)
        out->data[i] = (char)(n >> (8 * i));
    return 0;
}

/* ---- the spec ---------------------------------------------------------------------- */

static int spec_err(const char *path, const char *name, const char *what)
{
    return mb_err_set(MB_E_INVALID, path, "tensor '%s': %s", name ? name : "(null)", what);
}

/* Copy one spec entry, computing numel and nbytes. */
static int take_spec(const char *path, const struct mb_st_tensor *s, struct wtensor *w)
{
    uint64_t numel = 1;

    if (!s->name)
        return spec_err(path, NULL, "no name");
    if (!mb_st_dtype_name(s->dtype))
        return spec_err(path, s->name, "bad dtype");
    if (s->ndim < 0 || s->ndim > MB_ST_MAX_DIM)
        return spec_err(path, s->name, "bad number of dimensions");
    for (int d = 0; d < s->ndim; d++) {
        if (s->shape[d] < 0)
            return spec_err(path, s->name, "negative dimension");
        if (s->shape[d] && numel > (uint64_t)INT64_MAX / 8 / (uint64_t)s->shape[d])
            return spec_err(path, s->name, "too many elements");
        numel *= (uint64_t)s->shape[d];
    }
    w->t = *s;
    w->t.name = mb_xstrdup(s->name);
    w->t.numel = (int64_t)numel;
    w->t.nbytes = (size_t)(numel * mb_st_dtype_size(s->dtype));
    w->t.data = NULL;
    w->t.file = NULL;
    return 0;
}

/* The reference order: dtype descending, then name. */
static int data_order(const void *a, const void *b)
{
    const struct wtensor *x = a, *y = b;

    if (x->t.dtype != y->t.dtype)
        return x->t.dtype > y->t.dtype ? -1 : 1;
    return strcmp(x->t.name, y->t.name);
}

static int name_order(const void *a, const void *b)
{
    return strcmp((*(const struct wtensor *const *)a)->t.name,
                  (*(const struct wtensor *const *)b)->t.name);
}

/* Offsets in data order, the name index, and no name twice. */
static int layout(mb_st_writer *w)
{
    uint64_t at = 0;
    int rc = 0;

    qsort(w->t, (size_t)w->n, sizeof *w->t, data_order);
    const struct wtensor **order = mb_xcalloc((size_t)(w->n ? w->n : 1), sizeof *order);
    for (int i = 0; i < w->n; i++) {
        w->t[i].begin = at;
        at += w->t[i].t.nbytes;
        order[i] = &w->t[i];
    }
    qsort(order, (size_t)w->n, sizeof *order, name_order);
    w->by_name = mb_xcalloc((size_t)(w->n ? w->n : 1), sizeof *w->by_name);
    for (int i = 0; i < w->n; i++) {
        w->by_name[i] = (int)(order[i] - w->t);
        if (i > 0 && strcmp(order[i - 1]->t.name, order[i]->t.name) == 0 && rc == 0)
            rc = spec_err(w->path, order[i]->t.name, "given twice");
    }
    free(order);
    return rc;
}

static void writer_free(mb_st_writer *w)
{
    for (int i = 0; i < w->n; i++) {
        free((char *)w->t[i].t.name);
        free(w->t[i].spans);
    }
    pthread_mutex_destroy(&w->lock);
    free(w->t);
    free(w->by_name);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* pwrite all of DATA[LEN] at AT. */
static int write_at(int fd, const void *data, size_t len, uint64_t at)
{
    const char *p = data;

    while (len > 0) {
        ssize_t k = pwrite(fd, p, MB_MIN(len, (size_t)1 << 30), (off_t)at);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        len -= (size_t)k;
        at += (uint64_t)k;
    }
    return 0;
}

/* Create the temporary, write the header and give the file its full size. */
static int start_file(mb_st_writer *w, const struct mb_buf *header)
{
    w->fd = mb_fs_create_temp(w->tmp, 0666);
    if (w->fd < 0)
        return mb_err_errno(w->tmp, "cannot create");
    w->created = 1;
    uint64_t total = header->len;
    for (int i = 0; i < w->n; i++)
        total += w->t[i].t.nbytes;
    w->data_start = header->len;
    if (write_at(w->fd, header->data, header->len, 0) != 0)
        return mb_err_errno(w->tmp, "cannot write the header");
    if (ftruncate(w->fd, (off_t)total) != 0)
        return mb_err_errno(w->tmp, "cannot size to %llu bytes", (unsigned long long)total);
    return 0;
}

mb_st_writer *mb_st_writer_open(const char *path, const struct mb_st_tensor *spec, int n,
                                const char *metadata_json)
{
    mb_st_writer *w = mb_xcalloc(1, sizeof *w);
    struct mb_buf header = MB_BUF_INIT, tmp = MB_BUF_INIT;
    int rc = 0;

    pthread_mutex_init(&w->lock, NULL);
    w->fd = -1;
    w->path = mb_xstrdup(path);
    mb_buf_addf(&tmp, "%s.tmp", path);
    w->tmp = tmp.data;
    w->t = mb_xcalloc((size_t)(n > 0 ? n : 1), sizeof *w->t);
    if (n < 0)
        rc = mb_err_set(MB_E_INVALID, path, "negative tensor count %d", n);
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = take_spec(path, &spec[i], &w->t[i]);
        w->n += rc == 0;
    }
    if (rc == 0)
        rc = layout(w);
    if (rc == 0)
        rc = build_header(w, metadata_json, &header);
    if (rc == 0)
        rc = start_file(w, &header);
    mb_buf_release(&header);
    if (rc != 0) {
        mb_st_writer_abort(w);
        return NULL;
    }
    return w;
}

static struct wtensor *writer_find(const mb_st_writer *w, const char *name)
{
    int lo = 0, hi = w->n - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, w->t[w->by_name[mid]].t.name);
        if (c == 0)
            return &w->t[w->by_name[mid]];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Record [A, B) as written; -1 if any of it was written before. */
static int mark(struct wtensor *t, size_t a, size_t b)
{
    size_t i = t->nspans;

    while (i > 0 && t->spans[i - 1].a >= b) /* usually 0 steps: pieces come in order */
        i--;
    if (i > 0 && t->spans[i - 1].b > a)
        return -1;
    if (i > 0 && t->spans[i - 1].b == a) {
        t->spans[i - 1].b = b;
        if (i < t->nspans && t->spans[i].a == b) { /* closes a hole: join the next */
            t->spans[i - 1].b = t->spans[i].b;
            memmove(&t->spans[i], &t->spans[i + 1], (t->nspans - i - 1) * sizeof *t->spans);
            t->nspans--;
        }
        return 0;
    }
    if (i < t->nspans && t->spans[i].a == b) {
        t->spans[i].a = a;
        return 0;
    }
    MB_GROW(t->spans, t->cap, t->nspans + 1);
    memmove(&t->spans[i + 1], &t->spans[i], (t->nspans - i) * sizeof *t->spans);
    t->spans[i] = (struct span){ a, b };
    t->nspans++;
    return 0;
}

int mb_st_writer_put(mb_st_writer *w, const char *name, size_t offset, const void *data,
                     size_t len)
{
    struct wtensor *t = writer_find(w, name);

    if (!t)
        return mb_err_set(MB_E_INVALID, w->path, "tensor '%s': not in the file's tensor list",
                          name);
    if (offset > t->t.nbytes || len > t->t.nbytes - offset)
        return mb_err_set(MB_E_INVALID, w->path,
                          "tensor '%s': bytes [%zu, %zu) are outside its %zu bytes", name,
                          offset, offset + len, t->t.nbytes);
    if (len == 0)
        return 0;
    pthread_mutex_lock(&w->lock);
    int rc = mark(t, offset, offset + len);
    pthread_mutex_unlock(&w->lock);
    if (rc != 0)
        return mb_err_set(MB_E_INVALID, w->path,
                          "tensor '%s': bytes [%zu, %zu) overlap bytes written before", name,
                          offset, offset + len);
    if (write_at(w->fd, data, len, w->data_start + t->begin + offset) != 0) {
        pthread_mutex_lock(&w->lock);
        w->failed = 1;
        pthread_mutex_unlock(&w->lock);
        return mb_err_errno(w->tmp, "cannot write tensor '%s'", name);
    }
    return 0;
}

static int check_complete(const mb_st_writer *w)
{
    for (int i = 0; i < w->n; i++) {
        const struct wtensor *t = &w->t[i];
        size_t done = t->nspans ? t->spans[0].b - t->spans[0].a : 0;
        if (t->nspans > 1 || done != t->t.nbytes)
            return mb_err_set(MB_E_INVALID, w->path,
                              "tensor '%s': only %zu of its %zu bytes were written",
                              t->t.name, t->nspans > 1 ? (size_t)0 : done, t->t.nbytes);
    }
    return 0;
}

int mb_st_writer_close(mb_st_writer *w)
{
    int rc = 0;

    if (w->failed)
        rc = mb_err_set(MB_E_IO, w->tmp, "an earlier write failed");
    if (rc == 0)
        rc = check_complete(w);
    if (rc == 0 && fsync(w->fd) != 0)
        rc = mb_err_errno(w->tmp, "cannot fsync");
    if (rc == 0) {
        int fd = w->fd;
        w->fd = -1;
        if (close(fd) != 0)
            rc = mb_err_errno(w->tmp, "cannot close");
    }
    if (rc == 0 && rename(w->tmp, w->path) != 0)
        rc = mb_err_errno(w->path, "cannot rename %s to it", w->tmp);
    if (rc != 0) {
        mb_st_writer_abort(w);
        return -1;
    }
    mb_fs_forget_temp(w->tmp);
    w->created = 0;
    rc = mb_fs_sync_parent(w->path);
    writer_free(w);
    return rc;
}

void mb_st_writer_abort(mb_st_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->created) {
        unlink(w->tmp);
        mb_fs_forget_temp(w->tmp);
    }
    writer_free(w);
}

/* ---- the index ------------------------------------------------------------------- */

/* The code point at S (valid UTF-8 of LEN bytes at most), its length in *N; -1 if bad. */
static long decode_utf8(const unsigned char *s, size_t len, size_t *n)
{
    unsigned c = s[0];
    size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
             : (c & 0xF8) == 0xF0 ? 4 : 0;
    long cp = k == 1 ? (long)c : k == 2 ? (long)(c & 0x1F) : k == 3 ? (long)(c & 0x0F)
            : (long)(c & 0x07);

    if (k == 0 || k > len)
        return -1;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    *n = k;
    return cp;
}

/* S as Python's json.dumps writes it with ensure_ascii (the default). */
static int python_string(struct mb_buf *out, const char *s, const char *where)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);

    mb_buf_addc(out, '"');
    for (size_t i = 0; i < len;) {
        size_t k = 1;
        long cp = decode_utf8(p + i, len - i, &k);
        if (cp < 0)
            return mb_err_set(MB_E_INVALID, where, "tensor name '%s' is not valid UTF-8", s);
        const char *e = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : cp == '\n' ? "\\n"
                      : cp == '\r' ? "\\r" : cp == '\t' ? "\\t" : cp == '\b' ? "\\b"
                      : cp == '\f' ? "\\f" : NULL;
        if (e)
            mb_buf_adds(out, e);
        else if (cp >= 0x20 && cp < 0x7F)
            mb_buf_addc(out, (char)cp);
        else if (cp < 0x10000)
            mb_buf_addf(out, "\\u%04lx", cp);
        else
            mb_buf_addf(out, "\\u%04lx\\u%04lx", 0xD800 + ((cp - 0x10000) >> 10),
                        0xDC00 + ((cp - 0x10000) & 0x3FF));
        i += k;
    }
    mb_buf_addc(out, '"');
    return 0;
}

/* Sum of the element counts of the named tensors, read from their shards in DIR. */
static int count_parameters(const char *dir, const char *const *names,
                            const char *const *shards, int n, uint64_t *total)
{
    struct mb_buf path = MB_BUF_INIT;
    mb_st_file *f = NULL;
    const char *open_shard = NULL;
    int rc = 0;

    *total = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (!open_shard || strcmp(open_shard, shards[i]) != 0) {
            mb_st_close(f);
            mb_buf_reset(&path);
            mb_buf_addf(&path, "%s/%s", dir, shards[i]);
            open_shard = shards[i];
            if (!(f = mb_st_open(path.data))) {
                rc = -1;
                break;
            }
        }
        const struct mb_st_tensor *t = mb_st_find(f, names[i]);
        if (!t)
            rc = mb_err_set(MB_E_INVALID, path.data, "tensor '%s': not in this shard",
                            names[i]);
        else
            *total += (uint64_t)t->numel;
    }
    mb_st_close(f);
    mb_buf_release(&path);
    return rc;
}

static int index_order(const void *a, const void *b)
{
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

static int index_text(struct mb_buf *out, const char *where, const char *const *names,
                      const char *const *shards, int n, uint64_t params, uint64_t size)
{
    const char *const **order = mb_xcalloc((size_t)(n ? n : 1), sizeof *order);
    int rc = 0;

    for (int i = 0; i < n; i++)
        order[i] = &names[i];
    qsort(order, (size_t)n, sizeof *order, index_order);
    mb_buf_addf(out, "{\n  \"metadata\": {\n    \"total_parameters\": %llu,\n"
                     "    \"total_size\": %llu\n  },\n  \"weight_map\": {",
                (unsigned long long)params, (unsigned long long)size);
    for (int k = 0; rc == 0 && k < n; k++) {
        int i = (int)(order[k] - names);
        if (k > 0 && strcmp(names[i], *order[k - 1]) == 0)
            rc = mb_err_set(MB_E_INVALID, where, "tensor '%s': given twice", names[i]);
        mb_buf_adds(out, k ? ",\n    " : "\n    ");
        if (rc == 0)
            rc = python_string(out, names[i], where);
        mb_buf_adds(out, ": ");
        if (rc == 0)
            rc = python_string(out, shards[i], where);
    }
    mb_buf_adds(out, n ? "\n  }\n}\n" : "}\n}\n");
    free(order);
    return rc;
}

int mb_st_index_write(const char *dir, const char *const *names, const char *const *shards,
                      int n, uint64_t total_size)
{
    struct mb_buf path = MB_BUF_INIT, text = MB_BUF_INIT;
    struct mb_outfile of = MB_OUTFILE_INIT;
    uint64_t params;

    mb_buf_addf(&path, "%s/model.safetensors.index.json", dir);
    int rc = count_parameters(dir, names, shards, n, &params);
    if (rc == 0)
        rc = index_text(&text, path.data, names, shards, n, params, total_size);
    if (rc == 0)
        rc = mb_outfile_open(&of, path.data);
    if (rc == 0) {
        mb_outfile_write(&of, text.data, text.len);
        rc = mb_outfile_commit(&of);
    }
    mb_buf_release(&path);
    mb_buf_release(&text);
    return rc;
}

/* ---- the shard plan ---------------------------------------------------------------- */

int mb_st_plan_shards(const size_t *nbytes, int n, uint64_t max_shard_bytes, int *shard)
{
    int *open = mb_xcalloc((size_t)(n ? n : 1), sizeof *open); /* the open shard's tensors */
    int nopen = 0, nshards = 0;
    uint64_t open_size = 0;

    for (int i = 0; i < n; i++) {
        if ((uint64_t)nbytes[i] > max_shard_bytes) { /* a shard of its own, numbered now */
            shard[i] = nshards++;
            continue;
        }
        if (open_size + nbytes[i] > max_shard_bytes) {
            for (int k = 0; k < nopen; k++)
                shard[open[k]] = nshards;
            nshards++;
            nopen = 0;
            open_size = 0;
        }
        open[nopen++] = i;
        open_size += nbytes[i];
    }
    for (int k = 0; k < nopen; k++)
        shard[open[k]] = nshards;
    nshards += nopen > 0;
    free(open);
    return nshards;
}

void mb_st_shard_name(char *buf, size_t cap, int i, int n)
{
    if (n == 1)
        snprintf(buf, cap, "model.safetensors");
    else
        snprintf(buf, cap, "model-%05d-of-%05d.safetensors", i + 1, n);
}
