#!/bin/sh
test_description='mb-generate chooses no token from non-finite logits: exit 1 naming the position'
. "$(dirname "$0")/../lib/test-lib.sh"

# A GPT-2 test checkpoint with one NaN or inf written into it by h5py: in the learned
# position embedding of position 5 (the logits of positions 0-4 stay finite, those of 5
# are NaN), in the word embedding of token 2 (the prompt's own logits are NaN), or in the
# final LayerNorm's bias (every logit +-inf). Before, greedy took the argmax of NaNs
# (token 0) and printed it on every step.

models="$MB_ROOT/tests/data/models"

poison() { # CKPT DATASET ROW VALUE: element [ROW, 7] (or [7] of a vector) = VALUE
    "$PY" -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r+') as f:
    d = f[sys.argv[2]]
    d[(int(sys.argv[3]), 7) if d.ndim == 2 else 7] = float(sys.argv[4])
" "$1/iter_0000000.h5" "/model/$2" "$3" "$4"
}

test_expect_success 'setup: GPT-2 checkpoints with a NaN or inf weight' '
    ckpt_init "$models/gpt2.json" good --std 0.3 --seed 3 &&
    cp -r good pos5 && poison pos5 embedding/position_embeddings/weight 5 nan &&
    cp -r good tok2 && poison tok2 embedding/word_embeddings/weight 2 inf &&
    cp -r good bias && poison bias decoder/final_layernorm/bias 0 inf
'

test_expect_success 'the unharmed checkpoint generates 10 tokens' '
    mb-generate good --prompt-ids "1 2 3" -n 10 --greedy --ids --ignore-eos >out 2>err &&
    test $(wc -w <out) = 10
'

test_expect_success 'greedy: tokens from positions 2-4, then an error at position 5 (exit 1)' '
    mb-generate good --prompt-ids "1 2 3" -n 3 --greedy --ids --ignore-eos >want 2>err &&
    test_expect_code 1 mb-generate pos5 --prompt-ids "1 2 3" -n 10 --greedy --ids \
        --ignore-eos >out 2>err &&
    cat err &&
    msg="non-finite logits (NaN); no token is chosen from them" &&
    grep -x "mb-generate: error: position 5: $msg" err &&
    test "$(cat out)" = "$(cat want)"
'

test_expect_success 'sampling and text output stop at the same place' '
    test_expect_code 1 mb-generate pos5 --prompt-ids "1 2 3" -n 10 --temperature 0.8 --seed 1 \
        --tokenizer bytes --ignore-eos >out 2>err &&
    grep "error: position 5: non-finite logits (NaN)" err
'

test_expect_success 'an inf weight under the prompt: the error names the last prompt position' '
    test_expect_code 1 mb-generate tok2 --prompt-ids "1 2 3" -n 10 --greedy --ids >out 2>err &&
    msg="non-finite logits (NaN); no token is chosen from them" &&
    grep -x "mb-generate: error: position 2: $msg" err &&
    test ! -s out
'

test_expect_success 'an inf bias before the output layer: +-inf logits are refused too' '
    test_expect_code 1 mb-generate bias --prompt-ids "1 2 3" -n 10 --greedy --ids >out 2>err &&
    msg="non-finite logits (inf, -inf); no token is chosen from them" &&
    grep -x "mb-generate: error: position 2: $msg" err
'

test_done
