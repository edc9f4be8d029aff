/* mb-preprocess - tokenize JSONL corpora into Megatron indexed token files.
 *
 * Options, wiring and exit status only; the work is in pipeline.c (threads), split.c
 * (MPI ranks' shares of the input) and merge.c (joining the ranks' outputs).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/cpus.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/time.h"
#include "core/tool.h"
#include "dist/comm.h"
#include "io/idx_writer.h"
#include "io/lines.h"
#include "merge.h"
#include "pipeline.h"
#include "split.h"
#include "tok/tokenizer.h"
#include "tok/train_bpe.h"

struct pp_opts {
    const char *input;
    const char *output_prefix;
    char *json_keys;
    const char *tokenizer;
    const char *tokenizer_type;
    const char *tokenizer_model;
    const char *vocab_file;
    const char *merge_file;
    const char *save_tokenizer;
    const char *lang;
    int64_t workers;
    int64_t train_tokenizer;
    int64_t log_interval;
    int64_t partitions;
    int64_t max_line_bytes;
    int append_eod;
    int skip_bad;
    int no_special;
    int keep_newlines;
    int keep_sequential;
    char **args;
    int nargs;
};

#define OPT(name, s, kind, field, meta, help) \
    { name, s, kind, offsetof(struct pp_opts, field), meta, help, 0, 0 }
/* An option of Megatron's preprocess_data.py that mb-preprocess does not take. */
#define REFUSED(name, why) { name, 0, MB_OPT_REFUSED, 0, NULL, why, 0, 0 }

#define WHY_SPLIT "sentence splitting (NLTK punkt) is not done: each document is written " \
    "whole, and a field holding a JSON list of strings is taken as its sentences"
#define WHY_TUNE "there is no worker-count search: --workers defaults to the CPUs available " \
    "and the output does not depend on it"
#define WHY_VOCAB "the vocabulary is the tokenizer's own (Megatron uses this option for other " \
    "tokenizer types or for model padding, not for token files)"
#define WHY_SP "SentencePiece .model files are not read: give the model's HF tokenizer.json " \
    "(--tokenizer-type HuggingFaceTokenizer --tokenizer-model DIR)"
#define WHY_TIKTOKEN "TikTokenizer is not supported: give the model's HF tokenizer.json " \
    "(--tokenizer-type HuggingFaceTokenizer --tokenizer-model DIR)"

