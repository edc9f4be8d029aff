/* tests/unit/train_tb.c - CRC-32C, protobuf and TFRecord encodings, and the event file.
 *
 * CRC vectors are RFC 3720 appendix B.4's; the masked ones and the event bytes were
 * checked against TensorBoard's Python crc32c and protobuf's own serialization of the
 * same Event (tests/oracle/tb_read.py does that for every record in t5001).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/crc32c.h"
#include "core/err.h"
#include "core/str.h"
#include "tests/lib/tap.h"
#include "train/tb.h"

/* ok() if BUF holds exactly the bytes HEX spells (two hex digits per byte). */
static int is_bytes(const void *buf, size_t len, const char *hex, const char *title)
{
    char got[1024] = "";
    const unsigned char *p = buf;

    for (size_t i = 0; i < len && 2 * i + 2 < sizeof got; i++)
        sprintf(got + 2 * i, "%02x", p[i]);
    return is_str(got, hex, "%s", title);
}

static void crc32c_vectors(void)
{
    unsigned char buf[32];

    is_int(mb_crc32c(0, "123456789", 9), 0xE3069283, "crc32c(\"123456789\")");
    is_int(mb_crc32c(0, NULL, 0), 0, "crc32c of nothing is 0");
    memset(buf, 0, sizeof buf);
    is_int(mb_crc32c(0, buf, 32), 0x8A9136AA, "crc32c of 32 zero bytes");
    memset(buf, 0xFF, sizeof buf);
    is_int(mb_crc32c(0, buf, 32), 0x62A8AB43, "crc32c of 32 0xFF bytes");
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    is_int(mb_crc32c(0, buf, 32), 0x46DD794E, "crc32c of bytes 0..31");
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    is_int(mb_crc32c(0, buf, 32), 0x113FDB5C, "crc32c of bytes 31..0");
    is_int(mb_crc32c(mb_crc32c(0, "12345", 5), "6789", 4), 0xE3069283,
           "crc32c extends over pieces");
}

static void crc32c_mask(void)
{
    const unsigned char zero_len[8] = { 0 }, five_len[8] = { 5 };

    is_int(mb_crc32c_mask(0), 0xa282ead8, "mask of 0 is the mask constant");
    /* 0x12345678 rotated right by 15 is 0xacf02468; plus 0xa282ead8 mod 2^32 */
    is_int(mb_crc32c_mask(0x12345678), 0x4f730f40, "mask rotates right 15 and adds");
    is_int(mb_crc32c_mask(mb_crc32c(0, zero_len, 8)), 0x07980329, "masked crc of length 0");
    is_int(mb_crc32c_mask(mb_crc32c(0, five_len, 8)), 0x3e04b2ea, "masked crc of length 5");
    is_int(mb_crc32c_mask(mb_crc32c(0, "hello", 5)), 0x191c1fbb, "masked crc of \"hello\"");
}

static void varints(void)
{
    static const struct {
        uint64_t v;
        const char *hex;
    } cases[] = {
        { 0, "00" },          { 1, "01" },     { 127, "7f" },   { 128, "8001" },
        { 150, "9601" },      { 300, "ac02" }, { 16384, "808001" },
        { UINT64_MAX, "ffffffffffffffffff01" },
    };
    uint8_t out[10];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = mb_tb_varint(out, cases[i].v);
        is_bytes(out, n, cases[i].hex, "varint");
    }
}

static void events(void)
{
    struct mb_buf b = MB_BUF_INIT;

    mb_tb_event_version(&b, 1.5);
    is_bytes(b.data, b.len, "09000000000000f83f1a0d627261696e2e4576656e743a32",
             "file_version event");
    mb_buf_reset(&b);
    mb_tb_event_scalar(&b, 1.5, 150, "loss", 2.0f);
    is_bytes(b.data, b.len, "09000000000000f83f1096012a0d0a0b0a046c6f73731500000040",
             "scalar event: step 150, value 2");
    mb_buf_reset(&b);
    mb_tb_event_scalar(&b, 1.5, 0, "z", -0.0f);
    is_bytes(b.data, b.len, "09000000000000f83f2a0a0a080a017a1500000080",
             "scalar event: step 0 omitted, -0.0 kept");
    mb_buf_reset(&b);
    mb_tb_event_scalar(&b, 1.5, 0, "z", 0.0f);
    is_bytes(b.data, b.len, "09000000000000f83f2a0a0a080a017a1500000000",
             "scalar event: 0.0 written (simple_value is in a oneof)");
    mb_buf_release(&b);
}

