#!/bin/sh
test_description='the transformers model oracle agrees with an independent torch model and is live'
. "$(dirname "$0")/../lib/test-lib.sh"

# tests/oracle/hf_model.py compare is the reference for mb's model (t2101). Here it checks
# itself: for every test config, a second implementation of the mb config's semantics
# (plain torch on the Megatron-layout tensors) must match HF transformers after the name
# and layout mapping, and compare must reject dumps with a perturbed logit, loss,
# gradient, swapped QKV heads, or numbers made with a changed config value (rope base
# and scaling, sliding window and its pattern, soft-capping, attention scale, embedding
# scaling): each feature the test configs turn on changes the numbers by more than the
# tolerance.

models="$MB_ROOT/tests/data/models"

test_expect_success 'every family has a test config' '
    for f in llama mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2; do
        test -f "$models/$f.json" || { echo "missing $f.json"; exit 1; }
    done
'

test_expect_success 'torch reference matches transformers; perturbations are caught' '
    "$PY" "$ORACLE/hf_model.py" selftest "$models"/*.json >out &&
    cat out &&
    ! grep "^not ok" out &&
    test $(grep -c "^ok" out) -ge 60
'

test_expect_success 'compare: a dump missing a gradient is an input error (exit 2)' '
    "$PY" "$ORACLE/hf_model.py" dump "$models/qwen3.json" d &&
    rm d/grads/decoder.layers.mlp.linear_fc2.weight.npy &&
    test_expect_code 2 "$PY" "$ORACLE/hf_model.py" compare d >out &&
    grep "missing.*linear_fc2.weight" out
'

test_expect_success 'compare: an unsupported config is refused (exit 2)' '
    "$PY" "$ORACLE/hf_model.py" dump "$models/llama.json" e &&
    sed "s/\"attn_logit_softcapping\": 0.0/\"attn_logit_softcapping\": 5.0/" e/config.json >c &&
    mv c e/config.json &&
    test_expect_code 2 "$PY" "$ORACLE/hf_model.py" compare e >out &&
    grep "llama: attn_logit_softcapping is not supported" out
'

test_done
