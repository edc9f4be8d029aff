/* tests/fuzz/fuzz_jsonl.c - mb-preprocess's input path (io/lines.c, io/jsonl.c) on any
 * bytes: the input is a .jsonl file (plain, or gzip when it starts with gzip's magic),
 * read line by line (with a small line limit, so that path is taken too) and each line
 * parsed as a record whose "text" field is collected. Every text handed out must be
 * valid UTF-8 and lie inside the record.
 */
#include <string.h>

#include "core/utf8.h"
#include "io/jsonl.h"
#include "io/lines.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = { "text", "title" };
    struct mb_jsonl_record rec = MB_JSONL_RECORD_INIT;
    mb_lines *r = mb_lines_open(fuzz_file("in.jsonl", data, size));

    if (!r)
        return 0;
    mb_lines_set_max_line(r, 4096, NULL);
    const char *line;
    size_t len;
    int64_t lineno, offset, expect_offset = 0;
    while (mb_lines_next(r, &line, &len, &lineno, &offset) == 1) {
        fuzz_check(offset == expect_offset, "line offsets are not contiguous");
        expect_offset = offset + (int64_t)len + 1;
        size_t nkeys = 1 + (size_t)(lineno & 1);
        if (mb_jsonl_parse(&rec, line, len, keys, nkeys, "in.jsonl") != 0)
            continue;
        fuzz_check(rec.key_first[nkeys] == rec.ntexts, "key_first does not end at ntexts");
        for (size_t i = 0; i < rec.ntexts; i++)
            fuzz_check(mb_utf8_is_valid(rec.texts[i].s, rec.texts[i].len), "text not UTF-8");
    }
    mb_jsonl_record_release(&rec);
    mb_lines_close(r);
    return 0;
}
