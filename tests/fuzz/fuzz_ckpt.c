/* tests/fuzz/fuzz_ckpt.c - the HDF5 checkpoint reader as mb-ckpt uses it, on any bytes.
 *
 * The input is a checkpoint file. It goes through `mb-ckpt info`, `info --json` and
 * `verify` (ckpt/reader.c, mb-ckpt/info.c, verify.c): every dataset and attribute those
 * read. Any outcome but a crash is fine; verify accepting a damaged file is caught by
 * the mutation tests, not here.
 */
#include <stdlib.h>

#include "mb-ckpt/ck.h"
#include "tests/fuzz/fuzz_common.h"

/* libhdf5 asks malloc for whatever size a damaged header claims and handles a NULL
 * answer as an error, as it gets without ASan: let malloc say NULL here too (mb's own
 * allocations then end the run through core/mem.c, which libFuzzer reports). Memory
 * libhdf5 keeps after a failed read is libhdf5's. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libhdf5\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;

    if (!ready) {
        setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1);
        fuzz_quiet_stdout();
        ready = 1;
    }
    char *path = (char *)fuzz_file("ckpt.h5", data, size);
    char info[] = "info", verify[] = "verify", json[] = "--json";
    char *argv_info[] = { info, path, NULL };
    char *argv_json[] = { info, json, path, NULL };
    char *argv_verify[] = { verify, path, NULL };
    (void)cmd_info(2, argv_info);
    (void)cmd_info(3, argv_json);
    (void)cmd_verify(2, argv_verify);
    return 0;
}
