#!/usr/bin/env python3
"""tb_read.py - read TensorBoard event files with TensorBoard's own code (test oracle).

usage:
  tb_read.py gen                       print the command list t50xx feeds to tb_write
  tb_read.py check DIR EXPECT          DIR must hold exactly one event file with exactly
                                       the events of EXPECT (a tb_write command list)
  tb_read.py loaded DIR                print how many scalar events TensorBoard loads
  tb_read.py corrupt FILE N PART       flip one bit of record N (0 = file_version event);
                                       PART is len, lencrc, data or datacrc

check reads the file twice:
  1. strictly, record by record, with TensorBoard's TF-free TFRecord reader
     (tensorboard.compat.tensorflow_stub.pywrap_tensorflow.PyRecordReader_New), which
     verifies both masked CRC-32Cs of every record and raises DataLossError on a
     mismatch or a truncated record. Each record must parse as a tensorboard.Event and
     be byte-identical to what the protobuf library serializes for the same event.
  2. through event_accumulator.EventAccumulator, the loader the TensorBoard server
     uses: every tag, step and value must come back (values compared as float32 bits,
     NaN to NaN), and text tensors must hold the file's bytes.

Exit status: 0 when everything matches, 1 with the first difference on stderr.
"""
import math
import os
import struct
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator as ea  # noqa: E402
from tensorboard.compat import tf  # noqa: E402
from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: E402
from tensorboard.compat.tensorflow_stub import errors  # noqa: E402
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow  # noqa: E402
from tensorboard.plugins.text import summary_v2 as text_summary  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402


def die(msg):
    print("tb_read: " + msg, file=sys.stderr)
    sys.exit(1)


def gen():
    """Four tags over steps 1..100, negatives and large magnitudes, a tag of special
    values, and a UTF-8 text at step 0 and again at step 100."""
    lines = []
    for s in range(1, 101):
        lines.append("scalar loss %d %r" % (s, 11.0 * math.exp(-s / 25.0) + 0.01 * s))
        lines.append("scalar train/lr %d %r" % (s, 3e-4 * min(1.0, s / 10.0)))
        lines.append("scalar neg %d %r" % (s, -1234.5678 * s * (-1) ** s))
        lines.append("scalar big %d %r" % (s, (-1) ** s * 3.0e38 / s ** 8))
    special = ["0", "-0", "1e-45", "-1.17549435e-38", "3.4028234663852886e38", "1e39",
               "-1e39", "inf", "-inf", "nan", "16777217", "0.1"]
    for i, v in enumerate(special):
        lines.append("scalar special/values %d %s" % (i + 1, v))
    lines.append("text config 0 config.txt")
    lines.append("scalar loss 101 2.5")
    lines.append("text config 101 config.txt")
    return "\n".join(lines) + "\n"


def read_expect(path):
    events = []
    with open(path) as f:
        for line in f:
            kind, tag, step, arg = line.split()
            if kind == "scalar":
                events.append((kind, tag, int(step), np.float32(float(arg))))
            else:
                with open(os.path.join(os.path.dirname(path) or ".", arg), "rb") as t:
                    events.append((kind, tag, int(step), t.read()))
    return events


def event_file(d):
    names = [n for n in os.listdir(d) if "tfevents" in n]
    if len(names) != 1:
        die("%s: expected one event file, found %r" % (d, names))
    return os.path.join(d, names[0])


def strict_records(path):
    """Every record's bytes, CRCs verified by TensorBoard's reader."""
    reader = pywrap_tensorflow.PyRecordReader_New(path)
    out = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return out
        except errors.DataLossError as e:
            die("record %d: %s" % (len(out), e.message))
        out.append(reader.record())


def reference_bytes(ev, exp):
    """What the protobuf library serializes for the event EXP with EV's wall time."""
    kind, tag, step, val = exp
    if kind == "scalar":
        value = summary_pb2.Summary.Value(tag=tag, simple_value=float(val))
        summary = summary_pb2.Summary(value=[value])
    else:
        summary = text_summary.text_pb(tag, val)
    return event_pb2.Event(wall_time=ev.wall_time, step=step,
                           summary=summary).SerializeToString()


