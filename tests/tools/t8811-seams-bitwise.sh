#!/bin/sh
test_description='the model-parallel seams change nothing: single-process losses, checkpoints and resumes of every family bitwise equal to the code before issue 12 (commit d7058e5, built here)'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# The last commit before the parallel state, the TP layers and the distributed optimizer
# (git log: "ckpt: walk the global heaps ..."): the source of its library and
# mb-pretrain is kept in tests/data/seams (`git archive`; a clone may be shallow), and
# its mb-pretrain is built here, in the trash directory.
BASE=d7058e5
FAMILIES="llama mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2"

test_expect_success "setup: the mb-pretrain of $BASE, a real corpus and tokenizer" '
    tar -xzf "$MB_ROOT/tests/data/seams/mb-$BASE.tar.gz" &&
    mv "mb-$BASE" base &&
    make -C base -j2 bin/mb-pretrain >base.build 2>&1 &&
    test -x base/bin/mb-pretrain &&
    make_corpus
'

# train BIN FAMILY OUT: 20 iterations saved at 10 and 20, and a resume from 10 to 20
train() {
    keys=$(tr -d '{}\n ' <"$MB_ROOT/tests/data/models/$2.json" | tr ',' '\n' |
        sed 's/"//g; s/:/=/; s/^/model./' |
        grep -v -e '^model.vocab_size=' -e '^model.max_position_embeddings=')
    set -- "$1" "$3" $keys
    bin=$1 out=$2
    shift 2
    mkdir "$out" &&
    "$bin/mb-pretrain" --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json "$@" train.train_iters=20 \
        checkpoint.save="$out/ck" checkpoint.save_interval=10 2>"$out/log" &&
    "$bin/mb-pretrain" --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json "$@" train.train_iters=20 \
        checkpoint.load="$out/ck/iter_0000010.h5" checkpoint.save="$out/ck2" 2>"$out/log2" &&
    losses "$out/log" >"$out/loss" && losses "$out/log2" >"$out/loss2" &&
    test $(wc -l <"$out/loss") = 20 && test $(wc -l <"$out/loss2") = 10
}

for f in $FAMILIES; do
    test_expect_success "$f: the same losses, bit for bit, straight and resumed" "
        train base/bin $f old_$f && train '$MB_ROOT/bin' $f new_$f &&
        cmp old_$f/loss new_$f/loss && cmp old_$f/loss2 new_$f/loss2
    "
    test_expect_success "$f: the same weights and Adam moments, bit for bit (h5py)" "
        \"\$PY\" -c '
import sys, h5py
def datasets(path):
    out = {}
    h5py.File(path).visititems(
        lambda n, o: out.__setitem__(n, o[()].tobytes()) if isinstance(o, h5py.Dataset) else None)
    return {k: v for k, v in out.items() if k.startswith((\"model/\", \"optim/\"))}
for ck in (\"ck\", \"ck2\"):
    a = datasets(\"old_$f/%s/iter_0000020.h5\" % ck)
    b = datasets(\"new_$f/%s/iter_0000020.h5\" % ck)
    assert len(a) > 10 and a.keys() == b.keys(), ck
    bad = [k for k in a if a[k] != b[k]]
    assert not bad, (ck, bad)
'
    "
done

test_done
