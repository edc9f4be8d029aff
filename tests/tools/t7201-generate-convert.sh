#!/bin/sh
test_description='HF save_pretrained -> mb-convert -> mb-generate greedy equals transformers generate'
. "$(dirname "$0")/../lib/test-lib.sh"

# tests/oracle/hf_convert.py make: tiny randomly initialised models made by transformers
# itself and saved with save_pretrained (with a byte-level tokenizer beside them);
# mb-convert turns each into an mb checkpoint; transformers generates from the HF
# directory (from_pretrained, fp32, eager attention). Their matrices are scaled by 4
# (scale=4): at the default init the next-token logits are nearly flat, and the top two
# can lie 3e-5 apart, too close for a comparison that must hold on any CPU; scaled, the
# gap stays above 2e-3 and the continuations still vary.

names="llama llama_tied mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2"
specs=$(for n in $names; do printf "%s:scale=4 " $n; done)

# the prompt: the first 12 tokens of a real text (the fortunes corpus, hf_convert.py's BPE)
test_expect_success 'setup: transformers models, converted' '
    "$PY" "$ORACLE/hf_convert.py" make m "$TESTDATA/corpora/fortunes.jsonl" $specs 2>err &&
    "$PY" -c "import numpy; print(*numpy.load(\"m/tokens.npy\")[0, :12])" >prompt &&
    test $(wc -w <prompt) = 12 &&
    for n in $names; do
        mb-convert --from hf --to h5 m/${n}_scale4 ck_$n.h5 || exit 1
    done
'

test_expect_success 'transformers: 32 greedy tokens from each HF directory' '
    dirs= &&
    for n in $names; do dirs="$dirs m/${n}_scale4"; done &&
    "$PY" "$ORACLE/hf_generate.py" generate --hf $dirs --prompt-ids "$(cat prompt)" \
        --max-new-tokens 32 >want 2>err &&
    test $(wc -l <want) = 9
'

i=0
for n in $names; do
    i=$((i + 1))
    test_expect_success "$n: mb-generate on the converted checkpoint equals transformers" "
        mb-generate ck_$n.h5 --prompt-ids \"\$(cat prompt)\" -n 32 --ids --ignore-eos >got 2>err &&
        sed -n ${i}p want >want_$n &&
        diff want_$n got
    "
done

# The directory transformers saved: its tokenizer_config.json holds model_max_length =
# int(1e30), beyond int64, which the JSON reader must take.
test_expect_success 'text through the tokenizer directory save_pretrained wrote' '
    grep "model_max_length.: 10000000000000000198" m/llama_scale4/tokenizer_config.json &&
    mb-generate ck_llama.h5 -t m/llama_scale4 -p "A fortune" -n 8 --ignore-eos >text 2>err &&
    test -s text
'

test_done
