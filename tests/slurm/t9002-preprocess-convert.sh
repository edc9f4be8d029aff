#!/bin/sh
test_description='slurm/preprocess.sh and slurm/convert.sh under sbatch: 2 MPI ranks give the
bytes of one process; the tools found through MB_HOME, through bin/ of a checkout submit
directory, or not at all (a clear error, exit 1)'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/slurm/slurm-lib.sh"

# submit [VAR=VALUE...] SCRIPT ARGS...: sbatch SCRIPT with a PATH without the tools and
# no MB_HOME but for the VARs given; prints the job id
submit() {
    id=$(env -u MB_HOME PATH=/usr/bin:/bin "$@") && echo "${id%%;*}"
}

test_expect_success 'setup: Slurm is up; corpus, tokenizer and a 3-iteration checkpoint' '
    need_slurm &&
    make_corpus &&
    pretrain train.train_iters=3 checkpoint.save=ckpt 2>pretrain.log
'

test_expect_success 'preprocess.sh, 2 ranks (MB_HOME): the .bin/.idx of one process' '
    mb-preprocess -w 1 -t tok.json --append-eod -o one corpus.jsonl 2>one.log &&
    id=$(submit MB_HOME="$MB_ROOT" sbatch --parsable "$MB_ROOT/slurm/preprocess.sh" \
        -t tok.json --append-eod -o two corpus.jsonl) &&
    test "$(wait_job $id)" = COMPLETED &&
    test "$(job_field $id ExitCode)" = 0:0 &&
    grep "preprocess.sh: job $id: 2 ranks x 1 workers, $MB_ROOT/bin/mb-preprocess" mb-preprocess-$id.log &&
    grep "tokens/s, 2 ranks x 1 worker) -> two_text_document" mb-preprocess-$id.log &&
    cmp one_text_document.bin two_text_document.bin &&
    cmp one_text_document.idx two_text_document.idx
'

test_expect_success 'convert.sh --to hf, 2 ranks, submitted from the checkout: the files of one process' '
    mb-convert --from h5 --to hf ckpt hf_one 2>one.log &&
    id=$(cd "$MB_ROOT" && submit sbatch --parsable --output="$TRASH/convert-%j.log" \
        slurm/convert.sh --from h5 --to hf "$TRASH/ckpt" "$TRASH/hf_two") &&
    test "$(wait_job $id)" = COMPLETED &&
    test "$(job_field $id ExitCode)" = 0:0 &&
    grep "convert.sh: job $id: 2 ranks, $MB_ROOT/bin/mb-convert" convert-$id.log &&
    diff -r hf_one hf_two
'

test_expect_success 'convert.sh --to h5, 2 ranks: the same tensors, and back to HF byte for byte' '
    id=$(submit MB_HOME="$MB_ROOT" sbatch --parsable "$MB_ROOT/slurm/convert.sh" \
        --from hf --to h5 hf_one back) &&
    test "$(wait_job $id)" = COMPLETED &&
    test "$(job_field $id ExitCode)" = 0:0 &&
    "$PY" "$ORACLE/ckpt_compare.py" back/iter_0000000.h5 ckpt/iter_0000003.h5 --only model &&
    mb-convert --from h5 --to hf back hf_back 2>back.log &&
    diff -r hf_one hf_back
'

test_expect_success 'tools nowhere to be found: exit 1 naming what to set, nothing run' '
    id=$(submit sbatch --parsable "$MB_ROOT/slurm/convert.sh" --from h5 --to hf ckpt hf_none) &&
    test "$(wait_job $id)" = FAILED &&
    test "$(job_field $id ExitCode)" = 1:0 &&
    grep "convert.sh: error: mb-convert not found: set MB_HOME" mb-convert-$id.log &&
    test_path_is_missing hf_none
'

test_done
