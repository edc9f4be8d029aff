#!/bin/sh
test_description='mb-pretrain: saved at TP2 x PP2 x DP2 with VP2 and the distributed optimizer, resumed at TP1 PP1 DP1, PP4 and TP4, and back (from one process and from PP4 to TP2 x PP2 x DP2 x VP2): the straight single-process curve and final weights within 1e-5'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# Gemma 3 (two rope bases, tied embeddings) with 4 layers and 4 query groups (TP4 cuts
# them): 16 iterations straight, or 8, a checkpoint, and 8 more under another layout.
KEYS="$(family_keys gemma3 | grep -v -e ^model.num_layers= -e ^model.num_query_groups=)
    model.num_layers=4 model.num_query_groups=4 train.train_iters=16 train.eval_interval=0"
FULL="dist.tensor_model_parallel_size=2 dist.pipeline_model_parallel_size=2
    dist.virtual_pipeline_model_parallel_size=2 ddp.use_distributed_optimizer=true"
PP4="dist.pipeline_model_parallel_size=4"
TP4="dist.tensor_model_parallel_size=4"

# first NAME NP KEYS...: iterations 1-8 on NP ranks, saved in NAME
first() {
    name=$1 np=$2
    shift 2
    pretrain_mpi $np $KEYS train.exit_interval=8 checkpoint.save=$name "$@" 2>$name.log
}

# rest FROM NAME NP KEYS...: iterations 9-16 from FROM's checkpoint, saved in NAME: the
# straight run's losses and final weights
rest() {
    from=$1 name=$2 np=$3
    shift 3
    mkdir $name && cp $from/iter_0000008.h5 $name/ && echo iter_0000008.h5 >$name/latest &&
    pretrain_mpi $np $KEYS checkpoint.load=$name checkpoint.save=$name "$@" 2>$name.log &&
    grep "iter *9/16" $name.log && ! grep "iter *8/16" $name.log &&
    same_losses $name.log straight.log 1e-5 &&
    "$PY" "$ORACLE/layout_weights_check.py" straight/iter_0000016.h5 $name/iter_0000016.h5 1e-5
}

test_expect_success 'setup: corpus, the straight run on one process' '
    make_corpus &&
    pretrain $KEYS checkpoint.save=straight 2>straight.log
'

test_expect_success 'saved at TP2 x PP2 x DP2, VP2, distributed optimizer' '
    first full 8 $FULL && test -f full/iter_0000008.h5 && same_losses full.log straight.log 1e-5
'

test_expect_success 'resumed on one process' '
    rest full r.one 1
'

test_expect_success 'resumed at PP4' '
    rest full r.pp4 4 $PP4
'

test_expect_success 'resumed at TP4' '
    rest full r.tp4 4 $TP4
'

test_expect_success 'and back: saved on one process, resumed at TP2 x PP2 x DP2 x VP2' '
    first one 1 && rest one r.full 8 $FULL
'

test_expect_success 'and back: saved at PP4, resumed at TP2 x PP2 x DP2 x VP2' '
    first pp4 4 $PP4 && rest pp4 r.pp4full 8 $FULL
'

test_expect_success 'mb-generate loads the checkpoint of TP2 x PP2 x DP2 x VP2: the tokens of the straight one' '
    mb-generate r.full --prompt-ids "5 6 7 8" -n 16 --greedy --ids --ignore-eos >gen.full &&
    mb-generate straight --prompt-ids "5 6 7 8" -n 16 --greedy --ids --ignore-eos >gen.straight &&
    test $(wc -w <gen.full) -ge 16 &&
    cmp gen.straight gen.full
'

test_done
