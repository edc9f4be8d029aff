/* tok/bpe.c - the BPE model: vocabulary and merges from tokenizer.json, and the merge
 * loop applied to one pre-token ("word").
 *
 * The merge loop is HF's (tokenizers/src/models/bpe/word.rs): a min-heap of candidate
 * pairs ordered by (rank, position); a popped pair is applied only if it still exists,
 * then the pairs it forms with its neighbours are pushed. Results are cached per
 * encoder, keyed by the word's bytes, so frequent words cost one hash lookup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "tok/bytelevel.h"
#include "tok/internal.h"

/* ---- loading ------------------------------------------------------------ */

struct vocab_ctx {
    mb_tokenizer *t;
    const char *where;
    int failed;
};

/* Vocabulary keys as the model sees its input: raw bytes for byte-level models. */
static int vocab_key(const struct tok_bpe *b, const char *s, size_t len, struct mb_buf *out)
{
    mb_buf_reset(out);
    if (!b->byte_level) {
        mb_buf_add(out, s, len);
        return 0;
    }
    return mb_bytelevel_decode(s, len, out);
}

static int parse_vocab(mb_tokenizer *t, const mb_json *vocab, const char *where)
{
    struct tok_bpe *b = &t->bpe;
    struct mb_buf key = MB_BUF_INIT;
    void *it = NULL;
    const char *name;
    mb_json *val;

    if (!vocab || mb_json_type_of(vocab) != MB_JSON_OBJECT) {
        mb_buf_release(&key);
        return mb_err_set(MB_E_INVALID, where, "model.vocab is not an object");
    }
    b->vocab = mb_strmap_new(mb_json_len(vocab));
    while (mb_json_next(vocab, &it, &name, &val)) {
        if (mb_json_type_of(val) != MB_JSON_INT || mb_json_int(val) < 0 ||
            mb_json_int(val) > TOK_MAX_ID) {
            mb_buf_release(&key);
            return mb_err_set(MB_E_INVALID, where,
                              "model.vocab['%s'] is not a valid id (0 to %d)", name, TOK_MAX_ID);
        }
        int32_t id = (int32_t)mb_json_int(val);
        t->nids = MB_MAX(t->nids, (int64_t)id + 1);
        /* HF's object keys may hold NUL only through escapes; names here are C strings */
        if (vocab_key(b, name, strlen(name), &key) == 0)
            mb_strmap_put(b->vocab, key.data, key.len, id);
    }
    mb_buf_release(&key);
    return 0;
}

/* Split merge entry I into its two halves (legacy "a b" string or ["a", "b"]). */
static int merge_parts(const mb_json *m, const char **a, size_t *alen, const char **c,
                       size_t *clen, const char *where, size_t i)
{
    size_t len;
    const char *s = mb_json_str(m, &len);

    if (s) {
        const char *sp = memchr(s, ' ', len);
        if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s)))
            return mb_err_set(MB_E_INVALID, where, "model.merges[%zu] is not two tokens "
                              "separated by one space", i);
        *a = s;
        *alen = (size_t)(sp - s);
        *c = sp + 1;
        *clen = len - *alen - 1;
        return 0;
    }
    if (mb_json_len(m) == 2 && (*a = mb_json_str(mb_json_at(m, 0), alen)) &&
        (*c = mb_json_str(mb_json_at(m, 1), clen)))
        return 0;
    return mb_err_set(MB_E_INVALID, where, "model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]",
                      i);
}

static int32_t lookup(const struct tok_bpe *b, const char *s, size_t len, struct mb_buf *key)
{
    if (vocab_key(b, s, len, key) != 0)
        return -1;
    return mb_strmap_get(b->vocab, key->data, key->len);
}

static int parse_merges(mb_tokenizer *t, const mb_json *merges, const char *where)
{
    struct tok_bpe *b = &t->bpe;
    struct mb_buf key = MB_BUF_INIT, joined = MB_BUF_INIT;
    size_t n = mb_json_len(merges);
    int rc = 0;

    if (merges && mb_json_type_of(merges) != MB_JSON_ARRAY)
        return mb_err_set(MB_E_INVALID, where, "model.merges is not an array");
    b->merges = mb_u64map_new(n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *a = NULL, *c = NULL;
        size_t alen = 0, clen = 0;
        if ((rc = merge_parts(mb_json_at(merges, i), &a, &alen, &c, &clen, where, i)) != 0)
            break;
        mb_buf_reset(&joined);
        mb_buf_add(&joined, a, alen);
        mb_buf_add(&joined, c, clen);
        int32_t ia = lookup(b, a, alen, &key), ic = lookup(b, c, clen, &key);
        int32_t ij = lookup(b, joined.data, joined.len, &key);
        if (ia < 0 || ic < 0 || ij < 0) {
            rc = mb_err_set(MB_E_INVALID, where, "model.merges[%zu] uses a token that is not in "
                            "the vocabulary", i);
            break;
        }
        mb_u64map_put(b->merges, (uint64_t)ia << 32 | (uint32_t)ic, (uint64_t)i << 32 | (uint32_t)ij);
    }
    mb_buf_release(&key);
    mb_buf_release(&joined);
    return rc;
}

