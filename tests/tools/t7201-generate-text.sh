#!/bin/sh
test_description='mb-generate: text output, prompts from stdin, and errors (exit 1, usage exit 2)'
. "$(dirname "$0")/../lib/test-lib.sh"

# Models with the vocabularies of real tokenizers (GPT-2 byte-level, Mistral
# SentencePiece with BOS), tiny otherwise. The text mb-generate prints must be HF
# tokenizers' decode of prompt + new ids, less the decoded prompt; the prompt's ids
# must be HF's encode with special tokens.

models="$MB_ROOT/tests/data/models"

make_model() { # NAME VOCAB: the llama test config with that vocabulary
    "$PY" -c '
import json, sys
c = json.load(open(sys.argv[1]))
c["vocab_size"] = int(sys.argv[3])
c["hidden_size"], c["num_attention_heads"], c["num_query_groups"] = 32, 2, 1
c["kv_channels"], c["ffn_hidden_size"], c["num_layers"] = 16, 48, 1
json.dump(c, open(sys.argv[2], "w"))
' "$models/llama.json" $1.json $2 &&
    ckpt_init $1.json ck_$1 --std 0.5 --seed 2
}

check_text() { # TOKENIZER_DIR CKPT PROMPT [options]
    tok=$1 ck=$2 prompt=$3
    shift 3
    mb-generate $ck -t "$tok" -p "$prompt" -n 20 "$@" >text 2>err &&
    mb-generate $ck -t "$tok" -p "$prompt" -n 20 --ids "$@" >ids 2>err &&
    "$PY" -c '
import sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1] + "/tokenizer.json")
prompt = tok.encode(sys.argv[2], add_special_tokens=True).ids
new = [int(x) for x in open("ids").read().split()]
eos = sys.argv[3:]
if new and eos and new[-1] == int(eos[0]):
    new = new[:-1]
full = tok.decode(prompt + new, skip_special_tokens=False)
head = tok.decode(prompt, skip_special_tokens=False)
want = full[len(head):] + "\n"
got = open("text", encoding="utf-8", errors="surrogateescape").read()
if got != want:
    sys.exit(f"mb {got!r}\nHF {want!r}")
' "$tok" "$prompt"
}

test_expect_success 'setup: models with the GPT-2 and Mistral vocabularies' '
    make_model gpt2v 50257 && make_model mistralv 32000
'

test_expect_success 'GPT-2 tokenizer: the text is HF decode of prompt + new ids, less the prompt' '
    check_text "$TESTDATA/tokenizers/gpt2" ck_gpt2v "Hello, wörld: 日本" --ignore-eos
'

test_expect_success 'Mistral tokenizer (BOS, SentencePiece spaces): the same, sampled' '
    check_text "$TESTDATA/tokenizers/mistral" ck_mistralv "The café is" --ignore-eos \
        --temperature 1.5 --seed 7
'

test_expect_success 'the prompt comes from stdin when --prompt is absent' '
    printf "The café is" | mb-generate ck_mistralv -t "$TESTDATA/tokenizers/mistral" -n 20 \
        --ignore-eos --temperature 1.5 --seed 7 >text_stdin 2>err &&
    mb-generate ck_mistralv -t "$TESTDATA/tokenizers/mistral" -p "The café is" -n 20 \
        --ignore-eos --temperature 1.5 --seed 7 >text 2>err &&
    cmp text text_stdin
'

test_expect_success 'the checkpoint names its tokenizer: --tokenizer may be left out' '
    ckpt_init "$models/llama.json" ck_named --tokenizer bytes &&
    mb-generate ck_named -p "abc" -n 5 --ids --ignore-eos >a &&
    mb-generate ck_named -t bytes -p "abc" -n 5 --ids --ignore-eos >b &&
    cmp a b && test $(wc -w <a) = 5
'

test_expect_success 'errors: missing checkpoint file or directory (exit 1)' '
    test_expect_code 1 mb-generate nothere.h5 -t bytes -p x 2>err &&
    grep "^mb-generate: error: .*nothere.h5" err &&
    mkdir empty &&
    test_expect_code 1 mb-generate empty -t bytes -p x 2>err &&
    grep "^mb-generate: error: empty: no checkpoint" err &&
    echo "not hdf5" >bad.h5 &&
    test_expect_code 1 mb-generate bad.h5 -t bytes -p x 2>err &&
    grep "^mb-generate: error: .*bad.h5" err
'

test_expect_success 'errors: missing or broken tokenizer (exit 1)' '
    test_expect_code 1 mb-generate ck_named -t nothere.json -p x 2>err &&
    grep "^mb-generate: error: .*nothere.json" err &&
    echo "{" >broken.json &&
    test_expect_code 1 mb-generate ck_named -t broken.json -p x 2>err &&
    grep "^mb-generate: error: .*broken.json" err
'

test_expect_success 'errors: a tokenizer larger than the model vocabulary (exit 1)' '
    test_expect_code 1 mb-generate ck_named -t "$TESTDATA/tokenizers/gpt2" -p x 2>err &&
    grep "the tokenizer has 50257 tokens but the model.s vocabulary is 320" err
'

test_expect_success 'errors: a prompt longer than max_position_embeddings (exit 1)' '
    ckpt_init "$models/gpt2.json" ck_gpt2 &&
    test_expect_code 1 mb-generate ck_gpt2 --prompt-ids "$(seq -s " " 1 65)" --ids 2>err &&
    grep "65 tokens is longer than the model.s max_position_embeddings (64)" err &&
    head -c 80 /dev/zero | tr "\0" "a" | test_expect_code 1 mb-generate ck_gpt2 -t bytes 2>err &&
    grep "max_position_embeddings" err
'

test_expect_success 'errors: a prompt id outside the vocabulary, a prompt not UTF-8 (exit 1)' '
    test_expect_code 1 mb-generate ck_named --prompt-ids "1 320" --ids 2>err &&
    grep "token id 320 is outside" err &&
    printf "a\377b" | test_expect_code 1 mb-generate ck_named -t bytes 2>err &&
    grep "not valid UTF-8" err
'

test_expect_success 'usage errors (exit 2)' '
    test_expect_code 2 mb-generate -t bytes -p x 2>err &&
    grep "give one checkpoint" err &&
    test_expect_code 2 mb-generate ck_named ck_named -p x 2>err &&
    test_expect_code 2 mb-generate ck_named -p x --greedy --temperature 0.5 2>err &&
    test_expect_code 2 mb-generate ck_named -p x --temperature 0 2>err &&
    test_expect_code 2 mb-generate ck_named -p x --top-p 1.5 2>err &&
    test_expect_code 2 mb-generate ck_named -p x --prompt-ids 1 2>err &&
    test_expect_code 2 mb-generate ck_named --prompt-ids "1 x" 2>err &&
    test_expect_code 2 mb-generate ck_named -p x -n -1 2>err &&
    test_expect_code 2 mb-generate ck_named -p x --eos-id 1 --ignore-eos 2>err
'

test_done
