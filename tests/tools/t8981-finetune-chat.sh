#!/bin/sh
test_description='mb-finetune on chat rows (messages and ShareGPT conversations): the chat template of the base checkpoint'"'"'s tokenizer, the supervised tokens Bridge'"'"'s method gives, full SFT learns, LoRA adapters export; rows and templates it cannot use exit 1 naming them'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# The Qwen2 tokenizer with Qwen2.5's real chat template (ChatML) in its
# tokenizer_config.json; a tiny base trained briefly on the fortunes with it (the
# vocabulary padded from 151646 to 151680 rows), which carries the tokenizer files.
# Conversations: MT-Bench two-turn questions with made-up answers, ShareGPT rows of
# FastChat, and rows with tools and a system key (tests/oracle/chat_check.py rows, less
# the one with list content, which Qwen2.5's template cannot render).
SEQ=384

# finetune RECIPE ARGS...
finetune() {
    recipe=$1
    shift
    mb-finetune --recipe $recipe checkpoint.pretrained_checkpoint=base \
        data.seq_length=$SEQ data.packed=false train.micro_batch_size=1 \
        train.global_batch_size=2 scheduler.lr_warmup_iters=0 train.eval_interval=0 \
        logger.log_interval=1 "$@"
}

test_expect_success 'setup: the tokenizer with its chat template, a tiny base, conversations' '
    "$MB_ROOT/scripts/fetch-test-data.sh" &&
    mkdir tok && cp "$TESTDATA/tokenizers/qwen2/tokenizer.json" tok/ &&
    "$PY" -c "
import json, sys
json.dump({\"chat_template\": open(sys.argv[1]).read(), \"eos_token\": \"<|im_end|>\"},
          open(\"tok/tokenizer_config.json\", \"w\"))
" "$MB_ROOT/tests/data/chat/qwen2.5.jinja" &&
    cp "$TESTDATA/corpora/fortunes.jsonl" corpus.jsonl &&
    mb-preprocess -t tok --append-eod -w 2 -o corpus corpus.jsonl 2>/dev/null &&
    mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok model.vocab_size=0 \
        model.max_position_embeddings=$SEQ train.train_iters=2 train.eval_interval=0 \
        scheduler.lr_warmup_iters=0 \
        checkpoint.save=base 2>base.log &&
    "$PY" "$ORACLE/chat_check.py" rows all.jsonl "$MB_SHARED_DATA/sft" >out &&
    grep -q "^185 rows" out &&
    head -n 4 all.jsonl >rows.jsonl && tail -n 180 all.jsonl >>rows.jsonl
'

# Bridge's chat path (finetune.md 4.4) in Python: transformers renders the row with the
# template, HF tokenizers encode it, the ChatML markers give the mask (chat_check.py's
# reference); cut to the sequence, and rows left with no supervised token skipped
test_expect_success 'the template comes from the base; examples and supervised tokens as Bridge counts them' '
    finetune sft_lora train.train_iters=1 data.data_path=rows.jsonl 2>count.log &&
    grep "chat template of .*tokenizer_config.json (chatml markers)" count.log &&
    "$PY" -c "
import json, sys
sys.path.insert(0, sys.argv[1])
import chat_check, transformers
tok = transformers.PreTrainedTokenizerFast(tokenizer_file=\"tok/tokenizer.json\")
text = open(sys.argv[2]).read()
enc = lambda s: tok.backend_tokenizer.encode(s, add_special_tokens=False).ids
family = chat_check.FAMILIES[0]
n = sup = 0
for line in open(\"rows.jsonl\"):
    row = json.loads(line)
    s = tok.apply_chat_template(chat_check.normalise(row), tools=row.get(\"tools\"), tokenize=False,
                                chat_template=text, eos_token=\"<|im_end|>\")
    ids = enc(s)
    mask = chat_check.marker_mask(ids, family, enc)[:$SEQ]
    if sum(mask):
        n, sup = n + 1, sup + sum(mask)
print(\"sft data train: %d examples, %d supervised tokens\" % (n, sup))
" "$ORACLE" "$MB_ROOT/tests/data/chat/qwen2.5.jinja" >want &&
    cat want && grep -q "$(cat want)" count.log
'

# the base has seen 2 iterations: full SFT (the output layer trains) learns the answers'
# tokens quickly; LoRA's adapters on it are exported for PEFT
test_expect_success 'full SFT on the conversations: the loss goes down; LoRA adapters export' '
    finetune sft_full train.train_iters=16 data.data_path=rows.jsonl \
        optimizer.lr=3e-3 2>full.log &&
    first=$(losses full.log | awk "NR <= 4 { s += \$2; n++ } END { print s / n }") &&
    last=$(losses full.log | awk "NR > 12 { s += \$2; n++ } END { print s / n }") &&
    echo "# loss $first -> $last (means of the first and last 4)" &&
    awk -v a="$first" -v b="$last" "BEGIN { exit !(b < a - 1) }" &&
    finetune sft_lora train.train_iters=2 data.data_path=rows.jsonl checkpoint.save=ft 2>ft.log &&
    mb-convert --from h5 --to peft ft peft 2>err && test -s peft/adapter_model.safetensors
'

test_expect_success 'a template without assistant markers or generation blocks: exit 1 naming the row' '
    "$PY" -c "
import json, sys
json.dump({\"chat_template\": open(sys.argv[1]).read(), \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"},
          open(\"tok/tokenizer_config.json\", \"w\"))
" "$MB_ROOT/tests/data/chat/mistral-v0.3.jinja" &&
    test_expect_code 1 finetune sft_lora train.train_iters=1 data.data_path=rows.jsonl \
        tokenizer.tokenizer_model=tok 2>err &&
    grep "error: rows.jsonl:1: .*generation" err
'

test_expect_success 'a chat row with a tokenizer that has no chat template: exit 1 naming the row' '
    echo "{\"eos_token\": \"<|im_end|>\"}" >tok/tokenizer_config.json &&
    test_expect_code 1 finetune sft_lora train.train_iters=1 data.data_path=rows.jsonl \
        tokenizer.tokenizer_model=tok 2>err &&
    grep "error: rows.jsonl:1: a chat row (messages/conversations), but the tokenizer has no chat template" err
'

test_expect_success 'a row the template cannot render: exit 1 naming the row and the template line' '
    sed -n 5p all.jsonl >list.jsonl &&
    test_expect_code 1 finetune sft_lora train.train_iters=1 data.data_path=list.jsonl 2>err &&
    grep "error: list.jsonl:1: base/iter_0000002.h5:/hf/files/tokenizer_config.json: chat_template:23: unsupported operand types for +: str and list" err
'

test_expect_success 'a chat row with an unknown role: exit 1 naming the row and the role' '
    echo "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}" >bad.jsonl &&
    test_expect_code 1 finetune sft_lora train.train_iters=1 data.data_path=bad.jsonl 2>err &&
    grep "error: bad.jsonl:1: .*wizard" err
'

test_done
