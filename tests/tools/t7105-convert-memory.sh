#!/bin/sh
test_description='mb-convert streams: peak memory stays near the largest tensor, not the model'
. "$(dirname "$0")/../lib/test-lib.sh"

# A 16-layer model of 64 MB (fp32) whose largest tensor is 2 MB (a layer's fused
# gate/up slice; the embedding is 0.5 MB). Reading every tensor whole, or keeping the
# mapped input resident, would show as tens of MB; streaming one layer slice at a time
# keeps the conversion within a few MB of the tool's own start-up footprint.

rss_kb() {
    sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$1"
}

test_expect_success 'transformers makes a deep 64 MB model' '
    "$PY" -c "
import torch, transformers as tf
torch.manual_seed(0)
c = tf.LlamaConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=16,
                   num_attention_heads=4, num_key_value_heads=2, vocab_size=512,
                   tie_word_embeddings=False, architectures=[\"LlamaForCausalLM\"])
tf.LlamaForCausalLM(c).save_pretrained(\"deep\")
" &&
    size=$(wc -c <deep/model.safetensors) &&
    test "$size" -gt 60000000
'

test_expect_success 'both directions: peak RSS within 16 MB of mb-convert --help, round trip exact' '
    /usr/bin/time -v mb-convert --help >/dev/null 2>base.time &&
    /usr/bin/time -v mb-convert --from hf --to h5 deep deep.h5 2>to_h5.time &&
    /usr/bin/time -v mb-convert --from h5 --to hf deep.h5 back 2>to_hf.time &&
    cmp deep/model.safetensors back/model.safetensors &&
    base=$(rss_kb base.time) && to_h5=$(rss_kb to_h5.time) && to_hf=$(rss_kb to_hf.time) &&
    echo "# peak RSS KiB: --help $base, hf->h5 $to_h5, h5->hf $to_hf" &&
    test $((to_h5 - base)) -lt 16384 &&
    test $((to_hf - base)) -lt 16384
'

test_done
