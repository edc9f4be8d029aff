#!/bin/sh
test_description='mb-ckpt info and verify on HuggingFace directories made by transformers, and on their mb conversions'
. "$(dirname "$0")/../lib/test-lib.sh"

# hf_convert.py makes tiny randomly initialised models with transformers itself
# (save_pretrained): GPT-2 (Conv1D, biases, the transformer. prefix), a tied Llama in bf16
# sharded with an index, Qwen3 (q/k norms). ckpt_tool_check.py reads them with the
# safetensors package and torch, and damages copies with safetensors' own writer.
CHECK="$ORACLE/ckpt_tool_check.py"
L=m/llama_tied_bf16_shard100KB

test_expect_success 'setup: transformers makes the models' '
    "$PY" "$ORACLE/hf_convert.py" make m "$TESTDATA/corpora/fortunes.jsonl" \
        gpt2 llama_tied:bf16,shard=100KB qwen3 2>err &&
    test -f $L/model.safetensors.index.json
'

test_expect_success 'info: architecture, family, shards, tensors as safetensors reads them' '
    mb-ckpt info $L >info &&
    grep "^format: huggingface safetensors, 2 files with index\$" info &&
    grep "^architecture: LlamaForCausalLM\$" info &&
    grep "^family: llama\$" info &&
    grep "^optimizer_state: absent\$" info &&
    grep "^  model.embed_tokens.weight BF16 \[512, 64\] 65536 model-00001-of-00002.safetensors\$" info &&
    for d in gpt2 llama_tied_bf16_shard100KB qwen3; do
        mb-ckpt info --json m/$d >$d.json || exit 1
    done &&
    "$PY" "$CHECK" hfinfo m/gpt2 gpt2.json $L llama_tied_bf16_shard100KB.json m/qwen3 qwen3.json &&
    grep "\"architecture\": \"GPT2LMHeadModel\"" gpt2.json
'

test_expect_success 'verify: the three directories; checksums as tensorboard computes them' '
    for d in gpt2 llama_tied_bf16_shard100KB qwen3; do
        mb-ckpt verify m/$d --write-checksums $d.crc >out &&
        grep "^verified: m/$d: " out &&
        mb-ckpt verify m/$d --checksums $d.crc >out &&
        grep "checksums match" out || exit 1
    done &&
    "$PY" "$CHECK" hfchecksums m/gpt2 gpt2.crc $L llama_tied_bf16_shard100KB.crc \
        m/qwen3 qwen3.crc &&
    test_expect_code 1 "$PY" "$CHECK" hfchecksums m/qwen3 gpt2.crc
'

test_expect_success 'verify: a NaN, a missing, a reshaped and an extra tensor in a shard' '
    cp -r $L bad &&
    f=model-00002-of-00002.safetensors &&
    "$PY" "$CHECK" hfedit bad $f nan:model.layers.1.mlp.up_proj.weight:70 \
        drop:model.norm.weight reshape:model.layers.1.self_attn.k_proj.weight \
        extra:model.layers.0.mystery &&
    test_expect_code 1 mb-ckpt verify bad --checksums llama_tied_bf16_shard100KB.crc >out 2>err &&
    grep "^problem: model.layers.1.mlp.up_proj.weight: 1 non-finite values; the first is nan at index \[1, 6\] (flat 70)\$" out &&
    grep "^problem: model.norm.weight: missing (a LlamaForCausalLM with this config.json has it, \[64\])\$" out &&
    grep "^problem: model.layers.1.self_attn.k_proj.weight: shape \[31, 64\], expected \[32, 64\]" out &&
    grep "^problem: model.layers.0.mystery: unexpected tensor" out &&
    grep "^problem: model.layers.1.mlp.up_proj.weight: checksum " out &&
    grep "^problem: model.norm.weight: listed in the checksum file but missing\$" out &&
    grep "^mb-ckpt: error: bad: .* problems found\$" err
'

test_expect_success 'verify: a truncated safetensors file and an unknown architecture' '
    cp -r m/qwen3 cut &&
    head -c 5000 m/qwen3/model.safetensors >cut/model.safetensors &&
    test_expect_code 1 mb-ckpt verify cut >out 2>err &&
    grep "^problem: cut/model.safetensors: " out &&
    test_expect_code 1 mb-ckpt info cut 2>err &&
    grep "^mb-ckpt: error: cut/model.safetensors: " err &&
    cp -r m/qwen3 odd &&
    sed "s/Qwen3ForCausalLM/FancyForCausalLM/" m/qwen3/config.json >odd/config.json &&
    test_expect_code 1 mb-ckpt verify odd >out &&
    grep "^problem: odd: config.json: .*FancyForCausalLM" out &&
    mb-ckpt info odd >info &&
    grep "^architecture: FancyForCausalLM\$" info &&
    grep "^model_config: - (" info
'

test_expect_success 'mb-convert output: info names the HF architecture; verify passes' '
    mb-convert --from hf --to h5 m/gpt2 ck 2>err &&
    mb-ckpt info ck >info &&
    grep "^architecture: GPT2LMHeadModel\$" info &&
    grep "^family: gpt2\$" info &&
    grep "^iteration: 0\$" info &&
    grep "^parameters: 141056\$" info &&
    mb-ckpt info m/gpt2 >hinfo &&
    grep "^parameters: 141056\$" hinfo &&
    mb-ckpt verify ck >out &&
    mb-ckpt info --json ck >ck.json &&
    "$PY" "$CHECK" info ck/iter_0000000.h5 ck.json
'

test_done
