#!/bin/sh
test_description='mb-pretrain: logger.metrics_jsonl (one JSON object per log line, flushed at
once, read back with Python json) and the start-up lines: layout, index building, iteration 1'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/lib/signal-lib.sh"

test_expect_success 'setup' '
    make_corpus
'

test_expect_success 'start-up: layout line, indices built, iteration 1 whatever log_interval' '
    pretrain train.train_iters=8 logger.log_interval=5 logger.metrics_jsonl=m.jsonl 2>run.log &&
    grep "world size 1, data-parallel size 1, tensor/pipeline/context-parallel size 1/1/1; micro-batches per step 4 (global batch 8 = micro-batch 2 x data-parallel 1 x 4); threads per rank 1$" run.log &&
    grep "building the train indices of corpus_text_document (64 samples) into corpus_text_document/cache/GPTDataset_indices" run.log &&
    grep "built the train indices of corpus_text_document in [0-9.]* s" run.log &&
    test "$(losses run.log | cut -d" " -f1 | tr "\n" " ")" = "1 5 8 "
'

test_expect_success 'the JSONL objects match the log lines (train and validation)' '
    "$PY" "$ORACLE/metrics_check.py" m.jsonl run.log 8 &&
    test $(grep -c "\"type\": \"validation\"" m.jsonl) -eq 2
'

test_expect_success '2 ranks: layout line, cached indices loaded, JSONL appended by rank 0 only' '
    pretrain_mpi 2 train.train_iters=8 logger.metrics_jsonl=m2.jsonl 2>mpi.log &&
    grep "\[r0\] world size 2, data-parallel size 2, .*micro-batches per step 2 (global batch 8 = micro-batch 2 x data-parallel 2 x 2); threads per rank 1$" mpi.log &&
    grep "loaded the train indices of corpus_text_document from corpus_text_document/cache/GPTDataset_indices" mpi.log &&
    "$PY" "$ORACLE/metrics_check.py" m2.jsonl mpi.log 8 &&
    test $(grep -c "\"type\": \"train\"" m2.jsonl) -eq 8
'

test_expect_success 'each line is flushed at once: readable while the run is stopped mid-way' '
    start_run live.log train.train_iters=200 logger.metrics_jsonl=live.jsonl &&
    wait_iter live.log 12 &&
    kill -STOP $RUN_PID &&
    cp live.jsonl frozen.jsonl && cp live.log frozen.log &&
    kill -CONT $RUN_PID && kill -TERM $RUN_PID && wait $RUN_PID &&
    "$PY" "$ORACLE/metrics_check.py" frozen.jsonl frozen.log 8 --min 11
'

test_expect_success 'a resumed run appends; skipped (non-finite) values are null, not NaN' '
    pretrain train.train_iters=6 optimizer.lr=1e6 train.skip_nonfinite_steps=2 \
        checkpoint.save=ck train.exit_interval=4 logger.metrics_jsonl=nan.jsonl 2>nan.log &&
    test $(wc -l <nan.jsonl) -eq 5 &&
    pretrain train.train_iters=6 optimizer.lr=1e6 train.skip_nonfinite_steps=2 \
        checkpoint.save=ck checkpoint.load=ck logger.metrics_jsonl=nan.jsonl 2>nan2.log &&
    test $(wc -l <nan.jsonl) -eq 7 &&
    grep "\"iteration\": 6, .*\"skipped\": 1" nan.jsonl &&
    grep "\"iteration\": 3, .*\"loss\": null, \"lr\": [0-9.e-]*, \"grad_norm\": null, .*\"skipped\": 1" nan.jsonl &&
    "$PY" -c "
import json, sys
for line in open(sys.argv[1]):
    json.loads(line, parse_constant=lambda c: sys.exit(\"constant \" + c))
" nan.jsonl
'

test_expect_success 'an unwritable metrics file is an error naming it' '
    test_expect_code 1 pretrain train.train_iters=2 scheduler.lr_warmup_iters=1 \
        logger.metrics_jsonl=no/such/dir/m.jsonl 2>err &&
    grep "error: no/such/dir/m.jsonl: cannot open the metrics file (logger.metrics_jsonl): No such file or directory" err
'

test_done