static const struct mb_opt pp_options[] = {
    OPT("input", 'i', MB_OPT_STR, input, "FILE", "JSONL input (.gz read transparently); "
        "also as arguments; default standard input"),
    OPT("output-prefix", 'o', MB_OPT_STR, output_prefix, "PREFIX",
        "write PREFIX_KEY_document.bin/.idx (required)"),
    OPT("json-keys", 0, MB_OPT_WORDS, json_keys, "KEY", "fields to tokenize, one output pair "
        "each: the words after it, or K1,K2 (default: text)"),
    OPT("tokenizer", 't', MB_OPT_STR, tokenizer, "FILE|DIR|bytes",
        "HF tokenizer.json (or its directory), or the built-in byte tokenizer (default: bytes)"),
    OPT("tokenizer-type", 0, MB_OPT_STR, tokenizer_type, "TYPE",
        "Megatron's: HuggingFaceTokenizer (with --tokenizer-model) or GPT2BPETokenizer "
        "(with --vocab-file and --merge-file)"),
    OPT("tokenizer-model", 0, MB_OPT_STR, tokenizer_model, "DIR|FILE",
        "HuggingFaceTokenizer: the model directory or its tokenizer.json"),
    OPT("vocab-file", 0, MB_OPT_STR, vocab_file, "FILE", "GPT2BPETokenizer: GPT-2's vocab.json"),
    OPT("merge-file", 0, MB_OPT_STR, merge_file, "FILE", "GPT2BPETokenizer: GPT-2's merges.txt"),
    OPT("append-eod", 0, MB_OPT_FLAG, append_eod, NULL,
        "append the end-of-document token to every non-empty document"),
    { "workers", 'w', MB_OPT_INT, offsetof(struct pp_opts, workers), "N",
      "tokenizer threads per process (default: the CPUs this process may use)", 1, 1024 },
    OPT("tokenizer-hf-no-include-special-tokens", 0, MB_OPT_FLAG, no_special, NULL,
        "do not add the post-processor's special tokens (BOS) to each document"),
    { "log-interval", 0, MB_OPT_INT, offsetof(struct pp_opts, log_interval), "N",
      "log progress (documents, rate, percent done, ETA) every N documents", 1, INT64_MAX },
    { "partitions", 0, MB_OPT_INT, offsetof(struct pp_opts, partitions), "N",
      "accepted for Megatron's command lines; above 1 only with --keep-sequential-samples "
      "(parallelism is --workers and MPI ranks)", 1, 1 << 20 },
    OPT("keep-sequential-samples", 0, MB_OPT_FLAG, keep_sequential, NULL,
        "documents stay in input order (always so)"),
    OPT("keep-newlines", 0, MB_OPT_FLAG, keep_newlines, NULL,
        "accepted; as in Megatron it only matters with --split-sentences (refused)"),
    OPT("lang", 0, MB_OPT_STR, lang, "LANG",
        "accepted; as in Megatron it only matters with --split-sentences (refused)"),
    { "train-tokenizer", 0, MB_OPT_INT, offsetof(struct pp_opts, train_tokenizer), "N",
      "first train a byte-level BPE of N entries on the input, then tokenize with it", 257,
      1 << 24 },
    OPT("save-tokenizer", 0, MB_OPT_STR, save_tokenizer, "FILE",
        "where --train-tokenizer writes tokenizer.json (default: PREFIX_tokenizer.json)"),
    OPT("skip-bad", 0, MB_OPT_FLAG, skip_bad, NULL,
        "skip malformed lines (counted in the summary) instead of failing"),
    { "max-line-bytes", 0, MB_OPT_INT, offsetof(struct pp_opts, max_line_bytes), "N",
      "longest input line accepted, in bytes (default: 268435456); a longer one is an error",
      1, INT64_MAX },
    REFUSED("split-sentences", WHY_SPLIT),
    REFUSED("find-optimal-num-workers", WHY_TUNE),
    REFUSED("workers-to-check", WHY_TUNE),
    REFUSED("max-documents", WHY_TUNE),
    REFUSED("performance-dir", WHY_TUNE),
    REFUSED("vocab-size", WHY_VOCAB),
    REFUSED("padded-vocab-size", WHY_VOCAB),
    REFUSED("no-pad-vocab-size", WHY_VOCAB),
    REFUSED("disable-pad-vocab-size", WHY_VOCAB),
    REFUSED("vocab-extra-ids", WHY_VOCAB),
    REFUSED("tokenizer-metadata", "tokenizer metadata files are not read: the tokenizer is "
            "its tokenizer.json (or vocab.json and merges.txt)"),
    REFUSED("tokenizer-special-tokens", "extra special tokens are not added: put them in "
            "tokenizer.json's added_tokens"),
    REFUSED("tiktoken-pattern", WHY_TIKTOKEN),
    REFUSED("tiktoken-num-special-tokens", WHY_TIKTOKEN),
    REFUSED("tokenizer-sentencepiece-legacy", WHY_SP),
    REFUSED("no-tokenizer-sentencepiece-ignore-extra-whitespaces", WHY_SP),
    REFUSED("disable-tokenizer-sentencepiece-ignore-extra-whitespaces", WHY_SP),
    REFUSED("tokenizer-hf-no-use-fast", "there is one HF tokenizer, giving the fast "
            "(tokenizers) tokenizer's ids"),
    REFUSED("trust-remote-code", "no Python code of a tokenizer directory is run"),
    REFUSED("null-tokenizer-eod-id", "NullTokenizer is not supported"),
    REFUSED("null-tokenizer-pad-id", "NullTokenizer is not supported"),
    REFUSED("chat-template", "chat templates are not applied to pretraining text"),
    REFUSED("use-gigatoken", "gigatoken is not supported (the tokenizer is native code)"),
};

static void version_extra(FILE *out)
{
    fprintf(out, "mpi: %s\n", mb_dist_library_version());
}

