"""Check an mb-pretrain checkpoint with h5py against the model config it was trained
with: every expected dataset under /model and /optim with its shape, counters under
/train, and the attributes. Prints TAP-free diagnostics; exit 1 on the first problem."""
import json
import sys

import h5py


def expected(c):
    L, H = c["num_layers"], c["hidden_size"]
    nh, ng, d = c["num_attention_heads"], c["num_query_groups"], c["kv_channels"]
    ffn, V = c["ffn_hidden_size"], c["vocab_size"]
    fc1 = 2 * ffn if c["activation"] in ("swiglu", "geglu") else ffn
    e = {
        "embedding/word_embeddings/weight": (V, H),
        "decoder/layers/self_attention/linear_qkv/layer_norm_weight": (L, H),
        "decoder/layers/self_attention/linear_qkv/weight": (L, (nh + 2 * ng) * d, H),
        "decoder/layers/self_attention/linear_proj/weight": (L, H, nh * d),
        "decoder/layers/mlp/linear_fc1/layer_norm_weight": (L, H),
        "decoder/layers/mlp/linear_fc1/weight": (L, fc1, H),
        "decoder/layers/mlp/linear_fc2/weight": (L, H, ffn),
        "decoder/final_layernorm/weight": (H,),
    }
    if not c["share_embeddings_and_output_weights"]:
        e["output_layer/weight"] = (V, H)
    return e


def main():
    path, cfg_path, iteration = sys.argv[1], sys.argv[2], int(sys.argv[3])
    want = json.load(open(cfg_path))
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        for k, v in want.items():
            if cfg.get(k) != v:
                sys.exit(f"model_config {k}: {cfg.get(k)!r}, expected {v!r}")
        json.loads(f.attrs["recipe"])
        for attr in ("tokenizer", "mb_version", "format"):
            if attr not in f.attrs:
                sys.exit(f"attribute {attr} missing")
        for group in ("model", "optim/exp_avg", "optim/exp_avg_sq"):
            names = []
            f[group].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            exp = expected(cfg)
            if sorted(names) != sorted(exp):
                sys.exit(f"/{group}: datasets {sorted(names)}, expected {sorted(exp)}")
            for n, shape in exp.items():
                if f[group][n].shape != shape:
                    sys.exit(f"/{group}/{n}: shape {f[group][n].shape}, expected {shape}")
        if int(f["train/iteration"][()]) != iteration:
            sys.exit(f"/train/iteration {f['train/iteration'][()]}, expected {iteration}")
        if int(f["train/consumed_train_samples"][()]) != iteration * 8:
            sys.exit("consumed_train_samples is not iteration x global batch")
        if int(f["optim/step"][()]) != iteration:
            sys.exit("/optim/step is not the iteration")
    print(f"{path}: {len(expected(cfg))} tensors with the expected names and shapes")


main()
