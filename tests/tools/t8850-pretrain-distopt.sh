#!/bin/sh
test_description='ddp.use_distributed_optimizer and ddp.overlap_grad_reduce over 1, 2 and 4 data-parallel ranks give the single-rank losses, gradient norms and weights; the memory report matches Megatron'"'"'s formula'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# 20 iterations of the small Llama, clipping at 0.7 (the norm is 0.46 to 1.7: clipped in
# about half the iterations); buckets of 2000 floats (about 40 of them) with overlap
run20() {
    name=$1 ranks=$2
    shift 2
    if test "$ranks" = 1; then
        pretrain train.train_iters=20 train.eval_iters=0 optimizer.clip_grad=0.7 \
            checkpoint.save=$name logger.metrics_jsonl=$name.jsonl "$@" 2>$name.log
    else
        pretrain_mpi "$ranks" train.train_iters=20 train.eval_iters=0 optimizer.clip_grad=0.7 \
            checkpoint.save=$name logger.metrics_jsonl=$name.jsonl "$@" 2>$name.log
    fi
}
DIST="ddp.use_distributed_optimizer=true"
OVER="ddp.overlap_grad_reduce=true ddp.bucket_size=2000"

# every iteration's grad_norm in metrics A within relative TOL of metrics B
same_norms() {
    "$PY" - "$1" "$2" "$3" <<'PY'
import json, sys
a, b, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
na = {j["iteration"]: j["grad_norm"] for j in map(json.loads, open(a)) if j["type"] == "train"}
nb = {j["iteration"]: j["grad_norm"] for j in map(json.loads, open(b)) if j["type"] == "train"}
assert sorted(na) == sorted(nb) == list(range(1, 21)), (sorted(na), sorted(nb))
bad = [(i, na[i], nb[i]) for i in na if abs(na[i] - nb[i]) > tol * abs(nb[i])]
sys.exit(f"grad norms differ: {bad[:3]}" if bad else 0)
PY
}

test_expect_success 'setup: corpus; the single-rank run of 20 iterations, clipped in some' '
    make_corpus &&
    run20 dp1 1 &&
    test $(losses dp1.log | wc -l) -eq 20 &&
    "$PY" -c "import json,sys; n=[json.loads(l)[\"grad_norm\"] for l in open(\"dp1.jsonl\")]; c=sum(x > 0.7 for x in n); print(\"# clipped\", c); sys.exit(not 5 <= c <= 15)"
'

test_expect_success 'DP1 with the distributed optimizer and overlap is the plain run, bitwise' '
    run20 dp1do 1 $DIST $OVER &&
    same_losses dp1do.log dp1.log 0 &&
    "$PY" "$ORACLE/ckpt_compare.py" dp1do/iter_0000020.h5 dp1/iter_0000020.h5
'

for ranks in 2 4; do
    for mode in rep rep-over dist dist-over; do
        case $mode in
        rep) args= ;;
        rep-over) args=$OVER ;;
        dist) args=$DIST ;;
        dist-over) args="$DIST $OVER" ;;
        esac
        test_expect_success "DP$ranks $mode: losses and (clipped) grad norms of the single-rank run to 1e-5 at all 20 iterations, final weights and moments to 1e-5" "
            run20 dp$ranks-$mode $ranks $args &&
            same_losses dp$ranks-$mode.log dp1.log 1e-5 &&
            test \$(losses dp$ranks-$mode.log | wc -l) -eq 20 &&
            same_norms dp$ranks-$mode.jsonl dp1.jsonl 1e-5 &&
            \"\$PY\" \"\$ORACLE/ckpt_compare.py\" dp$ranks-$mode/iter_0000020.h5 dp1/iter_0000020.h5 1e-5
        "
    done
done

test_expect_success 'DP2: overlapped reduction gives the blocking sums bitwise (replicated and distributed)' '
    same_losses dp2-rep-over.log dp2-rep.log 0 &&
    "$PY" "$ORACLE/ckpt_compare.py" dp2-rep-over/iter_0000020.h5 dp2-rep/iter_0000020.h5 &&
    "$PY" "$ORACLE/ckpt_compare.py" dp2-dist-over/iter_0000020.h5 dp2-dist/iter_0000020.h5
'

# P counted by h5py from the checkpoint; parallel.md 5.7 for fp32: 16 P replicated,
# (8 + 8/d) P distributed (rank 0's shard is ceil(P/d))
test_expect_success 'the memory report: bytes per rank as counted from the checkpoint, and the formula' '
    "$PY" - <<-\PY
	import h5py, math, re, sys
	sizes = []
	with h5py.File("dp1/iter_0000020.h5") as f:
	    f["model"].visititems(lambda n, o: sizes.append(o.size) if isinstance(o, h5py.Dataset) else None)
	P = sum(sizes)
	for log, d, dist in (("dp1.log", 1, 0), ("dp2-rep.log", 2, 0), ("dp2-dist.log", 2, 1),
	                     ("dp4-dist-over.log", 4, 1)):
	    text = open(log).read()
	    m = re.search(r"memory per rank: parameters (\d+) B, gradients (\d+) B, Adam moments (\d+) B: "
	                  r"(\d+) B .*formula for fp32, [a-z ]+: .+? B x (\d+) parameters = (\d+) B", text)
	    got = [int(x) for x in m.groups()]
	    S = math.ceil(P / d) if dist else P  # rank 0 holds a whole shard
	    formula = (8 + 8 / d) * P if dist else 16 * P
	    want = [4 * P, 4 * P, 8 * S, 8 * P + 8 * S, P, round(formula)]
	    if got != want:
	        sys.exit(f"{log}: {got} != {want}")
	    if not re.search(r"peak RSS [0-9.]+ MiB on rank 0, [0-9.]+ MiB the largest over ranks", text):
	        sys.exit(f"{log}: no peak RSS line")
	PY
'

test_expect_success 'the DP traffic per iteration: one all-reduce, or a reduce-scatter and an all-gather, of the whole buffer' '
    "$PY" - <<-\PY
	import h5py, re, sys
	sizes = []
	with h5py.File("dp1/iter_0000020.h5") as f:
	    f["model"].visititems(lambda n, o: sizes.append(o.size) if isinstance(o, h5py.Dataset) else None)
	P = sum(sizes)
	for log, d, dist in (("dp2-rep.log", 2, 0), ("dp2-dist-over.log", 2, 1), ("dp4-rep-over.log", 4, 0),
	                     ("dp4-dist.log", 4, 1)):
	    got = float(re.search(r"data-parallel traffic (\d+) B per iteration", open(log).read()).group(1))
	    # ring volumes: 2 (d-1)/d 4P either way; the loss sums (2 doubles) and the norm (1)
	    want = 2 * (d - 1) / d * 4 * P + (d - 1) / d * 8 * (2 + (1 if dist else 0))
	    if abs(got - want) > 8 * d:
	        sys.exit(f"{log}: {got} B, want {want}")
	PY
'

test_expect_success 'a negative ddp.bucket_size, or one past MPI'"'"'s int counts, is refused, naming the key' '
    test_expect_code 1 pretrain ddp.bucket_size=-5 2>err &&
    grep "error: command line: ddp.bucket_size=-5: ddp.bucket_size must be 0 (Megatron.s default) or between 1 and 2^30 floats, not -5$" err &&
    test_expect_code 1 pretrain ddp.bucket_size=1073741825 2>err &&
    grep "error: command line: ddp.bucket_size=1073741825: ddp.bucket_size must be 0" err
'

test_done
