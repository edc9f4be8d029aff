/* io/npy.c - .npy writer (numpy.save's exact bytes) and a validating mapped reader.
 *
 * Header layout (numpy/lib/format): "\x93NUMPY", major, minor, a little-endian header
 * length (u16 for 1.0, u32 for 2.0/3.0), then a Python dict literal with the keys
 * 'descr', 'fortran_order' and 'shape', padded with spaces and ended by '\n' so that the
 * data starts on a 64-byte boundary.
 */
#include "io/npy.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
/* numpy leaves room for the first axis to grow to 21 digits without moving the data */
#define NPY_GROWTH_DIGITS 21

static const struct {
    const char *descr;
    size_t size;
} npy_types[] = {
    [MB_NPY_U1] = { "|u1", 1 }, [MB_NPY_I1] = { "|i1", 1 }, [MB_NPY_I2] = { "<i2", 2 },
    [MB_NPY_U2] = { "<u2", 2 }, [MB_NPY_I4] = { "<i4", 4 }, [MB_NPY_U4] = { "<u4", 4 },
    [MB_NPY_I8] = { "<i8", 8 }, [MB_NPY_U8] = { "<u8", 8 }, [MB_NPY_F4] = { "<f4", 4 },
    [MB_NPY_F8] = { "<f8", 8 },
};

size_t mb_npy_dtype_size(enum mb_npy_dtype dtype)
{
    return npy_types[dtype].size;
}

const char *mb_npy_descr(enum mb_npy_dtype dtype)
{
    return npy_types[dtype].descr;
}

