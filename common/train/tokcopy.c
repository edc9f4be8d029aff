/* train/tokcopy.c - a checkpoint trained from scratch carries a copy of its tokenizer.
 *
 * The `tokenizer` attribute names the file the run was given, which another machine
 * does not have. So the first save of a run that has no HF files of its own (it did not
 * start from a converted model) adds tokenizer.json, and the tokenizer_config.json that
 * the tokenizer loader reads beside it if there is one, as /hf/files/ blobs: the same
 * place a converted model keeps them, so mb-generate and mb-convert --to hf use them as
 * they use those, and later checkpoints of the run carry them on.
 */
#include "train/internal.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

static int has_extra(const struct mb_trainer *t, const char *name)
{
    for (int i = 0; i < t->n_extras; i++)
        if (strcmp(t->extras[i].name, name) == 0)
            return 1;
    return 0;
}

static int add_file(struct mb_trainer *t, const char *path, const char *name)
{
    char *data = NULL;
    size_t len = 0;

    if (mb_fs_read_all(path, &data, &len) != 0)
        return mb_err_wrap("the tokenizer to store in the checkpoint: ");
    t->extras = mb_xrealloc(t->extras, (size_t)(t->n_extras + 1) * sizeof *t->extras);
    t->extras[t->n_extras++] = (struct mb_ckpt_extra){
        .name = mb_xasprintf("/hf/files/%s", name), .value = data, .len = len };
    return 0;
}

int mb_train_carry_tokenizer(struct mb_trainer *t)
{
    const char *spec = t->tok ? t->tok->name : NULL;
    struct stat sb;

    if (!spec || !*spec || strcmp(spec, "bytes") == 0 ||
        has_extra(t, "/hf/files/tokenizer.json"))
        return 0;
    int is_dir = stat(spec, &sb) == 0 && S_ISDIR(sb.st_mode);
    char *copy = mb_xstrdup(spec);
    char *file = is_dir ? mb_xasprintf("%s/tokenizer.json", spec) : mb_xstrdup(spec);
    char *config = mb_xasprintf("%s/tokenizer_config.json", is_dir ? spec : dirname(copy));
    int rc = add_file(t, file, "tokenizer.json");
    if (rc == 0 && mb_fs_exists(config) && !has_extra(t, "/hf/files/tokenizer_config.json"))
        rc = add_file(t, config, "tokenizer_config.json");
    free(copy);
    free(file);
    free(config);
    /* every rank stores the same list, or none does */
    if (!mb_dist_all_ok(t->dist, rc == 0) && rc == 0)
        rc = mb_err_set(MB_E_IO, spec, "another rank could not read the tokenizer");
    return rc;
}
