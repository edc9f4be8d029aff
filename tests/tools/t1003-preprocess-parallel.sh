#!/bin/sh
test_description='mb-preprocess writes the same bytes for any worker count and any MPI rank count'
. "$(dirname "$0")/../lib/test-lib.sh"

tok="$TESTDATA/tokenizers/qwen2"

test_expect_success 'setup: a plain and a gzip input' '
    cat "$TESTDATA/corpora/nonlatin.jsonl" "$TESTDATA/corpora/mixed.jsonl" >a.jsonl &&
    gzip -c "$TESTDATA/corpora/fortunes.jsonl" >b.jsonl.gz
'

test_expect_success '1, 2 and 4 workers give identical output' "
    mb-preprocess -t '$tok' --append-eod -w 1 -o w1 a.jsonl b.jsonl.gz &&
    mb-preprocess -t '$tok' --append-eod -w 2 -o w2 a.jsonl b.jsonl.gz &&
    mb-preprocess -t '$tok' --append-eod -w 4 -o w4 a.jsonl b.jsonl.gz &&
    cmp w1_text_document.bin w2_text_document.bin && cmp w1_text_document.idx w2_text_document.idx &&
    cmp w1_text_document.bin w4_text_document.bin && cmp w1_text_document.idx w4_text_document.idx
"

test_expect_success '2 MPI ranks give the single-process bytes' "
    \$MPIRUN -np 2 mb-preprocess -t '$tok' --append-eod -w 1 -o r2 a.jsonl b.jsonl.gz &&
    cmp w1_text_document.bin r2_text_document.bin && cmp w1_text_document.idx r2_text_document.idx
"

test_expect_success '3 MPI ranks over gzip then plain input, two keys, give the same bytes' "
    gzip -c \"\$TESTDATA/corpora/code.jsonl\" >code.jsonl.gz &&
    mb-preprocess -t '$tok' --json-keys text,path -o one code.jsonl.gz \"\$TESTDATA/corpora/code.jsonl\" &&
    \$MPIRUN -np 3 mb-preprocess -t '$tok' --json-keys text,path -w 1 -o three code.jsonl.gz \
        \"\$TESTDATA/corpora/code.jsonl\" &&
    for k in text path; do
        cmp one_\${k}_document.bin three_\${k}_document.bin &&
        cmp one_\${k}_document.idx three_\${k}_document.idx || exit 1
    done
"

test_expect_success 'more ranks than lines still gives the same bytes, and no part files remain' "
    head -n 2 a.jsonl >tiny.jsonl &&
    mb-preprocess -t '$tok' -o t1 tiny.jsonl &&
    \$MPIRUN -np 4 mb-preprocess -t '$tok' -w 1 -o t4 tiny.jsonl &&
    cmp t1_text_document.bin t4_text_document.bin && cmp t1_text_document.idx t4_text_document.idx &&
    test_no_files '*part*'
"

test_done
