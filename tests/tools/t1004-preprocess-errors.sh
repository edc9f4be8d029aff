#!/bin/sh
test_description='mb-preprocess: bad input names file and line, exits 1 (2 for usage), leaves nothing'
. "$(dirname "$0")/../lib/test-lib.sh"

tok="$TESTDATA/tokenizers/gpt2"

test_expect_success 'setup' '
    head -n 3000 "$TESTDATA/corpora/fortunes.jsonl" >good.jsonl &&
    gzip -c good.jsonl >good.jsonl.gz &&
    head -c 20000 good.jsonl.gz >truncated.jsonl.gz &&
    { head -n 1500 good.jsonl; printf "%s\n" "{\"text\": \"unterminated"; tail -n 1500 good.jsonl; } >badjson.jsonl &&
    { head -n 10 good.jsonl; printf "%s\n" "{\"body\": \"no text key\"}"; } >nokey.jsonl &&
    { head -n 4 good.jsonl; printf "%s\n" "{\"text\": 42}"; } >number.jsonl
'

test_expect_success 'truncated gzip: error names the file, nothing left behind' "
    test_expect_code 1 mb-preprocess -t '$tok' -o out truncated.jsonl.gz 2>err &&
    grep '^mb-preprocess: error: truncated.jsonl.gz: corrupt or truncated gzip data' err &&
    test_no_files 'out*'
"

test_expect_success 'invalid JSON: error names file and line 1501' "
    test_expect_code 1 mb-preprocess -t '$tok' -w 4 -o out badjson.jsonl 2>err &&
    grep '^mb-preprocess: error: badjson.jsonl:1501: invalid JSON' err &&
    test_no_files 'out*'
"

test_expect_success 'missing key: error names file, line and key' "
    test_expect_code 1 mb-preprocess -t '$tok' -o out nokey.jsonl 2>err &&
    grep \"^mb-preprocess: error: nokey.jsonl:11: no key 'text'\" err &&
    test_no_files 'out*'
"

test_expect_success 'a number where text should be is an error' "
    test_expect_code 1 mb-preprocess -o out number.jsonl 2>err &&
    grep \"number.jsonl:5: key 'text' holds an integer\" err
"

test_expect_success '--skip-bad skips and counts the bad lines' "
    mb-preprocess -t '$tok' --skip-bad -o skip badjson.jsonl nokey.jsonl 2>err &&
    grep 'skipped 2 malformed lines' err &&
    grep '3010 documents' err
"

test_expect_success 'unknown tokenizer model type is refused with the key named' "
    printf '%s' '{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}' >wp.json &&
    test_expect_code 1 mb-preprocess -t wp.json -o out good.jsonl 2>err &&
    grep \"wp.json: model: model type 'WordPiece' is not supported\" err &&
    test_no_files 'out*'
"

test_expect_success 'unknown pre-tokenizer type is refused with the key named' "
    sed 's/\"type\": *\"ByteLevel\"/\"type\": \"Punctuation\"/' '$tok/tokenizer.json' >punct.json &&
    test_expect_code 1 mb-preprocess -t punct.json -o out good.jsonl 2>err &&
    grep \"punct.json: pre_tokenizer: pre-tokenizer type 'Punctuation' is not supported\" err
"

test_expect_success 'a broken tokenizer.json names file and line' "
    head -c 5000 '$tok/tokenizer.json' >cut.json &&
    test_expect_code 1 mb-preprocess -t cut.json -o out good.jsonl 2>err &&
    grep '^mb-preprocess: error: cut.json:' err
"

test_expect_success 'missing input file and missing tokenizer' "
    test_expect_code 1 mb-preprocess -o out no-such.jsonl 2>err &&
    grep 'no-such.jsonl: cannot open' err &&
    test_expect_code 1 mb-preprocess -t no-such-dir -o out good.jsonl 2>err &&
    grep 'no-such-dir' err &&
    test_no_files 'out*'
"

test_expect_success 'usage errors exit 2' "
    test_expect_code 2 mb-preprocess good.jsonl 2>err &&
    grep 'output-prefix is required' err &&
    test_expect_code 2 mb-preprocess -o out --workers 0 good.jsonl 2>err &&
    test_expect_code 2 mb-preprocess -o out --train-tokenizer 100 good.jsonl 2>err &&
    test_expect_code 2 mb-preprocess -o out --train-tokenizer 300 <good.jsonl 2>err &&
    grep 'standard input' err
"

test_expect_success '--append-eod with a tokenizer that has no end token is refused' "
    \$PY -c '
import json, sys
t = json.load(open(sys.argv[1]))
t[\"added_tokens\"] = []
t[\"model\"][\"vocab\"].pop(\"<|endoftext|>\", None)
json.dump(t, open(\"noeos.json\", \"w\"))
' '$tok/tokenizer.json' &&
    test_expect_code 1 mb-preprocess -t noeos.json --append-eod -o out good.jsonl 2>err &&
    grep 'no end-of-document token' err
"

test_expect_success 'MPI: a bad line in rank 1 share fails every rank, no hang, nothing left' "
    { cat good.jsonl; printf '%s\n' '{\"text\": oops}'; } >late.jsonl &&
    test_expect_code 1 timeout 120 \$MPIRUN -np 2 mb-preprocess -t '$tok' -w 1 -o out late.jsonl 2>err &&
    grep 'late.jsonl:3001: invalid JSON' err &&
    test_no_files 'out*'
"

test_expect_success 'MPI: standard input cannot be split across ranks' "
    test_expect_code 2 \$MPIRUN -np 2 mb-preprocess -o out <good.jsonl 2>err &&
    grep 'standard input cannot be shared by MPI ranks' err
"

test_expect_success 'an unwritable output directory is an error, not a crash' "
    test_expect_code 1 mb-preprocess -o no-such-dir/out good.jsonl 2>err &&
    grep 'no-such-dir/out_text_document.bin: cannot create output file' err
"

test_done
