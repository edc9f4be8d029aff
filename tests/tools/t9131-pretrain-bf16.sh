#!/bin/sh
test_description='mb-pretrain mixed_precision=bf16_mixed: bitwise resume, fp32 <-> bf16 resume, DP, distributed optimizer, TP, PP and adapters'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# tests/data/recipes/small.yaml, 8 iterations. In bf16 the master weights are fp32 but
# the GEMMs read them rounded to bf16, so a 1-ulp difference of a master weight (another
# summation order of a gradient) now and then moves a GEMM operand by a whole bf16 step:
# runs that sum in other orders (DP, TP) differ by more than in fp32. They are checked to
# the tolerance of the fp32 tests (t6001, t8802, t9030: 1e-5 per iteration's loss; seen
# here with the portable matmul_bf16: DP2 2.0e-6, TP2 5.2e-6, TP2+SP 4.0e-6, PP2 0, tied
# PP2 8.4e-7); bf16 and fp32 differ by more than that (seen: 2.4e-5), and by less than
# bf16 noise (1e-3). The figures are printed at the end.
bf16=mixed_precision=bf16_mixed

# maxrel A B: the largest relative difference of the losses of logs A and B, in figures
# (printed at the end)
maxrel() {
    losses "$1" >"$1.l" && losses "$2" >"$2.l" &&
    awk -v what="$1 vs $2" 'NR==FNR { a[$1] = $2; next } ($1 in a) { d = a[$1] - $2;
        if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > m) m = r }
        END { printf "# %s: largest relative difference %.2e\n", what, m }' "$1.l" "$2.l" \
        >>figures
}

test_expect_success 'setup: corpus; 8 iterations in fp32 and in bf16, checkpoints at 4 and 8' '
    make_corpus &&
    pretrain checkpoint.save=f32 checkpoint.save_interval=4 2>f32.log &&
    pretrain $bf16 checkpoint.save=b16 checkpoint.save_interval=4 2>b16.log &&
    grep "mixed_precision fp32: everything in fp32" f32.log &&
    grep "mixed_precision bf16_mixed: GEMMs of the linear layers" b16.log &&
    test "$(cat b16/latest)" = iter_0000008.h5
'

test_expect_success 'bf16 differs from fp32 by more than 1e-5, by less than 1e-3' '
    maxrel b16.log f32.log &&
    ! same_losses b16.log f32.log 1e-5 &&
    same_losses b16.log f32.log 1e-3 &&
    losses b16.log >l && awk "NR==1 { first = \$2 } END { exit !(\$2 < first) }" l
'

test_expect_success 'bf16: stop at 4, resume to 8: losses, weights and moments bitwise' '
    pretrain $bf16 checkpoint.save=halves checkpoint.save_interval=4 train.exit_interval=4 \
        2>first.log &&
    pretrain $bf16 checkpoint.save=halves checkpoint.load=halves 2>second.log &&
    grep "resumed from halves/iter_0000004.h5: iteration 4" second.log &&
    test $(losses second.log | wc -l) -eq 4 &&
    same_losses second.log b16.log 0 &&
    "$PY" "$ORACLE/ckpt_compare.py" halves/iter_0000008.h5 b16/iter_0000008.h5
'

test_expect_success 'the checkpoints are the fp32 ones: same tensors and dtypes as fp32 runs write' '
    "$PY" -c "
import h5py, sys
def walk(path):
    out = {}
    h5py.File(path, \"r\").visititems(
        lambda n, o: out.__setitem__(n, (o.dtype.str, o.shape)) if isinstance(o, h5py.Dataset) else None)
    return out
