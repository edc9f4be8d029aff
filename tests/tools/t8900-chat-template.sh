#!/bin/sh
test_description='chat templates: the Jinja renderer equals transformers apply_chat_template byte for byte, and the answer mask equals the one Bridge'"'"'s method gives'
. "$(dirname "$0")/../lib/test-lib.sh"

# Conversations: built-in ones (tools, ShareGPT with a system key, list content), MT-Bench
# two-turn questions with made-up answers and ShareGPT rows (../shared/data/sft). The
# templates are the real ones of each family (tests/data/chat/README.md), rendered by
# tests/helpers/chat_render and by transformers; tests/oracle/chat_check.py compares.

T="$MB_ROOT/tests/data/chat"
TOK="$TESTDATA/tokenizers"
export CHAT_DEFAULT_TOKENIZER="$TOK/qwen2/tokenizer.json"

# Every comparison runs in one Python process (transformers is imported once); each test
# below reads its cases' summary lines: "CASE: N rows rendered identically, R refused by
# both, 0 differ" or "CASE: N rows with equal ids and mask (S supervised tokens), R
# refused as expected, 0 differ".
PHI3_CONFIG="$MB_SHARED_DATA/tokenizers/phi-3-mini/tokenizer_config.json"

test_expect_success 'setup: test data, conversations, both renderers on every case' '
    "$MB_ROOT/scripts/fetch-test-data.sh" &&
    "$PY" "$ORACLE/chat_check.py" rows rows.jsonl "$MB_SHARED_DATA/sft" >out &&
    cat out && grep -q "^185 rows" out &&
    "$PY" -c "
import sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
t.add_special_tokens([\"<bos>\", \"<eos>\", \"<start_of_turn>\", \"<end_of_turn>\", \"<start_of_image>\"])
t.save(\"gemma-tokenizer.json\")
" "$TOK/qwen2/tokenizer.json" &&
    cat >cases <<-EOF &&
	render llama3.1 rows.jsonl --template $T/llama3.1.jinja --bos <|begin_of_text|> --eos <|eot_id|>
	render llama3.2 rows.jsonl --template $T/llama3.2.jinja --bos <|begin_of_text|> --eos <|eot_id|>
	render qwen2.5 rows.jsonl --template $T/qwen2.5.jinja --eos <|im_end|>
	render qwen3 rows.jsonl --template $T/qwen3.jinja --eos <|im_end|>
	render gemma2 rows.jsonl --template $T/gemma2.jinja --bos <bos> --eos <eos>
	render gemma3 rows.jsonl --template $T/gemma3.jinja --bos <bos> --eos <eos>
	render mistral-v0.3 rows.jsonl --template $T/mistral-v0.3.jinja --bos <s> --eos </s>
	render mistral-v0.2 rows.jsonl --template $T/mistral-v0.2.jinja --bos <s> --eos </s>
	render phi-3-mini rows.jsonl --config $PHI3_CONFIG
	render phi3.5 rows.jsonl --template $T/phi3.5.jinja --bos <s> --eos <|endoftext|>
	encode qwen2.5 rows.jsonl $TOK/qwen2/tokenizer.json --template $T/qwen2.5.jinja --eos <|im_end|>
	encode qwen3 rows.jsonl $TOK/qwen2/tokenizer.json --template $T/qwen3.jinja --eos <|im_end|>
	encode llama3.1 rows.jsonl $TOK/llama3/tokenizer.json --template $T/llama3.1.jinja --bos <|begin_of_text|> --eos <|eot_id|>
	encode gemma3 rows.jsonl gemma-tokenizer.json --template $T/gemma3.jinja --bos <bos> --eos <eos>
	encode phi3-generation rows.jsonl $TOK/phi3/tokenizer.json --template $T/phi3-generation.jinja --bos <s> --eos <|endoftext|>
	encode qwen2.5-generation rows.jsonl $TOK/qwen2/tokenizer.json --template $T/qwen2.5-generation.jinja --eos <|im_end|>
	encode mistral-v0.3 rows.jsonl $TOK/mistral/tokenizer.json --template $T/mistral-v0.3.jinja --bos <s> --eos </s>
	encode phi-3-mini rows.jsonl $TOK/phi3/tokenizer.json --config $PHI3_CONFIG
	EOF
    sed -e "s/<\\([^ ]*\\)>/\"<\\1>\"/g" cases >cases.q &&
    { "$PY" "$ORACLE/chat_check.py" batch <cases.q >results; true; } &&
    cat results
'

# rendered CASE...: each case's line is there and says 0 differ
rendered() {
    for c in "$@"; do
        grep "^$c: [0-9]* rows rendered identically, [0-9]* refused by both, 0 differ\$" results ||
            { echo "case $c: no clean result"; grep "^$c:" results; return 1; }
    done
}

encoded() {
    for c in "$@"; do
        grep "^$c: [0-9]* rows with equal ids and mask ([0-9]* supervised tokens), [0-9]* refused as expected, 0 differ\$" results ||
            { echo "case $c: no clean result"; grep "^$c:" results; return 1; }
    done
}

test_expect_success 'Llama 3.1 and 3.2 render as transformers' '
    rendered llama3.1 llama3.2
'

test_expect_success 'Qwen2.5 and Qwen3 render as transformers' '
    rendered qwen2.5 qwen3
'

test_expect_success 'Gemma 2 and Gemma 3 render as transformers (system turns refused by Gemma 2)' '
    rendered gemma2 gemma3 &&
    grep "^gemma2: .* [1-9][0-9]* refused by both" results
'

test_expect_success 'Mistral v0.3 and v0.2 render as transformers' '
    rendered mistral-v0.3 mistral-v0.2
'

test_expect_success 'Phi-3 mini (its tokenizer_config.json) and Phi-3.5 render as transformers' '
    rendered phi-3-mini phi3.5
'

test_expect_success 'ChatML mask (Qwen2.5, Qwen3): ids as HF tokenizers, mask as the boundary markers give' '
    encoded qwen2.5 qwen3
'

test_expect_success 'Llama 3 mask: ids as HF tokenizers, mask as the boundary markers give' '
    encoded llama3.1
'

test_expect_success 'Gemma mask, on the Qwen2 vocabulary with Gemma'"'"'s turn tokens added' '
    encoded gemma3
'

test_expect_success '{% generation %} masks equal transformers'"'"' return_assistant_tokens_mask' '
    encoded phi3-generation qwen2.5-generation
'

test_expect_success 'Mistral and Phi-3 templates have no markers: every row is refused, as in Bridge' '
    grep "^mistral-v0.3: 0 rows with equal ids and mask (0 supervised tokens), 185 refused as expected, 0 differ\$" results &&
    grep "^phi-3-mini: 0 rows with equal ids and mask (0 supervised tokens), 185 refused as expected, 0 differ\$" results
'

test_done
