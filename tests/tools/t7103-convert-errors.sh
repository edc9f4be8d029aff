#!/bin/sh
test_description='mb-convert: --dtype casts, resharding and mpirun against transformers; errors leave nothing behind'
. "$(dirname "$0")/../lib/test-lib.sh"

test_expect_success 'transformers makes the models (fp32, and bf16 sharded at 50KB)' '
    "$PY" "$ORACLE/hf_convert.py" make m "$TESTDATA/corpora/fortunes.jsonl" llama llama:bf16,shard=50KB gemma3 2>err &&
    mb-convert --from hf --to h5 m/llama ck.h5 2>err
'

test_expect_success '--dtype bf16 --max-shard-size 50KB gives the files transformers saves' '
    mb-convert --from h5 --to hf --dtype bf16 --max-shard-size 50KB ck.h5 cast 2>err &&
    ls cast/model-0000*-of-0000*.safetensors >shards && test $(wc -l <shards) -gt 2 &&
    "$PY" "$ORACLE/hf_convert.py" check m/llama_bf16_shard50KB cast --files >out 2>err;
    rc=$?; grep -v "^Loading" out; test $rc = 0
'

test_expect_success '--dtype fp16 on the way in: fp16 datasets equal to torch casting' '
    mb-convert --from hf --to h5 --dtype fp16 m/llama ck16 2>err &&
    mb-convert --from h5 --to hf ck16 back16 2>err &&
    "$PY" "$ORACLE/hf_convert.py" check m/llama back16 --dtype float16 >out 2>err;
    rc=$?; grep -v "^Loading" out; test $rc = 0
'

test_expect_success 'mpirun -np 2 writes the same checkpoint as one process' '
    mb-convert --from hf --to h5 m/gemma3 one.h5 2>err &&
    $MPIRUN -np 2 mb-convert --from hf --to h5 m/gemma3 two.h5 2>err &&
    h5diff one.h5 two.h5 >diff; rc=$?; cat diff; test $rc = 0 &&
    mb-convert --from h5 --to hf two.h5 back2 2>err &&
    cmp m/gemma3/model.safetensors back2/model.safetensors
'

# broken copies of m/llama, each made by an h5py/safetensors edit
test_expect_success 'broken inputs' '
    "$PY" - <<-\PYEOF
	import json, os, shutil
	from safetensors.torch import load_file, save_file
	import torch
	def copy(name):
	    shutil.copytree("m/llama", name)
	    return name
	def edit_cfg(name, f):
	    p = os.path.join(copy(name), "config.json")
	    c = json.load(open(p)); f(c); json.dump(c, open(p, "w"))
	def edit_st(name, f):
	    p = os.path.join(copy(name), "model.safetensors")
	    t = load_file(p); f(t); save_file(t, p, metadata={"format": "pt"})
	edit_cfg("arch", lambda c: c.update(architectures=["BertForMaskedLM"]))
	edit_cfg("rope", lambda c: c.update(rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0}))
	edit_cfg("act", lambda c: c.update(hidden_act="relu"))
	edit_cfg("nosize", lambda c: c.pop("hidden_size"))
	edit_st("missing", lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
	edit_st("extra", lambda t: t.update({"model.layers.0.mlp.extra.weight": torch.zeros(3)}))
	edit_st("shape", lambda t: t.update({"model.norm.weight": torch.zeros(65)}))
	copy("trunc"); copy("badjson")
	with open("trunc/model.safetensors", "r+b") as f:
	    f.truncate(os.path.getsize("trunc/model.safetensors") - 100)
	with open("badjson/config.json", "w") as f:
	    f.write("{\"architectures\": [\"LlamaForCausalLM\"], ")
	PYEOF
'

while read -r dir want; do
    test_expect_success "$dir: exit 1 naming it ($want), nothing left behind" "
        test_expect_code 1 mb-convert --from hf --to h5 $dir out_$dir 2>err &&
        grep \"mb-convert: error: .*$want\" err &&
        test_path_is_missing out_$dir &&
        test_expect_code 1 mb-convert --from hf --to h5 $dir out_$dir.h5 2>err &&
        test_no_files 'out_$dir*'
    "
done <<EOF2
arch architectures.: .BertForMaskedLM. is not supported
rope rope_parameters.rope_type.: .yarn. is not supported
act hidden_act.: .relu. is not supported
nosize config field .hidden_size. is missing
missing missing tensor .model.layers.1.mlp.up_proj.weight.
extra extra tensor .model.layers.0.mlp.extra.weight.
shape tensor .model.norm.weight. has shape \\[65\\], the config says \\[64\\]
trunc trunc/model.safetensors
badjson badjson/config.json
EOF2

test_expect_success 'h5 -> hf errors: no checkpoint, a tensor missing; nothing left behind' '
    mkdir empty &&
    test_expect_code 1 mb-convert --from h5 --to hf empty outdir 2>err &&
    grep "error: empty: no checkpoint" err && test_path_is_missing outdir &&
    cp ck.h5 cut.h5 &&
    "$PY" -c "import h5py; f = h5py.File(\"cut.h5\", \"a\"); del f[\"/model/decoder/final_layernorm/weight\"]" &&
    test_expect_code 1 mb-convert --from h5 --to hf cut.h5 outdir 2>err &&
    grep "missing tensor .decoder.final_layernorm.weight." err && test_path_is_missing outdir
'

test_expect_success 'usage errors exit 2' '
    test_expect_code 2 mb-convert --from hf --to h5 m/llama 2>err &&
    test_expect_code 2 mb-convert --from hf --to hf m/llama x 2>err &&
    test_expect_code 2 mb-convert --from hf --to h5 --dtype fp8 m/llama x 2>err &&
    test_expect_code 2 mb-convert --from h5 --to hf --max-shard-size lots ck.h5 x 2>err &&
    mb-convert --help | grep -e "--max-shard-size" && mb-convert --version
'

test_done
