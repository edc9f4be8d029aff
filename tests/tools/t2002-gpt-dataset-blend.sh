#!/bin/sh
test_description='GPT dataset blends and mock data equal megatron-core BlendedDataset and MockGPTDataset'
. "$(dirname "$0")/../lib/test-lib.sh"

. "$MB_ROOT/tests/lib/gpt-dataset-lib.sh"

test_expect_success 'setup: two corpora tokenized with --append-eod' '
    mb-preprocess -t "$GPT2" --append-eod -o lists "$TESTDATA/corpora/lists.jsonl" &&
    mb-preprocess -t "$GPT2" --append-eod -o code "$TESTDATA/corpora/code.jsonl" 2>/dev/null
'

# blend: code (0.7) and lists (0.3), 128-token samples: both prefixes run several epochs.
test_expect_success 'weighted blend of two prefixes, split 90,8,2' '
    mkdir py2 mb2 &&
    $PY "$ORACLE/megatron_gpt_dataset.py" --split 90,8,2 --seq 128 $COMMON \
        --samples 6000,300,50 --first 400 --cache-dir pycache2 --out py2 \
        0.3 lists_text_document 0.7 code_text_document 2>py2.log &&
    gpt_samples --split 90,8,2 --seq 128 $COMMON --samples 6000,300,50 --first 400 \
        --cache-dir mbcache2 --out mb2 0.3 lists_text_document 0.7 code_text_document &&
    grep "^train 6000$" mb2/sizes.txt &&
    same_outputs py2 mb2 &&
    same_caches pycache2 mbcache2
'

test_expect_success 'blend without weights draws in proportion to the datasets lengths' '
    mkdir py3 mb3 &&
    $PY "$ORACLE/megatron_gpt_dataset.py" --split 90,8,2 --seq 100 $COMMON \
        --samples 1000,100,20 --first 200 --cache-dir pycache3 --out py3 \
        lists_text_document code_text_document 2>py3.log &&
    gpt_samples --split 90,8,2 --seq 100 $COMMON --samples 1000,100,20 --first 200 \
        --cache-dir mbcache3 --out mb3 lists_text_document code_text_document &&
    same_outputs py3 mb3 &&
    same_caches pycache3 mbcache3
'

test_expect_success 'mock data equals MockGPTDataset' '
    mkdir py4 mb4 &&
    $PY "$ORACLE/megatron_gpt_dataset.py" --mock 1000 --seq 64 $COMMON --samples 50,10,10 \
        --first 50 --out py4 2>py4.log &&
    gpt_samples --mock 1000 --seq 64 $COMMON --samples 50,10,10 --first 50 --out mb4 &&
    same_outputs py4 mb4
'

test_done
