/* kern/ops.c - the backend lookup: one name (dist.device, --device, $MB_DEVICE) to one
 * op table. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "kern/ops.h"

const struct mb_ops *mb_ops_find(const char *name, const char *where)
{
    if (strcmp(name, "cpu") == 0 || strcmp(name, "auto") == 0)
        return mb_ops_cpu();
    if (strcmp(name, "cpu-guarded") == 0)
        return mb_ops_cpu_guarded();
    if (strcmp(name, "cuda") == 0) {
        mb_err_set(MB_E_UNSUPPORTED, where,
                   "device cuda: this mb was built without the CUDA backend; use cpu or auto");
        return NULL;
    }
    mb_err_set(MB_E_USAGE, where, "unknown device '%s' (known: cpu, cpu-guarded, cuda, auto)",
               name);
    return NULL;
}

const char *mb_ops_default_name(void)
{
    const char *env = getenv("MB_DEVICE");
    return env && *env ? env : "auto";
}

void *mb_host_view(const struct mb_ops *o, struct mb_exec *ex, const void *dev, size_t bytes)
{
    if (o->host_memory || !dev)
        return (void *)dev;
    void *h = mb_xmalloc(bytes ? bytes : 1);
    o->to_host(ex, h, dev, bytes);
    return h;
}

void mb_host_view_end(const struct mb_ops *o, struct mb_exec *ex, void *dev, void *host,
                      size_t bytes, bool write)
{
    if (o->host_memory || !dev)
        return;
    if (write)
        o->from_host(ex, dev, host, bytes);
    free(host);
}
