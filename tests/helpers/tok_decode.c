/* tests/helpers/tok_decode.c - decode lines of token ids through mb's tokenizer, for the
 * HF tokenizers oracle (tests/oracle/hf_generate.py decode-check).
 *
 *   tok_decode TOKENIZER <ids.txt      one line of space-separated ids per case
 *
 * Prints one line per input line: the decoded bytes in hex (so any text, newlines and
 * U+FFFD included, compares exactly). Exit 1 with the error when decoding fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/str.h"
#include "tok/tokenizer.h"

static int fail(void)
{
    fprintf(stderr, "tok_decode: error: %s: %s\n", mb_err_where(), mb_err_what());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tok_decode TOKENIZER <ids.txt\n");
        return 2;
    }
    mb_tokenizer *t = mb_tokenizer_load(argv[1]);
    if (!t)
        return fail();
    char *line = NULL;
    size_t cap = 0;
    struct mb_ids ids = MB_IDS_INIT;
    struct mb_buf out = MB_BUF_INIT;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, stdin) >= 0) {
        ids.len = 0;
        char *p = line, *end;
        for (long v = strtol(p, &end, 10); end != p; v = strtol(p, &end, 10)) {
            mb_ids_push(&ids, (int32_t)v);
            p = end;
        }
        mb_buf_reset(&out);
        rc = mb_tok_decode(t, ids.v, ids.len, &out);
        if (rc < 0)
            break;
        for (size_t i = 0; i < out.len; i++)
            printf("%02x", (unsigned char)out.data[i]);
        printf("\n");
    }
    free(line);
    mb_ids_release(&ids);
    mb_buf_release(&out);
    mb_tokenizer_free(t);
    return rc == 0 ? 0 : fail();
}
