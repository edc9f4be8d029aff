#!/bin/sh
test_description='mb-convert --to peft and mb-ckpt merge-adapter: HF PEFT loads the adapter with the logits of the merged model, merged weights equal numpy'
. "$(dirname "$0")/../lib/test-lib.sh"

# Tiny transformers models (hf_convert.py) are the bases; peft_adapter.py makes adapter-
# only checkpoints of them in the layout of issue 13 with random non-zero A, B (and DoRA
# magnitudes). Each adapter goes to PEFT (mb-convert --to peft) and into its base
# (mb-ckpt merge-adapter, then mb-convert --to hf). peft_adapter.py checks the merged
# weights against its own numpy merge of the h5 tensors, and that PeftModel.from_pretrained
# loads the exported adapter onto the HF base with no missing or unexpected keys and the
# logits of the merged HF model, and of mb's model on the merged checkpoint (1e-4). Llama has GQA (4 heads, 2 groups), GPT-2 Conv1D
# weights and a fused c_attn, Qwen3 q/k norms and head_dim * heads != hidden, Gemma 2
# four norms per layer.
ADAPTER="$ORACLE/peft_adapter.py"

# NAME:MODEL:PEFT:TARGETS (all: the four Megatron Bridge targets)
cases="llama_lora:llama:lora:all llama_dora:llama:dora:all gpt2_lora:gpt2:lora:all
gpt2_dora:gpt2:dora:linear_proj,linear_fc1 qwen3_dora:qwen3:dora:linear_qkv,linear_fc2
gemma2_lora:gemma2:lora:linear_fc1,linear_proj"

test_expect_success 'setup: tiny HF models and their mb checkpoints' '
    "$PY" "$ORACLE/hf_convert.py" make m "$TESTDATA/corpora/fortunes.jsonl" llama gpt2 qwen3 gemma2 2>err &&
    for n in llama gpt2 qwen3 gemma2; do
        mb-convert --from hf --to h5 m/$n base_$n 2>err || exit 1
    done
'

test_expect_success 'setup: adapter-only checkpoints, random A, B and m' '
    seed=1 &&
    for c in $cases; do
        name=$(echo "$c" | cut -d: -f1) model=$(echo "$c" | cut -d: -f2) &&
        kind=$(echo "$c" | cut -d: -f3) targets=$(echo "$c" | cut -d: -f4) &&
        { [ "$targets" != all ] || targets=linear_qkv,linear_proj,linear_fc1,linear_fc2; } &&
        seed=$((seed + 1)) &&
        "$PY" "$ADAPTER" make base_$model ad_$name --peft $kind --dim 4 --alpha 8 \
            --targets $targets --seed $seed >out || exit 1
    done
'

for c in $cases; do
    name=${c%%:*} model=$(echo "$c" | cut -d: -f2)
    test_expect_success "$name: --to peft, merge-adapter, --to hf" "
        mb-convert --from h5 --to peft ad_$name peft_$name 2>err &&
        test -f peft_$name/adapter_config.json && test -f peft_$name/adapter_model.safetensors &&
        mb-ckpt merge-adapter base_$model ad_$name merged_$name >out &&
        grep \"^merged the .* adapter ad_$name/iter_0000005.h5 .* into base_$model/iter_0000000.h5: merged_$name/iter_0000000.h5\\\$\" out &&
        test \"\$(cat merged_$name/latest)\" = iter_0000000.h5 &&
        mb-convert --from h5 --to hf merged_$name hf_$name 2>err &&
        ckpt_logits merged_$name m/tokens.npy dump_$name &&
        \"\$PY\" \"\$ADAPTER\" merged base_$model ad_$name merged_$name >out
    "
done

test_expect_success 'PEFT loads every adapter (no missing or unexpected keys) with the logits of the merged model in transformers and mb' '
    args= &&
    for c in $cases; do
        name=${c%%:*} model=$(echo "$c" | cut -d: -f2) &&
        args="$args m/$model peft_$name hf_$name dump_$name" || exit 1
    done &&
    "$PY" "$ADAPTER" logits m/tokens.npy $args >out 2>err ||
    { cat out err; exit 1; }
