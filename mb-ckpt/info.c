/* mb-ckpt/info.c - `mb-ckpt info CKPT [--json]`: what a checkpoint holds.
 *
 * Architecture (the family of the stored model config, and the HF architecture: the one
 * the checkpoint came from if mb-convert made it, else the one it would convert to), the
 * config itself, the training counters, the optimizer state, the parallel layout it was
 * saved with, and every dataset with its dtype, shape and size in bytes. The parameter
 * count is the number of elements under /model. An adapter-only checkpoint (ckpt/ckpt.h)
 * also shows its peft attribute, its base_checkpoint and the elements under /adapter.
 * Nothing is read but the attributes, the int64 counters and the dataset list.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/bridge.h"
#include "ck.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"

struct info_opts {
    int json;
    char **args;
    int nargs;
};

static const struct mb_opt info_options[] = {
    { "json", 0, MB_OPT_FLAG, offsetof(struct info_opts, json), NULL,
      "print one JSON object instead of text", 0, 0 },
};

static const struct mb_cli info_cli = {
    .tool = "mb-ckpt info",
    .synopsis = "CKPT [--json]",
    .summary = "Print a checkpoint's architecture, config, counters, optimizer state and "
               "tensors.\nCKPT is a checkpoint file or a directory with 'latest'.",
    .opts = info_options,
    .nopts = 1,
    .args_offset = offsetof(struct info_opts, args),
    .nargs_offset = offsetof(struct info_opts, nargs),
};

static const char *const counters[] = { "iteration", "consumed_train_samples",
                                        "consumed_valid_samples" };
#define NCOUNTERS 3

/* Everything info prints, gathered first so that text and JSON say the same. */
struct info {
    char *file;
    char *attr_format, *attr_version, *attr_config, *attr_arch;
    char *attr_peft, *attr_base; /* adapter-only checkpoints; NULL otherwise */
    char family[32];
    int has_counter[NCOUNTERS];
    int64_t counter[NCOUNTERS];
    int optim;           /* any dataset under /optim */
    int has_step;
    int64_t step;
    struct mb_ckpt_layout layout; /* tp 0: not recorded */
    int64_t params;      /* elements under /model */
    int64_t adapter_params; /* elements under /adapter */
    int64_t bytes;       /* all datasets */
};

static void read_family(struct info *in)
{
    snprintf(in->family, sizeof in->family, "unknown");
    if (!in->attr_config)
        return;
    mb_json *j = mb_json_parse(in->attr_config, strlen(in->attr_config), "model_config");
    const char *f = j ? mb_json_str(mb_json_get(j, "family"), NULL) : NULL;
    if (f)
        snprintf(in->family, sizeof in->family, "%s", f);
    else
        mb_err_clear();
    mb_json_free(j);
}

static int gather(mb_ckpt_reader *r, struct info *in)
{
    ck_attr_opt(r, "format", &in->attr_format);
    ck_attr_opt(r, "mb_version", &in->attr_version);
    ck_attr_opt(r, "model_config", &in->attr_config);
    ck_attr_opt(r, "peft", &in->attr_peft);
    ck_attr_opt(r, "base_checkpoint", &in->attr_base);
    read_family(in);
    /* from mb-convert: the HF architecture it came from; else the one mb-convert makes */
    if (!ck_attr_opt(r, "hf_architecture", &in->attr_arch)) {
        const struct mb_bridge_arch *a = mb_bridge_arch_for_family(in->family);
        in->attr_arch = mb_xstrdup(a ? a->hf_name : in->family);
    }
    for (int i = 0; i < NCOUNTERS; i++) {
        char path[64];
        snprintf(path, sizeof path, "/train/%s", counters[i]);
        if (mb_ckpt_reader_find(r, path)) {
            if (mb_ckpt_reader_read_i64(r, path, &in->counter[i]) != 0)
                return -1;
            in->has_counter[i] = 1;
        }
    }
    if (mb_ckpt_reader_find(r, "/optim/step")) {
        if (mb_ckpt_reader_read_i64(r, "/optim/step", &in->step) != 0)
            return -1;
        in->has_step = 1;
    }
    if (mb_ckpt_reader_layout(r, &in->layout) != 0)
        return -1;
    for (int i = 0; i < mb_ckpt_reader_count(r); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(r, i);
        if (ck_under(it->path, "/model"))
            in->params += it->numel;
        if (ck_under(it->path, "/adapter"))
            in->adapter_params += it->numel;
        in->optim |= ck_under(it->path, "/optim");
        in->bytes += it->numel * (int64_t)mb_ckpt_dtype_size(it->dtype);
    }
    return 0;
}

