#!/bin/sh
test_description='a model trained from scratch carries its tokenizer.json; its HF export has tokenizer and generation configs, and transformers stops at the end of a document'
. "$(dirname "$0")/../lib/test-lib.sh"

# Short documents ("the X is here. end" + EOD), a BPE tokenizer trained on them, and a
# one-layer model trained on them for 60 iterations: enough for it to end every
# continuation with the EOD token. The tokenizer directory is then moved away, as on
# another machine.

train() {
    mb-pretrain --recipe tiny data.data_path=docs_text_document tokenizer.tokenizer_model=tok/tokenizer.json \
        model.num_layers=1 model.hidden_size=64 model.ffn_hidden_size=128 model.num_attention_heads=2 \
        model.num_query_groups=1 model.kv_channels=32 model.vocab_size=300 model.max_position_embeddings=64 \
        data.seq_length=32 data.split=100,0,0 train.eval_iters=0 train.eval_interval=1000 \
        train.micro_batch_size=4 train.global_batch_size=4 optimizer.lr=1e-2 optimizer.min_lr=1e-3 \
        scheduler.lr_warmup_iters=5 checkpoint.save=ck checkpoint.load=ck checkpoint.save_interval=30 "$@"
}

test_expect_success 'a tokenizer and 60 iterations from scratch, in two runs (resumed at 30)' '
    "$PY" -c "
import json, random
r = random.Random(1)
words = [\"red\", \"green\", \"blue\", \"cat\", \"dog\", \"sun\", \"moon\", \"tree\", \"river\", \"stone\"]
with open(\"docs.jsonl\", \"w\") as f:
    for i in range(400):
        f.write(json.dumps({\"text\": \"the \" + r.choice(words) + \" is here. end\"}) + \"\\n\")
" &&
    mkdir tok && mb-preprocess --train-tokenizer 300 --save-tokenizer tok/tokenizer.json --append-eod \
        -o docs docs.jsonl 2>err &&
    train train.train_iters=30 2>err &&
    train train.train_iters=60 scheduler.override_opt_param_scheduler=true 2>err &&
    test -f ck/iter_0000030.h5 && test -f ck/iter_0000060.h5
'

test_expect_success 'every checkpoint holds the tokenizer.json byte for byte' '
    "$PY" - <<-\EOF
	import h5py
	want = open("tok/tokenizer.json", "rb").read()
	for it in (30, 60):
	    f = h5py.File(f"ck/iter_{it:07d}.h5")
	    assert f["/hf/files/tokenizer.json"][()].tobytes() == want, it
	    assert f.attrs["tokenizer"] not in ("", b"")
	EOF
'

test_expect_success 'with the tokenizer moved away: mb-generate ends at EOD, mb-convert exports it' '
    mb-generate ck -p "the cat" -n 20 --ids >before 2>err &&
    mv tok tok_elsewhere &&
    mb-generate ck -p "the cat" -n 20 --ids >ids 2>err && cmp before ids &&
    test "$(cat ids | tr " " "\n" | tail -1)" = 299 && test $(wc -w <ids) -lt 20 &&
    mb-generate ck -p "the river" -n 20 >text 2>err && test "$(cat text)" = " is here. end" &&
    mb-convert --from h5 --to hf ck hf 2>err && ! grep -i warn err &&
    cmp hf/tokenizer.json tok_elsewhere/tokenizer.json &&
    test -f hf/tokenizer_config.json && test -f hf/generation_config.json
'

test_expect_success 'transformers: AutoTokenizer knows EOS and PAD; generate stops at EOS, as mb-generate does' '
    "$PY" - "$(cat ids)" <<-\EOF
	import sys, torch, transformers as tf
	tok = tf.AutoTokenizer.from_pretrained("hf")
	assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 299, (tok.eos_token, tok.eos_token_id)
	assert tok.pad_token_id == 299 and tok.model_max_length == 64, (tok.pad_token_id, tok.model_max_length)
	model = tf.AutoModelForCausalLM.from_pretrained("hf").float().eval()
	assert model.generation_config.eos_token_id == 299, model.generation_config
	for prompt in ("the cat", "the river", "the moon"):
	    enc = tok(prompt, return_tensors="pt")
	    out = model.generate(**enc, max_new_tokens=20, do_sample=False)[0, enc.input_ids.shape[1]:].tolist()
	    assert out[-1] == 299 and len(out) < 20, (prompt, out)
	    text = tok.decode(out, skip_special_tokens=True)
	    assert text == " is here. end", (prompt, text)
	    if prompt == "the cat":
	        assert out == [int(x) for x in sys.argv[1].split()], (out, sys.argv[1])
	EOF
'

test_done
