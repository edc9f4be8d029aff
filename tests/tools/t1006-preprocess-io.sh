#!/bin/sh
test_description='mb-preprocess as a filter: stdin, gzip, several keys, sentence lists, bytes tokenizer'
. "$(dirname "$0")/../lib/test-lib.sh"

test_expect_success 'standard input (plain and gzip) gives the same files as a named input' "
    mb-preprocess -t \"\$TESTDATA/tokenizers/llama3\" -o named \"\$TESTDATA/corpora/mixed.jsonl\" \
        \"\$TESTDATA/corpora/fortunes.jsonl\" &&
    cat \"\$TESTDATA/corpora/mixed.jsonl\" \"\$TESTDATA/corpora/fortunes.jsonl\" >in.jsonl &&
    mb-preprocess -t \"\$TESTDATA/tokenizers/llama3\" -o piped <in.jsonl &&
    gzip -c in.jsonl | mb-preprocess -t \"\$TESTDATA/tokenizers/llama3\" -o gz &&
    cmp named_text_document.bin piped_text_document.bin &&
    cmp named_text_document.idx gz_text_document.idx
"

test_expect_success 'two keys give two pairs, each as Megatron writes it' "
    mb-preprocess -t \"\$TESTDATA/tokenizers/mistral\" --json-keys text,path --append-eod -o two \
        \"\$TESTDATA/corpora/code.jsonl\" &&
    \$PY \$ORACLE/megatron_preprocess.py --tokenizer \"\$TESTDATA/tokenizers/mistral\" \
        --json-keys text,path --append-eod --input \"\$TESTDATA/corpora/code.jsonl\" --output-prefix ref &&
    cmp two_text_document.bin ref_text_document.bin && cmp two_path_document.idx ref_path_document.idx
"

test_expect_success 'sentence lists: one sequence per non-empty sentence, EOD on the last' "
    printf '%s\n' '{\"text\": [\"Hello world.\", \"\", \"Bye.\"]}' >s.jsonl &&
    mb-preprocess -t \"\$TESTDATA/tokenizers/gpt2\" --append-eod -o s s.jsonl &&
    idx_dump s_text_document >dump &&
    test \$(wc -l <dump) = 3 &&
    sed -n 2p dump | grep ' 50256\$' &&
    tail -1 dump | grep '^document_indices: 0 2\$'
"

test_expect_success 'the byte tokenizer writes UTF-8 bytes and 256 as EOD' "
    printf '%s\n' '{\"text\": \"h\\u00e9\"}' | mb-preprocess --append-eod -o b &&
    idx_dump b_text_document | head -1 | grep '^104 195 169 256\$'
"

test_expect_success 'invalid UTF-8 is replaced as Python does and counted' "
    printf '{\"text\": \"a\\377b \\342\\202 c\"}\n' >bad.jsonl &&
    mb-preprocess -t \"\$TESTDATA/tokenizers/gpt2\" -o u bad.jsonl 2>err &&
    grep 'replaced 2 invalid UTF-8 sequences' err &&
    \$PY \$ORACLE/megatron_preprocess.py --tokenizer \"\$TESTDATA/tokenizers/gpt2\" --input bad.jsonl \
        --output-prefix uref &&
    cmp u_text_document.bin uref_text_document.bin
"

test_done
