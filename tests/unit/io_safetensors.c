/* tests/unit/io_safetensors.c - io/safetensors edge cases: hand-made headers accepted and
 * refused (with the file and the tensor or header byte named), the writer's refusals and
 * its temporary file, model directories, the shard plan and names, and garbage.
 *
 * Byte-exactness against the reference writer and reader (safetensors, transformers,
 * huggingface_hub) is checked by tests/tools/t7001-safetensors.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "tests/lib/tap.h"

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    fwrite(data, 1, len, f);
    fclose(f);
}

/* PATH = [u64 len(HEADER)][HEADER][DATA_LEN bytes 0..] */
static void make_st(const char *path, const char *header, size_t data_len)
{
    size_t n = strlen(header);
    unsigned char *buf = calloc(1, 8 + n + data_len);

    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + n + i] = (unsigned char)i;
    write_file(path, buf, 8 + n + data_len);
    free(buf);
}

/* Opening HEADER + DATA_LEN fails, with WHERE containing WANT_WHERE and WHAT WANT_WHAT. */
static void refused(const char *title, const char *header, size_t data_len,
                    const char *want_where, const char *want_what)
{
    make_st("bad.safetensors", header, data_len);
    mb_st_file *f = mb_st_open("bad.safetensors");
    ok(!f, "refused: %s", title);
    if (f) {
        mb_st_close(f);
        return;
    }
    int pass = strstr(mb_err_where(), want_where) && strstr(mb_err_what(), want_what);
    ok(pass, "  message names it: %s: %s", mb_err_where(), mb_err_what());
}

static mb_st_file *accepted(const char *title, const char *header, size_t data_len)
{
    make_st("good.safetensors", header, data_len);
    mb_st_file *f = mb_st_open("good.safetensors");
    ok(f != NULL, "accepted: %s%s%s", title, f ? "" : " -- ", f ? "" : mb_err_what());
    return f;
}

static void dtypes(void)
{
    int all = 1;

    for (int i = 0; i < MB_ST_DTYPE_COUNT; i++) {
        enum mb_st_dtype t;
        const char *name = mb_st_dtype_name((enum mb_st_dtype)i);
        all &= mb_st_dtype_parse(name, strlen(name), &t) == 0 && t == (enum mb_st_dtype)i;
    }
    ok(all, "every dtype name parses back to itself");
    enum mb_st_dtype t;
    ok(mb_st_dtype_parse("F8_E4M3", 7, &t) == -1 && mb_st_dtype_parse("F3", 2, &t) == -1,
       "F8_E4M3 and F3 are unknown");
    ok(mb_st_dtype_parse("F32x", 3, &t) == 0 && t == MB_ST_F32, "parse uses only LEN bytes");
    is_int(mb_st_dtype_size(MB_ST_BF16), 2, "BF16 is 2 bytes");
    is_int(mb_st_dtype_size(MB_ST_U64), 8, "U64 is 8 bytes");
    ok(mb_st_dtype_name(MB_ST_DTYPE_COUNT) == NULL, "no name out of range");
}

static void lenient_reading(void)
{
    mb_st_file *f = accepted("header length not a multiple of 8, leading whitespace, tabs",
                             " \t\n{\"a\" : {\"dtype\":\"F32\", \"shape\":[2],"
                             "\"data_offsets\":[0,8]}}",
                             8);
    if (f) {
        const struct mb_st_tensor *t = mb_st_find(f, "a");
        ok(t && t->numel == 2 && t->nbytes == 8 && ((const unsigned char *)t->data)[1] == 1,
           "tensor a maps its 8 data bytes");
        mb_st_close(f);
    }
    f = accepted("unknown members ignored, escapes decoded, tensors out of offset order",
                 "{\"z\":{\"data_offsets\":[4,6],\"shape\":[1],\"dtype\":\"BF16\","
                 "\"extra\":[1,{\"x\":null},-2.5e3,true]},"
                 "\"caf\\u00e9\\n\\ud83d\\ude00\":{\"dtype\":\"U8\",\"shape\":[2,2],"
                 "\"data_offsets\":[0,4]},"
                 "\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\\\"\"}}   ",
                 6);
    if (f) {
        is_int(mb_st_count(f), 2, "two tensors");
        is_str(mb_st_at(f, 0)->name, "caf\xc3\xa9\n\xf0\x9f\x98\x80", "data order: first at 0");
        is_str(mb_st_at(f, 1)->name, "z", "then z at 4");
        ok(mb_st_find(f, "z") == mb_st_at(f, 1) && !mb_st_find(f, "y"), "find by name");
        is_str(mb_st_metadata(f, "format"), "pt", "metadata format");
        is_str(mb_st_metadata(f, "k"), "v\"", "metadata value unescaped");
        ok(mb_st_metadata(f, "none") == NULL, "absent metadata key");
        is_str(mb_st_at(f, 0)->file, "good.safetensors", "tensor knows its file");
        mb_st_close(f);
    }
    f = accepted("scalar and zero-size tensors, zero-size at the end",
                 "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                 "\"e\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[8,8]},"
                 "\"e2\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[8,8]}}",
                 8);
    if (f) {
        const struct mb_st_tensor *s = mb_st_find(f, "s"), *e = mb_st_find(f, "e");
        ok(s && s->ndim == 0 && s->numel == 1 && e && e->numel == 0 && e->ndim == 2,
           "scalar has 1 element, [3,0] has none");
        mb_st_close(f);
    }
    f = accepted("no tensor at all", "{}", 0);
    mb_st_close(f);
}

