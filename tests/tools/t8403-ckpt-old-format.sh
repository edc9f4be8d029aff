#!/bin/sh
test_description='checkpoints are written in the newest HDF5 format with fixed-length string attributes; files of the old layout (variable-length strings, earliest format) still read the same in every tool'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/ckpt-fixture-lib.sh"

test_expect_success 'setup: a trained checkpoint and a converted one' '
    make_ckpt_fixtures
'

# h5py and h5dump, not mb, read the format back: superblock version 3 (the newest of
# HDF5 1.10, with checksummed metadata) and fixed-length strings for every attribute.
test_expect_success 'new files: superblock 3, fixed-length UTF-8 string attributes' '
    for f in ck/iter_0000002.h5 conv.h5; do
        h5dump -B -H "$f" | grep -q "SUPERBLOCK_VERSION 3" &&
        "$PY" -c "
import sys, h5py
f = h5py.File(sys.argv[1], \"r\")
for k in f.attrs:
    t = f.attrs.get_id(k).dtype
    s = h5py.check_string_dtype(t)
    assert s is not None and s.length is not None and s.encoding == \"utf-8\", (k, t)
assert f.attrs[\"format\"] == b\"mb-ckpt-1\"
" "$f" || return 1
    done
'

# The old layout, as mb wrote it before: variable-length strings, the earliest format.
test_expect_success 'setup: the same checkpoints rewritten by h5py in the old layout' '
    for f in ck/iter_0000002.h5 conv.h5; do
        "$PY" -c "
import sys, h5py
src = h5py.File(sys.argv[1], \"r\")
dst = h5py.File(sys.argv[2], \"w\", libver=\"earliest\")
for name in src:
    src.copy(src[name], dst, name)
for k, v in src.attrs.items():
    dst.attrs[k] = v.decode()  # a str: a variable-length string
dst.close()
f = h5py.File(sys.argv[2], \"r\")
assert h5py.check_string_dtype(f.attrs.get_id(\"model_config\").dtype).length is None
" "$f" "old-$(basename "$f")" || return 1
    done &&
    h5dump -B -H old-iter_0000002.h5 | grep -q "SUPERBLOCK_VERSION 0"
'

test_expect_success 'old files: info and verify read them as the new ones' '
    mb-ckpt info ck/iter_0000002.h5 | grep -v "^file:" >new.info &&
    mb-ckpt info old-iter_0000002.h5 | grep -v "^file:" >old.info &&
    cmp new.info old.info &&
    mb-ckpt verify old-iter_0000002.h5 && mb-ckpt verify old-conv.h5
'

test_expect_success 'old files: mb-generate and mb-convert --to hf give the same output' '
    mb-generate ck/iter_0000002.h5 --prompt-ids "5 6 7" -n 8 --ids >new.ids 2>/dev/null &&
    mb-generate old-iter_0000002.h5 --prompt-ids "5 6 7" -n 8 --ids >old.ids 2>/dev/null &&
    test -s new.ids && cmp new.ids old.ids &&
    mb-convert --from h5 --to hf old-conv.h5 old-hf 2>/dev/null &&
    for f in model.safetensors config.json tokenizer.json; do
        cmp hf/$f old-hf/$f || return 1
    done
'

# shellcheck disable=SC2086 # TINY_ARGS is a word list
test_expect_success 'old files: a resume gives the losses of a resume from the new file' '
    mb-pretrain $TINY_ARGS train.train_iters=4 scheduler.override_opt_param_scheduler=true checkpoint.load=ck/iter_0000002.h5 2>new.log &&
    mb-pretrain $TINY_ARGS train.train_iters=4 scheduler.override_opt_param_scheduler=true checkpoint.load=old-iter_0000002.h5 2>old.log &&
    grep "resumed from old-iter_0000002.h5: iteration 2" old.log &&
    grep "iter .*/4 | loss" new.log | sed "s/ | tok\/s.*//" >new.loss &&
    grep "iter .*/4 | loss" old.log | sed "s/ | tok\/s.*//" >old.loss &&
    test $(wc -l <new.loss) = 2 && cmp new.loss old.loss
'

# libhdf5 1.10 spins for ever on a global heap whose free-space object has size 0 (the
# fuzzer found it): mb walks the heaps first and names the byte instead.
test_expect_success 'old files: a damaged global heap is an error naming the byte, not a hang' '
    "$PY" -c "
import struct, sys
b = bytearray(open(sys.argv[1], \"rb\").read())
at = b.find(b\"GCOL\")
assert at > 0
b[at + 16:at + 32] = struct.pack(\"<HHIQ\", 0, 0, 0, 0)  # first object: free space of size 0
open(sys.argv[2], \"wb\").write(b)
" old-iter_0000002.h5 heap0.h5 &&
    test_expect_code 1 timeout 60 mb-ckpt info heap0.h5 2>err &&
    grep "mb-ckpt: error: heap0.h5: damaged global heap at byte [0-9]* (variable-length strings)" err &&
    test_expect_code 1 timeout 60 mb-generate heap0.h5 --prompt-ids "5 6 7" -n 2 2>err &&
    grep "heap0.h5: damaged global heap" err
'

test_done
