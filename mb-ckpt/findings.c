/* mb-ckpt/findings.c - what verify reports, whatever it verifies: problems, non-finite
 * values, CRC-32C checksum files, the verdict.
 *
 * A checksum file has one line per dataset (or HF tensor): eight lower-case hex digits of
 * the CRC-32C of its stored bytes, a space, its name. It is written as a temporary and
 * renamed (core/fs), and only for something that verified.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

void ck_problem(struct ck_verify *v, const char *where, const char *fmt, ...)
{
    va_list ap;

    printf("problem: %s: ", where);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    v->problems++;
}

static float widen(enum mb_ckpt_dtype t, const void *raw, int64_t i)
{
    if (t == MB_CKPT_F32) {
        float x;
        memcpy(&x, (const char *)raw + 4 * i, 4);
        return x;
    }
    uint16_t h;
    memcpy(&h, (const char *)raw + 2 * i, 2);
    return t == MB_CKPT_BF16 ? mb_ckpt_f32_from_bf16(h) : mb_ckpt_f32_from_f16(h);
}

void ck_check_finite(struct ck_verify *v, const char *name, enum mb_ckpt_dtype t,
                     const void *raw, int ndim, const int64_t *shape, int64_t numel)
{
    int64_t bad = 0, first = -1;

    for (int64_t i = 0; i < numel; i++)
        if (!isfinite(widen(t, raw, i)) && bad++ == 0)
            first = i;
    if (bad) {
        char idx[128];
        float x = widen(t, raw, first);
        ck_index_str(idx, sizeof idx, ndim, shape, first);
        ck_problem(v, name, "%lld non-finite values; the first is %s at index %s (flat %lld)",
                   (long long)bad, isnan(x) ? "nan" : x > 0 ? "inf" : "-inf", idx,
                   (long long)first);
    }
}

static int write_checksums(const struct ck_verify *v, const char *path)
{
    struct mb_outfile of = MB_OUTFILE_INIT;

    if (mb_outfile_open(&of, path) != 0)
        return -1;
    for (int i = 0; i < v->n; i++)
        fprintf(of.fp, "%08x %s\n", (unsigned)v->crc[i], v->names[i]);
    return mb_outfile_commit(&of);
}

static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

/* One "%08x NAME" line, checked against the computed checksums. */
static void check_line(struct ck_verify *v, const char *where, char *line, char *seen)
{
    char *sp = strchr(line, ' ');
    char *end;
    unsigned long crc = sp ? strtoul(line, &end, 16) : 0;

    if (!sp || end != sp || sp - line != 8 || sp[1] == '\0') {
        ck_problem(v, where, "not a checksum line (8 hex digits, a space, a name)");
        return;
    }
    const char **hit = bsearch(sp + 1, v->names, (size_t)v->n, sizeof *v->names, cmp_name);
    if (!hit) {
        ck_problem(v, sp + 1, "listed in the checksum file but missing");
        return;
    }
    int i = (int)(hit - v->names);
    seen[i] = 1;
    if (v->crc[i] != (uint32_t)crc)
        ck_problem(v, sp + 1, "checksum %08x, expected %08lx", (unsigned)v->crc[i], crc);
}

static int check_checksums(struct ck_verify *v, const char *path)
{
    char *text;
    size_t len;

    if (mb_fs_read_all(path, &text, &len) != 0)
        return -1;
    char *seen = mb_xcalloc((size_t)v->n + 1, 1);
    char *save = NULL;
    long long lineno = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        check_line(v, mb_at_line(path, ++lineno), line, seen);
    for (int i = 0; i < v->n; i++)
        if (!seen[i])
            ck_problem(v, v->names[i], "not in the checksum file %s", path);
    free(seen);
    free(text);
    return 0;
}

int ck_verify_finish(struct ck_verify *v, const char *what, const char *check, const char *write)
{
    if (check && check_checksums(v, check) != 0)
        return -1;
    if (v->problems)
        return mb_err_set(MB_E_INVALID, what, "%d problem%s found", v->problems,
                          v->problems == 1 ? "" : "s");
    if (write && write_checksums(v, write) != 0)
        return -1;
    printf("verified: %s: %d %s, structure complete, values finite%s\n", what, v->n,
           v->n == 1 ? "tensor" : "tensors", check ? ", checksums match" : "");
    return 0;
}
