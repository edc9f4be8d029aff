"""Chat templates: mb's renderer (tests/helpers/chat_render) against transformers'
apply_chat_template, and mb's answer mask against the one Megatron Bridge's method gives.

    chat_check.py rows OUT.jsonl [SFT_DIR]
        write the test conversations: built-in ones, and when SFT_DIR has them, MT-Bench
        two-turn questions with made-up answers and ShareGPT rows of
        fastchat_dummy_conversation.json
    chat_check.py render CASE ROWS.jsonl (--template FILE [--bos B] [--eos E] | --config FILE)
        every row rendered by both, byte for byte; a row transformers refuses must be an
        error in mb too (with raise_exception's message when the template raised)
    chat_check.py batch < CASES
        one "render ..." or "encode ..." command (as below, shell quoting) per line, all in
        this one process (importing transformers once); a summary line for each
    chat_check.py encode CASE ROWS.jsonl TOKENIZER_JSON (--template ... | --config ...)
        ids equal HF tokenizers' encode(text, add_special_tokens=False) of the text
        transformers rendered; mask equal to the reference computed here: the
        {% generation %} spans through transformers' return_assistant_tokens_mask (plus
        the end marker after each span when the template has a marker family), else the
        boundary markers of finetune.md 4.4 found as token subsequences; templates with
        neither must be an error for every row.

The normalisation of rows (finetune.md 4.1) is written here again, independently of
tok/chat.c. Prints one summary line; exit 1 on any difference.
"""
import json
import os
import shlex
import subprocess
import sys

import jinja2
import transformers

FAMILIES = [  # name, markers the template must hold, start, end markers (first, fallback)
    ("chatml", ["<|im_start|>", "<|im_end|>"], "<|im_start|>assistant\n", ["<|im_end|>\n", "<|im_end|>"]),
    ("llama3", ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
     "<|start_header_id|>assistant<|end_header_id|>\n\n", ["<|eot_id|>"]),
    ("gemma", ["<start_of_turn>", "<end_of_turn>"], "<start_of_turn>model\n", ["<end_of_turn>"]),
]


# ---------------------------------------------------------------- rows

def made_up_answer(qid, turn):
    base = f"Answer {turn} to question {qid}: here is a short reply."
    if qid % 3 == 0:
        base = "  " + base + "\n  "                      # trim in Gemma / Mistral
    if qid % 4 == 1:
        base += " Caf\u00e9 na\u00efve \u2014 \u2713 \u4f60\u597d"  # non-ASCII text
    if qid % 5 == 2 and turn == 2:
        base = "<think>\nLet me think about it.\n</think>\n\n" + base   # Qwen3 reasoning
    return base


def builtin_rows():
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}}]
    return [
        {"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there"},
                      {"role": "user", "content": "How are you?"}, {"role": "assistant", "content": "Fine, thanks."}]},
        {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"},
                      {"role": "assistant", "content": "Hi there"}]},
        {"system": "You answer in French.", "conversations": [
            {"from": "Human", "value": "Hello"}, {"from": "GPT", "value": "Bonjour !"}]},
        {"messages": [{"role": "user", "content": "Weather in Paris?"},
                      {"role": "assistant", "content": None, "tool_calls": [{"id": "call12345", "type": "function",
                       "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}]},
                      {"role": "tool", "tool_call_id": "call12345", "content": "{\"temp\": 21.5}"},
                      {"role": "assistant", "content": "It is 21.5 \u00b0C in Paris."}], "tools": tools},
        {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " What is this? "}]},
                      {"role": "assistant", "content": "A cat."}]},
    ]


def write_rows(out, sft_dir):
    rows = builtin_rows()
    mt = os.path.join(sft_dir or "", "mt_bench_questions.jsonl")
    if sft_dir and os.path.exists(mt):
        for line in open(mt, encoding="utf-8"):
            q = json.loads(line)
            qid, turns = q["question_id"], q["turns"]
            msgs = []
            if qid % 4 == 0:
                msgs.append({"role": "system", "content": f"You are an expert in {q['category']}."})
            for t, text in enumerate(turns[:2], 1):
                msgs += [{"role": "user", "content": text}, {"role": "assistant", "content": made_up_answer(qid, t)}]
            rows.append({"messages": msgs})
    fc = os.path.join(sft_dir or "", "fastchat_dummy_conversation.json")
    if sft_dir and os.path.exists(fc):
        rows += [{"conversations": r["conversations"]} for r in json.load(open(fc, encoding="utf-8"))[:100]]
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} rows")