static void frames(void)
{
    struct mb_buf b = MB_BUF_INIT;

    mb_tb_frame(&b, "hello", 5);
    is_bytes(b.data, b.len, "0500000000000000eab2043e68656c6c6fbb1f1c19",
             "TFRecord of \"hello\": length, masked crcs little-endian");
    mb_buf_reset(&b);
    mb_tb_frame(&b, NULL, 0);
    is_bytes(b.data, b.len, "000000000000000029039807d8ea82a2", "TFRecord of nothing");
    mb_buf_release(&b);
}

static long file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void writer(void)
{
    mb_tb *a = NULL, *b = NULL;

    if (!ok(mb_tb_open(&a, "logs/deep/run") == 0, "open creates missing parents"))
        return;
    const char *prefix = "logs/deep/run/events.out.tfevents.";
    ok(strncmp(mb_tb_path(a), prefix, strlen(prefix)) == 0,
       "file is DIR/events.out.tfevents.*");
    is_int(file_size(mb_tb_path(a)), 40, "file_version record is on disk at once");
    ok(mb_tb_scalar(a, "loss", 1, 2.0) == 0, "scalar written");
    is_int(file_size(mb_tb_path(a)), 40 + 16 + 26, "scalar record is on disk at once");
    ok(mb_tb_scalar(a, "loss", -1, 2.0) != 0, "negative step refused");
    is_str(mb_err_where(), mb_tb_path(a), "error names the event file");
    ok(mb_tb_scalar(a, "", 1, 2.0) != 0, "empty tag refused");
    ok(mb_tb_text(a, "config", 0, "a: 1\n", 5) == 0, "text written");
    if (ok(mb_tb_open(&b, "logs/deep/run") == 0, "second open in the same directory"))
        ok(strcmp(mb_tb_path(a), mb_tb_path(b)) != 0, "second file has its own name");
    mb_tb_close(a);
    mb_tb_close(b);
    mb_tb_close(NULL);
}

/* A write cut short (here by RLIMIT_FSIZE: EFBIG after a partial write) fails naming the
 * file and leaves only whole records, so the next record still follows a valid prefix. */
static void failed_write_is_cut_back(void)
{
    mb_tb *tb;
    struct rlimit old, lim;

    if (!ok(mb_tb_open(&tb, "cut") == 0, "open for the failed-write check"))
        return;
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 40 + 30; /* room for 30 of the scalar record's 42 bytes */
    setrlimit(RLIMIT_FSIZE, &lim);
    ok(mb_tb_scalar(tb, "loss", 1, 2.0) != 0, "write past the file size limit fails");
    is_str(mb_err_where(), mb_tb_path(tb), "error names the event file");
    is_int(file_size(mb_tb_path(tb)), 40, "partial record is cut off");
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    ok(mb_tb_scalar(tb, "loss", 1, 2.0) == 0, "next write succeeds");
    is_int(file_size(mb_tb_path(tb)), 40 + 42, "and lands right after the last whole record");
    mb_tb_close(tb);
}

static void open_errors(void)
{
    mb_tb *tb = (mb_tb *)1;
    FILE *f = fopen("plain", "w");

    fclose(f);
    ok(mb_tb_open(&tb, "plain/run") != 0, "directory under a regular file refused");
    ok(tb == NULL, "*out is NULL on failure");
    is_str(mb_err_where(), "plain/run", "error names the directory");
    ok(mb_tb_open(&tb, "plain") != 0, "a regular file is not a directory");
    is_str(mb_err_where(), "plain", "error names it");
}

int main(void)
{
    tap_enter_scratch_dir();
    crc32c_vectors();
    crc32c_mask();
    varints();
    events();
    frames();
    writer();
    failed_write_is_cut_back();
    open_errors();
    return tap_done();
}
