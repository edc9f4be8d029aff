#!/bin/bash
# finetune_lora.sh - supervised fine-tuning with LoRA under Slurm: one MPI rank per task,
# saved and requeued when the time limit comes, resumed from the latest checkpoint; at
# the end the adapter can be exported for HF peft.
#
#   BASE=smol/h5 DATA=gsm8k_train.jsonl TEMPLATE='Question: {question}
#   Answer: ' ANSWER=answer ADAPTER=adapter/ sbatch slurm/finetune_lora.sh
#       recipes/sft_lora.yaml on 1 node x 2 tasks (data-parallel), then
#       mb-convert --from h5 --to peft ckpt/sft_lora adapter/
#   BASE=smol/h5 DATA=chat.jsonl sbatch --nodes=2 --ntasks-per-node=4 \
#       slurm/finetune_lora.sh train.train_iters=500 peft.dim=16   # chat rows (messages)
#
# Arguments after the script are key=value overrides for mb-finetune (they come last, so
# they win). Environment (sbatch passes it on):
#   BASE       checkpoint.pretrained_checkpoint: the base model, an mb checkpoint
#              (mb-convert --from hf --to h5 of a HuggingFace model; scripts/smollm2-hf.sh)
#   DATA       data.data_path: a JSONL file of prompt/answer or chat rows
#   TEMPLATE   data.prompt_template, e.g. "Question: {question}\nAnswer: " (prompt rows)
#   ANSWER     data.answer_key, the answer's key in a prompt row
#   RECIPE     a recipe name or a YAML file (default sft_lora; sft_dora for DoRA)
#   CKPT       checkpoint.save and checkpoint.load (default ckpt/RECIPE): adapter-only
#              checkpoints
#   ADAPTER    when set, the finished adapter is written there as an HF PEFT directory
#              (adapter_config.json, adapter_model.safetensors)
#   MB_HOME    where the tools are: MB_HOME/bin/mb-finetune (a checkout or a prefix)
# Relative paths are taken from the directory sbatch was run in. sbatch runs a copy of
# this script from its spool directory, so the tools are looked for in MB_HOME/bin, then
# in the prefix `make install` wrote this copy for, then in bin/ of the submit directory
# (a checkout), then in PATH.
#
# Time limit: as slurm/pretrain_llama.sh (the same training loop): 120 s before it Slurm
# sends SIGUSR1 to this shell, which passes it to the ranks through srun; mb-finetune
# (train.exit_signal=SIGUSR1) finishes the step, saves a checkpoint and exits 0, and the
# job requeues itself and resumes from `latest`. The export runs once the last iteration
# is saved.
#SBATCH --job-name=mb-finetune
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --signal=B:USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=mb-finetune-%j.log
set -euo pipefail

# Slurm's signal may come at any moment: the trap is set first. bash runs a trap only
# between commands, so srun runs in the background and the shell waits for it; srun
# relays SIGUSR1 to every rank. Passed on once: a second signal would make mb-finetune
# abort its save.
signalled=0 srun_pid="" status=0
on_usr1() {
    [ $signalled = 1 ] && return
    signalled=1
    echo "finetune_lora.sh: SIGUSR1 (time limit near): passing it to the ranks"
    if [ -n "$srun_pid" ]; then
        kill -USR1 "$srun_pid" 2>/dev/null || true # (srun may have ended already)
    fi
}
trap on_usr1 USR1

die() {
    echo "finetune_lora.sh: error: $*" >&2
    exit 1
}

# find_tool NAME: the path of the mb tool NAME (see the header for the order)
find_tool() {
    local installed='@MB_BINDIR@' dir
    for dir in ${MB_HOME:+"$MB_HOME/bin"} "$installed" ${SLURM_SUBMIT_DIR:+"$SLURM_SUBMIT_DIR/bin"}; do
        [ -x "$dir/$1" ] && { echo "$dir/$1"; return 0; }
    done
    command -v "$1" ||
        die "$1 not found: set MB_HOME to the checkout or prefix that holds bin/$1, or add it to PATH"
}

[ -n "${SLURM_JOB_ID:-}" ] || die "submit this script with sbatch (see its header)"
[ -n "${BASE:-}" ] || die "set BASE to the base model's mb checkpoint (see the header)"
[ -n "${DATA:-}" ] || die "set DATA to the JSONL file of training rows (see the header)"
FINETUNE=$(find_tool mb-finetune)
RECIPE=${RECIPE:-sft_lora}
CKPT=${CKPT:-ckpt/$(basename "$RECIPE" .yaml)}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

args=(--recipe "$RECIPE" checkpoint.pretrained_checkpoint="$BASE" data.data_path="$DATA")
[ -n "${TEMPLATE:-}" ] && args+=(data.prompt_template="$TEMPLATE")
[ -n "${ANSWER:-}" ] && args+=(data.answer_key="$ANSWER")
args+=(checkpoint.save="$CKPT" checkpoint.load="$CKPT" train.exit_signal=SIGUSR1 "$@")

echo "finetune_lora.sh: job $SLURM_JOB_ID, run $((${SLURM_RESTART_COUNT:-0} + 1)):" \
    "$SLURM_NTASKS ranks, $FINETUNE, base $BASE, adapter checkpoints in $CKPT"

# finished: 0 when `latest` of the run's checkpoint.save names its train.train_iters-th
# iteration, both as mb-finetune resolves them from the recipe and the arguments (a
# signal during the last iteration or its save must not requeue a job that is done)
finished() {
    local cfg iters save latest
    cfg=$("$FINETUNE" --print-config "${args[@]}") || return 1
    iters=$(awk '/^[a-z]/ { s = $1 } s == "train:" && $1 == "train_iters:" { print $2 }' <<<"$cfg")
    save=$(awk '/^[a-z]/ { s = $1 } s == "checkpoint:" && $1 == "save:" { sub(/^ *save: */, ""); print }' <<<"$cfg")
    save=${save#\"} save=${save%\"}
    latest=$(cat "$save/latest" 2>/dev/null) || return 1
    latest=${latest#iter_} latest=${latest%.h5}
    [[ $latest =~ ^[0-9]+$ && $iters =~ ^[0-9]+$ ]] && ((10#$latest >= iters))
}

if [ $signalled = 0 ]; then # (a signal before the start: requeue at once)
    srun --mpi=pmix "$FINETUNE" "${args[@]}" &
    srun_pid=$!
    while :; do
        status=0
        wait "$srun_pid" || status=$?
        kill -0 "$srun_pid" 2>/dev/null || break # else wait was cut short by the trap
    done
fi

if [ $status != 0 ]; then
    echo "finetune_lora.sh: mb-finetune failed (exit $status): not requeued" >&2
    exit $status
fi
if [ $signalled = 1 ] && ! finished; then
    echo "finetune_lora.sh: saved on SIGUSR1: requeueing job $SLURM_JOB_ID to resume from $CKPT/latest"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
fi
if [ $signalled = 1 ]; then
    echo "finetune_lora.sh: SIGUSR1 came after the last iteration: done, not requeued"
fi
if [ -n "${ADAPTER:-}" ]; then
    CONVERT=$(find_tool mb-convert)
    "$CONVERT" --from h5 --to peft "$CKPT" "$ADAPTER"
    echo "finetune_lora.sh: adapter for HF peft in $ADAPTER"
fi
