#!/bin/sh
test_description='fuzz targets: each libFuzzer target (make fuzz) for FUZZ_SECONDS under ASan+UBSan'
# The targets (tests/fuzz/fuzz_*.c) are built with clang by `make fuzz`, which
# `make check-long` runs first, with seed corpora made from the test suite's files in
# build-fuzz/corpus-NAME (libFuzzer adds the inputs it finds there, so later runs start
# further on). Any crash, leak, sanitizer report, broken invariant or timeout fails the
# target (a slow-unit report alone does not); the input that caused it is kept in the
# scratch directory (printed below).
#
#   FUZZ_SECONDS   time per target (default 180)
#   FUZZ_TARGETS   which ones (default: all, e.g. "safetensors idx")
#   FUZZ_BUILD     the fuzz build folder (default build-fuzz, as in the Makefile)
. "$(dirname "$0")/../lib/test-lib.sh"

seconds=${FUZZ_SECONDS:-180}
fbuild="$MB_ROOT/${FUZZ_BUILD:-build-fuzz}"
targets=${FUZZ_TARGETS:-$(cd "$MB_ROOT/tests/fuzz" && ls fuzz_*.c | sed -e 's/^fuzz_//' -e 's/\.c$//' |
    grep -v '^common$')}

fuzz_one() {
    t=$1
    bin="$fbuild/fuzz/fuzz_$t"
    corpus="$fbuild/corpus-$t"
    [ -x "$bin" ] || { echo "missing $bin: run make fuzz" >&2; return 1; }
    [ -d "$corpus" ] || { echo "missing $corpus: run make fuzz" >&2; return 1; }
    mkdir -p "$TRASH/artifacts"
    # one process (the machine is shared); stdout/stderr of the target closed (libFuzzer
    # keeps its own and the sanitizer's reports); 60 s for any one input is a hang
    # libhdf5's own over-reads of damaged old-format files (the file says why)
    supp=
    [ "$t" = ckpt ] && supp="suppressions=$MB_ROOT/tests/fuzz/asan-hdf5.supp"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}$supp" \
    "$bin" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 -close_fd_mask=3 \
        -print_final_stats=1 -artifact_prefix="$TRASH/artifacts/$t-" "$corpus" \
        >"$TRASH/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$TRASH/$t.log")
    cov=$(grep -o 'cov: [0-9]*' "$TRASH/$t.log" | tail -1)
    crashes=$(ls "$TRASH/artifacts" | grep -Ec "^$t-(crash|leak|timeout|oom)-")
    echo "fuzz_$t: $seconds s, ${execs:-?} executions, $cov, corpus $(ls "$corpus" | wc -l)," \
        "crashes $crashes" >"$TRASH/$t.summary"
    cat "$TRASH/$t.summary"
    if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
        grep -v '^#[0-9]' "$TRASH/$t.log" | tail -60
        ls -l "$TRASH/artifacts"
        return 1
    fi
}

for t in $targets; do
    test_expect_success "fuzz_$t runs $seconds s without a crash" "fuzz_one $t"
    [ -f "$TRASH/$t.summary" ] && say "$(cat "$TRASH/$t.summary")"
done

test_done