static void refused_headers(void)
{
    refused("not an object", "[1]", 0, "bad.safetensors: header byte 0", "expected '{'");
    refused("JSON cut short", "{\"a\":{\"dtype\":\"F32\"", 0, "header byte 19", "ends");
    refused("text after the object", "{} x", 0, "header byte 3", "after the header");
    refused("unknown dtype", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}",
            1, "bad.safetensors: tensor 'a'", "unknown dtype 'F8_E4M3'");
    refused("negative dimension", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}",
            1, "header byte 28", "shape[0] is not a non-negative integer");
    refused("fractional dimension", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}",
            1, "header byte 28", "not an integer");
    refused("three offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1,
            "header byte", "']' after two data_offsets");
    refused("missing shape", "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1,
            "header byte 5", "tensor 'a': entry has no 'shape'");
    refused("dtype mismatch with the byte range",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
            "bad.safetensors: tensor 'a'", "hold 4 bytes, but 2 elements of F32 need 8");
    refused("overlap",
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
            "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
            6, "tensor 'b'", "previous tensor ends at 4 (they overlap)");
    refused("gap",
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
            "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]}}",
            8, "tensor 'b'", "begins at data byte 6, but the previous tensor ends at 4 (a gap)");
    refused("not starting at 0", "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}",
            3, "tensor 'b'", "(a gap)");
    refused("data left over at the end", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
            5, "bad.safetensors", "tensors end at data byte 2, but the data has 5 bytes");
    refused("beyond the file", "{\"a\":{\"dtype\":\"U8\",\"shape\":[9],\"data_offsets\":[0,9]}}", 5,
            "tensor 'a'", "data_offsets end 9 is beyond the data (5 bytes)");
    refused("duplicate names",
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
            "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
            2, "tensor 'a'", "appears twice");
    refused("metadata value not a string", "{\"__metadata__\":{\"n\":1}}", 0, "header byte 21",
            "value of 'n' is not a string");
    refused("two __metadata__", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "header byte",
            "second '__metadata__'");
    refused("shape overflowing 64 bits",
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}",
            0, "tensor 'a'", "overflows");
    refused("offset over 2^64", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
            "\"data_offsets\":[0,18446744073709551616]}}", 0, "header byte", "does not fit");
    refused("NUL in a name", "{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
            0, "header byte 3", "NUL");
    refused("lone surrogate", "{\"\\ud800\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
            0, "header byte 2", "surrogate");
    refused("invalid UTF-8", "{\"\xff\":{}}", 0, "header byte 2", "invalid UTF-8");
    refused("raw control character in a string", "{\"a\tb\":{}}", 0, "header byte 3",
            "control character");
    refused("too many dimensions", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
            "\"data_offsets\":[0,1]}}", 1, "header byte", "more than 8 dimensions");
}

