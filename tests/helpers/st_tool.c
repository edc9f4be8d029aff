/* tests/helpers/st_tool.c - io/safetensors from the command line, for t7001.
 *
 *   st_tool list FILE|DIR     one line per tensor, in name order:
 *                             NAME DTYPE [D0,D1,...] CRC32C (of the data, 8 hex digits)
 *   st_tool copy IN OUT       read IN with mb's reader and write it again with mb's writer
 *                             (a file, or a model directory: every shard and the index);
 *                             each tensor goes in three pieces, last third first
 *   st_tool shards MAX N...   mb_st_plan_shards over tensors of N bytes: one line per
 *                             tensor, "tI SHARD_FILE"
 *
 * Errors print "st_tool: error: WHERE: WHAT" and exit 1; usage errors exit 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/crc32c.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"
#include "io/safetensors.h"

static int fail(void)
{
    fprintf(stderr, "st_tool: error: %s: %s\n", mb_err_where(), mb_err_what());
    return 1;
}

static void print_tensor(const struct mb_st_tensor *t)
{
    printf("%s %s [", t->name, mb_st_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++)
        printf(d ? ",%lld" : "%lld", (long long)t->shape[d]);
    printf("] %08x\n", mb_crc32c(0, t->nbytes ? t->data : NULL, t->nbytes));
}

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmd_list(const char *path)
{
    if (is_dir(path)) {
        mb_st_dir *d = mb_st_dir_open(path);
        if (!d)
            return fail();
        for (int i = 0; i < mb_st_dir_count(d); i++)
            print_tensor(mb_st_dir_at(d, i));
        mb_st_dir_close(d);
        return 0;
    }
    mb_st_file *f = mb_st_open(path);
    if (!f)
        return fail();
    const struct mb_st_tensor **order = mb_xcalloc((size_t)mb_st_count(f) + 1, sizeof *order);
    int n = 0;
    for (int i = 0; i < mb_st_count(f); i++) /* name order, through mb_st_find */
        order[n++] = mb_st_at(f, i);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(order[j - 1]->name, order[j]->name) > 0; j--) {
            const struct mb_st_tensor *t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < n; i++)
        print_tensor(mb_st_find(f, order[i]->name));
    free(order);
    mb_st_close(f);
    return 0;
}

/* The "__metadata__" object of PATH's header, as JSON text in header order, or NULL. */
static char *metadata_of(const char *path)
{
    const unsigned char *map;
    size_t size;
    uint64_t n = 0;
    struct mb_buf out = MB_BUF_INIT;

    if (mb_fs_map(path, (const void **)&map, &size) != 0)
        return NULL;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | map[i];
    mb_json *root = mb_json_parse((const char *)map + 8, (size_t)n, path);
    mb_json *meta = mb_json_get(root, "__metadata__");
    void *it = NULL;
    const char *key;
    mb_json *v;
    if (meta) {
        mb_buf_addc(&out, '{');
        while (mb_json_next(meta, &it, &key, &v)) {
            size_t len;
            const char *s = mb_json_str(v, &len);
            if (out.len > 1)
                mb_buf_addc(&out, ',');
            mb_json_escape(&out, key, strlen(key));
            mb_buf_addc(&out, ':');
            mb_json_escape(&out, s, len);
        }
        mb_buf_addc(&out, '}');
    }
    mb_json_free(root);
    mb_fs_unmap(map, size);
    return out.data;
}

static int put_thirds(mb_st_writer *w, const struct mb_st_tensor *t)
{
    size_t a = t->nbytes / 3, b = 2 * t->nbytes / 3;
    const char *p = t->data;

    return mb_st_writer_put(w, t->name, b, p + b, t->nbytes - b) ||
           mb_st_writer_put(w, t->name, 0, p, a) ||
           mb_st_writer_put(w, t->name, a, p + a, b - a);
}

