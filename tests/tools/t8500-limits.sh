#!/bin/sh
test_description='limits on whole-file and whole-line reads, and the out-of-memory message'
# Every file read whole (tokenizer.json, config.json, recipes, latest) stops at
# MB_MAX_FILE_BYTES (default 128 MiB) and every input line of mb-preprocess at
# --max-line-bytes (default 256 MiB), with an error naming the file and the limit: a
# device that never ends (/dev/zero) is an error in well under a second of work, not an
# out-of-memory abort. Running out of memory is one sentence with the size, exit 1.
. "$(dirname "$0")/../lib/test-lib.sh"

tok="$TESTDATA/tokenizers/gpt2"
printf '{"text": "one two three"}\n{"text": "%s"}\n{"text": "four"}\n' \
    "$(head -c 200 /dev/zero | tr '\0' x)" >in.jsonl

# CMD must exit 1 within 30 s (it takes well under a second; 30 leaves room for a loaded
# machine and sanitizer builds), its stderr in the file ERR.
fails_fast() {
    err=$1
    shift 1
    start=$(date +%s)
    timeout 30 "$@" 2>"$err"
    rc=$?
    took=$(($(date +%s) - start))
    cat "$err" >&2
    [ "$rc" = 1 ] || { echo "exit $rc, expected 1" >&2; return 1; }
    echo "took ${took}s" >&2
}

test_expect_success 'mb-preprocess -t /dev/zero: exit 1 naming the file and the limit' '
    fails_fast err mb-preprocess -t /dev/zero -i in.jsonl -o out &&
    grep -q "error: /dev/zero: larger than the limit of 134217728 bytes" err &&
    grep -q MB_MAX_FILE_BYTES err && test_no_files "out_*"
'

test_expect_success 'mb-pretrain tokenizer.tokenizer_model=/dev/zero: exit 1, same message' '
    fails_fast err mb-pretrain --recipe tiny tokenizer.tokenizer_model=/dev/zero &&
    grep -q "error: /dev/zero: larger than the limit of 134217728 bytes" err
'

test_expect_success 'a recipe that never ends (--recipe /dev/zero): exit 1' '
    fails_fast err mb-pretrain --recipe /dev/zero &&
    grep -q "error: /dev/zero: larger than the limit" err
'

test_expect_success 'MB_MAX_FILE_BYTES below a real tokenizer.json: refused; at its size: loads' '
    size=$(wc -c <"$tok/tokenizer.json") &&
    MB_MAX_FILE_BYTES=$((size - 1)) test_expect_code 1 \
        mb-preprocess -t "$tok" -i in.jsonl -o small 2>err &&
    grep -q "error: $tok/tokenizer.json: larger than the limit of $((size - 1)) bytes" err &&
    MB_MAX_FILE_BYTES=$size mb-preprocess -t "$tok" -i in.jsonl -o exact -w 1 &&
    mb-preprocess -t "$tok" -i in.jsonl -o default -w 1 &&
    cmp exact_text_document.bin default_text_document.bin &&
    cmp exact_text_document.idx default_text_document.idx
'

test_expect_success 'a bad MB_MAX_FILE_BYTES is ignored (the default applies)' '
    MB_MAX_FILE_BYTES=-5 mb-preprocess -t "$tok" -i in.jsonl -o neg -w 1 &&
    MB_MAX_FILE_BYTES=12abc mb-preprocess -t "$tok" -i in.jsonl -o junk -w 1 &&
    cmp neg_text_document.bin default_text_document.bin
'

test_expect_success '--max-line-bytes: a longer line is an error naming FILE:LINE and the limit' '
    test_expect_code 1 mb-preprocess -i in.jsonl -o long --max-line-bytes 100 2>err &&
    cat err &&
    grep -q "error: in.jsonl:2: line longer than the limit of 100 bytes (--max-line-bytes raises it)" err &&
    test_no_files "long_*"
'

test_expect_success '--max-line-bytes at the longest line: the output is the default one' '
    longest=$(awk "{ if (length(\$0) > n) n = length(\$0) } END { print n }" in.jsonl) &&
    mb-preprocess -i in.jsonl -o fit --max-line-bytes "$longest" -w 1 &&
    mb-preprocess -i in.jsonl -o dflt -w 1 &&
    cmp fit_text_document.bin dflt_text_document.bin &&
    test_expect_code 1 mb-preprocess -i in.jsonl -o over --max-line-bytes $((longest - 1)) &&
    test_expect_code 2 mb-preprocess -i in.jsonl -o zero --max-line-bytes 0
