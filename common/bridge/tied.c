/* bridge/tied.c - tied models whose safetensors still hold the output matrix.
 *
 * transformers writes a tied model without lm_head.weight, but files saved otherwise
 * (an older save, safetensors' save_file on the full state dict) may keep it beside the
 * embedding. Equal bytes are the same tensor: accepted, and remembered (the
 * hf_tied_head attribute of mb-convert) so that the way back writes it again and the
 * files come back as they were. Different bytes mean the model is not tied: refused.
 */
#include <string.h>

#include "bridge/bridge.h"
#include "core/err.h"

/* The HF tensor of the rule mapping to MB_NAME, with or without the optional prefix. */
static const struct mb_st_tensor *tensor_for(const mb_st_dir *st, const struct mb_bridge_arch *a,
                                             const char *mb_name)
{
    for (int r = 0; r < a->nrules; r++)
        if (strcmp(a->rules[r].mb, mb_name) == 0)
            return mb_bridge_find_tensor(st, a, a->rules[r].hf);
    return NULL;
}

int mb_bridge_tied_head(const mb_st_dir *st, const struct mb_bridge_arch *arch,
                       const struct mb_model_config *cfg, const char *src, const char **head)
{
    *head = NULL;
    if (!cfg->share_embeddings_and_output_weights)
        return 0;
    const struct mb_st_tensor *h = tensor_for(st, arch, "output_layer.weight");
    const struct mb_st_tensor *e = tensor_for(st, arch, "embedding.word_embeddings.weight");
    if (!h || !e)
        return 0;
    int same = h->dtype == e->dtype && h->ndim == e->ndim && h->nbytes == e->nbytes &&
               memcmp(h->shape, e->shape, (size_t)h->ndim * sizeof *h->shape) == 0 &&
               memcmp(h->data, e->data, h->nbytes) == 0;
    mb_st_release(h);
    mb_st_release(e);
    if (!same)
        return mb_err_set(MB_E_INVALID, src, "tensor '%s' differs from '%s', but config.json "
                          "ties them (tie_word_embeddings): set it false for an untied model",
                          h->name, e->name);
    *head = h->name;
    return 0;
}
