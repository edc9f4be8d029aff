#!/bin/sh
test_description='mb-pretrain gives the same loss per step with 1, 2 and 4 data-parallel ranks'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

test_expect_success 'setup: a real corpus, a trained tokenizer, token files' '
    make_corpus
'

test_expect_success 'one process trains and the loss falls' '
    pretrain 2>dp1.log &&
    losses dp1.log >dp1.loss && test $(wc -l <dp1.loss) -eq 8 &&
    awk "NR==1 { first = \$2 } END { exit !(\$2 < first) }" dp1.loss
'

test_expect_success 'DP=2 matches DP=1 to 1e-5 at every step' '
    pretrain_mpi 2 2>dp2.log &&
    same_losses dp2.log dp1.log 1e-5
'

test_expect_success 'DP=4 (and micro-batch 1) matches DP=1 to 1e-5 at every step' '
    pretrain_mpi 4 train.micro_batch_size=1 2>dp4.log &&
    same_losses dp4.log dp1.log 1e-5
'

test_expect_success 'the validation loss is the same too' '
    grep "validation at iter 8" dp1.log | sed "s/.*loss \([^ ]*\).*/\1/" >v1 &&
    grep "validation at iter 8" dp4.log | sed "s/.*loss \([^ ]*\).*/\1/" >v4 &&
    test -s v1 && awk -v a=$(cat v1) -v b=$(cat v4) "BEGIN { d = a - b; if (d < 0) d = -d; exit !(d / a < 1e-5) }"
'

test_expect_success 'a global batch that does not divide by micro-batch x DP is refused' '
    test_expect_code 1 pretrain_mpi 3 2>err &&
    grep "not a multiple of" err
'

test_done
