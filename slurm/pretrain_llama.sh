#!/bin/bash
# pretrain_llama.sh - data-parallel pretraining under Slurm: one MPI rank per task.
#
#   sbatch slurm/pretrain_llama.sh                       # recipes/llama32_1b.yaml
#   RECIPE=tiny DATA=demo/fortunes_text_document TOKENIZER=demo/tokenizer.json \
#       sbatch --nodes=2 --ntasks-per-node=4 slurm/pretrain_llama.sh
#
# Slurm starts the ranks with srun (PMIx); mb-pretrain starts MPI when it sees them.
# Checkpoints go to $CKPT and the job resumes from its latest one, so a requeued or
# resubmitted job continues where the last one stopped.
#SBATCH --job-name=mb-pretrain
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --signal=B:TERM@120
#SBATCH --output=mb-pretrain-%j.log
set -euo pipefail

MB=${MB:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RECIPE=${RECIPE:-llama32_1b}
DATA=${DATA:?set DATA to a token-file prefix or a blend "W1 P1 W2 P2"}
TOKENIZER=${TOKENIZER:?set TOKENIZER to a tokenizer.json}
CKPT=${CKPT:-ckpt/$RECIPE}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

srun --mpi=pmix "$MB/bin/mb-pretrain" --recipe "$RECIPE" \
    data.data_path="$DATA" tokenizer.tokenizer_model="$TOKENIZER" \
    checkpoint.save="$CKPT" checkpoint.load="$CKPT" "$@"
