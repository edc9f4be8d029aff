/* mb-generate - continue a prompt with a model from a checkpoint.
 *
 *   mb-generate CKPT --tokenizer FILE --prompt TEXT --max-new-tokens N
 *               [--greedy | --temperature T --top-k K --top-p P --seed S] [--ids]
 *
 * Loads the checkpoint (model config from its model_config attribute, weights from
 * /model; an adapter-only checkpoint's base from its base_checkpoint and its LoRA or
 * DoRA adapters, applied unmerged) or a HuggingFace directory (through the bridge, in memory), the tokenizer, encodes the prompt with its special tokens (BOS as HF does),
 * prefills a key/value cache with it (nn/infer.h) and then runs one position per new
 * token, choosing each with nn/sample.h, until EOS or N tokens. Text goes to stdout as it
 * comes: the whole id list is decoded each step and the new suffix printed.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge/bridge.h"
#include "ckpt/ckpt.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "core/time.h"
#include "core/tool.h"
#include "core/utf8.h"
#include "kern/ops.h"
#include "nn/infer.h"
#include "nn/model.h"
#include "nn/sample.h"
#include "tok/tokenizer.h"

#define MAX_EOS 16

struct gen_opts {
    const char *tokenizer, *prompt, *prompt_ids, *eos_ids, *device;
    int64_t max_new_tokens, top_k, seed;
    double temperature, top_p;
    int greedy, ids, ignore_eos;
    char **args;
    int nargs;
};

#define OPT(f) offsetof(struct gen_opts, f)
static const struct mb_opt gen_options[] = {
    { "tokenizer", 't', MB_OPT_STR, OPT(tokenizer), "FILE",
      "tokenizer.json, a directory holding one, or 'bytes' (default: the checkpoint's)", 0, 0 },
    { "prompt", 'p', MB_OPT_STR, OPT(prompt), "TEXT", "the prompt (default: read stdin)", 0, 0 },
    { "prompt-ids", 0, MB_OPT_STR, OPT(prompt_ids), "IDS",
      "the prompt as token ids, e.g. \"1 15043 3186\" (no tokenizer pass)", 0, 0 },
    { "max-new-tokens", 'n', MB_OPT_INT, OPT(max_new_tokens), "N",
      "tokens to generate at most (default 64)", 0, INT32_MAX },
    { "greedy", 0, MB_OPT_FLAG, OPT(greedy), NULL,
      "take the most likely token each step (the default without sampling options)", 0, 0 },
    { "temperature", 0, MB_OPT_DOUBLE, OPT(temperature), "T",
      "sample, dividing the logits by T > 0 (default 1)", 0, 0 },
    { "top-k", 0, MB_OPT_INT, OPT(top_k), "K", "sample from the K most likely tokens (0: all)", 0,
      INT32_MAX },
    { "top-p", 0, MB_OPT_DOUBLE, OPT(top_p), "P",
      "sample from the smallest set of tokens with probability >= P (default 1: all)", 0, 0 },
    { "seed", 0, MB_OPT_INT, OPT(seed), "S", "seed of the sampling (default 0)", 0, INT64_MAX },
    { "ids", 0, MB_OPT_FLAG, OPT(ids), NULL,
      "print the generated token ids on one line instead of text", 0, 0 },
    { "eos-id", 0, MB_OPT_STR, OPT(eos_ids), "IDS",
      "stop at any of these ids, comma-separated (default: the tokenizer's EOS)", 0, 0 },
    { "ignore-eos", 0, MB_OPT_FLAG, OPT(ignore_eos), NULL, "never stop before N tokens", 0, 0 },
    { "device", 0, MB_OPT_STR, OPT(device), "NAME",
      "cpu, cpu-guarded (tests), cuda or auto (default: $MB_DEVICE, else auto)", 0, 0 },
};

static const struct mb_cli gen_cli = {
    .tool = "mb-generate",
    .synopsis = "CKPT [--tokenizer FILE] [--prompt TEXT] [--max-new-tokens N] "
                "[--greedy | --temperature T --top-k K --top-p P --seed S] [--ids]",
    .summary = "Continue a prompt with the model of an mb checkpoint (file or directory) or of "
               "a HuggingFace directory.",
    .opts = gen_options,
    .nopts = MB_ARRAY_LEN(gen_options),
    .args_offset = OPT(args),
    .nargs_offset = OPT(nargs),
    .version_extra = NULL,
};

/* Everything one run holds. */
struct gen {
    const struct gen_opts *o;
    char *file;                  /* the resolved checkpoint file */
    char *tok_spec;              /* from the checkpoint when --tokenizer is absent */
    char *tok_tmpdir;            /* where the checkpoint's HF tokenizer files were put */
    const struct mb_ops *ops;    /* the backend of --device */
    struct mb_model m;
    mb_tokenizer *tok;
    struct mb_ids prompt, out;   /* prompt ids; generated ids */
    int32_t eos[MAX_EOS];
    int neos;
    struct mb_sample_opts sample;
    size_t printed;              /* bytes of the continuation text already written */
    size_t prompt_text_len;      /* bytes of the decoded prompt */
};