static void find_byte_ids(struct tok_bpe *b)
{
    for (int c = 0; c < 256; c++) {
        char name[8];
        b->byte_ids[c] = -1;
        if (b->byte_level) {
            char raw = (char)c;
            b->byte_ids[c] = mb_strmap_get(b->vocab, &raw, 1);
        } else if (b->byte_fallback) {
            snprintf(name, sizeof name, "<0x%02X>", c);
            b->byte_ids[c] = mb_strmap_get(b->vocab, name, strlen(name));
        }
    }
}

/* SentencePiece-style vocabularies (no pre-tokenizer) see a whole document as one
 * word. When no vocabulary entry contains U+2581 right after a character other than
 * U+2581, no token, and so no merge, can span the point before a run of "▁" that follows
 * another character. BPE on the whole word then equals BPE on the pieces cut there,
 * which can be cached like pre-tokens. tests/tools check this against HF on real text. */
static const char metaspace[] = "\xE2\x96\x81";

static void metaspace_cut_check(const char *key, size_t len, int32_t id, void *ctx)
{
    int *ok = ctx;
    (void)id;
    for (size_t i = 1; *ok && i + 3 <= len; i++)
        if (memcmp(key + i, metaspace, 3) == 0 &&
            !(i >= 3 && memcmp(key + i - 3, metaspace, 3) == 0))
            *ok = 0;
}

static int check_model_options(const mb_json *model, const char *where)
{
    const char *type = mb_json_str(mb_json_get(model, "type"), NULL);
    const char *prefix = mb_json_str(mb_json_get(model, "continuing_subword_prefix"), NULL);
    const char *suffix = mb_json_str(mb_json_get(model, "end_of_word_suffix"), NULL);
    const mb_json *dropout = mb_json_get(model, "dropout");

    if (type && strcmp(type, "BPE") != 0)
        return mb_err_set(MB_E_UNSUPPORTED, where, "model type '%s' is not supported (only BPE)",
                          type);
    if ((prefix && prefix[0]) || (suffix && suffix[0]))
        return mb_err_set(MB_E_UNSUPPORTED, where,
                          "continuing_subword_prefix / end_of_word_suffix are not supported");
    if (dropout && mb_json_type_of(dropout) != MB_JSON_NULL && mb_json_number(dropout) > 0)
        return mb_err_set(MB_E_UNSUPPORTED, where, "BPE dropout makes encoding random; "
                          "set it to null");
    return 0;
}

int tok_bpe_parse(mb_tokenizer *t, const mb_json *model, const char *where)
{
    struct tok_bpe *b = &t->bpe;
    struct mb_buf key = MB_BUF_INIT;

    if (check_model_options(model, where) != 0 ||
        parse_vocab(t, mb_json_get(model, "vocab"), where) != 0 ||
        parse_merges(t, mb_json_get(model, "merges"), where) != 0)
        return -1;
    b->byte_fallback = mb_json_is_true(mb_json_get(model, "byte_fallback"));
    b->fuse_unk = mb_json_is_true(mb_json_get(model, "fuse_unk"));
    b->ignore_merges = mb_json_is_true(mb_json_get(model, "ignore_merges"));
    b->unk_id = -1;
    size_t len;
    const char *unk = mb_json_str(mb_json_get(model, "unk_token"), &len);
    if (unk) {
        mb_buf_add(&key, unk, len);
        b->unk_id = mb_strmap_get(b->vocab, key.data, key.len);
        if (b->unk_id < 0 && b->byte_level && lookup(b, unk, len, &key) >= 0)
            b->unk_id = mb_strmap_get(b->vocab, key.data, key.len);
        if (b->unk_id < 0) {
            mb_buf_release(&key);
            return mb_err_set(MB_E_INVALID, where, "unk_token '%s' is not in the vocabulary", unk);
        }
    }
    mb_buf_release(&key);
    find_byte_ids(b);
    if (!b->byte_level && !t->pretok) {
        b->metaspace_cuts = 1;
        mb_strmap_each(b->vocab, metaspace_cut_check, &b->metaspace_cuts);
    }
    return 0;
}

