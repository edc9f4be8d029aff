/* tests/helpers/chat_render.c - render or encode chat rows with mb's chat template code,
 * for the transformers apply_chat_template oracle (tests/oracle/chat_check.py).
 *
 *   chat_render render TOKENIZER_CONFIG ROWS.jsonl            one JSON string per row
 *   chat_render encode TOKENIZER_CONFIG ROWS.jsonl TOKENIZER  {"ids": [...], "mask": [...]}
 *   chat_render jinja CASES.jsonl      {"template": T, "vars": {...}} per line: the Jinja
 *                                      renderer alone; one JSON string per case
 *
 * A row that fails prints "error: WHERE: WHAT" on its line (the others go on); the exit
 * status is then 1. A template that does not load is exit 1 before any row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/str.h"
#include "tok/chat.h"
#include "tok/jinja.h"
#include "tok/tokenizer.h"

/* "error: WHERE: WHAT" on one line (a template's raise_exception message may hold
 * newlines). */
static void print_error(void)
{
    printf("error: %s: ", mb_err_where());
    for (const char *p = mb_err_what(); *p; p++)
        if (*p == '\n')
            fputs("\\n", stdout);
        else
            putchar(*p);
    putchar('\n');
}

static int fail(void)
{
    fprintf(stderr, "chat_render: error: %s: %s\n", mb_err_where(), mb_err_what());
    return 1;
}

static void print_row(const mb_chat_template *ct, mb_tok_encoder *enc, const mb_json *row,
                      const char *where, int *errors)
{
    struct mb_buf out = MB_BUF_INIT;
    int rc;
    if (!enc) {
        struct mb_buf text = MB_BUF_INIT;
        rc = mb_chat_render(ct, row, where, &text);
        if (rc == 0)
            mb_json_escape(&out, text.data ? text.data : "", text.len);
        mb_buf_release(&text);
    } else {
        struct mb_ids ids = MB_IDS_INIT;
        uint8_t *mask = NULL;
        rc = mb_chat_encode_row(ct, enc, row, where, &ids, &mask);
        if (rc == 0) {
            mb_buf_adds(&out, "{\"ids\": [");
            for (size_t i = 0; i < ids.len; i++)
                mb_buf_addf(&out, "%s%d", i ? ", " : "", ids.v[i]);
            mb_buf_adds(&out, "], \"mask\": [");
            for (size_t i = 0; i < ids.len; i++)
                mb_buf_addf(&out, "%s%d", i ? ", " : "", mask[i]);
            mb_buf_adds(&out, "]}");
        }
        free(mask);
        mb_ids_release(&ids);
    }
    if (rc == 0) {
        printf("%s\n", out.data);
    } else {
        print_error();
        (*errors)++;
    }
    mb_buf_release(&out);
}

/* One {"template", "vars"} case rendered by the Jinja renderer alone. */
static void print_case(const mb_json *c, const char *where, int *errors)
{
    size_t len;
    const mb_json *tv = mb_json_get(c, "template"), *vars = mb_json_get(c, "vars");
    const char *text = tv ? mb_json_str(tv, &len) : NULL;
    struct mb_buf out = MB_BUF_INIT;
    mb_jinja *t = NULL;
    int rc = -1;
    if (!text || !vars)
        mb_err_set(MB_E_INVALID, where, "a case needs \"template\" and \"vars\"");
    else if ((t = mb_jinja_parse(text, len, where)))
        rc = mb_jinja_render(t, vars, &out, NULL);
    if (rc == 0) {
        struct mb_buf q = MB_BUF_INIT;
        mb_json_escape(&q, out.data ? out.data : "", out.len);
        printf("%s\n", q.data);
        mb_buf_release(&q);
    } else {
        print_error();
        (*errors)++;
    }
    mb_jinja_free(t);
    mb_buf_release(&out);
}

static int jinja_cases(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        mb_err_errno(path, "cannot open");
        return fail();
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int errors = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        char where[600];
        snprintf(where, sizeof where, "%s:%ld", path, ++lineno);
        mb_json *c = mb_json_parse(line, (size_t)len, where);
        if (!c) {
            print_error();
            errors++;
            continue;
        }
        print_case(c, where, &errors);
        mb_json_free(c);
    }
    free(line);
    fclose(f);
    return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "jinja") == 0)
        return jinja_cases(argv[2]);
    int encode = argc == 5 && strcmp(argv[1], "encode") == 0;
    if (!encode && !(argc == 4 && strcmp(argv[1], "render") == 0)) {
        fprintf(stderr, "usage: chat_render render TOKENIZER_CONFIG ROWS.jsonl\n"
                        "       chat_render encode TOKENIZER_CONFIG ROWS.jsonl TOKENIZER\n"
                        "       chat_render jinja CASES.jsonl\n");
        return 2;
    }
    mb_chat_template *ct = mb_chat_template_load(argv[2]);
    if (!ct)
        return fail();
    mb_tokenizer *tok = NULL;
    mb_tok_encoder *enc = NULL;
    if (encode) {
        if (!(tok = mb_tokenizer_load(argv[4])))
            return fail();
        enc = mb_tok_encoder_new(tok);
    }
    FILE *f = fopen(argv[3], "r");
    if (!f) {
        mb_err_errno(argv[3], "cannot open");
        return fail();
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int errors = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char where[600];
        snprintf(where, sizeof where, "%s:%ld", argv[3], lineno);
        mb_json *row = mb_json_parse(line, (size_t)len, where);
        if (!row) {
            print_error();
            errors++;
            continue;
        }
        print_row(ct, enc, row, where, &errors);
        mb_json_free(row);
    }
    free(line);
    fclose(f);
    mb_tok_encoder_free(enc);
    mb_tokenizer_free(tok);
    mb_chat_template_free(ct);
    return errors ? 1 : 0;
}
