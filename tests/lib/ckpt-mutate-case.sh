#!/bin/sh
# ckpt-mutate-case.sh SEED... - one case of the checkpoint mutation campaign per seed
# (t8402, tests/long/t8401): damage $MUT_CKPT with ckpt_mutate, then run every tool that
# reads a checkpoint on the damaged file, each under a time limit, and print
#   SEED KIND OFFSET LENGTH info=RC verify=RC generate=RC convert=RC resume=RC
# Run in the campaign's directory, which holds the corpus and tokenizer of the run
# that made the checkpoint. $MUT_RESUME is the mb-pretrain command line (without the
# checkpoint) that reads it: checkpoint.load= for a trained checkpoint, or
# checkpoint.pretrained_checkpoint= for a converted one ($MUT_LOADKEY).
limit=${MUT_TIMEOUT:-30}
for seed in "$@"; do
    f=m$seed.h5
    what=$(ckpt_mutate "$MUT_CKPT" "$f" "$seed") || exit 1
    timeout "$limit" mb-ckpt info "$f" >/dev/null 2>&1; info=$?
    timeout "$limit" mb-ckpt verify "$f" >/dev/null 2>&1; verify=$?
    timeout "$limit" mb-generate "$f" --prompt-ids "1 2 3" -n 3 --ids >/dev/null 2>&1; gen=$?
    timeout "$limit" mb-convert --from h5 --to hf "$f" hf$seed >/dev/null 2>&1; conv=$?
    # shellcheck disable=SC2086 # MUT_RESUME is a word list
    timeout "$limit" mb-pretrain $MUT_RESUME "$MUT_LOADKEY=$f" >/dev/null 2>&1; resume=$?
    rm -rf "$f" "hf$seed"
    echo "$what info=$info verify=$verify generate=$gen convert=$conv resume=$resume"
done