void tok_bpe_free(struct tok_bpe *b)
{
    mb_strmap_free(b->vocab);
    mb_u64map_free(b->merges);
}

/* ---- encoding ----------------------------------------------------------- */

struct symbol {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    int32_t alive;
};

struct cand {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
};

/* Word cache: word bytes -> slice of a shared id array. Cleared when it grows large. */
#define CACHE_MAX_WORD 128
#define CACHE_MAX_ENTRIES (1 << 20)

struct tok_bpe_scratch {
    struct symbol *sym;
    size_t sym_cap;
    struct cand *heap;
    size_t heap_len, heap_cap;
    mb_strmap *cache;            /* word -> index into slices */
    struct { uint32_t off, len; } *slices;
    size_t nslices, slices_cap;
    int32_t *cache_ids;
    size_t ncache_ids, cache_ids_cap;
};

struct tok_bpe_scratch *tok_bpe_scratch_new(void)
{
    struct tok_bpe_scratch *s = mb_xcalloc(1, sizeof *s);

    s->cache = mb_strmap_new(1 << 14);
    return s;
}

void tok_bpe_scratch_free(struct tok_bpe_scratch *s)
{
    if (!s)
        return;
    free(s->sym);
    free(s->heap);
    mb_strmap_free(s->cache);
    free(s->slices);
    free(s->cache_ids);
    free(s);
}

static int cand_less(const struct cand *a, const struct cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct tok_bpe_scratch *s, struct cand c)
{
    MB_GROW(s->heap, s->heap_cap, s->heap_len + 1);
    size_t i = s->heap_len++;
    while (i > 0 && cand_less(&c, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = c;
}

static struct cand heap_pop(struct tok_bpe_scratch *s)
{
    struct cand top = s->heap[0], last = s->heap[--s->heap_len];
    size_t i = 0, n = s->heap_len;

    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const struct cand *bc = &last;
        if (l < n && cand_less(&s->heap[l], bc)) {
            best = l;
            bc = &s->heap[l];
        }
        if (l + 1 < n && cand_less(&s->heap[l + 1], bc))
            best = l + 1;
        if (best == i)
            break;
        s->heap[i] = s->heap[best];
        i = best;
    }
    if (n > 0)
        s->heap[i] = last;
    return top;
}

static int pair_merge(const struct tok_bpe *b, int32_t left, int32_t right, struct cand *c)
{
    uint64_t v;

    if (!mb_u64map_get(b->merges, (uint64_t)left << 32 | (uint32_t)right, &v))
        return 0;
    c->rank = (uint32_t)(v >> 32);
    c->new_id = (int32_t)(uint32_t)v;
    return 1;
}

static void add_symbol(struct tok_bpe_scratch *s, size_t *n, int32_t id)
{
    MB_GROW(s->sym, s->sym_cap, *n + 1);
    s->sym[*n] = (struct symbol){ id, (int32_t)*n - 1, (int32_t)*n + 1, 1 };
    (*n)++;
}

/* Initial symbols: bytes, or characters with byte fallback / unk (HF merge_word). */
static size_t initial_symbols(const struct tok_bpe *b, struct tok_bpe_scratch *s,
                              const char *w, size_t len)
{
    size_t n = 0;
    int last_was_unk = 0;

    for (size_t i = 0; i < len;) {
        size_t k = b->byte_level ? 1 : (size_t)mb_utf8_seq_len((const unsigned char *)w + i,
                                                               len - i, &(int){ 0 });
        if (k == 0)
            k = 1;
        int32_t id = b->byte_level ? b->byte_ids[(unsigned char)w[i]]
                                   : mb_strmap_get(b->vocab, w + i, k);
        int all_bytes = b->byte_fallback;
        for (size_t j = 0; id < 0 && all_bytes && j < k; j++)
            all_bytes = b->byte_ids[(unsigned char)w[i + j]] >= 0;
        if (id >= 0) {
            add_symbol(s, &n, id);
            last_was_unk = 0;
        } else if (all_bytes) {
            for (size_t j = 0; j < k; j++)
                add_symbol(s, &n, b->byte_ids[(unsigned char)w[i + j]]);
            last_was_unk = 0;
        } else if (b->unk_id >= 0) {
            if (!(b->fuse_unk && last_was_unk))
                add_symbol(s, &n, b->unk_id);
            last_was_unk = 1;
        } /* else: HF drops a character it cannot represent */
        i += k;
    }
    if (n > 0)
        s->sym[n - 1].next = -1;
    return n;
}

static void merge_all(const struct tok_bpe *b, struct tok_bpe_scratch *s, size_t n)
{
    struct cand c;

    s->heap_len = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (pair_merge(b, s->sym[i].id, s->sym[i + 1].id, &c)) {
            c.pos = (int32_t)i;
            heap_push(s, c);
        }
    }
    while (s->heap_len > 0) {
        struct cand top = heap_pop(s);
        struct symbol *left = &s->sym[top.pos];
        if (!left->alive || left->next < 0)
            continue;
        struct symbol *right = &s->sym[left->next];
        struct cand now;
        if (!pair_merge(b, left->id, right->id, &now) || now.new_id != top.new_id)
            continue; /* stale: the pair was changed by an earlier merge */
        left->id = top.new_id;
        right->alive = 0;
        left->next = right->next;
        if (right->next >= 0)
            s->sym[right->next].prev = top.pos;
        if (left->prev >= 0 && pair_merge(b, s->sym[left->prev].id, left->id, &c)) {
            c.pos = left->prev;
            heap_push(s, c);
        }
        if (left->next >= 0 && pair_merge(b, left->id, s->sym[left->next].id, &c)) {
            c.pos = top.pos;
            heap_push(s, c);
        }
    }
}

