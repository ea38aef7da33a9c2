"""PyTorch side of bench/vs-pytorch.ts: one measurement per process, printed as one JSON line.

    python3 bench/vs_pytorch.py ROW [--threads N] [--steps N] [--dataset DIR]

ROW is one of the rows bench/vs-pytorch.ts prints (cnn-64-32, cnn-64-128, cnn-180-32,
mobilenet-96-16, mnist-epoch, pipeline). The models mirror src/trainer/models/zoo.ts (Keras
tutorial CNN; MobileNetV2 alpha=1 with BatchNorm eps 1e-3), Adam lr 1e-3, softmax cross-entropy.
"""
import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time

import torch
from torch import nn


def tutorial_cnn(size, channels, classes):
    layers, c = [], channels
    for f in (16, 32, 64):
        layers += [nn.Conv2d(c, f, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c = f
    s = size // 8
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * s * s, 128), nn.ReLU(), nn.Linear(128, classes))


def mobilenet_v2(classes):
    import torchvision

    m = torchvision.models.mobilenet_v2(num_classes=classes, width_mult=1.0)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.eps = 1e-3
    return m


def step_row(model, shape, batch, steps, seconds):
    """Images/s of model training steps (median step time after 3 warm-up steps)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, *shape) * 255
    y = torch.arange(batch) % 10
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x / 255.0), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(3):
        step()
    times, start = [], time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > seconds:
            break
    med = statistics.median(times)
    return {"value": batch / med, "unit": "img/s", "detail": f"median step {med * 1000:.1f} ms of {len(times)}"}


def list_files(dataset):
    classes = sorted(d for d in os.listdir(dataset) if os.path.isdir(os.path.join(dataset, d)))
    files = []
    for label, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(dataset, c))):
            files.append((os.path.join(dataset, c, f), label))
    return files, len(classes)


class Images(torch.utils.data.Dataset):
    def __init__(self, files, size, mode):
        from torchvision import transforms

        self.files, self.mode = files, mode
        self.tf = transforms.Compose([transforms.Resize((size, size)), transforms.PILToTensor()])

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        path, label = self.files[i]
        with Image.open(path) as im:
            return self.tf(im.convert(self.mode)).float(), label


def pipeline_row(dataset, workers):
    """sample PNGs -> 64x64x3 float batches of 32 (0-255), one shuffled pass, DataLoader."""
    files, _ = list_files(dataset)
    loader = torch.utils.data.DataLoader(Images(files, 64, "RGB"), batch_size=32, shuffle=True, num_workers=workers)
    t0 = time.perf_counter()
    n = 0
    for x, _ in loader:
        n += x.shape[0]
    dt = time.perf_counter() - t0
    return {"value": n / dt, "unit": "img/s", "detail": f"{n} images in {dt:.2f} s, {workers} workers"}


def mnist_epoch_row(dataset, workers):
    """One epoch of the tutorial CNN on the MNIST sample: 80/20 split, batch 32, validation, save."""
    files, classes = list_files(dataset)
    random.Random(42).shuffle(files)
    n_val = round(len(files) * 0.2)
    val, train = files[:n_val], files[n_val:]
    mk = lambda fs, shuffle: torch.utils.data.DataLoader(Images(fs, 28, "L"), batch_size=32, shuffle=shuffle, num_workers=workers)
    model = tutorial_cnn(28, 1, classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    model.train()
    for x, y in mk(train, True):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x / 255.0), y)
        loss.backward()
        opt.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in mk(val, False):
            correct += (model(x / 255.0).argmax(1) == y).sum().item()
    with tempfile.TemporaryDirectory() as d:
        torch.save(model.state_dict(), os.path.join(d, "model.pt"))
    dt = time.perf_counter() - t0
    return {"value": dt, "unit": "s", "detail": f"{len(train)}+{len(val)} images, val acc {correct / len(val):.3f}"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("row")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--dataset", default="samples/mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    workers = a.threads
    rows = {
        "cnn-64-32": lambda: step_row(tutorial_cnn(64, 3, 10), (3, 64, 64), 32, a.steps, a.seconds),
        "cnn-64-128": lambda: step_row(tutorial_cnn(64, 3, 10), (3, 64, 64), 128, a.steps, a.seconds),
        "cnn-180-32": lambda: step_row(tutorial_cnn(180, 3, 10), (3, 180, 180), 32, a.steps, a.seconds),
        "mobilenet-96-16": lambda: step_row(mobilenet_v2(10), (3, 96, 96), 16, a.steps, a.seconds),
        "mnist-epoch": lambda: mnist_epoch_row(a.dataset, workers),
        "pipeline": lambda: pipeline_row(a.dataset, workers),
    }
    if a.row not in rows:
        sys.exit(f"unknown row {a.row!r}; one of {', '.join(rows)}")
    out = rows[a.row]()
    out["peakRssMiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
