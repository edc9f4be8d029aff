/* tests/unit/core_config.c - the config tree: defaults, YAML recipes, overrides, errors
 * with places and suggestions, list spellings, print/JSON round trips, recipe lookup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "tests/lib/tap.h"

static const struct mb_config_key schema[] = {
    { "model.family", MB_CONFIG_STRING, "llama", "family", "llama|gpt2" },
    { "model.hidden_size", MB_CONFIG_INT, NULL, "hidden", NULL },
    { "model.num_layers", MB_CONFIG_INT, "2", "layers", NULL },
    { "model.rope.theta", MB_CONFIG_FLOAT, "10000", "nested section", NULL },
    { "model.tied", MB_CONFIG_BOOL, "true", "tied", NULL },
    { "optimizer.lr", MB_CONFIG_FLOAT, "3e-4", "lr", NULL },
    { "data.data_path", MB_CONFIG_LIST, NULL, "paths", NULL },
    { "data.split", MB_CONFIG_STRING, "969,30,1", "split", NULL },
    { "checkpoint.save", MB_CONFIG_STRING, NULL, "save dir", NULL },
    { "top_level", MB_CONFIG_INT, "7", "a key outside any section", NULL },
};

static mb_config *fresh(void)
{
    return mb_config_new(schema, sizeof schema / sizeof schema[0]);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
}

static void defaults_are_set(void)
{
    mb_config *c = fresh();
    size_t n = 99;

    ok(!mb_config_has(c, "model.hidden_size"), "a key without default is unset");
    is_int(mb_config_i64(c, "model.hidden_size"), 0, "unset integer reads 0");
    is_int(mb_config_i64(c, "model.num_layers"), 2, "integer default");
    ok(mb_config_double(c, "optimizer.lr") == 3e-4, "float default");
    ok(mb_config_bool(c, "model.tied"), "bool default");
    is_str(mb_config_str(c, "data.split"), "969,30,1", "string default");
    ok(mb_config_str(c, "checkpoint.save") == NULL, "unset string is NULL");
    ok(mb_config_list(c, "data.data_path", &n) != NULL || n == 0, "unset list");
    is_int((long long)n, 0, "unset list is empty");
    is_str(mb_config_where(c, "model.num_layers"), "default", "defaults say so");
    mb_config_free(c);
}

static const char recipe[] =
    "# a recipe\n"
    "model:\n"
    "  family: gpt2\n"
    "  hidden_size: 64\n"
    "  rope:\n"
    "    theta: 500000.0\n"
    "  tied: no\n"
    "optimizer: {lr: 1.5e-3}\n"
    "data:\n"
    "  data_path: [0.3, /a/b_text_document, 0.7, \"/c d/e_text_document\"]\n"
    "top_level: 9\n"
    "checkpoint:\n"
    "  save: null\n";

static void yaml_recipe_loads(void)
{
    mb_config *c = fresh();
    size_t n;

    write_file("r.yaml", recipe);
    if (!ok(mb_config_load_yaml(c, "r.yaml") == 0, "recipe loads"))
        tap_diag("%s: %s", mb_err_where(), mb_err_what());
    is_str(mb_config_str(c, "model.family"), "gpt2", "nested string");
    is_int(mb_config_i64(c, "model.hidden_size"), 64, "nested integer");
    ok(mb_config_double(c, "model.rope.theta") == 500000.0, "two levels deep");
    ok(!mb_config_bool(c, "model.tied"), "'no' is false");
    ok(mb_config_double(c, "optimizer.lr") == 1.5e-3, "flow mapping");
    is_int(mb_config_i64(c, "top_level"), 9, "key without a section");
    ok(!mb_config_has(c, "checkpoint.save"), "null leaves the key unset");
    const char *const *items = mb_config_list(c, "data.data_path", &n);
    is_int((long long)n, 4, "YAML sequence gives four items");
    is_str(items[0], "0.3", "weight kept as text");
    is_str(items[3], "/c d/e_text_document", "quoted item keeps its space");
    is_str(mb_config_where(c, "model.hidden_size"), "r.yaml:4", "where names file and line");
    is_int(mb_config_i64(c, "model.num_layers"), 2, "keys absent from the recipe keep defaults");
    mb_config_free(c);
}

static void lists_in_both_spellings(void)
{
    mb_config *c = fresh();
    size_t n;
    const char *const *items;

    write_file("s.yaml", "data:\n  data_path: 0.3 /a/b 0.7 /c/d\n");
    ok(mb_config_load_yaml(c, "s.yaml") == 0, "list as one string loads");
    items = mb_config_list(c, "data.data_path", &n);
    ok(n == 4 && strcmp(items[1], "/a/b") == 0 && strcmp(items[2], "0.7") == 0,
       "space-separated string splits into four items");
    ok(mb_config_override(c, "data.data_path=x,y  z") == 0, "list override");
    items = mb_config_list(c, "data.data_path", &n);
    ok(n == 3 && strcmp(items[0], "x") == 0 && strcmp(items[2], "z") == 0,
       "override splits on commas and spaces");
    ok(mb_config_override(c, "data.data_path=") == 0 && !mb_config_has(c, "data.data_path"),
       "empty override unsets");
    mb_config_free(c);
}

static void overrides_are_typed(void)
{
    mb_config *c = fresh();

    ok(mb_config_override(c, "model.hidden_size=128") == 0, "integer override");
    is_int(mb_config_i64(c, "model.hidden_size"), 128, "value applied");
    is_str(mb_config_where(c, "model.hidden_size"), "command line: model.hidden_size=128",
           "where is the argument");
    ok(mb_config_override(c, "optimizer.lr=2e-5") == 0 &&
       mb_config_double(c, "optimizer.lr") == 2e-5, "float override");
    ok(mb_config_override(c, "model.tied=False") == 0 && !mb_config_bool(c, "model.tied"),
       "bool override");

    ok(mb_config_override(c, "model.hidden_size=12x") == -1, "bad integer refused");
    is_int(mb_err_code(), MB_E_USAGE, "override errors are usage errors");
    is_str(mb_err_where(), "command line: model.hidden_size=12x", "error names the argument");
    is_str(mb_err_what(), "key 'model.hidden_size' expects an integer, got '12x'",
           "error names the expected type");
    is_int(mb_config_i64(c, "model.hidden_size"), 128, "failed override keeps the old value");
    ok(mb_config_override(c, "optimizer.lr=nan") == -1, "non-finite float refused");
    ok(mb_config_override(c, "model.tied=maybe") == -1, "bad bool refused");
    ok(mb_config_override(c, "model.family=gtp2") == -1, "value outside the choices refused");
    is_str(mb_err_what(), "key 'model.family' must be one of llama|gpt2, got 'gtp2'",
           "choices listed");

    ok(mb_config_override(c, "model.hiden_size=64") == -1, "unknown key refused");
    is_str(mb_err_where(), "command line: model.hiden_size=64", "unknown key: where is the argument");
    is_str(mb_err_what(), "unknown key 'model.hiden_size' (did you mean 'model.hidden_size'?)",
           "suggestion by edit distance");
    ok(mb_config_override(c, "train.lr=1") == -1, "key in the wrong section refused");
    is_str(mb_err_what(), "unknown key 'train.lr' (did you mean 'optimizer.lr'?)",
           "suggestion by last part");
    ok(mb_config_override(c, "completely_different=1") == -1, "far-off key refused");
    is_str(mb_err_what(), "unknown key 'completely_different'",
           "no suggestion when nothing is close");
    ok(mb_config_override(c, "model.hidden_size") == -1, "missing '=' refused");

    ok(mb_config_is_override("a.b=1") && mb_config_is_override("x_1=") &&
       !mb_config_is_override("--lr=1") && !mb_config_is_override("/a/b=c.yaml") &&
       !mb_config_is_override("recipe.yaml"), "override words told from others");
    mb_config_free(c);
}

/* Load TEXT as bad.yaml and check the error's place and message. */
static void yaml_error(const char *text, const char *where, const char *what, const char *title)
{
    mb_config *c = fresh();

    write_file("bad.yaml", text);
    if (ok(mb_config_load_yaml(c, "bad.yaml") == -1, "%s: refused", title)) {
        is_str(mb_err_where(), where, "%s: place", title);
        if (what)
            is_str(mb_err_what(), what, "%s: message", title);
    }
    mb_config_free(c);
}

