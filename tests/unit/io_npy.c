/* tests/unit/io_npy.c - .npy files: numpy's exact bytes, round trips, refused input.
 *
 * The expected headers were produced by numpy 2.4 (np.save of np.arange(3, dtype='<i4')
 * and np.zeros((2, 3), dtype='<i8')); t2001-gpt-dataset.sh also reads our files with
 * numpy itself.
 */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/fs.h"
#include "io/npy.h"
#include "tests/lib/tap.h"

static int file_is(const char *path, const void *want, size_t len)
{
    const void *data;
    size_t size;

    if (mb_fs_map(path, &data, &size) != 0)
        return 0;
    int same = size == len && memcmp(data, want, len) == 0;
    mb_fs_unmap(data, size);
    return same;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    fwrite(data, 1, len, f);
    fclose(f);
}

/* numpy's 128-byte header for DICT: dict text, spaces, '\n' */
static void numpy_header(char *out, const char *dict)
{
    memcpy(out, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(out + 10, ' ', 118);
    memcpy(out + 10, dict, strlen(dict));
    out[127] = '\n';
}

static void matches_numpy_bytes(void)
{
    const int32_t a[] = { 0, 1, 2 };
    const int64_t shape1[] = { 3 }, shape2[] = { 2, 3 }, b[6] = { 0 };
    char want[128 + 48];

    numpy_header(want, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }");
    memcpy(want + 128, a, sizeof a);
    ok(mb_npy_write("a.npy", MB_NPY_I4, 1, shape1, a) == 0, "write int32[3]");
    ok(file_is("a.npy", want, 128 + sizeof a), "int32[3] bytes equal numpy.save's");
    numpy_header(want, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }");
    memcpy(want + 128, b, sizeof b);
    ok(mb_npy_write("b.npy", MB_NPY_I8, 2, shape2, b) == 0, "write int64[2,3]");
    ok(file_is("b.npy", want, 128 + sizeof b), "int64[2,3] bytes equal numpy.save's");
}

static void round_trips(void)
{
    const uint32_t u[] = { 4000000000u, 7, 0 };
    const float f[] = { 0.5f, -1.25f };
    const int64_t su[] = { 3 }, sf[] = { 1, 2 }, s0[] = { 0 };
    struct mb_npy a;

    ok(mb_npy_write("u.npy", MB_NPY_U4, 1, su, u) == 0, "write uint32");
    ok(mb_npy_read("u.npy", &a) == 0 && a.dtype == MB_NPY_U4 && a.ndim == 1 && a.count == 3 &&
       memcmp(a.data, u, sizeof u) == 0, "uint32 read back");
    mb_npy_free(&a);
    ok(mb_npy_write("f.npy", MB_NPY_F4, 2, sf, f) == 0, "write float32[1,2]");
    ok(mb_npy_read("f.npy", &a) == 0 && a.ndim == 2 && a.shape[0] == 1 && a.shape[1] == 2 &&
       memcmp(a.data, f, sizeof f) == 0, "float32[1,2] read back");
    mb_npy_free(&a);
    ok(mb_npy_write("e.npy", MB_NPY_I2, 1, s0, NULL) == 0, "write empty int16");
    ok(mb_npy_read("e.npy", &a) == 0 && a.count == 0 && a.dtype == MB_NPY_I2,
       "empty int16 read back");
    mb_npy_free(&a);
    ok(!mb_fs_exists("u.npy.tmp") && mb_fs_exists("u.npy"), "no temporary left");
}

static void refuses(const char *what, const char *dict, size_t data_len, const char *msg)
{
    char buf[128 + 64] = { 0 };
    struct mb_npy a;

    numpy_header(buf, dict);
    write_file("bad.npy", buf, 128 + data_len);
    ok(mb_npy_read("bad.npy", &a) == -1, "refused: %s", what);
    is_str(mb_err_where(), "bad.npy", "error names the file (%s)", what);
    ok(strstr(mb_err_what(), msg) != NULL, "message says '%s' (got '%s')", msg, mb_err_what());
}

static void refuses_bad_input(void)
{
    struct mb_npy a;

    refuses("short data", "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", 8,
            "shape and dtype say");
    refuses("long data", "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", 16,
            "shape and dtype say");
    refuses("big-endian", "{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }", 4,
            "not supported");
    refuses("Fortran order", "{'descr': '<i4', 'fortran_order': True, 'shape': (1, 1), }", 4,
            "Fortran");
    refuses("missing shape", "{'descr': '<i4', 'fortran_order': False, }", 0, "lacks");
    refuses("broken shape", "{'descr': '<i4', 'fortran_order': False, 'shape': (3x), }", 12,
            "bad value");
    write_file("bad.npy", "\x93NUMPX\x01\x00", 8);
    ok(mb_npy_read("bad.npy", &a) == -1 && strstr(mb_err_what(), "magic"), "bad magic refused");
    ok(mb_npy_read("missing.npy", &a) == -1 && strcmp(mb_err_where(), "missing.npy") == 0,
       "missing file named");
}

int main(void)
{
    tap_enter_scratch_dir();
    matches_numpy_bytes();
    round_trips();
    refuses_bad_input();
    return tap_done();
}
