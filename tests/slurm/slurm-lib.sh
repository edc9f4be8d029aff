# slurm-lib.sh - submitting the slurm/ scripts to a running Slurm and following the jobs
# (sourced after test-lib.sh). `make check-slurm` brings the single-node cluster up.
#
# need_slurm: fail (not skip) when no slurmctld answers.
# job_field ID KEY: KEY's value in `scontrol show job ID` (JobState, Restarts, ExitCode ...).
# wait_job ID [SECONDS]: wait until job ID has ended (a final state, not a requeue); a
#     requeued job is made eligible at once (see below). Prints the final JobState.
# wait_restarts ID N [SECONDS]: wait until job ID runs again after N requeues.
# wait_log FILE PATTERN [SECONDS]: wait until FILE has a line matching PATTERN.

need_slurm() {
    if ! command -v sbatch >/dev/null 2>&1 || ! timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; then
        echo "no Slurm answers here: run these tests with make check-slurm" >&2
        return 1
    fi
}

job_field() {
    scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# Slurm holds a requeued job for AuthInfo's cred_expire (120 s by default) + 1 s before
# it may start again (batch_requeue_fini in slurmctld's job_mgr.c); a cluster lives
# with that, a test would wait two minutes for nothing, so the hold is lifted here. Not
# at once: slurmd refuses a credential made in the second (or before) it revoked the
# last run's ("Killing non-startable batch JobId=N: Job credential revoked": FAILED).
release_requeued() {
    if [ "$(job_field "$1" JobState)" = PENDING ] && [ "$(job_field "$1" Reason)" = BeginTime ] &&
        [ "$(job_field "$1" Restarts)" -gt 0 ]; then
        sleep 2
        scontrol update JobId="$1" StartTime=now
    fi
}

wait_job() {
    deadline=$(($(date +%s) + ${2:-120}))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        state=$(job_field "$1" JobState)
        case "$state" in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
            echo "$state"
            return 0 ;;
        PENDING) release_requeued "$1" ;;
        esac
        sleep 0.2
    done
    echo "job $1 still $state after ${2:-120} s" >&2
    scancel "$1"
    return 1
}

# wait_restarts ID N [SECONDS]: wait until job ID has been requeued N times and runs again
wait_restarts() {
    deadline=$(($(date +%s) + ${3:-120}))
    until [ "$(job_field "$1" Restarts)" -ge "$2" ] && [ "$(job_field "$1" JobState)" = RUNNING ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "job $1 not running after $2 requeues within ${3:-120} s" >&2
            return 1
        fi
        release_requeued "$1"
        sleep 0.2
    done
}

wait_log() {
    deadline=$(($(date +%s) + ${3:-60}))
    until grep -q "$2" "$1" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "no line matching '$2' in $1 after ${3:-60} s" >&2
            return 1
        fi
        sleep 0.1
    done
}
