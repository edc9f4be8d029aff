#!/bin/sh
test_description='mb-pretrain under pipeline parallelism: Gemma 2, Gemma 3, GPT-2 and a 5-layer Llama on every TP x PP x DP layout in {1,2}^3, PP4, PP2 x VP2, uneven first/last stages and TP2 x PP2 x DP2 x VP2 with the distributed optimizer: the single-process loss at each of 20 iterations within 1e-5, the final weights within 1e-5 (per tensor, |a - b| / |b| as Megatron compares layouts; the key rows of a qkv bias, whose gradient is 0 in exact arithmetic, left out)'
# The families with the most layer-dependent structure: Gemma 2 (sliding window on every
# other layer, tied embeddings), Gemma 3 (sliding layers with their own rope base, global
# ones with another), GPT-2 (tied embeddings, learned positions, biases), Llama with an odd
# layer count (stages uneven by Megatron's num_layers_in_first/last_pipeline_stage; no VP:
# 5 layers do not cut into 2 x 2 chunks). Up to 8 oversubscribed ranks.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

ITERS="train.train_iters=20 train.eval_interval=10 train.eval_iters=1"

test_expect_success 'setup: a real corpus, a trained tokenizer, token files' '
    make_corpus
'

# layouts FAMILY: "name ranks keys..." lines, the keys without spaces
layouts() {
    P=dist.pipeline_model_parallel_size T=dist.tensor_model_parallel_size
    F=dist.num_layers_in_first_pipeline_stage L=dist.num_layers_in_last_pipeline_stage
    V=dist.virtual_pipeline_model_parallel_size
    if test "$1" = llama; then # 5 layers: the pipeline stages are uneven
        pp2="$P=2 $F=3" pp4="$P=4 $F=2"
    else
        pp2="$P=2" pp4="$P=4"
    fi
    echo "tp2 2 $T=2"
    echo "dp2 2"
    echo "pp2 2 $pp2"
    echo "tp2.pp2 4 $T=2 $pp2"
    echo "tp2.dp2 4 $T=2"
    echo "pp2.dp2 4 $pp2"
    echo "tp2.pp2.dp2 8 $T=2 $pp2"
    echo "pp4 4 $pp4"
    if test "$1" = llama; then
        echo "pp2.last1 2 $P=2 $L=1"
        echo "pp3.first1.last2 3 $P=3 $F=1 $L=2"
    else
        echo "pp2.vp2 2 $pp2 $V=2"
        echo "pp2.first1 2 $P=2 $F=1"
        echo "pp3.last2 3 $P=3 $L=2"
        # DP4: the first stage's updated tied embedding is copied to the last (trainer.c)
        echo "pp2.dp4 8 $pp2"
        echo "tp2.pp2.dp2.vp2.dist 8 $T=2 $pp2 $V=2 dist.sequence_parallel=true ddp.use_distributed_optimizer=true ddp.overlap_grad_reduce=true ddp.bucket_size=5000"
    fi
}

for family in gemma2 gemma3 gpt2 llama; do
    layers=4
    test $family = llama && layers=5
    keys="$(family_keys $family | grep -v ^model.num_layers=) model.num_layers=$layers"
    test_expect_success "$family ($layers layers): one process" '
        pretrain $ITERS $keys checkpoint.save='$family'.1 2>'$family'.1.log &&
        losses '$family'.1.log >l && test $(wc -l <l) = 20
    '
    layouts $family >layouts.$family
    while read -r name ranks extra <&3; do
        test_expect_success "$family $name: the single-process losses and final weights" '
            pretrain_mpi '$ranks' $ITERS $keys '"$extra"' checkpoint.save='$family.$name' \
                2>'$family.$name'.log &&
            same_losses '$family.$name'.log '$family'.1.log 1e-5 &&
            "$PY" "$ORACLE/layout_weights_check.py" '$family'.1/iter_0000020.h5 \
                '$family.$name'/iter_0000020.h5 1e-5
        '
    done 3<layouts.$family
done

test_done