static const struct mb_cli pp_cli = {
    .tool = "mb-preprocess",
    .synopsis = "[options] [file ...]",
    .summary = "Tokenize JSON Lines into Megatron-compatible PREFIX_KEY_document.bin/.idx.",
    .opts = pp_options,
    .nopts = MB_ARRAY_LEN(pp_options),
    .args_offset = offsetof(struct pp_opts, args),
    .nargs_offset = offsetof(struct pp_opts, nargs),
    .version_extra = version_extra,
};

/* Everything a run needs besides the options. */
struct pp_run {
    const struct pp_opts *o;
    const struct mb_dist *dist;
    char **paths;
    int npaths;
    char **keys;
    size_t nkeys;
    mb_tokenizer *tok;
    double start;
};

static int usage_error(const char *fmt, const char *arg)
{
    return mb_err_set(MB_E_USAGE, NULL, fmt, arg);
}

static int collect_inputs(struct pp_run *r)
{
    const struct pp_opts *o = r->o;

    r->paths = mb_xcalloc((size_t)o->nargs + 2, sizeof *r->paths);
    if (o->input)
        r->paths[r->npaths++] = (char *)o->input;
    for (int i = 0; i < o->nargs; i++)
        r->paths[r->npaths++] = o->args[i];
    if (r->npaths == 0)
        r->paths[r->npaths++] = "-";
    for (int i = 0; i < r->npaths; i++) {
        if (strcmp(r->paths[i], "-") != 0)
            continue;
        if (r->dist->size > 1)
            return usage_error("standard input cannot be shared by MPI ranks; %s",
                               "name the input files");
        if (o->train_tokenizer)
            return usage_error("--train-tokenizer reads the input twice; %s",
                               "name the input files instead of using standard input");
    }
    return 0;
}

static int parse_keys(struct pp_run *r)
{
    char *copy = mb_xstrdup(r->o->json_keys ? r->o->json_keys : "text"), *save = NULL;

    r->keys = mb_xcalloc(strlen(copy) + 1, sizeof *r->keys);
    for (char *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save))
        r->keys[r->nkeys++] = k;
    if (r->nkeys == 0)
        return usage_error("--json-keys '%s' names no field", copy);
    return 0;
}

/* Megatron's --json-keys takes every word after it: a file named there was most likely
 * meant as an input. */
static int check_keys_are_not_files(const struct pp_run *r)
{
    for (size_t k = 0; k < r->nkeys; k++)
        if (strchr(r->keys[k], '/') || (strchr(r->keys[k], '.') && mb_fs_exists(r->keys[k])))
            return usage_error("--json-keys takes every word after it, and '%s' looks like an "
                               "input file: name the inputs before --json-keys, after '--', or "
                               "with --input", r->keys[k]);
    return 0;
}

static int check_options(struct pp_run *r)
{
    const struct pp_opts *o = r->o;

    if (!o->output_prefix)
        return usage_error("%s", "--output-prefix is required");
    if (o->partitions > 1 && !o->keep_sequential)
        return mb_err_set(MB_E_USAGE, NULL, "--partitions above 1: Megatron then interleaves "
                          "the documents of the partitions; mb-preprocess keeps the input "
                          "order, so add --keep-sequential-samples (or use --workers and MPI "
                          "ranks)");
    if (parse_keys(r) != 0 || check_keys_are_not_files(r) != 0)
        return -1;
    return collect_inputs(r);
}

static void base_job(const struct pp_run *r, struct pp_job *job, struct pp_segment *segs, int nsegs)
{
    memset(job, 0, sizeof *job);
    job->segs = segs;
    job->nsegs = (size_t)nsegs;
    job->keys = (const char *const *)r->keys;
    job->nkeys = r->nkeys;
    job->workers = (int)r->o->workers;
    job->skip_bad = r->o->skip_bad;
    job->show_progress = r->dist->rank == 0;
    job->log_interval = r->o->log_interval;
    job->max_line = r->o->max_line_bytes ? (size_t)r->o->max_line_bytes : MB_LINES_MAX_DEFAULT;
}

/* --train-tokenizer: every rank trains on all of the input (so all agree without
 * communication); rank 0 writes the file, then everyone loads it. */
