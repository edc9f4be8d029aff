#!/bin/sh
test_description='mb-convert: every architecture HF -> h5 -> HF bit-exact, logits equal to transformers'
. "$(dirname "$0")/../lib/test-lib.sh"

# tests/oracle/hf_convert.py makes tiny randomly initialised models with transformers
# itself (save_pretrained, with a BPE tokenizer trained on the fortunes corpus); each goes
# to an mb checkpoint and back; ckpt_logits runs mb's model on the checkpoint and the
# oracle compares every tensor, file, config and the logits and loss with transformers.

models="llama llama_tied:bf16,shard=100KB mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2 llama_tied:fp16"

test_expect_success 'transformers makes the tiny models' '
    "$PY" "$ORACLE/hf_convert.py" make m "$TESTDATA/corpora/fortunes.jsonl" $models 2>err &&
    test -f m/tokens.npy && test -f m/llama_tied_bf16_shard100KB/model.safetensors.index.json
'

for spec in $models; do
    n=$(echo "$spec" | tr ":,=" "___" | sed "s/shard_/shard/")
    test_expect_success "$n: HF -> h5 -> HF, and mb logits" "
        mb-convert --from hf --to h5 m/$n ck_$n 2>err &&
        test -f ck_$n/iter_0000000.h5 && test \"\$(cat ck_$n/latest)\" = iter_0000000.h5 &&
        mb-convert --from h5 --to hf ck_$n back_$n 2>err &&
        ckpt_logits ck_$n m/tokens.npy dump_$n
    "
done

test_expect_success 'bf16 and fp16 inputs stay bf16 and fp16 in the checkpoint' '
    h5ls -v ck_llama_tied_bf16_shard100KB/iter_0000000.h5/model/decoder/final_layernorm/weight >ls &&
    grep "16-bit little-endian floating-point" ls &&
    "$PY" -c "
import h5py, sys
t = h5py.File(\"ck_llama_tied_fp16/iter_0000000.h5\")[\"/model/embedding/word_embeddings/weight\"]
assert t.dtype == \"float16\", t.dtype
t = h5py.File(\"ck_llama_tied_bf16_shard100KB/iter_0000000.h5\")[\"/model/embedding/word_embeddings/weight\"].id.get_type()
assert t.get_fields() == (15, 7, 8, 0, 7) and t.committed()
"
'

test_expect_success 'every tensor and file bit-identical, configs equivalent, logits and loss to 1e-4' '
    args= &&
    for spec in $models; do
        n=$(echo "$spec" | tr ":,=" "___" | sed "s/shard_/shard/") &&
        args="$args m/$n back_$n dump_$n" || exit 1
    done &&
    "$PY" "$ORACLE/hf_convert.py" check $args --files --tokens m/tokens.npy >out 2>err;
    rc=$?; grep -v "^Loading" out; test $rc = 0
'

# GPT-2 files on the hub name tensors without "transformer." (wte.weight, h.0.attn...);
# save_pretrained writes the prefix. Both convert, and each comes back as it was.
test_expect_success 'GPT-2 with hub-style names (no transformer. prefix) comes back byte-identical' '
    mkdir hub && cp m/gpt2/*.json hub/ &&
    "$PY" -c "
from safetensors.torch import load_file, save_file
sd = load_file(\"m/gpt2/model.safetensors\")
save_file({k.removeprefix(\"transformer.\"): v for k, v in sd.items()}, \"hub/model.safetensors\",
          metadata={\"format\": \"pt\"})
" &&
    ! grep -q "transformer\\." hub/model.safetensors &&
    mb-convert --from hf --to h5 hub hub.h5 2>err &&
    mb-convert --from h5 --to hf hub.h5 hub_back 2>err &&
    cmp hub/model.safetensors hub_back/model.safetensors &&
    mb-ckpt diff hub.h5 ck_gpt2 >diff.out
'

test_done