static void encode_uncached(const struct tok_bpe *b, struct tok_bpe_scratch *s, const char *w,
                            size_t len, struct mb_ids *out)
{
    if (b->ignore_merges) {
        int32_t whole = mb_strmap_get(b->vocab, w, len);
        if (whole >= 0) {
            mb_ids_push(out, whole);
            return;
        }
    }
    size_t n = initial_symbols(b, s, w, len);
    merge_all(b, s, n);
    for (int32_t i = n ? 0 : -1; i >= 0; i = s->sym[i].next)
        mb_ids_push(out, s->sym[i].id);
}

static void cache_store(struct tok_bpe_scratch *s, const char *w, size_t len,
                        const int32_t *ids, size_t n)
{
    if (s->nslices >= CACHE_MAX_ENTRIES) {
        mb_strmap_free(s->cache);
        s->cache = mb_strmap_new(1 << 14);
        s->nslices = s->ncache_ids = 0;
    }
    MB_GROW(s->cache_ids, s->cache_ids_cap, s->ncache_ids + n);
    if (n > 0) /* a word of bytes outside the vocabulary has no ids (and IDS is NULL) */
        memcpy(s->cache_ids + s->ncache_ids, ids, n * sizeof *ids);
    MB_GROW(s->slices, s->slices_cap, s->nslices + 1);
    s->slices[s->nslices].off = (uint32_t)s->ncache_ids;
    s->slices[s->nslices].len = (uint32_t)n;
    mb_strmap_put(s->cache, w, len, (int32_t)s->nslices++);
    s->ncache_ids += n;
}

static void encode_cached(mb_tok_encoder *e, const char *w, size_t len, struct mb_ids *out);

/* Cut W before every run of "▁" that follows another character (see metaspace_cut_check). */
static void encode_metaspace_pieces(mb_tok_encoder *e, const char *w, size_t len,
                                    struct mb_ids *out)
{
    size_t start = 0;

    for (size_t i = 1; i + 3 <= len; i++) {
        if (memcmp(w + i, metaspace, 3) != 0 || (i >= 3 && memcmp(w + i - 3, metaspace, 3) == 0))
            continue;
        encode_cached(e, w + start, i - start, out);
        start = i;
        i += 2;
    }
    encode_cached(e, w + start, len - start, out);
}

void tok_bpe_encode_word(mb_tok_encoder *e, const char *w, size_t len, struct mb_ids *out)
{
    if (e->t->bpe.metaspace_cuts)
        encode_metaspace_pieces(e, w, len, out);
    else
        encode_cached(e, w, len, out);
}

static void encode_cached(mb_tok_encoder *e, const char *w, size_t len, struct mb_ids *out)
{
    const struct tok_bpe *b = &e->t->bpe;
    struct tok_bpe_scratch *s = e->bpe;

    if (len == 0)
        return;
    if (len > CACHE_MAX_WORD) {
        encode_uncached(b, s, w, len, out);
        return;
    }
    int32_t hit = mb_strmap_get(s->cache, w, len);
    if (hit >= 0) {
        for (uint32_t k = 0; k < s->slices[hit].len; k++)
            mb_ids_push(out, s->cache_ids[s->slices[hit].off + k]);
        return;
    }
    size_t before = out->len;
    encode_uncached(b, s, w, len, out);
    cache_store(s, w, len, out->len > before ? out->v + before : NULL, out->len - before);
}
