/* core/config.c - schema-driven config: YAML recipes (libyaml), overrides, getters.
 *
 * Each schema key has a slot holding its parsed value and where it came from. A value is
 * parsed into a scratch slot first and moved in only when it is valid, so a failed set
 * leaves the old value. Printing and JSON walk the schema in order and open a section
 * whenever the dotted prefix changes (mb_config_new checks sections are contiguous).
 */
#include "core/config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"
#include "core/utf8.h"

struct slot {
    bool set;
    int64_t i;
    double d;
    bool b;
    char *s;      /* STRING */
    char **items; /* LIST: items[n] */
    size_t n;
    char *where; /* NULL for the default */
};

struct mb_config {
    const struct mb_config_key *schema;
    size_t n;
    struct slot *slots;
    mb_strmap *index; /* key -> schema index */
    const struct mb_config_alias *aliases;
    size_t naliases;
    mb_strmap *alias_index; /* alias -> schema index of its key; NULL: no aliases */
};

const char *mb_config_type_name(enum mb_config_type type)
{
    static const char *names[] = { "an integer", "a number", "a boolean (true or false)",
                                   "a string", "a list" };
    return names[type];
}

static void slot_release(struct slot *s)
{
    free(s->s);
    for (size_t k = 0; k < s->n; k++)
        free(s->items[k]);
    free(s->items);
    free(s->where);
    memset(s, 0, sizeof *s);
}

/* The schema index of KEY or of the key KEY is an alias of; -1 for neither. */
static int key_index(const mb_config *cfg, const char *key)
{
    int idx = mb_strmap_get(cfg->index, key, strlen(key));

    if (idx < 0 && cfg->alias_index)
        idx = mb_strmap_get(cfg->alias_index, key, strlen(key));
    return idx;
}

static int is_alias(const mb_config *cfg, const char *key)
{
    return cfg->alias_index && mb_strmap_get(cfg->alias_index, key, strlen(key)) >= 0;
}

/* ---- "did you mean" ------------------------------------------------------ */

static size_t levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = mb_xmalloc((lb + 1) * sizeof *row);

    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = MB_MIN(best, up + 1);
            best = MB_MIN(best, row[j - 1] + 1);
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

static const char *last_part(const char *key)
{
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

/* The schema key closest to KEY: within an edit distance of a third of its length
 * (at least 2), or else one whose last part equals KEY's ("lr" -> "optimizer.lr").
 * NULL when nothing is close. */
static const char *suggest_key(const mb_config *cfg, const char *key)
{
    const char *best = NULL;
    size_t best_d = MB_MAX((size_t)2, strlen(key) / 3) + 1;

    for (size_t i = 0; i < cfg->n; i++) {
        size_t d = levenshtein(key, cfg->schema[i].key);
        if (d < best_d) {
            best_d = d;
            best = cfg->schema[i].key;
        }
    }
    for (size_t i = 0; !best && i < cfg->n; i++)
        if (strcmp(last_part(cfg->schema[i].key), last_part(key)) == 0)
            best = cfg->schema[i].key;
    return best;
}

static int unknown_key(const mb_config *cfg, enum mb_errc code, const char *where,
                       const char *key)
{
    const char *near = suggest_key(cfg, key);

    if (near)
        return mb_err_set(code, where, "unknown key '%s' (did you mean '%s'?)", key, near);
    return mb_err_set(code, where, "unknown key '%s'", key);
}

/* ---- parsing one value ---------------------------------------------------- */

static int parse_bool(const char *t, bool *out)
{
    static const char *yes[] = { "true", "yes", "on", "1" };
    static const char *no[] = { "false", "no", "off", "0" };

    for (size_t k = 0; k < MB_ARRAY_LEN(yes); k++) {
        if (strcasecmp(t, yes[k]) == 0)
            return *out = true, 0;
        if (strcasecmp(t, no[k]) == 0)
            return *out = false, 0;
    }
    return -1;
}

/* 1 if T is one of the '|'-separated CHOICES. */
static int in_choices(const char *choices, const char *t)
{
    size_t len = strlen(t);

    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, t, n) == 0)
            return 1;
        p += n + (bar != NULL);
    }
    return 0;
}

static void list_add(struct slot *s, const char *item, size_t len)
{
    s->items = mb_xrealloc(s->items, (s->n + 1) * sizeof *s->items);
    s->items[s->n++] = mb_xstrndup(item, len);
}