def check_records(path, expect):
    records = strict_records(path)
    if len(records) != len(expect) + 1:
        die("%d records, expected %d" % (len(records), len(expect) + 1))
    first = event_pb2.Event.FromString(records[0])
    if first.file_version != "brain.Event:2" or first.step != 0:
        die("first record is not the file_version event: %s" % first)
    if records[0] != event_pb2.Event(wall_time=first.wall_time,
                                     file_version="brain.Event:2").SerializeToString():
        die("file_version record differs from protobuf's serialization")
    now, last = time.time(), first.wall_time
    if not now - 3600 < first.wall_time <= now:
        die("wall_time %r is not the current time" % first.wall_time)
    for i, (raw, exp) in enumerate(zip(records[1:], expect), 1):
        ev = event_pb2.Event.FromString(raw)
        if raw != reference_bytes(ev, exp):
            die("record %d (%s %s step %d): bytes differ from protobuf's:\n  mb:  %s\n"
                "  ref: %s" % (i, exp[0], exp[1], exp[2], raw.hex(),
                               reference_bytes(ev, exp).hex()))
        if not last <= ev.wall_time <= now:
            die("record %d: wall_time %r goes backwards or ahead" % (i, ev.wall_time))
        last = ev.wall_time


def same_f32(got, want):
    a, b = np.float32(got), np.float32(want)
    return (np.isnan(a) and np.isnan(b)) or a.tobytes() == b.tobytes()


def accumulate(d):
    acc = ea.EventAccumulator(d, size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    return acc


def check_accumulator(d, expect):
    acc = accumulate(d)
    tags = acc.Tags()
    want_scalars = sorted({e[1] for e in expect if e[0] == "scalar"})
    want_texts = sorted({e[1] for e in expect if e[0] == "text"})
    if sorted(tags["scalars"]) != want_scalars or sorted(tags["tensors"]) != want_texts:
        die("tags %r / %r, expected %r / %r" % (tags["scalars"], tags["tensors"],
                                                want_scalars, want_texts))
    for tag in want_scalars:
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        want = [(e[2], e[3]) for e in expect if e[1] == tag]
        if len(got) != len(want):
            die("%s: %d events, expected %d" % (tag, len(got), len(want)))
        for (gs, gv), (ws, wv) in zip(got, want):
            if gs != ws or not same_f32(gv, wv):
                die("%s: got step %d value %r, expected step %d value %r"
                    % (tag, gs, gv, ws, wv))
    for tag in want_texts:
        got = [(e.step, tensor_util.make_ndarray(e.tensor_proto).item())
               for e in acc.Tensors(tag)]
        want = [(e[2], e[3]) for e in expect if e[1] == tag]
        if got != want:
            die("%s: text events differ: %r" % (tag, got[:1]))
    return sum(len(acc.Scalars(t)) for t in want_scalars)


def corrupt(path, n, part):
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        off = 0
        for _ in range(n):
            (length,) = struct.unpack_from("<Q", data, off)
            off += 16 + length
        (length,) = struct.unpack_from("<Q", data, off)
        at = {"len": off, "lencrc": off + 8, "data": off + 12 + length // 2,
              "datacrc": off + 12 + length}[part]
        data[at] ^= 0x10
        f.seek(0)
        f.write(data)


def main(argv):
    # The readers below must be TensorBoard's own TF-free ones, whose CRC checks
    # the check relies on; with TensorFlow installed, TensorBoard would use TF's.
    if getattr(tf, "__version__", None) != "stub":
        die("tensorboard.compat.tf is TensorFlow, not TensorBoard's stub")
    if argv[:1] == ["gen"]:
        sys.stdout.write(gen())
    elif argv[:1] == ["check"] and len(argv) == 3:
        expect = read_expect(argv[2])
        check_records(event_file(argv[1]), expect)
        n = check_accumulator(argv[1], expect)
        print("events %d scalars %d" % (len(expect), n))
    elif argv[:1] == ["loaded"] and len(argv) == 2:
        acc = accumulate(argv[1])
        print(sum(len(acc.Scalars(t)) for t in acc.Tags()["scalars"]))
    elif argv[:1] == ["corrupt"] and len(argv) == 4:
        corrupt(argv[1], int(argv[2]), argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
