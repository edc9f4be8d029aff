#!/bin/sh
# tests/fuzz/make-corpus.sh BUILD_FUZZ - the seed corpora of the fuzz targets, made from
# the test suite's own files into BUILD_FUZZ/corpus-NAME/ (nothing binary is committed):
#
#   safetensors  files written by the reference safetensors library (oracle venv)
#   tokenizer    the test tokenizers (scripts/fetch-test-data.sh) cut to 300 tokens
#   jsonl        lines of the test corpora, plain and gzip
#   idx          .idx files mb-preprocess writes from those corpora (u16 and i32 ids)
#   recipe       recipes/*.yaml and the test recipe, with and without overrides
#   ckpt         checkpoints mb-pretrain saves of a tiny model (fp32 + Adam, bf16)
#   jinja        the chat templates of tests/data/chat (the .jinja files and the 45 of
#                hfjs-e2e.jsonl)
#
# and the inputs that once broke a target, tests/fuzz/regress/NAME/*, into corpus-NAME.
#
# Uses the gcc build (bin/, build/tests/helpers) and the fetched test data. Idempotent:
# a corpus folder that exists is kept (libFuzzer adds what it finds to it).
set -e
out=${1:?usage: make-corpus.sh BUILD_FUZZ}
root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${MB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mb}
py="$cache/venv/bin/python"
testdata="$cache/testdata"
bin="$root/bin"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mb-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

fresh() { # fresh NAME: 0 (make it) if corpus-NAME does not exist yet
    [ -d "$out/corpus-$1" ] && return 1
    mkdir -p "$out/corpus-$1.new"
    return 0
}
done_corpus() { mv "$out/corpus-$1.new" "$out/corpus-$1"; echo "fuzz: corpus-$1: $(ls "$out/corpus-$1" | wc -l) seeds"; }

if fresh safetensors; then
    "$py" - "$out/corpus-safetensors.new" <<'PY'
import sys, numpy as np
from safetensors.numpy import save_file
d = sys.argv[1]
save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, f"{d}/f32.safetensors")
save_file({"a": np.ones((2, 2), np.float16), "b": np.zeros((3,), np.int64),
           "c": np.array(7, np.int32), "e": np.zeros((0, 4), np.float32)},
          f"{d}/mixed.safetensors", metadata={"format": "pt", "note": "seed"})
save_file({"model.embed_tokens.weight": np.ones((4, 2), np.uint8),
           "lm_head.weight": np.ones((4, 2), np.int8), "x": np.ones((1, 1, 1, 2), np.float64),
           "y": np.ones((2,), np.bool_), "z": np.ones((2,), np.uint16)}, f"{d}/many.safetensors")
PY
    done_corpus safetensors
fi