static bool sampling_asked(const struct gen_opts *o)
{
    return o->temperature >= 0 || o->top_k >= 0 || o->top_p >= 0 || o->seed >= 0;
}

static int check_options(const struct gen_opts *o, struct mb_sample_opts *s)
{
    if (o->nargs != 1)
        return mb_err_set(MB_E_USAGE, NULL, "give one checkpoint (a file, a directory with "
                          "'latest', or a HuggingFace directory); see --help");
    if (o->greedy && sampling_asked(o))
        return mb_err_set(MB_E_USAGE, "--greedy",
                          "cannot be combined with --temperature, --top-k, --top-p or --seed");
    if (o->prompt && o->prompt_ids)
        return mb_err_set(MB_E_USAGE, "--prompt-ids", "give --prompt or --prompt-ids, not both");
    if (o->temperature >= 0 && !(o->temperature > 0))
        return mb_err_set(MB_E_USAGE, "--temperature", "must be > 0 (use --greedy for 0)");
    if (o->top_p >= 0 && !(o->top_p > 0 && o->top_p <= 1))
        return mb_err_set(MB_E_USAGE, "--top-p", "must be in (0, 1]");
    if (o->eos_ids && o->ignore_eos)
        return mb_err_set(MB_E_USAGE, "--ignore-eos", "cannot be combined with --eos-id");
    *s = (struct mb_sample_opts){
        .greedy = !sampling_asked(o),
        .temperature = o->temperature > 0 ? o->temperature : 1.0,
        .top_k = o->top_k > 0 ? o->top_k : 0,
        .top_p = o->top_p > 0 ? o->top_p : 1.0,
        .seed = o->seed > 0 ? (uint64_t)o->seed : 0,
    };
    return 0;
}

/* Parse "1 2 3" or "1,2,3" into IDS; WHAT names the option in errors. */
static int parse_id_list(const char *s, const char *what, struct mb_ids *ids)
{
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX)
            return mb_err_set(MB_E_USAGE, what, "'%s' is not a list of token ids", s);
        mb_ids_push(ids, (int32_t)v);
        p = end;
    }
    return 0;
}

/* A checkpoint converted from a HuggingFace directory carries its tokenizer files as
 * /hf/files/NAME blobs: put them where the tokenizer loader reads them. */
static int extract_hf_tokenizer(struct gen *g, mb_ckpt_reader *r)
{
    if (mb_ckpt_hf_tokenizer_extract(r, "mb-generate", &g->tok_tmpdir) < 0)
        return -1;
    if (g->tok_tmpdir)
        g->tok_spec = mb_xstrdup(g->tok_tmpdir);
    return 0;
}

static void remove_hf_tokenizer(struct gen *g)
{
    mb_ckpt_hf_tokenizer_remove(g->tok_tmpdir);
    g->tok_tmpdir = NULL;
}

/* The model config from the checkpoint's model_config attribute, and its tokenizer: the
 * HF tokenizer files it carries (a converted model, or one trained from scratch with a
 * tokenizer.json), else the one its `tokenizer` attribute names. */
static int read_header(struct gen *g)
{
    mb_ckpt_reader *r = mb_ckpt_reader_open(NULL, g->file);
    if (!r)
        return -1;
    char *json_text = NULL, *base = NULL;
    struct mb_peft_config pc; /* an adapter-only checkpoint: its adapters, unmerged */
    int rc = mb_ckpt_reader_attr(r, "model_config", &json_text);
    if (rc == 0)
        rc = mb_ckpt_reader_peft(r, g->file, &pc, &base);
    free(base);
    if (rc == 0 && mb_ckpt_reader_attr(r, "tokenizer", &g->tok_spec) < 0) {
        mb_err_clear();
        g->tok_spec = NULL;
    }
    if (rc == 0 && !g->o->tokenizer &&
        (!g->tok_spec || !*g->tok_spec || mb_ckpt_reader_find(r, "/hf/files/tokenizer.json"))) {
        free(g->tok_spec);
        g->tok_spec = NULL;
        rc = extract_hf_tokenizer(g, r);
    }
    mb_ckpt_reader_close(r);
    if (rc < 0)
        return -1;
    mb_json *j = mb_json_parse(json_text, strlen(json_text), "model_config");
    struct mb_model_config cfg;
    char where[4200];
    snprintf(where, sizeof(where), "%s: model_config", g->file);
    rc = j ? mb_model_config_from_json(&cfg, j, where) : -1;
    mb_json_free(j);
    free(json_text);
    if (rc == 0)
        rc = mb_model_init_inference_peft(&g->m, &cfg, g->ops, &pc);
    return rc;
}

