#!/bin/sh
test_description='mb-generate sampling: seeds, top-k 1 = greedy, and the distribution of HF logits warpers'
. "$(dirname "$0")/../lib/test-lib.sh"

# The distribution check: the next-token logits of a prompt (transformers, on the
# weights of a ckpt_init checkpoint) go through HF's own TemperatureLogitsWarper,
# TopKLogitsWarper and TopPLogitsWarper (tests/oracle/hf_generate.py probs); mb's sampler
# (nn/sample.c, through the sample_counts helper) draws the first token for 20000 seeds
# from the same logits. A token of probability 0 must never be drawn, and Pearson's
# chi-square must stay under its 0.999 quantile; the same counts against a different
# filter must fail, so the bound is one a wrong filter cannot pass.

models="$MB_ROOT/tests/data/models"
prompt="5 6 7"

test_expect_success 'setup: a checkpoint, its logits and HF-filtered distributions' '
    ckpt_init "$models/qwen3.json" ck --std 0.3 --seed 9 &&
    "$PY" "$ORACLE/hf_generate.py" probs ck/iter_0000000.h5 --prompt-ids "$prompt" \
        --logits-out logits \
        --case p_t07 0.7 0 1 --case p_k20 1 20 1 --case p_p08 1 0 0.8 \
        --case p_all 1.3 50 0.9 --case p_k21 1 21 1 --case p_p07 1 0 0.7 2>err &&
    test $(wc -l <logits) = 320
'

for c in "t07:--temperature 0.7" "k20:--top-k 20" "p08:--top-p 0.8" \
         "all:--temperature 1.3 --top-k 50 --top-p 0.9"; do
    name=${c%%:*} opts=${c#*:}
    test_expect_success "$opts: 20000 first tokens follow HF's filtered softmax" "
        sample_counts logits 20000 $opts >c_$name &&
        \"\$PY\" \"\$ORACLE/hf_generate.py\" chi2 c_$name p_$name
    "
done

test_expect_success 'the check fails for a wrong filter (top-k 20 counts vs top-k 21; top-p 0.8 vs 0.7)' '
    test_expect_code 1 "$PY" "$ORACLE/hf_generate.py" chi2 c_k20 p_k21 &&
    test_expect_code 1 "$PY" "$ORACLE/hf_generate.py" chi2 c_p08 p_p07 &&
    test_expect_code 1 "$PY" "$ORACLE/hf_generate.py" chi2 c_t07 p_k20
'

test_expect_success 'mb-generate: 25 seeds never draw a token top-k 20 removes' '
    for s in $(seq 1 25); do
        mb-generate ck --prompt-ids "$prompt" -n 1 --ids --top-k 20 --seed $s 2>/dev/null ||
            exit 1
    done >drawn &&
    "$PY" -c "
import sys
p = [float(x) for x in open(\"p_k20\")]
d = [int(x) for x in open(\"drawn\")]
assert len(d) == 25 and all(p[t] > 0 for t in d), d
assert len(set(d)) > 3, d
"
'

test_expect_success 'the same seed gives the same tokens; another seed other tokens' '
    mb-generate ck --prompt-ids "$prompt" -n 24 --ids --ignore-eos --temperature 0.9 --seed 5 >a &&
    mb-generate ck --prompt-ids "$prompt" -n 24 --ids --ignore-eos --temperature 0.9 --seed 5 >b &&
    mb-generate ck --prompt-ids "$prompt" -n 24 --ids --ignore-eos --temperature 0.9 --seed 6 >c &&
    cmp a b && ! cmp -s a c && test $(wc -w <a) = 24
'

test_expect_success '--top-k 1 is greedy; so is no sampling option' '
    mb-generate ck --prompt-ids "$prompt" -n 24 --ids --ignore-eos --greedy >g &&
    mb-generate ck --prompt-ids "$prompt" -n 24 --ids --ignore-eos >d &&
    mb-generate ck --prompt-ids "$prompt" -n 24 --ids --ignore-eos --top-k 1 --seed 3 >k1 &&
    mb-generate ck --prompt-ids "$prompt" -n 24 --ids --ignore-eos --top-k 1 --seed 4 \
        --temperature 2 >k1b &&
    cmp g d && cmp g k1 && cmp g k1b
'

test_done
