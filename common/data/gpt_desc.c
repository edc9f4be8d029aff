/* data/gpt_desc.c - the JSON description Megatron hashes to name cached indices.
 *
 * MegatronDataset writes json.dumps(unique_identifiers, indent=4) and names its cache
 * files after the MD5 of that text, so the text must match Python byte for byte:
 * four-space indentation, ", " never used (one item per line), ": " after keys,
 * ensure_ascii escapes, floats in Python's shortest round-trip repr.
 */
#include "data/gpt_desc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Python's float repr: the shortest digits that read back to X, in fixed notation when
 * the decimal exponent is in [-4, 16), else scientific ("1e-05", "1.5e+16"). */
void mb_py_float_repr(struct mb_buf *out, double x)
{
    char buf[40], digits[20];
    int exp10 = 0, nd = 0;

    if (x == 0.0) {
        mb_buf_adds(out, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    const char *p = buf;
    if (*p == '-')
        mb_buf_addc(out, *p++);
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int decpt = exp10 + 1; /* value = 0.DIGITS x 10^decpt */
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            mb_buf_adds(out, "0.");
            for (int i = 0; i < -decpt; i++)
                mb_buf_addc(out, '0');
            mb_buf_add(out, digits, (size_t)nd);
        } else if (decpt >= nd) {
            mb_buf_add(out, digits, (size_t)nd);
            for (int i = nd; i < decpt; i++)
                mb_buf_addc(out, '0');
            mb_buf_adds(out, ".0");
        } else {
            mb_buf_add(out, digits, (size_t)decpt);
            mb_buf_addc(out, '.');
            mb_buf_add(out, digits + decpt, (size_t)(nd - decpt));
        }
        return;
    }
    mb_buf_addc(out, digits[0]);
    if (nd > 1) {
        mb_buf_addc(out, '.');
        mb_buf_add(out, digits + 1, (size_t)(nd - 1));
    }
    mb_buf_addf(out, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
}

/* One code point from UTF-8 at S (LEN bytes left); invalid bytes come back as themselves. */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *used)
{
    int n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 1;
    uint32_t cp = n == 1 ? s[0] : s[0] & (0x7f >> n);

    if ((size_t)n > len || s[0] >= 0xf8 || (s[0] >= 0x80 && s[0] < 0xc0)) {
        *used = 1;
        return s[0];
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *used = 1;
            return s[0];
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *used = (size_t)n;
    return cp;
}

/* json.dumps of a str with ensure_ascii=True */
void mb_py_json_str(struct mb_buf *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);

    mb_buf_addc(out, '"');
    for (size_t i = 0; i < len;) {
        size_t used;
        uint32_t c = utf8_next(p + i, len - i, &used);
        i += used;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f" : NULL;
        if (esc) {
            mb_buf_adds(out, esc);
        } else if (c >= 0x20 && c < 0x7f) {
            mb_buf_addc(out, (char)c);
        } else if (c < 0x10000) {
            mb_buf_addf(out, "\\u%04x", c);
        } else {
            c -= 0x10000;
            mb_buf_addf(out, "\\u%04x\\u%04x", 0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
        }
    }
    mb_buf_addc(out, '"');
}

static void split_matrix(struct mb_buf *b, const struct mb_split *s)
{
    mb_buf_adds(b, "    \"split_matrix\": [\n");
    for (int i = 0; i < MB_SPLIT_COUNT; i++) {
        if (!s->present[i]) {
            mb_buf_adds(b, "        null");
        } else {
            mb_buf_adds(b, "        [\n            ");
            /* the first book-end starts at the integer 0 of functools.reduce */
            if (i == 0)
                mb_buf_addc(b, '0');
            else
                mb_py_float_repr(b, s->lo[i]);
            mb_buf_adds(b, ",\n            ");
            mb_py_float_repr(b, s->hi[i]);
            mb_buf_adds(b, "\n        ]");
        }
        mb_buf_adds(b, i + 1 < MB_SPLIT_COUNT ? ",\n" : "\n");
    }
    mb_buf_adds(b, "    ],\n");
}

static void tokenizer_ids(struct mb_buf *b, const char *const *ids, int n)
{
    mb_buf_adds(b, "    \"tokenizer\": ");
    if (!ids || n <= 0) {
        mb_buf_adds(b, "null\n");
        return;
    }
    mb_buf_adds(b, "{\n");
    for (int i = 0; i < n; i++) {
        mb_buf_adds(b, "        ");
        mb_py_json_str(b, ids[2 * i]);
        mb_buf_adds(b, ": ");
        mb_py_json_str(b, ids[2 * i + 1]);
        mb_buf_adds(b, i + 1 < n ? ",\n" : "\n");
    }
    mb_buf_adds(b, "    }\n");
}

void mb_gpt_describe(struct mb_buf *b, const struct mb_gpt_desc *d)
{
    mb_buf_addf(b, "{\n    \"class\": \"%s\",\n    \"dataset_path\": ",
                d->mock ? "MockGPTDataset" : "GPTDataset");
    if (d->dataset_path)
        mb_py_json_str(b, d->dataset_path);
    else
        mb_buf_adds(b, "null");
    if (d->num_samples >= 0)
        mb_buf_addf(b, ",\n    \"num_samples\": %lld", (long long)d->num_samples);
    else
        mb_buf_adds(b, ",\n    \"num_samples\": null");
    mb_buf_addf(b, ",\n    \"index_split\": \"%s\",\n    \"random_seed\": %llu,\n"
                   "    \"sequence_length\": %lld,\n    \"split\": ",
                mb_split_name(d->split), (unsigned long long)d->seed, (long long)d->seq_length);
    mb_py_json_str(b, d->split_text);
    mb_buf_adds(b, ",\n");
    split_matrix(b, d->matrix);
    tokenizer_ids(b, d->tokenizer_ids, d->n_tokenizer_ids);
    mb_buf_addc(b, '}');
}
