/* mb-convert/tokconf.c - tokenizer_config.json and generation_config.json for a model
 * trained from scratch, whose checkpoint carries only its tokenizer.json.
 *
 * Without them transformers' AutoTokenizer knows no special tokens and `generate` does
 * not know where a document ends, so it runs to max_new_tokens. The end-of-document
 * token is the one Megatron appended to every document of the training data (the
 * tokenizer's EOD, mb_tokenizer_eod), so the model learned to emit it: it is eos_token
 * (and pad_token, which generate needs for batches). The BOS is the token the
 * tokenizer's post-processor puts before a text, if it does.
 */
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "core/json.h"
#include "core/str.h"
#include "tok/tokenizer.h"

/* The id the post-processor puts before every text, or -1. */
static int32_t bos_of(const mb_tokenizer *t)
{
    struct mb_ids a = MB_IDS_INIT, b = MB_IDS_INIT;
    mb_tok_encoder *e = mb_tok_encoder_new(t);
    int32_t bos = -1;

    mb_tok_encode(e, "x", 1, 1, &a);
    mb_tok_encode(e, "x", 1, 0, &b);
    /* [BOS] x or [BOS] x [EOS]; an EOS only after the text is no BOS */
    if ((a.len == b.len + 1 || a.len == b.len + 2) &&
        memcmp(a.v + 1, b.v, b.len * sizeof *b.v) == 0)
        bos = a.v[0];
    mb_tok_encoder_free(e);
    mb_ids_release(&a);
    mb_ids_release(&b);
    return bos;
}

static void token_field(struct mb_buf *b, const mb_tokenizer *t, const char *key, int32_t id)
{
    size_t len = 0;
    const char *text = id >= 0 ? mb_tokenizer_id_text(t, id, &len) : NULL;

    mb_buf_addf(b, ",\n  \"%s\": ", key);
    if (text)
        mb_json_escape(b, text, len);
    else
        mb_buf_adds(b, "null");
}

int cv_tok_configs(const char *dir, int64_t model_max_length, char **tokenizer_config,
                   char **generation_config)
{
    mb_tokenizer *t = mb_tokenizer_load(dir);
    struct mb_buf tc = MB_BUF_INIT, gc = MB_BUF_INIT;

    *tokenizer_config = *generation_config = NULL;
    if (!t)
        return -1;
    int32_t eos = mb_tokenizer_eod(t), bos = bos_of(t);
    mb_buf_adds(&tc, "{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\"");
    token_field(&tc, t, "bos_token", bos);
    token_field(&tc, t, "eos_token", eos);
    token_field(&tc, t, "pad_token", eos);
    mb_buf_addf(&tc, ",\n  \"model_max_length\": %lld", (long long)model_max_length);
    mb_buf_adds(&tc, ",\n  \"clean_up_tokenization_spaces\": false\n}\n");
    mb_buf_adds(&gc, "{");
    if (bos >= 0)
        mb_buf_addf(&gc, "\n  \"bos_token_id\": %d,", bos);
    if (eos >= 0)
        mb_buf_addf(&gc, "\n  \"eos_token_id\": %d,\n  \"pad_token_id\": %d,", eos, eos);
    mb_buf_adds(&gc, "\n  \"_from_model_config\": false\n}\n");
    mb_tokenizer_free(t);
    *tokenizer_config = tc.data;
    *generation_config = gc.data;
    return 0;
}
