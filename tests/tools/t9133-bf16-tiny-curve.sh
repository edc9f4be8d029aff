#!/bin/sh
test_description='300 iterations of the tiny recipe on fortunes: the bf16_mixed loss curve is within the fp32 run-to-run spread'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# recipes/tiny.yaml (the demo's model: 4 layers, hidden 256, GQA, RoPE, SwiGLU, tied) for
# its 300 iterations on the README's corpus (fortunes, a 4096-entry BPE trained on it),
# three times: fp32 and bf16_mixed with train.seed 1234, and fp32 with seed 1235. The
# tolerance is the fp32 run-to-run spread: on the curves smoothed over 20 iterations
# (a moving mean: one micro-batch's loss moves by more than either effect), from
# iteration 20 on, the largest |bf16 - fp32| must not exceed the largest |fp32 seed
# 1235 - fp32 seed 1234|, and the mean loss of the last 50 iterations must agree within
# 1%. bf16 must differ from fp32 at all (the runs are not the same computation).

iters=300

test_expect_success 'setup: fortunes, a 4096-entry BPE, token files' '
    cp "$TESTDATA/corpora/fortunes.jsonl" corpus.jsonl &&
    mb-preprocess --train-tokenizer 4096 --save-tokenizer tok.json --append-eod -w 2 \
        -o fortunes corpus.jsonl 2>/dev/null
'

tiny() {
    mb-pretrain --recipe tiny data.data_path=fortunes_text_document tokenizer.tokenizer_model=tok.json \
        train.train_iters=$iters train.eval_interval=0 logger.log_interval=1 "$@"
}

test_expect_success 'three runs of the tiny recipe: fp32, bf16_mixed, fp32 with another seed' '
    tiny 2>fp32.log & p1=$!
    tiny mixed_precision=bf16_mixed 2>bf16.log & p2=$!
    tiny train.seed=1235 2>seed.log & p3=$!
    wait $p1 && wait $p2 && wait $p3 &&
    grep "mixed_precision bf16_mixed" bf16.log &&
    for r in fp32 bf16 seed; do
        losses $r.log >$r.loss && test $(wc -l <$r.loss) -eq $iters || exit 1
    done
'

test_expect_success 'bf16 is within the fp32 run-to-run spread (smoothed), final loss within 1%' '
    "$PY" -c "
import sys
import numpy as np
def curve(name):
    return np.loadtxt(name + \".loss\")[:, 1]
f, b, s = curve(\"fp32\"), curve(\"bf16\"), curve(\"seed\")
w = 20
def smooth(x):
    return np.convolve(x, np.ones(w) / w, mode=\"valid\")
d_bf = np.abs(smooth(b) - smooth(f)).max()
d_seed = np.abs(smooth(s) - smooth(f)).max()
end_f, end_b = f[-50:].mean(), b[-50:].mean()
rel = abs(end_b - end_f) / end_f
print(f\"# loss {f[0]:.3f} -> {end_f:.3f} (fp32), {b[0]:.3f} -> {end_b:.3f} (bf16); \"
      f\"smoothed max |bf16 - fp32| {d_bf:.4f}, |fp32 seed 1235 - seed 1234| {d_seed:.4f}; \"
      f\"final rel {rel:.2e}; raw max |bf16 - fp32| {np.abs(b - f).max():.4f}\",
      file=open(\"figures\", \"w\"))
sys.exit(0 if d_bf <= d_seed and rel <= 0.01 and np.abs(b - f).max() > 0 and end_f < f[0] - 2 else 1)
"
'

cat figures
test_done
