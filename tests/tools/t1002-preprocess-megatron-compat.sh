#!/bin/sh
test_description='.bin/.idx compatibility with megatron-core in both directions, uint16 and int32'
. "$(dirname "$0")/../lib/test-lib.sh"

# gpt2 (50257 entries) gives uint16 files, llama3 (128256) gives int32 ones.
for name in gpt2 llama3; do
    tok="$TESTDATA/tokenizers/$name"
    test_expect_success "$name: megatron-core reads what mb wrote, token for token" "
        mb-preprocess -t '$tok' --append-eod -o mb \"\$TESTDATA/corpora/fortunes.jsonl\" &&
        \$PY \$ORACLE/megatron_read.py mb_text_document --dump from_megatron >info &&
        idx_dump mb_text_document >from_mb &&
        cmp from_megatron from_mb &&
        grep '^documents 15217' info
    "
    test_expect_success "$name: mb reads what megatron-core's builder wrote" "
        \$PY \$ORACLE/megatron_preprocess.py --tokenizer '$tok' --append-eod \
            --input \"\$TESTDATA/corpora/lists.jsonl\" --output-prefix ref &&
        \$PY \$ORACLE/megatron_read.py ref_text_document --dump megatron_view >/dev/null &&
        idx_dump ref_text_document >mb_view &&
        cmp megatron_view mb_view
    "
done

test_expect_success 'dtype follows the vocabulary: uint16 for gpt2, int32 for llama3' "
    mb-preprocess -t '$TESTDATA/tokenizers/gpt2' -o small \"\$TESTDATA/corpora/fortunes.jsonl\" &&
    mb-preprocess -t '$TESTDATA/tokenizers/llama3' -o big \"\$TESTDATA/corpora/fortunes.jsonl\" &&
    \$PY \$ORACLE/megatron_read.py small_text_document | grep '^dtype uint16' &&
    \$PY \$ORACLE/megatron_read.py big_text_document | grep '^dtype int32'
"

test_expect_success 'empty documents keep their place in the document index (Megatron semantics)' "
    printf '%s\n' '{\"text\": \"one\"}' '{\"text\": \"\"}' '{\"text\": []}' '{\"text\": \"two\"}' >empty.jsonl &&
    mb-preprocess -t '$TESTDATA/tokenizers/gpt2' --append-eod -o e empty.jsonl &&
    \$PY \$ORACLE/megatron_preprocess.py --tokenizer '$TESTDATA/tokenizers/gpt2' --append-eod \
        --input empty.jsonl --output-prefix eref &&
    cmp e_text_document.idx eref_text_document.idx &&
    idx_dump e_text_document | tail -1 | grep '^document_indices: 0 1 1 1 2$'
"

test_done
