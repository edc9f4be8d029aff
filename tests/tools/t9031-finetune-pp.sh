#!/bin/sh
test_description='mb-finetune under pipeline parallelism: LoRA at TP2 x PP2 and DoRA at PP2 x VP2 x DP2 give the single-process losses (20 iterations, 1e-5) and adapters (1e-5 per tensor); an adapter checkpoint saved at TP2 x PP2 resumes on one process and exports to PEFT'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

ARGS="checkpoint.pretrained_checkpoint=base data.data_path=train.jsonl
    data.validation_path=valid.jsonl data.answer_key=answer data.seq_length=256
    train.micro_batch_size=1 train.global_batch_size=8 scheduler.lr_warmup_iters=0
    train.train_iters=20 train.eval_interval=10 train.eval_iters=2 optimizer.lr=3e-3
    peft.dim=8 logger.log_interval=1"
TEMPLATE='Question: {question}\nAnswer: '

# same_weights A B: the adapters of the final checkpoints of A and B within 1e-5, as
# Megatron compares layouts (parallel.md 7.1: |a - b| / |b| per tensor; TP sums in
# another order, amplified by Adam on the small adapters, move single elements more)
same_weights() {
    "$PY" "$ORACLE/layout_weights_check.py" $1/iter_0000020.h5 $2/iter_0000020.h5 1e-5 adapter
}

finetune() { # RECIPE ARGS...
    recipe=$1
    shift
    mb-finetune --recipe $recipe $ARGS data.prompt_template="$TEMPLATE" "$@"
}

finetune_mpi() { # NP RECIPE ARGS...
    np=$1 recipe=$2
    shift 2
    $MPIRUN -np $np mb-finetune --recipe $recipe $ARGS data.prompt_template="$TEMPLATE" "$@"
}

test_expect_success 'setup: a 4-layer pretrained base and GSM8K rows' '
    make_corpus &&
    pretrain checkpoint.save=base model.num_layers=4 model.max_position_embeddings=256 \
        2>base.log &&
    gsm8k_rows "$MB_SHARED_DATA/sft/gsm8k_train.jsonl" train.jsonl 200 &&
    gsm8k_rows "$MB_SHARED_DATA/sft/gsm8k_test.jsonl" valid.jsonl 20
'

test_expect_success 'LoRA (dropout 0.1) on one process, and at TP2 x PP2: the same losses and adapters' '
    finetune sft_lora peft.dropout=0.1 checkpoint.save=lora.1 2>lora.1.log &&
    test $(losses lora.1.log | wc -l) = 20 &&
    finetune_mpi 4 sft_lora peft.dropout=0.1 dist.tensor_model_parallel_size=2 \
        dist.pipeline_model_parallel_size=2 checkpoint.save=lora.tp2pp2 2>lora.tp2pp2.log &&
    grep "pipeline stage 1 of 2: layers 2-3; 1F1B schedule" lora.tp2pp2.log &&
    same_losses lora.tp2pp2.log lora.1.log 1e-5 &&
    same_weights lora.1 lora.tp2pp2
'

test_expect_success 'DoRA on one process, and at PP2 x VP2 x DP2 with the distributed optimizer' '
    finetune sft_dora checkpoint.save=dora.1 2>dora.1.log &&
    finetune_mpi 4 sft_dora dist.pipeline_model_parallel_size=2 \
        dist.virtual_pipeline_model_parallel_size=2 ddp.use_distributed_optimizer=true \
        checkpoint.save=dora.vp 2>dora.vp.log &&
    grep "pipeline stage 0 of 2: layers 0-0, 2-2; interleaved schedule" dora.vp.log &&
    same_losses dora.vp.log dora.1.log 1e-5 &&
    same_weights dora.1 dora.vp
'

test_expect_success 'an adapter checkpoint saved at TP2 x PP2 resumes on one process: the same curve' '
    finetune_mpi 4 sft_lora peft.dropout=0.1 dist.tensor_model_parallel_size=2 \
        dist.pipeline_model_parallel_size=2 checkpoint.save=half train.exit_interval=10 \
        2>half.log &&
    finetune sft_lora peft.dropout=0.1 checkpoint.load=half checkpoint.save=half \
        2>rest.log &&
    grep "iter *11/20" rest.log &&
    same_losses rest.log lora.1.log 1e-5 &&
    same_weights lora.1 half
'

test_expect_success 'the PP-trained adapters export to PEFT: the same tensors as the single-process run'"'"'s (1e-4 per piece of a fused tensor)' '
    mb-convert --from h5 --to peft lora.tp2pp2 peft.pp 2>/dev/null &&
    mb-convert --from h5 --to peft lora.1 peft.1 2>/dev/null &&
    "$PY" -c "
import sys
from safetensors.numpy import load_file
a = load_file(\"peft.pp/adapter_model.safetensors\")
b = load_file(\"peft.1/adapter_model.safetensors\")
assert sorted(a) == sorted(b) and len(a) == 4 * 7 * 2, sorted(a)  # q k v o gate up down, A and B
import numpy as np
rel = lambda x, y: float(np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-30))
worst = max(rel(a[k].astype(np.float64), b[k].astype(np.float64)) for k in a)
print(\"# largest relative difference over\", len(a), \"tensors:\", worst)
assert worst < 1e-4  # the fused tensors agree to 1e-5 (above); a piece of one can differ more
"
'

test_done
