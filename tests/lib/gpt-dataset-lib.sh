# gpt-dataset-lib.sh - shared by the GPT dataset tests (sourced after test-lib.sh).
#
# gpt_samples (tests/helpers) drives data/gpt_dataset.h; tests/oracle/megatron_gpt_dataset.py
# runs megatron-core's own BlendedMegatronDatasetBuilder on the same files and options.
# Both write the first samples of each split as .npy files with the same layout and
# dtypes, so equal samples are equal files; both write Megatron's index cache, so equal
# indices are equal cache files under equal (md5) names.
GPT2="$TESTDATA/tokenizers/gpt2"
IDS="--tokenizer-id class=mb.HFTokenizer --tokenizer-id tokenizer_path=$GPT2"
COMMON="--eod 50256 --eod-mask-loss --reset-position-ids $IDS"

# same_outputs DIR_A DIR_B: sizes and every sample file equal
same_outputs() {
    cmp "$1/sizes.txt" "$2/sizes.txt" &&
    for s in train valid test; do
        for f in tokens labels loss_mask position_ids; do
            cmp "$1/${s}_$f.npy" "$2/${s}_$f.npy" || return 1
        done
    done
}

# same_caches DIR_A DIR_B: the GPTDataset files of A exist in B byte for byte, and B has
# no others (Megatron also caches BlendedDataset indices; mb recomputes those)
same_caches() {
    n=0 &&
    for f in "$1"/*-GPTDataset-*; do
        cmp "$f" "$2/$(basename "$f")" || return 1
        n=$((n + 1))
    done &&
    test "$(ls "$2" | wc -l)" = "$n" && test "$n" -ge 4
}
