#!/bin/sh
test_description='token ids -> text (tok/decode.c) equals HF tokenizers decode(skip_special_tokens=False)'
. "$(dirname "$0")/../lib/test-lib.sh"

# Cases (tests/oracle/hf_generate.py decode-cases): real texts of three corpora (non-Latin
# scripts, emoji and whitespace runs, C code) encoded with special tokens; prefixes of
# them cut inside multi-byte characters; a special token spliced in; and 200 seeded runs
# of random ids over the whole vocabulary (byte-fallback tokens, lone bytes, added
# tokens). tok_decode prints mb's bytes in hex, so the comparison is exact.

corpora="$TESTDATA/corpora/nonlatin.jsonl $TESTDATA/corpora/mixed.jsonl $TESTDATA/corpora/code.jsonl"

check() {
    tok=$1
    "$PY" "$ORACLE/hf_generate.py" decode-cases "$tok" $corpora >ids &&
    tok_decode "$tok" <ids >got &&
    "$PY" "$ORACLE/hf_generate.py" decode-check "$tok" ids got
}

for dir in "$TESTDATA"/tokenizers/*/; do
    name=$(basename "$dir")
    test_expect_success "$name: decode equals HF tokenizers" "check '${dir}tokenizer.json'"
done

# The Metaspace decoder (no fetched tokenizer has one): Mistral's vocabulary with it.
for scheme in always first never; do
    test_expect_success "Metaspace decoder, prepend_scheme $scheme: equals HF tokenizers" "
        \"\$PY\" -c '
import json, sys
j = json.load(open(sys.argv[1], encoding=\"utf-8\"))
j[\"decoder\"] = {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\",
                \"prepend_scheme\": sys.argv[2], \"split\": True}
json.dump(j, open(\"tokenizer.json\", \"w\", encoding=\"utf-8\"))
' '$TESTDATA/tokenizers/mistral/tokenizer.json' $scheme &&
        check tokenizer.json
    "
done

test_expect_success 'the byte tokenizer decodes bytes; bad UTF-8 becomes U+FFFD' '
    echo "72 105 256 226 130 172 226 130" | tok_decode bytes >got &&
    echo "4869" "3c7c656e646f66746578747c3e" "e282ac" "efbfbd" | tr -d " " >want &&
    diff want got
'

test_expect_success 'an unsupported decoder is an error naming the key (the tokenizer still loads)' '
    "$PY" -c "
import json, sys
j = json.load(open(sys.argv[1], encoding=\"utf-8\"))
j[\"decoder\"] = {\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": True}
json.dump(j, open(\"wp.json\", \"w\", encoding=\"utf-8\"))
" "$TESTDATA/tokenizers/mistral/tokenizer.json" &&
    echo "1 2" >ids &&
    test_expect_code 1 tok_decode wp.json <ids 2>err &&
    grep "wp.json: decoder: decoder type .WordPiece. is not supported" err
'

test_done
