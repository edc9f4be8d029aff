"""bench/torch_finetune.py - SFT with LoRA in PyTorch + HF peft, the peer of mb-finetune in
bench/finetune. Prints tokens/s.

    python bench/torch_finetune.py HF_DIR DATA.jsonl [--template T] [--answer-key K]
        [--seq S] [--batch B] [--steps N] [--warmup W] [--threads N] [--dim R] [--alpha A]
        [--targets q_proj,...] [--compile] [--attn sdpa|eager]

HF_DIR is a transformers model directory (scripts/smollm2-hf.sh makes SmolLM2-135M-Instruct's);
DATA holds prompt/answer rows. Each row becomes, as Megatron Bridge's prompt-completion path
does it (finetune.md 4.2): the prompt TEMPLATE.format(**row) and the answer row[K], tokenized
separately without special tokens, then prompt + answer + EOS, right-truncated to S + 1
tokens; inputs are its first S, labels the next token, the loss on the answer and EOS labels
only (the mean over them); shorter rows are padded to S with EOS (loss 0), so every step
processes B x S tokens, as mb's trainer does. Rows are taken in file order, B per step.

The model is the transformers class of HF_DIR in fp32 with peft LoRA (r DIM, lora_alpha ALPHA,
dropout 0) on TARGETS (default: the HF names of Megatron Bridge's four targets: q, k, v, o,
gate, up, down projections), the base frozen; AdamW (fused) on the adapter only, lr 1e-4,
betas 0.9/0.98, eps 1e-8, weight decay 0.01, gradient clipping 1.0 (Bridge's PEFT recipe).

Tokens/s = B*S*N / wall time of the N steps after W warm-up steps. Output: 'key value' lines on
stdout (tok_per_s, step_s_median, peak_rss_kib, trainable, loss_first, loss_last, torch,
peft, settings).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch


def rows_of(path, template, key, tok, seq, need):
    """The first NEED rows of PATH as (ids [S+1], label mask [S]) tensors."""
    eos = tok.eos_token_id
    out = []
    with open(path) as f:
        for line in f:
            if len(out) == need:
                break
            row = json.loads(line)
            prompt = tok.encode(template.format(**row), add_special_tokens=False)
            answer = tok.encode(str(row[key]).strip(" "), add_special_tokens=False) + [eos]
            ids = (prompt + answer)[:seq + 1]
            mask = ([0] * len(prompt) + [1] * len(answer))[:seq + 1]
            pad = seq + 1 - len(ids)
            ids, mask = ids + [eos] * pad, mask + [0] * pad
            # the mask of the label at position t is that of token t + 1
            out.append((torch.tensor(ids), torch.tensor(mask[1:], dtype=torch.float32)))
    if len(out) < need:
        sys.exit(f"torch_finetune: {path} has {len(out)} rows, {need} needed")
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("hf_dir")
    p.add_argument("data")
    p.add_argument("--template", default="Question: {question}\nAnswer: ")
    p.add_argument("--answer-key", default="answer")
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--alpha", type=float, default=32)
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    import peft
    import transformers as tf

    tok = tf.AutoTokenizer.from_pretrained(a.hf_dir)
    model = tf.AutoModelForCausalLM.from_pretrained(a.hf_dir, dtype=torch.float32,
                                                    attn_implementation=a.attn)
    model.config.use_cache = False
    cfg = peft.LoraConfig(r=a.dim, lora_alpha=a.alpha, lora_dropout=0.0, bias="none",
                          target_modules=a.targets.split(","), task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, cfg)
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01,
                            fused=True)
    n = a.warmup + a.steps
    rows = rows_of(a.data, a.template, a.answer_key, tok, a.seq, n * a.batch)

    def loss_of(ids, mask):
        logits = model(input_ids=ids[:, :-1]).logits
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                               ids[:, 1:].reshape(-1), reduction="none")
        return (ce * mask.reshape(-1)).sum() / mask.sum().clamp(min=1)

    step_fn = torch.compile(loss_of) if a.compile else loss_of
    times, losses = [], []
    for s in range(n):
        batch = rows[s * a.batch:(s + 1) * a.batch]
        ids = torch.stack([r[0] for r in batch])
        mask = torch.stack([r[1] for r in batch])
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = step_fn(ids, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        times.append(time.perf_counter() - t0)
        print(f"step {s + 1}/{n} loss {losses[-1]:.4f} {times[-1]:.3f} s", file=sys.stderr)
    timed = times[a.warmup:]
    print(f"tok_per_s {a.batch * a.seq * len(timed) / sum(timed):.1f}")
    print(f"step_s_median {statistics.median(timed):.4f}")
    print(f"peak_rss_kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
    print(f"trainable {sum(q.numel() for q in params)}")
    print(f"loss_first {losses[0]:.6f}")
    print(f"loss_last {losses[-1]:.6f}")
    print(f"torch {torch.__version__}")
    print(f"peft {peft.__version__}")
    print(f"settings threads={a.threads} B={a.batch} S={a.seq} r={a.dim} alpha={a.alpha} "
          f"compile={a.compile} attn={a.attn} "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}")


if __name__ == "__main__":
    main()
