"""One probe trial on the torch engine: the run's model and images, trained by PyTorch in this process.

Batch Advisor's probe runs its trials where the run will train. For a torchrun engine run that is
PyTorch, so `suggest`/`train` start this script once per trial, in a fresh process:

    python probe.py run.json trial.json

run.json is the folder's resolved run (train.py's input: files, split, head, initial model);
trial.json is one ProbeTrialSpec (src/core/shared/probe.ts): the micro-batch, the accumulation,
the validation batch, the steps, and optionally the smaller batches to time and the gradient-noise
measurement. It prints one JSON line, a ProbeTrialResult: whether the steps fitted and trained, the
peak memory (torch.cuda.max_memory_allocated on a GPU; the process's peak resident set above its
size before the model was built on the CPU), images/s, and the gradient norms. A failure is a result
(exit 0): out of memory, a trial that trained nothing, or another error with its first line.
"""
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfjs_torch  # noqa: E402
from train import decode, loss_and_hits, make_optimizer  # noqa: E402

MIN_STEPS = 3
THROUGHPUT_STEPS = (1, 4)  # timed steps per batch and round: at least, at most
THROUGHPUT_MS = 1500
NOISE_SHARE = 0.015
THROUGHPUT_SHARE = 0.02
WARM_SHARE = 0.02


def rss_now():
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError):
        return 0


def rss_peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def images(files, start, n, r):
    """n images from files (cycling), as float32 NHWC, with labels; undecodable files are skipped."""
    xs, ys, i, failures = [], [], start, 0
    while len(xs) < n:
        path, label = files[i % len(files)]
        i += 1
        try:
            xs.append(decode(path, r['imageSize'], r['channels']))
            ys.append(label)
        except Exception:  # noqa: BLE001 -- the probe needs pixels, not every file
            failures += 1
            if failures > max(32, len(files)):
                raise RuntimeError(f'too many images could not be decoded for the probe (last: {path})')
    return torch.from_numpy(np.stack(xs).astype(np.float32)), torch.tensor(ys, dtype=torch.long)


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def step(net, opt, batches, head, device):
    """One optimizer step over the micro-batches (the gradient averaged over them); its loss."""
    opt.zero_grad(set_to_none=True)
    total, n_all = 0.0, 0
    for x, y in batches:
        loss, _, n = loss_and_hits(net(x, logits=True), y, head)
        (loss / len(batches)).backward()
        total += loss.item() * n
        n_all += n
    opt.step()
    return total / n_all if n_all else float('nan')


def squared_norm(params):
    return sum(float((p.grad.double() ** 2).sum()) for p in params if p.grad is not None)


