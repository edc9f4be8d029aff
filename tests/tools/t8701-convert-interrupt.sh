#!/bin/sh
test_description='mb-convert killed at random moments: the old output as it was, or the complete new one'
. "$(dirname "$0")/../lib/test-lib.sh"

# A 60 MB Llama made with numpy and safetensors (no torch: quick). Each run converts it
# and is killed by SIGINT, SIGTERM or SIGKILL after a pseudo-random delay spread over
# the length of a whole run (at least one must land before the end). The output existed before (an older export with different
# files); afterwards it must be that export, every file the same, or the new one, every
# file the same, and after SIGINT/SIGTERM no temporary may be left. (Checkpoints are
# compared with mb-ckpt diff: HDF5 stores object times, so two conversions differ in
# bytes when they run in different seconds.)

test_expect_success 'a random 60 MB Llama; reference outputs' '
    "$PY" - <<-\EOF &&
	import json, os, numpy as np
	from safetensors.numpy import save_file
	h, L, V, ff, kv = 512, 4, 8192, 1536, 128
	rng = np.random.default_rng(0)
	w = lambda *s: rng.standard_normal(s, dtype=np.float32) * 0.02
	sd = {"model.embed_tokens.weight": w(V, h), "model.norm.weight": w(h), "lm_head.weight": w(V, h)}
	for l in range(L):
	    p = f"model.layers.{l}."
	    sd.update({p + "self_attn.q_proj.weight": w(h, h), p + "self_attn.k_proj.weight": w(kv, h),
	               p + "self_attn.v_proj.weight": w(kv, h), p + "self_attn.o_proj.weight": w(h, h),
	               p + "mlp.gate_proj.weight": w(ff, h), p + "mlp.up_proj.weight": w(ff, h),
	               p + "mlp.down_proj.weight": w(h, ff), p + "input_layernorm.weight": w(h),
	               p + "post_attention_layernorm.weight": w(h)})
	os.makedirs("big")
	save_file(sd, "big/model.safetensors", metadata={"format": "pt"})
	json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
	           "intermediate_size": ff, "num_hidden_layers": L, "num_attention_heads": 8,
	           "num_key_value_heads": 2, "vocab_size": V, "max_position_embeddings": 256,
	           "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "torch_dtype": "float32"},
	          open("big/config.json", "w"), indent=2)
	EOF
    mb-convert --from hf --to h5 big ck 2>err &&
    mb-convert --from hf --to h5 --dtype bf16 big ck_old 2>err &&
    mb-convert --from h5 --to hf ck new 2>err &&
    mb-convert --from h5 --to hf --max-shard-size 30MB ck old 2>err &&
    test -f old/model.safetensors.index.json && test -f new/model.safetensors
'

# same_dir A B: the same file names (hidden ones too) and every file byte-identical.
same_dir() {
    (cd "$1" && ls -A) >"$TRASH/.l1" && (cd "$2" && ls -A) >"$TRASH/.l2" &&
    cmp -s "$TRASH/.l1" "$TRASH/.l2" || return 1
    for f in $(cat "$TRASH/.l1"); do cmp -s "$1/$f" "$2/$f" || return 1; done
}

# The delay (seconds) of kill number I of N over a run of T seconds: spread over
# [0, 1.2 T] in a fixed pseudo-random order.
delay() {
    awk -v i="$1" -v n="$2" -v t="$3" 'BEGIN { srand(i * 7919); printf "%.3f", t * 1.2 * (i - 1 + rand()) / n }'
}

# run_killed SIG DELAY CMD...: start CMD, send SIG after DELAY seconds, wait for it;
# $pid is its process id. (A temporary of an earlier SIGKILL is removed by the next run
# that gets as far as opening its output, so only the killed run's own one counts.)
run_killed() {
    sig=$1 d=$2
    shift 2
    # a background job of this shell would inherit SIGINT ignored, and keep ignoring it
    env --default-signal=INT "$@" 2>>"$TRASH/kill.err" &
    pid=$!
    sleep "$d"
    kill -s "$sig" "$pid" 2>/dev/null
    wait "$pid"
    return 0
}

# MB_KILLS_HF and MB_KILLS_H5 set the number of kills (tests/long runs more).
kills_hf=${MB_KILLS_HF:-12} kills_h5=${MB_KILLS_H5:-6}

test_expect_success "--to hf: $kills_hf kills (SIGINT, SIGTERM, SIGKILL) at random moments; the next run removes what SIGKILL left" '
    t0=$(date +%s.%N) && mb-convert --from h5 --to hf ck timing 2>err && t1=$(date +%s.%N) &&
    t=$(awk -v a="$t0" -v b="$t1" "BEGIN { print b - a }") && echo "a whole run: $t s" >stats &&
    n=$kills_hf old_seen=0 new_seen=0 stale=0 i=1 &&
    while [ $i -le $n ]; do
        case $((i % 3)) in 0) sig=KILL ;; 1) sig=INT ;; *) sig=TERM ;; esac
        rm -rf out && cp -a old out &&
        run_killed $sig "$(delay $i $n $t)" mb-convert --from h5 --to hf ck out &&
        if same_dir out old; then old_seen=$((old_seen + 1))
        elif same_dir out new; then new_seen=$((new_seen + 1))
        else echo "kill $i ($sig): out is neither the old export nor the new one"; ls -la out; exit 1
        fi
        left=$(ls -A | grep "^\.out\.mb-convert-tmp\..*\.$pid\$" || :)
        if [ -n "$left" ]; then
            test $sig = KILL || { echo "kill $i ($sig) left $left"; exit 1; }
            stale=$((stale + 1))
        fi
        i=$((i + 1))
    done &&
    echo "$n kills: $old_seen left the old export, $new_seen the new one; $stale SIGKILLs left a temporary" >>stats &&
    test $old_seen -gt 0 &&
    mb-convert --from h5 --to hf ck out 2>err && same_dir out new &&
    test -z "$(ls -A | grep "^\.out\.mb-convert-tmp" || :)"