if fresh tokenizer; then
    for dir in "$testdata"/tokenizers/*/; do
        name=$(basename "$dir")
        "$py" - "$dir/tokenizer.json" "$out/corpus-tokenizer.new/$name.json" <<'PY'
import json, sys
tok = json.load(open(sys.argv[1], encoding="utf-8"))
model = tok["model"]
keep = 300
vocab = model.get("vocab")
if isinstance(vocab, dict):
    kept = {k: v for k, v in vocab.items() if v < keep}
    for a in tok.get("added_tokens", []):
        kept[a["content"]] = a["id"]
    model["vocab"] = kept
    merges = []
    for m in model.get("merges", []):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in kept and b in kept and a + b in kept:
            merges.append(m)
    model["merges"] = merges
json.dump(tok, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
PY
    done
    done_corpus tokenizer
fi

# the first records of a corpus, texts cut to N characters (still valid JSON Lines)
records() { # records FILE COUNT CHARS
    "$py" - "$@" <<'PY'
import json, sys
path, count, chars = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, encoding="utf-8", errors="surrogateescape") as f:
    for i, line in enumerate(f):
        if i >= count:
            break
        rec = json.loads(line)
        for k, v in rec.items():
            if isinstance(v, str):
                rec[k] = v[:chars]
            elif isinstance(v, list):
                rec[k] = [s[:chars] for s in v if isinstance(s, str)][:4]
        print(json.dumps(rec, ensure_ascii=(i % 2 == 1)))
PY
}

if fresh jsonl; then
    for f in "$testdata"/corpora/*.jsonl; do
        name=$(basename "$f" .jsonl)
        records "$f" 3 500 >"$out/corpus-jsonl.new/$name.jsonl"
    done
    gzip -c "$out/corpus-jsonl.new/wiki.jsonl" >"$out/corpus-jsonl.new/wiki.jsonl.gz"
    printf '{"text": ["one", "two"], "title": "t"}\n{"text": "\\u00e9\\ud83d\\ude00 \\u0000"}\n' \
        >"$out/corpus-jsonl.new/forms.jsonl"
    done_corpus jsonl
fi

if fresh idx; then
    records "$testdata/corpora/wiki.jsonl" 20 300 >"$tmp/small.jsonl"
    "$bin/mb-preprocess" -i "$tmp/small.jsonl" -o "$tmp/bytes" -w 1 --append-eod 2>/dev/null
    "$bin/mb-preprocess" -i "$tmp/small.jsonl" -o "$tmp/llama3" -w 1 \
        -t "$testdata/tokenizers/llama3" 2>/dev/null
    for p in bytes llama3; do
        idx="$tmp/${p}_text_document.idx"
        bin_size=$(wc -c <"$tmp/${p}_text_document.bin")
        # 4 bytes of .bin size (little-endian), then the .idx (see fuzz_idx.c)
        "$py" -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<I", int(sys.argv[1])))' \
            "$bin_size" >"$out/corpus-idx.new/$p"
        cat "$idx" >>"$out/corpus-idx.new/$p"
    done
    done_corpus idx
fi

if fresh recipe; then
    for f in "$root"/recipes/*.yaml "$root"/tests/data/recipes/small.yaml; do
        name=$(basename "$f" .yaml)
        cp "$f" "$out/corpus-recipe.new/$name.yaml"
        { cat "$f"; printf '\000train.train_iters=5\000model.num_layers=2\000'
          printf 'data.data_path=0.3 a 0.7 b\000scheduler.lr_decay_style=WSD'; } \
            >"$out/corpus-recipe.new/$name-overrides"
    done
    done_corpus recipe
fi

if fresh ckpt; then
    tiny="model.num_layers=1 model.hidden_size=8 model.ffn_hidden_size=8
          model.num_attention_heads=2 model.num_query_groups=1 model.kv_channels=4
          model.vocab_size=16 model.make_vocab_size_divisible_by=1 data.mock=true
          data.seq_length=8 model.max_position_embeddings=8 train.train_iters=2
          scheduler.lr_warmup_iters=0 train.eval_iters=0"
    # shellcheck disable=SC2086
    (cd "$tmp" && "$bin/mb-pretrain" --recipe "$root/tests/data/recipes/small.yaml" $tiny \
        checkpoint.save=fp32 >/dev/null 2>&1 &&
     "$bin/mb-pretrain" --recipe "$root/tests/data/recipes/small.yaml" $tiny \
        checkpoint.save=bf16 checkpoint.ckpt_dtype=bf16 checkpoint.save_optim=false \
        model.family=gpt2 model.normalization=LayerNorm model.activation=gelu \
        model.position_embedding_type=learned_absolute model.add_bias_linear=true \
        >/dev/null 2>&1)
    cp "$tmp"/fp32/iter_*.h5 "$out/corpus-ckpt.new/fp32.h5"
    cp "$tmp"/bf16/iter_*.h5 "$out/corpus-ckpt.new/bf16.h5"
    done_corpus ckpt
fi

if fresh jinja; then
    cp "$root"/tests/data/chat/*.jinja "$out/corpus-jinja.new/"
    "$py" - "$root/tests/data/chat/hfjs-e2e.jsonl" "$out/corpus-jinja.new" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1], encoding="utf-8")):
    open(f"{sys.argv[2]}/hfjs{i:02d}.jinja", "w", encoding="utf-8").write(json.loads(line)["template"])
PY
    done_corpus jinja
fi

# inputs that once crashed a target (tests/fuzz/regress/NAME/) always run again
for d in "$root"/tests/fuzz/regress/*/; do
    [ -d "$d" ] && [ -d "$out/corpus-$(basename "$d")" ] && cp "$d"* "$out/corpus-$(basename "$d")/"
done
exit 0
