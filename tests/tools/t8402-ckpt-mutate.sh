#!/bin/sh
test_description='random single-byte and block mutations of real checkpoints (250 of each by default): no tool that reads them (mb-ckpt info and verify, mb-generate, mb-convert --to hf, mb-pretrain resume) dies of a signal or hangs'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/ckpt-fixture-lib.sh"

# ckpt_mutate overwrites one byte, overwrites or zeroes a block, or truncates; half of
# the seeds aim at the HDF5 metadata. MB_MUT_FIRST..MB_MUT_LAST are the seeds run on each
# of the two files (tests/long/t8401 runs 251..1500: with these, 1,500 of each).
first=${MB_MUT_FIRST:-1} last=${MB_MUT_LAST:-250}
test_expect_success 'setup: a trained checkpoint and a converted one' '
    make_ckpt_fixtures
'

test_expect_success "seeds $first..$last on the trained checkpoint (with Adam moments): no signal death, no hang" '
    mutation_campaign ck/iter_0000002.h5 checkpoint.load $first $last >summary.ck
'
cat summary.ck 2>/dev/null # the figures, as TAP comments

test_expect_success "seeds $first..$last on the mb-convert checkpoint (HF items): no signal death, no hang" '
    mutation_campaign conv.h5 checkpoint.pretrained_checkpoint $first $last >summary.conv
'
cat summary.conv 2>/dev/null

test_expect_success 'every mutated file that verify accepts is one the other tools read' '
    cat ck/iter_0000002.h5.cases conv.h5.cases | awk "\$6 == \"verify=0\" && (\$5 != \"info=0\" || \$7 !~ /^generate=(0|nf)$/ || \$8 != \"convert=0\" || \$9 !~ /^resume=(0|nf)$/) { bad++; print } END { exit bad > 0 }"
'

test_expect_success 'the mutations reach every tool: each rejects some files and reads others' '
    for t in info verify generate convert resume; do
        cat ck/iter_0000002.h5.cases conv.h5.cases >all.cases &&
        grep -q " $t=0" all.cases && grep -q " $t=1" all.cases || { echo "$t"; return 1; }
    done
'

test_done
