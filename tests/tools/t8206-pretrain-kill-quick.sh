#!/bin/sh
test_description='mb-pretrain under random SIGKILLs and SIGTERMs (MB_KILLS and MB_TERMS: 8 and 3
by default, 100 and 20 in tests/long/t8201) while it trains and saves every iteration: latest always names a complete checkpoint,
each SIGTERM saves the signalled step, restarts remove the stale temporaries'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/lib/signal-lib.sh"
. "$MB_ROOT/tests/lib/kill-lib.sh"

test_expect_success 'setup' '
    make_corpus
'

kills=${MB_KILLS:-8} terms=${MB_TERMS:-3}
test_expect_success "$kills random SIGKILLs and $terms SIGTERMs, resumed after each" '
    kill_trials $kills $terms &&
    echo "$KILL_SUMMARY" >summary
'
say "$(cat summary 2>/dev/null)"

test_done
