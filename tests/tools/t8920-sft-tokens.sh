#!/bin/sh
test_description='data/sft: prompt/completion ids and answer masks equal Megatron Bridge'"'"'s method with the HF tokenizer'
. "$(dirname "$0")/../lib/test-lib.sh"

GSM="$MB_SHARED_DATA/sft/gsm8k_train.jsonl"
TOKS="$TESTDATA/tokenizers"
TEMPLATE='Question: {question}
Answer: '
ROWS=300

# Cases: NAME TOKENIZER SEQ SEPARATOR TEMPLATE_NAME (full: the issue's template; q: {question})
CASES='llama3-full llama3 2048 none full
qwen2-full qwen2 2048 none full
gpt2-full gpt2 2048 none full
mistral-full mistral 2048 none full
phi3-full phi3 2048 none full
llama3-cut llama3 96 space q
mistral-cut mistral 40 space q'

template() { if test "$1" = full; then printf '%s' "$TEMPLATE"; else printf '{question}'; fi; }
separator() { if test "$1" = space; then printf ' '; fi; }

test_expect_success 'setup: the oracle computes every case in one process' '
    echo "$CASES" | while read name tok seq sep tpl; do
        "$PY" -c "import json, sys; print(json.dumps(dict(out=sys.argv[1] + \".hf\",
            tokenizer=sys.argv[2], file=sys.argv[3], rows=$ROWS, seq=int(sys.argv[4]),
            separator=sys.argv[5], template=sys.argv[6], answer_key=\"answer\")))" \
            "$name" "$TOKS/$tok" "$GSM" "$seq" "$(separator $sep)" "$(template $tpl)" || exit 1
    done >jobs.jsonl &&
    "$PY" -c "import json, sys; json.dump([json.loads(l) for l in open(\"jobs.jsonl\")], sys.stdout)" \
        >jobs.json &&
    "$PY" "$ORACLE/sft_bridge.py" jobs.json 2>oracle.err
'

while read name tok seq sep tpl; do
    test_expect_success "$name: ids and masks of $ROWS GSM8K rows equal the oracle's" "
        sft_dump --tokenizer '$TOKS/$tok' --rows $ROWS --seq $seq \
            --separator \"\$(separator $sep)\" --template \"\$(template $tpl)\" \
            --answer-key answer '$GSM' >$name.mb &&
        test \$(grep -c '^ids' $name.mb) -eq $ROWS &&
        cmp $name.hf $name.mb
    "
done <<EOF_CASES
$CASES
EOF_CASES

test_expect_success 'the truncated cases did truncate: full rows of 96, answers cut at 40' '
    awk "/^ids/ && NF - 1 == 96 { n++ } END { exit !(n > 10) }" llama3-cut.mb &&
    awk "/^mask/ && \$2 == 1 { n++ } END { exit !(n > 100) }" mistral-cut.mb
'

test_done
