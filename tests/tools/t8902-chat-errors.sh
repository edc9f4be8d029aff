#!/bin/sh
test_description='chat rows and templates mb cannot handle: an error naming the row, key, role, construct or template line, never a rendering'
. "$(dirname "$0")/../lib/test-lib.sh"

T="$MB_ROOT/tests/data/chat"

config() { # config NAME TEMPLATE_TEXT_FILE: a tokenizer_config.json holding it
    "$PY" -c "import json, sys; json.dump({\"chat_template\": open(sys.argv[1]).read(), \"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"</s>\"}, open(sys.argv[2], \"w\"))" "$2" "$1"
}

test_expect_success 'setup: rows, good and bad' '
    "$MB_ROOT/scripts/fetch-test-data.sh" &&
    cat >rows.jsonl <<-\EOF
	{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
	{"text": "a pretraining row, not a chat"}
	{"messages": [{"role": "user", "content": "Hi"}, {"role": "robot", "content": "beep"}]}
	{"conversations": [{"from": "human", "value": "Hi"}, {"from": "alien", "value": "zz"}]}
	{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1, 2]"}}]}]}
	{"messages": []}
	{"messages": [{"content": "no role"}]}
	EOF
    config qwen.json "$T/qwen2.5.jinja"
'

test_expect_success 'a row without messages, unknown roles, bad tool arguments: errors naming the row and what' '
    test_expect_code 1 chat_render render qwen.json rows.jsonl >out &&
    cat out &&
    sed -n 1p out | grep -q "^\"<|im_start|>system" &&
    sed -n 2p out | grep -q "^error: rows.jsonl:2: no \"messages\" or \"conversations\" key" &&
    sed -n 3p out | grep -q "^error: rows.jsonl:3: messages\[1\]: unknown role \"robot\"" &&
    sed -n 4p out | grep -q "^error: rows.jsonl:4: conversations\[1\]: unknown role \"alien\"" &&
    sed -n 5p out | grep -q "^error: rows.jsonl:5: messages\[1\].tool_calls\[0\].function.arguments: a string that is not a JSON object" &&
    sed -n 6p out | grep -q "^error: rows.jsonl:6: messages: expected a non-empty list" &&
    sed -n 7p out | grep -q "^error: rows.jsonl:7: messages\[0\]: no \"role\" key"
'

test_expect_success 'a template with a construct outside the subset: refused at load, naming it and its line' '
    printf "{%% for m in messages %%}\n{{ m.content }}\n{%% endfor %%}\n{%% filter upper %%}x{%% endfilter %%}\n" >block.jinja &&
    config block.json block.jinja &&
    test_expect_code 1 chat_render render block.json rows.jsonl 2>err &&
    cat err &&
    grep -q "^chat_render: error: block.json: chat_template:4: unsupported construct: {% filter %}$" err &&
    printf "{{ messages | map(attribute=\"content\") | sort | join }}" >sort.jinja &&
    config sort.json sort.jinja &&
    test_expect_code 1 chat_render render sort.json rows.jsonl >out &&
    head -1 out | grep -q "^error: rows.jsonl:1: sort.json: chat_template:1: unsupported construct: filter .sort.$"
'

test_expect_success 'raise_exception: the template'"'"'s message, with the row' '
    config gemma.json "$T/gemma2.jinja" &&
    printf "%s\n" "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"u\"}]}" >sys.jsonl &&
    test_expect_code 1 chat_render render gemma.json sys.jsonl >out &&
    cat out &&
    grep -q "^error: sys.jsonl:1: gemma.json: chat_template:1: the template raised an exception: System role not supported$" out
'

test_expect_success 'no chat_template in tokenizer_config.json, or not a string: the file and key' '
    echo "{\"eos_token\": \"</s>\"}" >none.json &&
    test_expect_code 1 chat_render render none.json rows.jsonl 2>err &&
    grep -q "^chat_render: error: none.json: no chat_template key" err &&
    echo "{\"chat_template\": 3}" >num.json &&
    test_expect_code 1 chat_render render num.json rows.jsonl 2>err &&
    grep -q "^chat_render: error: num.json: chat_template: expected a string, found" err &&
    echo "{\"chat_template\": \"x\", \"bos_token\": [1]}" >bos.json &&
    test_expect_code 1 chat_render render bos.json rows.jsonl 2>err &&
    grep -q "^chat_render: error: bos.json: bos_token: expected a string or" err
'

test_expect_success 'a template without generation blocks or known markers cannot give a mask' '
    config mistral.json "$T/mistral-v0.3.jinja" &&
    head -1 rows.jsonl >one.jsonl &&
    test_expect_code 1 chat_render encode mistral.json one.jsonl "$TESTDATA/tokenizers/mistral/tokenizer.json" >out &&
    grep -q "^error: one.jsonl:1: the chat template has no {% generation %} block and no known assistant boundary markers" out
'

test_expect_success 'hostile templates: deep nesting and huge strings are errors, not crashes' '
    "$PY" -c "
import json
cases = [\"{{\" + \"(\" * 5000 + \"1\" + \")\" * 5000 + \"}}\", \"{% if 1 %}\" * 300 + \"{% endif %}\" * 300,
         \"{{ \" + \"not \" * 5000 + \"1 }}\", \"{{ (\x27x\x27 * 1000000000) | length }}\",
         \"{% set s = namespace(v=\x27ab\x27) %}{% for i in range(40) %}{% set s.v = s.v ~ s.v %}{% endfor %}\"]
open(\"hostile.jsonl\", \"w\").write(\"\".join(json.dumps({\"template\": t, \"vars\": {}}) + \"\\n\" for t in cases))
" &&
    test_expect_code 1 chat_render jinja hostile.jsonl >out &&
    cat out &&
    test $(grep -c "^error: hostile.jsonl:[1-3]:1: expressions nested more than 200 deep$" out) = 3 &&
    grep -q "^error: hostile.jsonl:4:1: a string or list longer than 256 MiB$" out &&
    grep -q "^error: hostile.jsonl:5:1: a string or list longer than 256 MiB$" out
'

test_done
