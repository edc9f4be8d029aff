/* tok/chat.c - chat rows: normalise, render with the chat template, tokenize, and the
 * answer mask (tok/chat.h says what each step does and why). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"
#include "tok/chat.h"
#include "tok/internal.h"
#include "tok/jinja.h"

/* Special tokens transformers passes to the template (special_tokens_map). */
static const char *const special_keys[] = { "bos_token", "eos_token", "unk_token", "sep_token",
                                            "pad_token", "cls_token", "mask_token" };
#define N_SPECIAL MB_ARRAY_LEN(special_keys)

struct marker_family {
    const char *name;
    const char *detect[3]; /* all must be in the template text */
    const char *start;
    const char *end[2];    /* the end marker, then its fallback */
};

static const struct marker_family families[] = {
    { "chatml", { "<|im_start|>", "<|im_end|>", NULL }, "<|im_start|>assistant\n",
      { "<|im_end|>\n", "<|im_end|>" } },
    { "llama3", { "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>" },
      "<|start_header_id|>assistant<|end_header_id|>\n\n", { "<|eot_id|>", NULL } },
    { "gemma", { "<start_of_turn>", "<end_of_turn>", NULL }, "<start_of_turn>model\n",
      { "<end_of_turn>", NULL } },
};

struct mb_chat_template {
    mb_jinja *jinja;
    char *special[N_SPECIAL]; /* NULL when the config has none */
    const struct marker_family *family;
};

/* ---- loading --------------------------------------------------------------------- */

static const struct marker_family *find_family(const char *text, size_t len)
{
    for (size_t f = 0; f < MB_ARRAY_LEN(families); f++) {
        int all = 1;
        for (int k = 0; k < 3 && families[f].detect[k]; k++)
            all &= memmem(text, len, families[f].detect[k], strlen(families[f].detect[k])) != NULL;
        if (all)
            return &families[f];
    }
    return NULL;
}

mb_chat_template *mb_chat_template_new(const char *text, size_t len, const char *bos,
                                       const char *eos, const char *name)
{
    mb_jinja *j = mb_jinja_parse(text, len, name);
    if (!j)
        return NULL;
    mb_chat_template *ct = mb_xcalloc(1, sizeof *ct);
    ct->jinja = j;
    ct->special[0] = bos ? mb_xstrdup(bos) : NULL;
    ct->special[1] = eos ? mb_xstrdup(eos) : NULL;
    ct->family = find_family(text, len);
    return ct;
}

void mb_chat_template_free(mb_chat_template *ct)
{
    if (!ct)
        return;
    mb_jinja_free(ct->jinja);
    for (size_t i = 0; i < N_SPECIAL; i++)
        free(ct->special[i]);
    free(ct);
}

const char *mb_chat_template_family(const mb_chat_template *ct)
{
    return ct->family ? ct->family->name : NULL;
}

/* A special token given as a string or as {"content": ...}; NULL when absent or null. */
static int special_token(const mb_json *cfg, const char *path, const char *key, char **out)
{
    const mb_json *v = mb_json_get(cfg, key);
    *out = NULL;
    if (!v || mb_json_type_of(v) == MB_JSON_NULL)
        return 0;
    if (mb_json_type_of(v) == MB_JSON_OBJECT)
        v = mb_json_get(v, "content");
    size_t n;
    const char *s = v ? mb_json_str(v, &n) : NULL;
    if (!s)
        return mb_err_set(MB_E_INVALID, path, "%s: expected a string or {\"content\": "
                          "string}", key);
    *out = mb_xstrndup(s, n);
    return 0;
}

/* The template text: "chat_template" as a string, or the entry named "default" of a
 * list of {name, template}; else chat_template.jinja beside the config (PATH NULL: none). */
