#!/bin/sh
test_description='mb-convert: checkpoints without HF attributes (mb-pretrain, stripped) get a config.json transformers loads, with equal logits'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

models="llama llama_tied mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2"

test_expect_success 'every architecture: converted, HF attributes and files stripped' '
    "$PY" "$ORACLE/hf_convert.py" make m "$TESTDATA/corpora/fortunes.jsonl" $models 2>err &&
    for n in $models; do
        mb-convert --from hf --to h5 m/$n $n.h5 2>err || exit 1
    done &&
    "$PY" -c "
import h5py, sys
for n in sys.argv[1:]:
    with h5py.File(n + \".h5\", \"a\") as f:
        for k in (\"hf_config\", \"hf_architecture\", \"hf_metadata\"):
            del f.attrs[k]
        del f[\"/hf\"]
" $models
'

test_expect_success 'mb-pretrain: a tiny llama trained 2 iterations' '
    make_corpus && pretrain checkpoint.save=pt train.train_iters=2 scheduler.lr_warmup_iters=1 2>pt.log &&
    test -f pt/iter_0000002.h5
'

test_expect_success 'generated config.json: transformers loads it, logits and loss equal mb' '
    args= &&
    for n in $models pt; do
        src=$n.h5 && test $n = pt && src=pt
        mb-convert --from h5 --to hf $src gen_$n 2>err &&
        test -f gen_$n/config.json && test -f gen_$n/model.safetensors &&
        ckpt_logits $src m/tokens.npy dump_$n &&
        args="$args - gen_$n dump_$n" || exit 1
    done &&
    "$PY" "$ORACLE/hf_convert.py" check $args --tokens m/tokens.npy >out 2>err;
    rc=$?; grep -v "^Loading" out; test $rc = 0
'

test_expect_success 'the tokenizer mb-pretrain names goes along; transformers encodes with it as mb does' '
    cmp tok.json gen_pt/tokenizer.json &&
    "$PY" -c "
import sys, transformers as tf
t = tf.PreTrainedTokenizerFast(tokenizer_file=\"gen_pt/tokenizer.json\")
print(*t(\"Fortune favours the bold.\")[\"input_ids\"])
" >hf_ids &&
    echo "{\"text\": \"Fortune favours the bold.\"}" >one.jsonl &&
    mb-preprocess -t tok.json -o one one.jsonl 2>err &&
    "$PY" "$ORACLE/megatron_read.py" one_text_document --dump - 2>err | head -1 >mb_ids &&
    test -s hf_ids && cmp hf_ids mb_ids
'

test_expect_success 'an mb config that HF cannot express is refused, naming the field' '
    cp llama.h5 qk.h5 &&
    "$PY" -c "
import h5py, json
with h5py.File(\"qk.h5\", \"a\") as f:
    c = json.loads(f.attrs[\"model_config\"]); c[\"attn_logit_softcapping\"] = 30.0
    f.attrs[\"model_config\"] = json.dumps(c)
" &&
    test_expect_code 1 mb-convert --from h5 --to hf qk.h5 qkout 2>err &&
    grep "attn_logit_softcapping" err && test_path_is_missing qkout
'

test_done
