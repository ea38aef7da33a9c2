"""Batch Advisor's torchrun training script: the run folder's plan trained with DistributedDataParallel.

Written into the run folder beside tfjs_torch.py and run.json by `batch-advisor train --engine
torchrun` (or its --export), and started as

    python -m torch.distributed.run --standalone --nproc_per_node N train.py run.json

It needs torch, numpy and Pillow only. run.json holds everything it runs, resolved on the host: the
training and validation files with their labels (the same files and split as Batch Advisor's own
trainer), the image size and channels, the per-device micro-batch, the accumulation steps, the
learning rate for the global batch and its warmup and schedule, the epochs, the seed and the head.

Rank 0 writes metrics.jsonl in Batch Advisor's protocol (run-start with the plan, batch, epoch,
run-end), so its panel, runs view, Compare and CSV read this run like any other; each epoch it
writes the trained weights back as tfjs model/model.json + weights.bin. SIGTERM or SIGINT on any
rank ends every rank after the current optimizer step: the run ends "stopped".
"""
import contextlib
import datetime
import json
import math
import os
import signal
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfjs_torch  # noqa: E402

PROTOCOL_VERSION = 3
STOP = {'asked': False}


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='milliseconds').replace('+00:00', 'Z')


class Metrics:
    """metrics.jsonl on rank 0 (one JSON line per event, handed to the OS at once); nothing elsewhere."""

    def __init__(self, run_dir, rank):
        self.f = open(os.path.join(run_dir, 'metrics.jsonl'), 'a', encoding='utf-8') if rank == 0 else None

    def emit(self, type_, **fields):
        if self.f is None:
            return
        ev = {'v': PROTOCOL_VERSION, 'type': type_, 'time': now(), **fields}
        try:
            line = json.dumps(ev, allow_nan=False)
        except ValueError:  # a NaN or infinity left somewhere: null, as our protocol writes it
            line = json.dumps(_finite(ev), allow_nan=False)
        self.f.write(line + '\n')
        self.f.flush()

    def close(self):
        if self.f is not None:
            self.f.close()


def _finite(v):
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return clean(v) if isinstance(v, float) else v


def clean(v):
    """A float for JSON: NaN and infinities become null (our protocol's non-finite loss)."""
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


MODES = {1: 'L', 3: 'RGB', 4: 'RGBA'}


def decode(path, size, channels):
    """uint8 HWC pixels at [height, width] (bilinear when the size differs), as Batch Advisor's trainer reads them."""
    with Image.open(path) as im:
        im.seek(0)  # a GIF's first frame
        im = im.convert(MODES[channels])
        if im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
    return a.reshape(size[0], size[1], channels)


SKIPPED = -1  # the label of an image that cannot be decoded: left out of the loss and the counts


class Files(torch.utils.data.Dataset):
    """The images; one that cannot be decoded comes as zeros labelled SKIPPED (every rank keeps its batch shape, so DDP stays in step) and is reported once."""

    def __init__(self, files, size, channels, on_skip=None):
        self.files, self.size, self.channels, self.on_skip = files, size, channels, on_skip
        self.reported = set()

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path, label = self.files[i]
        try:
            return torch.from_numpy(decode(path, self.size, self.channels).astype(np.float32)), label
        except Exception as e:  # noqa: BLE001 -- a file we cannot decode is skipped, not fatal
            if path not in self.reported:
                self.reported.add(path)
                if self.on_skip:
                    self.on_skip(path, f'cannot be decoded: {e}')
            return torch.zeros(self.size[0], self.size[1], self.channels), SKIPPED


M32 = 0xFFFFFFFF


def _imul(a, b):
    return (a * b) & M32


def mulberry32(seed):
    """Batch Advisor's PRNG (src/trainer/data/prng.ts), bit for bit: floats in [0, 1)."""
    state = [seed & M32]

    def rand():
        state[0] = (state[0] + 0x6D2B79F5) & M32
        t = state[0]
        t = _imul(t ^ (t >> 15), t | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) & M32
        return ((t ^ (t >> 14)) & M32) / 4294967296

    return rand