static void yaml_errors_name_the_line(void)
{
    yaml_error("model:\n  family: llama\n  hiden_size: 64\n", "bad.yaml:3",
               "unknown key 'model.hiden_size' (did you mean 'model.hidden_size'?)",
               "unknown key");
    yaml_error("model:\n\n  num_layers: 4\n  hidden_size: big\n", "bad.yaml:4",
               "key 'model.hidden_size' expects an integer, got 'big'", "wrong type");
    yaml_error("optimizer:\n  lr: [1, 2]\n", "bad.yaml:2",
               "key 'optimizer.lr' expects a number, got a list", "sequence for a scalar key");
    yaml_error("model:\n  hidden_size: 4\n  hidden_size: 5\n", "bad.yaml:3",
               "duplicate key 'model.hidden_size' (first set on line 2)", "duplicate key");
    yaml_error("model: 5\n", "bad.yaml:1",
               "'model' is a section: it holds keys, not a value", "scalar for a section");
    yaml_error("model:\n  family: [llama\n  hidden_size: 3\n", "bad.yaml:3:14", NULL,
               "syntax error has line and column");
    yaml_error("- a\n- b\n", "bad.yaml:1", NULL, "top level must be a mapping");
    yaml_error("model:\n  num_layers: 3\n---\nmodel:\n  num_layers: 4\n", "bad.yaml:3", NULL,
               "second document refused");

    mb_config *c = fresh();
    ok(mb_config_load_yaml(c, "no-such.yaml") == -1 && strcmp(mb_err_where(), "no-such.yaml") == 0,
       "missing file named");
    write_file("empty.yaml", "# nothing\n");
    ok(mb_config_load_yaml(c, "empty.yaml") == 0, "an empty recipe keeps the defaults");
    write_file("q.yaml", "checkpoint:\n  save: \"null\"\nmodel:\n  hidden_size: \"32\"\n");
    ok(mb_config_load_yaml(c, "q.yaml") == 0, "quoted values load");
    is_str(mb_config_str(c, "checkpoint.save"), "null", "quoted null is a string");
    is_int(mb_config_i64(c, "model.hidden_size"), 32, "quoted number for an integer key");
    mb_config_free(c);
}

