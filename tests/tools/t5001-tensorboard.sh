#!/bin/sh
test_description='train/tb: TensorBoard reads back every scalar and text mb writes, and checks CRCs'
. "$(dirname "$0")/../lib/test-lib.sh"

# Four tags over steps 1..100 (negatives, magnitudes up to 3e38), a tag of special
# values (-0, denormals, overflow to inf, nan) and a UTF-8 text twice: tb_read.py gen.
test_expect_success 'setup' '
    $PY $ORACLE/tb_read.py gen >cmds &&
    printf "model:\n  name: llama \342\200\224 tiny \342\234\223\n  layers: 2\n" >config.txt &&
    tb_write logs/run <cmds >path &&
    f=$(cat path) && test -s "$f"
'

test_expect_success 'TensorBoard reads every tag, step and value (float32 bits) and the text' '
    $PY $ORACLE/tb_read.py check logs/run cmds >out &&
    grep "^events 415 scalars 413$" out
'

test_expect_success 'file is named events.out.tfevents.SECONDS.HOST.PID.N in a new directory' '
    name=$(basename "$(cat path)") &&
    echo "$name" | grep -E "^events\.out\.tfevents\.[0-9]{10}\.$(uname -n)\.[0-9]+\.0$"
'

# The reader must reject a damaged record, or the passing checks above prove nothing.
for part in len lencrc data datacrc; do
    test_expect_success "a flipped bit in record 5 ($part) fails TensorBoard's CRC check" "
        rm -rf bad && mkdir bad && cp \"\$(cat path)\" bad/ &&
        \$PY \$ORACLE/tb_read.py corrupt bad/* 5 $part &&
        test_expect_code 1 \$PY \$ORACLE/tb_read.py check bad cmds 2>err &&
        grep 'record 5: .* failed \(header\|event\) crc32 check' err &&
        test \"\$(\$PY \$ORACLE/tb_read.py loaded bad)\" = 4
    "
done

test_expect_success 'a partly written last record leaves the rest readable' '
    head -n 40 cmds | grep "^scalar" >short &&
    tb_write cut <short >cpath &&
    truncate -s -5 "$(cat cpath)" &&
    test_expect_code 1 $PY $ORACLE/tb_read.py check cut short 2>err &&
    grep "truncated record" err &&
    test "$($PY $ORACLE/tb_read.py loaded cut)" = 39
'

test_expect_success 'a directory that cannot be made is an error naming it' '
    echo >plain &&
    test_expect_code 1 tb_write plain/run </dev/null 2>err &&
    grep "^tb_write: error: plain/run: cannot create directory: Not a directory$" err
'

test_done
