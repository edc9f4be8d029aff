#!/bin/sh
test_description='io/safetensors against the huggingface libraries: files and sharded model directories written back byte-identical, the same tensors read, the same shard plan, the same files refused'
. "$(dirname "$0")/../lib/test-lib.sh"

# st_oracle.py writes the inputs with safetensors.torch.save_file and transformers'
# save_pretrained and reads them with safetensors.safe_open; st_tool
# (tests/helpers/st_tool.c) does the same through io/safetensors.h.

cases="f32 bf16 f16 i64 u8 scalar zero mixed empty"

test_expect_success 'reference files: F32, BF16, F16, I64, U8, scalars, zero-size, every dtype, no tensor' '
    $PY $ORACLE/st_oracle.py files ref &&
    for c in $cases; do test -s ref/$c.safetensors || exit 1; done
'

test_expect_success 'mb reads in each file what safe_open reads (names, dtypes, shapes, CRC of the bytes)' '
    $PY $ORACLE/st_oracle.py list $(for c in $cases; do echo ref/$c.safetensors; done) >ref.list &&
    for c in $cases; do
        echo "== ref/$c.safetensors" && st_tool list ref/$c.safetensors || exit 1
    done >mb.list &&
    cmp ref.list mb.list &&
    grep "^w F32 \[4,5\] " mb.list && grep "^s F32 \[\] " mb.list && grep "^empty F32 \[0,4\] 00000000" mb.list
'

for c in $cases; do
    test_expect_success "$c: mb's copy (written in pieces, out of order) is byte-identical (cmp)" "
        st_tool copy ref/$c.safetensors copy.$c.safetensors &&
        cmp ref/$c.safetensors copy.$c.safetensors &&
        test_no_files 'copy.$c.safetensors.tmp*'
    "
done

test_expect_success 'the listing sees values: a changed data byte changes one CRC and nothing else' '
    cp ref/f32.safetensors changed.safetensors &&
    size=$(wc -c <changed.safetensors) &&
    printf "\\001" | dd of=changed.safetensors bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null &&
    st_tool list ref/f32.safetensors >mb.f32 &&
    st_tool list changed.safetensors >mb.changed &&
    test "$(diff mb.f32 mb.changed | grep -c "^[<>]")" = 2
'

test_expect_success 'save_pretrained, sharded fp32 (untied) and bf16 (tied), and unsharded: directories copied byte for byte, index included' '
    $PY $ORACLE/st_oracle.py model m32 30KB 0 float32 m16 20KB 1 bfloat16 \
        one 5GB 1 float32 >/dev/null 2>&1 &&
    $PY $ORACLE/st_oracle.py list m32 m16 one >ref.dirs &&
    test -f m32/model-00012-of-00012.safetensors && test -f one/model.safetensors &&
    for m in m32 m16 one; do
        st_tool copy $m $m.mb &&
        for f in $m/*.safetensors $m/*.index.json; do
            test -f "$f" || continue
            cmp "$f" $m.mb/${f#*/} || exit 1
        done &&
        echo "== $m" && st_tool list $m || exit 1
    done >mb.dirs &&
    cmp ref.dirs mb.dirs &&
    test_path_is_missing one.mb/model.safetensors.index.json &&
    grep -q "\"total_parameters\"" m32.mb/model.safetensors.index.json
'

test_expect_success 'the shard plan of save_pretrained: mb assigns the state dict to the same shard files' '
    for m in m32 m16; do
        max=$(( ${m#m} == 32 ? 30000 : 20000 )) &&
        st_tool shards $max $(cut -d" " -f2 $m.sizes) >plan.$m &&
        cut -d" " -f1 $m.sizes | paste -d" " - plan.$m | while read name t file; do
            grep -q "\"$name\": \"$file\"" $m/model.safetensors.index.json ||
                { echo "$name: mb plans $file"; exit 1; }
        done || exit 1
    done
'

test_expect_success 'the shard plan of huggingface_hub on awkward size lists (oversized tensors, exact fits)' '
    cat >lists <<-EOF &&
	10 6 6 2 6 2 2
	10 1 11 1 12 3 10 10 1
	5 5 5 5
	100 1 2 3
	7 8
	3 1 1 1 9 1 1 1 1
	EOF
    $PY $ORACLE/st_oracle.py shards <lists >ref.plan &&
    while read line; do
        echo "== $line" && st_tool shards $line || exit 1
    done <lists >mb.plan &&
    cmp ref.plan mb.plan &&
    grep -c "model-00004-of-00004" mb.plan
'

test_expect_success 'damaged files: mb refuses exactly the ones the reference reader refuses, never crashes' '
    $PY $ORACLE/st_oracle.py mutants ref/zero.safetensors mut &&
    $PY $ORACLE/st_oracle.py accepts mut/* >ref.acc &&
    for f in mut/*; do
        st_tool list $f >/dev/null 2>err
        rc=$?
        case $rc in
        0) echo "$f ok" ;;
        1) echo "$f bad" && grep -q "^st_tool: error: $f" err || { echo "$f: no file in the error"; exit 1; } ;;
        *) echo "$f: exit status $rc" >&2; exit 1 ;;
        esac
    done >mb.acc &&
    cmp ref.acc mb.acc &&
    test "$(grep -c " bad" mb.acc)" -gt 100 && test "$(grep -c " ok" mb.acc)" -gt 10
'

test_expect_success 'errors name the file and the place: truncated data, header byte, tensor' '
    head -c 200 ref/f32.safetensors >cut.safetensors &&
    test_expect_code 1 st_tool list cut.safetensors 2>err &&
    grep "st_tool: error: cut.safetensors: tensor .w.: data_offsets end 100 is beyond the data (48 bytes)" err &&
    sed "s/\"w\":{\"dtype\":\"F32\"/\"w\":{\"dtype\":\"F99\"/" ref/f32.safetensors >dt.safetensors &&
    test_expect_code 1 st_tool list dt.safetensors 2>err &&
    grep "dt.safetensors: tensor .w.: unknown dtype .F99." err &&
    sed "s/\"shape\":\\[4,5\\]/\"shape\":[4;5]/" ref/f32.safetensors >syn.safetensors &&
    test_expect_code 1 st_tool list syn.safetensors 2>err &&
    grep "syn.safetensors: header byte [0-9]*: expected" err
'

test_expect_success 'directory errors: shard missing, tensor not in the index, index naming the wrong shard' '
    cp -r m32 bad1 && rm bad1/model-00003-of-00012.safetensors &&
    test_expect_code 1 st_tool list bad1 2>err &&
    grep "bad1/model-00003-of-00012.safetensors" err &&
    cp -r m32 bad2 &&
    grep -v "\"model.layers.0.input_layernorm.weight\"" m32/model.safetensors.index.json \
        >bad2/model.safetensors.index.json &&
    test_expect_code 1 st_tool list bad2 2>err &&
    grep "tensor .model.layers.0.input_layernorm.weight.: not in bad2/model.safetensors.index.json" err &&
    cp -r m32 bad3 &&
    sed "s/\"lm_head.weight\": \"model-00011/\"lm_head.weight\": \"model-00010/" \
        m32/model.safetensors.index.json >bad3/model.safetensors.index.json &&
    test_expect_code 1 st_tool list bad3 2>err &&
    grep "bad3/model.safetensors.index.json: tensor .lm_head.weight.: not in model-00010-of-00012" err &&
    mkdir nothing && test_expect_code 1 st_tool list nothing 2>err &&
    grep "nothing: no model.safetensors or model.safetensors.index.json" err
'

test_done