static void print_and_json_round_trip(void)
{
    mb_config *c = fresh(), *d = fresh();

    write_file("r.yaml", recipe);
    ok(mb_config_load_yaml(c, "r.yaml") == 0 &&
       mb_config_override(c, "checkpoint.save=/tmp/run one") == 0 &&
       mb_config_override(c, "data.split=99,1,0") == 0, "set up");
    FILE *fp = fopen("printed.yaml", "w");
    ok(mb_config_print(c, fp) == 0, "print succeeds");
    fclose(fp);
    if (!ok(mb_config_load_yaml(d, "printed.yaml") == 0, "printed config loads back"))
        tap_diag("%s: %s", mb_err_where(), mb_err_what());
    char *a = mb_config_to_json(c), *b = mb_config_to_json(d);
    is_str(b, a, "reloaded config has the same JSON");

    mb_json *j = mb_json_parse(a, strlen(a), "json");
    if (ok(j != NULL, "JSON parses")) {
        mb_json *model = mb_json_get(j, "model");
        is_int(mb_json_int(mb_json_get(model, "hidden_size")), 64, "model.hidden_size in JSON");
        ok(mb_json_type_of(mb_json_get(mb_json_get(model, "rope"), "theta")) == MB_JSON_REAL,
           "a float stays a float");
        ok(mb_json_type_of(mb_json_get(model, "tied")) == MB_JSON_BOOL, "bool in JSON");
        mb_json *paths = mb_json_get(mb_json_get(j, "data"), "data_path");
        ok(mb_json_len(paths) == 4 && strcmp(mb_json_str(mb_json_at(paths, 0), NULL), "0.3") == 0,
           "list is an array of strings");
        is_int(mb_json_int(mb_json_get(j, "top_level")), 9, "top-level key");
        mb_json_free(j);
    }
    free(a);
    free(b);

    fp = fopen("printed.yaml", "r");
    char text[2048] = { 0 };
    size_t len = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    ok(len > 0 && strstr(text, "model:\n  family: gpt2\n  hidden_size: 64\n") != NULL,
       "print groups keys under their section");
    ok(strstr(text, "  rope:\n    theta: 500000.0\n") != NULL, "nested section indented");
    ok(strstr(text, "  save: \"/tmp/run one\"\n") != NULL, "string with a space quoted");
    ok(strstr(text, "  lr: 0.0015\n") != NULL, "float printed shortest");
    ok(strstr(text, "  data_path: [0.3, /a/b_text_document, 0.7, \"/c d/e_text_document\"]\n"),
       "list printed in flow style");
    mb_config_free(c);
    mb_config_free(d);
}