def derive_seed(seed, stream):
    h = ((seed & M32) ^ _imul((stream + 1) & M32, 0x9E3779B1)) & M32
    h = _imul(h ^ (h >> 16), 0x85EBCA6B)
    h = _imul(h ^ (h >> 13), 0xC2B2AE35)
    return (h ^ (h >> 16)) & M32


def epoch_order(n, seed, epoch):
    """Indices 0..n-1 in the order Batch Advisor's trainer walks epoch `epoch` (its seeded Fisher–Yates)."""
    order = list(range(n))
    rand = mulberry32(derive_seed(seed, epoch))
    for i in range(n - 1, 0, -1):
        j = math.floor(rand() * (i + 1))
        order[i], order[j] = order[j], order[i]
    return order


class EpochOrderSampler(torch.utils.data.Sampler):
    """DistributedSampler's sharding (rank r takes every world-th index, the list padded from its start
    to a multiple of world) over Batch Advisor's own epoch order: each global step of `world` ranks ×
    micro-batch b then holds the same images as a batch of world × b in our trainer."""

    def __init__(self, n, seed, rank, world):
        self.n, self.seed, self.rank, self.world, self.epoch = n, seed, rank, world, 1
        self.per_rank = math.ceil(n / world)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch)
        order += order[: self.per_rank * self.world - self.n]
        return iter(order[self.rank::self.world])

    def __len__(self):
        return self.per_rank


def learning_rate_at(r, step):
    """The plan's linear warmup, then its schedule (as src/core/shared/plan.ts learningRateAt)."""
    steps, start, target = r['warmupSteps'], r['warmupStartLearningRate'], r['learningRate']
    if steps > 0 and step <= steps:
        return start + (target - start) * max(1, step) / steps
    total = r['epochs'] * r['stepsPerEpoch']
    span = total - max(0, steps)
    if r['lrSchedule'] == 'constant' or span <= 0:
        return target
    t = min(1.0, max(0.0, (step - steps) / span))
    if r['lrSchedule'] == 'cosine':
        return target * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))
    return target * (0.1 if t >= 0.5 else 1) * (0.1 if t >= 0.75 else 1)


def make_optimizer(name, params, lr):
    """The optimizers as TensorFlow.js makes them (epsilon 1e-7, momentum 0.9, RMSprop decay 0.9)."""
    if name == 'sgd':
        return torch.optim.SGD(params, lr=lr)
    if name == 'momentum':
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == 'rmsprop':
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)
    return torch.optim.Adam(params, lr=lr, eps=1e-7)


def loss_and_hits(logits, y, head):
    """(mean loss, correct predictions, images) for the head: softmax cross-entropy, or sigmoid on one unit; SKIPPED images left out."""
    keep = y != SKIPPED
    n = int(keep.sum())
    if n == 0:  # still a loss in the graph: every rank runs its backward and all-reduce
        return logits.sum() * 0.0, torch.zeros((), dtype=torch.long), 0
    logits, y = logits[keep], y[keep]
    if head['loss'] == 'binary':
        z = logits.reshape(-1)
        return F.binary_cross_entropy_with_logits(z, y.float()), ((z > 0).long() == y).sum(), n
    return F.cross_entropy(logits, y), (logits.argmax(1) == y).sum(), n


def memory_bytes(device):
    if device.type == 'cuda':
        return torch.cuda.memory_allocated(device)
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError):
        return 0


def on_signal(signum, frame):
    STOP['asked'] = True


def validate(model, files, r, device, rank, world, on_skip):
    """Loss and accuracy over the validation files, each rank a share, summed over ranks."""
    share = files[rank::world]
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    model.eval()
    loader = torch.utils.data.DataLoader(Files(share, r['imageSize'], r['channels'], on_skip), batch_size=r['validationBatchSize'])
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss, hits, n = loss_and_hits(model(x, logits=True), y, r['head'])
            sums += torch.tensor([loss.item() * n, hits.item(), n], dtype=torch.float64, device=device)
    model.train()
    dist.all_reduce(sums)
    n = sums[2].item()
    return (sums[0].item() / n, sums[1].item() / n) if n > 0 else (None, None)


