#!/bin/sh
test_description='mb-preprocess gives the bytes Megatron preprocess_data.py gives with HF tokenizers'
. "$(dirname "$0")/../lib/test-lib.sh"

# Every fetched tokenizer (GPT-2, Llama 3, Qwen2, Mistral SentencePiece, Phi-3 when the
# shared data is there) on every real corpus: English web text and Wikipedia, fortunes,
# C code, non-Latin scripts, pre-split sentence lists, and a mix with emoji and
# whitespace runs. The reference is tests/oracle/megatron_preprocess.py: HF tokenizers'
# ids written by megatron-core's own IndexedDatasetBuilder.

test_expect_success 'setup: one input holding every corpus' '
    cat "$TESTDATA"/corpora/*.jsonl >all.jsonl &&
    test $(wc -l <all.jsonl) -gt 10000
'

for dir in "$TESTDATA"/tokenizers/*/; do
    name=$(basename "$dir")
    test_expect_success "$name: same .bin/.idx as Megatron + HF tokenizers (with BOS, --append-eod)" "
        mb-preprocess -t '$dir' --append-eod -o mb_$name all.jsonl &&
        \$PY \$ORACLE/megatron_preprocess.py --tokenizer '$dir' --append-eod \
            --input all.jsonl --output-prefix ref_$name &&
        cmp mb_${name}_text_document.bin ref_${name}_text_document.bin &&
        cmp mb_${name}_text_document.idx ref_${name}_text_document.idx
    "
done

test_expect_success 'llama3 without special tokens matches too' "
    mb-preprocess -t '$TESTDATA/tokenizers/llama3' --tokenizer-hf-no-include-special-tokens \
        -o mb_nobos \"\$TESTDATA/corpora/mixed.jsonl\" &&
    \$PY \$ORACLE/megatron_preprocess.py --tokenizer '$TESTDATA/tokenizers/llama3' \
        --no-special-tokens --input \"\$TESTDATA/corpora/mixed.jsonl\" --output-prefix ref_nobos &&
    cmp mb_nobos_text_document.bin ref_nobos_text_document.bin &&
    cmp mb_nobos_text_document.idx ref_nobos_text_document.idx
"

# llama.cpp's tokenizer test vectors: 46 tricky strings with the ids HF gives for the
# original hub tokenizers (whitespace runs, tabs, emoji, CJK, Khmer, digits, contractions).
check_vectors() {
    name=$1 stem=$2
    "$PY" -c '
import json, sys
inp = open(sys.argv[1], encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
with open("vec.jsonl", "w") as f:
    for s in inp:
        f.write(json.dumps({"text": s}) + "\n")
' "$TESTDATA/test-vectors/ggml-vocab-$stem.gguf.inp" &&
    mb-preprocess -t "$TESTDATA/tokenizers/$name" --tokenizer-hf-no-include-special-tokens \
        -o vec vec.jsonl &&
    idx_dump vec_text_document | sed '$d' >got &&
    grep -v '^ *$' "$TESTDATA/test-vectors/ggml-vocab-$stem.gguf.out" | sed 's/^ *//' >want &&
    diff want got
}

for pair in gpt2:gpt-2 llama3:llama-bpe qwen2:qwen2 phi3:phi-3; do
    name=${pair%%:*} stem=${pair#*:}
    if [ -f "$TESTDATA/test-vectors/ggml-vocab-$stem.gguf.out" ] && [ -d "$TESTDATA/tokenizers/$name" ]; then
        test_expect_success "$name: llama.cpp test vectors ($stem)" "check_vectors $name $stem"
    fi
done

test_done