def normalise(row):
    """finetune.md 4.1, written independently of tok/chat.c."""
    key = next(k for k in ("messages", "conversation", "conversations") if k in row)
    out = []
    for m in row[key]:
        if key == "conversations":
            role = {"human": "user", "gpt": "assistant"}.get(m["from"].lower(), m["from"].lower())
            m = {k: v for k, v in m.items() if k not in ("from", "value")} | {"role": role, "content": m.get("value")}
        m = dict(m)
        if role_of(m) not in ("system", "user", "assistant", "tool"):
            raise ValueError(f"unknown role {m['role']}")
        if m.get("content") is None:
            m["content"] = ""
        for call in m.get("tool_calls") or []:
            args = call.get("function", {}).get("arguments")
            if isinstance(args, str):
                call["function"] = dict(call["function"], arguments=json.loads(args))
        out.append(m)
    if isinstance(row.get("system"), str) and not any(m["role"] == "system" for m in out):
        out.insert(0, {"role": "system", "content": row["system"]})
    return out


def role_of(m):
    return m.get("role")


# ---------------------------------------------------------------- the two renderers

_loaded = {}


def cached(key, make):
    """Tokenizers load once per process (loading dominates the run time)."""
    if key not in _loaded:
        _loaded[key] = make()
    return _loaded[key]


class Hf:
    """apply_chat_template of a tokenizer with this case's template and special tokens
    (passed as keyword arguments, which transformers lets override the tokenizer's)."""

    def __init__(self, tok, text, specials):
        self.tok, self.text, self.specials = tok, text, specials

    def apply_chat_template(self, msgs, **kw):
        return self.tok.apply_chat_template(msgs, chat_template=self.text, **self.specials, **kw)


def template_args(args):
    """(template text, config path for mb, HF renderer factory)"""
    if "--config" in args:
        # the special tokens transformers takes from tokenizer_config.json (its
        # special_tokens_map), strings or {"content": ...}
        cfg = args[args.index("--config") + 1]
        conf = json.load(open(cfg, encoding="utf-8"))
        specials = {}
        for key in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
            v = conf.get(key)
            v = v.get("content") if isinstance(v, dict) else v
            if v is not None:
                specials[key] = v
        tok_json = os.path.join(os.path.dirname(cfg), "tokenizer.json")
        return conf["chat_template"], cfg, lambda tok_file: Hf(
            cached(tok_json, lambda: transformers.PreTrainedTokenizerFast(tokenizer_file=tok_json)),
            conf["chat_template"], specials)
    path = args[args.index("--template") + 1]
    text = open(path, encoding="utf-8").read()
    specials = {}
    for opt, key in (("--bos", "bos_token"), ("--eos", "eos_token")):
        if opt in args:
            specials[key] = args[args.index(opt) + 1]
    cfg = os.path.basename(path) + ".tokenizer_config.json"
    json.dump(dict(chat_template=text, **specials), open(cfg, "w", encoding="utf-8"), ensure_ascii=False)

    def hf(tok_file):
        return Hf(cached(tok_file, lambda: transformers.PreTrainedTokenizerFast(tokenizer_file=tok_file)),
                  text, specials)
    return text, cfg, hf


def hf_render(tok, row):
    try:
        msgs = normalise(row)
        return tok.apply_chat_template(msgs, tools=row.get("tools"), tokenize=False, add_generation_prompt=False), None
    except (jinja2.TemplateError, TypeError, ValueError, KeyError) as e:
        return None, e


def mb_lines(mode, cfg, rows, *extra):
    p = subprocess.run(["chat_render", mode, cfg, rows, *extra], capture_output=True, text=True, encoding="utf-8")
    if p.returncode not in (0, 1) or p.stderr:
        sys.exit(f"chat_render {mode} failed ({p.returncode}): {p.stderr}")
    return p.stdout.split("\n")[:-1]


def error_matches(line, exc):
    if not line.startswith("error: "):
        return False
    if type(exc).__name__ == "TemplateError":  # raise_exception: its message must be in mb's
        return str(exc) in line
    return True