/* Split T on spaces, tabs, newlines and commas. */
static void list_split(struct slot *s, const char *t)
{
    static const char seps[] = " \t\r\n,";

    while (*t) {
        t += strspn(t, seps);
        size_t n = strcspn(t, seps);
        if (n)
            list_add(s, t, n);
        t += n;
    }
}

static int bad_value(const struct mb_config_key *k, const char *t, enum mb_errc code,
                     const char *where)
{
    return mb_err_set(code, where, "key '%s' expects %s, got '%s'", k->key,
                      mb_config_type_name(k->type), t);
}

/* Parse the text T for key K into the empty slot S. */
static int parse_text(const struct mb_config_key *k, const char *t, struct slot *s,
                      enum mb_errc code, const char *where)
{
    char *end;

    errno = 0;
    switch (k->type) {
    case MB_CONFIG_INT:
        s->i = strtoll(t, &end, 10);
        if (!*t || isspace((unsigned char)*t) || *end || errno == ERANGE)
            return bad_value(k, t, code, where);
        break;
    case MB_CONFIG_FLOAT:
        s->d = strtod(t, &end);
        if (!*t || isspace((unsigned char)*t) || *end || !isfinite(s->d))
            return bad_value(k, t, code, where);
        break;
    case MB_CONFIG_BOOL:
        if (parse_bool(t, &s->b) != 0)
            return bad_value(k, t, code, where);
        break;
    case MB_CONFIG_STRING:
        if (k->choices && !in_choices(k->choices, t))
            return mb_err_set(code, where, "key '%s' must be one of %s, got '%s'", k->key,
                              k->choices, t);
        s->s = mb_xstrdup(t);
        break;
    case MB_CONFIG_LIST:
        list_split(s, t);
        break;
    }
    s->set = true;
    return 0;
}

/* Replace slot IDX by the parsed slot NEW (taken over), recording WHERE. */
static void slot_commit(mb_config *cfg, int idx, struct slot *new, const char *where)
{
    slot_release(&cfg->slots[idx]);
    new->where = where ? mb_xstrdup(where) : NULL;
    cfg->slots[idx] = *new;
}

static int is_null_text(const char *t)
{
    return !*t || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
           strcmp(t, "NULL") == 0;
}

static int set_text(mb_config *cfg, int idx, const char *t, enum mb_errc code,
                    const char *where)
{
    struct slot s = { 0 };

    /* a recipe is UTF-8 (libyaml checks); a command-line word may not be, and the
     * config is printed back as YAML and stored as JSON, which must stay readable */
    if (!mb_utf8_is_valid(t, strlen(t)))
        return mb_err_set(code, where, "the value of %s is not valid UTF-8",
                          cfg->schema[idx].key);
    if (!is_null_text(t) && parse_text(&cfg->schema[idx], t, &s, code, where) != 0) {
        slot_release(&s);
        return -1;
    }
    slot_commit(cfg, idx, &s, where);
    return 0;
}

int mb_config_set(mb_config *cfg, const char *key, const char *value, const char *where)
{
    int idx = key_index(cfg, key);

    if (idx < 0)
        return unknown_key(cfg, MB_E_INVALID, where, key);
    return set_text(cfg, idx, value, MB_E_INVALID, where);
}

