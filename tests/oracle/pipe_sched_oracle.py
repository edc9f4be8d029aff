"""The oracle of t9010: megatron-core's own pipeline schedules, run for every pipeline
rank at once (one thread each) in one process, compared with mb's schedules as
tests/helpers/pipe_sched_dump prints them.

    t9010-pipe-sched-oracle.py MB_OUT [TAMPERED] < layouts     ("PP VP M" per line)

Exit 0 when every layout agrees and every layout in TAMPERED (deliberately wrong copies
of some of mb's lines) is caught.

What is Megatron's and what is not:
- Megatron's, called as they are: get_forward_backward_func (which schedule a layout gets;
  VP 1 is passed as None, as Megatron-LM does), forward_backward_no_pipelining,
  forward_backward_pipelining_without_interleaving and
  forward_backward_pipelining_with_interleaving (all the control flow: warm-up, steady
  state, cool-down, get_schedule_table and the lookups in it, recv_tensor_from_previous_
  stage, the FIFO lists per chunk, the checks on the micro-batch count),
  get_pp_rank_microbatches, TransformerConfig (so microbatch_group_size_per_vp_stage is
  its default, PP; batch_p2p_comm on, overlap_p2p_comm off), and every P2PCommunicator
  method (recv_forward, send_forward_recv_backward, ... with their first/last-stage
  guards).
- Replaced: the compute of one pass (schedules.forward_step and schedules.backward_step
  become recorders that hand on tagged tokens instead of tensors); the transport
  (P2PCommunicator._communicate puts sends on in-process queues, one per ordered pair of
  ranks and direction, then takes its receives from them: sends never block, as with
  mb's MPI_Isend); P2PCommunicator.__init__ (the fake PP group has no global ranks);
  torch.zeros(device="cuda") in the schedules (no GPU here). torch.distributed is
  initialised as a one-process gloo group only so that Megatron's is_pp_first_stage /
  is_pp_last_stage ask the (fake) PP group for its rank.
- Not run: the overlap_p2p_comm path (Megatron-LM's CLI default with VP): it runs the same
  forwards and backwards in the same order (forward_k = k + W, backward_k = k) and only
  makes its receives asynchronous. VP > 1 with PP 1 (megatron-core would silently run
  forward_backward_no_pipelining; Megatron-LM's argument check refuses it, as mb does,
  which tests/unit/train_pipe_sched.c checks).

Per layout and rank it checks: the compute order (F/B with micro-batch and chunk) equals
mb's; the warm-up equals get_pp_rank_microbatches'; each kind of message (rf, sf, rb, sb)
comes in the same (micro-batch, chunk) sequence as mb's; mb never receives earlier, nor
sends later, counted in passes, than Megatron does (so mb's order cannot wait where
Megatron's would not); every pass gets the output of the right pass of its neighbour
(Megatron's data flow through the queues, as a check of this harness). A layout Megatron
refuses must be refused by mb, and the other way round.
"""
import io
import queue
import sys
import threading
import warnings

warnings.filterwarnings('ignore')

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import megatron.core.pipeline_parallel.schedules as schedules  # noqa: E402
from megatron.core.enums import ModelType  # noqa: E402
from megatron.core.pipeline_parallel.p2p_communication import P2PCommunicator  # noqa: E402
from megatron.core.transformer.transformer_config import TransformerConfig  # noqa: E402

TIMEOUT = 20.0  # seconds a receive waits before the run counts as a deadlock


class Mismatch(Exception):
    """A deadlock or a pass fed the wrong input: a failure, never a refusal."""


class Group:
    """The PP group of one rank, as much of torch.distributed.ProcessGroup as is asked."""

    def __init__(self, size, rank):
        self._size, self._rank = size, rank

    def size(self):
        return self._size

    def rank(self):
        return self._rank


class Token:
    """What flows instead of a tensor: kind 'act' (output of a forward) or 'grad' (input
    gradient of a backward), of pipeline rank RANK, micro-batch MICRO, chunk CHUNK."""

    def __init__(self, kind, rank, micro, chunk):
        self.kind, self.rank, self.micro, self.chunk = kind, rank, micro, chunk

    def __repr__(self):
        return f'{self.kind}(r{self.rank} {self.micro}.{self.chunk})'


