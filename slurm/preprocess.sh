#!/bin/bash
# preprocess.sh - tokenize JSONL corpora into Megatron .bin/.idx under Slurm: one MPI rank
# per task, --workers threads per rank (one per CPU of the task).
#
#   sbatch slurm/preprocess.sh -o data/corpus -t llama3/ --append-eod part1.jsonl.gz part2.jsonl
#   sbatch --nodes=2 --ntasks-per-node=4 --cpus-per-task=8 slurm/preprocess.sh \
#       -o data/web -t llama3/ --append-eod web/*.jsonl.gz       # 8 ranks x 8 workers
#
# The arguments are mb-preprocess's (man mb-preprocess); give the input as files (a batch
# job has no standard input). The output is data/corpus_text_document.bin/.idx, the same
# bytes whatever the number of ranks and workers. Relative paths are taken from the
# directory sbatch was run in. sbatch runs a copy of this script from its spool
# directory, so the tools are looked for in MB_HOME/bin, then in the prefix
# `make install` wrote this copy for, then in bin/ of the submit directory (a
# checkout), then in PATH.
#SBATCH --job-name=mb-preprocess
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --output=mb-preprocess-%j.log
set -euo pipefail

die() {
    echo "preprocess.sh: error: $*" >&2
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
[ $# -gt 0 ] || die "no arguments: give mb-preprocess's options and input files (see the header)"
PREPROCESS=$(find_tool mb-preprocess)
echo "preprocess.sh: job $SLURM_JOB_ID: $SLURM_NTASKS ranks x ${SLURM_CPUS_PER_TASK:-1} workers, $PREPROCESS"
# --workers first, so that one given as an argument wins
exec srun --mpi=pmix "$PREPROCESS" --workers "${SLURM_CPUS_PER_TASK:-1}" "$@"
