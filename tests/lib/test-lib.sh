# tests/lib/test-lib.sh - TAP for shell tests, after git's t/test-lib.sh.
#
#   test_description='...'
#   . "$(dirname "$0")/../lib/test-lib.sh"
#   test_expect_success 'title' 'commands'
#   test_done
#
# Each script runs in its own scratch directory. Sets MB_ROOT (the checkout), PATH with
# bin/ first, MPIRUN, PY (the oracle venv's python), ORACLE (tests/oracle), TESTDATA
# (the fetched test data) and MB_SHARED_DATA (../shared/data, may be absent).

MB_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PATH="$MB_ROOT/bin:$MB_ROOT/build/tests/helpers:$PATH"
MB_CACHE=${MB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mb}
PY="$MB_CACHE/venv/bin/python"
ORACLE="$MB_ROOT/tests/oracle"
TESTDATA="$MB_CACHE/testdata"
MB_SHARED_DATA=${MB_SHARED_DATA:-$MB_ROOT/../shared/data}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN="mpirun --oversubscribe"
# make SANITIZE=1: leaks of the libraries below mb are not ours (tests/lib/lsan.supp)
export LSAN_OPTIONS="suppressions=$MB_ROOT/tests/lib/lsan.supp:fast_unwind_on_malloc=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export OMPI_MCA_mca_base_component_disable_dlclose=1
export MB_ROOT PATH PY ORACLE TESTDATA MB_SHARED_DATA

test_count=0
test_failed=0
TRASH=$(mktemp -d "${TMPDIR:-/tmp}/mb-test.XXXXXX")
cd "$TRASH" || exit 1

say() { printf '# %s\n' "$*"; }

test_expect_success() {
    test_count=$((test_count + 1))
    if (eval "$2") >"$TRASH/.out" 2>&1; then
        echo "ok $test_count - $1"
    else
        echo "not ok $test_count - $1"
        sed -e 's/^/#   /' "$TRASH/.out" | tail -40
        test_failed=$((test_failed + 1))
    fi
}

test_skip() {
    test_count=$((test_count + 1))
    echo "ok $test_count # skip $2 ($1)"
}

# test_expect_code N cmd...: the command must exit with status N (not crash, not hang).
test_expect_code() {
    want=$1
    shift
    "$@"
    got=$?
    if [ "$got" != "$want" ]; then
        echo "expected exit status $want, got $got: $*" >&2
        return 1
    fi
    return 0
}

test_path_is_missing() {
    if [ -e "$1" ]; then
        echo "path exists but should not: $1" >&2
        return 1
    fi
}

# No file in the directory matches the glob (e.g. no leftover temporaries).
test_no_files() {
    for f in $1; do
        if [ -e "$f" ]; then
            echo "unexpected file: $f" >&2
            return 1
        fi
    done
}

test_done() {
    echo "1..$test_count"
    cd /
    if [ "$test_failed" = 0 ]; then
        rm -rf "$TRASH"
        exit 0
    fi
    echo "# $test_failed of $test_count failed; scratch kept in $TRASH"
    exit 1
}