class Chunk(torch.nn.Module):
    """A model chunk: what get_model_config / get_model_type read, and who it is."""

    def __init__(self, config, rank, chunk):
        super().__init__()
        self.config = config
        self.model_type = ModelType.encoder_or_decoder
        self.rank, self.chunk = rank, chunk


class Run:
    """One layout: the queues between ranks and each rank's event trace."""

    def __init__(self, pp, vp):
        self.pp, self.vp = pp, vp
        self.queues = {}
        for r in range(pp):
            for kind in ('act', 'grad'):
                to = (r + 1) % pp if kind == 'act' else (r - 1) % pp
                self.queues[(r, to, kind)] = queue.Queue()
        self.trace = {r: [] for r in range(pp)}


local = threading.local()


class Communicator(P2PCommunicator):
    """Megatron's P2PCommunicator with an in-process transport."""

    def __init__(self, run, rank, config):  # pylint: disable=super-init-not-called
        self.run, self.pp_group, self.config = run, Group(run.pp, rank), config
        self.next_rank, self.prev_rank = (rank + 1) % run.pp, (rank - 1) % run.pp
        self.virtual_pipeline_model_parallel_size = config.virtual_pipeline_model_parallel_size

    def _communicate(self, *, tensor_send_next, tensor_send_prev, recv_prev, recv_next,
                     tensor_shape, wait_on_reqs=True):
        run, me = self.run, self.pp_group.rank()
        trace = run.trace[me]
        # sends first (non-blocking), then the receives
        if tensor_send_next is not None:
            tok = unwrap(tensor_send_next)
            trace.append(('sf', tok.micro, tok.chunk))
            run.queues[(me, self.next_rank, 'act')].put(tok)
        if tensor_send_prev is not None:
            tok = unwrap(tensor_send_prev)
            trace.append(('sb', tok.micro, tok.chunk))
            run.queues[(me, self.prev_rank, 'grad')].put(tok)
        got_prev = got_next = None
        if recv_prev:
            got_prev = take(run, self.prev_rank, me, 'act')
            # named by the consumer's chunk: the wrap-around p-1 -> 0 moves to chunk + 1
            trace.append(('rf', got_prev.micro, got_prev.chunk + (me == 0)))
        if recv_next:
            got_next = take(run, self.next_rank, me, 'grad')
            trace.append(('rb', got_next.micro, got_next.chunk - (me == run.pp - 1)))
        return got_prev, got_next, None


def take(run, src, dst, kind):
    try:
        return run.queues[(src, dst, kind)].get(timeout=TIMEOUT)
    except queue.Empty:
        raise Mismatch(f'deadlock: rank {dst} waits for a {kind} from rank {src}') from None


def unwrap(x):
    return x[0] if isinstance(x, list) else x


def rewrap(like, x):
    return [x] if isinstance(like, list) else x


def expect_input(run, rank, chunk, micro, got, kind):
    """The token a pass of (micro, chunk) on RANK must get: the neighbour's output of the
    same micro-batch, one chunk on or back at the wrap-around; None at the ends."""
    pp, vp = run.pp, run.vp
    if kind == 'act':
        end = rank == 0 and chunk == 0
        src = (rank - 1) % pp
        src_chunk = chunk - (rank == 0)
    else:
        end = rank == pp - 1 and chunk == vp - 1
        src = (rank + 1) % pp
        src_chunk = chunk + (rank == pp - 1)
    tok = unwrap(got)
    want = None if end else (kind, src, micro, src_chunk)
    have = None if tok is None else (tok.kind, tok.rank, tok.micro, tok.chunk)
    if want != have:
        raise Mismatch(f'rank {rank} {"forward" if kind == "act" else "backward"} of '
                       f'{micro}.{chunk} got {have}, expected {want}')


def forward_step(forward_step_func, data_iterator, model, num_microbatches, input_tensor,
                 *args, current_microbatch=None, vp_stage=None, **kwargs):
    """Replaces schedules.forward_step: record the pass, hand on a token."""
    run = local.run
    micro, chunk = current_microbatch, model.chunk
    assert vp_stage is None or vp_stage == chunk
    expect_input(run, model.rank, chunk, micro, input_tensor, 'act')
    run.trace[model.rank].append(('F', micro, chunk))
    out = Token('act', model.rank, micro, chunk)
    local.saved[(micro, chunk)] = input_tensor
    # forward_step returns a list exactly when its input was one
    return rewrap(input_tensor, out), 0


