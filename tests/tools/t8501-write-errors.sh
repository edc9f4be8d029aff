#!/bin/sh
test_description='SIGXFSZ and SIGPIPE: writes past ulimit -f or into a closed pipe fail cleanly'
# Every tool ignores SIGXFSZ and SIGPIPE (core/tool.c), so a write past `ulimit -f` fails
# with EFBIG and a write into a pipe without a reader with EPIPE: the tool reports it and
# exits 1, and leaves no temporary (*.tmp*) and no partial output behind. Without the
# fix the kernel kills the tool (status 153 / 141) before it can clean up.
. "$(dirname "$0")/../lib/test-lib.sh"

recipe="$MB_ROOT/tests/data/recipes/small.yaml"
mock="data.mock=true train.train_iters=2 scheduler.lr_warmup_iters=0 train.eval_iters=0"

test_expect_success 'setup: a small checkpoint and a corpus' '
    # shellcheck disable=SC2086
    mb-pretrain --recipe "$recipe" $mock checkpoint.save=ck 2>log &&
    test -f ck/latest &&
    head -n 2000 "$TESTDATA/corpora/wiki.jsonl" >corpus.jsonl &&
    test $(wc -c <corpus.jsonl) -gt 200000
'

# under_fsize KB CMD...: run CMD with `ulimit -f KB`; it must exit 1 (not die of SIGXFSZ)
# and say "File too large" on stderr (kept in err).
under_fsize() {
    kb=$1
    shift
    (ulimit -f "$kb" && exec "$@") 2>err
    rc=$?
    cat err >&2
    [ "$rc" = 1 ] || { echo "exit $rc, expected 1 (153 is death by SIGXFSZ)" >&2; return 1; }
    grep -q "File too large" err
}

test_expect_success 'mb-preprocess past ulimit -f: exit 1, no output, no temporary' '
    mkdir pp && under_fsize 64 mb-preprocess -i corpus.jsonl -o pp/out -w 1 &&
    test_no_files "pp/*"
'

test_expect_success 'mb-pretrain saving past ulimit -f: exit 1, latest untouched, no temporary' '
    cp -r ck ck2 && cp ck2/latest latest.before &&
    under_fsize 100 mb-pretrain --recipe "$recipe" $mock train.train_iters=3 \
        scheduler.override_opt_param_scheduler=true \
        checkpoint.load=ck2 checkpoint.save=ck2 &&
    cmp latest.before ck2/latest && test_no_files "ck2/*.tmp*" &&
    test_no_files "ck2/iter_0000003*"
'

test_expect_success 'mb-convert --to hf past ulimit -f: exit 1, no HF directory, no temporary' '
    under_fsize 100 mb-convert --from h5 --to hf ck hf &&
    test_path_is_missing hf && test_no_files "*.tmp* .hf*"
'

test_expect_success 'mb-ckpt convert-dtype and average past ulimit -f: exit 1, nothing left' '
    under_fsize 100 mb-ckpt convert-dtype ck --dtype bf16 -o cast.h5 &&
    test_path_is_missing cast.h5 && test_no_files "cast.h5*" &&
    under_fsize 100 mb-ckpt average ck ck -o avg.h5 &&
    test_path_is_missing avg.h5 && test_no_files "avg.h5*"
'

test_expect_success 'mb-convert --to h5 past ulimit -f: exit 1, nothing left' '
    mb-convert --from h5 --to hf ck hfok &&
    under_fsize 100 mb-convert --from hf --to h5 hfok back.h5 &&
    test_path_is_missing back.h5 && test_no_files "back.h5*"
'


# closed_pipe CMD...: run CMD with standard output a pipe whose reader is already gone
# (deterministic, unlike `| head -c1`); prints the exit status.
closed_pipe() {
    "$PY" -c '
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=open("err", "wb"))
print(p.returncode)
' "$@"
}

test_expect_success 'output to a closed pipe: exit 1, not death by SIGPIPE (141 / -13)' '
    for cmd in "mb-ckpt info ck" "mb-ckpt info ck --json" "mb-ckpt verify ck" \
               "mb-ckpt diff ck ck" "mb-pretrain --recipe tiny --print-config" \
               "mb-generate ck --prompt-ids 1 --ids --greedy -n 40" \
               "mb-generate ck --prompt-ids 1 --greedy -n 40 -t bytes"; do
        # shellcheck disable=SC2086
        rc=$(closed_pipe $cmd) && echo "$cmd: $rc" && cat err &&
        test "$rc" = 1 || return 1
        # quiet, or the one message about standard output
        if grep "error:" err | grep -v "Broken pipe"; then return 1; fi
    done
'

test_expect_success 'mb-generate stops at the first failed write (a closed pipe)' '
    rc=$(closed_pipe mb-generate ck --prompt-ids 1 --ids --greedy -n 40) &&
    test "$rc" = 1 &&
    grep -q "error: standard output: write failed: Broken pipe" err
'

test_expect_success 'a reader that goes away mid-stream: exit 1 or success, never a signal' '
    mb-ckpt info ck | head -c1 >/dev/null
    # the status of the left side of a pipe, without pipefail
    rc=$( { { mb-ckpt info ck; echo $? >&3; } | head -c1 >/dev/null; } 3>&1 ) &&
    echo "rc $rc" && case $rc in 0|1) ;; *) false ;; esac
'

test_done