a, b = walk(\"b16/iter_0000008.h5\"), walk(\"f32/iter_0000008.h5\")
assert a == b, set(a.items()) ^ set(b.items())
assert a[\"model/embedding/word_embeddings/weight\"][0] == \"<f4\", a
"
'

test_expect_success 'an fp32 checkpoint resumes in bf16, a bf16 one in fp32' '
    mkdir f2b b2f &&
    cp f32/iter_0000004.h5 f2b/ && echo iter_0000004.h5 >f2b/latest &&
    cp b16/iter_0000004.h5 b2f/ && echo iter_0000004.h5 >b2f/latest &&
    pretrain $bf16 checkpoint.load=f2b checkpoint.save=f2b 2>f2b.log &&
    pretrain checkpoint.load=b2f checkpoint.save=b2f 2>b2f.log &&
    grep "resumed from f2b/iter_0000004.h5: iteration 4" f2b.log &&
    grep "resumed from b2f/iter_0000004.h5: iteration 4" b2f.log &&
    maxrel f2b.log f32.log && maxrel f2b.log b16.log &&
    maxrel b2f.log f32.log && maxrel b2f.log b16.log &&
    same_losses f2b.log f32.log 1e-3 && same_losses f2b.log b16.log 1e-3 &&
    same_losses b2f.log f32.log 1e-3 && same_losses b2f.log b16.log 1e-3 &&
    ! same_losses f2b.log f32.log 0 && ! same_losses b2f.log b16.log 0 &&
    test "$(cat f2b/latest)" = iter_0000008.h5 && test "$(cat b2f/latest)" = iter_0000008.h5
'

test_expect_success 'bf16: DP=2 and DP=2 with the distributed optimizer = DP=1 to 1e-5' '
    pretrain_mpi 2 $bf16 2>dp2.log &&
    pretrain_mpi 2 $bf16 ddp.use_distributed_optimizer=true 2>dp2d.log &&
    maxrel dp2.log b16.log && maxrel dp2d.log b16.log &&
    same_losses dp2.log b16.log 1e-5 &&
    same_losses dp2d.log b16.log 1e-5
'

test_expect_success 'bf16: TP=2 (with and without sequence parallelism) and PP=2 = 1 rank to 1e-5' '
    pretrain_mpi 2 $bf16 dist.tensor_model_parallel_size=2 2>tp2.log &&
    pretrain_mpi 2 $bf16 dist.tensor_model_parallel_size=2 dist.sequence_parallel=true \
        2>tp2sp.log &&
    pretrain_mpi 2 $bf16 dist.pipeline_model_parallel_size=2 2>pp2.log &&
    maxrel tp2.log b16.log && maxrel tp2sp.log b16.log && maxrel pp2.log b16.log &&
    same_losses tp2.log b16.log 1e-5 &&
    same_losses tp2sp.log b16.log 1e-5 &&
    same_losses pp2.log b16.log 1e-5
'

test_expect_success 'bf16, tied embeddings: PP=2 (a copy on each end stage) = 1 rank to 1e-5' '
    tied=model.share_embeddings_and_output_weights=true &&
    pretrain $bf16 $tied 2>tied1.log &&
    pretrain_mpi 2 $bf16 $tied dist.pipeline_model_parallel_size=2 2>tiedpp2.log &&
    maxrel tiedpp2.log tied1.log &&
    same_losses tiedpp2.log tied1.log 1e-5
'

test_expect_success 'bf16 LoRA and DoRA: the adapters start as a no-op (first loss = the base bf16 one, bitwise), then train' '
    p="train.eval_iters=0 peft.dim=8 checkpoint.pretrained_checkpoint=f32" &&
    pretrain $bf16 $p train.train_iters=4 peft.peft=lora 2>lora.log &&
    pretrain $bf16 $p train.train_iters=4 peft.peft=dora 2>dora.log &&
    pretrain $bf16 $p train.train_iters=1 scheduler.lr_warmup_iters=0 2>base.log &&
    pretrain $p train.train_iters=4 peft.peft=lora 2>lora32.log &&
    losses lora.log | head -1 >l1 && losses dora.log | head -1 >d1 && losses base.log >b1 &&
    cmp l1 b1 && cmp d1 b1 &&
    maxrel lora.log lora32.log &&
    same_losses lora.log lora32.log 1e-3 && ! same_losses lora.log lora32.log 1e-6 &&
    losses lora.log >l && awk "NR==1 { first = \$2 } END { exit !(\$2 < first) }" l
'

test_expect_success 'an unknown mixed_precision is refused, naming the key and the values' '
    test_expect_code 2 pretrain mixed_precision=fp16_mixed 2>err &&
    grep "error: command line: mixed_precision=fp16_mixed: key .mixed_precision. must be one of fp32|bf16_mixed, got .fp16_mixed." err &&
    printf "mixed_precision: bf16\n" >r.yaml && cat "$SMALL_RECIPE" >>r.yaml &&
    test_expect_code 1 mb-pretrain --recipe r.yaml data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json 2>err &&
    grep "r.yaml:1.*mixed_precision.*must be one of fp32|bf16_mixed, got .bf16." err
'

cat figures
test_done
