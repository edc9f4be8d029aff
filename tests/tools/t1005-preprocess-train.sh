#!/bin/sh
test_description='--train-tokenizer: a tokenizer.json that HF tokenizers loads and encodes exactly as mb'
. "$(dirname "$0")/../lib/test-lib.sh"

test_expect_success 'train 4096 entries on fortunes and tokenize with them' "
    mkdir tok &&
    mb-preprocess --train-tokenizer 4096 --save-tokenizer tok/tokenizer.json --append-eod \
        -o mb \"\$TESTDATA/corpora/fortunes.jsonl\" 2>err &&
    grep 'trained a 4096-entry byte-level BPE' err &&
    test -s mb_text_document.idx
"

test_expect_success 'HF tokenizers loads it: 4096 entries, decode(encode(x)) == x' "
    \$PY -c '
import json, sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(\"tok/tokenizer.json\")
assert t.get_vocab_size(with_added_tokens=True) == 4096, t.get_vocab_size()
assert t.token_to_id(\"<|endoftext|>\") == 4095
bad = 0
for line in open(sys.argv[1], encoding=\"utf-8\"):
    x = json.loads(line)[\"text\"]
    bad += t.decode(t.encode(x).ids) != x
assert bad == 0, bad
' \"\$TESTDATA/corpora/fortunes.jsonl\"
"

test_expect_success 'HF encodes every corpus with it exactly as mb does' "
    cat \"\$TESTDATA\"/corpora/*.jsonl >all.jsonl &&
    mb-preprocess -t tok --append-eod -o mball all.jsonl &&
    \$PY \$ORACLE/megatron_preprocess.py --tokenizer tok --append-eod --input all.jsonl \
        --output-prefix refall &&
    cmp mball_text_document.bin refall_text_document.bin &&
    cmp mball_text_document.idx refall_text_document.idx
"

test_expect_success 'training does not depend on workers or MPI ranks' "
    mb-preprocess --train-tokenizer 4096 --save-tokenizer w1.json -w 1 -o x1 \
        \"\$TESTDATA/corpora/fortunes.jsonl\" &&
    \$MPIRUN -np 2 mb-preprocess --train-tokenizer 4096 --save-tokenizer r2.json -w 2 -o x2 \
        \"\$TESTDATA/corpora/fortunes.jsonl\" &&
    cmp tok/tokenizer.json w1.json && cmp w1.json r2.json &&
    cmp x1_text_document.bin x2_text_document.bin
"

test_expect_success 'a larger vocabulary on mixed scripts also round-trips through HF' "
    mb-preprocess --train-tokenizer 16000 --save-tokenizer big.json -o big \
        \"\$TESTDATA/corpora/nonlatin.jsonl\" \"\$TESTDATA/corpora/code.jsonl\" &&
    mkdir -p bigtok && cp big.json bigtok/tokenizer.json &&
    \$PY \$ORACLE/megatron_preprocess.py --tokenizer bigtok --input \"\$TESTDATA/corpora/nonlatin.jsonl\" \
        --output-prefix refbig &&
    mb-preprocess -t bigtok -o mbbig \"\$TESTDATA/corpora/nonlatin.jsonl\" &&
    cmp mbbig_text_document.bin refbig_text_document.bin
"

test_done
