/* tests/unit/ckpt_writer.c - fp16 conversions, and a checkpoint written tensor by tensor
 * (fp32, bf16, fp16, int64, uint8; rows in pieces) read back raw and widened; the
 * temporary is gone after commit and after abort, and bad calls are refused.
 *
 *   ckpt_writer.t [FILE.h5]   with FILE, also keep the checkpoint there (t7101 reads it
 *                             with h5py: values() below is mirrored in that test)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/fs.h"
#include "tests/lib/tap.h"

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void f16_rounding(void)
{
    /* expected patterns worked out from the IEEE binary16 layout */
    static const struct { uint32_t in; uint16_t out; const char *what; } cases[] = {
        { 0x3f800000u, 0x3c00, "1.0 is exact" },
        { 0x3f801000u, 0x3c00, "tie 1+2^-11 goes to even 1.0" },
        { 0x3f803000u, 0x3c02, "tie 1+3*2^-11 goes to even 1+2^-9" },
        { 0x3f801001u, 0x3c01, "just above a tie rounds up" },
        { 0x477fe000u, 0x7bff, "65504 is the largest half" },
        { 0x477fefffu, 0x7bff, "just below 65520 rounds down" },
        { 0x477ff000u, 0x7c00, "65520 rounds to inf" },
        { 0x7f800000u, 0x7c00, "inf stays inf" },
        { 0xff800000u, 0xfc00, "-inf stays -inf" },
        { 0x80000000u, 0x8000, "-0 keeps its sign" },
        { 0x38800000u, 0x0400, "2^-14 is the smallest normal" },
        { 0x387fc000u, 0x03ff, "largest subnormal" },
        { 0x387fe000u, 0x0400, "tie below 2^-14 rounds up to the normal" },
        { 0x33800000u, 0x0001, "2^-24 is the smallest subnormal" },
        { 0x33000000u, 0x0000, "2^-25 ties to even zero" },
        { 0x33000001u, 0x0001, "just above 2^-25 rounds up" },
        { 0x33c00000u, 0x0002, "1.5 * 2^-24 ties to even 2" },
        { 0x00000001u, 0x0000, "fp32 subnormal goes to 0" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        is_int(mb_ckpt_f16_from_f32(from_bits(cases[i].in)), cases[i].out, "%s", cases[i].what);
    uint16_t nan = mb_ckpt_f16_from_f32(from_bits(0x7f800001u));
    ok((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff), "NaN stays NaN");
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float x = mb_ckpt_f32_from_f16((uint16_t)h);
        if (isnan(x) ? (h & 0x7c00) != 0x7c00 : mb_ckpt_f16_from_f32(x) != h)
            bad++;
    }
    is_int(bad, 0, "every half widens exactly and narrows back to itself");
    is_int(mb_ckpt_dtype_size(MB_CKPT_F16), 2, "fp16 is 2 bytes");
    is_str(mb_ckpt_dtype_name(MB_CKPT_F16), "fp16", "fp16 has its name");
}

/* The value of element I of dataset K (mirrored in t7101-convert-writer.sh). */
static float value(int k, int64_t i)
{
    return (float)((k * 7919 + i * 104729) % 2001 - 1000) / 64.0f + 0.001f * (float)k;
}

enum { NSETS = 3 };
static const char *const paths[NSETS] = { "/model/a/f32", "/model/b/bf16", "/model/c/f16" };
static const enum mb_ckpt_dtype types[NSETS] = { MB_CKPT_F32, MB_CKPT_BF16, MB_CKPT_F16 };
static const int64_t shape[3] = { 5, 3, 4 }, rowlen = 12, numel = 60;

/* Element I of dataset K in its stored type, as raw bytes at OUT. */
static void stored(int k, int64_t i, void *out)
{
    float x = value(k, i);
    uint16_t h = types[k] == MB_CKPT_BF16 ? mb_ckpt_bf16_from_f32(x) : mb_ckpt_f16_from_f32(x);
    if (types[k] == MB_CKPT_F32)
        memcpy(out, &x, 4);
    else
        memcpy(out, &h, 2);
}

static int write_file(const char *file, const char *latest_dir)
{
    mb_ckpt_writer *w = mb_ckpt_writer_open(NULL, file);
    if (!w)
        return -1;
    unsigned char buf[60 * 4];
    for (int k = 0; k < NSETS; k++) {
        size_t es = mb_ckpt_dtype_size(types[k]);
        for (int64_t i = 0; i < numel; i++)
            stored(k, i, buf + i * es);
        if (mb_ckpt_writer_create(w, paths[k], types[k], 3, shape) != 0 ||
            /* rows 3..4 first, then 0..2: any order, any pieces */
            mb_ckpt_writer_write_rows(w, paths[k], 3, 2, buf + 3 * rowlen * es) != 0 ||
            mb_ckpt_writer_write_rows(w, paths[k], 0, 3, buf) != 0)
            goto fail;
    }
    int64_t it = 42, n7[1] = { 7 }, zero[1] = { 0 };
    if (mb_ckpt_writer_create(w, "/train/iteration", MB_CKPT_I64, 0, NULL) != 0 ||
        mb_ckpt_writer_write_rows(w, "/train/iteration", 0, 1, &it) != 0 ||
        mb_ckpt_writer_create(w, "/hf/files/blob.txt", MB_CKPT_U8, 1, n7) != 0 ||
        mb_ckpt_writer_write_rows(w, "/hf/files/blob.txt", 0, 7, "hello\n!") != 0 ||
        mb_ckpt_writer_create(w, "/hf/files/empty", MB_CKPT_U8, 1, zero) != 0 ||
        mb_ckpt_writer_attr(w, "model_config", "{\"x\": 1}") != 0)
        goto fail;
    return mb_ckpt_writer_commit(w, latest_dir);
fail:
    mb_ckpt_writer_abort(w);
    return -1;
}

