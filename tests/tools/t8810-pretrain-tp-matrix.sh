#!/bin/sh
test_description='mb-pretrain, every family x TP {1,2,4} x DP {1,2} x sequence parallelism (x the distributed optimizer): 20 losses within 1e-5 of one process'
# The layout matrix (tests/tools/t8802 has the special cases and the bad layouts): 8 families,
# each on one process and then on the 9 layouts TP2, TP4, TP2xDP2, TP4xDP2 (with and without
# sequence parallelism) and DP2, and TP2xDP2 and TP4xDP2 with sequence parallelism, the
# distributed optimizer and overlapped buckets, up to 8 oversubscribed ranks. About 2
# minutes on 2 cores.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

test_expect_success 'setup: a real corpus, a trained tokenizer, token files' '
    make_corpus
'

# 4 query groups everywhere, so that TP4 can cut them
for family in llama mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2; do
    test_expect_success "$family: one process" '
        pretrain train.train_iters=20 train.eval_interval=0 $(family_keys '$family') \
            model.num_query_groups=4 2>'$family'.1.log &&
        losses '$family'.1.log >l && test $(wc -l <l) = 20
    '
    for layout in "2 1" "4 1" "2 2" "4 2" "1 2"; do
        set -- $layout
        for sp in false true; do
            test "$1" = 1 && test $sp = true && continue
            name=$family.tp$1.dp$2.sp$sp
            test_expect_success "$family TP$1 x DP$2, sequence_parallel=$sp: the single-process losses" '
                pretrain_mpi '$(($1 * $2))' train.train_iters=20 train.eval_interval=0 \
                    $(family_keys '$family') model.num_query_groups=4 \
                    dist.tensor_model_parallel_size='$1' dist.sequence_parallel='$sp' \
                    2>'$name'.log &&
                same_losses '$name'.log '$family'.1.log 1e-5
            '
        done
    done
    # with the distributed optimizer and overlapped buckets (the TP-partial gradients summed
    # over TP before their buckets start)
    for tp in 2 4; do
        name=$family.tp$tp.dp2.dist
        test_expect_success "$family TP$tp x DP2, sequence-parallel, distributed optimizer, overlap: the single-process losses" '
            pretrain_mpi '$((tp * 2))' train.train_iters=20 train.eval_interval=0 \
                $(family_keys '$family') model.num_query_groups=4 \
                dist.tensor_model_parallel_size='$tp' dist.sequence_parallel=true \
                ddp.use_distributed_optimizer=true ddp.overlap_grad_reduce=true \
                ddp.bucket_size=20000 2>'$name'.log &&
            same_losses '$name'.log '$family'.1.log 1e-5
        '
    done
done

test_done
