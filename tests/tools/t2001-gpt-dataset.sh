#!/bin/sh
test_description='GPT dataset indices, cache files and samples equal megatron-core GPTDataset'
. "$(dirname "$0")/../lib/test-lib.sh"

. "$MB_ROOT/tests/lib/gpt-dataset-lib.sh"

test_expect_success 'setup: three corpora tokenized with --append-eod' '
    mb-preprocess -t "$GPT2" --append-eod -o fort "$TESTDATA/corpora/fortunes.jsonl" &&
    mb-preprocess -t "$GPT2" --append-eod -o lists "$TESTDATA/corpora/lists.jsonl" &&
    mb-preprocess -t "$GPT2" --append-eod -o code "$TESTDATA/corpora/code.jsonl" 2>/dev/null
'

# fortunes: ~680k training tokens = 10622 samples of 64 per epoch; 25000 samples take
# three epochs with a separate (short) final one; valid and test take two each.
test_expect_success 'single prefix, split 969,30,1, several epochs, separate final epoch' '
    mkdir py1 mb1 &&
    $PY "$ORACLE/megatron_gpt_dataset.py" --split 969,30,1 --seq 64 $COMMON \
        --samples 25000,400,60 --first 48 --cache-dir pycache1 --out py1 \
        fort_text_document 2>py1.log &&
    gpt_samples --split 969,30,1 --seq 64 $COMMON --samples 25000,400,60 --first 48 \
        --cache-dir mbcache1 --out mb1 fort_text_document &&
    grep "^train 31867$" mb1/sizes.txt &&
    same_outputs py1 mb1 &&
    same_caches pycache1 mbcache1
'

test_expect_success 'the separate final epoch really was taken (Megatron arrays)' '
    $PY -c "
import numpy as np
d = np.load(\"py1/train_0_document_index.npy\"); s = np.load(\"py1/train_0_shuffle_index.npy\")
n, k = len(d) // 3, 21245  # k = (2 * tokens_per_epoch - 1) // 64 samples before it
assert len(d) == 3 * n and (np.sort(d[2 * n:]) == np.arange(d.min(), d.max() + 1)).all()
assert s[:k].max() == k - 1 and s[k:].min() == k, \"final epoch shuffled apart\"
assert s.dtype == np.uint32 and np.load(\"py1/train_0_sample_index.npy\").dtype == np.int32
"
'

test_expect_success 'default cache: PREFIX/cache/GPTDataset_indices, read by numpy and Megatron' '
    mkdir mb5 py5 &&
    gpt_samples --split 969,30,1 --seq 64 $COMMON --samples 25000,400,60 --first 48 \
        --out mb5 fort_text_document &&
    ls fort_text_document/cache/GPTDataset_indices >names &&
    test "$(wc -l <names)" = 12 &&
    for f in mbcache1/*; do
        cmp "$f" "fort_text_document/cache/GPTDataset_indices/$(basename "$f")" || exit 1
    done &&
    $PY -c "
import glob, numpy as np
for f in glob.glob(\"fort_text_document/cache/GPTDataset_indices/*.npy\"):
    np.load(f)
" &&
    $PY "$ORACLE/megatron_gpt_dataset.py" --split 969,30,1 --seq 64 $COMMON \
        --samples 25000,400,60 --first 48 --out py5 fort_text_document 2>py5.log &&
    grep "Load the GPTDataset train indices" py5.log &&
    same_outputs py1 py5 && same_outputs mb1 mb5
'

test_expect_success 'a cached index is loaded, not rebuilt' '
    c=fort_text_document/cache/GPTDataset_indices &&
    shuf=$(ls $c/*-train-shuffle_index.npy) &&
    cp "$shuf" shuffle.orig &&
    $PY -c "
import numpy as np, sys
a = np.load(sys.argv[1]); a[[0, 1]] = a[[1, 0]]; np.save(sys.argv[1], a)
" "$shuf" &&
    mkdir mb6 && gpt_samples --split 969,30,1 --seq 64 $COMMON --samples 25000,400,60 \
        --first 2 --out mb6 fort_text_document &&
    $PY -c "
import numpy as np
a, b = np.load(\"mb1/train_tokens.npy\"), np.load(\"mb6/train_tokens.npy\")
assert (a[0] == b[1]).all() and (a[1] == b[0]).all(), \"swapped entries were used\"
"
'

test_expect_success 'a corrupt cached index is rebuilt' '
    c=fort_text_document/cache/GPTDataset_indices &&
    shuf=$(ls $c/*-train-shuffle_index.npy) &&
    head -c 200 shuffle.orig >"$shuf" &&
    mkdir mb7 && gpt_samples --split 969,30,1 --seq 64 $COMMON --samples 25000,400,60 \
        --first 48 --out mb7 fort_text_document &&
    cmp "$shuf" shuffle.orig && same_outputs mb1 mb7
'

test_expect_success 'ranks building one cache at once: whole files, same bytes' '
    rm -rf fort_text_document &&
    $MPIRUN -np 3 sh -c "mkdir -p mpi\$OMPI_COMM_WORLD_RANK &&
        gpt_samples --split 969,30,1 --seq 64 $COMMON --samples 25000,400,60 --first 48 \
            --out mpi\$OMPI_COMM_WORLD_RANK fort_text_document" &&
    same_outputs mb1 mpi0 && same_outputs mb1 mpi1 && same_outputs mb1 mpi2 &&
    for f in mbcache1/*; do
        cmp "$f" "fort_text_document/cache/GPTDataset_indices/$(basename "$f")" || exit 1
    done &&
    test_no_files "fort_text_document/cache/GPTDataset_indices/*.tmp*"
'

test_expect_success 'missing .bin is an error naming the file' '
    cp lists_text_document.idx lone_text_document.idx &&
    test_expect_code 1 gpt_samples --split 90,8,2 lone_text_document 2>err &&
    grep "lone_text_document.bin" err
'

test_expect_success 'corrupt .idx is an error naming the file' '
    cp lists_text_document.bin bad_text_document.bin &&
    head -c 100 lists_text_document.idx >bad_text_document.idx &&
    test_expect_code 1 gpt_samples --split 90,8,2 bad_text_document 2>err &&
    grep "bad_text_document.idx" err
'

test_expect_success 'truncated .bin is an error naming the file' '
    cp lists_text_document.idx short_text_document.idx &&
    head -c 1000 lists_text_document.bin >short_text_document.bin &&
    test_expect_code 1 gpt_samples --split 90,8,2 short_text_document 2>err &&
    grep "short_text_document.bin" err
'

test_expect_success 'a split without sequences cannot give samples (300 documents: test split 969,30,1 is empty)' '
    head -n 300 "$TESTDATA/corpora/fortunes.jsonl" >few.jsonl &&
    mb-preprocess -t "$GPT2" --append-eod -o few few.jsonl 2>/dev/null &&
    test_expect_code 1 gpt_samples --split 969,30,1 --samples 10,10,10 --cache-dir x \
        few_text_document 2>err &&
    grep "test split" err &&
    test_expect_code 1 gpt_samples --split 100,0,0 --samples 10,10,0 --cache-dir x \
        few_text_document 2>err &&
    grep "gives the valid split nothing" err &&
    gpt_samples --split 969,30,1 --samples 10,10,0 --cache-dir x few_text_document &&
    grep "^test 0$" sizes.txt
'

test_done
