/* train/metrics.c - logger.metrics_jsonl: one JSON object per log line, appended and
 * flushed at once, so that `tail -f FILE | jq` follows the run. Rank 0 writes. */
#include "train/internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/str.h"

int mb_train_metrics_open(struct mb_trainer *t)
{
    const char *key = "logger.metrics_jsonl";
    if (t->dist->rank != 0 || !mb_config_has(t->cfg, key))
        return 0;
    const char *path = mb_config_str(t->cfg, key);
    t->metrics = fopen(path, "a");
    if (!t->metrics)
        return mb_err_errno(path, "cannot open the metrics file (%s)", key);
    t->metrics_path = path;
    return 0;
}

void mb_train_metrics_close(struct mb_trainer *t)
{
    if (t->metrics && fclose(t->metrics) != 0)
        mb_log_warn("%s: write failed: %s", t->metrics_path, strerror(errno));
    t->metrics = NULL;
}

void mb_metrics_begin(struct mb_buf *b, const char *type, int64_t iteration)
{
    mb_buf_addf(b, "{\"type\": \"%s\", \"iteration\": %lld", type, (long long)iteration);
}

void mb_metrics_int(struct mb_buf *b, const char *name, int64_t v)
{
    mb_buf_addf(b, ", \"%s\": %lld", name, (long long)v);
}

/* JSON has no NaN or inf: they are null */
void mb_metrics_real(struct mb_buf *b, const char *name, double v)
{
    mb_buf_addf(b, ", \"%s\": ", name);
    if (isfinite(v))
        mb_buf_add_real(b, v);
    else
        mb_buf_adds(b, "null");
}

void mb_train_metrics_emit(struct mb_trainer *t, struct mb_buf *b)
{
    mb_buf_adds(b, "}\n");
    if (t->metrics &&
        (fwrite(b->data, 1, b->len, t->metrics) != b->len || fflush(t->metrics) != 0)) {
        mb_log_warn("%s: write failed: %s; no more metrics are written", t->metrics_path,
                    strerror(errno));
        fclose(t->metrics);
        t->metrics = NULL;
    }
    mb_buf_release(b);
}
