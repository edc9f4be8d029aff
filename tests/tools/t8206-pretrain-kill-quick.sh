#!/bin/sh
test_description='mb-pretrain under random SIGKILLs and SIGTERMs while it trains and saves every
iteration (the quick version of tests/long/t8201): latest always names a complete checkpoint,
each SIGTERM saves the signalled step, restarts remove the stale temporaries'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/lib/signal-lib.sh"
. "$MB_ROOT/tests/lib/kill-lib.sh"

test_expect_success 'setup' '
    make_corpus
'

test_expect_success '8 random SIGKILLs and 3 SIGTERMs, resumed after each' '
    kill_trials 8 3 &&
    echo "$KILL_SUMMARY" >summary
'
say "$(cat summary 2>/dev/null)"

test_done
