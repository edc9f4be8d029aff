#!/bin/sh
# tests/unit/kern_bf16_convert.c over all 2^32 floats (MB_BF16_EXHAUSTIVE=1): the op
# table's f32 -> bf16 (AVX512-BF16 where the CPU has it) and the AVX512 kernel alone,
# bit for bit against the portable kernel; the quick run covers 2^26 of them.
test_description='bf16 conversion, every float'
. "$(dirname "$0")/../lib/test-lib.sh"

test_expect_success 'f32 -> bf16 on all 2^32 floats: AVX512-BF16 = portable, and torch' '
    (cd "$MB_ROOT" && MB_BF16_EXHAUSTIVE=1 build/tests/unit/kern_bf16_convert.t) >out &&
    cat out &&
    grep -q "^ok 1 - f32 -> bf16, all 2^32 floats: op table = portable" out &&
    grep -q "^ok 2 - f32 -> bf16, all 2^32 floats: AVX512-BF16 kernel = portable" out &&
    ! grep -q "^not ok" out
'

test_done