static int copy_file(const char *in, const char *out)
{
    mb_st_file *f = mb_st_open(in);
    if (!f)
        return -1;
    int n = mb_st_count(f);
    struct mb_st_tensor *spec = mb_xcalloc((size_t)n + 1, sizeof *spec);
    for (int i = 0; i < n; i++) /* any order: the writer sorts */
        spec[i] = *mb_st_at(f, n - 1 - i);
    char *meta = metadata_of(in);
    mb_st_writer *w = mb_st_writer_open(out, spec, n, meta);
    int rc = w ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = put_thirds(w, mb_st_at(f, i));
    if (w)
        rc = rc == 0 ? mb_st_writer_close(w) : (mb_st_writer_abort(w), -1);
    free(meta);
    free(spec);
    mb_st_close(f);
    return rc;
}

static int copy_dir(const char *in, const char *out)
{
    mb_st_dir *d = mb_st_dir_open(in);
    if (!d)
        return -1;
    int n = mb_st_dir_count(d), rc = mb_fs_mkdirs(out, "output directory");
    const char **names = mb_xcalloc((size_t)n + 1, sizeof *names);
    const char **shards = mb_xcalloc((size_t)n + 1, sizeof *shards);
    uint64_t total = 0;
    struct mb_buf src = MB_BUF_INIT, dst = MB_BUF_INIT;
    for (int i = 0; rc == 0 && i < n; i++) {
        const struct mb_st_tensor *t = mb_st_dir_at(d, i);
        names[i] = t->name;
        shards[i] = mb_st_dir_shard_of(d, t->name);
        total += t->nbytes;
        if (i == 0 || strcmp(shards[i], shards[i - 1]) != 0) {
            int seen = 0;
            for (int k = 0; k < i; k++)
                seen |= strcmp(shards[k], shards[i]) == 0;
            mb_buf_reset(&src);
            mb_buf_reset(&dst);
            mb_buf_addf(&src, "%s/%s", in, shards[i]);
            mb_buf_addf(&dst, "%s/%s", out, shards[i]);
            if (!seen)
                rc = copy_file(src.data, dst.data);
        }
    }
    if (rc == 0 && mb_st_dir_is_sharded(d))
        rc = mb_st_index_write(out, names, shards, n, total);
    mb_buf_release(&src);
    mb_buf_release(&dst);
    free(names);
    free(shards);
    mb_st_dir_close(d);
    return rc;
}

static int cmd_shards(int argc, char **argv)
{
    int64_t max, v;
    int n = argc;
    size_t *sizes = mb_xcalloc((size_t)n + 1, sizeof *sizes);
    int *shard = mb_xcalloc((size_t)n + 1, sizeof *shard);
    char name[64];

    if (mb_parse_i64(argv[0], 0, INT64_MAX, &max, "MAX") != 0)
        return fail();
    for (int i = 1; i < n; i++) {
        if (mb_parse_i64(argv[i], 0, INT64_MAX, &v, "size") != 0)
            return fail();
        sizes[i - 1] = (size_t)v;
    }
    int nshards = mb_st_plan_shards(sizes, n - 1, (uint64_t)max, shard);
    for (int i = 0; i < n - 1; i++) {
        mb_st_shard_name(name, sizeof name, shard[i], nshards);
        printf("t%d %s\n", i, name);
    }
    free(sizes);
    free(shard);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "list") == 0)
        return cmd_list(argv[2]);
    if (argc == 4 && strcmp(argv[1], "copy") == 0) {
        int rc = is_dir(argv[2]) ? copy_dir(argv[2], argv[3]) : copy_file(argv[2], argv[3]);
        return rc == 0 ? 0 : fail();
    }
    if (argc >= 3 && strcmp(argv[1], "shards") == 0)
        return cmd_shards(argc - 2, argv + 2);
    fprintf(stderr, "usage: st_tool list FILE|DIR | copy IN OUT | shards MAX SIZE...\n");
    return 2;
}
