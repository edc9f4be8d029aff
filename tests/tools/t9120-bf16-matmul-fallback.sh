#!/bin/sh
# matmul_bf16 on a CPU without a oneDNN bf16 matmul: ONEDNN_MAX_CPU_ISA=AVX2 makes oneDNN
# 2.6 refuse bf16, and the op table must take the portable path (widen + OpenBLAS) on its
# own, quietly, with the same checks against PyTorch (tests/unit/kern_bf16_matmul.c); so
# must matmul_bf16_rounded, still bitwise matmul_bf16 then convert (kern_bf16_out.c).
test_description='bf16 matmul falls back to the portable path without oneDNN bf16'
. "$(dirname "$0")/../lib/test-lib.sh"

test_expect_success 'ONEDNN_MAX_CPU_ISA=AVX2: portable path, within bound of torch, deterministic' '
    (cd "$MB_ROOT" && ONEDNN_MAX_CPU_ISA=AVX2 build/tests/unit/kern_bf16_matmul.t) >out 2>err &&
    cat out err &&
    grep -q "^# matmul_bf16 path: portable" out &&
    grep -q "^ok .* the op table.s result is bitwise the portable path" out &&
    grep -q "^1\.\.11$" out &&
    ! grep -q "^not ok" out &&
    ! test -s err
'

test_expect_success 'ONEDNN_MAX_CPU_ISA=AVX2: matmul_bf16_rounded and the bf16 activations keep their bits' '
    (cd "$MB_ROOT" && ONEDNN_MAX_CPU_ISA=AVX2 build/tests/unit/kern_bf16_out.t) >out 2>err &&
    cat out err &&
    grep -q "^ok .*default path: matmul_bf16_rounded A B\^T 1024x2816x512 bitwise" out &&
    grep -q "^1\.\.123$" out &&
    ! grep -q "^not ok" out &&
    ! test -s err
'

test_done
