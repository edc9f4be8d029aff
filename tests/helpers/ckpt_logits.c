/* ckpt_logits - load a checkpoint into mb's model and write its logits and loss on a
 * token sequence, for tests/oracle/hf_convert.py.
 *
 *   ckpt_logits CKPT TOKENS.npy OUT_DIR
 *
 * CKPT is a checkpoint file or a directory with `latest`; TOKENS.npy is int32 [B, T].
 * Labels are the next token (the last position of each row has no loss). Writes
 * OUT_DIR/logits.npy (float32 [B, T, V]) and OUT_DIR/loss.npy (float32 scalar, the mean
 * token loss). An adapter-only checkpoint runs with its adapters on its base.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "io/npy.h"
#include "kern/ops.h"
#include "nn/model.h"

static int fail(void)
{
    mb_log_error_record();
    return 1;
}

/* The model config stored in FILE. */
static int read_config(const char *file, struct mb_model_config *cfg)
{
    mb_ckpt_reader *r = mb_ckpt_reader_open(NULL, file);
    char *text = NULL;
    int rc = r ? mb_ckpt_reader_attr(r, "model_config", &text) : -1;
    mb_json *j = rc == 0 ? mb_json_parse(text, strlen(text), file) : NULL;

    rc = j ? mb_model_config_from_json(cfg, j, file) : -1;
    mb_json_free(j);
    free(text);
    mb_ckpt_reader_close(r);
    return rc;
}

/* The adapters FILE holds (kind NONE for a whole model). */
static int read_peft(const char *file, struct mb_peft_config *pc)
{
    mb_ckpt_reader *r = mb_ckpt_reader_open(NULL, file);
    char *base = NULL;
    int rc = r ? mb_ckpt_reader_peft(r, file, pc, &base) : -1;
    free(base);
    mb_ckpt_reader_close(r);
    return rc;
}

int main(int argc, char **argv)
{
    mb_log_set_tool("ckpt_logits");
    if (argc != 4) {
        fprintf(stderr, "usage: ckpt_logits CKPT TOKENS.npy OUT_DIR\n");
        return 2;
    }
    char *file = NULL;
    struct mb_model_config cfg;
    struct mb_model m;
    struct mb_npy tok = { 0 };
    if (mb_ckpt_resolve(argv[1], &file) != 0 || !file)
        return file ? fail() : (fprintf(stderr, "ckpt_logits: no checkpoint\n"), 1);
    struct mb_peft_config pc;
    if (read_config(file, &cfg) != 0 || read_peft(file, &pc) != 0 ||
        mb_model_init_inference_peft(&m, &cfg, mb_ops_cpu(), &pc) != 0 ||
        mb_ckpt_load_model(file, NULL, &m) != 0 || mb_npy_read(argv[2], &tok) != 0)
        return fail();
    if (tok.dtype != MB_NPY_I4 || tok.ndim != 2)
        return fprintf(stderr, "ckpt_logits: tokens must be int32 [B, T]\n"), 1;
    int64_t b = tok.shape[0], tl = tok.shape[1], n = b * tl, v = cfg.vocab_size;
    const int32_t *ids = tok.data;
    int32_t *labels = mb_xmalloc((size_t)n * sizeof *labels);
    float *mask = mb_xmalloc((size_t)n * sizeof *mask);
    for (int64_t i = 0; i < n; i++) {
        int last = i % tl == tl - 1;
        labels[i] = last ? 0 : ids[i + 1];
        mask[i] = last ? 0.0f : 1.0f;
    }
    float *logits = mb_xmalloc((size_t)(n * v) * sizeof *logits);
    struct mb_batch batch = { b, tl, ids, labels, mask, NULL, NULL };
    double loss_sum, mask_sum;
    if (mb_model_step(&m, &batch, 0.0f, &loss_sum, &mask_sum, logits) != 0)
        return fail();
    float loss = (float)(loss_sum / mask_sum);
    char path[4096];
    int64_t shape[3] = { b, tl, v };
    if (mkdir(argv[3], 0777) != 0 && errno != EEXIST)
        return mb_err_errno(argv[3], "mkdir"), fail();
    snprintf(path, sizeof path, "%s/logits.npy", argv[3]);
    int rc = mb_npy_write(path, MB_NPY_F4, 3, shape, logits);
    snprintf(path, sizeof path, "%s/loss.npy", argv[3]);
    if (rc == 0)
        rc = mb_npy_write(path, MB_NPY_F4, 0, shape, &loss);
    if (rc != 0)
        return fail();
    mb_npy_free(&tok);
    mb_model_free(&m);
    free(labels);
    free(mask);
    free(logits);
    free(file);
    return 0;
}