/* Weights from /model (fp32 or bf16, widened) into the model; for an adapter-only
 * checkpoint the base from its base_checkpoint and the adapters from /adapter. */
static int load_weights(struct gen *g)
{
    return mb_ckpt_load_model(g->file, NULL, &g->m);
}

/* An HF directory, converted in memory through the bridge: its parameters one at a time
 * into the model, and the tokenizer beside them. */
static int load_hf_dir(struct gen *g, const char *dir)
{
    struct mb_bridge_hf h;
    if (mb_bridge_hf_open(&h, dir) < 0)
        return -1;
    g->file = mb_xstrdup(dir);
    int rc = mb_model_init_inference(&g->m, &h.cfg, g->ops);
    const struct mb_param_table *p = &g->m.params;
    int64_t largest = 0;
    for (int i = 0; rc == 0 && i < p->count; i++) {
        MB_ASSERT(strcmp(p->items[i].name, h.params.items[i].name) == 0);
        largest = MB_MAX(largest, p->items[i].numel);
    }
    float *host = rc == 0 ? mb_xmalloc((size_t)largest * sizeof(float)) : NULL;
    for (int i = 0; rc == 0 && i < p->count; i++) {
        rc = mb_bridge_hf_read_param(&h, i, host);
        if (rc == 0)
            mb_from_host_f32(g->m.ops, g->m.ex, g->m.w + p->items[i].offset, host,
                             p->items[i].numel);
    }
    free(host);
    mb_bridge_hf_close(&h);
    char *tok = mb_xasprintf("%s/tokenizer.json", dir);
    if (rc == 0 && mb_fs_exists(tok))
        g->tok_spec = mb_xstrdup(dir);
    free(tok);
    return rc;
}

static int load_checkpoint(struct gen *g)
{
    const char *spec = g->o->args[0];
    if (mb_bridge_check_not_gguf(spec) < 0)
        return -1;
    if (mb_bridge_is_hf_dir(spec))
        return load_hf_dir(g, spec);
    if (mb_ckpt_resolve(spec, &g->file) < 0)
        return -1;
    if (!g->file)
        return mb_err_set(MB_E_INVALID, spec, "no checkpoint here (a directory needs 'latest')");
    if (read_header(g) < 0 || load_weights(g) < 0)
        return -1;
    return 0;
}

static int load_tokenizer(struct gen *g)
{
    const struct gen_opts *o = g->o;
    const char *spec = o->tokenizer ? o->tokenizer
                                    : (g->tok_spec && *g->tok_spec ? g->tok_spec : NULL);
    if (!spec) {
        if (o->prompt_ids && o->ids)
            return 0; /* ids in, ids out: no tokenizer needed */
        return mb_err_set(MB_E_USAGE, "--tokenizer",
                          "the checkpoint names no tokenizer: give --tokenizer FILE");
    }
    g->tok = mb_tokenizer_load(spec);
    remove_hf_tokenizer(g);
    if (!g->tok)
        return -1;
    int64_t tv = mb_tokenizer_vocab_size(g->tok), mv = g->m.cfg.vocab_size;
    if (tv > mv)
        return mb_err_set(MB_E_INVALID, spec,
                          "the tokenizer has %lld tokens but the model's vocabulary is %lld",
                          (long long)tv, (long long)mv);
    if (!o->ids && mb_tokenizer_can_decode(g->tok) < 0)
        return -1;
    return 0;
}