/* The dict text numpy writes: keys sorted, Python reprs, growth spaces. */
static size_t format_header(char *buf, size_t cap, enum mb_npy_dtype dtype, int ndim,
                            const int64_t *shape)
{
    char sh[MB_NPY_MAX_DIM * 24 + 4];
    size_t n = 0;

    n += (size_t)snprintf(sh + n, sizeof sh - n, "(");
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(sh + n, sizeof sh - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    snprintf(sh + n, sizeof sh - n, ndim == 1 ? ",)" : ")");
    int len = snprintf(buf, cap, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                       npy_types[dtype].descr, sh);
    if (ndim > 0) {
        int digits = snprintf(NULL, 0, "%" PRId64, shape[0]);
        for (int i = digits; i < NPY_GROWTH_DIGITS; i++)
            buf[len++] = ' ';
    }
    return (size_t)len;
}

int mb_npy_write(const char *path, enum mb_npy_dtype dtype, int ndim, const int64_t *shape,
                 const void *data)
{
    char head[NPY_ALIGN * 8];
    struct mb_outfile of = MB_OUTFILE_INIT;
    int64_t count = 1;

    MB_ASSERT(ndim >= 0 && ndim <= MB_NPY_MAX_DIM);
    for (int i = 0; i < ndim; i++)
        count *= shape[i];
    size_t len = format_header(head + 10, sizeof head - 10 - NPY_ALIGN, dtype, ndim, shape);
    size_t pad = NPY_ALIGN - (10 + len + 1) % NPY_ALIGN;
    memset(head + 10 + len, ' ', pad);
    len += pad;
    head[10 + len++] = '\n';
    memcpy(head, NPY_MAGIC, NPY_MAGIC_LEN);
    head[6] = 1;
    head[7] = 0;
    head[8] = (char)(len & 0xff);
    head[9] = (char)(len >> 8);
    if (mb_outfile_open(&of, path) != 0)
        return -1;
    mb_outfile_write(&of, head, 10 + len);
    if (count > 0)
        mb_outfile_write(&of, data, (size_t)count * npy_types[dtype].size);
    return mb_outfile_commit(&of);
}

/* ---- reading ---------------------------------------------------------------- */

struct hdr_parser {
    const char *p, *end;
};

static void skip_space(struct hdr_parser *hp)
{
    while (hp->p < hp->end && isspace((unsigned char)*hp->p))
        hp->p++;
}

static int expect(struct hdr_parser *hp, char c)
{
    skip_space(hp);
    if (hp->p >= hp->end || *hp->p != c)
        return -1;
    hp->p++;
    return 0;
}

/* A quoted Python string without escapes; copied into BUF (NUL-terminated). */
static int parse_str(struct hdr_parser *hp, char *buf, size_t cap)
{
    skip_space(hp);
    if (hp->p >= hp->end || (*hp->p != '\'' && *hp->p != '"'))
        return -1;
    char q = *hp->p++;
    size_t n = 0;
    while (hp->p < hp->end && *hp->p != q) {
        if (n + 1 >= cap)
            return -1;
        buf[n++] = *hp->p++;
    }
    buf[n] = '\0';
    return expect(hp, q);
}

static int parse_shape(struct hdr_parser *hp, struct mb_npy *a)
{
    if (expect(hp, '(') != 0)
        return -1;
    a->ndim = 0;
    for (;;) {
        skip_space(hp);
        if (hp->p < hp->end && *hp->p == ')')
            return hp->p++, 0;
        if (a->ndim == MB_NPY_MAX_DIM || hp->p >= hp->end || !isdigit((unsigned char)*hp->p))
            return -1;
        int64_t v = 0;
        while (hp->p < hp->end && isdigit((unsigned char)*hp->p)) {
            if (v > (INT64_MAX - 9) / 10)
                return -1;
            v = v * 10 + (*hp->p++ - '0');
        }
        a->shape[a->ndim++] = v;
        skip_space(hp);
        if (hp->p < hp->end && *hp->p == ',')
            hp->p++;
        else if (hp->p >= hp->end || *hp->p != ')')
            return -1;
    }
}

static int parse_descr(const char *descr, struct mb_npy *a)
{
    for (size_t i = 0; i < MB_ARRAY_LEN(npy_types); i++) {
        const char *d = npy_types[i].descr;
        /* one-byte types may be written with any byte-order mark */
        if (strcmp(descr, d) == 0 || (d[0] == '|' && strchr("<>=", descr[0]) &&
                                      strcmp(descr + 1, d + 1) == 0)) {
            a->dtype = (enum mb_npy_dtype)i;
            return 0;
        }
    }
    return -1;
}

/* Parse the header dict into A. Returns 0, or -1 with mb_err naming PATH. */
static int parse_header(const char *path, const char *text, size_t len, struct mb_npy *a)
{
    struct hdr_parser hp = { text, text + len };
    char key[32], descr[32] = "";
    int seen = 0, fortran = 0;

    if (expect(&hp, '{') != 0)
        return mb_err_set(MB_E_PARSE, path, "npy header is not a dict");
    for (;;) {
        skip_space(&hp);
        if (hp.p < hp.end && *hp.p == '}')
            break;
        if (parse_str(&hp, key, sizeof key) != 0 || expect(&hp, ':') != 0)
            return mb_err_set(MB_E_PARSE, path, "npy header: bad key");
        skip_space(&hp);
        if (strcmp(key, "descr") == 0 && parse_str(&hp, descr, sizeof descr) == 0) {
            seen |= 1;
        } else if (strcmp(key, "fortran_order") == 0 && hp.end - hp.p >= 5 &&
                   (memcmp(hp.p, "False", 5) == 0 || memcmp(hp.p, "True", 4) == 0)) {
            fortran = *hp.p == 'T';
            hp.p += fortran ? 4 : 5;
            seen |= 2;
        } else if (strcmp(key, "shape") == 0 && parse_shape(&hp, a) == 0) {
            seen |= 4;
        } else {
            return mb_err_set(MB_E_PARSE, path, "npy header: bad value for '%s'", key);
        }
        skip_space(&hp);
        if (hp.p < hp.end && *hp.p == ',')
            hp.p++;
    }
    if (seen != 7)
        return mb_err_set(MB_E_PARSE, path, "npy header lacks descr, fortran_order or shape");
    if (parse_descr(descr, a) != 0)
        return mb_err_set(MB_E_UNSUPPORTED, path, "npy dtype '%s' not supported", descr);
    if (fortran && a->ndim > 1)
        return mb_err_set(MB_E_UNSUPPORTED, path, "npy array in Fortran order");
    return 0;
}

/* Check the preamble; sets *HDR_LEN and *DATA_OFF. */
static int read_preamble(const char *path, const unsigned char *b, size_t size,
                         size_t *hdr_len, size_t *data_off)
{
    if (size < 10 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return mb_err_set(MB_E_PARSE, path, "not an .npy file (bad magic)");
    if (b[6] == 1 && b[7] == 0) {
        *hdr_len = (size_t)b[8] | (size_t)b[9] << 8;
        *data_off = 10 + *hdr_len;
    } else if ((b[6] == 2 || b[6] == 3) && b[7] == 0 && size >= 12) {
        *hdr_len = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
                   (size_t)b[11] << 24;
        *data_off = 12 + *hdr_len;
    } else {
        return mb_err_set(MB_E_UNSUPPORTED, path, "npy format version %d.%d", b[6], b[7]);
    }
    if (*data_off > size)
        return mb_err_set(MB_E_PARSE, path, "npy header runs past the end of the file");
    return 0;
}

static int check_size(const char *path, struct mb_npy *a, size_t avail)
{
    size_t item = npy_types[a->dtype].size;

    a->count = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] != 0 && a->count > INT64_MAX / a->shape[i])
            return mb_err_set(MB_E_PARSE, path, "npy shape too large");
        a->count *= a->shape[i];
    }
    if ((uint64_t)a->count > SIZE_MAX / item || (size_t)a->count * item != avail)
        return mb_err_set(MB_E_PARSE, path,
                          "npy data is %zu bytes, shape and dtype say %" PRId64 " x %zu",
                          avail, a->count, item);
    return 0;
}

int mb_npy_read(const char *path, struct mb_npy *out)
{
    struct mb_npy a = { 0 };
    size_t hdr_len = 0, off = 0;

    memset(out, 0, sizeof *out);
    if (mb_fs_map(path, &a.map, &a.map_size) != 0)
        return -1;
    const unsigned char *b = a.map;
    if (read_preamble(path, b, a.map_size, &hdr_len, &off) != 0 ||
        parse_header(path, (const char *)b + off - hdr_len, hdr_len, &a) != 0 ||
        check_size(path, &a, a.map_size - off) != 0) {
        mb_npy_free(&a);
        return -1;
    }
    size_t item = npy_types[a.dtype].size, nbytes = (size_t)a.count * item;
    a.data = b + off;
    if (off % item != 0 && nbytes > 0) {
        /* writers other than numpy may not align; copy rather than read misaligned */
        a.copy = mb_xmalloc(nbytes);
        memcpy(a.copy, b + off, nbytes);
        a.data = a.copy;
    }
    *out = a;
    return 0;
}

void mb_npy_free(struct mb_npy *a)
{
    if (a->map)
        mb_fs_unmap(a->map, a->map_size);
    free(a->copy);
    memset(a, 0, sizeof *a);
}
