#!/bin/sh
test_description='a full disk during every HDF5 writer (mb-convert --to h5, mb-ckpt average and convert-dtype, the trainer with 1 and 2 ranks): exit 1 naming the file, no crash or hang, nothing left, latest untouched'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/ckpt-fixture-lib.sh"

# A small tmpfs is the full disk (mounting needs root, as `make check` runs in CI). Each
# writer runs on it at several sizes, so that it fails at different points of the file:
# creating it, its first datasets, the middle, the attributes at the end.
SIZES="16k 72k 100k 128k 160k"
AVG_SIZES="16k 72k 100k 128k" # the average has no /optim: 160k holds it

# remount DIR at SIZE, empty
disk() {
    umount disk 2>/dev/null
    mount -t tmpfs -o "size=$1" tmpfs disk
}

# the command must exit 1 (not a signal, not a hang) naming FILE.tmp, and leave no file
# in disk/ but those there before (files.before)
fails_cleanly() {
    file=$1
    shift
    test_expect_code 1 timeout 120 "$@" >out 2>err &&
    grep -q "error: $file.tmp: \(no room for a checkpoint of about [0-9]* bytes: No space left on device\|cannot \(create checkpoint file\|write dataset\|write attribute\)[^:]*(HDF5: No space left on device)\)" err ||
        { cat err; return 1; }
    same_files
}

files() {
    find disk -type f | sort >"$1"
}

same_files() {
    files files.after
    if ! cmp -s files.before files.after; then
        echo "disk/ holds: $(cat files.after), expected: $(cat files.before)" >&2
        return 1
    fi
}

if [ "$(id -u)" != 0 ]; then
    test_skip 'mounting a tmpfs needs root' 'all'
    test_done
fi

test_expect_success 'setup: a checkpoint, its HF export, a tmpfs' '
    make_ckpt_fixtures && mkdir disk && disk 1m && umount disk
'
trap 'umount "$TRASH/disk" 2>/dev/null' EXIT

test_expect_success 'each writer works on a large enough tmpfs, and gives back what it reserved' '
    disk 2m &&
    mb-convert --from hf --to h5 hf disk/c.h5 2>err &&
    mb-ckpt average ck/iter_0000002.h5 ck/iter_0000002.h5 -o disk/a.h5 >/dev/null &&
    mb-ckpt convert-dtype ck --dtype bf16 -o disk/b.h5 >/dev/null &&
    mb-ckpt verify disk/c.h5 && mb-ckpt verify disk/a.h5 && mb-ckpt verify disk/b.h5 &&
    for f in a b c; do
        test $(du -k disk/$f.h5 | cut -f1) -le $(( $(stat -c %s disk/$f.h5) / 1024 + 4 )) ||
            { du -k disk/$f.h5; stat -c %s disk/$f.h5; return 1; }
    done
'

test_expect_success 'mb-convert --from hf --to h5, file and directory output, each size' '
    for s in $SIZES; do
        disk $s && files files.before &&
        fails_cleanly disk/c.h5 mb-convert --from hf --to h5 hf disk/c.h5 &&
        fails_cleanly disk/out/iter_0000000.h5 mb-convert --from hf --to h5 hf disk/out ||
            { echo "at size $s"; return 1; }
    done
'

test_expect_success 'mb-convert --from hf --to h5 under 2 ranks, each size' '
    for s in $SIZES; do
        disk $s && files files.before &&
        fails_cleanly disk/c.h5 $MPIRUN -np 2 mb-convert --from hf --to h5 hf disk/c.h5 ||
            { echo "at size $s"; return 1; }
    done
'

test_expect_success 'mb-ckpt average and convert-dtype, each size' '
    for s in $AVG_SIZES; do
        disk $s && files files.before &&
        fails_cleanly disk/a.h5 mb-ckpt average ck/iter_0000002.h5 ck/iter_0000002.h5 -o disk/a.h5 &&
        fails_cleanly disk/b.h5 mb-ckpt convert-dtype ck --dtype fp32 -o disk/b.h5 ||
            { echo "at size $s"; return 1; }
    done
'

# The trainer: a first save fits, the next does not; `latest` keeps naming the first.
# shellcheck disable=SC2086 # TINY_ARGS is a word list
trainer_fills() {
    ranks=$1 run=
    [ "$ranks" = 1 ] || run="$MPIRUN -np $ranks"
    disk 3m && $run mb-pretrain $TINY_ARGS train.micro_batch_size=1 checkpoint.save=disk/ck 2>log &&
    test "$(cat disk/ck/latest)" = iter_0000002.h5 && mb-ckpt verify disk/ck >/dev/null &&
    fallocate -l $(( $(df -k --output=avail disk | tail -1) * 1024 - 40960 )) disk/filler &&
    files files.before &&
    test_expect_code 1 timeout 120 $run mb-pretrain $TINY_ARGS train.micro_batch_size=1 \
        checkpoint.load=disk/ck checkpoint.save=disk/ck train.train_iters=4 \
        scheduler.override_opt_param_scheduler=true 2>err &&
    grep -q "error: disk/ck/iter_0000004.h5.tmp: no room for a checkpoint of about" err &&
    same_files &&
    test "$(cat disk/ck/latest)" = iter_0000002.h5 && mb-ckpt verify disk/ck >/dev/null
}

test_expect_success 'mb-pretrain, 1 rank: the save fails cleanly, latest untouched' '
    trainer_fills 1
'

test_expect_success 'mb-pretrain, 2 ranks: both exit 1, latest untouched' '
    trainer_fills 2 && grep -q "\[r1\] error: disk/ck/iter_0000004.h5.tmp: another rank failed" err
'

# Where nothing can be reserved (file systems without fallocate: an LD_PRELOAD shim
# makes fallocate fail with EOPNOTSUPP), HDF5's own writes fail on the full disk: the
# failed file is closed so that HDF5 has nothing left to write, and no exit handler
# crashes.
test_expect_success 'without fallocate, HDF5 write failures: exit 1, no crash, nothing left' '
    cat >nofalloc.c <<-\EOF &&
	#include <errno.h>
	#include <sys/types.h>
	int fallocate(int fd, int mode, off_t off, off_t len)
	{ (void)fd; (void)mode; (void)off; (void)len; errno = EOPNOTSUPP; return -1; }
	int fallocate64(int fd, int mode, off_t off, off_t len)
	{ (void)fd; (void)mode; (void)off; (void)len; errno = EOPNOTSUPP; return -1; }
	EOF
    cc -shared -fPIC -o nofalloc.so nofalloc.c &&
    for s in 16k 28k 40k 64k 90k; do
        disk $s && files files.before &&
        (
            export LD_PRELOAD="$TRASH/nofalloc.so" &&
            case $s in 16k|28k)
                fails_cleanly disk/a.h5 mb-ckpt average ck/iter_0000002.h5 ck/iter_0000002.h5 -o disk/a.h5
            esac &&
            case $s in 16k|28k|40k)
                fails_cleanly disk/c.h5 mb-convert --from hf --to h5 hf disk/c.h5
            esac &&
            fails_cleanly disk/b.h5 mb-ckpt convert-dtype ck --dtype fp32 -o disk/b.h5 &&
            fails_cleanly disk/ck/iter_0000002.h5 mb-pretrain $TINY_ARGS checkpoint.save=disk/ck &&
            grep -q "(HDF5: No space left on device)" err
        ) || { echo "at size $s"; return 1; }
    done
'

umount "$TRASH/disk"
test_done