static void refused_lengths(void)
{
    unsigned char buf[16] = { 0 };

    write_file("short.safetensors", buf, 5);
    ok(!mb_st_open("short.safetensors") && strstr(mb_err_what(), "too short"),
       "5-byte file: %s", mb_err_what());
    buf[0] = 200; /* header length 200 in a 16-byte file */
    write_file("long.safetensors", buf, 16);
    ok(!mb_st_open("long.safetensors") && strstr(mb_err_what(), "beyond the end of the file"),
       "header longer than the file: %s", mb_err_what());
    memset(buf, 0, 8);
    buf[3] = 0x10; /* 268435456 > 100 MB */
    write_file("huge.safetensors", buf, 16);
    ok(!mb_st_open("huge.safetensors") && strstr(mb_err_what(), "over the limit"),
       "header over 100 MB: %s", mb_err_what());
    ok(!mb_st_open("missing.safetensors") && strstr(mb_err_where(), "missing.safetensors"),
       "missing file named: %s: %s", mb_err_where(), mb_err_what());
    /* NUL padding after the object is not JSON whitespace (refused by the reference) */
    unsigned char nul[8 + 8] = { 8, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, 0, 0, 0, 0, 0 };
    write_file("nul.safetensors", nul, sizeof nul);
    ok(!mb_st_open("nul.safetensors") && strstr(mb_err_where(), "header byte 2"),
       "NUL padding refused at header byte 2");
}

/* Every prefix at k/16 of a valid file is refused; every header byte changed to a few
 * values either opens or is refused with a message, never crashes. */
static void garbage(void)
{
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"BF16\",\"shape\""
                    ":[2,3],\"data_offsets\":[0,12]},\"s\":{\"dtype\":\"F32\",\"shape\":[],"
                    "\"data_offsets\":[12,16]}}";
    size_t n = strlen(h), len = 8 + n + 16;
    unsigned char *file = calloc(1, len), *m = malloc(len);
    int cuts = 1, flips = 1, opened = 0, tried = 0;
    const unsigned char values[] = { '0', '"', '{', '}', ' ', ',', '9', 0xff, 0, '[' };

    file[0] = (unsigned char)n;
    memcpy(file + 8, h, n);
    for (int k = 0; k < 16; k++) {
        write_file("cut.safetensors", file, len * (size_t)k / 16);
        mb_st_file *f = mb_st_open("cut.safetensors");
        cuts &= f == NULL && mb_err_where()[0] != 0;
        mb_st_close(f);
    }
    ok(cuts, "every cut at k/16 of the file is refused with a message");
    for (size_t i = 0; i < 8 + n; i++) {
        for (size_t v = 0; v < sizeof values; v++) {
            memcpy(m, file, len);
            m[i] = values[v];
            write_file("flip.safetensors", m, len);
            mb_st_file *f = mb_st_open("flip.safetensors");
            flips &= f != NULL || strstr(mb_err_where(), "flip.safetensors") != NULL;
            opened += f != NULL;
            tried++;
            mb_st_close(f);
        }
    }
    ok(flips, "%d changed headers: %d open, the others refused naming the file", tried, opened);
    free(file);
    free(m);
}

static const struct mb_st_tensor spec2[] = {
    { .name = "w", .dtype = MB_ST_BF16, .ndim = 2, .shape = { 2, 3 } },
    { .name = "big", .dtype = MB_ST_I64, .ndim = 1, .shape = { 2 } },
    { .name = "s", .dtype = MB_ST_F32, .ndim = 0 },
};