'

test_expect_success 'the limit holds for gzip input and a final line without a newline' '
    gzip -c in.jsonl >in.jsonl.gz &&
    test_expect_code 1 mb-preprocess -i in.jsonl.gz -o gz --max-line-bytes 100 2>err &&
    grep -q "in.jsonl.gz:2: line longer than the limit of 100 bytes" err &&
    printf "{\"text\": \"%s\"}" "$(head -c 300 /dev/zero | tr "\0" y)" >last.jsonl &&
    test_expect_code 1 mb-preprocess -i last.jsonl -o last --max-line-bytes 100 2>err &&
    grep -q "last.jsonl:1: line longer than the limit of 100 bytes" err
'

test_expect_success 'input with no newline at all (-i /dev/zero): exit 1 at the default limit' '
    fails_fast err mb-preprocess -i /dev/zero -o zero &&
    grep -q "error: /dev/zero:1: line longer than the limit of 268435456 bytes" err
'

# the tables of a tokenizer are indexed by id: a damaged id must not size them (found by
# fuzz_tokenizer: 128128099 made 1.5 GB of tables; 2^31 wrapped to a negative index)
test_expect_success 'token ids beyond 2^24 in tokenizer.json are errors naming the key' '
    for case in "vocab 128128099" "added 2147483648" "added 16777216" "template -1"; do
        set -- $case
        "$PY" - "$tok/tokenizer.json" "$1" "$2" >bad.json <<-\EOF || return 1
	import json, sys
	tok = json.load(open(sys.argv[1], encoding="utf-8"))
	where, bad = sys.argv[2], int(sys.argv[3])
	if where == "vocab":
	    tok["model"]["vocab"]["hello"] = bad
	elif where == "added":
	    tok["added_tokens"][0]["id"] = bad
	else:
	    tok["post_processor"] = {"type": "TemplateProcessing",
	        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
	                   {"Sequence": {"id": "A", "type_id": 0}}],
	        "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [bad], "tokens": ["<s>"]}}}
	json.dump(tok, sys.stdout)
	EOF
        test_expect_code 1 mb-preprocess -t bad.json -i in.jsonl -o bad 2>err &&
        cat err && grep -q "error: bad.json: .*not a valid id (0 to 16777215)" err || return 1
    done
'

test_expect_success 'a command-line value that is not UTF-8 is refused (the config is printed as YAML)' '
    test_expect_code 2 mb-pretrain --recipe tiny --print-config \
        "data.data_path=$(printf "a\\250b")" >out 2>err &&
    grep -q "the value of data.data_path is not valid UTF-8" err &&
    mb-pretrain --recipe tiny --print-config "data.data_path=caf$(printf "\\303\\251")" >ok.yaml &&
    grep -q "data_path: \\[\"caf" ok.yaml
'

test_expect_success '--print-config escapes what YAML cannot hold raw, and loads back the same' '
    cat >odd.yaml <<-\EOF &&
	data:
	  data_path: "a\x7fb\u0085c\ufeffd\x80e\u2028f\u2029g"
	EOF
    mb-pretrain --recipe odd.yaml --print-config >printed.yaml &&
    grep -F "data_path: [\"a\\u007fb\\u0085c\\ufeffd\\u0080e\\u2028f\\u2029g\"]" printed.yaml &&
    mb-pretrain --recipe printed.yaml --print-config >again.yaml &&
    cmp printed.yaml again.yaml
'

# AddressSanitizer (make SANITIZE=1) reserves terabytes of address space and reports a
# failed allocation itself, so ulimit -v cannot bring mb's own message out there.
if mb-preprocess --version | grep -q -- -fsanitize=address; then
    test_skip 'out of memory: one sentence' 'built with -fsanitize=address'
else
test_expect_success 'out of memory: one sentence with the size and what for, exit 1, no core' '
    (ulimit -v 600000 && MB_MAX_FILE_BYTES=4000000000 test_expect_code 1 \
        mb-preprocess -t /dev/zero -i in.jsonl -o oom) 2>err &&
    cat err &&
    grep -Eq "^mb-preprocess: error: out of memory: cannot allocate [0-9]+ bytes \([0-9.]+ MiB\) for the contents of /dev/zero; " err &&
    test_no_files "oom_* core*"
'
fi

test_done