def backward_step(input_tensor, output_tensor, output_tensor_grad, model_type, config):
    """Replaces schedules.backward_step: record the pass of the output it is given."""
    run = local.run
    out = unwrap(output_tensor)
    micro, chunk, rank = out.micro, out.chunk, out.rank
    expect_input(run, rank, chunk, micro, output_tensor_grad, 'grad')
    if local.saved.pop((micro, chunk)) is not input_tensor:
        raise Mismatch(f'rank {rank} backward of {micro}.{chunk}: not its forward\'s input')
    run.trace[rank].append(('B', micro, chunk))
    grad = None if unwrap(input_tensor) is None else Token('grad', rank, micro, chunk)
    return rewrap(input_tensor, grad)


class TorchNoCuda:
    """torch for the schedules module, with zeros(device='cuda') made on the CPU."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def zeros(*args, **kwargs):
        kwargs.pop('device', None)
        return torch.zeros(*args, **kwargs)


schedules.forward_step = forward_step
schedules.backward_step = backward_step
schedules.torch = TorchNoCuda()


def rank_main(run, rank, micro, results):
    local.run, local.saved = run, {}
    vp = run.vp if run.vp > 1 else None  # Megatron-LM: VP 1 is no virtual pipeline
    config = TransformerConfig(num_layers=run.pp * run.vp, hidden_size=8,
                               num_attention_heads=1, pipeline_model_parallel_size=run.pp,
                               virtual_pipeline_model_parallel_size=vp,
                               pipeline_dtype=torch.float32)
    comm = Communicator(run, rank, config)
    chunks = [Chunk(config, rank, c) for c in range(run.vp)]
    func = schedules.get_forward_backward_func(pp_size=run.pp, vp_size=vp)
    try:
        func(forward_step_func=None, data_iterator=[None] * run.vp if vp else None,
             model=chunks if vp else chunks[0], num_microbatches=micro, seq_length=4,
             micro_batch_size=1, p2p_communicator=comm if run.pp > 1 else None,
             pg_collection=Collection(comm.pp_group))
        warm = schedules.get_pp_rank_microbatches(
            micro, run.vp, config.microbatch_group_size_per_vp_stage, p2p_communicator=comm)[2]
        results[rank] = ('ok', warm)
    except Mismatch as e:
        results[rank] = ('failed', str(e))
    except (ValueError, RuntimeError) as e:
        # Megatron's checks of the layout come before the first pass or message
        what = 'failed' if run.trace[rank] else 'refused'
        results[rank] = (what, f'{type(e).__name__}: {e}')
    except Exception as e:  # pylint: disable=broad-except
        results[rank] = ('failed', f'{type(e).__name__}: {e}')


class Collection:
    """ProcessGroupCollection: the groups the schedules read sizes from."""

    def __init__(self, pp_group):
        self.tp = self.cp = self.dp_cp = Group(1, 0)
        self.pp = pp_group
        self.embd = self.pos_embd = None


def megatron(pp, vp, micro):
    run = Run(pp, vp)
    results = {}
    threads = [threading.Thread(target=rank_main, args=(run, r, micro, results))
               for r in range(pp)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return run, results


def read_mb(path):
    mb = {}
    with open(path) as f:
        for line in f:
            head, _, rest = line.partition(' | ') if ' | ' in line else (line, '', '')
            fields = head.split()
            key = tuple(int(x) for x in fields[:3])
            if fields[3] == 'refused:':
                mb[key] = ('refused', line.strip())
                continue
            rank, warm, in_flight = (int(x) for x in fields[3:6])
            compute, _, comm = rest.partition(' | ')
            mb.setdefault(key, {})[rank] = (warm, in_flight, compute.split(), comm.split())
    return mb


def token(op, micro, chunk, vp):
    return f'{op}{micro}' + (f'.{chunk}' if vp > 1 else '')


def compute_index(events):
    """For each message token, the number of passes (F/B) before it."""
    idx, passes = {}, 0
    for ev in events:
        if ev[0] in 'FB':
            passes += 1
        else:
            idx[ev] = passes
    return idx


def compare(pp, vp, micro, mb, run, results, out, err):
    name = f'PP{pp} VP{vp} M{micro}'
    if mb is None:
        print(f'{name}: mb prints nothing', file=err)
        return False
    outcomes = {v[0] for v in results.values()} if len(results) == pp else {'lost'}
    if outcomes == {'refused'}:
        if isinstance(mb, tuple):
            out.append(f'{name}: both refuse ({results[0][1]})')
            return True
        print(f'{name}: Megatron refuses ({results[0][1]}), mb does not', file=err)
        return False
    if outcomes != {'ok'}:
        print(f'{name}: Megatron ranks disagree: {results}', file=err)
        return False
    if isinstance(mb, tuple):
        print(f'{name}: mb refuses ({mb[1]}), Megatron runs it', file=err)
        return False
    if sorted(mb) != list(range(pp)):
        print(f'{name}: mb prints ranks {sorted(mb)}', file=err)
        return False
    good = True
    for r in range(pp):
        warm, _, compute, comm = mb[r]
        trace = [token(op, m, c, vp) for op, m, c in run.trace[r]]
        meg_compute = [t for t in trace if t[0] in 'FB']
        if compute != meg_compute:
            print(f'{name} rank {r}: compute order differs\n  mb:       {" ".join(compute)}\n'
                  f'  Megatron: {" ".join(meg_compute)}', file=err)
            good = False
        if warm != results[r][1]:
            print(f'{name} rank {r}: warm-up mb {warm}, get_pp_rank_microbatches '
                  f'{results[r][1]}', file=err)
            good = False
        for kind in ('rf', 'sf', 'rb', 'sb'):
            a = [t for t in comm if t.startswith(kind)]
            b = [t for t in trace if t.startswith(kind)]
            if a != b:
                print(f'{name} rank {r}: {kind} messages differ\n  mb:       {" ".join(a)}\n'
                      f'  Megatron: {" ".join(b)}', file=err)
                good = False
        mb_at, meg_at = compute_index(comm), compute_index(trace)
        for t, at in mb_at.items():
            too_soon_or_late = at < meg_at.get(t, -1) if t[0] == 'r' else at > meg_at.get(t, at)
            if too_soon_or_late:
                print(f'{name} rank {r}: mb {"receives" if t[0] == "r" else "sends"} {t} after '
                      f'{at} passes, Megatron after {meg_at[t]}', file=err)
                good = False
    if good:
        warm = ' '.join(str(results[r][1]) for r in range(pp))
        out.append(f'{name}: {pp} ranks agree (warm-up {warm})')
    return good


def main():
    dist.init_process_group('gloo', store=dist.HashStore(), rank=0, world_size=1)
    mb = read_mb(sys.argv[1])
    tampered = read_mb(sys.argv[2]) if len(sys.argv) > 2 else {}
    layouts = [tuple(int(x) for x in line.split()) for line in sys.stdin
               if line.strip() and not line.startswith('#')]
    out, bad, caught = [], 0, 0
    for pp, vp, micro in layouts:
        run, results = megatron(pp, vp, micro)
        if not compare(pp, vp, micro, mb.get((pp, vp, micro)), run, results, out, sys.stderr):
            bad += 1
        if (pp, vp, micro) in tampered:
            why = io.StringIO()
            if compare(pp, vp, micro, tampered[(pp, vp, micro)], run, results, [], why):
                print(f'PP{pp} VP{vp} M{micro}: a tampered mb schedule passes', file=sys.stderr)
                bad += 1
            else:
                caught += 1
                out.append(f'PP{pp} VP{vp} M{micro}: tampered copy caught: '
                           f'{why.getvalue().splitlines()[0]}')
    print('\n'.join(out))
    print(f'{len(layouts) - bad} of {len(layouts)} layouts agree with megatron-core; '
          f'{caught} of {len(tampered)} tampered schedules caught')
    dist.destroy_process_group()
    return 1 if bad or caught != len(tampered) else 0


if __name__ == '__main__':
    sys.exit(main())