'
while read -r line; do say "$line"; done <stats

test_expect_success '--to hf: a temporary left by a killed process of this host is removed, a live one kept' '
    host=$(uname -n | tr ./ __) && test -n "$host" &&
    mkdir ".out.mb-convert-tmp.$host.2147483647" && echo x >".out.mb-convert-tmp.$host.2147483647/model.safetensors" &&
    { sleep 60 & } && live=$! &&
    mkdir ".out.mb-convert-tmp.$host.$live" &&
    mb-convert --from h5 --to hf ck out 2>err; rc=$?; kill $live; test $rc = 0 &&
    grep "removed the temporary of an interrupted run" err &&
    test_path_is_missing ".out.mb-convert-tmp.$host.2147483647" &&
    test -d ".out.mb-convert-tmp.$host.$live" && rmdir ".out.mb-convert-tmp.$host.$live" &&
    test -z "$(ls -A | grep "^\.out\.mb-convert-tmp")" && same_dir out new
'

test_expect_success '--to hf: a directory that is not an HF model is not replaced; a file is not either' '
    mkdir mine && echo keep >mine/notes.txt &&
    test_expect_code 1 mb-convert --from h5 --to hf ck mine 2>err &&
    grep "mb-convert: error: mine: exists and is not a HuggingFace model directory" err &&
    test "$(cat mine/notes.txt)" = keep && test "$(ls -A mine)" = notes.txt &&
    echo data >afile && test_expect_code 1 mb-convert --from h5 --to hf ck afile 2>err &&
    grep "afile: exists and is not a directory" err && test "$(cat afile)" = data &&
    test -z "$(ls -A | grep "mb-convert-tmp")"
'

test_expect_success '--to hf: a link to an export stays a link; the directory it names is replaced' '
    cp -a old linked && ln -s linked link &&
    mb-convert --from h5 --to hf ck link 2>err && test -L link && same_dir linked new &&
    test -z "$(ls -A | grep "mb-convert-tmp")"
'

test_expect_success "--to h5: $kills_h5 kills: the old checkpoint or the new one, no *.tmp after SIGINT/SIGTERM; after SIGKILL the next run overwrites it; a new directory: none or complete" '
    t0=$(date +%s.%N) && mb-convert --from hf --to h5 big timing_ck 2>err && t1=$(date +%s.%N) &&
    t=$(awk -v a="$t0" -v b="$t1" "BEGIN { print b - a }") &&
    n=$kills_h5 old_seen=0 new_seen=0 i=1 &&
    while [ $i -le $n ]; do
        case $((i % 3)) in 0) sig=KILL ;; 1) sig=INT ;; *) sig=TERM ;; esac
        rm -rf cko && cp -a ck_old cko &&
        run_killed $sig "$(delay $i $n $t)" mb-convert --from hf --to h5 big cko &&
        mb-ckpt verify cko >/dev/null 2>&1 || { echo "kill $i ($sig): cko does not verify"; exit 1; }
        if mb-ckpt diff cko ck_old >/dev/null 2>&1; then
            old_seen=$((old_seen + 1))
        elif mb-ckpt diff cko ck >/dev/null 2>&1; then
            new_seen=$((new_seen + 1))
        else echo "kill $i ($sig): cko is neither the old checkpoint nor the new one"; ls -la cko; exit 1
        fi
        if [ $sig != KILL ]; then
            test -z "$(ls -A cko | grep -v "^iter_0000000.h5$" | grep -v "^latest$")" ||
                { echo "kill $i ($sig) left:"; ls -A cko; exit 1; }
        fi
        i=$((i + 1))
    done &&
    echo "$n kills of --to h5: $old_seen left the old checkpoint, $new_seen the new one" >stats &&
    test $old_seen -gt 0 &&
    for i in 1 2 3 4; do
        rm -rf fresh_ck && run_killed INT "$(delay $i 4 $t)" mb-convert --from hf --to h5 big fresh_ck &&
        { test_path_is_missing fresh_ck 2>/dev/null || mb-ckpt diff fresh_ck ck >/dev/null; } ||
            { echo "a new checkpoint directory killed after $(delay $i 4 $t) s:"; ls -A fresh_ck; exit 1; }
    done &&
    touch cko/iter_0000000.h5.tmp && mb-convert --from hf --to h5 big cko 2>err &&
    test "$(ls -A cko | tr "\n" " ")" = "iter_0000000.h5 latest " &&
    mb-ckpt diff cko ck >/dev/null
'
while read -r line; do say "$line"; done <stats

test_done
