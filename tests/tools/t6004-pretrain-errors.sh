#!/bin/sh
test_description='mb-pretrain: bad input gives a clear error naming the place, exit 1 or 2'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

test_expect_success 'setup' '
    make_corpus &&
    pretrain checkpoint.save=ck train.train_iters=2 scheduler.lr_warmup_iters=1 2>/dev/null
'

test_expect_success 'unknown recipe key: exit 2 with a suggestion' '
    test_expect_code 2 pretrain train.trian_iters=5 2>err &&
    grep "unknown key .train.trian_iters." err && grep "did you mean .train.train_iters." err
'

test_expect_success 'unknown key inside a recipe file: exit 1 naming file and line' '
    sed "s/hidden_size: 64/hiden_size: 64/" "$SMALL_RECIPE" >bad.yaml &&
    test_expect_code 1 mb-pretrain --recipe bad.yaml 2>err &&
    grep "bad.yaml:[0-9]*: unknown key .model.hiden_size." err
'

test_expect_success 'unknown recipe name: exit 2 listing the recipes' '
    test_expect_code 2 mb-pretrain --recipe no_such_recipe 2>err && grep tiny err
'

test_expect_success 'no recipe: exit 2' '
    test_expect_code 2 mb-pretrain train.train_iters=1 2>err && grep "no recipe" err
'

test_expect_success 'missing data file: exit 1 naming it' '
    test_expect_code 1 pretrain data.data_path=nothere_text_document 2>err &&
    grep "nothere_text_document" err
'

test_expect_success 'corrupted .idx: exit 1 naming it' '
    cp corpus_text_document.bin broken_text_document.bin &&
    head -c 40 corpus_text_document.idx >broken_text_document.idx &&
    printf "garbage-garbage-garbage" >>broken_text_document.idx &&
    test_expect_code 1 pretrain data.data_path=broken_text_document 2>err &&
    grep "broken_text_document.idx" err
'

test_expect_success 'truncated checkpoint: exit 1 naming it' '
    mkdir trunc && head -c 3000 ck/iter_0000002.h5 >trunc/iter_0000002.h5 &&
    echo iter_0000002.h5 >trunc/latest &&
    test_expect_code 1 pretrain checkpoint.load=trunc 2>err &&
    grep "trunc/iter_0000002.h5" err
'

test_expect_success 'checkpoint of another model shape: exit 1 naming the tensor' '
    test_expect_code 1 pretrain checkpoint.load=ck model.ffn_hidden_size=96 2>err &&
    grep "linear_fc" err
'

test_expect_success 'latest names a missing file: exit 1' '
    mkdir gone && echo iter_0000009.h5 >gone/latest &&
    test_expect_code 1 pretrain checkpoint.load=gone 2>err && grep "iter_0000009.h5" err
'

test_expect_success 'a model config that does not fit: exit 1 naming the key' '
    test_expect_code 1 pretrain model.num_query_groups=3 2>err && grep "num_query_groups" err
'

test_expect_success 'seq_length beyond the position table: exit 1' '
    test_expect_code 1 pretrain data.seq_length=128 2>err && grep "max_position_embeddings" err
'

test_expect_success 'a tensor-parallel size beyond the world is refused clearly' '
    test_expect_code 1 pretrain dist.tensor_model_parallel_size=2 2>err &&
    grep "dist.tensor_model_parallel_size must be between 1 and the world size 1, not 2" err
'

test_expect_success 'a failing rank under MPI stops every rank (no hang)' '
    test_expect_code 1 timeout 60 $MPIRUN -np 2 mb-pretrain --recipe "$SMALL_RECIPE" \
        data.data_path=nothere_text_document tokenizer.tokenizer_model=tok.json 2>err &&
    grep "nothere_text_document" err
'

test_done
