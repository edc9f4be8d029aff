#!/bin/sh
test_description='core/config + train/schema: every recipe loads, prints and reloads; errors name the place'
. "$(dirname "$0")/../lib/test-lib.sh"

export MB_RECIPE_DIR="$MB_ROOT/recipes"

test_expect_success 'every recipe loads with a valid LR schedule, and its printout reloads' '
    n=0 &&
    for r in "$MB_RECIPE_DIR"/*.yaml; do
        name=$(basename "$r" .yaml) &&
        cfg_check --sched "$name" >"$name.printed.yaml" &&
        cfg_check --json "$name" >"$name.json" &&
        cfg_check --json "./$name.printed.yaml" >"$name.reloaded.json" &&
        cmp "$name.json" "$name.reloaded.json" &&
        n=$((n + 1)) || return 1
    done &&
    test $n -ge 9
'

test_expect_success 'recipes name their architecture in a comment header' '
    for r in "$MB_RECIPE_DIR"/*.yaml; do
        head -n 1 "$r" | grep -q "^# $(basename "$r") - " || { echo "no header: $r"; return 1; }
    done
'

# Architecture keys of a recipe against the HF config a transformers class defaults to
# (GPT2Config() is gpt2 124M, Gemma2Config() is gemma-2-2b) or a real tokenizer's size.
test_expect_success 'setup: HF comparison script' '
    cat >hf_check.py <<-\EOF
	import json, sys
	import transformers
	kind, path = sys.argv[1], sys.argv[2]
	m = json.load(open(path))["model"]
	if kind == "gpt2":
	    c = transformers.GPT2Config()
	    want = dict(hidden_size=c.n_embd, num_layers=c.n_layer, num_attention_heads=c.n_head,
	                vocab_size=c.vocab_size, max_position_embeddings=c.n_positions,
	                layernorm_epsilon=c.layer_norm_epsilon, ffn_hidden_size=4 * c.n_embd,
	                share_embeddings_and_output_weights=c.tie_word_embeddings,
	                normalization="LayerNorm", position_embedding_type="learned_absolute")
	else:
	    c = transformers.Gemma2Config()
	    want = dict(hidden_size=c.hidden_size, num_layers=c.num_hidden_layers,
	                num_attention_heads=c.num_attention_heads,
	                num_query_groups=c.num_key_value_heads, kv_channels=c.head_dim,
	                ffn_hidden_size=c.intermediate_size, vocab_size=c.vocab_size,
	                max_position_embeddings=c.max_position_embeddings,
	                layernorm_epsilon=c.rms_norm_eps, rotary_base=c.rope_parameters["rope_theta"],
	                attn_logit_softcapping=c.attn_logit_softcapping,
	                final_logit_softcapping=c.final_logit_softcapping,
	                query_pre_attn_scalar=c.query_pre_attn_scalar, sliding_window=c.sliding_window,
	                share_embeddings_and_output_weights=c.tie_word_embeddings)
	bad = {k: (m[k], v) for k, v in want.items() if m[k] != v}
	print(bad or "all %d keys match" % len(want))
	sys.exit(1 if bad else 0)
	EOF
'

test_expect_success 'gpt2_124m matches transformers GPT2Config (gpt2 124M)' '
    "$PY" hf_check.py gpt2 gpt2_124m.json
'

test_expect_success 'gemma2_2b matches transformers Gemma2Config (gemma-2-2b)' '
    "$PY" hf_check.py gemma2 gemma2_2b.json
'

test_expect_success 'vocabulary sizes match the real tokenizers' '
    for r in llama32_1b:llama3 llama3_8b:llama3 mistral_7b:mistral gpt2_124m:gpt2; do
        echo "${r%%:*} $(sed -n "s/^  vocab_size: //p" "${r%%:*}.printed.yaml") \
              $TESTDATA/tokenizers/${r#*:}/tokenizer.json" || return 1
    done >vocab.txt &&
    "$PY" -c "
import sys
from tokenizers import Tokenizer
bad = 0
for line in open(sys.argv[1]):
    recipe, size, path = line.split()
    want = Tokenizer.from_file(path).get_vocab_size()
    if int(size) != want:
        print(recipe, \"vocab_size\", size, \"tokenizer has\", want)
        bad = 1
sys.exit(bad)
" vocab.txt
'

test_expect_success 'overrides apply, print where they came from, and lists take both spellings' '
    cfg_check tiny model.hidden_size=512 "data.data_path=0.3 a_text_document 0.7 b_text_document" >o.yaml &&
    grep "^  hidden_size: 512$" o.yaml &&
    grep "^  data_path: \[0.3, a_text_document, 0.7, b_text_document\]$" o.yaml &&
    cfg_check tiny data.data_path=0.3,a,0.7,b >o2.yaml &&
    grep "^  data_path: \[0.3, a, 0.7, b\]$" o2.yaml &&
    test "$(cfg_check --where model.hidden_size tiny model.hidden_size=512)" = \
        "command line: model.hidden_size=512" &&
    line=$(grep -n "^  num_layers:" "$MB_RECIPE_DIR/tiny.yaml" | cut -d: -f1) &&
    test "$(cfg_check --where model.num_layers tiny)" = "$MB_RECIPE_DIR/tiny.yaml:$line" &&
    test "$(cfg_check --where logger.tensorboard_dir tiny)" = default
'

test_expect_success 'an unknown override key exits 2 with a suggestion' '
    test_expect_code 2 cfg_check tiny model.hiden_size=64 2>err &&
    grep "^cfg_check: error: command line: model.hiden_size=64: unknown key .model.hiden_size. (did you mean .model.hidden_size.?)$" err &&
    test_expect_code 2 cfg_check tiny optimizer.learning_rate=1 2>err &&
    grep "unknown key .optimizer.learning_rate.$" err
'

test_expect_success 'a badly typed or out-of-choice override exits 2 naming the type' '
    test_expect_code 2 cfg_check tiny train.train_iters=1.5 2>err &&
    grep "^cfg_check: error: command line: train.train_iters=1.5: key .train.train_iters. expects an integer, got .1.5.$" err &&
    test_expect_code 2 cfg_check tiny dist.device=tpu 2>err &&
    grep "key .dist.device. must be one of cpu|cpu-guarded|cuda|auto, got .tpu.$" err &&
    test_expect_code 2 cfg_check tiny model.qk_layernorm=perhaps 2>err &&
    grep "expects a boolean" err
'

test_expect_success 'errors in a recipe file name file and line and exit 1' '
    sed "s/^  hidden_size: 256/  hiden_size: 256/" "$MB_RECIPE_DIR/tiny.yaml" >typo.yaml &&
    line=$(grep -n "hiden_size" typo.yaml | cut -d: -f1) &&
    test_expect_code 1 cfg_check ./typo.yaml 2>err &&
    grep "^cfg_check: error: ./typo.yaml:$line: unknown key .model.hiden_size. (did you mean .model.hidden_size.?)$" err &&
    sed "s/^  num_layers: 4/  num_layers: four/" "$MB_RECIPE_DIR/tiny.yaml" >type.yaml &&
    line=$(grep -n "num_layers: four" type.yaml | cut -d: -f1) &&
    test_expect_code 1 cfg_check type.yaml 2>err &&
    grep "^cfg_check: error: type.yaml:$line: key .model.num_layers. expects an integer, got .four.$" err &&
    printf "model:\n  hidden_size: 3\n   bad: indentation\n" >syntax.yaml &&
    test_expect_code 1 cfg_check syntax.yaml 2>err &&
    grep "^cfg_check: error: syntax.yaml:3:[0-9]*: invalid YAML" err
'

test_expect_success 'an invalid schedule in a recipe names the key and its place' '
    test_expect_code 1 cfg_check --sched tiny scheduler.lr_warmup_iters=400 2>err &&
    grep "^cfg_check: error: command line: scheduler.lr_warmup_iters=400: scheduler.lr_warmup_iters 400 must be at least 0 and less than lr_decay_iters 300$" err
'

test_expect_success 'an unknown recipe name exits 2 listing the recipes' '
    test_expect_code 2 cfg_check llama99 2>err &&
    grep "^cfg_check: error: llama99: no such recipe (available: .*gpt2_124m, .*llama32_1b, .*tiny)$" err
'

test_expect_success 'recipes are found next to the executable without MB_RECIPE_DIR' '
    mkdir -p inst/bin inst/share/mb/recipes tree/bin tree/recipes &&
    cp "$MB_ROOT/build/tests/helpers/cfg_check" inst/bin/ &&
    cp "$MB_ROOT/build/tests/helpers/cfg_check" tree/bin/ &&
    cp "$MB_RECIPE_DIR/tiny.yaml" inst/share/mb/recipes/installed.yaml &&
    cp "$MB_RECIPE_DIR/tiny.yaml" tree/recipes/checkout.yaml &&
    (unset MB_RECIPE_DIR && inst/bin/cfg_check installed >/dev/null) &&
    (unset MB_RECIPE_DIR && tree/bin/cfg_check checkout >/dev/null) &&
    (unset MB_RECIPE_DIR && test_expect_code 2 tree/bin/cfg_check installed 2>err) &&
    grep "(available: checkout)" err
'

test_done
