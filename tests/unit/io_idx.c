/* tests/unit/io_idx.c - indexed token files: round trip, Megatron semantics, and corrupt
 * input that must be refused with the file named. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fs.h"
#include "io/idx_reader.h"
#include "io/idx_writer.h"
#include "tests/lib/tap.h"

static void write_sample(const char *prefix, enum mb_dtype dtype)
{
    const int32_t a[] = { 5, 6, 7, 8, 9 }, b[] = { 70000 };
    const int32_t a_lens[] = { 3, 2 }, b_lens[] = { 1 };
    mb_idx_writer *w = mb_idx_writer_open(prefix, dtype);

    ok(w && mb_idx_writer_add_doc(w, a, 5, a_lens, 2) == 0, "two-sentence document added");
    ok(mb_idx_writer_add_doc(w, NULL, 0, NULL, 0) == 0, "empty document added");
    if (dtype == MB_DTYPE_I32)
        ok(mb_idx_writer_add_doc(w, b, 1, b_lens, 1) == 0, "id above 65535 fits int32");
    ok(mb_idx_writer_close(w) == 0, "writer commits");
}

static void round_trip(void)
{
    write_sample("rt", MB_DTYPE_I32);
    mb_idx_reader *r = mb_idx_reader_open("rt");
    int32_t toks[5];

    if (!ok(r != NULL, "reader opens"))
        return;
    is_int(mb_idx_reader_dtype(r), MB_DTYPE_I32, "dtype code 4 (int32)");
    is_int(mb_idx_reader_nseq(r), 3, "three sequences");
    is_int(mb_idx_reader_ndocs(r), 3, "three documents, one empty");
    is_int(mb_idx_reader_doc_index(r, 2), 2, "empty document repeats its index entry");
    is_int(mb_idx_reader_seq_ptr(r, 1), 12, "second sequence at byte 12");
    mb_idx_reader_tokens(r, 0, 1, 4, toks);
    ok(toks[0] == 6 && toks[3] == 9, "tokens read across sentence boundary");
    mb_idx_reader_tokens(r, 2, 0, 1, toks);
    is_int(toks[0], 70000, "large id read back");
    mb_idx_reader_close(r);
}

static void u16_overflow_is_an_error(void)
{
    const int32_t big[] = { 70000 }, one[] = { 1 };
    mb_idx_writer *w = mb_idx_writer_open("ov", MB_DTYPE_U16);

    ok(mb_idx_writer_add_doc(w, big, 1, one, 1) != 0, "70000 does not fit uint16");
    mb_idx_writer_discard(w);
    ok(!mb_fs_exists("ov.bin") && !mb_fs_exists("ov.idx") && !mb_fs_exists("ov.bin.tmp"),
       "discard leaves nothing behind");
}

static void append_shifts_documents(void)
{
    write_sample("p0", MB_DTYPE_U16);
    write_sample("p1", MB_DTYPE_U16);
    mb_idx_writer *w = mb_idx_writer_open("joined", MB_DTYPE_U16);
    mb_idx_reader *r0 = mb_idx_reader_open("p0"), *r1 = mb_idx_reader_open("p1");

    ok(mb_idx_writer_append(w, r0) == 0 && mb_idx_writer_append(w, r1) == 0, "append two parts");
    ok(mb_idx_writer_close(w) == 0, "joined file commits");
    mb_idx_reader *j = mb_idx_reader_open("joined");
    ok(j && mb_idx_reader_ndocs(j) == 4 && mb_idx_reader_doc_index(j, 3) == 4 &&
       mb_idx_reader_doc_index(j, 4) == 4, "document indices of the second part are shifted");
    mb_idx_reader_close(j);
    mb_idx_reader_close(r0);
    mb_idx_reader_close(r1);
}

static void corrupt_index_names_the_file(void)
{
    FILE *f;

    ok(truncate("rt.idx", 40) == 0, "truncate rt.idx");
    ok(mb_idx_reader_open("rt") == NULL, "truncated index refused");
    is_str(mb_err_where(), "rt.idx", "error names the index file");
    f = fopen("junk.idx", "wb");
    fputs("this is not a Megatron index file at all, really not", f);
    fclose(f);
    f = fopen("junk.bin", "wb");
    fclose(f);
    ok(mb_idx_reader_open("junk") == NULL && strstr(mb_err_what(), "magic"), "bad magic refused");
    write_sample("short", MB_DTYPE_U16);
    ok(truncate("short.bin", 4) == 0 && mb_idx_reader_open("short") == NULL, "short .bin refused");
    is_str(mb_err_where(), "short.bin", "error names the .bin file");
}

int main(void)
{
    tap_enter_scratch_dir();
    round_trip();
    u16_overflow_is_an_error();
    append_shifts_documents();
    corrupt_index_names_the_file();
    return tap_done();
}
