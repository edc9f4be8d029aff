#!/bin/sh
test_description='slurm/finetune_lora.sh under sbatch: LoRA on 2 MPI ranks gives the losses of one process (the first 20 iterations, 1e-5), the adapter is exported for HF peft at the end; SIGUSR1 saves, requeues and resumes with the losses of the uninterrupted job; no BASE is a clear error'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/slurm/slurm-lib.sh"

# enough iterations that a signal sent after the third lands mid-run (about 20 ms each)
ITERS=200
TEMPLATE='Question: {question}
Answer: '
SETTINGS="data.seq_length=128 train.micro_batch_size=2 train.global_batch_size=8 \
train.train_iters=$ITERS scheduler.lr_warmup_iters=0 optimizer.lr=1e-3 train.eval_interval=0 \
logger.log_interval=1"

# job [VAR=VALUE...]: finetune_lora.sh for this base and data (2 ranks, the script's
# default), tools through MB_HOME; prints the job id
job() {
    # shellcheck disable=SC2086
    id=$(env MB_HOME="$MB_ROOT" BASE=base DATA=train.jsonl TEMPLATE="$TEMPLATE" ANSWER=answer \
        "$@" sbatch --parsable "$MB_ROOT/slurm/finetune_lora.sh" $SETTINGS) &&
    echo "${id%%;*}"
}

test_expect_success 'setup: Slurm is up; a tiny base with its tokenizer; GSM8K rows' '
    need_slurm &&
    make_corpus &&
    pretrain checkpoint.save=base model.max_position_embeddings=128 2>base.log &&
    head -n 200 "$MB_SHARED_DATA/sft/gsm8k_train.jsonl" >train.jsonl &&
    # shellcheck disable=SC2086
    mb-finetune --recipe sft_lora checkpoint.pretrained_checkpoint=base \
        data.data_path=train.jsonl data.prompt_template="$TEMPLATE" data.answer_key=answer \
        $SETTINGS 2>one.log &&
    test $(losses one.log | wc -l) = $ITERS
'

test_expect_success 'a job of 2 ranks: COMPLETED, the one-process losses, the adapter for peft' '
    id=$(job ADAPTER=adapter CKPT=straight) &&
    test "$(wait_job $id 300)" = COMPLETED &&
    test "$(job_field $id ExitCode)" = 0:0 &&
    grep "finetune_lora.sh: job $id, run 1: 2 ranks, $MB_ROOT/bin/mb-finetune, base base" mb-finetune-$id.log &&
    losses mb-finetune-$id.log >straight.loss && test $(wc -l <straight.loss) = $ITERS &&
    losses one.log >one.loss && head -n 20 straight.loss >two20 && head -n 20 one.loss >one20 &&
    awk "NR==FNR { a[\$1] = \$2; next } { d = a[\$1] - \$2; if (d < 0) d = -d;
        if (d > 1e-5 * (\$2 < 0 ? -\$2 : \$2)) bad = 1 } END { exit bad }" two20 one20 &&
    test "$(cat straight/latest)" = iter_0000$ITERS.h5 &&
    grep "finetune_lora.sh: adapter for HF peft in adapter" mb-finetune-$id.log &&
    grep "\"r\": 32" adapter/adapter_config.json && test -s adapter/adapter_model.safetensors
'

test_expect_success 'SIGUSR1 before the time limit: saved, requeued, resumed, the losses of the straight job, bitwise' '
    id=$(job CKPT=requeued) &&
    wait_log mb-finetune-$id.log "iter *3/$ITERS" 120 &&
    scancel --batch --signal=USR1 $id &&
    test "$(wait_job $id 300)" = COMPLETED &&
    test "$(job_field $id Restarts)" = 1 &&
    grep "requeueing job $id to resume from requeued/latest" mb-finetune-$id.log &&
    grep "run 2: 2 ranks" mb-finetune-$id.log &&
    losses mb-finetune-$id.log | sort -n | awk "!seen[\$1]++" >both &&
    cmp both straight.loss
'

test_expect_success 'no BASE: exit 1 naming what to set' '
    id=$(env -u BASE MB_HOME="$MB_ROOT" DATA=train.jsonl sbatch --parsable \
        "$MB_ROOT/slurm/finetune_lora.sh") &&
    id=${id%%;*} &&
    test "$(wait_job $id)" = FAILED &&
    test "$(job_field $id ExitCode)" = 1:0 &&
    grep "finetune_lora.sh: error: set BASE to the base model" mb-finetune-$id.log
'

test_done