'

test_expect_success 'adapter_config.json: PEFT names, r, alpha, DoRA, fan_in_fan_out for Conv1D' '
    "$PY" -c "
import json
c = json.load(open(\"peft_llama_lora/adapter_config.json\"))
assert c[\"target_modules\"] == [\"down_proj\", \"gate_proj\", \"k_proj\", \"o_proj\", \"q_proj\", \"up_proj\", \"v_proj\"], c
assert (c[\"r\"], c[\"lora_alpha\"], c[\"use_dora\"], c[\"fan_in_fan_out\"]) == (4, 8, False, False), c
assert (c[\"peft_type\"], c[\"task_type\"], c[\"bias\"]) == (\"LORA\", \"CAUSAL_LM\", \"none\"), c
c = json.load(open(\"peft_gpt2_dora/adapter_config.json\"))
# attn.c_proj: a bare c_proj would also adapt mlp.c_proj, which has no adapter
assert c[\"target_modules\"] == [\"attn.c_proj\", \"c_fc\"], c
assert c[\"use_dora\"] and c[\"fan_in_fan_out\"], c
"
'

test_expect_success 'the oracles fail on a wrong scale and on another adapter' '
    cp -r peft_llama_dora bad_peft &&
    sed -i "s/\"lora_alpha\": 8/\"lora_alpha\": 9/" bad_peft/adapter_config.json &&
    test_expect_code 1 "$PY" "$ADAPTER" logits m/tokens.npy m/llama bad_peft hf_llama_dora dump_llama_dora 2>err &&
    grep "PEFT logits differ from the merged model" err &&
    test_expect_code 1 "$PY" "$ADAPTER" merged base_llama ad_llama_lora merged_llama_dora 2>err &&
    grep "max error" err
'

test_expect_success 'merge into a bf16 base: merged in fp32, stored bf16' '
    mb-ckpt convert-dtype base_llama --dtype bf16 -o base16.h5 >out &&
    mb-ckpt merge-adapter base16.h5 ad_llama_dora merged16.h5 >out &&
    "$PY" "$ADAPTER" merged base16.h5 ad_llama_dora merged16.h5 >out
'

test_expect_success '--dtype bf16 writes a bf16 adapter' '
    mb-convert --from h5 --to peft --dtype bf16 ad_gpt2_lora peft16 2>err &&
    "$PY" -c "
from safetensors import safe_open
f = safe_open(\"peft16/adapter_model.safetensors\", \"pt\")
assert {f.get_slice(k).get_dtype() for k in f.keys()} == {\"BF16\"}
"
'

test_expect_success 'an existing adapter directory is replaced whole' '
    cp -r peft_gpt2_lora again && touch again/stale.safetensors &&
    mb-convert --from h5 --to peft ad_llama_lora again 2>err &&
    test_path_is_missing again/stale.safetensors &&
    cmp again/adapter_model.safetensors peft_llama_lora/adapter_model.safetensors
'

test_expect_success 'not an adapter checkpoint: exit 1 naming the file, nothing written' '
    test_expect_code 1 mb-convert --from h5 --to peft base_llama out_a 2>err &&
    grep "^mb-convert: error: base_llama/iter_0000000.h5: not an adapter checkpoint (no .peft. attribute)\$" err &&
    test_path_is_missing out_a &&
    test_expect_code 1 mb-ckpt merge-adapter base_llama base_gpt2 out_b 2>err &&
    grep "^mb-ckpt: error: base_gpt2/iter_0000000.h5: not an adapter checkpoint" err &&
    test_path_is_missing out_b && test_no_files ".out_a*"
'

test_expect_success 'an adapter on a module the model does not have: exit 1 naming it' '
    "$PY" "$ADAPTER" make base_llama ad_q --peft lora --dim 4 --alpha 8 --targets linear_qkv \
        --module linear_q >out &&
    test_expect_code 1 mb-convert --from h5 --to peft ad_q out_q 2>err &&
    grep "^mb-convert: error: ad_q/iter_0000005.h5: tensor .decoder.layers.self_attention.linear_q.adapter.linear_in.weight.: the model has no module .decoder.layers.self_attention.linear_q." err &&
    test_expect_code 1 mb-ckpt merge-adapter base_llama ad_q out_q 2>err &&
    grep "the model has no module .decoder.layers.self_attention.linear_q." err &&
    test_path_is_missing out_q
'

test_expect_success 'peft attribute naming an unknown target, a missing tensor, a wrong shape: exit 1' '
    cp -r ad_llama_lora ad_t && cp -r ad_llama_lora ad_m && cp -r ad_llama_lora ad_s &&
    "$PY" -c "
import h5py, json, numpy as np
def attr(f, k, v):
    b = v.encode(); f.attrs.create(k, np.array(b, dtype=f\"S{len(b)}\"), dtype=h5py.string_dtype(\"utf-8\", len(b)))
with h5py.File(\"ad_t/iter_0000005.h5\", \"r+\") as f:
    c = json.loads(f.attrs[\"peft\"]); c[\"target_modules\"].append(\"lm_head\"); attr(f, \"peft\", json.dumps(c))
with h5py.File(\"ad_m/iter_0000005.h5\", \"r+\") as f:
    del f[\"adapter/decoder/layers/mlp/linear_fc1/adapter/linear_out/weight\"]
with h5py.File(\"ad_s/iter_0000005.h5\", \"r+\") as f:
    p = \"adapter/decoder/layers/mlp/linear_fc2/adapter/linear_in/weight\"
    x = f[p][:, :, :-1]; del f[p]; f[p] = x
" &&
    test_expect_code 1 mb-convert --from h5 --to peft ad_t out_t 2>err &&
    grep "^mb-convert: error: ad_t/iter_0000005.h5: attribute .peft.: target module .lm_head. is not one of linear_qkv, linear_proj, linear_fc1, linear_fc2\$" err &&
    test_expect_code 1 mb-convert --from h5 --to peft ad_m out_t 2>err &&
    grep "missing tensor .decoder.layers.mlp.linear_fc1.adapter.linear_out.weight." err &&
    test_expect_code 1 mb-ckpt merge-adapter base_llama ad_s out_t 2>err &&
    grep "tensor .decoder.layers.mlp.linear_fc2.adapter.linear_in.weight. is \[2, 4, 95\], expected \[2, 4, 96\]" err &&
    test_path_is_missing out_t
'

test_expect_success 'a base of another shape than the adapter: exit 1 naming the tensor, nothing left' '
    test_expect_code 1 mb-ckpt merge-adapter base_qwen3 ad_llama_lora out_s 2>err &&
    grep "^mb-ckpt: error: base_qwen3/iter_0000000.h5: tensor .decoder.layers.self_attention.linear_qkv.weight. is \[2, 256, 64\], but the adapter ad_llama_lora/iter_0000005.h5 was trained on a base where it is \[2, 128, 64\]\$" err &&
    test_path_is_missing out_s &&
    test_expect_code 1 mb-ckpt merge-adapter ad_llama_lora ad_llama_lora bad.h5 2>err &&
    grep "missing tensor .decoder.layers.self_attention.linear_qkv.weight." err &&
    test_path_is_missing bad.h5 && test_no_files "bad.h5*"
'

test_expect_success 'usage errors exit 2' '
    test_expect_code 2 mb-ckpt merge-adapter base_llama ad_llama_lora 2>err &&
    grep "merge-adapter takes BASE ADAPTER OUT" err &&
    test_expect_code 2 mb-convert --from hf --to peft m/llama out_u 2>err &&
    grep "supported are" err &&
    test_path_is_missing out_u
'

test_done
