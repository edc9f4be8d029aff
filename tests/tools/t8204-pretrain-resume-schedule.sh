#!/bin/sh
test_description='mb-pretrain: a resume that changes train.train_iters, optimizer.lr/min_lr or a
scheduler.* key is refused with the key named, unless scheduler.override_opt_param_scheduler=true,
which then follows the new schedule'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# lrs FILE: "N LR" of each iteration line
lrs() {
    sed -n 's/.*iter *\([0-9]*\)\/[0-9]* | loss [^ ]* | lr \([^ ]*\) .*/\1 \2/p' "$1"
}

test_expect_success 'setup: 8-iteration run stopped at 4' '
    make_corpus &&
    pretrain checkpoint.save=ck train.exit_interval=4 2>first.log &&
    test "$(cat ck/latest)" = iter_0000004.h5
'

for change in train.train_iters=12 optimizer.lr=0.001 optimizer.min_lr=0 \
              scheduler.lr_decay_style=linear scheduler.lr_warmup_iters=3 \
              scheduler.lr_decay_iters=6; do
    key=${change%%=*}
    test_expect_success "resume with $change is refused, naming the key" "
        test_expect_code 1 pretrain checkpoint.save=ck checkpoint.load=ck $change 2>err &&
        grep 'error: command line: $change: $key is .* but ck/iter_0000004.h5 was trained with .*: resuming would change the learning-rate schedule; keep it, or set scheduler.override_opt_param_scheduler=true to use the new one' err &&
        test \"\$(cat ck/latest)\" = iter_0000004.h5
    "
done

test_expect_success 'a change from the recipe file is named by its file and line' '
    sed "s/lr: 3.0e-3/lr: 2.0e-3/" "$SMALL_RECIPE" >other.yaml &&
    test_expect_code 1 mb-pretrain --recipe other.yaml data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json checkpoint.load=ck 2>err2 &&
    grep "error: other.yaml:[0-9]*: optimizer.lr is 0.002 but ck/iter_0000004.h5 was trained with 0.003: resuming" err2
'

test_expect_success 'keys outside the schedule may change (eval_interval, log_interval)' '
    cp -r ck ck2 &&
    pretrain checkpoint.save=ck2 checkpoint.load=ck2 train.eval_interval=2 \
        logger.log_interval=2 2>other.log &&
    test "$(cat ck2/latest)" = iter_0000008.h5
'

test_expect_success 'override_opt_param_scheduler=true: runs on with the new schedule' '
    pretrain checkpoint.save=ck checkpoint.load=ck train.train_iters=12 \
        scheduler.override_opt_param_scheduler=true 2>over.log &&
    grep "scheduler.override_opt_param_scheduler: the schedule of this run is used, not the checkpoint.s (train.train_iters 12, was 8)" over.log &&
    test "$(cat ck/latest)" = iter_0000012.h5 &&
    pretrain train.train_iters=12 2>straight12.log &&
    lrs over.log >over.lr && lrs straight12.log | awk "\$1 > 4" >straight12.lr &&
    test $(wc -l <over.lr) -eq 8 &&
    cmp over.lr straight12.lr
'

test_done
