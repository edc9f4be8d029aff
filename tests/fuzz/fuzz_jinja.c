/* tests/fuzz/fuzz_jinja.c - the chat-template Jinja renderer (tok/jinja*.c) on any bytes.
 *
 * The input is a template. One that parses is rendered with a fixed conversation (the
 * variables transformers passes: messages with a tool call, tools, special tokens); a
 * render either succeeds or fails with an error, and its generation spans lie inside the
 * output.
 */
#include <string.h>

#include "core/json.h"
#include "core/str.h"
#include "tok/jinja.h"
#include "tests/fuzz/fuzz_common.h"

static const char vars_json[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \" Be brief. \"},"
    " {\"role\": \"user\", \"content\": \"Hi \\u00e9\\u4f60 <think>x</think>\"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"call12345\","
    " \"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1.5, null, true]}}}]},"
    " {\"role\": \"tool\", \"content\": \"{\\\"r\\\": 2}\"},"
    " {\"role\": \"assistant\", \"content\": [{\"type\": \"text\", \"text\": \"done\"}]}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}],"
    " \"documents\": null, \"add_generation_prompt\": true, \"bos_token\": \"<s>\","
    " \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mb_json *vars;
    if (!vars)
        vars = mb_json_parse(vars_json, sizeof vars_json - 1, "vars");
    fuzz_check(vars != NULL, "the fixed variables do not parse");
    mb_jinja *t = mb_jinja_parse((const char *)data, size, "fuzz");
    if (!t)
        return 0;
    struct mb_buf out = MB_BUF_INIT;
    struct mb_jinja_spans spans = { 0 };
    if (mb_jinja_render(t, vars, &out, &spans) == 0)
        for (size_t i = 0; i < spans.n; i++)
            fuzz_check(spans.v[i][0] <= spans.v[i][1] && spans.v[i][1] <= out.len,
                       "a generation span outside the output");
    else
        fuzz_check(out.len == 0, "a failed render left output behind");
    mb_jinja_spans_release(&spans);
    mb_buf_release(&out);
    mb_jinja_free(t);
    return 0;
}
