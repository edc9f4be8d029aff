/* tests/unit/core_json.c - integers beyond int64, as transformers writes them. */
#include <string.h>

#include "core/json.h"
#include "tests/lib/tap.h"

static void big_integers_parse(void)
{
    /* tokenizer_config.json from save_pretrained: model_max_length = int(1e30) */
    const char *text = "{\"model_max_length\": 1000000000000000019884624838656, "
                       "\"eos_id\": 2, \"ids\": [0, 7, -3], \"scale\": 0.5}";
    mb_json *root = mb_json_parse(text, strlen(text), "tokenizer_config.json");
    ok(root != NULL, "a document with an integer beyond int64 parses");
    is_int(mb_json_int(mb_json_get(root, "eos_id")), 2, "small integers still read as integers");
    is_int(mb_json_int(mb_json_at(mb_json_get(root, "ids"), 2)), -3, "negative ones too");
    is_int(mb_json_int(mb_json_get(root, "model_max_length")), 0,
           "the huge one does not fit int64: 0, as for a non-integer");
    ok(mb_json_number(mb_json_get(root, "model_max_length")) > 9.9e29, "but reads as a number");
    is_int(mb_json_int(mb_json_get(root, "scale")), 0, "0.5 is not an integer");
    mb_json_free(root);
}

static void ordinary_documents_keep_integers(void)
{
    const char *text = "{\"n\": 9007199254740993}";
    mb_json *root = mb_json_parse(text, strlen(text), "x");
    ok(mb_json_type_of(mb_json_get(root, "n")) == MB_JSON_INT, "integers stay integers");
    is_int(mb_json_int(mb_json_get(root, "n")), 9007199254740993LL, "exactly, beyond 2^53");
    mb_json_free(root);
    ok(mb_json_parse("{\"a\": }", 7, "bad.json") == NULL, "bad JSON is still refused");
}

int main(void)
{
    big_integers_parse();
    ordinary_documents_keep_integers();
    return tap_done();
}
