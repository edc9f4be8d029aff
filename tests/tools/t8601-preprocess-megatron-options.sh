#!/bin/sh
test_description="mb-preprocess takes Megatron-LM preprocess_data.py's options as they are"
. "$(dirname "$0")/../lib/test-lib.sh"

GPT2="$TESTDATA/tokenizers/gpt2"
C4="$TESTDATA/corpora/c4.jsonl"

# GPT-2's vocab.json and merges.txt as published (../shared/data), or else written from
# the vocabulary and merges of gpt2/tokenizer.json, which hold the same content.
test_expect_success 'setup: GPT-2 vocab.json + merges.txt alone in a directory' '
    mkdir pair &&
    if [ -f "$MB_SHARED_DATA/tokenizers/gpt2/merges.txt" ]; then
        cp "$MB_SHARED_DATA/tokenizers/gpt2/vocab.json" "$MB_SHARED_DATA/tokenizers/gpt2/merges.txt" pair/
    else
        $PY -c "import json,sys; m=json.load(open(sys.argv[1]))[\"model\"]
json.dump(m[\"vocab\"], open(\"pair/vocab.json\", \"w\"))
open(\"pair/merges.txt\", \"w\").write(\"#version: 0.2\n\" + \"\".join(
    (x if isinstance(x, str) else \" \".join(x)) + \"\n\" for x in m[\"merges\"]))" "$GPT2/tokenizer.json"
    fi &&
    { cat "$C4"; printf "%s\n" "{\"text\": \"a literal <|endoftext|> inside\"}"; } >c4.jsonl
'

test_expect_success 'GPT2BPETokenizer --vocab-file --merge-file: the ids of transformers on real text' '
    mb-preprocess --input c4.jsonl --output-prefix g --tokenizer-type GPT2BPETokenizer \
        --vocab-file pair/vocab.json --merge-file pair/merges.txt --append-eod --workers 2 2>err &&
    grep "GPT-2 byte-level BPE from vocab.json + merges.txt, 50257 entries" err &&
    $PY "$ORACLE/megatron_read.py" g_text_document --dump - 2>/dev/null | grep -v "^document_indices" >mb.ids &&
    $PY "$ORACLE/hf_gpt2_files.py" pair c4.jsonl --append-eod >hf.ids &&
    test $(wc -l <hf.ids) = 301 && cmp hf.ids mb.ids
'

test_expect_success 'HuggingFaceTokenizer --tokenizer-model: a directory or its tokenizer.json, as -t' '
    mb-preprocess -i c4.jsonl -o h1 --tokenizer-type HuggingFaceTokenizer --tokenizer-model "$GPT2" --append-eod &&
    mb-preprocess -i c4.jsonl -o h2 --tokenizer-type HuggingFaceTokenizer \
        --tokenizer-model "$GPT2/tokenizer.json" --append-eod &&
    mb-preprocess -i c4.jsonl -o h3 -t "$GPT2" --append-eod &&
    cmp h1_text_document.bin h3_text_document.bin && cmp h2_text_document.bin h3_text_document.bin &&
    cmp h1_text_document.idx h3_text_document.idx &&
    cmp g_text_document.bin h3_text_document.bin && cmp g_text_document.idx h3_text_document.idx
'

test_expect_success '--json-keys takes several words (nargs=+), as well as K1,K2' '
    head -40 "$TESTDATA/corpora/code.jsonl" >code.jsonl &&
    mb-preprocess --input code.jsonl --json-keys text path --output-prefix w1 --workers 1 &&
    mb-preprocess code.jsonl --json-keys text,path -o w2 &&
    cmp w1_path_document.bin w2_path_document.bin && cmp w1_text_document.idx w2_text_document.idx &&
    test_expect_code 2 mb-preprocess --json-keys text code.jsonl -o w3 2>err &&
    grep "looks like an input file" err
'

test_expect_success 'Megatron options without effect on mb output are accepted: same bytes' '
    mb-preprocess --input c4.jsonl --output-prefix p -t "$GPT2" --append-eod --partitions 3 \
        --keep-sequential-samples --keep-newlines --lang english --workers 2 --log-interval 1000 &&
    cmp p_text_document.bin h3_text_document.bin && cmp p_text_document.idx h3_text_document.idx &&
    test_expect_code 2 mb-preprocess -i c4.jsonl -o q -t "$GPT2" --partitions 2 2>err &&
    grep "keep-sequential-samples" err && test_path_is_missing q_text_document.bin
'

# Every option of preprocess_data.py and its tokenizer group that mb does not take.
for opt in split-sentences find-optimal-num-workers workers-to-check max-documents \
        performance-dir vocab-size padded-vocab-size no-pad-vocab-size disable-pad-vocab-size \
        vocab-extra-ids tokenizer-metadata tokenizer-special-tokens tiktoken-pattern \
        tiktoken-num-special-tokens tokenizer-sentencepiece-legacy \
        no-tokenizer-sentencepiece-ignore-extra-whitespaces \
        disable-tokenizer-sentencepiece-ignore-extra-whitespaces tokenizer-hf-no-use-fast \
        trust-remote-code null-tokenizer-eod-id null-tokenizer-pad-id chat-template use-gigatoken; do
    echo "$opt" >>refused.list
done
test_expect_success 'the others are refused by name with the reason, exit 2, nothing written' '
    while read opt; do
        test_expect_code 2 mb-preprocess -i c4.jsonl -o r --$opt 2>err &&
        grep "^mb-preprocess: error: option .--$opt. is not supported: ..*" err || return 1
    done <refused.list &&
    test_expect_code 2 mb-preprocess -i c4.jsonl -o r --split-sentences 2>err &&
    grep "sentence splitting (NLTK punkt) is not done" err &&
    test_no_files r_*
'

test_expect_success 'tokenizer types mb does not read are refused by name' '
    for t in Llama2Tokenizer SentencePieceTokenizer GPTSentencePieceTokenizer TikTokenizer \
            BertWordPieceCase BertWordPieceLowerCase NullTokenizer; do
        test_expect_code 2 mb-preprocess -i c4.jsonl -o r --tokenizer-type $t --tokenizer-model x 2>err &&
        grep "tokenizer-type $t is not supported: " err || return 1
    done &&
    test_expect_code 2 mb-preprocess -i c4.jsonl -o r --tokenizer-type GPT3 --tokenizer-model x 2>err &&
    grep "not a Megatron tokenizer type" err
'

test_expect_success 'GPT2BPETokenizer: missing or damaged files are clear errors' '
    test_expect_code 2 mb-preprocess -i c4.jsonl -o r --tokenizer-type GPT2BPETokenizer \
        --vocab-file pair/vocab.json 2>err && grep "merge-file" err &&
    { head -3 pair/merges.txt; echo "Ġt"; } >bad-merges.txt &&
    test_expect_code 1 mb-preprocess -i c4.jsonl -o r --tokenizer-type GPT2BPETokenizer \
        --vocab-file pair/vocab.json --merge-file bad-merges.txt 2>err &&
    grep "bad-merges.txt:4: a merge is two tokens" err &&
    echo "{\"a\": 0, \"b\": 1}" >small-vocab.json &&
    test_expect_code 1 mb-preprocess -i c4.jsonl -o r --tokenizer-type GPT2BPETokenizer \
        --vocab-file small-vocab.json --merge-file pair/merges.txt 2>err &&
    grep "small-vocab.json: no .<|endoftext|>. token" err &&
    test_expect_code 1 mb-preprocess -i c4.jsonl -o r --tokenizer-type HuggingFaceTokenizer \
        --tokenizer-model openai-community/gpt2 2>err && grep "only local tokenizer files" err &&
    test_no_files r_*
'

test_expect_success '--log-interval: log lines with percent done and an ETA for a file' '
    mb-preprocess -i "$C4" -o l -t "$GPT2" --workers 1 --log-interval 100 2>err &&
    grep "^mb-preprocess: processed [0-9]* documents (.* docs/s, .* MB/s), [0-9.]*% done, ETA [0-9]*m[0-9][0-9]s$" err &&
    grep "processed 300 documents .*, 100.0% done, ETA 0m00s" err &&
    gzip -c "$C4" >c4.jsonl.gz &&
    mb-preprocess -o lz -t "$GPT2" --workers 1 --log-interval 100 c4.jsonl.gz 2>err &&
    grep "processed 300 documents .*, 100.0% done" err &&
    mb-preprocess -o ls -t "$GPT2" --log-interval 100 <"$C4" 2>err &&
    grep "processed 300 documents" err && ! grep "% done" err
'

test_expect_success 'on a terminal: a progress line with percent done and ETA' '
    cat "$C4" "$C4" "$C4" "$C4" >big.jsonl &&
    script -qec "mb-preprocess -i big.jsonl -o t -t bytes --workers 1" /dev/null >tty.out &&
    grep -a "% done, ETA" tty.out
'

test_done