static int template_text(const mb_json *cfg, const char *path, const char *where, char **text,
                         size_t *len)
{
    const mb_json *v = mb_json_get(cfg, "chat_template");
    if (v && mb_json_type_of(v) == MB_JSON_ARRAY) {
        const mb_json *found = NULL;
        for (size_t i = 0; i < mb_json_len(v); i++) {
            const mb_json *name = mb_json_get(mb_json_at(v, i), "name");
            size_t n;
            const char *s = name ? mb_json_str(name, &n) : NULL;
            if (s && n == 7 && memcmp(s, "default", 7) == 0)
                found = mb_json_get(mb_json_at(v, i), "template");
        }
        if (!found)
            return mb_err_set(MB_E_INVALID, where, "chat_template: a list of named templates "
                              "without one named \"default\"");
        v = found;
    }
    if (v) {
        const char *s = mb_json_str(v, len);
        if (!s)
            return mb_err_set(MB_E_INVALID, where, "chat_template: expected a string, found %s",
                              mb_json_type_name(v));
        *text = mb_xstrndup(s, *len);
        return 0;
    }
    if (!path)
        return mb_err_set(MB_E_INVALID, where, "no chat_template key");
    const char *slash = strrchr(path, '/');
    char *jinja = mb_xasprintf("%.*schat_template.jinja", slash ? (int)(slash - path + 1) : 0,
                               path);
    int rc = -1;
    if (mb_fs_exists(jinja))
        rc = mb_fs_read_all(jinja, text, len);
    else
        mb_err_set(MB_E_INVALID, path, "no chat_template key (and no chat_template.jinja "
                   "beside it)");
    free(jinja);
    return rc;
}

/* The template of the parsed config CFG; PATH (may be NULL) is the file it came from,
 * for chat_template.jinja beside it; WHERE names it in errors. */
static mb_chat_template *template_from_config(const mb_json *cfg, const char *path,
                                              const char *where)
{
    char *special[N_SPECIAL] = { NULL };
    char *text = NULL;
    size_t len = 0;
    mb_chat_template *ct = NULL;
    int rc = 0;
    if (mb_json_type_of(cfg) != MB_JSON_OBJECT)
        rc = mb_err_set(MB_E_INVALID, where, "expected a JSON object, found %s",
                        mb_json_type_name(cfg));
    for (size_t i = 0; i < N_SPECIAL && rc == 0; i++)
        rc = special_token(cfg, where, special_keys[i], &special[i]);
    if (rc == 0)
        rc = template_text(cfg, path, where, &text, &len);
    if (rc == 0) {
        char *name = mb_xasprintf("%s: chat_template", where);
        ct = mb_chat_template_new(text, len, special[0], special[1], name);
        free(name);
    }
    if (ct)
        for (size_t i = 2; i < N_SPECIAL; i++) {
            ct->special[i] = special[i];
            special[i] = NULL;
        }
    for (size_t i = 0; i < N_SPECIAL; i++)
        free(special[i]);
    free(text);
    return ct;
}

mb_chat_template *mb_chat_template_load(const char *tokenizer_config_json)
{
    mb_json *cfg = mb_json_parse_file(tokenizer_config_json);
    if (!cfg)
        return NULL;
    mb_chat_template *ct = template_from_config(cfg, tokenizer_config_json,
                                                tokenizer_config_json);
    mb_json_free(cfg);
    return ct;
}

mb_chat_template *mb_chat_template_load_data(const char *data, size_t len, const char *where)
{
    mb_json *cfg = mb_json_parse(data, len, where);
    if (!cfg)
        return NULL;
    mb_chat_template *ct = template_from_config(cfg, NULL, where);
    mb_json_free(cfg);
    return ct;
}

/* ---- normalisation: the row as the template's variables, written as JSON ----------- */

