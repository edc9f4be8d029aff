/* tok/chat.h - SFT chat rows rendered with a model's chat template, tokenized, and the
 * answer-token mask, as Megatron Bridge's chat path does it (finetune.md 4.1 and 4.4).
 *
 * A row holds "messages" [{role, content, ...}] (or "conversation"), or ShareGPT
 * "conversations" [{from, value}] with an optional "system". Normalisation: ShareGPT
 * "from" is lower-cased into "role" (human -> user, gpt -> assistant) and "value" becomes
 * "content"; "system" becomes a leading system message when there is none; content null
 * becomes ""; a tool call's "arguments" given as a JSON string is parsed (it must hold an
 * object); then, as transformers does, other keys whose value is null are dropped and
 * reasoning ("reasoning_content", "thinking", "reasoning") is copied under
 * "thinking" and "reasoning_content". Roles must be system, user, assistant or tool. A
 * row's "tools" list is passed to the template.
 *
 * The template is rendered as transformers' apply_chat_template renders it
 * (add_generation_prompt false; bos_token, eos_token, pad_token, unk_token from
 * tokenizer_config.json; tools and documents none unless given) and the text encoded
 * without special-token insertion. The mask (1 = supervised) is, first that applies:
 *   a. the {% generation %} spans of the template mapped to tokens as transformers'
 *      return_assistant_tokens_mask does (char_to_token of each span's first and last
 *      character), with the end marker of a family of (b) that directly follows a span
 *      added when the template also matches that family;
 *   b. the boundary markers of the template's family, found as token subsequences:
 *      each span runs from after an assistant start marker through the next end marker
 *      (the end marker included; to the end of the text when none follows):
 *        ChatML (template has <|im_start|> and <|im_end|>):   "<|im_start|>assistant\n"
 *              ... "<|im_end|>\n", else "<|im_end|>"
 *        Llama 3 (<|start_header_id|>, <|end_header_id|>, <|eot_id|>):
 *              "<|start_header_id|>assistant<|end_header_id|>\n\n" ... "<|eot_id|>"
 *        Gemma (<start_of_turn> and <end_of_turn>):  "<start_of_turn>model\n" ... "<end_of_turn>"
 *   c. otherwise an error: the template has no {% generation %} block and no known
 *      boundary markers (Mistral [INST] and Phi-3 <|assistant|> templates are in this case,
 *      as in Bridge).
 * Mapping generation spans needs each token's place in the text: taken from the token
 * texts (byte-level vocabularies; "\u2581" and <0xNN> pieces of SentencePiece ones,
 * whitespace an added token's lstrip/rstrip swallowed going to that token, as HF's
 * offsets do); a tokenizer whose tokens do not spell the text is an error.
 *
 * A loaded template is immutable: threads may encode with it at the same time, each with
 * its own encoder.
 */
#ifndef MB_TOK_CHAT_H
#define MB_TOK_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"
#include "core/json.h"
#include "core/str.h"
#include "tok/tokenizer.h"

typedef struct mb_chat_template mb_chat_template;

/* chat_template, bos_token, eos_token (strings or {"content": ...}) of a
 * tokenizer_config.json; NULL with mb_err naming the file and key. A chat_template given
 * as a list of named templates uses the one named "default". */
mb_chat_template *mb_chat_template_load(const char *tokenizer_config_json);
/* The same from the bytes of a tokenizer_config.json held in memory (a checkpoint's
 * /hf/files blob); WHERE names it in errors. */
mb_chat_template *mb_chat_template_load_data(const char *data, size_t len, const char *where);
/* A template from its text; BOS and EOS may be NULL (then undefined in the template).
 * NAME names it in errors. NULL with mb_err on a template that cannot be parsed. */
mb_chat_template *mb_chat_template_new(const char *text, size_t len, const char *bos,
                                       const char *eos, const char *name);
void mb_chat_template_free(mb_chat_template *ct);

/* The family whose markers the template has ("chatml", "llama3", "gemma"), or NULL. */
const char *mb_chat_template_family(const mb_chat_template *ct);

/* One SFT row (a JSON object) holding "messages" [{role, content}], or ShareGPT
 * "conversations" [{from, value}] (+ optional "system"), normalised as above,
 * rendered (add_generation_prompt false) and tokenized without special-token
 * insertion. *IDS is set to the tokens (its old contents dropped), *MASK (malloc'd,
 * ids->len bytes) 1 where the token is supervised (assistant content + end marker; the
 * mask of the token itself, unshifted). -1 with mb_err naming WHERE (e.g.
 * "file.jsonl:12") and the construct or key on failure. */
MB_MUST_CHECK int mb_chat_encode_row(const mb_chat_template *ct, mb_tok_encoder *enc,
                                     const mb_json *row, const char *where,
                                     struct mb_ids *ids, uint8_t **mask);

/* The rendered text of ROW (normalised as above), appended to OUT. -1 with mb_err. */
MB_MUST_CHECK int mb_chat_render(const mb_chat_template *ct, const mb_json *row,
                                 const char *where, struct mb_buf *out);

#endif /* MB_TOK_CHAT_H */