static void info_release(struct info *in)
{
    free(in->attr_format);
    free(in->attr_version);
    free(in->attr_config);
    free(in->attr_arch);
    free(in->attr_peft);
    free(in->attr_base);
}

static const char *or_dash(const char *s)
{
    return s ? s : "-";
}

static void print_text(mb_ckpt_reader *r, const struct info *in)
{
    printf("file: %s\nformat: %s\nmb_version: %s\n", in->file, or_dash(in->attr_format),
           or_dash(in->attr_version));
    printf("family: %s\narchitecture: %s\n", in->family,
           in->attr_arch);
    printf("model_config: %s\n", or_dash(in->attr_config));
    for (int i = 0; i < NCOUNTERS; i++)
        if (in->has_counter[i])
            printf("%s: %lld\n", counters[i], (long long)in->counter[i]);
        else
            printf("%s: -\n", counters[i]);
    if (in->optim && in->has_step)
        printf("optimizer_state: present (step %lld)\n", (long long)in->step);
    else
        printf("optimizer_state: %s\n", in->optim ? "present" : "absent");
    const struct mb_ckpt_layout *l = &in->layout;
    if (l->tp)
        printf("layout: TP %d, CP %d, DP %d, PP %d, distributed optimizer %s\n", l->tp, l->cp,
               l->dp, l->pp, l->distributed_optimizer ? "on" : "off");
    else
        printf("layout: not recorded\n");
    printf("parameters: %lld\n", (long long)in->params);
    if (in->attr_peft)
        printf("peft: %s\nbase_checkpoint: %s\nadapter_parameters: %lld\n", in->attr_peft,
               or_dash(in->attr_base), (long long)in->adapter_params);
    printf("tensors: %d, %lld bytes\n", mb_ckpt_reader_count(r), (long long)in->bytes);
    for (int i = 0; i < mb_ckpt_reader_count(r); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(r, i);
        char shape[128];
        mb_ckpt_shape_str(shape, sizeof shape, it->ndim, it->shape);
        printf("  %s %s %s %lld\n", it->path, mb_ckpt_dtype_name(it->dtype), shape,
               (long long)(it->numel * (int64_t)mb_ckpt_dtype_size(it->dtype)));
    }
}

/* The stored config as a JSON object when it parses, else as a string. */
static void json_config(struct mb_buf *b, const char *config)
{
    mb_json *j = config ? mb_json_parse(config, strlen(config), "model_config") : NULL;

    if (j && mb_json_type_of(j) == MB_JSON_OBJECT)
        mb_buf_addf(b, "\"model_config\": %s", config);
    else
        ck_json_str(b, "model_config", config);
    mb_json_free(j);
    mb_err_clear();
}

static void json_tensors(struct mb_buf *b, mb_ckpt_reader *r)
{
    mb_buf_adds(b, "\"tensors\": [");
    for (int i = 0; i < mb_ckpt_reader_count(r); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(r, i);
        char shape[128];
        mb_ckpt_shape_str(shape, sizeof shape, it->ndim, it->shape);
        mb_buf_adds(b, i ? ",\n  {" : "\n  {");
        ck_json_str(b, "name", it->path);
        mb_buf_addf(b, ", \"dtype\": \"%s\", \"shape\": %s, \"bytes\": %lld}",
                    mb_ckpt_dtype_name(it->dtype), shape,
                    (long long)(it->numel * (int64_t)mb_ckpt_dtype_size(it->dtype)));
    }
    mb_buf_adds(b, "\n]");
}