static void write_json(struct mb_buf *b, const mb_json *v)
{
    size_t n;
    const char *s;
    switch (mb_json_type_of(v)) {
    case MB_JSON_NULL: mb_buf_adds(b, "null"); break;
    case MB_JSON_BOOL: mb_buf_adds(b, mb_json_is_true(v) ? "true" : "false"); break;
    case MB_JSON_INT: mb_buf_addf(b, "%lld", (long long)mb_json_int(v)); break;
    case MB_JSON_REAL: mb_buf_addf(b, "%.17g", mb_json_number(v)); break;
    case MB_JSON_STRING:
        s = mb_json_str(v, &n);
        mb_json_escape(b, s, n);
        break;
    case MB_JSON_ARRAY:
        mb_buf_addc(b, '[');
        for (size_t i = 0; i < mb_json_len(v); i++) {
            if (i)
                mb_buf_addc(b, ',');
            write_json(b, mb_json_at(v, i));
        }
        mb_buf_addc(b, ']');
        break;
    case MB_JSON_OBJECT: {
        void *it = NULL;
        const char *key;
        mb_json *val;
        int first = 1;
        mb_buf_addc(b, '{');
        while (mb_json_next(v, &it, &key, &val)) {
            if (!first)
                mb_buf_addc(b, ',');
            first = 0;
            mb_json_escape(b, key, strlen(key));
            mb_buf_addc(b, ':');
            write_json(b, val);
        }
        mb_buf_addc(b, '}');
        break;
    }
    }
}

static void write_key(struct mb_buf *b, int *first, const char *key)
{
    if (!*first)
        mb_buf_addc(b, ',');
    *first = 0;
    mb_json_escape(b, key, strlen(key));
    mb_buf_addc(b, ':');
}

static int known_role(const char *s, size_t n)
{
    static const char *const roles[] = { "system", "user", "assistant", "tool" };
    for (size_t i = 0; i < MB_ARRAY_LEN(roles); i++)
        if (strlen(roles[i]) == n && memcmp(roles[i], s, n) == 0)
            return 1;
    return 0;
}

/* The role of message I: "role" (messages) or lower-cased "from" with ShareGPT's
 * aliases, into ROLE. */
static int message_role(const mb_json *m, int sharegpt, const char *where, const char *list,
                        size_t i, char *role, size_t cap)
{
    const char *key = sharegpt ? "from" : "role";
    const mb_json *r = mb_json_get(m, key);
    size_t n;
    const char *s = r ? mb_json_str(r, &n) : NULL;
    if (!s)
        return mb_err_set(MB_E_INVALID, where, "%s[%zu]: %s", list, i,
                          r ? "the role is not a string" : sharegpt ? "no \"from\" key"
                                                                    : "no \"role\" key");
    if (n >= cap)
        n = cap - 1;
    for (size_t k = 0; k < n; k++)
        role[k] = sharegpt && s[k] >= 'A' && s[k] <= 'Z' ? (char)(s[k] + 32) : s[k];
    role[n] = 0;
    if (sharegpt && strcmp(role, "human") == 0)
        strcpy(role, "user");
    if (sharegpt && strcmp(role, "gpt") == 0)
        strcpy(role, "assistant");
    if (!known_role(role, strlen(role)))
        return mb_err_set(MB_E_INVALID, where, "%s[%zu]: unknown role \"%.*s\" (expected "
                          "system, user, assistant or tool%s)", list, i, (int)MB_MIN(n, 60),
                          s, sharegpt ? "; human and gpt are aliases" : "");
    return 0;
}

/* tool_calls with arguments given as a JSON string parsed into an object. */
static int write_tool_calls(struct mb_buf *b, const mb_json *calls, const char *where,
                            const char *list, size_t i)
{
    if (mb_json_type_of(calls) != MB_JSON_ARRAY) {
        write_json(b, calls);
        return 0;
    }
    mb_buf_addc(b, '[');
    for (size_t k = 0; k < mb_json_len(calls); k++) {
        const mb_json *call = mb_json_at(calls, k);
        const mb_json *fn = mb_json_get(call, "function");
        const mb_json *args = fn ? mb_json_get(fn, "arguments") : NULL;
        if (k)
            mb_buf_addc(b, ',');
        if (!args || mb_json_type_of(args) != MB_JSON_STRING) {
            write_json(b, call);
            continue;
        }
        size_t n;
        const char *s = mb_json_str(args, &n);
        mb_json *parsed = mb_json_parse(s, n, where);
        if (!parsed || mb_json_type_of(parsed) != MB_JSON_OBJECT) {
            mb_json_free(parsed);
            return mb_err_set(MB_E_INVALID, where, "%s[%zu].tool_calls[%zu].function.arguments:"
                              " a string that is not a JSON object", list, i, k);
        }
        int first = 1;
        void *it = NULL;
        const char *key;
        mb_json *val;
        mb_buf_addc(b, '{');
        while (mb_json_next(call, &it, &key, &val)) {
            write_key(b, &first, key);
            if (val != fn) {
                write_json(b, val);
                continue;
            }
            int ffirst = 1;
            void *fit = NULL;
            const char *fkey;
            mb_json *fval;
            mb_buf_addc(b, '{');
            while (mb_json_next(fn, &fit, &fkey, &fval)) {
                write_key(b, &ffirst, fkey);
                write_json(b, fval == args ? parsed : fval);
            }
            mb_buf_addc(b, '}');
        }
        mb_buf_addc(b, '}');
        mb_json_free(parsed);
    }
    mb_buf_addc(b, ']');
    return 0;
}