def measure_noise(net, opt, files, r, head, spec, device, warm_ms=0.0, steps_before=0, first_loss=None):
    """As the wasm trainer does: a warm-up of ordinary steps, then per step a fresh batch of bigBatch
    images, |G|² of each smallBatch chunk (averaged) and of their mean; the mean gradient is applied so
    the steps follow training."""
    small = spec['smallBatch']
    chunks = max(2, spec['bigBatch'] // small)
    big = chunks * small
    out = {'smallBatch': small, 'bigBatch': big, 'small': [], 'big': []}
    params = [p for p in net.parameters() if p.requires_grad]
    warm, warm_loss = warm_up(net, opt, files, r, head, big, min(warm_ms, spec.get('warmMaxMs') or 0), spec.get('warmMaxSteps') or 0, device)
    out['afterSteps'] = steps_before + warm
    if warm_loss is not None and first_loss is not None and math.isfinite(warm_loss) and math.isfinite(first_loss):
        out['lossFrom'], out['lossTo'] = first_loss, warm_loss
    most = max(spec['steps'], spec.get('maxSteps') or spec['steps'])
    t0 = time.perf_counter()
    for s in range(most):
        if s >= spec['steps'] and (time.perf_counter() - t0) * 1000 > (spec.get('budgetMs') or 0):
            break
        x, y = images(files, (warm + s) * big, big, r)
        x, y = x.to(device), y.to(device)
        acc = [torch.zeros_like(p) for p in params]
        small_sum = 0.0
        for c in range(chunks):
            opt.zero_grad(set_to_none=True)
            loss, _, _ = loss_and_hits(net(x[c * small:(c + 1) * small], logits=True), y[c * small:(c + 1) * small], head)
            loss.backward()
            small_sum += squared_norm(params)
            for a, p in zip(acc, params):
                if p.grad is not None:
                    a.add_(p.grad, alpha=1.0 / chunks)
        out['small'].append(small_sum / chunks)
        out['big'].append(sum(float((a.double() ** 2).sum()) for a in acc))
        for a, p in zip(acc, params):
            p.grad = a
        opt.step()
    return out


def measure_throughput(net, opt, x, y, head, batches, budget_ms, device):
    """As the wasm trainer does: two interleaved rounds over the batches, smallest first (a drift of the
    machine's speed favours none), an untimed step first in the first round, then timed steps for half
    of budget_ms; the faster round counts. A batch that fails ends the timing; the batches measured
    before it are kept. Returns the points, the steps taken and the error, if any."""
    best, steps, error = {}, 0, None
    usable = sorted(b for b in set(batches) if 1 <= b <= x.shape[0])
    for rnd in range(2):
        for b in usable:
            try:
                m = [(x[:b].to(device), y[:b].to(device))]
                if rnd == 0:
                    step(net, opt, m, head, device)
                    steps += 1
                sync(device)
                t, n = time.perf_counter(), 0
                while n < THROUGHPUT_STEPS[0] or (n < THROUGHPUT_STEPS[1] and (time.perf_counter() - t) * 1000 < budget_ms / 2):
                    step(net, opt, m, head, device)
                    n += 1
                sync(device)
                best[b] = max(best.get(b, 0.0), n * b / max(1e-9, time.perf_counter() - t))
                steps += n
            except Exception as e:  # noqa: BLE001 -- a larger batch asked for may not fit
                error = f'batch {b} not timed: {type(e).__name__}: {e}'.split('\n')[0]
                if device.type == 'cuda':
                    torch.cuda.empty_cache()
                break
        if error:
            break
    return [{'batchSize': b, 'imagesPerSec': best[b]} for b in usable if b in best], steps, error


def warm_up(net, opt, files, r, head, big, budget_ms, max_steps, device):
    """Ordinary training steps on fresh batches before the noise scale is measured (as the wasm trainer
    does: the noise scale at the first steps is a fraction of what it is while most of the run trains)."""
    n, loss, t0 = 0, None, time.perf_counter()
    while n < max_steps and (time.perf_counter() - t0) * 1000 < budget_ms:
        x, y = images(files, n * big, big, r)
        loss = step(net, opt, [(x.to(device), y.to(device))], head, device)
        n += 1
    return n, loss


def is_oom(e):
    text = str(e).lower()
    return isinstance(e, MemoryError) or 'out of memory' in text or "can't allocate memory" in text or 'cannot allocate memory' in text


def trial(r, spec):
    t0 = time.perf_counter()
    micro, k = spec['microBatchSize'], max(1, spec['accumulationSteps'])
    res = {'batchSize': micro, 'accumulationSteps': k, 'ok': False, 'peakBytes': 0, 'tensorPeakBytes': 0, 'rssBytes': 0, 'imagesPerSec': 0, 'steps': 0, 'durationMs': 0}
    cuda = torch.cuda.is_available() and r.get('device', 'auto') != 'cpu'
    device = torch.device('cuda', 0) if cuda else torch.device('cpu')
    res['backend'] = f'torch-{device.type}'
    if not cuda:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    head = r['head']
    train_files = r['train'] or r['validation']
    val_files = r['validation'] or train_files
    try:
        # Enough images for the trial's steps and for every batch it times (a larger one too, when asked).
        # The images beyond the trial's stay on the host until timed (the device's peak is the trial's own).
        x_all, y_all = images(train_files, 0, max([micro * k] + list(spec.get('throughputBatches') or [])), r)
        x, y = x_all[:micro * k], y_all[:micro * k]
        vx, vy = images(val_files, 0, spec['validationBatchSize'], r)
        base = rss_now()
        torch.manual_seed(r['seed'])
        net, _ = tfjs_torch.load_tfjs(os.path.join(r['runDir'], r['initialModel']), head['layerName'])
        net.to(device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        x, y, vx, vy = x.to(device), y.to(device), vx.to(device), vy.to(device)
        opt = make_optimizer(r['optimizer'], net.parameters(), spec['learningRate'])
        batches = [(x[i * micro:(i + 1) * micro], y[i * micro:(i + 1) * micro]) for i in range(k)]
        steps = max(MIN_STEPS, spec['steps'])
        timed = 0.0
        for s in range(steps):
            sync(device)
            ts = time.perf_counter()
            loss = step(net, opt, batches, head, device)
            sync(device)
            if s > 0:
                timed += time.perf_counter() - ts
            res['steps'] += 1
            if s == 0:
                res['lossFirst'] = loss
            res['lossLast'] = loss
        with torch.no_grad():
            net.eval()
            loss_and_hits(net(vx, logits=True), vy, head)
            net.train()
        sync(device)
        res['imagesPerSec'] = (steps - 1) * micro * k / max(1e-9, timed)
        res['tensorPeakBytes'] = torch.cuda.max_memory_allocated(device) if cuda else max(0, rss_peak() - base)
        res['peakBytes'] = res['tensorPeakBytes']
        first, last = res.get('lossFirst'), res.get('lossLast')
        if not (math.isfinite(first) and math.isfinite(last) and first != last):
            res['failure'] = 'no-training'
            res['error'] = f'the steps trained nothing ({res["steps"]} steps, loss {first} → {last})'
        else:
            res['ok'] = True
            extras(net, opt, x_all, y_all, train_files, r, head, spec, res, device)
    except Exception as e:  # noqa: BLE001 -- every failure is a result
        res['ok'] = False
        res['failure'] = 'oom' if is_oom(e) else 'error'
        res['error'] = f'{type(e).__name__}: {e}'.split('\n')[0]
        if cuda:
            res['tensorPeakBytes'] = res['peakBytes'] = torch.cuda.max_memory_allocated(device)
    res['rssBytes'] = rss_peak()
    res['durationMs'] = (time.perf_counter() - t0) * 1000
    return res


def extras(net, opt, x, y, files, r, head, spec, res, device):
    """The smaller batches' throughput and the noise scale, within their share of the run's predicted time."""
    run_ms = spec['runImages'] / res['imagesPerSec'] * 1000 if spec.get('runImages') and res['imagesPerSec'] > 0 else math.inf
    steps_before = res['steps']
    # Asked for (even with no smaller batch): the trial's own batch is timed again, beside the smaller
    # ones, as every batch of the curve is (its 3 memory steps are too few to compare with).
    asked = spec.get('throughputBatches')
    batches = None if asked is None else list(asked) + ([] if spec['accumulationSteps'] > 1 else [spec['microBatchSize']])
    if batches:
        try:
            each = min(THROUGHPUT_MS, THROUGHPUT_SHARE * run_ms / len(batches))
            res['throughput'], taken, error = measure_throughput(net, opt, x, y, head, batches, each, device)
            steps_before += taken
            if error:
                res['error'] = f'throughput: {error}'
        except Exception as e:  # noqa: BLE001
            res['error'] = f'throughput not measured: {e}'.split('\n')[0]
    if spec.get('noise'):
        try:
            noise = dict(spec['noise'])
            noise['budgetMs'] = min(noise.get('budgetMs') or 0, NOISE_SHARE * run_ms)
            res['gradientNorms'] = measure_noise(net, opt, files, r, head, noise, device, WARM_SHARE * run_ms, steps_before, res.get('lossFirst'))
        except Exception as e:  # noqa: BLE001
            res['error'] = f'noise scale not measured: {e}'.split('\n')[0]


def main():
    with open(sys.argv[1], encoding='utf-8') as f:
        r = json.load(f)
    with open(sys.argv[2], encoding='utf-8') as f:
        spec = json.load(f)
    res = trial(r, spec)
    print(json.dumps({k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in res.items()}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
