#!/bin/sh
# ckpt-mutate-case.sh SEED... - one case of the checkpoint mutation campaign per seed
# (t8402, tests/long/t8401): damage $MUT_CKPT with ckpt_mutate, then run every tool that
# reads a checkpoint on the damaged file, each under a time limit, and print
#   SEED KIND OFFSET LENGTH info=RC verify=RC generate=RC convert=RC resume=RC
# (generate and resume: "nf" for a clean refusal of non-finite logits or loss)
# Run in the campaign's directory, which holds the corpus and tokenizer of the run
# that made the checkpoint. $MUT_RESUME is the mb-pretrain command line (without the
# checkpoint) that reads it: checkpoint.load= for a trained checkpoint, or
# checkpoint.pretrained_checkpoint= for a converted one ($MUT_LOADKEY).
limit=${MUT_TIMEOUT:-30}

# nonfinite RC STDERR PHRASE: "nf" when the tool refused with exit 1 because the weights,
# finite as verify found them, made the model's output non-finite (a damaged value of
# 1e30 is legal data; only running the model shows what it does), else RC.
nonfinite() {
    case "$1:$2" in
    1:*"$3"*) echo nf ;;
    *) echo "$1" ;;
    esac
}
for seed in "$@"; do
    f=m$seed.h5
    what=$(ckpt_mutate "$MUT_CKPT" "$f" "$seed") || exit 1
    timeout "$limit" mb-ckpt info "$f" >/dev/null 2>&1; info=$?
    timeout "$limit" mb-ckpt verify "$f" >/dev/null 2>&1; verify=$?
    gen_err=$(timeout "$limit" mb-generate "$f" --prompt-ids "1 2 3" -n 3 --ids 2>&1 >/dev/null)
    gen=$(nonfinite $? "$gen_err" "non-finite logits")
    timeout "$limit" mb-convert --from h5 --to hf "$f" hf$seed >/dev/null 2>&1; conv=$?
    # shellcheck disable=SC2086 # MUT_RESUME is a word list
    resume_err=$(timeout "$limit" mb-pretrain $MUT_RESUME "$MUT_LOADKEY=$f" 2>&1 >/dev/null)
    resume=$(nonfinite $? "$resume_err" "the run diverged")
    rm -rf "$f" "hf$seed"
    echo "$what info=$info verify=$verify generate=$gen convert=$conv resume=$resume"
done
