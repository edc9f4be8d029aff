#!/bin/sh
test_description='a fatal signal on the return of each open(2) a tool makes while it writes:
no temporary is left and what is in place is whole (strace injects SIGTERM into the Nth
openat, for every N from the first one that touches an output to the end)'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# Random kills (t8201, t8206, t8701) land in the microseconds between an open and the
# registration of its temporary only by luck; this walks every such moment in turn.

# every_open PREP CHECK OUT CMD...: run CMD once (to make the caches it keeps), then PREP
# and CMD under strace to number CMD's openat calls; then, once per call N from the first
# whose path holds OUT to the last, PREP and CMD with SIGTERM delivered as call N returns.
# Each time the exit status must be 143 (killed) or 0 (CMD's own handler stopped it
# cleanly), and CHECK must pass. Appends a line to stats.
every_open() {
    prep=$1 check=$2 out=$3 tool=$4
    shift 3
    "$@" 2>first.err && $prep && strace -f -qq -o trace -e trace=openat "$@" 2>first.err ||
        { cat first.err; return 1; }
    first=$(grep -n "openat([^\"]*\"[^\"]*$out" trace | head -n 1 | cut -d: -f1)
    last=$(grep -c "openat(" trace)
    test -n "$first" || { say "no openat of $out"; return 1; }
    clean=0 n=$first
    while test "$n" -le "$last"; do
        $prep && strace -f -qq -o /dev/null -e trace=openat \
            -e inject=openat:signal=TERM:when=$n "$@" 2>run.err
        rc=$?
        test $rc -eq 143 || test $rc -eq 0 ||
            { say "openat $n: exit status $rc"; cat run.err; return 1; }
        $check || { say "openat $n: $check failed"; return 1; }
        test $rc -eq 0 && clean=$((clean + 1))
        n=$((n + 1))
    done
    echo "$tool writing $out: $((last - first + 1)) opens, $clean stopped cleanly (exit 0)" >>stats
}

# no_temps DIR: nothing in DIR (hidden files too) has a temporary's name
no_temps() {
    left=$(ls -A "$1" 2>/dev/null | grep -e "\.tmp" -e "mb-convert-tmp")
    test -z "$left" || { say "left in $1: $left"; return 1; }
}

test_expect_success 'setup: corpus; strace can inject a signal' '
    make_corpus &&
    strace -qq -o /dev/null -e inject=openat:signal=TERM:when=1 cat /dev/null;
    test $? -eq 143
'

pretrain_cmd="mb-pretrain --recipe $SMALL_RECIPE data.data_path=corpus_text_document
    tokenizer.tokenizer_model=tok.json train.train_iters=3 checkpoint.save=ck
    checkpoint.save_interval=1"
fresh_ck() { rm -rf ck; }
ck_whole() {
    no_temps ck && { test ! -e ck/latest || "$PY" "$ORACLE/ckpt_latest_check.py" ck >/dev/null; }
}
fresh_cache() { rm -rf corpus_text_document/cache; }
cache_whole() { no_temps corpus_text_document/cache/GPTDataset_indices; }
test_expect_success 'mb-pretrain building the dataset index cache' '
    every_open fresh_cache cache_whole GPTDataset_indices/ mb-pretrain --recipe "$SMALL_RECIPE" \
        data.data_path=corpus_text_document tokenizer.tokenizer_model=tok.json train.train_iters=3 \
        train.exit_signal_handler=false
'

test_expect_success 'mb-pretrain saving each iteration, train.exit_signal_handler=false' '
    every_open fresh_ck ck_whole ck/ $pretrain_cmd train.exit_signal_handler=false
'

test_expect_success 'mb-pretrain saving each iteration, the exit signal handler on' '
    every_open fresh_ck ck_whole ck/ $pretrain_cmd &&
    cp ck/iter_0000003.h5 model.h5
'

# whole_or_absent PATH: PATH is not there, or mb-ckpt verify passes it
whole_or_absent() {
    test ! -e "$1" || mb-ckpt verify "$1" >/dev/null
}
fresh_hf() { rm -rf hf; }
hf_whole() { no_temps . && whole_or_absent hf; }
test_expect_success 'mb-convert --to hf' '
    every_open fresh_hf hf_whole mb-convert-tmp mb-convert --from h5 --to hf model.h5 hf &&
    mb-convert --from h5 --to hf model.h5 hf0 2>err
'

fresh_back() { rm -f back.h5; }
back_whole() { no_temps . && whole_or_absent back.h5; }
test_expect_success 'mb-convert --to h5' '
    every_open fresh_back back_whole back.h5 mb-convert --from hf --to h5 hf0 back.h5
'

fresh_half() { rm -f half.h5; }
half_whole() { no_temps . && whole_or_absent half.h5; }
test_expect_success 'mb-ckpt convert-dtype' '
    every_open fresh_half half_whole half.h5 \
        mb-ckpt convert-dtype model.h5 --dtype bf16 -o half.h5
'

fresh_tokens() { rm -f tokens_text_document.*; }
tokens_whole() {
    no_temps . && { test ! -e tokens_text_document.idx ||
        cmp -s tokens_text_document.bin ref_text_document.bin; }
}
test_expect_success 'mb-preprocess' '
    mb-preprocess -t tok.json --append-eod -w 1 -o ref corpus.jsonl 2>err &&
    every_open fresh_tokens tokens_whole tokens_text mb-preprocess -t tok.json --append-eod -w 1 \
        -o tokens corpus.jsonl
'

while read -r line; do say "$line"; done <stats

test_done
