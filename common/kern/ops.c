/* kern/ops.c - the backend lookup: one name (dist.device, --device, $MB_DEVICE) to one
 * op table. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
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
