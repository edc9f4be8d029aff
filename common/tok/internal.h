/* tok/internal.h - structures shared by the files of tok/ only.
 *
 * Encoding runs in stages over "pieces": byte ranges of one arena (the encoder's
 * scratch text). A stage reads a piece list and writes the next one, appending any
 * new text (normalized, prefixed) to the arena, so pieces hold offsets, never
 * pointers. Byte-level models keep their vocabulary as raw bytes, so the ByteLevel
 * pre-tokenizer never rewrites text: it only splits.
 */
#ifndef MB_TOK_INTERNAL_H
#define MB_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/str.h"
#include "tok/regex.h"
#include "tok/tokenizer.h"

/* The largest token id accepted from a tokenizer.json (vocabulary or added token): the
 * tables indexed by id are sized by the largest one, so a damaged file must not ask for
 * gigabytes. 2^24, as --train-tokenizer's largest vocabulary; real ones are below 2^20. */
#define TOK_MAX_ID ((1 << 24) - 1)

/* ---- pieces ------------------------------------------------------------- */

struct tok_piece {
    uint32_t off, len; /* in the encoder's arena */
    uint32_t orig;     /* start in the original text (only "== 0" is relied on) */
    int32_t added_id;  /* >= 0: an added token, final */
};

struct tok_pieces {
    struct tok_piece *v;
    size_t n, cap;
};

void tok_pieces_push(struct tok_pieces *p, uint32_t off, uint32_t len, uint32_t orig,
                     int32_t added_id);

/* ---- normalizers -------------------------------------------------------- */

enum tok_norm_kind {
    TOK_NORM_NFC,
    TOK_NORM_NFD,
    TOK_NORM_NFKC,
    TOK_NORM_NFKD,
    TOK_NORM_LOWERCASE,
    TOK_NORM_STRIP,
    TOK_NORM_PREPEND,
    TOK_NORM_REPLACE,
    TOK_NORM_SEQUENCE,
};

struct tok_norm {
    enum tok_norm_kind kind;
    char *text;       /* Prepend: what; Replace: literal pattern (if regex < 0) */
    size_t text_len;
    char *content;    /* Replace: replacement */
    size_t content_len;
    int regex;        /* Replace with a Regex pattern: index into tokenizer regexes */
    int left, right;  /* Strip */
    struct tok_norm *kids;
    size_t nkids;
};

/* ---- pre-tokenizers ----------------------------------------------------- */

enum tok_pretok_kind {
    TOK_PRE_BYTELEVEL,
    TOK_PRE_SPLIT,
    TOK_PRE_METASPACE,
    TOK_PRE_DIGITS,
    TOK_PRE_SEQUENCE,
};

enum tok_split_behavior {
    TOK_SPLIT_REMOVED,
    TOK_SPLIT_ISOLATED,
    TOK_SPLIT_MERGED_PREV,
    TOK_SPLIT_MERGED_NEXT,
    TOK_SPLIT_CONTIGUOUS,
};

enum tok_prepend_scheme { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER };

struct tok_pretok {
    enum tok_pretok_kind kind;
    int add_prefix_space;            /* ByteLevel */
    int regex;                       /* ByteLevel (use_regex) / Split: index, or -1 */
    char *literal;                   /* Split with a String pattern */
    size_t literal_len;
    enum tok_split_behavior behavior;
    int invert;
    char replacement[8];             /* Metaspace: UTF-8 of the replacement char */
    size_t replacement_len;
    enum tok_prepend_scheme prepend;
    int split;                       /* Metaspace */
    int individual_digits;           /* Digits */
    struct tok_pretok *kids;
    size_t nkids;
};

/* ---- added tokens ------------------------------------------------------- */

struct tok_added_token {
    char *content;
    size_t len;
    int32_t id;
    uint8_t normalized, lstrip, rstrip, single_word, special;
};

/* Tokens matched before (raw) or after (normalized) normalization. */
struct tok_added_set {
    struct tok_added_token **tokens; /* sorted by length, longest first */
    size_t n;
    uint8_t first_byte[256];         /* 1 if some token starts with that byte */
};

/* ---- BPE ---------------------------------------------------------------- */

struct tok_bpe {
    mb_strmap *vocab;        /* token bytes -> id (raw bytes for byte-level models) */
    mb_u64map *merges;       /* (left id << 32 | right id) -> (rank << 32 | merged id) */
    int byte_level;          /* initial symbols are bytes, not UTF-8 characters */
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;          /* -1: none */
    int32_t byte_ids[256];   /* byte-level: id of each byte; fallback: <0xHH>; -1 absent */
    int metaspace_cuts;      /* no token holds "▁" after another character: see bpe.c */
};

