#!/bin/sh
test_description='checkpoints of pipeline stages: every TP x PP x DP layout (PP4, VP2, uneven stages, distributed optimizer, adapters) writes the single-process file bitwise, and other layouts load it'
. "$(dirname "$0")/../lib/test-lib.sh"

# tests/helpers/ckpt_pp.c: under each layout of TP x PP x DP in {1,2}^3, PP4, PP4 x DP2,
# PP2 with VP2 and TP2 PP2 DP2 VP2 (8 ranks, oversubscribed), each rank builds its
# stage's parameter table (nn/params.h mb_param_table_build_stage) and saves values that
# depend only on the tensor and the global index of the element, with the Adam moments
# (a distributed optimizer's runs with DP2 in most layouts); then layouts load them and
# each rank checks its elements. h5py (tests/oracle/ckpt_pp_check.py) checks that each
# file is the single-process save, bitwise.
# Families with the most layer-dependent structure: Llama with 5 layers (uneven stages:
# 3 + 2 at PP2, 1 + 1 + 1 + 2 at PP4; no VP), Gemma 2 and GPT-2 with 4 layers, Gemma 3
# with 8 (tied embeddings: a copy on the last stage; GPT-2's learned positions).
# MB_CKPT_PP_LOADS=ring (here): each layout loads the single-process file and the next
# layout's; all (tests/long/t9021-ckpt-pp-all.sh): every layout loads every file.

export OMP_NUM_THREADS=1
models="$MB_ROOT/tests/data/models"
CHECK="$PY $ORACLE/ckpt_pp_check.py"
MODE=${MB_CKPT_PP_LOADS:-ring}

# run FAMILY LAYERS KIND [BASE]: the single-process save in ref_FAMILY_KIND, every
# layout's in FAMILY_KIND; every rank checked what it loaded
run() {
    ckpt_pp "$models/$1.json" "$2" "ref_$1_$3" "$3" all ${4:+"$4"} >/dev/null &&
    $MPIRUN -np 8 ckpt_pp "$models/$1.json" "$2" "$1_$3" "$3" $MODE ${4:+"$4"} >"$1_$3.out" &&
    grep "^checked" "$1_$3.out" &&
    test_no_files "$1_$3/*/*.tmp*"
}

# loads OUT LAYOUTS: OUT says so, for LAYOUTS layouts saved
loads() {
    test $(grep -c "^saved" $1) = $2 &&
    if test "$MODE" = all; then n=$(($2 * $2)); else n=$((2 * $2 - 1)); fi &&
    grep -q "^checked $n loads" $1
}

test_expect_success 'Gemma 3 (tied, 8 layers), 12 layouts' '
    run gemma3 8 base && loads gemma3_base.out 12
'

test_expect_success 'Llama (5 layers, uneven stages: 10 layouts), Gemma 2, GPT-2 (learned positions)' '
    run llama 5 base && loads llama_base.out 10 &&
    run gemma2 4 base && loads gemma2_base.out 12 &&
    run gpt2 4 base && loads gpt2_base.out 12
'

test_expect_success 'LoRA on Llama (uneven), DoRA on Gemma 2: adapter-only files and their base as a pretrained checkpoint' '
    run llama 5 lora llama_base/tp2pp2dp2/iter_0000007.h5 && loads llama_lora.out 10 &&
    run gemma2 4 dora gemma2_base/tp1pp4dp2/iter_0000007.h5 && loads gemma2_dora.out 12
'

test_expect_success 'h5py: every layout wrote the single-process file, bitwise' '
    for x in gemma3_base llama_base gemma2_base gpt2_base llama_lora gemma2_dora; do
        $CHECK ref_$x/tp1pp1dp1/iter_0000007.h5 $x/*/iter_0000007.h5 || return 1
    done >same.out &&
    cat same.out &&
    test $(grep -c "^12 files equal" same.out) = 4 &&
    test $(grep -c "^10 files equal" same.out) = 2
'

test_expect_success 'h5py: the adapter-only files hold /adapter and its moments, not /model' '
    $PY -c "
import h5py, sys
f = h5py.File(sys.argv[1], \"r\")
assert \"model\" not in f and \"adapter\" in f and \"optim\" in f, list(f)
a = f[\"adapter/decoder/layers/mlp/linear_fc1/adapter/linear_out/weight\"]
assert a.shape == (5, 192, 4), a.shape
" llama_lora/tp2pp2dp2/iter_0000007.h5
'

test_expect_success 'a changed moment of one layer is found, and every rank fails' '
    cp gemma3_base/tp1pp1dp1/iter_0000007.h5 bad.h5 &&
    $PY -c "
import h5py
with h5py.File(\"bad.h5\", \"r+\") as f:
    d = f[\"optim/exp_avg_sq/decoder/layers/mlp/linear_fc2/weight\"]
    x = d[5]; x[3, 7] += 1; d[5] = x
" &&
    ! $MPIRUN -np 8 ckpt_pp "$models/gemma3.json" 8 bad.h5 base check >out 2>err &&
    grep "linear_fc2.weight kind 2 element" err &&
    test $(grep -c "error" err) = 8
'

test_expect_success 'stages whose layers overlap fail the save on every rank, and leave nothing' '
    ! $MPIRUN -np 8 ckpt_pp "$models/gemma3.json" 8 skew base save-skew >out 2>err &&
    test $(grep -c "the parts of ranks 0 and 1 overlap" err) = 8 &&
    test_no_files "skew/*"
'

test_done
