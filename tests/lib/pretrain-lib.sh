# pretrain-lib.sh - shared set-up of the mb-pretrain tests (sourced after test-lib.sh).
#
# make_corpus: a real corpus (the fortunes test corpus), a 512-entry BPE trained on it
# and its Megatron token files corpus_text_document.{bin,idx} in the trash directory.
# pretrain ARGS...: mb-pretrain on tests/data/recipes/small.yaml with that data, one
# thread per process (MPI tests oversubscribe two cores).
# pretrain_mpi N ARGS...: the same over N MPI ranks.
# losses FILE: the "iter N ... loss X" values of a log, one "N X" per line.
# gsm8k_rows SRC DST N: the first N GSM8K rows of SRC as {question, answer} with the
# final "#### N" line as the answer (short rows: a row of 256 tokens packs several).
# family_keys NAME: the model.* overrides of a test family (tests/data/models/NAME.json),
# the recipe's vocabulary and positions kept.

SMALL_RECIPE="$MB_ROOT/tests/data/recipes/small.yaml"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

make_corpus() {
    cp "$TESTDATA/corpora/fortunes.jsonl" corpus.jsonl &&
    mb-preprocess --train-tokenizer 512 --save-tokenizer tok.json --append-eod -w 2 \
        -o corpus corpus.jsonl 2>/dev/null
}

pretrain() {
    mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json "$@"
}

pretrain_mpi() {
    ranks=$1
    shift
    $MPIRUN -np "$ranks" mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json "$@"
}

family_keys() {
    tr -d '{}\n ' <"$MB_ROOT/tests/data/models/$1.json" | tr ',' '\n' |
        sed 's/"//g; s/:/=/; s/^/model./' |
        grep -v -e '^model.vocab_size=' -e '^model.max_position_embeddings='
}

losses() {
    sed -n 's/.*iter *\([0-9]*\)\/[0-9]* | loss \([^ ]*\) .*/\1 \2/p' "$1"
}

# same_losses A B TOL: every iteration's loss in log A within relative TOL of log B
same_losses() {
    losses "$1" >"$1.loss" && losses "$2" >"$2.loss" &&
    test -s "$1.loss" &&
    awk -v tol="$3" 'NR==FNR { a[$1] = $2; next }
        ($1 in a) { n++; d = a[$1] - $2; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2);
                    if (r > tol) { printf "# iter %s: %s vs %s (rel %.2e)\n", $1, a[$1], $2, r; bad = 1 } }
        END { if (n == 0) { print "# no common iterations"; exit 1 } exit bad }' "$1.loss" "$2.loss"
}

gsm8k_rows() { # SRC DST N
    "$PY" -c "
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], 'w') as o:
    for i, line in enumerate(f):
        if i == int(sys.argv[3]):
            break
        r = json.loads(line)
        o.write(json.dumps({'question': r['question'], 'answer': r['answer'].split('\n')[-1]}) + '\n')
" "$@"
}