static int train_tokenizer(struct pp_run *r, char **out_path)
{
    const struct pp_opts *o = r->o;
    struct pp_segment *segs;
    struct pp_job job;
    int nsegs = pp_split(r->paths, r->npaths, 0, 1, &segs);

    if (o->save_tokenizer) {
        *out_path = mb_xstrdup(o->save_tokenizer);
    } else {
        *out_path = mb_xmalloc(strlen(o->output_prefix) + 32);
        sprintf(*out_path, "%s_tokenizer.json", o->output_prefix);
    }
    base_job(r, &job, segs, nsegs);
    job.trainer = mb_bpe_trainer_new((int)o->train_tokenizer);
    job.train_vocab = (int)o->train_tokenizer;
    int rc = pp_run(&job);
    free(segs);
    if (rc == 0 && r->dist->rank == 0)
        rc = mb_bpe_trainer_write(job.trainer, *out_path);
    if (rc == 0 && r->dist->rank == 0)
        mb_log_info("trained a %d-entry byte-level BPE on %lld documents -> %s",
                    mb_bpe_trainer_vocab_size(job.trainer), (long long)job.docs, *out_path);
    mb_bpe_trainer_free(job.trainer);
    return rc;
}

/* Megatron's --tokenizer-type values that name no tokenizer mb reads, and why. */
static const char *unsupported_type(const char *type)
{
    static const char *const wordpiece[] = { "BertWordPieceLowerCase", "BertWordPieceCase" };
    static const char *const sentencepiece[] = { "SentencePieceTokenizer",
                                                 "GPTSentencePieceTokenizer", "Llama2Tokenizer" };
    static const char *const other[] = { "NullTokenizer", "MultimodalTokenizer",
                                         "NullMultimodalTokenizer", "SFTTokenizer" };

    for (size_t i = 0; i < MB_ARRAY_LEN(wordpiece); i++)
        if (strcmp(type, wordpiece[i]) == 0)
            return "WordPiece (BERT) tokenizers are not supported; mb tokenizes with BPE models";
    for (size_t i = 0; i < MB_ARRAY_LEN(sentencepiece); i++)
        if (strcmp(type, sentencepiece[i]) == 0)
            return WHY_SP;
    if (strcmp(type, "TikTokenizer") == 0)
        return WHY_TIKTOKEN;
    for (size_t i = 0; i < MB_ARRAY_LEN(other); i++)
        if (strcmp(type, other[i]) == 0)
            return "it makes no token files from text; use HuggingFaceTokenizer or "
                   "GPT2BPETokenizer";
    return NULL;
}

/* The tokenizer Megatron's options name: --tokenizer-type with its files. */
static int megatron_tokenizer(const struct pp_opts *o, mb_tokenizer **tok)
{
    const char *type = o->tokenizer_type ? o->tokenizer_type : "HuggingFaceTokenizer";
    const char *why = unsupported_type(type);
    int gpt2 = strcmp(type, "GPT2BPETokenizer") == 0;

    if (why)
        return mb_err_set(MB_E_USAGE, NULL, "--tokenizer-type %s is not supported: %s", type, why);
    if (!gpt2 && strcmp(type, "HuggingFaceTokenizer") != 0)
        return usage_error("--tokenizer-type '%s' is not a Megatron tokenizer type "
                           "(HuggingFaceTokenizer and GPT2BPETokenizer are read)", type);
    if (gpt2 && (!o->vocab_file || !o->merge_file || o->tokenizer_model))
        return usage_error("%s", "--tokenizer-type GPT2BPETokenizer takes --vocab-file and "
                           "--merge-file (GPT-2's vocab.json and merges.txt; nothing is "
                           "downloaded), and no --tokenizer-model");
    if (!gpt2 && (!o->tokenizer_model || o->vocab_file || o->merge_file))
        return usage_error("%s", "--tokenizer-type HuggingFaceTokenizer takes --tokenizer-model "
                           "(the model's directory or its tokenizer.json; nothing is "
                           "downloaded), and no --vocab-file or --merge-file");
    if (!gpt2 && !mb_fs_exists(o->tokenizer_model))
        return mb_err_set(MB_E_INVALID, o->tokenizer_model, "no such file or directory (only "
                          "local tokenizer files are read: download the model's tokenizer.json "
                          "first)");
    *tok = gpt2 ? mb_tokenizer_load_gpt2(o->vocab_file, o->merge_file)
                : mb_tokenizer_load(o->tokenizer_model);
    return *tok ? 0 : -1;
}

