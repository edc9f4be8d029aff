/* data/sft_row.c - one SFT row to token ids and a loss mask (finetune.md 4.2). */
#include "data/sft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/str.h"

bool mb_sft_space_sensitive(mb_tok_encoder *enc)
{
    struct mb_ids both = MB_IDS_INIT, apart = MB_IDS_INIT;
    mb_tok_encode(enc, "x y", 3, 0, &both);
    mb_tok_encode(enc, "x", 1, 0, &apart);
    mb_tok_encode(enc, "y", 1, 0, &apart);
    bool sensitive = both.len != apart.len ||
                     memcmp(both.v, apart.v, both.len * sizeof *both.v) != 0;
    mb_ids_release(&both);
    mb_ids_release(&apart);
    return sensitive;
}

/* S[len] without leading and trailing ASCII spaces (Python's str.strip(" ")). */
static void strip_spaces(const char **s, size_t *len)
{
    while (*len > 0 && **s == ' ') {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && (*s)[*len - 1] == ' ')
        (*len)--;
}

/* The string value of KEY in ROW, stripped; -1 with mb_err naming WHERE, the key and
 * the config key WHY that asked for it. */
static int field(const mb_json *row, const char *key, size_t key_len, const char *where,
                 const char *why, const char **s, size_t *len)
{
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)MB_MIN(key_len, sizeof name - 1), key);
    const mb_json *v = mb_json_get(row, name);
    if (!v)
        return mb_err_set(MB_E_INVALID, where, "no key '%s' in the row (%s)", name, why);
    if (!(*s = mb_json_str(v, len)))
        return mb_err_set(MB_E_INVALID, where, "key '%s' holds %s %s, not a string (%s)", name,
                          mb_json_type_of(v) == MB_JSON_INT || mb_json_type_of(v) == MB_JSON_ARRAY
                              ? "an"
                              : "a",
                          mb_json_type_name(v), why);
    strip_spaces(s, len);
    return 0;
}

/* data.prompt_template with each {key} replaced by ROW's value (str.format: {{ and }}
 * are braces; \n, \t and \\ as written on a command line are a newline, a tab and a
 * backslash). */
static int render_prompt(const char *tpl, const mb_json *row, const char *where,
                         struct mb_buf *out)
{
    for (const char *p = tpl; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            mb_buf_addc(out, *p);
            p += 2;
            continue;
        }
        if (p[0] == '\\' && (p[1] == 'n' || p[1] == 't' || p[1] == '\\')) {
            mb_buf_addc(out, p[1] == 'n' ? '\n' : p[1] == 't' ? '\t' : '\\');
            p += 2;
            continue;
        }
        if (*p == '}')
            return mb_err_set(MB_E_INVALID, "data.prompt_template",
                              "a single '}' in \"%s\" (write }} for a brace)", tpl);
        if (*p != '{') {
            mb_buf_addc(out, *p++);
            continue;
        }
        const char *end = strchr(p, '}');
        if (!end || end == p + 1)
            return mb_err_set(MB_E_INVALID, "data.prompt_template",
                              "an unclosed or empty '{' in \"%s\" (write {{ for a brace)", tpl);
        const char *s;
        size_t len;
        if (field(row, p + 1, (size_t)(end - p - 1), where, "data.prompt_template", &s, &len) < 0)
            return -1;
        mb_buf_add(out, s, len);
        p = end + 1;
    }
    return 0;
}

/* Chat rows ("messages", "conversation" or ShareGPT "conversations"), rendered with the
 * tokenizer's chat template (tok/chat.h). */
static int encode_chat_row(const struct mb_sft_format *f, mb_tok_encoder *enc,
                           const mb_json *row, const char *where, struct mb_ids *ids,
                           uint8_t **mask)
{
    if (!f->chat)
        return mb_err_set(MB_E_INVALID, where,
                          "a chat row (messages/conversations), but the tokenizer has no "
                          "chat template (no chat_template in its tokenizer_config.json)");
    return mb_chat_encode_row(f->chat, enc, row, where, ids, mask);
}

/* A rendered chat example cut to max_length on the right, as Bridge's collate does
 * (finetune.md 4.5); no supervised token left: skipped. */
static int fit_chat(const struct mb_sft_format *f, struct mb_ids *ids, uint8_t **mask)
{
    if (ids->len > (size_t)f->max_length)
        ids->len = (size_t)f->max_length;
    for (size_t i = 0; i < ids->len; i++)
        if ((*mask)[i])
            return MB_SFT_ROW_OK;
    free(*mask);
    *mask = NULL;
    return MB_SFT_ROW_NO_ANSWER;
}

static bool is_chat_row(const mb_json *row)
{
    return mb_json_get(row, "messages") || mb_json_get(row, "conversations") ||
           mb_json_get(row, "conversation");
}

/* Right truncation (keep the head) of the prompt, then of the answer, to fit F's
 * max_length with the EOS (Bridge's budget with no BOS, prefix or separator token). */
static void truncate_right(const struct mb_sft_format *f, size_t *np, size_t *nc)
{
    int64_t budget = f->max_length - 1;
    int64_t over = (int64_t)(*np + *nc) - budget;
    if (over <= 0)
        return;
    int64_t cut = MB_MIN(over, (int64_t)*np);
    *np -= (size_t)cut;
    over -= cut;
    if (over > 0)
        *nc -= (size_t)MB_MIN(over, (int64_t)*nc);
}

int mb_sft_encode_row(const struct mb_sft_format *f, mb_tok_encoder *enc, const mb_json *row,
                      const char *where, struct mb_ids *ids, uint8_t **mask)
{
    *mask = NULL;
    ids->len = 0;
    if (is_chat_row(row) && !mb_json_get(row, f->answer_key))
        return encode_chat_row(f, enc, row, where, ids, mask) < 0 ? -1 : fit_chat(f, ids, mask);
    struct mb_buf prompt = MB_BUF_INIT, answer = MB_BUF_INIT;
    const char *s;
    size_t len;
    int rc = render_prompt(f->prompt_template, row, where, &prompt);
    if (rc == 0)
        rc = field(row, f->answer_key, strlen(f->answer_key), where, "data.answer_key", &s, &len);
    if (rc < 0) {
        mb_buf_release(&prompt);
        return -1;
    }
    const char *sep = f->separator;
    if (sep[0] == ' ' && !f->space_sensitive)
        sep++;
    mb_buf_adds(&answer, sep);
    mb_buf_add(&answer, s, len);
    mb_tok_encode(enc, prompt.data ? prompt.data : "", prompt.len, 0, ids);
    size_t np = ids->len;
    bool had_answer = answer.len > 0;
    mb_tok_encode(enc, answer.data ? answer.data : "", answer.len, 0, ids);
    size_t nc = ids->len - np, keep_p = np, keep_c = nc;
    mb_buf_release(&prompt);
    mb_buf_release(&answer);
    truncate_right(f, &keep_p, &keep_c);
    if (had_answer && nc > 0 && keep_c == 0)
        return MB_SFT_ROW_NO_ANSWER;
    memmove(ids->v + keep_p, ids->v + np, keep_c * sizeof *ids->v);
    ids->len = keep_p + keep_c;
    mb_ids_push(ids, f->eos_id);
    *mask = mb_xmalloc(ids->len);
    memset(*mask, 0, keep_p);
    memset(*mask + keep_p, 1, keep_c + 1);
    return MB_SFT_ROW_OK;
}