/* ---- decoders (decode.c) ------------------------------------------------ */

enum tok_dec_kind {
    TOK_DEC_BYTELEVEL,
    TOK_DEC_REPLACE,
    TOK_DEC_BYTEFALLBACK,
    TOK_DEC_FUSE,
    TOK_DEC_STRIP,
    TOK_DEC_METASPACE,
    TOK_DEC_SEQUENCE,
};

struct tok_dec {
    enum tok_dec_kind kind;
    char *pattern;          /* Replace: literal pattern; Metaspace: the replacement char */
    size_t pattern_len;
    char *content;          /* Replace: replacement; Strip: the character stripped */
    size_t content_len;
    int start, stop;        /* Strip */
    int drop_first;         /* Metaspace: the first token loses its replacement chars */
    struct tok_dec *kids;
    size_t nkids;
};

/* ---- the tokenizer ------------------------------------------------------ */

struct mb_tokenizer {
    int is_bytes;                    /* the built-in byte tokenizer */
    char *path;
    struct tok_added_token *added;   /* every added token */
    size_t nadded;
    struct tok_added_set added_raw, added_norm;
    struct tok_norm *norm;           /* NULL: none */
    struct tok_pretok *pretok;       /* NULL: none */
    struct tok_bpe bpe;
    int32_t *prefix, *suffix;        /* post-processor ids around a single sequence */
    size_t nprefix, nsuffix;
    mb_regex **regexes;
    size_t nregexes;
    char **id_text;                  /* id -> token bytes, for decoding and debugging */
    size_t *id_len;
    int64_t nids;                    /* max id + 1 */
    int64_t vocab_size;
    int32_t eod;
    struct tok_dec *dec;             /* NULL: none (tokens joined with " ") */
    struct mb_err_record *dec_err;   /* an unsupported decoder, reported by decode */
    char describe[128];
};

/* load.c */
int tok_load_json(mb_tokenizer *t, const mb_json *root, const char *path);
int tok_add_regex(mb_tokenizer *t, const char *pattern, size_t len, const char *where);

/* normalize.c */
int tok_norm_parse(mb_tokenizer *t, const mb_json *j, struct tok_norm *n, const char *where);
void tok_norm_free(struct tok_norm *n);

/* pretok.c */
int tok_pretok_parse(mb_tokenizer *t, const mb_json *j, struct tok_pretok *p, const char *where);
void tok_pretok_free(struct tok_pretok *p);
int tok_pretok_is_byte_level(const struct tok_pretok *p);

/* decode.c */
int tok_dec_parse(const mb_json *j, struct tok_dec *d, const char *where);
void tok_dec_free(struct tok_dec *d);

/* bpe.c */
int tok_bpe_parse(mb_tokenizer *t, const mb_json *model, const char *where);
void tok_bpe_free(struct tok_bpe *b);

/* added.c */
int tok_added_parse(mb_tokenizer *t, const mb_json *arr, const char *where);
void tok_added_free(mb_tokenizer *t);

/* postproc.c */
int tok_post_parse(mb_tokenizer *t, const mb_json *j, const char *where);

/* ---- encoding (encoder state lives in tokenizer.c) ----------------------- */

struct tok_bpe_scratch;

struct tok_seg {
    uint32_t start, end;
    int match;
};

struct mb_tok_encoder {
    const mb_tokenizer *t;
    mb_regex_state **re_states;  /* one per tokenizer regex */
    struct mb_buf arena;
    struct tok_pieces a, b;
    struct mb_buf tmp;
    struct tok_seg *segs;        /* split scratch */
    size_t segs_cap;
    struct tok_bpe_scratch *bpe;
};

/* Split every non-added piece of IN on the added tokens of SET into OUT. */
void tok_added_split(mb_tok_encoder *e, const struct tok_added_set *set,
                     const struct tok_pieces *in, struct tok_pieces *out);
/* Normalize every non-added piece of IN (appending new text to the arena) into OUT. */
void tok_norm_apply(mb_tok_encoder *e, const struct tok_norm *n, const struct tok_pieces *in,
                    struct tok_pieces *out);
/* Pre-tokenize IN into OUT; IN is used as scratch and left unspecified. */
void tok_pretok_apply(mb_tok_encoder *e, const struct tok_pretok *p, struct tok_pieces *in,
                      struct tok_pieces *out);
/* Append the ids of the word WORD[len] to OUT. */
void tok_bpe_encode_word(mb_tok_encoder *e, const char *word, size_t len, struct mb_ids *out);
struct tok_bpe_scratch *tok_bpe_scratch_new(void);
void tok_bpe_scratch_free(struct tok_bpe_scratch *s);

#endif /* MB_TOK_INTERNAL_H */
