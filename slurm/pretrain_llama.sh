#!/bin/bash
# pretrain_llama.sh - data-parallel pretraining under Slurm: one MPI rank per task, saved
# and requeued when the time limit comes, resumed from the latest checkpoint.
#
#   DATA=data/web_text_document TOKENIZER=llama3/ sbatch slurm/pretrain_llama.sh
#       recipes/llama32_1b.yaml on 1 node x 2 tasks: global batch 512 = 2 ranks x micro-batch 1
#       x 256 accumulation steps
#   DATA=data/web_text_document TOKENIZER=llama3/ sbatch --nodes=2 --ntasks-per-node=4 \
#       slurm/pretrain_llama.sh train.train_iters=1000      # 8 ranks: 512 = 8 x 1 x 64
#   RECIPE=tiny DATA=demo/fortunes_text_document TOKENIZER=demo/tokenizer.json \
#       sbatch slurm/pretrain_llama.sh                      # after `make demo`: 8 = 2 x 4 x 1
#
# Arguments after the script are key=value overrides for mb-pretrain (they come last, so
# they win). Environment (sbatch passes it on):
#   RECIPE     a recipe name or a YAML file (default llama32_1b)
#   DATA       data.data_path: a token-file prefix or a blend "W1 P1 W2 P2" (or give
#              data.mock=true as an argument)
#   TOKENIZER  tokenizer.tokenizer_model: a tokenizer.json or its directory
#   CKPT       checkpoint.save and checkpoint.load (default ckpt/RECIPE)
#   MB_HOME    where the tools are: MB_HOME/bin/mb-pretrain (a checkout or a prefix)
# Relative paths are taken from the directory sbatch was run in. sbatch runs a copy of
# this script from its spool directory, so the tools are looked for in MB_HOME/bin, then
# in the prefix `make install` wrote this copy for, then in bin/ of the submit directory
# (a checkout), then in PATH.
#
# Time limit: 120 s before it Slurm sends SIGUSR1 to this shell (--signal=B:USR1@120),
# which passes it to the ranks through srun; mb-pretrain (train.exit_signal=SIGUSR1)
# finishes the step, saves a checkpoint and exits 0, and the job requeues itself
# (--requeue) and resumes from `latest`. `scancel --batch --signal=USR1 JOBID` does the
# same by hand; `scancel --signal=USR1 JOBID` reaches the ranks only: they save and the
# job ends there, not requeued (not --full: the ranks would get the signal twice, and a
# second one aborts the save). A job that finishes its iterations, or fails, is not
# requeued. Slurm may send the signal up to 60 s early: with --time under the @ time
# plus about a minute it can come as the job starts, before this shell can catch it.
#SBATCH --job-name=mb-pretrain
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --signal=B:USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=mb-pretrain-%j.log
set -euo pipefail

# Slurm's signal may come at any moment: the trap is set first. bash runs a trap only
# between commands, so srun runs in the background and the shell waits for it; srun
# relays SIGUSR1 to every rank. Passed on once: a second signal would make mb-pretrain
# abort its save.
signalled=0 srun_pid="" status=0
on_usr1() {
    [ $signalled = 1 ] && return
    signalled=1
    echo "pretrain_llama.sh: SIGUSR1 (time limit near): passing it to the ranks"
    if [ -n "$srun_pid" ]; then
        kill -USR1 "$srun_pid" 2>/dev/null || true # (srun may have ended already)
    fi
}
trap on_usr1 USR1

die() {
    echo "pretrain_llama.sh: error: $*" >&2
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
PRETRAIN=$(find_tool mb-pretrain)
RECIPE=${RECIPE:-llama32_1b}
CKPT=${CKPT:-ckpt/$(basename "$RECIPE" .yaml)}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

args=(--recipe "$RECIPE")
[ -n "${DATA:-}" ] && args+=(data.data_path="$DATA")
[ -n "${TOKENIZER:-}" ] && args+=(tokenizer.tokenizer_model="$TOKENIZER")
args+=(checkpoint.save="$CKPT" checkpoint.load="$CKPT" train.exit_signal=SIGUSR1 "$@")

echo "pretrain_llama.sh: job $SLURM_JOB_ID, run $((${SLURM_RESTART_COUNT:-0} + 1)):" \
    "$SLURM_NTASKS ranks, $PRETRAIN, checkpoints in $CKPT"

# finished: 0 when `latest` of the run's checkpoint.save names its train.train_iters-th
# iteration, both as mb-pretrain resolves them from the recipe and the arguments (a
# signal during the last iteration or its save must not requeue a job that is done)
finished() {
    local cfg iters save latest
    cfg=$("$PRETRAIN" --print-config "${args[@]}") || return 1
    iters=$(awk '/^[a-z]/ { s = $1 } s == "train:" && $1 == "train_iters:" { print $2 }' <<<"$cfg")
    save=$(awk '/^[a-z]/ { s = $1 } s == "checkpoint:" && $1 == "save:" { sub(/^ *save: */, ""); print }' <<<"$cfg")
    save=${save#\"} save=${save%\"}
    latest=$(cat "$save/latest" 2>/dev/null) || return 1
    latest=${latest#iter_} latest=${latest%.h5}
    [[ $latest =~ ^[0-9]+$ && $iters =~ ^[0-9]+$ ]] && ((10#$latest >= iters))
}

if [ $signalled = 0 ]; then # (a signal before the start: requeue at once)
    srun --mpi=pmix "$PRETRAIN" "${args[@]}" &
    srun_pid=$!
    while :; do
        status=0
        wait "$srun_pid" || status=$?
        kill -0 "$srun_pid" 2>/dev/null || break # else wait was cut short by the trap
    done
fi

if [ $status != 0 ]; then
    echo "pretrain_llama.sh: mb-pretrain failed (exit $status): not requeued" >&2
    exit $status
fi
if [ $signalled = 1 ]; then
    if finished; then
        echo "pretrain_llama.sh: SIGUSR1 came after the last iteration: done, not requeued"
    else
        echo "pretrain_llama.sh: saved on SIGUSR1: requeueing job $SLURM_JOB_ID to resume from $CKPT/latest"
        scontrol requeue "$SLURM_JOB_ID"
    fi
fi