int mb_config_is_override(const char *arg)
{
    const char *eq = strchr(arg, '=');

    if (!eq || eq == arg || !isalpha((unsigned char)arg[0]))
        return 0;
    for (const char *p = arg; p < eq; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.')
            return 0;
    return 1;
}

int mb_config_override(mb_config *cfg, const char *arg)
{
    const char *eq = strchr(arg, '=');
    struct mb_buf where = MB_BUF_INIT;

    mb_buf_addf(&where, "command line: %s", arg);
    if (!eq || eq == arg) {
        mb_err_set(MB_E_USAGE, where.data, "expected key=value");
        mb_buf_release(&where);
        return -1;
    }
    char *key = mb_xstrndup(arg, (size_t)(eq - arg));
    int idx = key_index(cfg, key);
    int rc = idx < 0 ? unknown_key(cfg, MB_E_USAGE, where.data, key)
                     : set_text(cfg, idx, eq + 1, MB_E_USAGE, where.data);
    free(key);
    mb_buf_release(&where);
    return rc;
}

/* ---- construction and getters -------------------------------------------- */

/* Number of section parts of KEY (its dots). */
static int depth_of(const char *key)
{
    int d = 0;

    for (; *key; key++)
        d += *key == '.';
    return d;
}

/* Length of the first PARTS (>= 1) dot-separated parts of KEY, without the final dot. */
static size_t prefix_len(const char *key, int parts)
{
    const char *p = key;

    for (int j = 1; j < parts && p; j++) {
        p = strchr(p, '.');
        p = p ? p + 1 : NULL;
    }
    const char *dot = p ? strchr(p, '.') : NULL;
    return dot ? (size_t)(dot - key) : strlen(key);
}

/* Number of leading section parts A and B share (leaf parts never count). */
static int common_sections(const char *a, const char *b)
{
    int da = depth_of(a), db = depth_of(b), c = 0;

    while (c < da && c < db && prefix_len(a, c + 1) == prefix_len(b, c + 1) &&
           strncmp(a, b, prefix_len(a, c + 1)) == 0)
        c++;
    return c;
}

/* Schema rules: keys unique, no key doubles as a section, each section contiguous. */
static void check_schema(const mb_config *cfg)
{
    mb_strmap *closed = mb_strmap_new(16);

    for (size_t i = 0; i < cfg->n; i++) {
        const char *key = cfg->schema[i].key;
        int c = i ? common_sections(cfg->schema[i - 1].key, key) : 0;
        for (int j = 1; j <= depth_of(key); j++) {
            size_t len = prefix_len(key, j);
            MB_ASSERT(mb_strmap_get(cfg->index, key, len) < 0);
            if (j > c)
                MB_ASSERT(mb_strmap_put(closed, key, len, 1) == 1);
        }
    }
    mb_strmap_free(closed);
}

mb_config *mb_config_new(const struct mb_config_key *schema, size_t n)
{
    mb_config *cfg = mb_xcalloc(1, sizeof *cfg);

    cfg->schema = schema;
    cfg->n = n;
    cfg->slots = mb_xcalloc(n ? n : 1, sizeof *cfg->slots);
    cfg->index = mb_strmap_new(n);
    for (size_t i = 0; i < n; i++)
        MB_ASSERT(mb_strmap_put(cfg->index, schema[i].key, strlen(schema[i].key), (int)i));
    check_schema(cfg);
    for (size_t i = 0; i < n; i++) {
        if (!schema[i].default_value)
            continue;
        if (set_text(cfg, (int)i, schema[i].default_value, MB_E_INVALID, NULL) != 0) {
            fprintf(stderr, "schema default: %s\n", mb_err_what());
            mb_bug(__FILE__, __LINE__, "schema default parses");
        }
    }
    return cfg;
}

void mb_config_set_aliases(mb_config *cfg, const struct mb_config_alias *aliases, size_t n)
{
    mb_strmap_free(cfg->alias_index);
    cfg->aliases = aliases;
    cfg->naliases = n;
    cfg->alias_index = mb_strmap_new(n);
    for (size_t i = 0; i < n; i++) {
        const char *alias = aliases[i].alias;
        int idx = mb_strmap_get(cfg->index, aliases[i].key, strlen(aliases[i].key));
        MB_ASSERT(idx >= 0 && mb_strmap_get(cfg->index, alias, strlen(alias)) < 0);
        MB_ASSERT(mb_strmap_put(cfg->alias_index, alias, strlen(alias), idx));
    }
}

void mb_config_free(mb_config *cfg)
{
    if (!cfg)
        return;
    mb_strmap_free(cfg->alias_index);
    for (size_t i = 0; i < cfg->n; i++)
        slot_release(&cfg->slots[i]);
    free(cfg->slots);
    mb_strmap_free(cfg->index);
    free(cfg);
}

static const struct slot *get_slot(const mb_config *cfg, const char *key,
                                   enum mb_config_type type)
{
    int idx = key_index(cfg, key);

    if (idx < 0 || cfg->schema[idx].type != type) {
        fprintf(stderr, "config key '%s' read as %s\n", key, mb_config_type_name(type));
        mb_bug(__FILE__, __LINE__, "key in schema with the getter's type");
    }
    return &cfg->slots[idx];
}

bool mb_config_has(const mb_config *cfg, const char *key)
{
    int idx = key_index(cfg, key);

    MB_ASSERT(idx >= 0);
    return cfg->slots[idx].set;
}

int64_t mb_config_i64(const mb_config *cfg, const char *key)
{
    return get_slot(cfg, key, MB_CONFIG_INT)->i;
}

double mb_config_double(const mb_config *cfg, const char *key)
{
    return get_slot(cfg, key, MB_CONFIG_FLOAT)->d;
}

bool mb_config_bool(const mb_config *cfg, const char *key)
{
    return get_slot(cfg, key, MB_CONFIG_BOOL)->b;
}

const char *mb_config_str(const mb_config *cfg, const char *key)
{
    return get_slot(cfg, key, MB_CONFIG_STRING)->s;
}

const char *const *mb_config_list(const mb_config *cfg, const char *key, size_t *n)
{
    const struct slot *s = get_slot(cfg, key, MB_CONFIG_LIST);

    *n = s->n;
    return (const char *const *)s->items;
}

const char *mb_config_where(const mb_config *cfg, const char *key)
{
    int idx = key_index(cfg, key);

    MB_ASSERT(idx >= 0);
    return cfg->slots[idx].where ? cfg->slots[idx].where : "default";
}

/* ---- YAML ------------------------------------------------------------------ */

struct yaml_load {
    mb_config *cfg;
    const char *path;
    yaml_document_t *doc;
    size_t *line_of; /* [n]: line where this file set the key, 0 if not */
};

static const char *node_where(const struct yaml_load *ld, const yaml_node_t *node)
{
    return mb_at_line(ld->path, (long long)node->start_mark.line + 1);
}

static int is_prefix_of(const char *prefix, size_t len, const char *key)
{
    return strncmp(key, prefix, len) == 0 && key[len] == '.';
}

/* 1 if PREFIX is a section of the schema or of an alias ("dataset"). */
static int has_section(const mb_config *cfg, const char *prefix)
{
    size_t len = strlen(prefix);

    for (size_t i = 0; i < cfg->n; i++)
        if (is_prefix_of(prefix, len, cfg->schema[i].key))
            return 1;
    for (size_t i = 0; i < cfg->naliases; i++)
        if (is_prefix_of(prefix, len, cfg->aliases[i].alias))
            return 1;
    return 0;
}

static int load_sequence(struct yaml_load *ld, int idx, yaml_node_t *seq, const char *where)
{
    struct slot s = { .set = true };

    for (yaml_node_item_t *it = seq->data.sequence.items.start;
         it < seq->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
        if (item->type != YAML_SCALAR_NODE) {
            slot_release(&s);
            return mb_err_set(MB_E_INVALID, node_where(ld, item),
                              "key '%s': list items must be plain values",
                              ld->cfg->schema[idx].key);
        }
        list_add(&s, (const char *)item->data.scalar.value, item->data.scalar.length);
    }
    s.set = s.n > 0; /* [] unsets, like an empty override */
    slot_commit(ld->cfg, idx, &s, where);
    return 0;
}

/* Set key IDX from NODE (a scalar, or a sequence for a LIST key). */
static int load_value(struct yaml_load *ld, int idx, yaml_node_t *node, const char *where)
{
    const struct mb_config_key *k = &ld->cfg->schema[idx];

    if (node->type == YAML_SEQUENCE_NODE && k->type == MB_CONFIG_LIST)
        return load_sequence(ld, idx, node, where);
    if (node->type != YAML_SCALAR_NODE)
        return mb_err_set(MB_E_INVALID, node_where(ld, node), "key '%s' expects %s, got a %s",
                          k->key, mb_config_type_name(k->type),
                          node->type == YAML_MAPPING_NODE ? "mapping" : "list");
    const char *t = (const char *)node->data.scalar.value;
    /* only an unquoted null means "unset": "null" in quotes is the string */
    if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE || !*t)
        return set_text(ld->cfg, idx, t, MB_E_INVALID, where);
    struct slot s = { 0 };
    if (parse_text(k, t, &s, MB_E_INVALID, where) != 0) {
        slot_release(&s);
        return -1;
    }
    slot_commit(ld->cfg, idx, &s, where);
    return 0;
}

