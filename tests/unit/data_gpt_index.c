/* tests/unit/data_gpt_index.c - split parsing and ranges, Python float repr and JSON
 * strings for the cache description, blending indices, and the epoch plan.
 *
 * Expected values come from Python / megatron-core 0.16.1 in the oracle venv
 * (convert_split_vector_to_split_matrix(parse_and_normalize_split("1,1,1")),
 * repr(), json.dumps(), helpers_cpp.build_blending_indices with weights 0.2/0.5/0.3);
 * t2001 and t2002 compare whole index arrays and cache files with Megatron's.
 */
#include <string.h>

#include "core/err.h"
#include "core/str.h"
#include "data/gpt_desc.h"
#include "data/gpt_index.h"
#include "tests/lib/tap.h"

static void splits(void)
{
    struct mb_split s;
    int64_t b, e;

    ok(mb_split_parse(&s, "969, 30, 1", "t") == 0, "parse '969, 30, 1'");
    mb_split_range(&s, MB_SPLIT_VALID, 1000, &b, &e);
    ok(b == 969 && e == 999, "valid split of 1000 sequences is [969, 999)");
    ok(mb_split_parse(&s, "1,1", "t") == 0 && !s.present[MB_SPLIT_TEST], "missing test is None");
    mb_split_range(&s, MB_SPLIT_TRAIN, 5, &b, &e);
    is_int(e, 2, "round(2.5) is 2 (half to even)");
    mb_split_range(&s, MB_SPLIT_TRAIN, 7, &b, &e);
    is_int(e, 4, "round(3.5) is 4 (half to even)");
    ok(mb_split_parse(&s, "1,1,1", "t") == 0 && s.hi[0] == 0.3333333333333333 &&
       s.lo[2] == 0.6666666666666666 && s.hi[2] == 1.0, "book-ends of 1,1,1 as Python's");
    ok(mb_split_parse(&s, "0,0,0", "data.split") == -1 &&
       strcmp(mb_err_where(), "data.split") == 0, "all-zero split refused, setting named");
    ok(mb_split_parse(&s, "1,2,3,4", "t") == -1, "four numbers refused");
    ok(mb_split_parse(&s, "1.2.3", "t") == -1, "malformed number refused");
}

static void check_repr(double x, const char *want)
{
    struct mb_buf b = MB_BUF_INIT;

    mb_py_float_repr(&b, x);
    is_str(b.data, want, "repr(%.17g)", x);
    mb_buf_release(&b);
}

static void python_text(void)
{
    struct mb_buf b = MB_BUF_INIT;

    check_repr(0.969, "0.969");
    check_repr(0.1 + 0.2, "0.30000000000000004");
    check_repr(1.0, "1.0");
    check_repr(1e-05, "1e-05");
    check_repr(0.0001, "0.0001");
    check_repr(1e16, "1e+16");
    check_repr(1234567890123456.0, "1234567890123456.0");
    check_repr(123456789012345680.0, "1.2345678901234568e+17");
    mb_py_json_str(&b, "a\"b\\c\n\x01 \xc3\xa9 \xf0\x9f\x98\x80");
    is_str(b.data, "\"a\\\"b\\\\c\\n\\u0001 \\u00e9 \\ud83d\\ude00\"",
           "json.dumps escapes like Python (ensure_ascii)");
    mb_buf_release(&b);
}

static void blending(void)
{
    const double w[] = { 0.2, 0.5, 0.3 };
    const int16_t want_d[] = { 1, 2, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1 };
    const int64_t want_s[] = { 0, 0, 0, 1, 1, 2, 1, 3, 2, 4, 2, 5 };
    int16_t d[12];
    int64_t s[12];

    mb_blend_indices(w, 3, 12, d, s);
    ok(memcmp(d, want_d, sizeof d) == 0, "dataset index as build_blending_indices");
    ok(memcmp(s, want_s, sizeof s) == 0, "dataset sample index as build_blending_indices");
    is_int(mb_blend_request(1000, 0.3, 0.005), 302, "ceil(ceil(300) * 1.005)");
}

static void plans(void)
{
    const int32_t sizes[] = { 10, 20, 30, 40 };
    struct mb_gpt_plan p;

    ok(mb_gpt_plan(&p, sizes, 4, 0, 4, 8, -1, "t") == 0 && p.num_epochs == 1 &&
       p.num_samples == 12, "one epoch: (100 - 1) // 8 samples");
    ok(mb_gpt_plan(&p, sizes, 4, 0, 4, 8, 30, "t") == 0 && p.num_epochs == 3 &&
       p.sans_final == 24 && p.separate_final, "30 samples: 3 epochs, short final epoch apart");
    ok(mb_gpt_plan(&p, sizes, 4, 0, 4, 8, 36, "t") == 0 && !p.separate_final,
       "36 samples: final epoch long enough to shuffle with the others");
    ok(mb_gpt_plan(&p, sizes, 4, 2, 2, 8, 1, "corpus") == -1 &&
       strcmp(mb_err_where(), "corpus") == 0, "empty range refused, data named");
    ok(mb_gpt_plan(&p, sizes, 4, 0, 4, 1, 1, "t") == -1, "sequence length 1 refused");
}

int main(void)
{
    splits();
    python_text();
    blending();
    plans();
    return tap_done();
}
