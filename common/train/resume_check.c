/* train/resume_check.c - a resumed run keeps the schedule it was saved with.
 *
 * The learning rate of iteration i is a function of train.train_iters, optimizer.lr and
 * min_lr and the scheduler.* keys. A resume that changes one of them would continue on
 * another curve than the one the checkpoint was trained on, so it is refused unless
 * scheduler.override_opt_param_scheduler says to take the new one (Megatron's
 * OptimizerParamScheduler check and its override flag).
 */
#include "train/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "train/schema.h"

#define OVERRIDE "scheduler.override_opt_param_scheduler"

static bool is_schedule_key(const char *key)
{
    return strcmp(key, "train.train_iters") == 0 || strcmp(key, "optimizer.lr") == 0 ||
           strcmp(key, "optimizer.min_lr") == 0 ||
           (strncmp(key, "scheduler.", 10) == 0 && strcmp(key, OVERRIDE) != 0);
}

/* Value of dotted KEY ("section.leaf") in the nested config object ROOT, or NULL. */
static const mb_json *value_of(const mb_json *root, const char *key)
{
    char section[64];
    const char *dot = strchr(key, '.');
    if (!dot || (size_t)(dot - key) >= sizeof section)
        return NULL;
    memcpy(section, key, (size_t)(dot - key));
    section[dot - key] = '\0';
    return mb_json_get(mb_json_get(root, section), dot + 1);
}

static bool same_value(const mb_json *a, const mb_json *b)
{
    enum mb_json_type ta = mb_json_type_of(a), tb = mb_json_type_of(b);
    bool num_a = ta == MB_JSON_INT || ta == MB_JSON_REAL;
    bool num_b = tb == MB_JSON_INT || tb == MB_JSON_REAL;
    if (num_a && num_b)
        return mb_json_number(a) == mb_json_number(b);
    if (ta != tb)
        return false;
    if (ta == MB_JSON_STRING)
        return strcmp(mb_json_str(a, NULL), mb_json_str(b, NULL)) == 0;
    if (ta == MB_JSON_BOOL)
        return mb_json_is_true(a) == mb_json_is_true(b);
    return ta == MB_JSON_NULL;
}

/* V as it reads in a message (BUF holds numbers). */
static const char *shown(char *buf, size_t cap, const mb_json *v)
{
    switch (mb_json_type_of(v)) {
    case MB_JSON_STRING: return mb_json_str(v, NULL);
    case MB_JSON_BOOL: return mb_json_is_true(v) ? "true" : "false";
    case MB_JSON_INT: snprintf(buf, cap, "%lld", (long long)mb_json_int(v)); return buf;
    case MB_JSON_REAL: {
        struct mb_buf b = MB_BUF_INIT;
        mb_buf_add_real(&b, mb_json_number(v));
        snprintf(buf, cap, "%s", b.data);
        free(b.data);
        return buf;
    }
    default: return "unset";
    }
}

/* The first schedule key whose value in NOW differs from SAVED (keys the checkpoint did
 * not record are not compared), or NULL. */
static const char *changed_key(const mb_json *now, const mb_json *saved,
                               const mb_json **was, const mb_json **is)
{
    size_t n;
    const struct mb_config_key *schema = mb_pretrain_schema(&n);
    for (size_t i = 0; i < n; i++) {
        if (!is_schedule_key(schema[i].key))
            continue;
        *was = value_of(saved, schema[i].key);
        *is = value_of(now, schema[i].key);
        if (*was && *is && !same_value(*was, *is))
            return schema[i].key;
    }
    return NULL;
}

int mb_train_check_schedule(const struct mb_trainer *t, const char *file,
                            const char *recipe_json)
{
    if (!recipe_json || !*recipe_json) /* not made by mb-pretrain: no schedule to keep */
        return 0;
    char *text = mb_config_to_json(t->cfg);
    mb_json *now = mb_json_parse(text, strlen(text), "config");
    mb_json *saved = mb_json_parse(recipe_json, strlen(recipe_json), file);
    free(text);
    int rc = now && saved ? 0 : -1;
    const mb_json *was = NULL, *is = NULL;
    const char *key = rc == 0 ? changed_key(now, saved, &was, &is) : NULL;
    char a[40], b[40];
    if (key && mb_config_bool(t->cfg, OVERRIDE)) {
        if (t->dist->rank == 0)
            mb_log_info("%s: the schedule of this run is used, not the checkpoint's (%s %s, "
                        "was %s)", OVERRIDE, key, shown(b, sizeof b, is),
                        shown(a, sizeof a, was));
    } else if (key) {
        rc = mb_err_set(MB_E_INVALID, mb_config_where(t->cfg, key),
                        "%s is %s but %s was trained with %s: resuming would change the "
                        "learning-rate schedule; keep it, or set %s=true to use the new one",
                        key, shown(b, sizeof b, is), file, shown(a, sizeof a, was), OVERRIDE);
    }
    mb_json_free(now);
    mb_json_free(saved);
    return rc;
}