static void check_file(const char *file)
{
    mb_ckpt_reader *r = mb_ckpt_reader_open(NULL, file);
    ok(r != NULL, "the written file opens as a checkpoint");
    if (!r)
        return;
    for (int k = 0; k < NSETS; k++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_find(r, paths[k]);
        ok(it && it->dtype == types[k] && it->ndim == 3 && it->shape[2] == 4,
           "%s: type and shape", paths[k]);
        size_t es = mb_ckpt_dtype_size(types[k]);
        unsigned char raw[60 * 4], want[60 * 4];
        for (int64_t i = 0; i < numel; i++)
            stored(k, i, want + i * es);
        ok(mb_ckpt_reader_read_rows(r, paths[k], 1, 3, raw) == 0 &&
           memcmp(raw, want + rowlen * es, (size_t)(3 * rowlen) * es) == 0,
           "%s: rows 1..3 read back bit-exact", paths[k]);
        float got[60];
        int same = mb_ckpt_reader_read_f32(r, paths[k], got, numel) == 0;
        for (int64_t i = 0; same && i < numel; i++) {
            float x = types[k] == MB_CKPT_F32 ? value(k, i)
                      : types[k] == MB_CKPT_BF16
                          ? mb_ckpt_f32_from_bf16(mb_ckpt_bf16_from_f32(value(k, i)))
                          : mb_ckpt_f32_from_f16(mb_ckpt_f16_from_f32(value(k, i)));
            same = got[i] == x;
        }
        ok(same, "%s: read_f32 widens exactly", paths[k]);
    }
    int64_t iter = 0;
    void *blob = NULL;
    size_t len = 0;
    char *cfg = NULL, *format = NULL;
    ok(mb_ckpt_reader_read_i64(r, "/train/iteration", &iter) == 0 && iter == 42, "int64 scalar");
    ok(mb_ckpt_reader_read_blob(r, "/hf/files/blob.txt", &blob, &len) == 0 && len == 7 &&
       memcmp(blob, "hello\n!", 7) == 0, "uint8 blob");
    free(blob);
    ok(mb_ckpt_reader_read_blob(r, "/hf/files/empty", &blob, &len) == 0 && len == 0,
       "empty blob");
    ok(mb_ckpt_reader_attr(r, "model_config", &cfg) == 0 && strcmp(cfg, "{\"x\": 1}") == 0,
       "attribute");
    ok(mb_ckpt_reader_attr(r, "format", &format) == 0 && strcmp(format, MB_CKPT_FORMAT) == 0,
       "format attribute set by the writer");
    ok(mb_ckpt_reader_read_rows(r, paths[0], 4, 2, blob) != 0 &&
       strstr(mb_err_what(), "outside"), "rows beyond the end are refused");
    free(cfg);
    free(format);
    mb_ckpt_reader_close(r);
}

static void refusals(void)
{
    mb_ckpt_writer *w = mb_ckpt_writer_open(NULL, "bad.h5");
    int64_t s[1] = { 4 };
    ok(w != NULL, "open a second file");
    ok(mb_ckpt_writer_create(w, "/model/x", MB_CKPT_OTHER, 1, s) != 0, "OTHER type refused");
    ok(mb_ckpt_writer_create(w, "/model/x", MB_CKPT_F32, 1, s) == 0, "create");
    ok(mb_ckpt_writer_create(w, "/model/x", MB_CKPT_F32, 1, s) != 0, "repeated path refused");
    ok(mb_ckpt_writer_write_rows(w, "/model/x", 3, 2, s) != 0, "rows past the end refused");
    ok(mb_ckpt_writer_write_rows(w, "/model/y", 0, 1, s) != 0, "unknown dataset refused");
    ok(access("bad.h5.tmp", F_OK) == 0, "the temporary exists while writing");
    mb_ckpt_writer_abort(w);
    ok(access("bad.h5.tmp", F_OK) != 0 && access("bad.h5", F_OK) != 0,
       "abort leaves nothing behind");
    ok(mb_ckpt_writer_open(NULL, "no/such/dir/x.h5") == NULL, "an unwritable path is refused");
}

int main(int argc, char **argv)
{
    f16_rounding();
    if (argc > 1) {
        ok(write_file(argv[1], NULL) == 0, "write %s", argv[1]);
        return tap_done();
    }
    tap_enter_scratch_dir();
    ok(write_file("w.h5", ".") == 0, "write a checkpoint tensor by tensor");
    ok(access("w.h5.tmp", F_OK) != 0, "no temporary left after commit");
    char *latest = NULL;
    size_t n = 0;
    ok(mb_fs_read_all("latest", &latest, &n) == 0 && strcmp(latest, "w.h5\n") == 0,
       "latest names the file");
    free(latest);
    check_file("w.h5");
    refusals();
    return tap_done();
}
