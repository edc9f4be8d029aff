#!/bin/sh
test_description='a checkpoint written tensor by tensor (fp32, bf16, fp16) reads right in h5py'
. "$(dirname "$0")/../lib/test-lib.sh"

# tests/unit/ckpt_writer.c writes three [5, 3, 4] datasets from value(k, i); h5py must see
# the fp32 values exactly and the bf16 and fp16 ones as torch rounds them (to nearest even).

test_expect_success 'the writer unit test keeps its checkpoint' '
    "$MB_ROOT/build/tests/unit/ckpt_writer.t" "$PWD/w.h5" >out &&
    grep "^ok .* - write" out && test -f w.h5 && ! test -e w.h5.tmp
'

test_expect_success 'h5py reads every value; bf16 and fp16 equal torch rounding' '
    "$PY" - w.h5 <<-\PYEOF
	import sys, h5py, numpy as np, torch
	f = h5py.File(sys.argv[1], "r")
	i = np.arange(60, dtype=np.int64)
	def value(k):
	    x = ((k * 7919 + i * 104729) % 2001 - 1000).astype(np.float32) / np.float32(64)
	    return x + np.float32(0.001) * np.float32(k)
	want32 = value(0).reshape(5, 3, 4)
	got = f["/model/a/f32"][...]
	assert got.dtype == np.float32 and (got == want32).all(), "f32"
	# h5py reads 2-byte floats as numpy float16: fp16 is native, bf16 needs its bits
	h = f["/model/c/f16"][...]
	assert h.dtype == np.float16, h.dtype
	want16 = torch.from_numpy(value(2)).to(torch.float16).numpy().reshape(5, 3, 4)
	assert (h.view(np.uint16) == want16.view(np.uint16)).all(), "f16 bits"
	d = f["/model/b/bf16"]
	t = d.id.get_type()
	assert t.get_size() == 2 and t.get_fields() == (15, 7, 8, 0, 7) and t.committed()
	raw = np.empty(d.shape, np.uint16)
	d.id.read(h5py.h5s.ALL, h5py.h5s.ALL, raw, mtype=t)
	wantb = torch.from_numpy(value(1)).to(torch.bfloat16).view(torch.int16).numpy()
	assert (raw.reshape(-1) == wantb.view(np.uint16)).all(), "bf16 bits"
	assert f["/train/iteration"][()] == 42
	assert bytes(f["/hf/files/blob.txt"][...]) == b"hello\n!"
	assert f.attrs["format"] == b"mb-ckpt-1"  # a fixed-length string: bytes in h5py
	print("h5py: all values as expected")
	PYEOF
'

test_done
