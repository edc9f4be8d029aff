#!/bin/sh
test_description='mb-pretrain reports the tensor-parallel bytes each rank sends per iteration, and they equal both its analytic line and the collectives parallel.md 2.4, 2.5, 2.7, 2.8 and 9 list, counted here from the sizes (llama and gpt2 at TP2 and TP4 with and without sequence parallelism; qwen3 QK-norm, gemma2 sandwich norms)'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

test_expect_success 'setup: a real corpus, a trained tokenizer, token files' '
    make_corpus
'

# run FAMILY TP SP: 2 iterations of 4 micro-batches on TP ranks into FAMILY-tTP-SP.log
run() {
    pretrain_mpi "$2" $(family_keys "$1") model.num_query_groups=4 train.train_iters=2 \
        scheduler.lr_warmup_iters=1 train.eval_interval=0 dist.tensor_model_parallel_size="$2" \
        dist.sequence_parallel="$3" 2>"$1-t$2-$3.log"
}

# llama and gpt2 (LayerNorm, biases, learned positions, tied) at TP2 and TP4 with and
# without SP; qwen3 (QK-norm: summed over TP even without SP) and gemma2 (sandwich norms)
CASES="llama:2:false llama:2:true llama:4:false llama:4:true gpt2:2:false gpt2:2:true
       gpt2:4:false gpt2:4:true qwen3:2:false qwen3:2:true gemma2:2:true"
for case in $CASES; do
    set -- $(echo "$case" | tr : ' ')
    test_expect_success "$1 TP$2, sequence_parallel=$3: runs" "
        run $1 $2 $3
    "
done

test_expect_success 'TP bytes per iteration: measured = analytic line = the collectives counted here' '
    "$PY" - "$MB_ROOT/tests/data/models" $CASES <<-\PY
	import json, re, sys
	B, S, M = 2, 64, 4  # micro-batch, sequence, micro-batches per step (global 8, DP 1)
	def ar(t, nbytes):  # ring all-reduce: 2 (t-1)/t, as dist/pstate.c counts it
	    return 2 * (nbytes // t) * (t - 1)
	def ag(t, nbytes):  # ring all-gather / reduce-scatter of a whole of NBYTES: (t-1)/t
	    return nbytes // t * (t - 1)
	bad = 0
	for case in sys.argv[2:]:
	    family, t, sp = case.split(":")
	    t, sp = int(t), sp == "true"
	    c = json.load(open(f"{sys.argv[1]}/{family}.json"))
	    L, h = c["num_layers"], c["hidden_size"]
	    layer_norm = c["normalization"] == "LayerNorm"
	    n = B * S
	    X = 4 * n * h  # an [n, h] float tensor
	    calls = []     # (kind, bytes) of one micro-batch, in program order
	    calls.append(("ar", X))                             # embedding (parallel.md 2.7)
	    if sp:
	        calls += [("ag", X), ("rs", X), ("ag", X), ("rs", X)] * L  # qkv proj fc1 fc2
	        calls.append(("ag", X))                         # final norm out -> output layer
	    else:
	        calls += [("ar", X), ("ar", X)] * L             # proj, fc2
	    calls += [("ar", 4 * n), ("ar", 4 * n), ("ar", 8 * n)]  # xent max, target, exp-sum
	    if sp:
	        calls.append(("rs", X))                         # output layer dX
	        # fc2 dY gather; fc1 X gather + dX scatter; proj dY gather; qkv the same as fc1
	        calls += [("ag", X), ("ag", X), ("rs", X), ("ag", X), ("ag", X), ("rs", X)] * L
	        calls.append(("ag", X))                         # embedding dY
	    else:
	        calls.append(("ar", X))                         # output layer dX
	        calls += [("ar", X), ("ar", X)] * L             # fc1, qkv dX
	    micro = sum(ar(t, b) if k == "ar" else ag(t, b) for k, b in calls)
	    # per step: the TP sums of partial gradients (parallel.md 2.5): the q/k norms
	    # always; under SP the replicated norms and row-parallel biases, each layer apart
	    dh = c["kv_channels"]
	    sums = [dh, dh] * L if c["qk_layernorm"] else []
	    if sp:
	        norm = [h, h] if layer_norm else [h]
	        per_layer = norm * 2 + ([h, h] if c["add_bias_linear"] else [])
	        per_layer += [h, h] if c["sandwich_norm"] else []
	        sums += per_layer * L + norm
	    want = M * micro + sum(ar(t, 4 * k) for k in sums)
	    log = open(f"{family}-t{t}-{str(sp).lower()}.log").read()
	    got = int(re.search(r"tensor-parallel traffic (\d+) B per iteration", log).group(1))
	    analytic = int(re.search(r"tensor-parallel traffic per iteration per rank, "
	                             r"analytic: (\d+) B", log).group(1))
	    dp = int(re.search(r"data-parallel traffic (\d+) B per iteration", log).group(1))
	    print(f"# {family} TP{t} SP={sp}: measured {got}, analytic {analytic}, here {want}, DP {dp}")
	    if not (got == analytic == want) or dp != 0:
	        bad = 1
	sys.exit(bad)
	PY
'

test_expect_success 'one process: no TP traffic, and no analytic line' '
    pretrain train.train_iters=2 scheduler.lr_warmup_iters=1 train.eval_interval=0 2>one.log &&
    grep "tensor-parallel traffic 0 B per iteration per rank" one.log &&
    ! grep "tensor-parallel traffic per iteration per rank, analytic" one.log
'

test_done
