/* core/config.h - a typed configuration of dotted keys, driven by a schema table.
 *
 * The schema (an array of struct mb_config_key) lists every key a tool accepts, its
 * type, its default and a help line. Values come from, in order: the defaults, a YAML
 * recipe (nested mappings flatten to dotted keys: "model: {hidden_size: 64}" sets
 * "model.hidden_size"), then "key=value" overrides from the command line. Every value
 * remembers where it was set ("recipe.yaml:12", "optimizer.lr=3e-4" or "default"), so
 * later checks can name the place. Unknown keys are errors with a "did you mean"
 * suggestion; values are parsed and checked against the key's type (and choices) when
 * they are set, so the getters cannot fail.
 *
 * This file is the only one that calls libyaml. It does not do includes or defaults
 * files, and it knows nothing about what the keys mean (that is the tool's schema, e.g.
 * train/schema.h). Not thread-safe while being filled; concurrent getters are fine.
 */
#ifndef MB_CORE_CONFIG_H
#define MB_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/defs.h"

enum mb_config_type {
    MB_CONFIG_INT,    /* int64, decimal */
    MB_CONFIG_FLOAT,  /* finite double */
    MB_CONFIG_BOOL,   /* true/false (also yes/no, on/off, 1/0) */
    MB_CONFIG_STRING, /* any text */
    MB_CONFIG_LIST,   /* list of strings: a YAML sequence, or one string split on spaces/commas */
};

/* One schema entry. KEY is dotted ("model.hidden_size"); keys of one section must be
 * contiguous in the table (printing groups them). DEFAULT_VALUE is parsed like a
 * value from the command line; NULL leaves the key unset. CHOICES, for STRING keys, is
 * NULL (anything) or the accepted values separated by '|' ("fp32|bf16"). */
struct mb_config_key {
    const char *key;
    enum mb_config_type type;
    const char *default_value;
    const char *help;
    const char *choices;
};

/* Another name for a key (Megatron Bridge's "dataset.seq_length" for "data.seq_length"):
 * accepted wherever a key is (recipes, overrides, mb_config_set), stored under KEY, so
 * printing, JSON and mb_config_where() know only KEY. */
struct mb_config_alias {
    const char *alias;
    const char *key;
};

typedef struct mb_config mb_config;

/* A config over SCHEMA[n] (borrowed: it must outlive the config), holding the defaults.
 * A broken schema (duplicate key, bad default, split section) is a bug and aborts. */
mb_config *mb_config_new(const struct mb_config_key *schema, size_t n);

/* Accept ALIASES[n] (borrowed, like the schema) as names of their keys. An alias that is
 * a key or names no key is a bug and aborts. */
void mb_config_set_aliases(mb_config *cfg, const struct mb_config_alias *aliases, size_t n);

/* Free CFG and everything it owns. Accepts NULL. */
void mb_config_free(mb_config *cfg);

/* Read the YAML recipe at PATH and set every key it holds. Returns 0, or -1 with mb_err
 * set: WHERE is "PATH:LINE:COL" for a YAML syntax error and "PATH:LINE" for an unknown
 * key (with a suggestion), a duplicate key or a value of the wrong type. */
MB_MUST_CHECK int mb_config_load_yaml(mb_config *cfg, const char *path);

/* Set KEY from the text VALUE, parsed per the key's type; WHERE names the source for
 * error messages and mb_config_where(). An empty VALUE or "null" unsets the key.
 * Returns 0, or -1 with mb_err set (MB_E_INVALID, WHERE named). */
MB_MUST_CHECK int mb_config_set(mb_config *cfg, const char *key, const char *value,
                                const char *where);

/* Apply one command-line override "key=value"; it is then where the key was set:
 * "command line: ARG". Returns 0, or -1 with mb_err set to MB_E_USAGE and that WHERE
 * (unknown key with suggestion, missing '=', bad value). */
MB_MUST_CHECK int mb_config_override(mb_config *cfg, const char *arg);

/* 1 if ARG looks like an override ("key=value" with a key made of letters, digits,
 * '_' and '.'), else 0: lets a tool tell overrides from other words. */
int mb_config_is_override(const char *arg);

/* Getters. KEY must be in the schema with the getter's type (else a bug: abort).
 * An unset key reads as 0, 0.0, false, NULL and an empty list. */
bool mb_config_has(const mb_config *cfg, const char *key);
int64_t mb_config_i64(const mb_config *cfg, const char *key);
double mb_config_double(const mb_config *cfg, const char *key);
bool mb_config_bool(const mb_config *cfg, const char *key);
const char *mb_config_str(const mb_config *cfg, const char *key);
/* The items of a LIST key (owned by CFG, valid until it changes) and their count. */
const char *const *mb_config_list(const mb_config *cfg, const char *key, size_t *n);

/* Where KEY got its value: "PATH:LINE", the override argument, or "default". */
const char *mb_config_where(const mb_config *cfg, const char *key);

/* Print the resolved config (every key, defaults included) as YAML, grouped by section
 * in schema order; unset keys print as null. The output loads back to the same
 * values. Returns 0, or -1 with mb_err set on a write error. */
MB_MUST_CHECK int mb_config_print(const mb_config *cfg, FILE *fp);

/* The resolved config as a JSON object nested by section (unset keys are null, lists
 * are arrays of strings, floats always carry a '.' or an exponent). The caller frees
 * the string. */
char *mb_config_to_json(const mb_config *cfg);

/* Resolve a recipe argument to a file. A NAME_OR_PATH holding '/' or ending in ".yaml"
 * is used as is; otherwise NAME.yaml is looked for in $MB_RECIPE_DIR (a ':' list), then
 * EXE_DIR/../recipes, then EXE_DIR/../share/mb/recipes, where EXE_DIR holds the
 * running executable. Returns 0 with *PATH_OUT (caller frees), or -1 with mb_err set
 * to MB_E_USAGE listing the recipes that exist. */
MB_MUST_CHECK int mb_config_find_recipe(const char *name_or_path, char **path_out);

/* The name of TYPE as used in messages ("an integer", "a list", ...). */
const char *mb_config_type_name(enum mb_config_type type);

#endif /* MB_CORE_CONFIG_H */