static const char *const reasoning_keys[] = { "reasoning_content", "thinking", "reasoning" };

static int is_reasoning_key(const char *key)
{
    for (size_t i = 0; i < MB_ARRAY_LEN(reasoning_keys); i++)
        if (strcmp(key, reasoning_keys[i]) == 0)
            return 1;
    return 0;
}

static const mb_json *reasoning_of(const mb_json *m)
{
    for (size_t i = 0; i < MB_ARRAY_LEN(reasoning_keys); i++) {
        const mb_json *r = mb_json_get(m, reasoning_keys[i]);
        if (r && mb_json_type_of(r) != MB_JSON_NULL)
            return r;
    }
    return NULL;
}

static int write_message(struct mb_buf *b, const mb_json *m, int sharegpt, const char *where,
                         const char *list, size_t i)
{
    char role[64];
    if (mb_json_type_of(m) != MB_JSON_OBJECT)
        return mb_err_set(MB_E_INVALID, where, "%s[%zu]: expected an object, found %s", list,
                          i, mb_json_type_name(m));
    if (message_role(m, sharegpt, where, list, i, role, sizeof role) < 0)
        return -1;
    const char *content_key = sharegpt ? "value" : "content";
    const mb_json *content = mb_json_get(m, content_key);
    const mb_json *reasoning = reasoning_of(m);
    int first = 1;
    mb_buf_addc(b, '{');
    if (reasoning) { /* transformers: {"thinking": r, **message, "reasoning_content": r} */
        write_key(b, &first, "thinking");
        write_json(b, reasoning);
    }
    write_key(b, &first, "role");
    mb_json_escape(b, role, strlen(role));
    write_key(b, &first, "content");
    if (content && mb_json_type_of(content) != MB_JSON_NULL)
        write_json(b, content);
    else
        mb_buf_adds(b, "\"\"");
    void *it = NULL;
    const char *key;
    mb_json *val;
    while (mb_json_next(m, &it, &key, &val)) {
        if (strcmp(key, sharegpt ? "from" : "role") == 0 || strcmp(key, content_key) == 0 ||
            strcmp(key, "role") == 0 || strcmp(key, "content") == 0 ||
            mb_json_type_of(val) == MB_JSON_NULL || (reasoning && is_reasoning_key(key)))
            continue;
        write_key(b, &first, key);
        if (strcmp(key, "tool_calls") == 0) {
            if (write_tool_calls(b, val, where, list, i) < 0)
                return -1;
        } else {
            write_json(b, val);
        }
    }
    if (reasoning) {
        write_key(b, &first, "reasoning_content");
        write_json(b, reasoning);
    }
    mb_buf_addc(b, '}');
    return 0;
}

static int has_system(const mb_json *list, int sharegpt)
{
    for (size_t i = 0; i < mb_json_len(list); i++) {
        const mb_json *r = mb_json_get(mb_json_at(list, i), sharegpt ? "from" : "role");
        size_t n;
        const char *s = r ? mb_json_str(r, &n) : NULL;
        if (s && n == 6 && strncasecmp(s, "system", 6) == 0)
            return 1;
    }
    return 0;
}