static void recipes_are_found(void)
{
    char *path = NULL;

    mkdir("rdir", 0755);
    mkdir("rdir2", 0755);
    write_file("rdir/small.yaml", "top_level: 1\n");
    write_file("rdir2/large.yaml", "top_level: 2\n");
    setenv("MB_RECIPE_DIR", "rdir:rdir2", 1);
    ok(mb_config_find_recipe("large", &path) == 0 && strcmp(path, "rdir2/large.yaml") == 0,
       "name found in the second directory of MB_RECIPE_DIR");
    free(path);
    ok(mb_config_find_recipe("x/y.yaml", &path) == 0 && strcmp(path, "x/y.yaml") == 0,
       "a path is used as is");
    free(path);
    ok(mb_config_find_recipe("medium", &path) == -1, "unknown recipe refused");
    is_int(mb_err_code(), MB_E_USAGE, "as a usage error");
    ok(strstr(mb_err_what(), "(available: large, small)") != NULL, "available recipes listed");
    is_str(mb_err_where(), "medium", "names the recipe asked for");
    unsetenv("MB_RECIPE_DIR");
}

static const struct mb_config_alias aliases[] = {
    { "dataset.paths", "data.data_path" },
    { "rng.seed", "top_level" },
    { "model.width", "model.hidden_size" },
};

static void aliases_name_their_key(void)
{
    mb_config *c = fresh();
    size_t n = 0;

    mb_config_set_aliases(c, aliases, sizeof aliases / sizeof aliases[0]);
    write_file("alias.yaml", "dataset:\n  paths: [a, b]\nrng:\n  seed: 42\nmodel:\n"
                             "  width: 96\n");
    ok(mb_config_load_yaml(c, "alias.yaml") == 0, "a recipe in the other names loads");
    ok(mb_config_list(c, "data.data_path", &n) && n == 2, "alias section sets the key");
    is_int(mb_config_i64(c, "top_level"), 42, "alias of a top-level key");
    is_int(mb_config_i64(c, "model.hidden_size"), 96, "alias inside a known section");
    is_str(mb_config_where(c, "model.hidden_size"), "alias.yaml:6", "where: the alias's line");
    ok(mb_config_override(c, "model.width=128") == 0 &&
       mb_config_i64(c, "model.hidden_size") == 128, "alias override");
    is_str(mb_config_where(c, "model.hidden_size"), "command line: model.width=128",
           "where: the override as written");
    char *json = mb_config_to_json(c);
    ok(strstr(json, "\"hidden_size\":128") && !strstr(json, "width") && !strstr(json, "dataset"),
       "JSON holds the key's name only");
    free(json);
    write_file("dup.yaml", "model:\n  hidden_size: 1\n  width: 2\n");
    ok(mb_config_load_yaml(c, "dup.yaml") == -1, "key and alias in one recipe refused");
    is_str(mb_err_where(), "dup.yaml:3", "at the second");
    is_str(mb_err_what(), "duplicate key 'model.width' (another name of 'model.hidden_size', "
           "first set on line 2)", "naming both");
    ok(mb_config_override(c, "dataset.pathz=x") == -1, "a misspelt alias is unknown");
    mb_config_free(c);
}

int main(void)
{
    tap_enter_scratch_dir();
    defaults_are_set();
    yaml_recipe_loads();
    lists_in_both_spellings();
    overrides_are_typed();
    yaml_errors_name_the_line();
    print_and_json_round_trip();
    recipes_are_found();
    aliases_name_their_key();
    return tap_done();
}
