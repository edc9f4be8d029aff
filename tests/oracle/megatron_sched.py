#!/usr/bin/env python3
"""Learning rates from megatron-core's own OptimizerParamScheduler, and a comparison.

    megatron_sched.py < cases            print "NAME ITER LR" for each case, Megatron's values
    megatron_sched.py --compare MB_OUT < cases
                                         compare mb's output (tests/helpers/sched_lr) with
                                         Megatron's; exit 1 past 1e-12 relative

A case line is: NAME STYLE WSD_STYLE LR MIN_LR WARMUP_INIT WARMUP_ITERS DECAY_ITERS
WSD_ITERS TRAIN_ITERS GLOBAL_BATCH (DECAY_ITERS 0 = TRAIN_ITERS). The scheduler is set up
the way Megatron-LM's training.py does it: every length in samples (iterations x global
batch) and step(global batch) after each iteration.
"""
import argparse
import sys

from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler


class DummyOptimizer:
    """Just what the scheduler touches: a list of parameter groups."""

    def __init__(self):
        self.param_groups = [{}]


def megatron_lrs(fields):
    name, style, wsd_style = fields[0], fields[1], fields[2]
    lr, min_lr, init = (float(x) for x in fields[3:6])
    warm, decay, wsd, iters, gbs = (int(x) for x in fields[6:11])
    decay = decay or iters
    opt = DummyOptimizer()
    sched = OptimizerParamScheduler(
        opt, init_lr=init, max_lr=lr, min_lr=min_lr,
        lr_warmup_steps=warm * gbs, lr_decay_steps=decay * gbs, lr_decay_style=style,
        start_wd=0.01, end_wd=0.01, wd_incr_steps=iters * gbs, wd_incr_style='constant',
        wsd_decay_steps=wsd * gbs if wsd else None, lr_wsd_decay_style=wsd_style)
    out = []
    for it in range(iters + 3):
        out.append((name, it, opt.param_groups[0]['lr']))
        sched.step(gbs)
    return out


def read_cases(stream):
    return [line.split() for line in stream if line.strip() and not line.startswith('#')]


def compare(ref, path):
    got = {}
    with open(path) as f:
        for line in f:
            name, it, lr = line.split()
            got[(name, int(it))] = float(lr)
    worst, exact, bad = 0.0, 0, 0
    for name, it, want in ref:
        have = got.get((name, it))
        if have is None:
            print(f'{name} iteration {it}: missing from mb output', file=sys.stderr)
            bad += 1
            continue
        rel = abs(have - want) / max(abs(want), 1e-300) if have != want else 0.0
        exact += have == want
        worst = max(worst, rel)
        if rel > 1e-12:
            print(f'{name} iteration {it}: mb {have!r} megatron {want!r}', file=sys.stderr)
            bad += 1
    if len(got) != len(ref):
        print(f'mb printed {len(got)} values, megatron {len(ref)}', file=sys.stderr)
        bad += 1
    print(f'{len(ref)} learning rates, {exact} bit-identical, worst relative difference {worst:.3g}')
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--compare', metavar='MB_OUT')
    args = ap.parse_args()
    ref = [row for case in read_cases(sys.stdin) for row in megatron_lrs(case)]
    if args.compare:
        return compare(ref, args.compare)
    for name, it, lr in ref:
        print(f'{name} {it} {lr!r}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