/* The prompt's ids: --prompt-ids, or --prompt / stdin through the tokenizer. */
static int read_prompt(struct gen *g)
{
    const struct gen_opts *o = g->o;
    if (o->prompt_ids)
        return parse_id_list(o->prompt_ids, "--prompt-ids", &g->prompt);
    struct mb_buf text = MB_BUF_INIT;
    if (o->prompt) {
        mb_buf_adds(&text, o->prompt);
    } else {
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
            mb_buf_add(&text, chunk, n);
        if (ferror(stdin)) {
            mb_buf_release(&text);
            return mb_err_errno("stdin", "read");
        }
    }
    int rc = 0;
    if (!mb_utf8_is_valid(text.data ? text.data : "", text.len))
        rc = mb_err_set(MB_E_INVALID, o->prompt ? "--prompt" : "stdin",
                        "the prompt is not valid UTF-8");
    if (rc == 0) {
        mb_tok_encoder *e = mb_tok_encoder_new(g->tok);
        mb_tok_encode(e, text.data ? text.data : "", text.len, 1, &g->prompt);
        mb_tok_encoder_free(e);
    }
    mb_buf_release(&text);
    return rc;
}

static int check_prompt(const struct gen *g)
{
    const struct mb_model_config *c = &g->m.cfg;
    if (g->prompt.len == 0)
        return mb_err_set(MB_E_INVALID, "prompt", "the prompt has no tokens");
    if ((int64_t)g->prompt.len > c->max_position_embeddings)
        return mb_err_set(MB_E_INVALID, "prompt",
                          "%zu tokens is longer than the model's max_position_embeddings (%lld)",
                          g->prompt.len, (long long)c->max_position_embeddings);
    for (size_t i = 0; i < g->prompt.len; i++)
        if (g->prompt.v[i] >= mb_model_real_vocab(c))
            return mb_err_set(MB_E_INVALID, "prompt",
                              "token id %d is outside the model's vocabulary of %lld",
                              g->prompt.v[i], (long long)mb_model_real_vocab(c));
    return 0;
}

static int set_eos(struct gen *g)
{
    const struct gen_opts *o = g->o;
    if (o->ignore_eos)
        return 0;
    if (!o->eos_ids) {
        int32_t e = g->tok ? mb_tokenizer_eod(g->tok) : -1;
        if (e >= 0)
            g->eos[g->neos++] = e;
        return 0;
    }
    struct mb_ids ids = MB_IDS_INIT;
    int rc = parse_id_list(o->eos_ids, "--eos-id", &ids);
    if (rc == 0 && ids.len > MAX_EOS)
        rc = mb_err_set(MB_E_USAGE, "--eos-id", "at most %d ids", MAX_EOS);
    for (size_t i = 0; rc == 0 && i < ids.len; i++)
        g->eos[g->neos++] = ids.v[i];
    mb_ids_release(&ids);
    return rc;
}

static bool is_eos(const struct gen *g, int32_t id)
{
    for (int i = 0; i < g->neos; i++)
        if (g->eos[i] == id)
            return true;
    return false;
}

/* Text mode: decode prompt + generated ids and write what is new since the last call.
 * A trailing U+FFFD may be half a character still to come: held back unless FINAL. */
static int emit_text(struct gen *g, bool final)
{
    struct mb_ids all = MB_IDS_INIT;
    struct mb_buf text = MB_BUF_INIT;
    for (size_t i = 0; i < g->prompt.len; i++)
        mb_ids_push(&all, g->prompt.v[i]);
    for (size_t i = 0; i < g->out.len; i++)
        mb_ids_push(&all, g->out.v[i]);
    int rc = mb_tok_decode(g->tok, all.v, all.len, &text);
    size_t start = g->prompt_text_len + g->printed, end = text.len;
    while (rc == 0 && !final && end >= start + 3 &&
           memcmp(text.data + end - 3, "\xEF\xBF\xBD", 3) == 0)
        end -= 3;
    if (rc == 0 && end > start) {
        fwrite(text.data + start, 1, end - start, stdout);
        fflush(stdout);
        g->printed += end - start;
    }
    mb_buf_release(&text);
    mb_ids_release(&all);
    return rc;
}

static int prompt_text_len(struct gen *g)
{
    struct mb_buf text = MB_BUF_INIT;
    int rc = mb_tok_decode(g->tok, g->prompt.v, g->prompt.len, &text);
    g->prompt_text_len = text.len;
    mb_buf_release(&text);
    return rc;
}

static void emit_id(struct gen *g, int32_t id)
{
    printf(g->out.len > 1 ? " %d" : "%d", id);
    fflush(stdout);
}

/* The logits the model gave at POS (counted from 0 over prompt and output) hold KINDS of
 * non-finite values: no token is chosen from them. */
static int nonfinite_error(int64_t pos, const char *kinds)
{
    char where[48];
    snprintf(where, sizeof where, "position %lld", (long long)pos);
    return mb_err_set(MB_E_INVALID, where, "non-finite logits (%s); no token is chosen from them",
                      kinds);
}