static int load_mapping(struct yaml_load *ld, yaml_node_t *map, const char *prefix);

static int load_pair(struct yaml_load *ld, yaml_node_t *kn, yaml_node_t *vn, const char *prefix)
{
    char where[600];

    snprintf(where, sizeof where, "%s", node_where(ld, kn));
    if (kn->type != YAML_SCALAR_NODE)
        return mb_err_set(MB_E_INVALID, where, "keys must be plain names");
    struct mb_buf full = MB_BUF_INIT;
    if (prefix)
        mb_buf_addf(&full, "%s.", prefix);
    mb_buf_adds(&full, (const char *)kn->data.scalar.value);
    int idx = key_index(ld->cfg, full.data), rc;
    if (idx >= 0 && ld->line_of[idx] && is_alias(ld->cfg, full.data))
        rc = mb_err_set(MB_E_INVALID, where, "duplicate key '%s' (another name of '%s', "
                        "first set on line %zu)", full.data, ld->cfg->schema[idx].key,
                        ld->line_of[idx]);
    else if (idx >= 0 && ld->line_of[idx])
        rc = mb_err_set(MB_E_INVALID, where, "duplicate key '%s' (first set on line %zu)",
                        full.data, ld->line_of[idx]);
    else if (idx >= 0) {
        ld->line_of[idx] = kn->start_mark.line + 1;
        rc = load_value(ld, idx, vn, where);
    } else if (has_section(ld->cfg, full.data) && vn->type == YAML_MAPPING_NODE)
        rc = load_mapping(ld, vn, full.data);
    else if (has_section(ld->cfg, full.data))
        rc = mb_err_set(MB_E_INVALID, where, "'%s' is a section: it holds keys, not a value",
                        full.data);
    else
        rc = unknown_key(ld->cfg, MB_E_INVALID, where, full.data);
    mb_buf_release(&full);
    return rc;
}

