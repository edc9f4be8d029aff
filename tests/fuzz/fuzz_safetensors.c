/* tests/fuzz/fuzz_safetensors.c - the safetensors reader (io/safetensors.c) on any bytes.
 *
 * The input is one .safetensors file. Once mb_st_open accepts it, every tensor must lie
 * inside the file, have the byte count its dtype and shape imply, and be found by name;
 * the data of each is read whole (so a range past the mapping faults).
 */
#include <string.h>

#include "io/safetensors.h"
#include "tests/fuzz/fuzz_common.h"

static void check_tensor(const mb_st_file *f, const struct mb_st_tensor *t, const char *base,
                         size_t size)
{
    const char *p = t->data;
    unsigned sum = 0;

    fuzz_check(t->nbytes == (size_t)t->numel * mb_st_dtype_size(t->dtype), "nbytes != numel * size");
    fuzz_check(t->nbytes == 0 || (p >= base && p + t->nbytes <= base + size),
               "tensor data outside the file");
    fuzz_check(mb_st_find(f, t->name) == t, "tensor not found by its own name");
    fuzz_check(t->ndim >= 0 && t->ndim <= MB_ST_MAX_DIM, "ndim out of range");
    for (size_t i = 0; i < t->nbytes; i++)
        sum += (unsigned char)p[i];
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("model.safetensors", data, size);
    mb_st_file *f = mb_st_open(path);

    if (!f)
        return 0;
    const char *base = NULL;
    for (int i = 0; i < mb_st_count(f); i++) {
        const struct mb_st_tensor *t = mb_st_at(f, i);
        if (t->nbytes && (!base || (const char *)t->data < base))
            base = t->data;
    }
    /* the first tensor's data starts right after the header: recover the map's base */
    if (base && size >= 8) {
        uint64_t hlen;
        memcpy(&hlen, data, 8);
        base -= 8 + hlen;
    }
    for (int i = 0; i < mb_st_count(f); i++)
        check_tensor(f, mb_st_at(f, i), base, size);
    (void)mb_st_metadata(f, "format");
    mb_st_close(f);
    return 0;
}
