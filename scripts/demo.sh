#!/bin/sh
# The README's main job on the embedded default: a real corpus (Debian's fortunes,
# fetched by scripts/fetch-test-data.sh), a byte-level BPE tokenizer trained on it, and
# the corpus tokenized into Megatron .bin/.idx files under demo/.
set -eu
cd "$(dirname "$0")/.."
MB_CACHE=${MB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mb}
corpus="$MB_CACHE/testdata/corpora/fortunes.jsonl"
[ -s "$corpus" ] || scripts/fetch-test-data.sh
mkdir -p demo
echo "== training a 4096-entry BPE tokenizer on $(wc -l <"$corpus") fortunes and tokenizing them"
bin/mb-preprocess --input "$corpus" --output-prefix demo/fortunes --train-tokenizer 4096 \
    --save-tokenizer demo/tokenizer.json --append-eod
echo "== outputs"
ls -l demo/fortunes_text_document.bin demo/fortunes_text_document.idx demo/tokenizer.json