/* The template's variables for ROW as a JSON object text in B. */
static int row_vars(const mb_chat_template *ct, const mb_json *row, const char *where,
                    struct mb_buf *b)
{
    static const char *const lists[] = { "messages", "conversation", "conversations" };
    const mb_json *list = NULL;
    const char *list_key = NULL;
    if (mb_json_type_of(row) != MB_JSON_OBJECT)
        return mb_err_set(MB_E_INVALID, where, "expected a JSON object, found %s",
                          mb_json_type_name(row));
    for (size_t i = 0; i < MB_ARRAY_LEN(lists) && !list; i++)
        if ((list = mb_json_get(row, lists[i])))
            list_key = lists[i];
    if (!list)
        return mb_err_set(MB_E_INVALID, where, "no \"messages\" or \"conversations\" key "
                          "(a chat row needs one)");
    if (mb_json_type_of(list) != MB_JSON_ARRAY || mb_json_len(list) == 0)
        return mb_err_set(MB_E_INVALID, where, "%s: expected a non-empty list", list_key);
    int sharegpt = strcmp(list_key, "conversations") == 0;
    const mb_json *system = mb_json_get(row, "system");
    int first = 1;
    mb_buf_addc(b, '{');
    write_key(b, &first, "messages");
    mb_buf_addc(b, '[');
    int lead = system && mb_json_type_of(system) == MB_JSON_STRING && !has_system(list, sharegpt);
    if (lead) {
        mb_buf_adds(b, "{\"role\":\"system\",\"content\":");
        write_json(b, system);
        mb_buf_addc(b, '}');
    }
    for (size_t i = 0; i < mb_json_len(list); i++) {
        if (i || lead)
            mb_buf_addc(b, ',');
        if (write_message(b, mb_json_at(list, i), sharegpt, where, list_key, i) < 0)
            return -1;
    }
    mb_buf_addc(b, ']');
    const mb_json *tools = mb_json_get(row, "tools");
    write_key(b, &first, "tools");
    if (tools)
        write_json(b, tools);
    else
        mb_buf_adds(b, "null");
    write_key(b, &first, "documents");
    mb_buf_adds(b, "null");
    write_key(b, &first, "add_generation_prompt");
    mb_buf_adds(b, "false");
    for (size_t i = 0; i < N_SPECIAL; i++)
        if (ct->special[i]) {
            write_key(b, &first, special_keys[i]);
            mb_json_escape(b, ct->special[i], strlen(ct->special[i]));
        }
    mb_buf_addc(b, '}');
    return 0;
}

static int render(const mb_chat_template *ct, const mb_json *row, const char *where,
                  struct mb_buf *out, struct mb_jinja_spans *spans)
{
    struct mb_buf vars = MB_BUF_INIT;
    int rc = row_vars(ct, row, where, &vars);
    mb_json *doc = NULL;
    if (rc == 0 && !(doc = mb_json_parse(vars.data, vars.len, where)))
        rc = -1;
    if (rc == 0 && (rc = mb_jinja_render(ct->jinja, doc, out, spans)) < 0) {
        /* the row is WHERE; the template place goes into the message */
        struct mb_err_record rec;
        mb_err_save(&rec);
        mb_err_set(rec.code, where, "%s: %s", rec.where, rec.what);
    }
    mb_json_free(doc);
    mb_buf_release(&vars);
    return rc;
}

int mb_chat_render(const mb_chat_template *ct, const mb_json *row, const char *where,
                   struct mb_buf *out)
{
    return render(ct, row, where, out, NULL);
}

/* ---- the answer mask ------------------------------------------------------------------ */

static int match_at(const struct mb_ids *ids, size_t pos, const struct mb_ids *m)
{
    return m->len > 0 && pos + m->len <= ids->len &&
           memcmp(ids->v + pos, m->v, m->len * sizeof *m->v) == 0;
}

struct markers {
    struct mb_ids start, end[2];
};

static void encode_markers(mb_tok_encoder *enc, const struct marker_family *f, struct markers *m)
{
    *m = (struct markers){ 0 };
    mb_tok_encode(enc, f->start, strlen(f->start), 0, &m->start);
    for (int k = 0; k < 2; k++)
        if (f->end[k])
            mb_tok_encode(enc, f->end[k], strlen(f->end[k]), 0, &m->end[k]);
}