static int load_mapping(struct yaml_load *ld, yaml_node_t *map, const char *prefix)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
        if (load_pair(ld, kn, vn, prefix) != 0)
            return -1;
    }
    return 0;
}

static int yaml_syntax_error(const yaml_parser_t *parser, const char *path)
{
    const yaml_mark_t *m = &parser->problem_mark;
    char where[600];

    snprintf(where, sizeof where, "%s:%zu:%zu", path, m->line + 1, m->column + 1);
    if (parser->context)
        return mb_err_set(MB_E_PARSE, where, "invalid YAML: %s %s", parser->problem,
                          parser->context);
    return mb_err_set(MB_E_PARSE, where, "invalid YAML: %s",
                      parser->problem ? parser->problem : "cannot parse");
}

static int load_document(mb_config *cfg, const char *path, yaml_document_t *doc)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);

    if (!root)
        return 0; /* an empty file sets nothing */
    struct yaml_load ld = { cfg, path, doc, mb_xcalloc(cfg->n + 1, sizeof(size_t)) };
    int rc = root->type == YAML_MAPPING_NODE
                 ? load_mapping(&ld, root, NULL)
                 : mb_err_set(MB_E_INVALID, node_where(&ld, root),
                              "a recipe is a mapping of sections (model:, train:, ...)");
    free(ld.line_of);
    return rc;
}

