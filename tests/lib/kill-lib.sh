# kill-lib.sh - random SIGKILLs and SIGTERMs into one training run that saves every
# iteration and is resumed after each (sourced after pretrain-lib.sh and signal-lib.sh;
# the corpus must be made).
#
# kill_trials NKILL NTERM: NKILL + NTERM runs of `pretrain` on ck/ (resuming), each
# signalled a random 0-0.4 s after its first iteration, the SIGTERMs at random places
# among them. After each:
#   - the start-up removed exactly the temporaries the previous kill left;
#   - SIGKILL: exit status 137; SIGTERM: exit 0, "saved iteration K" with K the iteration
#     that was logged when the signal came or the one then under way (the run is
#     SIGSTOPped while the log is read, so the two cannot drift), latest = K, no
#     temporaries left;
#   - latest names a checkpoint that `mb-ckpt verify` accepts, at an iteration not below
#     the previous one; a hard link to it is kept, and every 25 trials h5py reads all
#     kept files whole (ckpt_latest_check.py --files: finite, iteration as named).
# Sets KILL_SUMMARY. Returns 1 at the first broken promise, named by `say`.

KILL_ITERS=${KILL_ITERS:-5000}

latest_iter() {
    sed -n 's/^iter_0*\([0-9][0-9]*\)\.h5$/\1/p' ck/latest 2>/dev/null
}

last_iter() {
    losses "$1" | tail -n 1 | cut -d" " -f1
}

temporaries() {
    ls ck 2>/dev/null | grep -c "\.tmp"
}

# check_term LOG AT: the SIGTERM run saved the signalled step and left no temporaries
check_term() {
    k=$(sed -n "s/.*exit signal SIGTERM received: saved iteration \([0-9]*\), exiting/\1/p" "$1")
    if test -z "$k" || { test "$k" -ne "$2" && test "$k" -ne $(($2 + 1)); } ||
       test "$(latest_iter)" != "$k" || test "$(last_iter "$1")" != "$k" ||
       test "$(temporaries)" -ne 0; then
        say "SIGTERM after iteration $2: saved '$k', latest '$(cat ck/latest)', last logged $(last_iter "$1"), $(temporaries) temporaries"
        return 1
    fi
}

# keep_latest I: verify ck/latest, keep a link to it, drop the older checkpoints
keep_latest() {
    n=$(latest_iter)
    if test -z "$n"; then
        test "$prev" -eq 0 || { say "trial $1: latest lost (was $prev)"; return 1; }
        return 0
    fi
    test "$n" -ge "$prev" || { say "trial $1: latest went back from $prev to $n"; return 1; }
    prev=$n
    name=$(cat ck/latest)
    mb-ckpt verify "ck/$name" >/dev/null || { say "trial $1: mb-ckpt verify ck/$name failed"; return 1; }
    ln "ck/$name" "kept/trial$1.h5" &&
    pending="$pending kept/trial$1.h5:$n" &&
    for f in ck/iter_*.h5; do
        test "$f" = "ck/$name" || rm -f "$f"
    done
}

check_kept() {
    test -z "$pending" || "$PY" "$ORACLE/ckpt_latest_check.py" --files $pending >/dev/null &&
    rm -f kept/* && pending=
}

kill_trials() {
    total=$(($1 + $2)) i=0 kills=0 terms=0 in_save=0 removed=0 prev=0 pending=
    mkdir -p kept
    while test $i -lt $total; do
        i=$((i + 1))
        sig=KILL
        test "$(random $((total - i + 1)))" -lt $(($2 - terms)) && sig=TERM
        stale=$(temporaries)
        start_run run$i.log train.train_iters=$KILL_ITERS checkpoint.save=ck checkpoint.load=ck \
            checkpoint.save_interval=1 train.eval_interval=25 train.eval_iters=1 &&
        wait_for run$i.log "iter  *[0-9]*/" || return 1
        sleep "$(printf 0.%03d "$(random 400)")"
        kill -STOP $RUN_PID && at=$(last_iter run$i.log) && kill -$sig $RUN_PID && kill -CONT $RUN_PID
        wait $RUN_PID
        rc=$?
        got=$(grep -c "the temporary of a save that did not finish" run$i.log)
        test "$got" -eq "$stale" || { say "trial $i: $stale stale temporaries, $got removed"; return 1; }
        removed=$((removed + got))
        if test $sig = KILL; then
            kills=$((kills + 1))
            test $rc -eq 137 || { say "trial $i: SIGKILL, exit status $rc"; return 1; }
            test "$(temporaries)" -eq 0 || in_save=$((in_save + 1))
        else
            terms=$((terms + 1))
            test $rc -eq 0 || { say "trial $i: SIGTERM, exit status $rc"; tail -3 run$i.log; return 1; }
            check_term run$i.log "$at" || return 1
        fi
        keep_latest $i || return 1
        if test $((i % 25)) -eq 0 || test $i -eq $total; then
            check_kept || { say "h5py found a damaged checkpoint among the kept ones"; return 1; }
        fi
    done
    KILL_SUMMARY="$kills SIGKILLs ($in_save inside a save), $terms SIGTERMs (each saved the signalled step), $removed stale temporaries removed at restart, latest checked after each: 0 damaged; reached iteration $prev"
}
