/* tests/unit/chat_encode.c - mb_chat_encode_row on the byte tokenizer, where token i is
 * byte i of the rendered text, so the answer mask can be checked against the text itself:
 * 1 exactly on the bytes of each assistant content and the end marker after it. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/str.h"
#include "tests/lib/tap.h"
#include "tok/chat.h"
#include "tok/tokenizer.h"

static const char chatml[] =
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{% endfor %}";

/* A mask that is 1 on every occurrence of each of ANSWERS in TEXT (with END after it). */
static uint8_t *expected_mask(const char *text, size_t len, const char *const *answers,
                              const char *end)
{
    uint8_t *m = calloc(len ? len : 1, 1);
    for (size_t a = 0; answers[a]; a++) {
        char *span = malloc(strlen(answers[a]) + strlen(end) + 1);
        strcpy(span, answers[a]);
        strcat(span, end);
        for (const char *p = text; (p = strstr(p, span)); p++)
            memset(m + (p - text), 1, strlen(span));
        free(span);
    }
    return m;
}

static void check_row(const mb_chat_template *ct, mb_tok_encoder *enc, const char *row_json,
                      const char *const *answers, const char *end, const char *title)
{
    mb_json *row = mb_json_parse(row_json, strlen(row_json), "row");
    struct mb_buf text = MB_BUF_INIT;
    struct mb_ids ids = MB_IDS_INIT;
    uint8_t *mask = NULL;
    mb_ids_push(&ids, 7); /* old contents are dropped */
    int rc = mb_chat_render(ct, row, "row", &text);
    ok(rc == 0 && mb_chat_encode_row(ct, enc, row, "row", &ids, &mask) == 0, "%s: encoded", title);
    is_int((long long)ids.len, (long long)text.len, "%s: one byte token per byte", title);
    int same = ids.len == text.len;
    for (size_t i = 0; same && i < ids.len; i++)
        same = ids.v[i] == (unsigned char)text.data[i];
    ok(same, "%s: the ids are the rendered bytes", title);
    uint8_t *want = expected_mask(text.data, text.len, answers, end);
    ok(mask && memcmp(mask, want, text.len) == 0, "%s: mask on the answers and end markers only",
       title);
    free(want);
    free(mask);
    mb_ids_release(&ids);
    mb_buf_release(&text);
    mb_json_free(row);
}

int main(void)
{
    mb_tokenizer *tok = mb_tokenizer_load("bytes");
    mb_tok_encoder *enc = mb_tok_encoder_new(tok);
    mb_chat_template *ct = mb_chat_template_new(chatml, strlen(chatml), NULL, NULL, "chatml");
    ok(ct && mb_chat_template_family(ct) && strcmp(mb_chat_template_family(ct), "chatml") == 0,
       "a ChatML template is recognised by its markers");

    static const char *const a1[] = { "Hi there", "Fine.", NULL };
    check_row(ct, enc,
              "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"},"
              " {\"role\": \"assistant\","
              " \"content\": \"Hi there\"}, {\"role\": \"user\", \"content\": \"And you?\"},"
              " {\"role\": \"assistant\", \"content\": \"Fine.\"}]}",
              a1, "<|im_end|>\n", "ChatML, two turns");
    static const char *const a2[] = { "Bonjour", NULL };
    check_row(ct, enc,
              "{\"system\": \"French.\", \"conversations\":"
              " [{\"from\": \"HUMAN\", \"value\": \"Hi\"},"
              " {\"from\": \"gpt\", \"value\": \"Bonjour\"}]}",
              a2, "<|im_end|>\n", "ShareGPT with a system key");

    static const char gen[] =
        "{% for m in messages %}{% if m.role == 'assistant' %}A: {% generation %}{{ m.content }}"
        "{% endgeneration %}\n{% else %}U: {{ m.content }}\n{% endif %}{% endfor %}";
    mb_chat_template *g = mb_chat_template_new(gen, strlen(gen), NULL, NULL, "gen");
    ok(g && !mb_chat_template_family(g), "a template without markers has no family");
    static const char *const a3[] = { "yes", "no, 42", NULL };
    check_row(g, enc,
              "{\"messages\": [{\"role\": \"user\", \"content\": \"q1\"}, {\"role\": \"assistant\","
              " \"content\": \"yes\"}, {\"role\": \"user\", \"content\": \"q2\"},"
              " {\"role\": \"assistant\", \"content\": \"no, 42\"}]}",
              a3, "", "{% generation %} spans");

    static const char plain[] = "{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}";
    mb_chat_template *p = mb_chat_template_new(plain, strlen(plain), NULL, NULL, "plain");
    static const char user_x[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}";
    mb_json *row = mb_json_parse(user_x, strlen(user_x), "row");
    struct mb_ids ids = MB_IDS_INIT;
    uint8_t *mask = (uint8_t *)&ids;
    ok(p && mb_chat_encode_row(p, enc, row, "data.jsonl:3", &ids, &mask) < 0 && !mask &&
       strcmp(mb_err_where(), "data.jsonl:3") == 0 && strstr(mb_err_what(), "{% generation %}"),
       "no markers and no generation block: -1, no mask, the row named");
    mb_json_free(row);
    mb_ids_release(&ids);

    ok(!mb_chat_template_new("{% for x in y %}", 16, NULL, NULL, "t.json: chat_template") &&
       strcmp(mb_err_where(), "t.json: chat_template:1") == 0 &&
       strstr(mb_err_what(), "endfor"), "an unclosed loop: the template line and what is missing");

    static const char cfg[] = "{\"chat_template\": \"{{ bos_token }}{% for m in messages %}"
                              "{{ m.content }}{% endfor %}{{ eos_token }}\", \"bos_token\": "
                              "{\"content\": \"<s>\"}, \"eos_token\": \"</s>\"}";
    mb_chat_template *mem = mb_chat_template_load_data(cfg, strlen(cfg), "ckpt.h5:/hf/files/c");
    struct mb_buf text = MB_BUF_INIT;
    static const char one[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}";
    row = mb_json_parse(one, strlen(one), "row");
    ok(mem && mb_chat_render(mem, row, "row", &text) == 0 && strcmp(text.data, "<s>x</s>") == 0,
       "a tokenizer_config.json in memory: template, bos_token as {content}, eos_token");
    mb_json_free(row);
    mb_buf_release(&text);
    mb_chat_template_free(mem);
    ok(!mb_chat_template_load_data("{\"eos_token\": 1}", 16, "blob") &&
       strcmp(mb_err_where(), "blob") == 0 && strstr(mb_err_what(), "eos_token"),
       "in memory, a bad special token names the blob and the key");
    ok(!mb_chat_template_load_data("{}", 2, "blob") && strstr(mb_err_what(), "chat_template"),
       "in memory, no chat_template key");

    mb_chat_template_free(p);
    mb_chat_template_free(g);
    mb_chat_template_free(ct);
    mb_tok_encoder_free(enc);
    mb_tokenizer_free(tok);
    return tap_done();
}