def train(r, metrics, rank, world, local_rank, backend):
    device = torch.device('cuda', local_rank) if backend == 'nccl' else torch.device('cpu')
    torch.manual_seed(r['seed'])
    net, model_json = tfjs_torch.load_tfjs(os.path.join(r['runDir'], r['initialModel']), r['head']['layerName'])
    net.to(device)
    ddp = torch.nn.parallel.DistributedDataParallel(net, device_ids=[local_rank] if device.type == 'cuda' else None)
    optimizer = make_optimizer(r['optimizer'], ddp.parameters(), learning_rate_at(r, 1))
    skipped = []  # this rank's undecodable files since the last epoch end; rank 0 reports every rank's
    reported = set()  # the files rank 0 has reported

    def on_skip(path, reason):
        skipped.append((path, reason))
        print(f'batch-advisor torchrun: rank {rank}: skipped {path}: {reason}', file=sys.stderr)

    def report_skipped():
        every = [None] * world
        dist.all_gather_object(every, list(skipped))
        skipped.clear()
        for path, reason in (s for rank_list in every for s in rank_list or []):
            # Once a run: a file is read by one rank one epoch and by another the next.
            if path not in reported:
                reported.add(path)
                metrics.emit('skipped-file', path=path, reason=reason)

    train_set = Files(r['train'], r['imageSize'], r['channels'], on_skip)
    # Our trainer's epoch order, sharded as DistributedSampler shards: the same images per global step.
    sampler = EpochOrderSampler(len(train_set), r['seed'], rank, world)
    loader = torch.utils.data.DataLoader(train_set, batch_size=r['microBatchSize'], sampler=sampler, num_workers=r.get('loaderWorkers', 0))
    k = r['accumulationSteps']
    steps_per_epoch = math.ceil(len(loader) / k)
    planned = min(r['epochs'] * steps_per_epoch, r.get('maxSteps') or math.inf)
    metrics.emit(
        'run-start', runDir=r['runDir'], backend=f'torch-{backend}', plan={**r['plan'], 'stepsPerEpoch': steps_per_epoch},
        stepsPerEpoch=steps_per_epoch, trainImages=len(r['train']), validationImages=len(r['validation']),
        params=sum(p.numel() for p in net.parameters()), classNames=r['classNames'],
        engine={'name': 'torchrun', 'torch': torch.__version__, 'distBackend': backend, 'device': device.type, 'worldSize': world, 'nnodes': int(os.environ.get('GROUP_WORLD_SIZE', '1'))},
    )
    global_step, time_sum = 0, 0.0
    for epoch in range(1, r['epochs'] + 1):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        it = iter(loader)
        totals = torch.zeros(3, dtype=torch.float64)
        for step in range(1, steps_per_epoch + 1):
            if global_step >= planned:
                break
            tw = time.perf_counter()
            batches = []
            for _ in range(k):
                b = next(it, None)
                if b is None:
                    break
                batches.append(b)
            wait = time.perf_counter() - tw
            lr = learning_rate_at(r, global_step + 1)
            for g in optimizer.param_groups:
                g['lr'] = lr
            ts = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            local = torch.zeros(4, dtype=torch.float64)
            for i, (x, y) in enumerate(batches):
                x, y = x.to(device), y.to(device)
                # Gradients are averaged over the ranks once per optimizer step: no all-reduce between micro-steps.
                sync = contextlib.nullcontext() if i == len(batches) - 1 else ddp.no_sync()
                with sync:
                    loss, hits, n = loss_and_hits(ddp(x, logits=True), y, r['head'])
                    (loss / len(batches)).backward()
                local[0] += loss.item() * n
                local[1] += hits.item()
                local[2] += n
            optimizer.step()
            # One small all-reduce per step: the step's loss and accuracy over every rank, and whether any rank was asked to stop.
            local[3] = 1.0 if STOP['asked'] else 0.0
            summed = local.to(device)
            dist.all_reduce(summed)
            summed = summed.cpu()
            step_s = time.perf_counter() - ts
            global_step += 1
            time_sum += step_s + wait
            n = summed[2].item()
            step_loss = summed[0].item() / n if n else 0.0
            totals += summed[:3]
            metrics.emit(
                'batch', epoch=epoch, step=step, stepsPerEpoch=steps_per_epoch, globalStep=global_step,
                loss=clean(step_loss), accuracy=summed[1].item() / n if n else 0.0, learningRate=lr,
                imagesPerSec=n / max(1e-9, step_s + wait), stepMs=step_s * 1000, dataWaitMs=wait * 1000,
                tensorBytes=memory_bytes(device), etaSec=time_sum / global_step * (planned - global_step),
            )
            if summed[3].item() > 0:
                return 'stopped', 'stopped by request'
            if not math.isfinite(step_loss):
                lower = float(f'{lr / 10:.2g}')
                return 'diverged', f'Training diverged: the loss became {"NaN" if math.isnan(step_loss) else "infinite"} at step {global_step} (epoch {epoch}, step {step}, learning rate {lr:.3g}). Lower the learning rate (e.g. "learningRate": {lower}).'
        val_loss, val_acc = validate(ddp.module, r['validation'], r, device, rank, world, on_skip) if r['validation'] else (None, None)
        report_skipped()
        saved = os.path.join(r['runDir'], 'model', 'model.json')
        if rank == 0:
            tfjs_torch.save_tfjs(net, model_json, os.path.dirname(saved), {'classNames': r['classNames']})
        n = totals[2].item()
        metrics.emit(
            'epoch', epoch=epoch, loss=clean(totals[0].item() / n) if n else None, accuracy=totals[1].item() / n if n else None,
            valLoss=clean(val_loss), valAccuracy=val_acc, durationMs=(time.perf_counter() - t0) * 1000, savedModel=saved,
        )
        if global_step >= planned:
            break
    return 'completed', None


