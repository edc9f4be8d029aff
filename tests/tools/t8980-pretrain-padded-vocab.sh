#!/bin/sh
test_description='a vocabulary mb pads from the tokenizer (make_vocab_size_divisible_by) has the same size under every TP, and its padded rows are masked out of the softmax: the losses are those of the unpadded model'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# 512 tokens padded to 768 rows: under TP4 (192 rows each) rank 2 holds real and padded
# rows and rank 3 only padded ones; under TP2 rank 1 holds both
PAD='model.vocab_size=0 model.make_vocab_size_divisible_by=384'

# run NAME NP ARGS...: 12 iterations on NP ranks (1: no mpirun) into NAME.log
run() {
    name=$1 np=$2
    shift 2
    if test "$np" = 1; then
        pretrain train.train_iters=12 train.eval_interval=0 "$@" 2>"$name.log"
    else
        pretrain_mpi "$np" train.train_iters=12 train.eval_interval=0 "$@" 2>"$name.log"
    fi
}

# model_config of the newest checkpoint in DIR: "vocab_size real_vocab_size"
vocab_of() {
    "$PY" -c '
import h5py, json, sys
d = sys.argv[1]
f = h5py.File(d + "/" + open(d + "/latest").read().strip(), "r")
c = json.loads(f.attrs["model_config"])
print(c["vocab_size"], c.get("real_vocab_size", 0), f["model/embedding/word_embeddings/weight"].shape[0])
' "$1"
}

test_expect_success 'setup: a real corpus, a 512-token tokenizer, token files' '
    make_corpus
'

test_expect_success 'the padded model: 768 rows, 512 of them tokens, in the checkpoint' '
    run pad1 1 $PAD checkpoint.save=ck1 checkpoint.save_interval=12 &&
    test "$(vocab_of ck1)" = "768 512 768"
'

test_expect_success 'its losses are the unpadded model'"'"'s (the same weights in the 512 real rows)' '
    run unpadded 1 model.vocab_size=512 &&
    same_losses pad1.log unpadded.log 1e-6
'

test_expect_success 'TP4: the same 768 rows and the same losses (a rank of padding only)' '
    run pad4 4 $PAD dist.tensor_model_parallel_size=4 model.num_query_groups=4 \
        checkpoint.save=ck4 checkpoint.save_interval=12 &&
    run pad1g 1 $PAD model.num_query_groups=4 &&
    same_losses pad4.log pad1g.log 1e-5 &&
    test "$(vocab_of ck4)" = "768 512 768"
'

test_expect_success 'gemma2 (final soft-cap, tied) TP2 x DP2, sequence-parallel: the same losses' '
    run g1 1 $PAD $(family_keys gemma2) &&
    run g22 4 $PAD $(family_keys gemma2) dist.tensor_model_parallel_size=2 \
        dist.sequence_parallel=true &&
    same_losses g22.log g1.log 1e-5 &&
    run g_unpadded 1 model.vocab_size=512 $(family_keys gemma2) &&
    same_losses g1.log g_unpadded.log 1e-6
'

# at temperature 20 the distribution is nearly flat: 1 of 3 tokens would be padding
test_expect_success 'mb-generate from the padded checkpoint samples only real tokens' '
    mb-generate ck1 --prompt "the" --ids --ignore-eos --max-new-tokens 60 --temperature 20 \
        --seed 3 >ids 2>gen.err &&
    tr " " "\n" <ids | awk "NF { n++ } \$1 >= 512 { bad = 1 } END { exit bad || n < 60 }"
'

test_done
