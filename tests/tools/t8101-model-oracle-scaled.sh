#!/bin/sh
test_description='mb models with large weights (activations in the hundreds) match transformers'
. "$(dirname "$0")/../lib/test-lib.sh"

# The model oracle of t2101 with each family's init_method_std multiplied (30x, and 40x
# and 50x for Gemma 2/3 and GPT-2, whose norms and soft-caps keep activations smaller),
# so transformers' own hidden states reach 100+ and its MLP pre-activations 20+ (GELU-tanh
# overflowed past 9.7 before): logits, loss and every gradient to 1e-4 norm-wise, as at
# the ordinary scale. Then a GPT-2 and a Gemma 2 checkpoint with weights of std 1:
# ckpt_logits (mb's model on a checkpoint) against transformers on the HF export, and
# mb-generate against transformers' generate. Before, both gave NaN logits, and
# mb-generate token 0 on every step.

models="$MB_ROOT/tests/data/models"
scaled="llama:30 mistral:30 qwen2:30 qwen3:30 gemma:30 gemma2:40 gemma3:40 gpt2:50"

test_expect_success 'setup: the scaled configs, and tokens for ckpt_logits' '
    "$PY" -c "
import json, sys
import numpy as np
for fm in sys.argv[2:]:
    f, m = fm.split(\":\")
    c = json.load(open(f\"{sys.argv[1]}/{f}.json\"))
    c[\"init_method_std\"] *= float(m)
    json.dump(c, open(f + \".json\", \"w\"))
np.save(\"tokens.npy\", ((np.arange(40) * 37 + 11) % 320).astype(np.int32).reshape(1, 40))
" "$models" $scaled
'

for fm in $scaled; do
    f=${fm%:*} m=${fm#*:}
    test_expect_success "$f x$m: model_dump of the scaled config" "
        model_dump $f.json dump_$f --batch 2 --seq 16 --seed 7 2>err &&
        test -f dump_$f/loss.npy
    "
done

test_expect_success 'logits, loss and every gradient match transformers at that scale' '
    dumps= &&
    for fm in $scaled; do dumps="$dumps dump_${fm%:*}"; done &&
    "$PY" "$ORACLE/hf_model.py" compare $dumps --min-hidden 100 --min-preact 20 >out;
    rc=$?;
    cat out;
    test $rc = 0 && test $(grep -c "^ok.*largest |hidden state|" out) = 8
'

test_expect_success 'setup: GPT-2 and Gemma 2 checkpoints with weights of std 1, HF exports' '
    ckpt_init "$models/gpt2.json" ck_gpt2 --std 1.0 --seed 3 &&
    ckpt_init "$models/gemma2.json" ck_gemma2 --std 1.0 --seed 3 &&
    mb-convert --from h5 --to hf ck_gpt2 hf_gpt2 2>err &&
    mb-convert --from h5 --to hf ck_gemma2 hf_gemma2 2>err
'

# GPT-2's logits reach a few hundred: 5e-3 is 1e-5 of that (the normwise error is printed);
# a NaN or inf logit fails the max-difference check
test_expect_success 'ckpt_logits: mb logits and loss = transformers' '
    ckpt_logits ck_gpt2 tokens.npy dump_ck_gpt2 &&
    ckpt_logits ck_gemma2 tokens.npy dump_ck_gemma2 &&
    "$PY" "$ORACLE/hf_convert.py" check - hf_gpt2 dump_ck_gpt2 - hf_gemma2 dump_ck_gemma2 \
        --tokens tokens.npy --tol 5e-3 >out 2>err;
    rc=$?; cat out; test $rc = 0
'

test_expect_success 'mb-generate --greedy = transformers generate on both' '
    prompt="1 2 3 4 5 6 7 8 9 10" &&
    "$PY" "$ORACLE/hf_generate.py" generate ck_gpt2/iter_0000000.h5 \
        ck_gemma2/iter_0000000.h5 --prompt-ids "$prompt" --max-new-tokens 24 >want 2>err &&
    for f in gpt2 gemma2; do
        mb-generate ck_$f --prompt-ids "$prompt" -n 24 --greedy --ids --ignore-eos >>got 2>err ||
            exit 1
    done &&
    cat got &&
    diff want got &&
    ! grep -x "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0" got
'

test_done