def main():
    with open(sys.argv[1], encoding='utf-8') as f:
        r = json.load(f)
    rank, world = int(os.environ.get('RANK', '0')), int(os.environ.get('WORLD_SIZE', '1'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    metrics = Metrics(r['runDir'], rank)
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on_signal)
    backend = 'nccl' if torch.cuda.is_available() and r.get('device', 'auto') != 'cpu' else 'gloo'
    if backend == 'gloo':
        local_world = int(os.environ.get('LOCAL_WORLD_SIZE', '1'))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    else:
        torch.cuda.set_device(local_rank)
    end = {'status': 'failed', 'error': 'internal', 'message': 'the run ended without a result'}
    try:
        dist.init_process_group(backend)
        status, message = train(r, metrics, rank, world, local_rank, backend)
        if status == 'diverged':
            end = {'status': 'failed', 'error': 'diverged', 'message': message}
        else:
            end = {'status': status, **({'message': message} if message else {})}
    except tfjs_torch.UnsupportedLayer as e:
        end = {'status': 'failed', 'error': 'bad-input', 'message': str(e)}
    except Exception as e:  # noqa: BLE001 -- every failure ends the run with its message
        text = f'{type(e).__name__}: {e}'.split('\n')[0]
        oom = 'out of memory' in text.lower() or isinstance(e, MemoryError)
        peer = any(s in text for s in ('Connection closed by peer', 'Connection reset by peer', 'Broken pipe'))
        why = f'another rank ended first (its error is in train.log, "batch-advisor torchrun: rank N: …"): {text}' if peer else text
        end = {'status': 'failed', 'error': 'oom' if oom else 'internal', 'message': f'rank {rank}: {why}'}
        print(f'batch-advisor torchrun: rank {rank}: {text}', file=sys.stderr)
    metrics.emit('run-end', **end)
    metrics.close()
    if dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
    return 0 if end['status'] != 'failed' else 1


if __name__ == '__main__':
    sys.exit(main())