static void writer_round_trip(void)
{
    const unsigned char bytes[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    mb_st_writer *w = mb_st_writer_open("w.safetensors", spec2, 3, "{\"format\":\"pt\"}");

    ok(w != NULL, "writer opens");
    if (!w)
        return;
    ok(mb_fs_exists("w.safetensors.tmp") && !mb_fs_exists("w.safetensors"),
       "only the temporary exists while writing");
    int rc = mb_st_writer_put(w, "w", 8, bytes + 8, 4) | mb_st_writer_put(w, "s", 0, bytes, 4) |
             mb_st_writer_put(w, "w", 0, bytes, 3) | mb_st_writer_put(w, "big", 0, bytes, 16) |
             mb_st_writer_put(w, "w", 3, bytes + 3, 5) | mb_st_writer_put(w, "w", 12, bytes, 0);
    ok(rc == 0, "pieces in any order");
    ok(mb_st_writer_close(w) == 0, "close");
    ok(mb_fs_exists("w.safetensors") && !mb_fs_exists("w.safetensors.tmp"), "renamed");
    mb_st_file *f = mb_st_open("w.safetensors");
    ok(f != NULL, "mb reads it back");
    if (!f)
        return;
    ok(strcmp(mb_st_at(f, 0)->name, "big") == 0 && strcmp(mb_st_at(f, 1)->name, "s") == 0 &&
       strcmp(mb_st_at(f, 2)->name, "w") == 0, "data order: I64, F32, BF16");
    const struct mb_st_tensor *t = mb_st_find(f, "w");
    ok(t && t->ndim == 2 && t->shape[1] == 3 && memcmp(t->data, bytes, 12) == 0,
       "w's bytes are back in place");
    is_str(mb_st_metadata(f, "format"), "pt", "metadata kept");
    mb_st_close(f);
}

static void writer_refusals(void)
{
    struct mb_st_tensor dup[2] = { spec2[0], spec2[0] };
    struct mb_st_tensor neg = spec2[0];
    const unsigned char bytes[16] = { 0 };

    neg.shape[1] = -3;
    ok(!mb_st_writer_open("d.safetensors", dup, 2, NULL) && strstr(mb_err_what(), "tensor 'w'"),
       "duplicate name refused: %s", mb_err_what());
    ok(!mb_st_writer_open("d.safetensors", &neg, 1, NULL) && strstr(mb_err_what(), "negative"),
       "negative dimension refused");
    ok(!mb_st_writer_open("d.safetensors", spec2, 1, "[1]"), "metadata not an object refused");
    ok(!mb_st_writer_open("d.safetensors", spec2, 1, "{\"a\":1}"),
       "metadata with a non-string value refused");
    ok(!mb_fs_exists("d.safetensors.tmp") && !mb_fs_exists("d.safetensors"),
       "nothing left behind by refused specs");
    ok(!mb_st_writer_open("nodir/d.safetensors", spec2, 1, NULL) &&
       strstr(mb_err_where(), "nodir/d.safetensors.tmp"), "unwritable place named");

    mb_st_writer *w = mb_st_writer_open("p.safetensors", spec2, 3, NULL);
    ok(w != NULL, "writer for refusals");
    if (!w)
        return;
    ok(mb_st_writer_put(w, "nope", 0, bytes, 1) == -1 && strstr(mb_err_what(), "'nope'"),
       "unknown name refused");
    ok(mb_st_writer_put(w, "w", 10, bytes, 4) == -1 && strstr(mb_err_what(), "outside"),
       "range past the end refused: %s", mb_err_what());
    ok(mb_st_writer_put(w, "w", 0, bytes, 6) == 0 && mb_st_writer_put(w, "w", 4, bytes, 4) == -1 &&
       strstr(mb_err_what(), "overlap"), "bytes written twice refused: %s", mb_err_what());
    ok(mb_st_writer_put(w, "w", 8, bytes, 4) == 0 && mb_st_writer_put(w, "big", 0, bytes, 16) == 0,
       "a hole left in w, big complete");
    ok(mb_st_writer_close(w) == -1 && strstr(mb_err_what(), "tensor 's'"),
       "close names the first incomplete tensor: %s", mb_err_what());
    ok(!mb_fs_exists("p.safetensors") && !mb_fs_exists("p.safetensors.tmp"),
       "incomplete file removed");
    w = mb_st_writer_open("p.safetensors", spec2, 3, NULL);
    mb_st_writer_abort(w);
    ok(!mb_fs_exists("p.safetensors.tmp"), "abort removes the temporary");
    mb_st_writer_abort(NULL);
}

static int write_simple(const char *path, const char *name, int64_t n)
{
    struct mb_st_tensor t = { .name = name, .dtype = MB_ST_U8, .ndim = 1, .shape = { n } };
    unsigned char data[64] = { 0 };
    mb_st_writer *w = mb_st_writer_open(path, &t, 1, "{\"format\":\"pt\"}");

    return w && mb_st_writer_put(w, name, 0, data, (size_t)n) == 0 ? mb_st_writer_close(w) : -1;
}

static void directories(void)
{
    const char *names[] = { "a", "b", "c" };
    const char *shards[] = { "model-00001-of-00002.safetensors",
                             "model-00002-of-00002.safetensors",
                             "model-00001-of-00002.safetensors" };

    ok(mb_fs_mkdirs("one", "dir") == 0 && write_simple("one/model.safetensors", "x", 5) == 0,
       "single-file directory written");
    mb_st_dir *d = mb_st_dir_open("one");
    ok(d && mb_st_dir_count(d) == 1 && !mb_st_dir_is_sharded(d) && mb_st_dir_shards(d) == 1 &&
       strcmp(mb_st_dir_shard_of(d, "x"), "model.safetensors") == 0, "single file read");
    mb_st_dir_close(d);

    ok(mb_fs_mkdirs("two", "dir") == 0, "sharded directory");
    struct mb_st_tensor ac[2] = { { .name = "a", .dtype = MB_ST_U8, .ndim = 1, .shape = { 3 } },
                                  { .name = "c", .dtype = MB_ST_U8, .ndim = 1, .shape = { 2 } } };
    unsigned char z[4] = { 0 };
    mb_st_writer *w = mb_st_writer_open("two/model-00001-of-00002.safetensors", ac, 2, NULL);
    ok(w && mb_st_writer_put(w, "a", 0, z, 3) == 0 && mb_st_writer_put(w, "c", 0, z, 2) == 0 &&
       mb_st_writer_close(w) == 0 && write_simple("two/model-00002-of-00002.safetensors", "b", 4) == 0,
       "two shards written");
    ok(mb_st_index_write("two", names, shards, 3, 9) == 0, "index written");
    const char *want = "{\n  \"metadata\": {\n    \"total_parameters\": 9,\n"
                       "    \"total_size\": 9\n  },\n  \"weight_map\": {\n"
                       "    \"a\": \"model-00001-of-00002.safetensors\",\n"
                       "    \"b\": \"model-00002-of-00002.safetensors\",\n"
                       "    \"c\": \"model-00001-of-00002.safetensors\"\n  }\n}\n";
    char *text;
    size_t len;
    ok(mb_fs_read_all("two/model.safetensors.index.json", &text, &len) == 0 &&
       strcmp(text, want) == 0, "index text as json.dumps(indent=2, sort_keys=True)");
    free(text);
    d = mb_st_dir_open("two");
    ok(d && mb_st_dir_count(d) == 3 && mb_st_dir_is_sharded(d) && mb_st_dir_shards(d) == 2,
       "sharded directory read: 3 tensors, 2 shards");
    if (d) {
        is_str(mb_st_dir_at(d, 1)->name, "b", "name order across shards");
        is_str(mb_st_dir_shard_of(d, "b"), "model-00002-of-00002.safetensors", "b's shard");
        ok(mb_st_dir_find(d, "c") && !mb_st_dir_find(d, "d") && !mb_st_dir_shard_of(d, "d"),
           "find");
    }
    mb_st_dir_close(d);
    shards[0] = "model-00002-of-00002.safetensors";
    ok(mb_st_index_write("two", names, shards, 3, 9) == -1 && strstr(mb_err_what(), "tensor 'a'"),
       "index for a tensor not in its shard refused: %s", mb_err_what());
    const char *dup[] = { "a", "a" };
    ok(mb_st_index_write("two", dup, shards + 2, 1, 3) == 0 &&
       mb_st_index_write("two", dup, (const char *[]){ shards[2], shards[2] }, 2, 3) == -1,
       "duplicate name in the index refused");
    const char *bad_index = "{\"weight_map\": {\"a\": \"../x\"}}";
    write_file("two/model.safetensors.index.json", bad_index, strlen(bad_index));
    ok(!mb_st_dir_open("two") && strstr(mb_err_what(), "not a file name"),
       "index entry with a path refused");
    ok(!mb_st_dir_open("nowhere") && strstr(mb_err_where(), "nowhere"), "missing directory");
}

static void plans(void)
{
    /* huggingface_hub's docstring example: [6,6,2,6,2,2] at 10 -> [6] [6,2] [6,2,2] */
    const size_t s1[] = { 6, 6, 2, 6, 2, 2 };
    int got[16], n = mb_st_plan_shards(s1, 6, 10, got);
    ok(n == 3 && got[0] == 0 && got[1] == 1 && got[2] == 1 && got[3] == 2 && got[5] == 2,
       "greedy in order: 3 shards");
    /* an oversized tensor takes the next number at once; the open shard closes later */
    const size_t s2[] = { 1, 11, 1 };
    n = mb_st_plan_shards(s2, 3, 10, got);
    ok(n == 2 && got[0] == 1 && got[1] == 0 && got[2] == 1, "oversized tensor numbered first");
    const size_t s3[] = { 5, 5 };
    n = mb_st_plan_shards(s3, 2, 10, got);
    ok(n == 1 && got[0] == 0 && got[1] == 0, "exact fit stays in one shard");
    is_int(mb_st_plan_shards(s3, 0, 10, got), 0, "no tensor, no shard");

    char name[64];
    mb_st_shard_name(name, sizeof name, 1, 5);
    is_str(name, "model-00002-of-00005.safetensors", "shard 1 of 5");
    mb_st_shard_name(name, sizeof name, 0, 1);
    is_str(name, "model.safetensors", "single shard");
}

int main(void)
{
    tap_enter_scratch_dir();
    dtypes();
    lenient_reading();
    refused_headers();
    refused_lengths();
    garbage();
    writer_round_trip();
    writer_refusals();
    directories();
    plans();
    return tap_done();
}
