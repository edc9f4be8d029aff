#!/bin/sh
test_description='mb-pretrain with tensor (and sequence) parallelism, the special cases (validation loss, clipping with the distributed optimizer, a vocabulary TP does not divide; the layout matrix is t8810): the single-rank losses; bad layouts exit 1 on every rank'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# run NAME NP ARGS...: 20 iterations on NP ranks (1: no mpirun) into NAME.log
run() {
    name=$1 np=$2
    shift 2
    if test "$np" = 1; then
        pretrain train.train_iters=20 train.eval_interval=0 "$@" 2>"$name.log"
    else
        pretrain_mpi "$np" train.train_iters=20 train.eval_interval=0 "$@" 2>"$name.log"
    fi
}

test_expect_success 'setup: a real corpus, a trained tokenizer, token files' '
    make_corpus
'

test_expect_success 'the validation loss under TP2 is the single-process one' '
    pretrain train.train_iters=4 2>v1.log &&
    pretrain_mpi 2 train.train_iters=4 dist.tensor_model_parallel_size=2 2>v2.log &&
    grep "validation at iter 4" v1.log | sed "s/.*loss \([^ ]*\).*/\1/" >v1 &&
    grep "validation at iter 4" v2.log | sed "s/.*loss \([^ ]*\).*/\1/" >v2 &&
    test -s v1 && cmp v1 v2
'

# the distributed optimizer and overlapped buckets under TP: QK-norm and, with sequence
# parallelism, the norms hold TP-partial gradients that must be summed over TP before
# their buckets start; clipping at 0.05 is active at every step, so a wrong norm would
# change the updates
test_expect_success 'qwen3 TP2 x DP2, sequence-parallel, distributed optimizer, overlapped buckets, clipped' '
    run qwen3_c1 1 $(family_keys qwen3) optimizer.clip_grad=0.05 &&
    run qwen3_c22 4 $(family_keys qwen3) dist.tensor_model_parallel_size=2 \
        dist.sequence_parallel=true ddp.use_distributed_optimizer=true \
        ddp.overlap_grad_reduce=true ddp.bucket_size=20000 optimizer.clip_grad=0.05 &&
    same_losses qwen3_c22.log qwen3_c1.log 1e-5 &&
    run qwen3_c22b 4 $(family_keys qwen3) dist.tensor_model_parallel_size=2 \
        ddp.use_distributed_optimizer=true optimizer.clip_grad=0.05 &&
    same_losses qwen3_c22b.log qwen3_c1.log 1e-5
'

test_expect_success 'a vocabulary that TP does not divide (515 rows over 2 and 4 ranks, tied)' '
    run v1 1 model.vocab_size=515 model.share_embeddings_and_output_weights=true \
        model.num_query_groups=4 &&
    run v4 4 model.vocab_size=515 model.share_embeddings_and_output_weights=true \
        model.num_query_groups=4 dist.tensor_model_parallel_size=4 &&
    same_losses v4.log v1.log 1e-5
'

# every rank prints the reason: one error line per rank, then exit 1 (no hang)
test_expect_success 'TP4 with 2 query groups: exit 1, the reason on all 4 ranks' '
    test_expect_code 1 pretrain_mpi 4 dist.tensor_model_parallel_size=4 2>err &&
    test $(grep -c "error: .*dist.tensor_model_parallel_size 4 does not divide model.num_query_groups 2" err) = 4
'

test_expect_success 'TP4 with 2 heads: exit 1, the reason on every rank' '
    test_expect_code 1 pretrain_mpi 4 dist.tensor_model_parallel_size=4 \
        model.num_attention_heads=2 model.kv_channels=32 2>err &&
    test $(grep -c "does not divide model.num_attention_heads 2" err) = 4
'

test_expect_success 'a world of 3 ranks under TP2: exit 1, the reason on every rank' '
    test_expect_code 1 pretrain_mpi 3 dist.tensor_model_parallel_size=2 2>err &&
    test $(grep -c "the world of 3 ranks is not a multiple of tensor 2" err) = 3
'

test_expect_success 'sequence parallelism with a sequence TP does not divide: exit 1' '
    test_expect_code 1 pretrain_mpi 2 dist.tensor_model_parallel_size=2 \
        dist.sequence_parallel=true data.seq_length=63 2>err &&
    test $(grep -c "data.seq_length 63 is not a multiple of dist.tensor_model_parallel_size 2" err) = 2
'

test_done
