/* tok/train_bpe.c - byte-level BPE training over pre-tokenized piece counts.
 *
 * Feeding counts distinct pieces (raw bytes) in a string map. Training copies them into
 * words of symbol ids and keeps, per adjacent pair, its weighted count and a list of the
 * words that have held it; a max-heap with lazy invalidation (as HF's BpeTrainer) picks
 * the next pair, and only the words on that pair's list are rewritten. Counts stay exact
 * after every merge, which is what makes the learnt ranks replay exactly in HF's encoder.
 * Ties are broken as HF's BpeTrainer breaks them, so on the same pieces both learn the
 * same merges in the same order (HF's trainer, unlike its encoder, does not cut out
 * added tokens, so text containing "<|endoftext|>" is where they part).
 *
 * Rule for editors: a merge must never create a token that already exists (two merges
 * yielding one token would leave HF's encoder a choice training never made); such a
 * pair is dropped instead of merged. No corpus tried so far has produced one. */
#include "tok/train_bpe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"
#include "core/utf8.h"
#include "tok/bytelevel.h"
#include "tok/regex.h"

/* Llama 3's pre-tokenizer pattern, as its tokenizer.json has it (unescaped). */
static const char llama3_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char special_token[] = "<|endoftext|>";
#define SPECIAL_LEN (sizeof special_token - 1)

struct mb_bpe_trainer {
    int vocab_size;      /* asked for */
    int final_size;      /* written by the last write, 0 before */
    mb_regex *re;
    mb_regex_state *st;
    mb_strmap *pieces;   /* piece bytes -> index into counts */
    int64_t *counts;     /* [npieces] occurrences of each piece */
    size_t counts_cap;
};

mb_bpe_trainer *mb_bpe_trainer_new(int vocab_size)
{
    if (vocab_size < 257) {
        mb_err_set(MB_E_INVALID, "vocab_size",
                   "%d is too small: 256 byte tokens and the special token need 257",
                   vocab_size);
        return NULL;
    }
    mb_bpe_trainer *t = mb_xcalloc(1, sizeof *t);
    t->vocab_size = vocab_size;
    t->re = mb_regex_compile(llama3_pattern, sizeof llama3_pattern - 1, "llama3 pattern");
    MB_ASSERT(t->re != NULL);
    t->st = mb_regex_state_new(t->re);
    t->pieces = mb_strmap_new(1 << 16);
    return t;
}

void mb_bpe_trainer_free(mb_bpe_trainer *t)
{
    if (!t)
        return;
    mb_regex_state_free(t->st);
    mb_regex_free(t->re);
    mb_strmap_free(t->pieces);
    free(t->counts);
    free(t);
}

int mb_bpe_trainer_vocab_size(const mb_bpe_trainer *t)
{
    return t->final_size;
}

size_t mb_bpe_trainer_npieces(const mb_bpe_trainer *t)
{
    return mb_strmap_count(t->pieces);
}

/* ---- counting ---------------------------------------------------------------------- */

static void count_piece(mb_bpe_trainer *t, const char *s, size_t len, int64_t n)
{
    int32_t idx = mb_strmap_get(t->pieces, s, len);

    if (idx < 0) {
        size_t next = mb_strmap_count(t->pieces);
        MB_ASSERT(next < INT32_MAX);
        idx = (int32_t)next;
        mb_strmap_put(t->pieces, s, len, idx);
        MB_GROW(t->counts, t->counts_cap, next + 1);
        t->counts[idx] = 0;
    }
    t->counts[idx] += n;
}

