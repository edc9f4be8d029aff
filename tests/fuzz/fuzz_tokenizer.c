/* tests/fuzz/fuzz_tokenizer.c - tokenizer.json loading (tok/) on any bytes.
 *
 * The input is a tokenizer.json. A tokenizer that loads must encode a few fixed texts
 * (ASCII, digits, whitespace runs, multi-byte UTF-8, its own special-looking strings)
 * to ids in the range the loader accepts, and decode them back without error when its decoder
 * is supported.
 */
#include <string.h>

#include "core/str.h"
#include "tok/tokenizer.h"
#include "tests/fuzz/fuzz_common.h"

static const char *const texts[] = {
    "Hello, world! It's 2024: 12345 tokens.",
    "  leading spaces\n\n\ttabs and\r\nnewlines   ",
    "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 na\xc3\xafve",
    "<|endoftext|></s><s><unk> [CLS] <pad>",
    "",
};

static void round_trip(const mb_tokenizer *t, mb_tok_encoder *e, const char *text)
{
    struct mb_ids ids = MB_IDS_INIT;
    struct mb_buf out = MB_BUF_INIT;

    for (int special = 0; special < 2; special++) {
        ids.len = 0;
        mb_tok_encode(e, text, strlen(text), special, &ids);
        /* a template's special ids need not be in the vocabulary (as in HF), but every
         * id is one the loader accepted */
        for (size_t i = 0; i < ids.len; i++)
            fuzz_check(ids.v[i] >= 0 && ids.v[i] < (1 << 24), "an id out of range");
        mb_buf_reset(&out);
        if (mb_tokenizer_can_decode(t) == 0)
            fuzz_check(mb_tok_decode(t, ids.v, ids.len, &out) == 0,
                       "decode failed though can_decode said yes");
    }
    mb_ids_release(&ids);
    mb_buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mb_tokenizer *t = mb_tokenizer_load(fuzz_file("tokenizer.json", data, size));

    if (!t)
        return 0;
    (void)mb_tokenizer_eod(t);
    (void)mb_tokenizer_describe(t);
    mb_tok_encoder *e = mb_tok_encoder_new(t);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        round_trip(t, e, texts[i]);
    mb_tok_encoder_free(e);
    mb_tokenizer_free(t);
    return 0;
}
