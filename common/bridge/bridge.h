/* bridge/bridge.h - HuggingFace <-> mb: architectures, config.json, tensor mapping.
 *
 * One small table per architecture (bridge/arch.c) lists every HF tensor in the order
 * of transformers' model.state_dict(), with the Megatron tensor it belongs to and how
 * it goes there (formats.md 4 and 5):
 *
 *   COPY   the same values                     (norms, embeddings, o_proj, down_proj)
 *   T      transposed: GPT-2 Conv1D [in, out]  -> [out, in]
 *   Q K V  one of q/k/v_proj, placed by query group into linear_qkv (5.2)
 *   GATE UP  the halves of linear_fc1 (5.3)
 *   QKV    GPT-2 c_attn bias: [q | k | v], regrouped per head
 *   QKV_T  GPT-2 c_attn weight: transposed, then regrouped per head
 *
 * Everything moves whole elements, so the code is the same for fp32, bf16 and fp16
 * (ES bytes per element) and a round trip is bit-exact. Work is per layer slice: one
 * Megatron slice [rows, cols] of one layer and its HF tensors at a time.
 */
#ifndef MB_BRIDGE_BRIDGE_H
#define MB_BRIDGE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"
#include "io/safetensors.h"
#include "nn/config.h"
#include "nn/params.h"

enum mb_bridge_op { MB_BR_COPY, MB_BR_T, MB_BR_Q, MB_BR_K, MB_BR_V, MB_BR_GATE, MB_BR_UP,
                    MB_BR_QKV, MB_BR_QKV_T };

/* One HF tensor. HF contains "%d" for the layer index when the Megatron tensor is per
 * layer. */
struct mb_bridge_rule {
    const char *hf;
    const char *mb;
    enum mb_bridge_op op;
};

struct mb_bridge_arch {
    const char *hf_name;    /* "LlamaForCausalLM" */
    const char *model_type; /* "llama" */
    const char *family;     /* mb family: "llama" */
    const struct mb_bridge_rule *rules;
    int nrules;
    const char *strip_prefix; /* also accepted without this prefix on input ("transformer.") */
};

/* The architecture named ARCHITECTURE (config.json "architectures"[0]), or NULL. */
const struct mb_bridge_arch *mb_bridge_arch_find(const char *architecture);
/* The architecture that writes an mb model of FAMILY, or NULL. */
const struct mb_bridge_arch *mb_bridge_arch_for_family(const char *family);
/* "LlamaForCausalLM, MistralForCausalLM, ..." (static). */
const char *mb_bridge_arch_list(void);
/* The HF tensor NAME in ST, also found without ARCH's optional strip_prefix (GPT-2
 * files are saved with and without "transformer."); NULL when there is none. */
const struct mb_st_tensor *mb_bridge_find_tensor(const mb_st_dir *st,
                                                 const struct mb_bridge_arch *arch,
                                                 const char *name);

/* Parse config.json TEXT (WHERE names it in errors) into C. Sets *ARCH. -1 with mb_err
 * naming the field: unsupported architecture, a value mb cannot represent (unknown
 * rope type, activation, layer_types not a pattern ...), missing sizes. */
MB_MUST_CHECK int mb_bridge_config_from_hf(const char *text, size_t len, const char *where,
                                           struct mb_model_config *c,
                                           const struct mb_bridge_arch **arch);
/* A config.json (malloc'd text) for C written by ARCH, that transformers loads into an
 * equivalent model; DTYPE ("float32", "bfloat16", "float16") is its "dtype". NULL with
 * mb_err if C uses something the architecture cannot express. */
char *mb_bridge_config_to_hf(const struct mb_bridge_arch *arch, const struct mb_model_config *c,
                             const char *dtype);

/* The HF name of RULE at LAYER (for per-layer rules) into BUF[CAP]. */
void mb_bridge_hf_name(const struct mb_bridge_rule *rule, int64_t layer, char *buf, size_t cap);

/* Shape of RULE's HF tensor, given the Megatron parameter P (its per-layer slice when
 * P is per layer). Returns ndim. */
int mb_bridge_hf_shape(const struct mb_bridge_rule *rule, const struct mb_param *p,
                       const struct mb_model_config *c, int64_t *shape);

/* Move RULE's HF tensor HF into (TO_MB) or out of (!TO_MB) the Megatron slice SLICE of
 * parameter P; ES bytes per element. TMP is scratch of the slice's size (QKV_T only). */
void mb_bridge_move(const struct mb_bridge_rule *rule, const struct mb_param *p,
                    const struct mb_model_config *c, size_t es, int to_mb, void *slice,
                    void *hf, void *tmp);

/* Bytes of P's per-layer slice (all of P when not per layer) in elements of ES bytes. */
size_t mb_bridge_slice_bytes(const struct mb_param *p, size_t es);

/* A tied model (CFG) whose files in ST also hold the output matrix (lm_head.weight):
 * *HEAD is its name (valid while ST is open) when it equals the embedding byte for
 * byte, NULL when there is none or the model is not tied; -1 with mb_err naming SRC and
 * the tensor when it differs (bridge/tied.c). */
MB_MUST_CHECK int mb_bridge_tied_head(const mb_st_dir *st, const struct mb_bridge_arch *arch,
                                      const struct mb_model_config *cfg, const char *src,
                                      const char **head);

/* ---- an HF directory used in place (bridge/hfdir.c) ----------------------------- */

/* -1 with mb_err naming the file when PATH is a .gguf file, or a directory without
 * config.json that holds one: GGUF is not a format mb reads. 0 otherwise (PATH may
 * still be no model at all). */
MB_MUST_CHECK int mb_bridge_check_not_gguf(const char *path);
/* 1 if PATH is a directory with config.json and no `latest` (an HF model, not an mb
 * checkpoint directory). */
int mb_bridge_is_hf_dir(const char *path);

struct mb_bridge_hf {
    char *dir;
    struct mb_model_config cfg;
    const struct mb_bridge_arch *arch;
    mb_st_dir *st;
    struct mb_param_table params; /* mb_param_table_build(cfg) */
    enum mb_st_dtype *dtype;      /* per parameter: the element type of its HF tensors */
};

/* Read DIR's config.json and map its safetensors; check that every tensor the model
 * needs is there with a float type (one per parameter) and its shape. -1 with mb_err
 * naming the file and tensor. Extra tensors are ignored. */
MB_MUST_CHECK int mb_bridge_hf_open(struct mb_bridge_hf *h, const char *dir);
/* Parameter I of h->params as fp32 into OUT[numel], in mb's layout. */
MB_MUST_CHECK int mb_bridge_hf_read_param(struct mb_bridge_hf *h, int i, float *out);
void mb_bridge_hf_close(struct mb_bridge_hf *h);

#endif /* MB_BRIDGE_BRIDGE_H */
