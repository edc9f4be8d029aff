/* tok/gpt2_files.c - a byte-level BPE from GPT-2's two files, vocab.json and merges.txt.
 *
 * Megatron-LM's GPT2BPETokenizer (--vocab-file, --merge-file) is HF's GPT-2 tokenizer
 * built from these files. HF's converter makes of them the tokenizer.json that the
 * gpt2 model ships: the vocabulary and merges as given, the ByteLevel pre-tokenizer
 * without a prefix space, ByteLevel post-processing and decoding, and <|endoftext|> as
 * a special added token (the end of document). This file writes that document as JSON
 * text and loads it through the one tokenizer.json loader, so there is a single
 * encoder for both spellings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "io/lines.h"
#include "tok/internal.h"

#define EOD_TEXT "<|endoftext|>"

static void add_vocab(struct mb_buf *out, const mb_json *vocab)
{
    void *it = NULL;
    const char *key;
    mb_json *value;
    int first = 1;

    mb_buf_addc(out, '{');
    while (mb_json_next(vocab, &it, &key, &value)) {
        if (!first)
            mb_buf_addc(out, ',');
        first = 0;
        mb_json_escape(out, key, strlen(key));
        mb_buf_addf(out, ":%lld", (long long)mb_json_int(value));
    }
    mb_buf_addc(out, '}');
}

/* The vocabulary: an object of token -> non-negative integer id. */
static int check_vocab(const mb_json *vocab, const char *path, int64_t *eod)
{
    void *it = NULL;
    const char *key;
    mb_json *value;

    if (mb_json_type_of(vocab) != MB_JSON_OBJECT)
        return mb_err_set(MB_E_INVALID, path, "not a GPT-2 vocab.json (the top level is not an "
                          "object of token -> id)");
    *eod = -1;
    while (mb_json_next(vocab, &it, &key, &value)) {
        if (mb_json_type_of(value) != MB_JSON_INT || mb_json_int(value) < 0 ||
            mb_json_int(value) > INT32_MAX)
            return mb_err_set(MB_E_INVALID, path, "token '%s': the id is not an integer in "
                              "[0, 2^31)", key);
        if (strcmp(key, EOD_TEXT) == 0)
            *eod = mb_json_int(value);
    }
    if (*eod < 0)
        return mb_err_set(MB_E_INVALID, path, "no '" EOD_TEXT "' token: GPT2BPETokenizer needs "
                          "it as the end-of-document token");
    return 0;
}

/* merges.txt: an optional "#version" first line, then one "LEFT RIGHT" pair a line. */
static int add_merges(struct mb_buf *out, const char *path)
{
    mb_lines *r = mb_lines_open(path);
    const char *line;
    size_t len;
    int64_t lineno, off;
    int rc, first = 1;

    if (!r)
        return -1;
    mb_buf_addc(out, '[');
    while ((rc = mb_lines_next(r, &line, &len, &lineno, &off)) == 1) {
        if (len && line[len - 1] == '\r')
            len--;
        if (len == 0 || (lineno == 1 && len >= 8 && memcmp(line, "#version", 8) == 0))
            continue;
        const char *space = memchr(line, ' ', len);
        if (!space || space == line || space + 1 == line + len ||
            memchr(space + 1, ' ', (size_t)(line + len - space - 1))) {
            rc = mb_err_set(MB_E_PARSE, mb_at_line(path, (long long)lineno),
                            "a merge is two tokens separated by one space");
            break;
        }
        if (!first)
            mb_buf_addc(out, ',');
        first = 0;
        mb_json_escape(out, line, len);
    }
    mb_lines_close(r);
    mb_buf_addc(out, ']');
    return rc < 0 ? -1 : 0;
}

/* HF's tokenizer.json for GPT-2 around VOCAB and the merges of MERGES_PATH. */
static int gpt2_document(struct mb_buf *out, const mb_json *vocab, int64_t eod,
                         const char *merges_path)
{
    mb_buf_addf(out, "{\"added_tokens\":[{\"id\":%lld,\"content\":\"" EOD_TEXT "\","
                "\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,"
                "\"special\":true}],\"normalizer\":null,", (long long)eod);
    mb_buf_adds(out, "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                "\"trim_offsets\":true,\"use_regex\":true},"
                "\"post_processor\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
                "\"trim_offsets\":false,\"use_regex\":true},"
                "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
                "\"trim_offsets\":true,\"use_regex\":true},"
                "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
                "\"continuing_subword_prefix\":\"\",\"end_of_word_suffix\":\"\","
                "\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,\"vocab\":");
    add_vocab(out, vocab);
    mb_buf_adds(out, ",\"merges\":");
    if (add_merges(out, merges_path) != 0)
        return -1;
    mb_buf_adds(out, "}}");
    return 0;
}

mb_tokenizer *mb_tokenizer_load_gpt2(const char *vocab_path, const char *merges_path)
{
    struct mb_buf doc = MB_BUF_INIT;
    mb_json *vocab = mb_json_parse_file(vocab_path), *root = NULL;
    int64_t eod = -1;
    int rc = vocab ? check_vocab(vocab, vocab_path, &eod) : -1;

    if (rc == 0)
        rc = gpt2_document(&doc, vocab, eod, merges_path);
    mb_json_free(vocab);
    if (rc == 0 && !(root = mb_json_parse(doc.data, doc.len, merges_path)))
        rc = -1;
    mb_buf_release(&doc);
    mb_tokenizer *t = mb_xcalloc(1, sizeof *t);
    t->path = mb_xstrdup(vocab_path);
    t->eod = (int32_t)eod;
    if (rc == 0)
        rc = tok_load_json(t, root, vocab_path);
    mb_json_free(root);
    if (rc != 0) {
        mb_tokenizer_free(t);
        return NULL;
    }
    snprintf(t->describe, sizeof t->describe, "GPT-2 byte-level BPE from vocab.json + "
             "merges.txt, %lld entries", (long long)t->vocab_size);
    return t;
}