static void release_markers(struct markers *m)
{
    mb_ids_release(&m->start);
    mb_ids_release(&m->end[0]);
    mb_ids_release(&m->end[1]);
}

/* The length of the end marker (or its fallback) at POS, or 0. */
static size_t end_at(const struct mb_ids *ids, size_t pos, const struct markers *m)
{
    for (int k = 0; k < 2; k++)
        if (match_at(ids, pos, &m->end[k]))
            return m->end[k].len;
    return 0;
}

static void mask_by_markers(const struct mb_ids *ids, const struct markers *m, uint8_t *mask)
{
    size_t i = 0;
    while (i < ids->len) {
        if (!match_at(ids, i, &m->start)) {
            i++;
            continue;
        }
        size_t j = i + m->start.len, k = j, elen = 0;
        while (k < ids->len && !(elen = end_at(ids, k, m)))
            k++;
        memset(mask + j, 1, MB_MIN(k + elen, ids->len) - j);
        i = k + elen;
    }
}

/* The text of token ID as it appears in the input: raw bytes for byte-level
 * vocabularies; "\u2581" as a space and <0xNN> as the byte for SentencePiece ones. */
static void token_text(const mb_tokenizer *t, int32_t id, struct mb_buf *out)
{
    size_t n;
    const char *s = mb_tokenizer_id_text(t, id, &n);
    unsigned hex;
    mb_buf_reset(out);
    if (s && n == 6 && sscanf(s, "<0x%2X>", &hex) == 1 && s[5] == '>') {
        mb_buf_addc(out, (char)hex);
        return;
    }
    for (size_t k = 0; s && k < n;) {
        if (n - k >= 3 && memcmp(s + k, "\xE2\x96\x81", 3) == 0) {
            mb_buf_addc(out, ' ');
            k += 3;
        } else {
            mb_buf_addc(out, s[k++]);
        }
    }
}

static int is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* The lstrip (1) and rstrip (2) flags of added token ID, 0 for other tokens. */
static int strip_flags(const mb_tokenizer *t, int32_t id)
{
    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].id == id)
            return (t->added[i].lstrip ? 1 : 0) | (t->added[i].rstrip ? 2 : 0);
    return 0;
}

/* Where each token's text lies in TEXT: [OFF[2i], OFF[2i+1]). The token texts are laid
 * over the text in order; whitespace the tokenizer dropped belongs to the added token
 * that stripped it (rstrip: the one before, lstrip: the one after), as in HF's offsets,
 * else to no token; and a leading space a token did not find in the text is
 * SentencePiece's prepended one. -1 when the tokens do not spell the text (then the
 * generation spans cannot be mapped). */
static int token_offsets(const mb_tokenizer *t, const struct mb_ids *ids, const char *text,
                         size_t len, size_t *off)
{
    struct mb_buf tt = MB_BUF_INIT;
    size_t pos = 0;
    int rc = 0;
    for (size_t i = 0; i < ids->len && rc == 0; i++) {
        token_text(t, ids->v[i], &tt);
        const char *s = tt.data ? tt.data : "";
        size_t n = tt.len, skipped = pos;
        for (;;) {
            if (n <= len - pos && memcmp(text + pos, s, n) == 0)
                break;
            if (n > 0 && s[0] == ' ' && n - 1 <= len - pos &&
                memcmp(text + pos, s + 1, n - 1) == 0) {
                s++, n--;
                break;
            }
            if (pos < len && is_ws(text[pos])) {
                pos++;
                continue;
            }
            rc = -1;
            break;
        }
        off[2 * i] = pos;
        off[2 * i + 1] = pos + n;
        if (pos > skipped && i > 0 && (strip_flags(t, ids->v[i - 1]) & 2))
            off[2 * i - 1] = pos;
        else if (pos > skipped && (strip_flags(t, ids->v[i]) & 1))
            off[2 * i] = skipped;
        pos += n;
    }
    size_t tail = pos;
    while (rc == 0 && pos < len && is_ws(text[pos]))
        pos++;
    if (pos > tail && ids->len && (strip_flags(t, ids->v[ids->len - 1]) & 2))
        off[2 * ids->len - 1] = pos;
    mb_buf_release(&tt);
    return rc == 0 && pos == len ? 0 : -1;
}