def check_render(case, rows_path, args, default_tok):
    text, cfg, hf = template_args(args)
    tok = hf(default_tok)
    rows = [json.loads(l) for l in open(rows_path, encoding="utf-8")]
    got = mb_lines("render", cfg, rows_path)
    bad = equal = errors = 0
    for i, (row, line) in enumerate(zip(rows, got), 1):
        want, exc = hf_render(tok, row)
        if exc is not None:
            ok = error_matches(line, exc)
            errors += ok
        else:
            ok = not line.startswith("error: ") and json.loads(line) == want
            equal += ok
        if not ok:
            bad += 1
            if bad <= 3:
                print(f"# row {i}: mb {line[:400]!r}\n#   HF {(want if exc is None else repr(exc))!r:.400}")
    if len(got) != len(rows):
        bad += 1
        print(f"# mb printed {len(got)} lines for {len(rows)} rows")
    print(f"{case}: {equal} rows rendered identically, {errors} refused by both, {bad} differ")
    return bad == 0


# ---------------------------------------------------------------- the answer mask

def marker_mask(ids, family, enc):
    start = enc(family[2])
    ends = [enc(e) for e in family[3]]
    mask = [0] * len(ids)

    def at(pos, m):
        return ids[pos:pos + len(m)] == m

    i = 0
    while i < len(ids):
        if not at(i, start):
            i += 1
            continue
        j = k = i + len(start)
        elen = 0
        while k < len(ids):
            elen = next((len(e) for e in ends if at(k, e)), 0)
            if elen:
                break
            k += 1
        for p in range(j, min(k + elen, len(ids))):
            mask[p] = 1
        i = k + elen
    return mask


def check_encode(case, rows_path, tok_file, args):
    text, cfg, hf = template_args(args)
    tok = hf(tok_file)
    raw = tok.tok.backend_tokenizer

    def enc(s):
        return raw.encode(s, add_special_tokens=False).ids
    family = next((f for f in FAMILIES if all(m in text for m in f[1])), None)
    generation = "{% generation %}" in text or "{%- generation %}" in text
    rows = [json.loads(l) for l in open(rows_path, encoding="utf-8")]
    got = mb_lines("encode", cfg, rows_path, tok_file)
    bad = equal = refused = supervised = 0
    for i, (row, line) in enumerate(zip(rows, got), 1):
        rendered, exc = hf_render(tok, row)
        if exc is not None or not (family or generation):
            ok = line.startswith("error: ") and (exc is not None or "no {% generation %} block" in line)
            refused += ok
        else:
            ids = enc(rendered)
            if generation:
                out = tok.apply_chat_template(normalise(row), tools=row.get("tools"), tokenize=True,
                                              return_dict=True, return_assistant_tokens_mask=True)
                assert list(out["input_ids"]) == ids
                mask = list(out["assistant_masks"])
                if family:
                    # the end marker right after each generation span is supervised too
                    for e in [enc(x) for x in family[3]]:
                        for p in range(1, len(ids)):
                            if mask[p - 1] and not mask[p] and ids[p:p + len(e)] == e:
                                mask[p:p + len(e)] = [1] * len(e)
            else:
                mask = marker_mask(ids, family, enc)
            ok = not line.startswith("error: ") and json.loads(line) == {"ids": ids, "mask": mask}
            equal += ok
            supervised += sum(mask)
        if not ok:
            bad += 1
            if bad <= 3:
                print(f"# row {i}: mb {line[:600]!r}")
                if exc is None and (family or generation):
                    print(f"#   want ids {ids[:80]} mask {mask[:80]}")
    print(f"{case}: {equal} rows with equal ids and mask ({supervised} supervised tokens), "
          f"{refused} refused as expected, {bad} differ")
    return bad == 0


def run(argv):
    cmd = argv[0]
    if cmd == "render":
        return check_render(argv[1], argv[2], argv[3:], os.environ["CHAT_DEFAULT_TOKENIZER"])
    if cmd == "encode":
        return check_encode(argv[1], argv[2], argv[3], argv[4:])
    sys.exit(f"unknown command {cmd}")


def main():
    cmd = sys.argv[1]
    if cmd == "batch":
        ok = True
        for line in sys.stdin:
            if line.strip():
                ok &= run(shlex.split(line))
                sys.stdout.flush()
        return 0 if ok else 1
    if cmd == "rows":
        write_rows(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
        return 0
    return 0 if run(sys.argv[1:]) else 1


if __name__ == "__main__":
    sys.exit(main())
