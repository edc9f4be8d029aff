#!/bin/sh
test_description='mb-pretrain under 100 random SIGKILLs and 20 SIGTERMs while it trains and saves
every iteration, resumed after each: latest always names a complete checkpoint (mb-ckpt verify
after each, h5py reads every kept one whole), each SIGTERM saves the signalled step and exits 0,
each restart removes exactly the temporaries the previous kill left'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/lib/signal-lib.sh"
. "$MB_ROOT/tests/lib/kill-lib.sh"

test_expect_success 'setup' '
    make_corpus
'

test_expect_success '100 random SIGKILLs and 20 SIGTERMs, resumed after each' '
    kill_trials 100 20 &&
    echo "$KILL_SUMMARY" >summary
'
say "$(cat summary 2>/dev/null)"

test_done
