#!/bin/sh
test_description='tensor parallelism: every family split over 2 and 4 ranks (with and without sequence parallelism) gives the whole model'"'"'s loss, gradients, gradient norm and, after AdamW steps, weights'
. "$(dirname "$0")/../lib/test-lib.sh"

check=$MB_ROOT/build/tests/helpers/tp_check
models=$MB_ROOT/tests/data/models
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# model_tp NP FAMILY ARGS...: tp_check's three checks all ok on NP ranks
model_tp() {
    np=$1 family=$2
    shift 2
    $MPIRUN -np "$np" "$check" model "$models/$family.json" "$@" >out 2>err &&
    cat out && test $(grep -c "^ok - " out) = 3 && ! grep "not ok" out
}

for family in llama qwen2 qwen3 gemma gemma2 gemma3 gpt2 mistral; do
    test_expect_success "$family, TP 2: loss, gradients, norm and weights as the whole model" '
        model_tp 2 '$family'
    '
done

for family in llama qwen3 gemma3 gpt2; do
    test_expect_success "$family, TP 2, sequence-parallel: as the whole model" '
        model_tp 2 '$family' --sp
    '
done

# GPT-2 has 4 heads of its own; the others get 4 query groups to cut over 4 ranks
test_expect_success 'gpt2, TP 4 (and sequence-parallel): as the whole model' '
    model_tp 4 gpt2 && model_tp 4 gpt2 --sp
'

test_expect_success 'qwen2 (QKV bias) and gemma2 (soft-caps, sandwich norms), TP 4, 4 groups: as the whole model' '
    model_tp 4 qwen2 --groups 4 && model_tp 4 gemma2 --groups 4 --sp
'

test_done
