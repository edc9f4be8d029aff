#!/bin/bash
# convert.sh - convert between HuggingFace directories and mb checkpoints under Slurm
# (mb-convert; the MPI ranks share the tensors).
#
#   sbatch slurm/convert.sh --from hf --to h5 Llama-3.2-1B llama/     # llama/iter_0000000.h5
#   sbatch slurm/convert.sh --from h5 --to hf ckpt/llama32_1b Llama-3.2-1B-trained
#   sbatch --ntasks-per-node=4 slurm/convert.sh --from hf --to h5 Qwen3-0.6B qwen3.h5
#
# The arguments are mb-convert's (man mb-convert). Relative paths are taken from the
# directory sbatch was run in. sbatch runs a copy of this script from its spool
# directory, so the tools are looked for in MB_HOME/bin, then in the prefix
# `make install` wrote this copy for, then in bin/ of the submit directory (a
# checkout), then in PATH.
#SBATCH --job-name=mb-convert
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH --time=01:00:00
#SBATCH --output=mb-convert-%j.log
set -euo pipefail

die() {
    echo "convert.sh: error: $*" >&2
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
[ $# -gt 0 ] || die "no arguments: give mb-convert's options, source and destination (see the header)"
CONVERT=$(find_tool mb-convert)
echo "convert.sh: job $SLURM_JOB_ID: $SLURM_NTASKS ranks, $CONVERT"
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
exec srun --mpi=pmix "$CONVERT" "$@"
