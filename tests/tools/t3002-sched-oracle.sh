#!/bin/sh
test_description='train/sched: learning rate of every iteration matches megatron-core OptimizerParamScheduler'
. "$(dirname "$0")/../lib/test-lib.sh"

# NAME STYLE WSD_STYLE LR MIN_LR WARMUP_INIT WARMUP DECAY WSD_ITERS TRAIN_ITERS GLOBAL_BATCH
test_expect_success 'setup: schedules' '
    cat >cases <<-\EOF
	cosine_warm      cosine   linear      3e-4  3e-5 0     100 0    0   1000 12
	cosine_init      cosine   linear      1e-3  1e-4 1e-5  37  900  0   1000 1
	cosine_no_warm   cosine   linear      6e-4  0    0     0   0    0   500  256
	linear_warm      linear   linear      2e-4  2e-5 0     50  0    0   777  24
	linear_short     linear   linear      1e-2  1e-3 0     10  300  0   500  3
	constant_warm    constant linear      5e-4  0    1e-6  20  0    0   200  8
	constant_flat    constant linear      5e-4  0    0     0   0    0   50   1
	isqrt            inverse-square-root linear 3e-4 1e-5 0 100 0 0   600  16
	wsd_linear       WSD      linear      3e-4  3e-5 0     50  0    200 1000 32
	wsd_cosine       WSD      cosine      3e-4  0    0     50  800  100 1000 5
	wsd_exponential  WSD      exponential 1e-3  1e-5 0     0   0    333 999  7
	wsd_minus_sqrt   WSD      minus_sqrt  3e-4  3e-6 1e-6  64  0    256 1024 512
	EOF
'

test_expect_success 'mb prints a learning rate for every iteration' '
    sched_lr <cases >mb.out &&
    test $(wc -l <mb.out) = $((1003 + 1003 + 503 + 780 + 503 + 203 + 53 + 603 + 1003 + 1003 + 1002 + 1027))
'

test_expect_success 'every value agrees with megatron-core to 1e-12 relative' '
    "$PY" "$ORACLE/megatron_sched.py" --compare mb.out <cases >cmp.out 2>cmp.err &&
    cat cmp.out
'

test_expect_success 'bad schedules are refused with the key named' '
    echo "bad cosine linear 3e-4 0 0 100 50 0 1000 1" >bad1 &&
    test_expect_code 1 sched_lr <bad1 2>err &&
    grep "scheduler.lr_warmup_iters=100: scheduler.lr_warmup_iters 100 must be at least 0 and less than lr_decay_iters 50" err &&
    echo "bad WSD linear 3e-4 0 0 10 0 0 100 1" >bad2 &&
    test_expect_code 1 sched_lr <bad2 2>err &&
    grep "scheduler.lr_wsd_decay_iters" err &&
    echo "bad linear linear 1e-4 1e-3 0 10 0 0 100 1" >bad3 &&
    test_expect_code 1 sched_lr <bad3 2>err &&
    grep "optimizer.lr=1e-4: optimizer.lr 0.0001 is below min_lr 0.001" err
'

test_done
