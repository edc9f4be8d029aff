/* ckpt/hftok.c - the HF tokenizer files a checkpoint carries as /hf/files/ blobs, put
 * where the tokenizer loader reads them (mb-generate, mb-finetune). */
#include "ckpt/ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/defs.h"
#include "core/err.h"
#include "core/mem.h"

/* tokenizer.json, and tokenizer_config.json where the EOS (and chat template) is named */
static const char *const hf_tokenizer_files[] = { "tokenizer.json", "tokenizer_config.json" };

/* Blob /hf/files/NAME of R, if there is one, into DIR/NAME. */
static int write_blob(mb_ckpt_reader *r, const char *dir, const char *name)
{
    char *path = mb_xasprintf("/hf/files/%s", name), *file = NULL;
    void *data = NULL;
    size_t len = 0;
    int rc = 0;
    if (mb_ckpt_reader_find(r, path)) {
        file = mb_xasprintf("%s/%s", dir, name);
        rc = mb_ckpt_reader_read_blob(r, path, &data, &len);
        FILE *f = rc == 0 ? fopen(file, "wb") : NULL;
        if (rc == 0 && !f)
            rc = mb_err_errno(file, "cannot write");
        else if (rc == 0 && (fwrite(data, 1, len, f) != len) + (fclose(f) != 0))
            rc = mb_err_errno(file, "cannot write");
    }
    free(data);
    free(file);
    free(path);
    return rc;
}

int mb_ckpt_hf_tokenizer_extract(mb_ckpt_reader *r, const char *tool, char **dir)
{
    *dir = NULL;
    if (!mb_ckpt_reader_find(r, "/hf/files/tokenizer.json"))
        return 0;
    const char *tmp = getenv("TMPDIR");
    char *d = mb_xasprintf("%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", tool);
    if (!mkdtemp(d)) {
        int rc = mb_err_errno(d, "cannot make a temporary directory");
        free(d);
        return rc;
    }
    for (size_t i = 0; i < MB_ARRAY_LEN(hf_tokenizer_files); i++)
        if (write_blob(r, d, hf_tokenizer_files[i]) < 0) {
            mb_ckpt_hf_tokenizer_remove(d);
            return -1;
        }
    *dir = d;
    return 0;
}

void mb_ckpt_hf_tokenizer_remove(char *dir)
{
    if (!dir)
        return;
    for (size_t i = 0; i < MB_ARRAY_LEN(hf_tokenizer_files); i++) {
        char *file = mb_xasprintf("%s/%s", dir, hf_tokenizer_files[i]);
        unlink(file);
        free(file);
    }
    rmdir(dir);
    free(dir);
}