/* Length of the UTF-8 character starting at S (S is valid UTF-8). */
static size_t char_len(const char *s)
{
    unsigned char c = (unsigned char)*s;
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* HF Split with behaviour Isolated: each match is a piece and so is each unmatched gap.
 * An empty match yields nothing; the search resumes one character on, so that
 * character falls into the next gap. */
static void count_segment(mb_bpe_trainer *t, const char *s, size_t len)
{
    size_t pos = 0, from = 0, start, end;

    while (from < len && mb_regex_find(t->re, t->st, s, len, from, &start, &end)) {
        if (end == start) {
            from = start + char_len(s + start);
            continue;
        }
        if (start > pos)
            count_piece(t, s + pos, start - pos, 1);
        count_piece(t, s + start, end - start, 1);
        pos = from = end;
    }
    if (pos < len)
        count_piece(t, s + pos, len - pos, 1);
}

/* Offset of the first ill-formed UTF-8 sequence in S[len], or LEN if there is none. */
static size_t invalid_utf8_at(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int bad;

    while (i < len) {
        int n = mb_utf8_seq_len(p + i, len - i, &bad);
        if (n == 0)
            return i;
        i += (size_t)n;
    }
    return len;
}

int mb_bpe_trainer_feed(mb_bpe_trainer *t, const char *text, size_t len)
{
    /* PCRE2 runs with NO_UTF_CHECK, so invalid input must be refused here. */
    size_t bad = invalid_utf8_at(text, len);
    if (bad < len)
        return mb_err_set(MB_E_INVALID, NULL, "invalid UTF-8 at byte %zu of the text", bad);
    /* HF matches added tokens before pre-tokenizing: the special token is never text. */
    const char *end = text + len;
    while (text < end) {
        const char *hit = memmem(text, (size_t)(end - text), special_token, SPECIAL_LEN);
        const char *stop = hit ? hit : end;
        count_segment(t, text, (size_t)(stop - text));
        text = hit ? hit + SPECIAL_LEN : end;
    }
    return 0;
}

struct merge_ctx {
    mb_bpe_trainer *dst;
    const int64_t *src_counts;
};

static void merge_one(const char *key, size_t len, int32_t value, void *ctx)
{
    struct merge_ctx *m = ctx;
    count_piece(m->dst, key, len, m->src_counts[value]);
}

void mb_bpe_trainer_merge(mb_bpe_trainer *dst, const mb_bpe_trainer *src)
{
    struct merge_ctx m = { dst, src->counts };
    mb_strmap_each(src->pieces, merge_one, &m);
}

/* ---- training state ---------------------------------------------------------------- */

struct word {
    size_t off;      /* first symbol in bpe.syms */
    int32_t len;     /* symbols now; shrinks as merges apply */
    int32_t seen;    /* last merge step that rewrote it, to skip repeats in a list */
    int64_t count;   /* occurrences in the corpus */
};

struct pair {
    int32_t a, b;
    int64_t count;   /* exact weighted count of adjacent (a, b) over all words */
    uint32_t head;   /* words that held it: node index + 1, 0 = none; may be stale */
};

struct node {
    int32_t word;
    uint32_t next;   /* node index + 1, 0 = end */
};

struct entry {
    int64_t count;   /* count when pushed; re-checked when popped */
    int32_t pair;
};

struct bpe {
    struct word *words;
    size_t nwords;
    int32_t *syms;              /* every word's symbols, back to back */
    struct pair *pairs;
    size_t npairs, pairs_cap;
    mb_u64map *pair_ids;        /* (a << 32 | b) -> index into pairs */
    struct node *nodes;
    size_t nnodes, nodes_cap;
    struct entry *heap;
    size_t nheap, heap_cap;
    int32_t *fresh;             /* pairs created by the current merge */
    size_t nfresh, fresh_cap;
    struct mb_buf tok_bytes;    /* raw bytes of every token, back to back */
    size_t *tok_off;            /* [ntoks + 1] */
    size_t ntoks;
    mb_strmap *tok_ids;         /* token bytes -> id, to refuse duplicate tokens */
    int32_t (*parts)[2];        /* [vocab] the pair merged into each token >= 256 */
    int32_t byte_rank[256];     /* tie order of the byte tokens, see tie_key() */
};

static void bpe_release(struct bpe *b)
{
    free(b->words);
    free(b->syms);
    free(b->pairs);
    mb_u64map_free(b->pair_ids);
    free(b->nodes);
    free(b->heap);
    free(b->fresh);
    mb_buf_release(&b->tok_bytes);
    free(b->tok_off);
    mb_strmap_free(b->tok_ids);
    free(b->parts);
}

static uint64_t pair_key(int32_t a, int32_t b)
{
    return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

/* Code point of byte B's byte-level spelling. */
static uint32_t spelling_cp(int b)
{
    struct mb_buf s = MB_BUF_INIT;
    char c = (char)b;
    uint32_t cp;

    mb_bytelevel_encode(&c, 1, &s);
    mb_utf8_decode((const unsigned char *)s.data, &cp);
    mb_buf_release(&s);
    return cp;
}

/* Rank each byte by its spelling's code point, as HF's trainer numbers its alphabet. */
static void rank_bytes(struct bpe *b)
{
    uint32_t cp[256];

    for (int i = 0; i < 256; i++)
        cp[i] = spelling_cp(i);
    for (int i = 0; i < 256; i++) {
        b->byte_rank[i] = 0;
        for (int j = 0; j < 256; j++)
            b->byte_rank[i] += cp[j] < cp[i];
    }
}

/* Tie order of token ID. HF's BpeTrainer numbers the byte alphabet in the order of the
 * byte-level spellings' code points and breaks count ties by the smaller pair of those
 * numbers; ranking bytes the same way (merged tokens keep their ids, also in creation
 * order) makes our merges match its merges while byte B keeps id B. */
static int32_t tie_key(const struct bpe *b, int32_t id)
{
    return id < 256 ? b->byte_rank[id] : id;
}

/* Heap order: higher count first, then the smaller pair in tie order, so training is
 * deterministic whatever order the words were counted in. */
static int entry_before(const struct bpe *b, struct entry x, struct entry y)
{
    if (x.count != y.count)
        return x.count > y.count;
    const struct pair *p = &b->pairs[x.pair], *q = &b->pairs[y.pair];
    if (p->a != q->a)
        return tie_key(b, p->a) < tie_key(b, q->a);
    return tie_key(b, p->b) < tie_key(b, q->b);
}

static void heap_push(struct bpe *b, int32_t pair, int64_t count)
{
    MB_GROW(b->heap, b->heap_cap, b->nheap + 1);
    size_t i = b->nheap++;
    struct entry e = { count, pair };

    while (i > 0 && entry_before(b, e, b->heap[(i - 1) / 2])) {
        b->heap[i] = b->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    b->heap[i] = e;
}

static struct entry heap_pop(struct bpe *b)
{
    struct entry top = b->heap[0], last = b->heap[--b->nheap];
    size_t i = 0, n = b->nheap;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && entry_before(b, b->heap[c + 1], b->heap[c]))
            c++;
        if (!entry_before(b, b->heap[c], last))
            break;
        b->heap[i] = b->heap[c];
        i = c;
    }
    if (n > 0)
        b->heap[i] = last;
    return top;
}

/* Add DELTA to the count of (X, Y) as seen in word W, creating the pair on first use
 * and remembering W as a holder when the pair gains occurrences. */
static void pair_add(struct bpe *b, int32_t x, int32_t y, int64_t delta, int32_t w)
{
    uint64_t key = pair_key(x, y), idx;

    if (!mb_u64map_get(b->pair_ids, key, &idx)) {
        MB_ASSERT(delta > 0 && b->npairs < INT32_MAX);
        idx = b->npairs++;
        MB_GROW(b->pairs, b->pairs_cap, b->npairs);
        b->pairs[idx] = (struct pair){ x, y, 0, 0 };
        mb_u64map_put(b->pair_ids, key, idx);
        MB_GROW(b->fresh, b->fresh_cap, b->nfresh + 1);
        b->fresh[b->nfresh++] = (int32_t)idx;
    }
    struct pair *p = &b->pairs[idx];
    p->count += delta;
    if (delta <= 0 || (p->head && b->nodes[p->head - 1].word == w))
        return;
    MB_ASSERT(b->nnodes < UINT32_MAX);
    MB_GROW(b->nodes, b->nodes_cap, b->nnodes + 1);
    b->nodes[b->nnodes] = (struct node){ w, p->head };
    p->head = (uint32_t)++b->nnodes;
}

/* Queue every pair the last merge created; they are the only pairs whose counts grew. */
static void push_fresh(struct bpe *b)
{
    for (size_t i = 0; i < b->nfresh; i++) {
        int32_t p = b->fresh[i];
        if (b->pairs[p].count > 0)
            heap_push(b, p, b->pairs[p].count);
    }
    b->nfresh = 0;
}

static void add_token(struct bpe *b, const char *bytes, size_t len)
{
    mb_buf_add(&b->tok_bytes, bytes, len);
    b->tok_off[b->ntoks + 1] = b->tok_bytes.len;
    mb_strmap_put(b->tok_ids, bytes, len, (int32_t)b->ntoks);
    b->ntoks++;
}

struct load_ctx {
    struct bpe *b;
    const int64_t *counts;
    size_t nsyms;
};

/* Word index = piece index, so the words array needs no map of its own. */
static void load_word(const char *key, size_t len, int32_t value, void *ctx)
{
    struct load_ctx *l = ctx;
    struct word *w = &l->b->words[value];

    MB_ASSERT(len < INT32_MAX);
    *w = (struct word){ l->nsyms, (int32_t)len, 0, l->counts[value] };
    for (size_t i = 0; i < len; i++)
        l->b->syms[l->nsyms++] = (unsigned char)key[i];
}

static void add_len(const char *key, size_t len, int32_t value, void *ctx)
{
    (void)key;
    (void)value;
    *(size_t *)ctx += len;
}

/* Copy T's pieces into words of byte ids. Returns the number of symbols. */
static size_t load_words(struct bpe *b, const mb_bpe_trainer *t)
{
    size_t total = 0;
    struct load_ctx l = { b, t->counts, 0 };

    mb_strmap_each(t->pieces, add_len, &total);
    b->nwords = mb_strmap_count(t->pieces);
    b->words = mb_xcalloc(b->nwords + 1, sizeof *b->words);
    b->syms = mb_xmalloc(sizeof *b->syms * (total + 1));
    mb_strmap_each(t->pieces, load_word, &l);
    return total;
}

/* Set up words, the 256 byte tokens and the initial pair counts from T's pieces. */
static void bpe_init(struct bpe *b, const mb_bpe_trainer *t)
{
    memset(b, 0, sizeof *b);
    size_t nsyms = load_words(b, t);
    /* Each merge removes at least one symbol, so a huge VOCAB_SIZE on a small corpus
     * must not size the token tables. */
    size_t max_toks = MB_MIN((size_t)t->vocab_size, 257 + nsyms);

    rank_bytes(b);
    b->pair_ids = mb_u64map_new(1 << 16);
    b->tok_off = mb_xcalloc(max_toks + 1, sizeof *b->tok_off);
    b->parts = mb_xcalloc(max_toks, sizeof *b->parts);
    b->tok_ids = mb_strmap_new(max_toks);
    for (int i = 0; i < 256; i++) {
        char c = (char)i;
        add_token(b, &c, 1);
    }
    /* Reserve the special token's bytes so no merge can produce it. */
    mb_strmap_put(b->tok_ids, special_token, SPECIAL_LEN, t->vocab_size - 1);
    for (size_t w = 0; w < b->nwords; w++) {
        const int32_t *s = b->syms + b->words[w].off;
        for (int32_t i = 0; i + 1 < b->words[w].len; i++)
            pair_add(b, s[i], s[i + 1], b->words[w].count, (int32_t)w);
    }
    push_fresh(b);
}

/* ---- merging ----------------------------------------------------------------------- */

/* Replace each (A, B) in word W by C, left to right as HF's encoder does (so "aaa" under
 * (a, a) becomes "aa a"). Each occurrence moves its neighbours' pairs from A or B to C;
 * the left neighbour is read from the rewritten prefix, so back-to-back occurrences
 * are counted once. */
static void merge_word(struct bpe *b, int32_t w, int32_t a, int32_t bb, int32_t c)
{
    int32_t *s = b->syms + b->words[w].off;
    int32_t n = b->words[w].len, j = 0;
    int64_t cnt = b->words[w].count;

    for (int32_t i = 0; i < n;) {
        if (i + 1 == n || s[i] != a || s[i + 1] != bb) {
            s[j++] = s[i++];
            continue;
        }
        if (j > 0) {
            pair_add(b, s[j - 1], a, -cnt, w);
            pair_add(b, s[j - 1], c, cnt, w);
        }
        if (i + 2 < n) {
            pair_add(b, bb, s[i + 2], -cnt, w);
            pair_add(b, c, s[i + 2], cnt, w);
        }
        pair_add(b, a, bb, -cnt, w);
        s[j++] = c;
        i += 2;
    }
    b->words[w].len = j;
}

/* Turn pair P into the new token C in every word that holds it. */
static void apply_merge(struct bpe *b, int32_t p, int32_t c)
{
    int32_t a = b->pairs[p].a, bb = b->pairs[p].b;

    /* Walk by index: merge_word may move the node pool. */
    for (uint32_t n = b->pairs[p].head; n; n = b->nodes[n - 1].next) {
        int32_t w = b->nodes[n - 1].word;
        if (b->words[w].seen == c)
            continue;
        b->words[w].seen = c;
        merge_word(b, w, a, bb, c);
    }
    MB_ASSERT(b->pairs[p].count == 0);
    push_fresh(b);
}

/* The most frequent pair, or -1 when no pair is left. Entries hold the count at push
 * time; counts of queued pairs only fall, so an outdated top is re-queued with its
 * current count and the first top that is up to date is the true maximum. */
static int32_t pop_best(struct bpe *b)
{
    while (b->nheap > 0) {
        struct entry e = heap_pop(b);
        int64_t now = b->pairs[e.pair].count;
        if (now == e.count)
            return e.pair;
        if (now > 0)
            heap_push(b, e.pair, now);
    }
    return -1;
}

/* Append the raw bytes of token ID to OUT. */
static void add_bytes(struct mb_buf *out, const struct bpe *b, int32_t id)
{
    mb_buf_add(out, b->tok_bytes.data + b->tok_off[id], b->tok_off[id + 1] - b->tok_off[id]);
}

/* Merge until NMERGES tokens were added or no pair is left. */
static void train(struct bpe *b, int nmerges)
{
    struct mb_buf cat = MB_BUF_INIT;

    while (b->ntoks < 256 + (size_t)nmerges) {
        int32_t p = pop_best(b);
        if (p < 0)
            break;
        int32_t a = b->pairs[p].a, bb = b->pairs[p].b;
        mb_buf_reset(&cat);
        add_bytes(&cat, b, a);
        add_bytes(&cat, b, bb);
        /* Dropped pairs are never queued again: only new pairs are pushed. */
        if (mb_strmap_get(b->tok_ids, cat.data, cat.len) >= 0)
            continue;
        int32_t c = (int32_t)b->ntoks;
        b->parts[c][0] = a;
        b->parts[c][1] = bb;
        add_token(b, cat.data, cat.len);
        apply_merge(b, p, c);
    }
    mb_buf_release(&cat);
}

/* ---- tokenizer.json ---------------------------------------------------------------- */

/* Append token ID's byte-level spelling as a JSON string; TMP is scratch. */
static void add_token_string(struct mb_buf *out, const struct bpe *b, int32_t id,
                             struct mb_buf *tmp)
{
    size_t off = b->tok_off[id], len = b->tok_off[id + 1] - off;

    mb_buf_reset(tmp);
    mb_bytelevel_encode(b->tok_bytes.data + off, len, tmp);
    mb_json_escape(out, tmp->data, tmp->len);
}

/* Everything before the model's vocab, in HF's key order. */
static void json_head(struct mb_buf *out, int special_id)
{
    mb_buf_adds(out, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\n");
    mb_buf_addf(out, "\"added_tokens\":[{\"id\":%d,\"content\":\"%s\",\"single_word\":false,"
                     "\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
                     "\"special\":true}],\n",
                special_id, special_token);
    mb_buf_adds(out, "\"normalizer\":null,\n\"pre_tokenizer\":{\"type\":\"Sequence\","
                     "\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":");
    mb_json_escape(out, llama3_pattern, sizeof llama3_pattern - 1);
    mb_buf_adds(out, "},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\","
                     "\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]},\n"
                     "\"post_processor\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
                     "\"trim_offsets\":false,\"use_regex\":true},\n"
                     "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
                     "\"trim_offsets\":true,\"use_regex\":true},\n"
                     "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
                     "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,"
                     "\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,\n");
}

/* The vocab (special token last, as GPT-2's files have it) and the merges by rank. */
static void json_model(struct mb_buf *out, const struct bpe *b)
{
    struct mb_buf tmp = MB_BUF_INIT;

    mb_buf_adds(out, "\"vocab\":{");
    for (size_t id = 0; id < b->ntoks; id++) {
        add_token_string(out, b, (int32_t)id, &tmp);
        mb_buf_addf(out, ":%zu,%s", id, id % 8 == 7 ? "\n" : "");
    }
    mb_buf_addf(out, "\"%s\":%zu},\n\"merges\":[", special_token, b->ntoks);
    for (size_t id = 256; id < b->ntoks; id++) {
        mb_buf_adds(out, id > 256 ? ",\n[" : "[");
        add_token_string(out, b, b->parts[id][0], &tmp);
        mb_buf_addc(out, ',');
        add_token_string(out, b, b->parts[id][1], &tmp);
        mb_buf_addc(out, ']');
    }
    mb_buf_adds(out, "]}}\n");
    mb_buf_release(&tmp);
}

static int write_json(const struct bpe *b, const char *path)
{
    struct mb_buf out = MB_BUF_INIT;
    struct mb_outfile of = MB_OUTFILE_INIT;

    json_head(&out, (int)b->ntoks);
    json_model(&out, b);
    if (mb_outfile_open(&of, path) != 0) {
        mb_buf_release(&out);
        return -1;
    }
    mb_outfile_write(&of, out.data, out.len);
    mb_buf_release(&out);
    return mb_outfile_commit(&of);
}

int mb_bpe_trainer_write(mb_bpe_trainer *t, const char *path)
{
    struct bpe b;

    bpe_init(&b, t);
    train(&b, t->vocab_size - 257);
    int rc = write_json(&b, path);
    if (rc == 0)
        t->final_size = (int)b.ntoks + 1;
    bpe_release(&b);
    return rc;
}
