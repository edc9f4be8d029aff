# ckpt-fixture-lib.sh - small real checkpoints for the full-disk and mutation tests
# (t8401, t8402, tests/long/t8401), sourced after test-lib.sh.
#
# make_ckpt_fixtures: in the trash directory, a tiny real corpus (the first 300
# documents of the fortunes test corpus) tokenized with a 300-entry BPE trained on it;
# ck/iter_0000002.h5, two iterations of a one-layer hidden-16 model of the tiny recipe
# (with Adam moments, about 100 KB); hf/, its HF export; conv.h5, that export converted
# back by mb-convert. $TINY_ARGS is the mb-pretrain command line of that model and data.

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
TINY_ARGS="--recipe tiny data.data_path=small_text_document tokenizer.tokenizer_model=tok.json
    model.num_layers=1 model.hidden_size=16 model.ffn_hidden_size=32
    model.num_attention_heads=2 model.num_query_groups=1 model.kv_channels=8
    model.vocab_size=300 model.max_position_embeddings=32 data.seq_length=32
    data.split=90,8,2 train.train_iters=2 train.micro_batch_size=2
    train.global_batch_size=2 train.eval_interval=2 train.eval_iters=1
    scheduler.lr_warmup_iters=1"

make_ckpt_fixtures() {
    head -300 "$TESTDATA/corpora/fortunes.jsonl" >small.jsonl &&
    mb-preprocess --train-tokenizer 300 --save-tokenizer tok.json --append-eod \
        -o small small.jsonl 2>/dev/null &&
    # shellcheck disable=SC2086 # TINY_ARGS is a word list
    mb-pretrain $TINY_ARGS checkpoint.save=ck 2>pretrain.log &&
    mb-convert --from h5 --to hf ck hf 2>/dev/null &&
    mb-convert --from hf --to h5 hf conv.h5 2>/dev/null &&
    mb-ckpt verify ck >/dev/null && mb-ckpt verify conv.h5 >/dev/null
}

# mutation_campaign FILE LOADKEY FIRST LAST: the cases of ckpt-mutate-case.sh for the
# seeds FIRST..LAST on FILE, two at a time, each line into FILE.cases; then one summary
# line "# FILE: N mutations x 5 tools, D signal deaths or hangs, A accepted by verify,
# X of them failing another tool", and status 1 when a tool died of a signal, hung
# (timeout's 124), could not run, or a case is missing. LOADKEY is how mb-pretrain reads
# FILE: checkpoint.load (a resume) or checkpoint.pretrained_checkpoint.
mutation_campaign() {
    (
        export MUT_CKPT="$1" MUT_LOADKEY="$2" MUT_RESUME="$TINY_ARGS train.train_iters=3 scheduler.override_opt_param_scheduler=true"
        seq "$3" "$4" | xargs -n 10 -P 2 sh "$MB_ROOT/tests/lib/ckpt-mutate-case.sh"
    ) >"$1.cases" || return 1
    awk -v want=$(($4 - $3 + 1)) -v file="$1" '
        { n++; accepted = $6 == "verify=0"; other = 0
          for (i = 5; i <= 9; i++) {
              split($i, kv, "="); rc = kv[2] + 0
              if (rc >= 124) { dead++; print "# died or hung: " $0 }
              if (i != 6 && rc != 0) other = 1
          }
          if (accepted) { acc++; if (other) { acc_other++; print "# verified, then failed: " $0 } } }
        END { printf "# %s: %d mutations x 5 tools, %d signal deaths or hangs, %d accepted by verify, %d of them failing another tool\n", file, n, dead, acc, acc_other
              exit !(n == want && dead == 0) }' "$1.cases"
}
