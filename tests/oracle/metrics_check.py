"""Read an mb-pretrain logger.metrics_jsonl file with Python's json (strictly: no NaN or
Infinity tokens) and check it against the run's log: every "iter" log line has a train
object with the same iteration, loss, lr and grad norm (to the log's printed digits),
every "validation" line a validation object; consumed_samples = iteration x GLOBAL_BATCH.
With --min N only the first N log lines are required (a run still going).

usage: metrics_check.py FILE LOG GLOBAL_BATCH [--min N]"""
import json
import re
import sys


def strict(name):
    raise ValueError(f"non-JSON constant {name}")


def close(a, text):
    """A equals the %.NE printed TEXT to within half a unit of its last digit."""
    mant, _, exp = text.upper().partition("E")
    decimals = len(mant.partition(".")[2])
    tol = 0.5001 * 10.0 ** (int(exp or 0) - decimals)
    return a is not None and abs(a - float(text)) <= tol


def main():
    args = sys.argv[1:]
    minimum = None
    if "--min" in args:
        i = args.index("--min")
        minimum = int(args[i + 1])
        del args[i:i + 2]
    path, log, gbs = args[0], args[1], int(args[2])
    objs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.endswith("\n"):
                sys.exit(f"{path}:{n}: line not finished")
            objs.append(json.loads(line, parse_constant=strict))
    train = {o["iteration"]: o for o in objs if o["type"] == "train"}
    valid = {o["iteration"]: o for o in objs if o["type"] == "validation"}
    it_re = re.compile(r"iter +(\d+)/\d+ \| loss (\S+) \| lr (\S+) \| grad_norm (\S+) ")
    va_re = re.compile(r"validation at iter (\d+) \| loss (\S+) ")
    lines = open(log).read().splitlines()
    seen = 0
    for line in lines:
        m = it_re.search(line)
        v = va_re.search(line)
        if m:
            it = int(m.group(1))
            o = train.get(it)
            if o is None:
                if minimum is not None and seen >= minimum:
                    break
                sys.exit(f"no train object for iteration {it}")
            for key, text in (("loss", m.group(2)), ("lr", m.group(3)), ("grad_norm", m.group(4))):
                if not close(o[key], text):
                    sys.exit(f"iteration {it}: {key} {o[key]} vs log {text}")
            if o["consumed_samples"] != it * gbs:
                sys.exit(f"iteration {it}: consumed_samples {o['consumed_samples']}")
            for key in ("tokens_per_sec", "tflops", "mem_gib", "time", "train_iters", "skipped"):
                if key not in o:
                    sys.exit(f"iteration {it}: no {key}")
            seen += 1
        elif v:
            it = int(v.group(1))
            if it not in valid and minimum is None:
                sys.exit(f"no validation object for iteration {it}")
            if it in valid and not close(valid[it]["loss"], v.group(2)):
                sys.exit(f"validation {it}: loss {valid[it]['loss']} vs log {v.group(2)}")
    if seen == 0 or (minimum is not None and seen < minimum):
        sys.exit(f"only {seen} train objects matched the log")
    if minimum is None and len(train) != seen:
        sys.exit(f"{len(train)} train objects for {seen} log lines")
    print(f"{seen} train objects, {len(valid)} validation objects")


if __name__ == "__main__":
    main()