static void print_json(mb_ckpt_reader *r, const struct info *in)
{
    struct mb_buf b = MB_BUF_INIT;

    mb_buf_adds(&b, "{");
    ck_json_str(&b, "file", in->file);
    mb_buf_adds(&b, ", \"kind\": \"mb\", ");
    ck_json_str(&b, "format", in->attr_format);
    mb_buf_adds(&b, ", ");
    ck_json_str(&b, "mb_version", in->attr_version);
    mb_buf_adds(&b, ", ");
    ck_json_str(&b, "family", in->family);
    mb_buf_adds(&b, ", ");
    ck_json_str(&b, "architecture", in->attr_arch);
    mb_buf_adds(&b, ",\n");
    json_config(&b, in->attr_config);
    for (int i = 0; i < NCOUNTERS; i++)
        if (in->has_counter[i])
            mb_buf_addf(&b, ",\n\"%s\": %lld", counters[i], (long long)in->counter[i]);
        else
            mb_buf_addf(&b, ",\n\"%s\": null", counters[i]);
    mb_buf_addf(&b, ",\n\"optimizer_state\": %s", in->optim ? "true" : "false");
    if (in->has_step)
        mb_buf_addf(&b, ", \"optim_step\": %lld", (long long)in->step);
    const struct mb_ckpt_layout *l = &in->layout;
    if (l->tp)
        mb_buf_addf(&b, ",\n\"layout\": {\"tensor_model_parallel_size\": %d, "
                    "\"context_parallel_size\": %d, \"data_parallel_size\": %d, "
                    "\"pipeline_model_parallel_size\": %d, \"use_distributed_optimizer\": %s}",
                    l->tp, l->cp, l->dp, l->pp, l->distributed_optimizer ? "true" : "false");
    else
        mb_buf_adds(&b, ",\n\"layout\": null");
    mb_buf_addf(&b, ",\n\"parameters\": %lld, \"bytes\": %lld,\n", (long long)in->params,
                (long long)in->bytes);
    if (in->attr_peft) { /* the attribute is the JSON mb-pretrain wrote */
        mb_buf_addf(&b, "\"peft\": %s, ", in->attr_peft);
        ck_json_str(&b, "base_checkpoint", in->attr_base);
        mb_buf_addf(&b, ", \"adapter_parameters\": %lld,\n", (long long)in->adapter_params);
    }
    json_tensors(&b, r);
    mb_buf_adds(&b, "}\n");
    fputs(b.data, stdout);
    mb_buf_release(&b);
}

static int info_mb(const char *arg, int json)
{
    struct info in = { 0 };
    mb_ckpt_reader *r = ck_open(arg, &in.file);

    if (!r)
        return -1;
    int rc = gather(r, &in);
    if (rc == 0 && json)
        print_json(r, &in);
    else if (rc == 0)
        print_text(r, &in);
    info_release(&in);
    free(in.file);
    mb_ckpt_reader_close(r);
    return rc;
}

int cmd_info(int argc, char **argv)
{
    struct info_opts o = { 0 };
    int rc = mb_cli_parse(&info_cli, argc, argv, &o);

    if (rc == 0 && o.nargs != 1)
        rc = mb_err_set(MB_E_USAGE, NULL, "info takes one checkpoint (got %d arguments)",
                        o.nargs);
    if (rc == 0 && ck_is_hf_dir(o.args[0]))
        rc = ck_info_hf(o.args[0], o.json);
    else if (rc == 0)
        rc = info_mb(o.args[0], o.json);
    free(o.args);
    return rc;
}