/* Prefill, then one position per token until EOS, N tokens or the model's last position;
 * stops with an error at logits that are not all finite. */
static int generate(struct gen *g)
{
    const struct mb_model_config *c = &g->m.cfg;
    int64_t want = (int64_t)g->prompt.len + g->o->max_new_tokens;
    int64_t total = MB_MIN(want, c->max_position_embeddings);
    if (want > total)
        mb_log_warn("stopping at the model's max_position_embeddings (%lld): %lld new tokens "
                    "at most", (long long)total, (long long)(total - (int64_t)g->prompt.len));
    struct mb_infer st;
    struct mb_sampler s;
    if (mb_infer_init(&st, &g->m, 1, MB_MAX(total, (int64_t)g->prompt.len)) < 0)
        return -1;
    mb_sampler_init(&s, &g->sample);
    float *logits = mb_xmalloc((size_t)c->vocab_size * sizeof(float));
    int rc = mb_infer_forward(&st, g->prompt.v, (int64_t)g->prompt.len, false, logits);
    if (rc == 0 && !g->o->ids)
        rc = prompt_text_len(g);
    while (rc == 0 && (int64_t)g->prompt.len + (int64_t)g->out.len < total) {
        /* only real tokens: the padded rows' logits are -inf by design */
        const char *bad = mb_logits_nonfinite(logits, mb_model_real_vocab(c));
        if (bad) {
            rc = nonfinite_error(st.len - 1, bad);
            break;
        }
        int32_t id = mb_sample_next(&s, logits, mb_model_real_vocab(c));
        mb_ids_push(&g->out, id);
        bool stop = is_eos(g, id);
        if (g->o->ids)
            emit_id(g, id);
        else if (!stop)
            rc = emit_text(g, false);
        /* the reader of a pipe went away (SIGPIPE is ignored): stop generating */
        if (rc == 0 && ferror(stdout))
            rc = mb_err_errno("standard output", "write failed");
        if (stop || rc < 0 || st.len >= total)
            break;
        rc = mb_infer_forward(&st, &id, 1, false, logits);
    }
    if (rc == 0 && !g->o->ids && g->out.len > 0) {
        if (is_eos(g, g->out.v[g->out.len - 1]))
            g->out.len--;
        rc = emit_text(g, true);
    }
    if (rc == 0)
        printf("\n");
    free(logits);
    mb_sampler_free(&s);
    mb_infer_free(&st);
    return rc;
}

/* The backend of --device, else of $MB_DEVICE, else auto; NULL with mb_err. */
static const struct mb_ops *backend(const struct gen_opts *o)
{
    const char *env = getenv("MB_DEVICE");
    if (o->device)
        return mb_ops_find(o->device, "--device");
    return mb_ops_find(mb_ops_default_name(), env && *env ? "MB_DEVICE" : "--device");
}

static int run(const struct gen_opts *o)
{
    struct gen g;
    memset(&g, 0, sizeof(g));
    g.o = o;
    int rc = check_options(o, &g.sample);
    if (rc == 0)
        rc = (g.ops = backend(o)) ? 0 : -1;
    if (rc == 0)
        rc = load_checkpoint(&g);
    if (rc == 0)
        rc = load_tokenizer(&g);
    if (rc == 0)
        rc = read_prompt(&g);
    if (rc == 0)
        rc = check_prompt(&g);
    if (rc == 0)
        rc = set_eos(&g);
    double t0 = mb_now();
    if (rc == 0)
        rc = generate(&g);
    if (rc == 0)
        mb_log_info("%zu prompt tokens, %zu new tokens in %.2f s (%d thread%s)", g.prompt.len,
                    g.out.len, mb_now() - t0, mb_ops_cpu_threads(),
                    mb_ops_cpu_threads() > 1 ? "s" : "");
    mb_ids_release(&g.prompt);
    mb_ids_release(&g.out);
    mb_tokenizer_free(g.tok);
    mb_model_free(&g.m);
    free(g.file);
    free(g.tok_spec);
    remove_hf_tokenizer(&g);
    return rc;
}

int main(int argc, char **argv)
{
    struct gen_opts o = { 0 };
    o.max_new_tokens = 64;
    o.temperature = o.top_p = -1;
    o.top_k = o.seed = -1;
    mb_ops_cpu_prepare(argv);
    mb_tool_start("mb-generate");
    int rc = mb_cli_parse(&gen_cli, argc, argv, &o);
    if (rc == 0)
        rc = run(&o);
    free(o.args);
    return mb_tool_end(rc);
}
