#!/bin/sh
test_description='train/pipe_sched: every rank runs the passes and messages megatron-core schedules, 1F1B and interleaved'
. "$(dirname "$0")/../lib/test-lib.sh"

# The oracle (tests/oracle/pipe_sched_oracle.py) runs Megatron's own schedule functions for all
# ranks of a layout at once, with recorders for the passes and queues for the messages;
# its docstring says exactly which parts are Megatron's.
ORACLE_PY="$ORACLE/pipe_sched_oracle.py"

# PP VP M: 1F1B for PP 1..6 over 1..2PP+2 micro-batches (fewer than, as many as and more
# than the stages) and PP8; interleaved for PP 2..5 with VP 2 and 3 over PP, 2PP and 3PP
# micro-batches, PP4 VP4, PP8 VP2; and layouts Megatron refuses (M % PP != 0, M < PP).
test_expect_success 'setup: layouts' '
    for p in 1 2 3 4 5 6; do
        for m in $(seq 1 $((2 * p + 2))); do echo "$p 1 $m"; done
    done >layouts &&
    echo "8 1 16" >>layouts &&
    for p in 2 3 4 5; do
        for v in 2 3; do
            for k in 1 2 3; do echo "$p $v $((k * p))"; done
            echo "$p $v $((p + 1))"
        done
    done >>layouts &&
    printf "4 4 8\n8 2 16\n4 2 2\n" >>layouts &&
    test $(wc -l <layouts) = 90
'

test_expect_success 'mb prints the schedule of every rank, or refuses the layout' '
    pipe_sched_dump <layouts >mb.out &&
    test $(grep -c " | " mb.out) = 328 &&
    test $(grep -c refused mb.out) = 9 &&
    grep "^4 2 5 refused: PP4 VP2 M5: .*dist.virtual_pipeline_model_parallel_size 2.*train.global_batch_size.*multiple of dist.pipeline_model_parallel_size 4" mb.out
'

# Wrong copies of some of mb lines, each of which the comparison must catch: two passes
# swapped (PP4 VP2 M8 rank 1), a warm-up count off by one (PP4 M8 rank 0), a receive
# posted before Megatron posts it (PP2 VP2 M4 rank 0), a send held back past the next
# backward (PP4 M6 rank 1).
test_expect_success 'setup: tampered copies' '
    grep -E "^(4 2 8|4 1 8|4 1 6|2 2 4) [0-9]" mb.out |
    sed -e "/^4 2 8 1 /s/F4.0 B0.1/B0.1 F4.0/" \
        -e "/^4 1 8 0 /s/^4 1 8 0 3 /4 1 8 0 2 /" \
        -e "/^2 2 4 0 /s/| F0.0 sf0.0 /| rb0.1 F0.0 sf0.0 /" \
        -e "/^2 2 4 0 /s/sf2.0 rb0.1 B0.1/sf2.0 B0.1/" \
        -e "/^4 1 6 1 /s/F2 sf2 rb0 B0 sb0/F2 rb0 B0 sf2 sb0/" >bad.out &&
    test $(diff mb.out bad.out | grep -c "^>") = 4
'

test_expect_success 'every layout: compute order, warm-up, messages and refusals as megatron-core' '
    "$PY" "$ORACLE_PY" mb.out bad.out <layouts >cmp.out 2>cmp.err &&
    grep "^90 of 90 layouts agree with megatron-core; 4 of 4 tampered schedules caught" cmp.out
'

test_expect_success 'PP4 with 8 micro-batches, with and without VP2, among them' '
    grep "^PP4 VP1 M8: 4 ranks agree (warm-up 3 2 1 0)" cmp.out &&
    grep "^PP4 VP2 M8: 4 ranks agree (warm-up 10 8 6 4)" cmp.out &&
    grep "^PP4 VP2 M5: both refuse" cmp.out
'

test_expect_success 'a malformed layout line is an error' '
    echo "4 x 8" | test_expect_code 1 pipe_sched_dump 2>err &&
    grep "pipe_sched_dump: error: expected" err
'

test_done