/* -t (mb's), Megatron's --tokenizer-type family, or --train-tokenizer: one of them. */
static int check_tokenizer_options(const struct pp_opts *o)
{
    int megatron = o->tokenizer_type || o->tokenizer_model || o->vocab_file || o->merge_file;

    if (megatron && o->tokenizer)
        return usage_error("%s", "give the tokenizer either with --tokenizer (-t) or with "
                           "Megatron's --tokenizer-type options, not both");
    if ((megatron || o->tokenizer) && o->train_tokenizer)
        return usage_error("%s", "--train-tokenizer makes the tokenizer: give no other");
    return 0;
}

static int load_tokenizer(struct pp_run *r)
{
    const struct pp_opts *o = r->o;
    char *trained = NULL;
    int rc = check_tokenizer_options(o);

    if (rc == 0 && o->train_tokenizer)
        rc = train_tokenizer(r, &trained);
    if (!mb_dist_all_ok(r->dist, rc == 0))
        return rc != 0 ? -1 : mb_err_set(MB_E_INVALID, NULL, "stopped: another rank failed");
    if (o->tokenizer_type || o->tokenizer_model || o->vocab_file || o->merge_file)
        rc = megatron_tokenizer(o, &r->tok);
    else
        r->tok = mb_tokenizer_load(trained ? trained : o->tokenizer ? o->tokenizer : "bytes");
    free(trained);
    if (rc != 0 || !r->tok)
        return -1;
    if (o->append_eod && mb_tokenizer_eod(r->tok) < 0)
        return mb_err_set(MB_E_INVALID, mb_tokenizer_describe(r->tok), "--append-eod: the "
                          "tokenizer has no end-of-document token (no eos_token in "
                          "tokenizer_config.json and none of the usual names)");
    return 0;
}

static char *output_name(const struct pp_run *r, size_t k)
{
    char *name = mb_xmalloc(strlen(r->o->output_prefix) + strlen(r->keys[k]) + 16);

    sprintf(name, "%s_%s_document", r->o->output_prefix, r->keys[k]);
    return name;
}

/* Open one writer per key: the final name, or this rank's part under MPI. */
static int open_writers(const struct pp_run *r, mb_idx_writer **w, enum mb_dtype dtype)
{
    for (size_t k = 0; k < r->nkeys; k++) {
        char *name = output_name(r, k);
        char *prefix = r->dist->size > 1 ? pp_part_prefix(name, r->dist->rank, r->dist->size) : name;
        w[k] = mb_idx_writer_open(prefix, dtype);
        if (prefix != name)
            free(prefix);
        free(name);
        if (!w[k])
            return -1;
    }
    return 0;
}

static int close_writers(const struct pp_run *r, mb_idx_writer **w, int ok)
{
    int rc = ok ? 0 : -1;

    for (size_t k = 0; k < r->nkeys; k++) {
        if (!w[k])
            continue;
        if (rc == 0) {
            if (r->dist->size > 1) {
                /* tracked before the close renames it into place, so that a fatal
                 * signal in between still removes it */
                char *name = output_name(r, k);
                char *part = pp_part_prefix(name, r->dist->rank, r->dist->size);
                pp_part_track(part, 1);
                free(part);
                free(name);
            }
            rc = mb_idx_writer_close(w[k]);
        } else {
            mb_idx_writer_discard(w[k]);
        }
        w[k] = NULL;
    }
    return rc;
}

static int merge_outputs(const struct pp_run *r, enum mb_dtype dtype)
{
    int rc = 0;

    if (r->dist->size == 1)
        return 0;
    mb_dist_barrier(r->dist);
    for (size_t k = 0; k < r->nkeys && rc == 0 && r->dist->rank == 0; k++) {
        char *name = output_name(r, k);
        rc = pp_merge_parts(name, r->dist->size, dtype);
        free(name);
    }
    if (!mb_dist_all_ok(r->dist, rc == 0))
        return rc != 0 ? -1 : mb_err_set(MB_E_INVALID, NULL, "stopped: rank 0 failed to merge");
    return 0;
}

