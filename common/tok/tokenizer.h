/* tok/tokenizer.h - load a HuggingFace tokenizer.json (or the built-in byte tokenizer)
 * and encode text to token ids exactly as HF `tokenizers` does.
 *
 * Supported: BPE models (byte-level, as GPT-2 / Llama 3 / Qwen2; SentencePiece-style
 * with byte fallback, as Llama 2 / Mistral), added and special tokens, the normalizers
 * NFC/NFD/NFKC/NFKD, Lowercase, Strip, Prepend, Replace, Sequence, the pre-tokenizers
 * ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, Sequence, and the
 * TemplateProcessing / ByteLevel / Bert / Roberta post-processors. Anything else is an
 * error naming the key, never a silent approximation.
 *
 * A loaded mb_tokenizer is immutable and shared by threads; each thread encodes with
 * its own mb_tok_encoder (regex state, scratch buffers, word cache).
 */
#ifndef MB_TOK_TOKENIZER_H
#define MB_TOK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"

typedef struct mb_tokenizer mb_tokenizer;
typedef struct mb_tok_encoder mb_tok_encoder;

/* A growable list of token ids. */
struct mb_ids {
    int32_t *v;
    size_t len;
    size_t cap;
};
#define MB_IDS_INIT { 0 }
void mb_ids_push(struct mb_ids *ids, int32_t id);
void mb_ids_release(struct mb_ids *ids);

/* SPEC is "bytes" (256 byte ids + "<|endoftext|>" = 256), a tokenizer.json file, or a
 * directory holding one. tokenizer_config.json beside it is read for eos_token.
 * NULL with mb_err naming the file and key on failure. */
mb_tokenizer *mb_tokenizer_load(const char *spec);
void mb_tokenizer_free(mb_tokenizer *t);
/* GPT-2's byte-level BPE from its vocab.json and merges.txt (Megatron's GPT2BPETokenizer
 * --vocab-file/--merge-file): the tokenizer HF builds from them, <|endoftext|> the end of
 * document (tok/gpt2_files.c). NULL with mb_err naming the file (and line) on failure. */
mb_tokenizer *mb_tokenizer_load_gpt2(const char *vocab_path, const char *merges_path);

/* Entries in the vocabulary including added tokens (HF get_vocab_size(True)). */
int64_t mb_tokenizer_vocab_size(const mb_tokenizer *t);
/* The end-of-document id Megatron appends with --append-eod: tokenizer_config.json's
 * eos_token if given, else the first of <|end_of_text|>, <|endoftext|>, </s>, <eos>,
 * <|eos|> that exists; -1 if none. */
int32_t mb_tokenizer_eod(const mb_tokenizer *t);
/* A short description: "bytes" or the model and pre-tokenizer kinds. */
const char *mb_tokenizer_describe(const mb_tokenizer *t);

/* Token text of ID as stored in the vocabulary (byte-level vocabularies give the raw
 * bytes), or NULL for an unknown id. */
const char *mb_tokenizer_id_text(const mb_tokenizer *t, int32_t id, size_t *len);

mb_tok_encoder *mb_tok_encoder_new(const mb_tokenizer *t);
void mb_tok_encoder_free(mb_tok_encoder *e);

/* Append the ids of TEXT[len] to OUT. TEXT must be valid UTF-8 (see core/utf8.h).
 * ADD_SPECIAL applies the post-processor (BOS/EOS insertion), as HF
 * encode(add_special_tokens=True) does. */
void mb_tok_encode(mb_tok_encoder *e, const char *text, size_t len, int add_special,
                   struct mb_ids *out);

/* ---- decoding (tok/decode.c) ---------------------------------------------- */

struct mb_buf;

/* Append the text of IDS[N] to OUT as HF tokenizers' decode(ids,
 * skip_special_tokens=False) gives it: token strings (special tokens included) through
 * the tokenizer.json "decoder" (ByteLevel; Replace, ByteFallback, Fuse and Strip as
 * Llama 2 / Mistral chain them; Metaspace; Sequence), ill-formed UTF-8 replaced by
 * U+FFFD. Ids without a token are skipped, as HF does. Returns 0, or -1 with mb_err
 * naming the decoder key when the tokenizer's decoder is not supported. */
MB_MUST_CHECK int mb_tok_decode(const mb_tokenizer *t, const int32_t *ids, size_t n,
                                struct mb_buf *out);

/* 0 when mb_tok_decode works for T; else -1 with mb_err naming the unsupported
 * decoder key (a tokenizer with such a decoder still loads and encodes). */
MB_MUST_CHECK int mb_tokenizer_can_decode(const mb_tokenizer *t);

#endif /* MB_TOK_TOKENIZER_H */