int mb_config_load_yaml(mb_config *cfg, const char *path)
{
    char *text;
    size_t len;

    /* read whole, so a recipe too large (or /dev/zero) meets the read limit of core/fs */
    if (mb_fs_read_all(path, &text, &len) != 0)
        return -1;
    yaml_parser_t parser;
    yaml_document_t doc;
    MB_ASSERT(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_syntax_error(&parser, path);
    } else {
        rc = load_document(cfg, path, &doc);
        yaml_document_delete(&doc);
        if (rc == 0 && !yaml_parser_load(&parser, &doc))
            rc = yaml_syntax_error(&parser, path);
        else if (rc == 0) {
            if (yaml_document_get_root_node(&doc))
                rc = mb_err_set(MB_E_INVALID,
                                mb_at_line(path, (long long)doc.start_mark.line + 1),
                                "a recipe holds one YAML document, not several");
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&parser);
    free(text);
    return rc;
}

/* ---- printing ------------------------------------------------------------- */

/* A plain YAML scalar that reads back as the same string (FLOW: inside [ ]). */
static int plain_ok(const char *t, int flow)
{
    if (!*t || is_null_text(t) || t[0] == '-')
        return 0;
    for (const char *p = t; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(flow ? "_./+" : "_./+-,", *p))
            return 0;
    return 1;
}

/* 1 for a character that cannot stand raw inside YAML quotes, besides the controls JSON
 * escapes already: what libyaml refuses (DEL, the C1 controls, U+FEFF, U+FFFE, U+FFFF)
 * and YAML's own line breaks, which a quoted scalar folds (NEL, U+2028, U+2029). */
static int yaml_must_escape(uint32_t cp)
{
    return cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF;
}

/* T (valid UTF-8) as a double-quoted YAML scalar: JSON's escapes, plus \u escapes for
 * what YAML does not allow raw (a recipe's own "\x7f" can put it in a value). */
static void add_yaml_quoted(struct mb_buf *b, const char *t)
{
    struct mb_buf run = MB_BUF_INIT;
    const unsigned char *p = (const unsigned char *)t;

    mb_buf_addc(b, '"');
    while (*p) {
        uint32_t cp;
        int n = mb_utf8_decode(p, &cp);
        if (yaml_must_escape(cp)) {
            mb_buf_addf(b, "\\u%04x", (unsigned)cp);
        } else {
            mb_buf_reset(&run);
            mb_json_escape(&run, (const char *)p, (size_t)n); /* "x": the character, escaped */
            mb_buf_add(b, run.data + 1, run.len - 2);
        }
        p += n;
    }
    mb_buf_addc(b, '"');
    mb_buf_release(&run);
}

static void add_yaml_str(struct mb_buf *b, const char *t, int flow)
{
    if (plain_ok(t, flow))
        mb_buf_adds(b, t);
    else
        add_yaml_quoted(b, t);
}

/* The value of slot I, in YAML (JSON=0) or JSON (JSON=1). */
static void add_value(struct mb_buf *b, const mb_config *cfg, size_t i, int json)
{
    const struct slot *s = &cfg->slots[i];

    if (!s->set) {
        mb_buf_adds(b, "null");
        return;
    }
    switch (cfg->schema[i].type) {
    case MB_CONFIG_INT:
        mb_buf_addf(b, "%lld", (long long)s->i);
        break;
    case MB_CONFIG_FLOAT:
        mb_buf_add_real(b, s->d);
        break;
    case MB_CONFIG_BOOL:
        mb_buf_adds(b, s->b ? "true" : "false");
        break;
    case MB_CONFIG_STRING:
        if (json)
            mb_json_escape(b, s->s, strlen(s->s));
        else
            add_yaml_str(b, s->s, 0);
        break;
    case MB_CONFIG_LIST:
        mb_buf_addc(b, '[');
        for (size_t k = 0; k < s->n; k++) {
            if (k)
                mb_buf_adds(b, json ? "," : ", ");
            if (json)
                mb_json_escape(b, s->items[k], strlen(s->items[k]));
            else
                add_yaml_str(b, s->items[k], 1);
        }
        mb_buf_addc(b, ']');
        break;
    }
}

/* Start of part J of KEY and its length. */
static const char *part(const char *key, int j, size_t *len)
{
    const char *p = key;

    for (int k = 0; k < j; k++)
        p = strchr(p, '.') + 1;
    *len = strcspn(p, ".");
    return p;
}

int mb_config_print(const mb_config *cfg, FILE *fp)
{
    struct mb_buf b = MB_BUF_INIT;
    size_t len;

    for (size_t i = 0; i < cfg->n; i++) {
        const char *key = cfg->schema[i].key;
        int d = depth_of(key);
        int c = i ? common_sections(cfg->schema[i - 1].key, key) : 0;
        for (int j = c; j < d; j++) {
            const char *p = part(key, j, &len);
            mb_buf_addf(&b, "%*s%.*s:\n", 2 * j, "", (int)len, p);
        }
        mb_buf_addf(&b, "%*s%s: ", 2 * d, "", last_part(key));
        add_value(&b, cfg, i, 0);
        mb_buf_addc(&b, '\n');
    }
    size_t put = b.len ? fwrite(b.data, 1, b.len, fp) : 0;
    int rc = put == b.len && fflush(fp) == 0 ? 0 : mb_err_errno(NULL, "cannot print the config");
    mb_buf_release(&b);
    return rc;
}

char *mb_config_to_json(const mb_config *cfg)
{
    struct mb_buf b = MB_BUF_INIT;
    int open = 0; /* sections open */
    size_t len;

    mb_buf_addc(&b, '{');
    for (size_t i = 0; i < cfg->n; i++) {
        const char *key = cfg->schema[i].key;
        int d = depth_of(key);
        int c = i ? common_sections(cfg->schema[i - 1].key, key) : 0;
        for (; open > c; open--)
            mb_buf_addc(&b, '}');
        if (i)
            mb_buf_addc(&b, ',');
        for (int j = c; j < d; j++, open++) {
            const char *p = part(key, j, &len);
            mb_json_escape(&b, p, len);
            mb_buf_adds(&b, ":{");
        }
        const char *leaf = last_part(key);
        mb_json_escape(&b, leaf, strlen(leaf));
        mb_buf_addc(&b, ':');
        add_value(&b, cfg, i, 1);
    }
    for (; open > 0; open--)
        mb_buf_addc(&b, '}');
    mb_buf_addc(&b, '}');
    return b.data;
}

/* ---- finding a recipe ------------------------------------------------------ */

/* Directories to search, in order (caller frees each and the array). */
static char **recipe_dirs(size_t *n)
{
    char **dirs = NULL;
    const char *env = getenv("MB_RECIPE_DIR");
    char exe[PATH_MAX];

    *n = 0;
    for (const char *p = env ? env : ""; *p;) {
        size_t len = strcspn(p, ":");
        if (len) {
            dirs = mb_xrealloc(dirs, (*n + 1) * sizeof *dirs);
            dirs[(*n)++] = mb_xstrndup(p, len);
        }
        p += len + (p[len] == ':');
    }
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = NULL;
    if (len > 0) {
        exe[len] = '\0';
        slash = strrchr(exe, '/');
    }
    if (slash) {
        *slash = '\0';
        static const char *rel[] = { "/../recipes", "/../share/mb/recipes" };
        dirs = mb_xrealloc(dirs, (*n + 2) * sizeof *dirs);
        for (size_t k = 0; k < 2; k++) {
            struct mb_buf b = MB_BUF_INIT;
            mb_buf_addf(&b, "%s%s", exe, rel[k]);
            dirs[(*n)++] = b.data;
        }
    }
    return dirs;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ", "-joined names of the *.yaml files in DIRS, sorted, each once. */
static void list_recipes(char **dirs, size_t ndirs, struct mb_buf *out)
{
    struct slot names = { 0 };

    for (size_t k = 0; k < ndirs; k++) {
        DIR *d = opendir(dirs[k]);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0)
                list_add(&names, e->d_name, len - 5);
        }
        if (d)
            closedir(d);
    }
    if (names.n)
        qsort(names.items, names.n, sizeof *names.items, cmp_str);
    for (size_t k = 0; k < names.n; k++)
        if (k == 0 || strcmp(names.items[k], names.items[k - 1]) != 0)
            mb_buf_addf(out, "%s%s", out->len ? ", " : "", names.items[k]);
    slot_release(&names);
}

