# signal-lib.sh - running mb-pretrain in the background and signalling it (sourced after
# pretrain-lib.sh).
#
# random N: a random integer in [0, N).
# start_run LOG ARGS...: `pretrain ARGS` (one rank) in the background, stderr in LOG;
#     sets RUN_PID.
# start_run_mpi N LOG ARGS...: the same over N ranks (RUN_PID is mpirun's).
# wait_for LOG REGEX: wait until LOG has a line matching REGEX (at most about 60 s), while
#     the run is alive.
# wait_iter LOG N: wait until LOG shows iteration N.
# rank_pids: the pids of the ranks under mpirun RUN_PID.
# send SIG all|one: SIG to the one process (one rank) or to every rank (as Slurm does),
#     or to one rank of them only.
# stop_at LOG FIRST SPREAD SIG all|one: wait for iteration FIRST + random(SPREAD), sleep a
#     random part of an iteration, then send.

random() {
    od -An -N4 -tu4 /dev/urandom | awk -v n="$1" '{ print $1 % n }'
}

start_run() {
    log=$1
    shift
    # a simple command, not the shell function: $! is then mb-pretrain itself (env execs
    # it); SIGINT back to its default, which a background job of this shell would
    # otherwise inherit ignored, and keep ignoring
    env --default-signal=INT mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json "$@" 2>"$log" &
    RUN_PID=$!
    RUN_MPI=
}

start_run_mpi() {
    ranks=$1 log=$2
    shift 2
    env --default-signal=INT $MPIRUN -np "$ranks" mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json "$@" 2>"$log" &
    RUN_PID=$!
    RUN_MPI=$ranks
}

wait_for() {
    tries=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        tries=$((tries + 1))
        test $tries -lt 6000 || { say "'$2' never came"; return 1; }
        kill -0 "$RUN_PID" 2>/dev/null || { say "the run ended before '$2'"; return 1; }
        sleep 0.01
    done
}

wait_iter() {
    wait_for "$1" "iter  *$2/"
}

rank_pids() {
    ps -o pid= --ppid "$RUN_PID"
}

send() {
    if test -z "$RUN_MPI"; then
        kill -"$1" "$RUN_PID"
    elif test "$2" = one; then
        kill -"$1" $(rank_pids | sed -n "$(($(random "$RUN_MPI") + 1))p")
    else
        kill -"$1" $(rank_pids)
    fi
}

stop_at() {
    at=$(($2 + $(random "$3")))
    wait_iter "$1" "$at" &&
    sleep "0.0$(random 3)" &&
    say "signal $4 to $5 after iteration $at" &&
    send "$4" "$5"
}
