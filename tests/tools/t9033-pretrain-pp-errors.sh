#!/bin/sh
test_description='mb-pretrain under pipeline parallelism: bad layouts exit 1 on every rank naming the key, without a hang; a divergence stops every stage at the same iteration; SIGTERM saves on every stage and the resume is bitwise'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/lib/signal-lib.sh"

P=dist.pipeline_model_parallel_size
V=dist.virtual_pipeline_model_parallel_size

# refused NP LOG KEYS...: exit 1 within 60 s, every rank printing an error
refused() {
    np=$1 log=$2
    shift 2
    test_expect_code 1 timeout 60 $MPIRUN -np $np mb-pretrain --recipe "$SMALL_RECIPE" \
        data.data_path=corpus_text_document tokenizer.tokenizer_model=tok.json \
        train.train_iters=3 "$@" 2>$log &&
    r=0 && while test $r -lt $np; do
        grep "\[r$r\] error: " $log >/dev/null || { say "rank $r printed no error"; return 1; }
        r=$((r + 1))
    done
}

test_expect_success 'setup' '
    make_corpus
'

test_expect_success 'interleaved: 3 micro-batches over 2 stages (needs a multiple of 2)' '
    refused 2 m3.log model.num_layers=4 $P=2 $V=2 train.global_batch_size=6 &&
    grep "\[r0\] error: command line: $V=2: .*micro-batches per step .* to be a multiple of $P 2 and at least 2; it is 3$" m3.log
'

test_expect_success 'interleaved: fewer micro-batches than stages' '
    refused 4 m2.log model.num_layers=8 $P=4 $V=2 train.global_batch_size=4 &&
    grep "\[r3\] error: .* to be a multiple of $P 4 and at least 4; it is 2$" m2.log
'

test_expect_success 'more stages than layers' '
    refused 4 layers.log $P=4 &&
    grep "\[r2\] error: command line: $P=4: more pipeline stages than layers: 4 stages x 1 virtual chunks need at least 4 layers, model.num_layers is 2" layers.log
'

test_expect_success 'layers that do not divide, and uneven stages that do not fit' '
    refused 2 odd.log model.num_layers=5 $P=2 &&
    grep "\[r1\] error: .*model.num_layers 5 is not divisible by $P 2" odd.log &&
    refused 3 uneven.log model.num_layers=5 $P=3 dist.num_layers_in_first_pipeline_stage=2 &&
    grep "\[r0\] error: .*cannot be cut over 3 pipeline stages" uneven.log &&
    refused 2 vpuneven.log model.num_layers=4 $P=2 $V=2 dist.num_layers_in_first_pipeline_stage=1 &&
    grep "uneven stages are supported without virtual stages only" vpuneven.log &&
    refused 2 vp0.log $V=2 &&
    grep "needs $P > 1" vp0.log
'

test_expect_success 'a divergence (lr 1e6) at PP2 x VP2: every stage stops at iteration 3, latest names 2' '
    test_expect_code 1 pretrain_mpi 2 model.num_layers=4 $P=2 $V=2 train.train_iters=10 \
        checkpoint.save_interval=1 optimizer.lr=1e6 checkpoint.save=nan 2>nan.log &&
    grep "\[r0\] error: iteration 3: the gradient norm is not finite" nan.log &&
    grep "\[r1\] error: iteration 3: the gradient norm is not finite" nan.log &&
    "$PY" "$ORACLE/ckpt_latest_check.py" nan 2 --no-tmp
'

ITERS=60
test_expect_success 'SIGTERM to every rank of PP2 x DP2 at a random moment: saved, exit 0; the resume is the straight run, bitwise' '
    pretrain_mpi 4 model.num_layers=4 $P=2 train.train_iters=$ITERS checkpoint.save=straight \
        2>straight.log &&
    start_run_mpi 4 term.log model.num_layers=4 $P=2 train.train_iters=$ITERS \
        checkpoint.save=term checkpoint.save_interval=7 &&
    stop_at term.log 2 8 TERM all &&
    wait $RUN_PID &&
    k=$(sed -n "s/.*exit signal SIGTERM received: saved iteration \([0-9]*\), exiting/\1/p" term.log) &&
    test -n "$k" && test "$k" -lt $ITERS && say "stopped at $k" &&
    "$PY" "$ORACLE/ckpt_latest_check.py" term "$k" --no-tmp >/dev/null &&
    pretrain_mpi 4 model.num_layers=4 $P=2 train.train_iters=$ITERS checkpoint.save=term \
        checkpoint.load=term 2>term2.log &&
    grep "resumed from term/iter_" term2.log &&
    same_losses term2.log straight.log 0 &&
    "$PY" "$ORACLE/ckpt_compare.py" term/iter_00000$ITERS.h5 straight/iter_00000$ITERS.h5
'

test_done