int mb_config_find_recipe(const char *name_or_path, char **path_out)
{
    size_t len = strlen(name_or_path), ndirs;

    if (strchr(name_or_path, '/') || (len > 5 && strcmp(name_or_path + len - 5, ".yaml") == 0)) {
        *path_out = mb_xstrdup(name_or_path);
        return 0;
    }
    char **dirs = recipe_dirs(&ndirs);
    int rc = -1;
    for (size_t k = 0; rc != 0 && k < ndirs; k++) {
        struct mb_buf b = MB_BUF_INIT;
        mb_buf_addf(&b, "%s/%s.yaml", dirs[k], name_or_path);
        if (access(b.data, R_OK) == 0) {
            *path_out = b.data;
            rc = 0;
        } else
            mb_buf_release(&b);
    }
    if (rc != 0) {
        struct mb_buf names = MB_BUF_INIT;
        list_recipes(dirs, ndirs, &names);
        if (names.len)
            mb_err_set(MB_E_USAGE, name_or_path, "no such recipe (available: %s)", names.data);
        else
            mb_err_set(MB_E_USAGE, name_or_path,
                       "no such recipe, and no recipe directory found (set MB_RECIPE_DIR)");
        mb_buf_release(&names);
    }
    for (size_t k = 0; k < ndirs; k++)
        free(dirs[k]);
    free(dirs);
    return rc;
}