/* transformers' char_to_token: the token whose text holds byte POS, or -1. */
static long char_to_token(const size_t *off, size_t n, size_t pos)
{
    for (size_t i = 0; i < n; i++)
        if (off[2 * i] <= pos && pos < off[2 * i + 1])
            return (long)i;
    return -1;
}

static int mask_by_generation(const mb_chat_template *ct, mb_tok_encoder *enc,
                              const struct mb_buf *text, const struct mb_jinja_spans *spans,
                              const struct mb_ids *ids, const char *where, uint8_t *mask)
{
    size_t *off = mb_xmalloc((2 * ids->len + 1) * sizeof *off);
    if (token_offsets(enc->t, ids, text->data, text->len, off) < 0) {
        free(off);
        return mb_err_set(MB_E_UNSUPPORTED, where, "cannot map the template's {%% generation %%}"
                          " spans to tokens: the token texts of this tokenizer do not spell "
                          "the rendered text");
    }
    struct markers m;
    if (ct->family)
        encode_markers(enc, ct->family, &m);
    for (size_t s = 0; s < spans->n; s++) {
        long st = char_to_token(off, ids->len, spans->v[s][0]);
        if (st < 0)
            break; /* as transformers: a span past the tokens ends the mask */
        long en = spans->v[s][1] > 0 ? char_to_token(off, ids->len, spans->v[s][1] - 1) : -1;
        size_t stop = en > 0 ? (size_t)en + 1 : ids->len; /* 0 or none: to the end */
        for (size_t k = (size_t)st; k < stop; k++)
            mask[k] = 1;
        if (ct->family && stop < ids->len && stop > (size_t)st) {
            size_t elen = end_at(ids, stop, &m);
            memset(mask + stop, 1, elen);
        }
    }
    if (ct->family)
        release_markers(&m);
    free(off);
    return 0;
}

int mb_chat_encode_row(const mb_chat_template *ct, mb_tok_encoder *enc, const mb_json *row,
                       const char *where, struct mb_ids *ids, uint8_t **mask)
{
    int gen = mb_jinja_has_generation(ct->jinja);
    *mask = NULL;
    if (!gen && !ct->family)
        return mb_err_set(MB_E_UNSUPPORTED, where, "the chat template has no {%% generation %%}"
                          " block and no known assistant boundary markers (ChatML "
                          "<|im_start|>/<|im_end|>, Llama 3 <|start_header_id|>/<|eot_id|>, "
                          "Gemma <start_of_turn>/<end_of_turn>), so the answer tokens cannot "
                          "be found");
    struct mb_buf text = MB_BUF_INIT;
    struct mb_jinja_spans spans = { 0 };
    if (render(ct, row, where, &text, gen ? &spans : NULL) < 0) {
        mb_buf_release(&text);
        mb_jinja_spans_release(&spans);
        return -1;
    }
    struct mb_ids own = MB_IDS_INIT;
    mb_tok_encode(enc, text.data ? text.data : "", text.len, 0, &own);
    *mask = mb_xcalloc(own.len ? own.len : 1, 1);
    int rc = 0;
    if (gen) {
        rc = mask_by_generation(ct, enc, &text, &spans, &own, where, *mask);
    } else {
        struct markers m;
        encode_markers(enc, ct->family, &m);
        mask_by_markers(&own, &m, *mask);
        release_markers(&m);
    }
    ids->len = 0;
    if (rc == 0) {
        for (size_t i = 0; i < own.len; i++)
            mb_ids_push(ids, own.v[i]);
    } else {
        free(*mask);
        *mask = NULL;
    }
    mb_ids_release(&own);
    mb_buf_release(&text);
    mb_jinja_spans_release(&spans);
    return rc;
}