static void summary(const struct pp_run *r, const struct pp_job *job)
{
    const struct mb_dist *d = r->dist;
    int64_t docs = mb_dist_sum_i64(d, job->docs), tokens = mb_dist_sum_i64(d, job->tokens);
    int64_t bytes = mb_dist_sum_i64(d, job->bytes), skipped = mb_dist_sum_i64(d, job->lines_skipped);
    int64_t repairs = mb_dist_sum_i64(d, job->utf8_repairs);
    double secs = mb_now() - r->start;
    char *first = output_name(r, 0);

    mb_log_info("%lld documents, %.2f MB, %lld tokens in %.2f s (%.0f tokens/s, %d rank%s x %d "
                "worker%s) -> %s.bin/.idx%s", (long long)docs, (double)bytes / 1e6,
                (long long)tokens, secs, secs > 0 ? (double)tokens / secs : 0.0, d->size,
                d->size > 1 ? "s" : "", job->workers, job->workers > 1 ? "s" : "", first,
                r->nkeys > 1 ? " (and one pair per further key)" : "");
    if (skipped)
        mb_log_info("skipped %lld malformed line%s (--skip-bad)", (long long)skipped,
                    skipped > 1 ? "s" : "");
    if (repairs)
        mb_log_info("replaced %lld invalid UTF-8 sequence%s with U+FFFD", (long long)repairs,
                    repairs > 1 ? "s" : "");
    free(first);
}

static int tokenize(struct pp_run *r)
{
    struct pp_segment *segs = NULL;
    struct pp_job job;
    enum mb_dtype dtype = mb_dtype_for_vocab(mb_tokenizer_vocab_size(r->tok));
    mb_idx_writer **w = mb_xcalloc(r->nkeys, sizeof *w);
    int nsegs = pp_split(r->paths, r->npaths, r->dist->rank, r->dist->size, &segs);
    int rc = nsegs < 0 ? -1 : open_writers(r, w, dtype);

    base_job(r, &job, segs, nsegs);
    job.tok = r->tok;
    job.add_special = !r->o->no_special;
    job.append_eod = r->o->append_eod;
    job.writers = w;
    if (rc == 0)
        rc = pp_run(&job);
    rc = close_writers(r, w, rc == 0);
    if (!mb_dist_all_ok(r->dist, rc == 0))
        rc = rc != 0 ? -1 : mb_err_set(MB_E_INVALID, NULL, "stopped: another rank failed");
    if (rc == 0)
        rc = merge_outputs(r, dtype);
    if (rc == 0)
        summary(r, &job);
    free(segs);
    free(w);
    return rc;
}

static int preprocess(const struct pp_opts *o, const struct mb_dist *dist)
{
    struct pp_run r = { .o = o, .dist = dist, .start = mb_now() };
    int rc = check_options(&r);

    if (!mb_dist_all_ok(dist, rc == 0) && rc == 0)
        rc = -1;
    if (rc == 0)
        rc = load_tokenizer(&r);
    if (!mb_dist_all_ok(dist, rc == 0) && rc == 0)
        rc = mb_err_set(MB_E_INVALID, NULL, "stopped: another rank failed");
    if (rc == 0) {
        mb_log_info("tokenizer: %s, ready in %.2f s", mb_tokenizer_describe(r.tok),
                    mb_now() - r.start);
        r.start = mb_now(); /* the summary's rate is the tokenizing rate */
    }
    if (rc == 0)
        rc = tokenize(&r);
    mb_tokenizer_free(r.tok);
    free(r.paths);
    free(r.keys ? r.keys[0] : NULL);
    free(r.keys);
    return rc;
}

int main(int argc, char **argv)
{
    struct pp_opts o = { .partitions = 1 };
    struct mb_dist dist;

    o.workers = MB_MIN(mb_cpus_usable(), 1024); /* the CPUs this process may use */
    mb_tool_start("mb-preprocess");
    int rc = mb_dist_init(&dist, &argc, &argv);
    if (rc == 0)
        rc = mb_cli_parse(&pp_cli, argc, argv, &o);
    if (rc == 0)
        rc = preprocess(&o, &dist);
    free(o.args);
    free(o.json_keys);
    int status = mb_tool_end(rc);
    mb_dist_finalize(&dist);
    return status;
}
