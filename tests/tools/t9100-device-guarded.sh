#!/bin/sh
test_description='the cpu-guarded backend: the same bits as cpu for every family (pretrain, LoRA, generate), and what it refuses'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# cpu-guarded runs the CPU kernels on memory host code cannot touch (kern/guarded/), so
# every result must be the CPU's bit for bit; dist.device (--device) wins over
# $MB_DEVICE, which make check sets to cpu-guarded. Two iterations per run keep this
# short; the weights after them are compared exactly (h5py), the losses as printed.
families="llama mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2"
short="train.train_iters=2 train.eval_iters=0 train.eval_interval=0 scheduler.lr_warmup_iters=1"

# same_h5 A B: every dataset of checkpoint files A and B equal, bit for bit
same_h5() {
    "$PY" -c "
import h5py, numpy as np, sys
def walk(g, out, p=''):
    for k, v in g.items():
        if isinstance(v, h5py.Dataset): out[p + '/' + k] = v[()]
        elif isinstance(v, h5py.Group): walk(v, out, p + '/' + k)
a, b = {}, {}
walk(h5py.File(sys.argv[1], 'r'), a); walk(h5py.File(sys.argv[2], 'r'), b)
assert a.keys() == b.keys() and len(a) > 0, (sorted(a), sorted(b))
bad = [k for k in a if a[k].tobytes() != b[k].tobytes()]
assert not bad, bad
" "$@"
}

test_expect_success 'setup: corpus' '
    make_corpus
'

for f in $families; do
    test_expect_success "$f: pretrain on cpu and cpu-guarded, the same losses and weights" '
        pretrain $(family_keys '$f') $short checkpoint.save='$f'_cpu dist.device=cpu \
            2>'$f'_cpu.log &&
        pretrain $(family_keys '$f') $short checkpoint.save='$f'_g dist.device=cpu-guarded \
            2>'$f'_g.log &&
        losses '$f'_cpu.log >a && losses '$f'_g.log >b && test -s a && cmp a b &&
        same_h5 '$f'_cpu/iter_0000002.h5 '$f'_g/iter_0000002.h5
    '

    test_expect_success "$f: LoRA on that base, the same losses and adapters" '
        for d in cpu cpu-guarded; do
            pretrain $(family_keys '$f') $short peft.peft=lora peft.dim=4 \
                checkpoint.pretrained_checkpoint='$f'_cpu checkpoint.save='$f'_lora_$d \
                dist.device=$d 2>'$f'_lora_$d.log || return 1
        done &&
        losses '$f'_lora_cpu.log >a && losses '$f'_lora_cpu-guarded.log >b && test -s a &&
        cmp a b &&
        same_h5 '$f'_lora_cpu/iter_0000002.h5 '$f'_lora_cpu-guarded/iter_0000002.h5
    '

    test_expect_success "$f: mb-generate gives the same tokens, greedy and sampled" '
        for d in cpu cpu-guarded; do
            mb-generate '$f'_cpu --prompt-ids "5 17 42" -n 6 --greedy --ids --ignore-eos \
                --device $d >'$f'_greedy_$d 2>err &&
            mb-generate '$f'_cpu --prompt-ids "5 17 42" -n 6 --temperature 1.5 --seed 3 \
                --ids --ignore-eos --device $d >'$f'_sampled_$d 2>err || return 1
        done &&
        test -s '$f'_greedy_cpu &&
        cmp '$f'_greedy_cpu '$f'_greedy_cpu-guarded &&
        cmp '$f'_sampled_cpu '$f'_sampled_cpu-guarded
    '
done

test_expect_success 'a host pointer given to an op: exit 2 naming the op and argument' '
    test_expect_code 2 guard_check host-arg 2>err &&
    grep "^guard_check: error: cpu-guarded: add: x: 0x[0-9a-f]* (64 bytes) is host memory" err &&
    grep "guard_check(main+" err
'

test_expect_success 'an extent past its allocation, a freed allocation: exit 2' '
    test_expect_code 2 guard_check extent 2>err &&
    grep "cpu-guarded: add: y: .* runs past the end of its allocation" err &&
    test_expect_code 2 guard_check freed 2>err &&
    grep "cpu-guarded: add: x: .* is in no live allocation of the device arena" err
'

test_expect_success 'host code touching backend memory: exit 2 naming the address, a backtrace' '
    test_expect_code 2 guard_check touch >out 2>err &&
    grep "^guard_check: error: cpu-guarded: host code touched device memory at 0x[0-9a-f]* (inside the allocation at 0x[0-9a-f]*)" err &&
    grep "guard_check(main+" err &&
    ! grep "read" out &&
    guard_check ok >out && grep "^ok$" out
'

test_expect_success 'dist.device=cuda is refused (not built), an unknown device is a usage error' '
    test_expect_code 1 pretrain $short dist.device=cuda 2>err &&
    grep "error: command line: dist.device=cuda: device cuda: this mb was built without the CUDA backend" err &&
    test_expect_code 2 pretrain $short dist.device=tpu 2>err &&
    grep "must be one of cpu|cpu-guarded|cuda|auto" err &&
    test_expect_code 1 mb-generate llama_cpu --prompt-ids "5" -n 1 --device cuda 2>err &&
    grep "^mb-generate: error: --device: device cuda: this mb was built without" err
'

test_expect_success 'MB_DEVICE sets the default; the key and --device win over it' '
    (
        export MB_DEVICE=tpu &&
        test_expect_code 2 pretrain $short 2>err &&
        grep "error: MB_DEVICE: unknown device .tpu. (known: cpu, cpu-guarded, cuda, auto)" err &&
        pretrain $short dist.device=cpu 2>/dev/null &&
        test_expect_code 2 mb-generate llama_cpu --prompt-ids "5" -n 1 2>err &&
        grep "^mb-generate: error: MB_DEVICE: unknown device" err &&
        mb-generate llama_cpu --prompt-ids "5" -n 1 --ids --device auto >out 2>err &&
        test -s out
    )
'

test_done
