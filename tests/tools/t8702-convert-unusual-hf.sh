#!/bin/sh
test_description='legal but unusual HF files (tied lm_head kept, mixed dtypes), mb-generate on an HF directory, GGUF refused'
. "$(dirname "$0")/../lib/test-lib.sh"

# tests/oracle/hf_convert.py make writes the models with transformers: "head" keeps
# lm_head.weight (equal to the embedding) in a tied model's safetensors, as files saved
# with safetensors' save_file do; "badhead" makes it differ; "mixed" keeps the 1-D
# tensors (norms, biases) fp32 beside bf16/fp16 matrices.

good="llama_tied_head_scale4 gpt2_head_scale4 llama_bf16_mixed_scale4 qwen3_fp16_mixed_scale4"

test_expect_success 'transformers makes the models' '
    "$PY" "$ORACLE/hf_convert.py" make m "$TESTDATA/corpora/fortunes.jsonl" \
        llama_tied:head,scale=4 gpt2:head,scale=4 llama:bf16,mixed,scale=4 \
        qwen3:fp16,mixed,scale=4 llama_tied:badhead 2>err &&
    "$PY" - <<-\EOF
	import json, struct
	def header(d):
	    raw = open(d + "/model.safetensors", "rb").read()
	    return json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
	for d in ("m/llama_tied_head_scale4", "m/gpt2_head_scale4"):
	    assert "lm_head.weight" in header(d), d
	for d, lo in (("m/llama_bf16_mixed_scale4", "BF16"), ("m/qwen3_fp16_mixed_scale4", "F16")):
	    types = {k: v["dtype"] for k, v in header(d).items() if k != "__metadata__"}
	    assert types["model.norm.weight"] == "F32" and types["model.embed_tokens.weight"] == lo, types
	# one part of a fused matrix in another type than the rest: refused
	import os, shutil, numpy as np
	from safetensors.numpy import load_file, save_file
	shutil.copytree("m/qwen3_fp16_mixed_scale4", "m/partmix")
	sd = load_file("m/partmix/model.safetensors")
	sd["model.layers.0.self_attn.k_proj.weight"] = sd["model.layers.0.self_attn.k_proj.weight"].astype(np.float32)
	save_file(sd, "m/partmix/model.safetensors", metadata={"format": "pt"})
	EOF
'

for n in $good; do
    test_expect_success "$n: HF -> h5 -> HF gives every file back byte for byte" "
        mb-convert --from hf --to h5 m/$n ck_$n 2>err &&
        mb-convert --from h5 --to hf ck_$n back_$n 2>err &&
        for f in \$(ls -A m/$n); do cmp m/$n/\$f back_$n/\$f || exit 1; done &&
        test \"\$(ls -A m/$n)\" = \"\$(ls -A back_$n)\" &&
        ckpt_logits ck_$n m/tokens.npy dump_$n
    "
done

test_expect_success 'the kept lm_head is recorded, not stored twice; mixed types stay per tensor' '
    "$PY" - <<-\EOF
	import h5py
	f = h5py.File("ck_llama_tied_head_scale4/iter_0000000.h5")
	assert f.attrs["hf_tied_head"] in (b"lm_head.weight", "lm_head.weight"), f.attrs["hf_tied_head"]
	assert "output_layer" not in f["model"], list(f["model"])
	f = h5py.File("ck_llama_bf16_mixed_scale4/iter_0000000.h5")
	m = f["model"]
	assert m["decoder/final_layernorm/weight"].dtype == "float32"
	assert m["decoder/layers/self_attention/linear_qkv/layer_norm_weight"].dtype == "float32"
	assert m["embedding/word_embeddings/weight"].id.get_type().get_size() == 2
	assert m["decoder/layers/mlp/linear_fc1/weight"].id.get_type().get_size() == 2
	EOF
'

test_expect_success 'transformers: the tensors and files equal, mb logits equal its fp32 logits' '
    args= &&
    for n in $good; do args="$args m/$n back_$n dump_$n"; done &&
    "$PY" "$ORACLE/hf_convert.py" check $args --files --tokens m/tokens.npy >out 2>err;
    rc=$?; grep -v "^Loading" out; test $rc = 0
'

test_expect_success 'a tied model whose lm_head.weight differs from the embedding: an error naming it (mb-ckpt verify too)' '
    test_expect_code 1 mb-convert --from hf --to h5 m/llama_tied_badhead ck_bad 2>err &&
    grep "mb-convert: error: m/llama_tied_badhead: tensor .lm_head.weight. differs from .model.embed_tokens.weight., but config.json ties them" err &&
    test_path_is_missing ck_bad &&
    mb-ckpt verify m/llama_tied_head_scale4 >out 2>err &&
    test_expect_code 1 mb-ckpt verify m/llama_tied_badhead >out 2>err &&
    grep "lm_head.weight: .*tensor .lm_head.weight. differs from .model.embed_tokens.weight." out
'

test_expect_success 'q_proj fp16 beside k_proj fp32 (one fused matrix): an error naming the tensor' '
    test_expect_code 1 mb-convert --from hf --to h5 m/partmix ck_pm 2>err &&
    grep "mb-convert: error: m/partmix: tensor .model.layers.0.self_attn.k_proj.weight. is F32, the others that make up decoder.layers.self_attention.linear_qkv.weight are F16" err &&
    test_path_is_missing ck_pm && test_expect_code 1 mb-generate m/partmix -n 1 --prompt-ids 1 --ids 2>err &&
    grep "mb-generate: error: m/partmix: tensor .model.layers.0.self_attn.k_proj.weight. is F32" err
'

# mb-generate reads an HF directory through the bridge, in memory: the same tokens as on
# the converted checkpoint, and text through the directory's own tokenizer
for n in $good; do
    test_expect_success "$n: mb-generate on the HF directory equals it on the checkpoint" "
        ids=\$(\"\$PY\" -c 'import numpy; print(*numpy.load(\"m/tokens.npy\")[0, :10])') &&
        mb-generate m/$n --prompt-ids \"\$ids\" -n 24 --ids --ignore-eos >got 2>err &&
        mb-generate ck_$n --prompt-ids \"\$ids\" -n 24 --ids --ignore-eos >want 2>err &&
        test \$(wc -w <got) = 24 && cmp got want &&
        mb-generate m/$n -p 'A fortune' -n 12 --ignore-eos >got 2>err &&
        mb-generate ck_$n -t m/$n -p 'A fortune' -n 12 --ignore-eos >want 2>err &&
        test -s got && cmp got want
    "
done

test_expect_success 'a directory with only a GGUF file: not supported, the file named, exit 1' '
    mkdir gg && printf "GGUF\003\000\000\000" >gg/tinyllama-q4_k_m.gguf &&
    test_expect_code 1 mb-convert --from hf --to h5 gg out.h5 2>err &&
    grep "mb-convert: error: gg/tinyllama-q4_k_m.gguf: GGUF files are not supported" err &&
    test_path_is_missing out.h5 &&
    test_expect_code 1 mb-convert --from hf --to h5 gg/tinyllama-q4_k_m.gguf out.h5 2>err &&
    grep "gg/tinyllama-q4_k_m.gguf: GGUF files are not supported" err &&
    test_expect_code 1 mb-generate gg -p hi 2>err &&
    grep "mb-generate: error: gg/tinyllama-q4_k_m.gguf: GGUF files are not supported" err
'

test_done
