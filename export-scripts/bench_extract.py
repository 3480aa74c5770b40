#!/usr/bin/env python3
"""Throughput benchmark of `featureonnx extract` against the PyTorch recipe, in ONE run, same images, same cores.

For each model (resnet18, efficientnet_b0; seeded random weights, exported by export.py):
  (a) ours end-to-end:   featureonnx extract IMAGES (decode + preprocess + inference + write), img/s over the batches
  (b) ours inference:    featureonnx extract --tensors-in (ready tensors), img/s of ONNX Runtime busy time
  (c) PyTorch pipeline:  DataLoader(2 workers) with PIL + torchvision transforms -> model (channels_last, inference_mode)
  (d) PyTorch inference: the same model on ready tensors, channels_last, batch 32 (the peer of (b))
and prints the ratios the issue asks for: (a)/(b) (target >= 0.9) and (a)/(c) (target >= 1.3), (b)/(d) (>= 1.0).

  /usr/bin/python3 export-scripts/bench_extract.py [--images 256] [--featureonnx PATH] [--models resnet18,efficientnet_b0]

Images: N JPEGs of 500x375 (quality 90) made from the repo's test photos (random crops, seeded). Writes the table to
stdout and, with --markdown FILE, appends it to FILE. Threads: torch uses all cores (torch.get_num_threads()), ORT too.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from torchvision import models
from torchvision import transforms as T

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def make_images(folder: str, n: int) -> list[str]:
    photos = sorted(p for p in glob.glob(os.path.join(REPO, "tests/FeatureOnnx.Tests/fixtures/photos/*"))
                    if not p.endswith(".md"))
    rng = random.Random(0)
    sources = [Image.open(p).convert("RGB") for p in photos]
    sources = [s if min(s.size) >= 375 else s.resize((max(500, s.width * 375 // s.height), 375)) for s in sources]
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = src.size
        x = rng.randint(0, max(0, w - 500)); y = rng.randint(0, max(0, h - 375))
        img = src.crop((x, y, x + 500, y + 375)).resize((500, 375))
        path = os.path.join(folder, f"img_{i:05d}.jpg")
        img.save(path, quality=90)
        paths.append(path)
    return paths


def run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode not in (0,):
        sys.exit(f"bench: {' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}")


def ours(featureonnx: list[str], args: list[str], out: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    run(featureonnx + ["extract", *args, "-o", out, "-q"])
    with open(os.path.join(out, "run.json")) as f:
        return json.load(f)


class Files(torch.utils.data.Dataset):
    def __init__(self, paths, tf):
        self.paths, self.tf = paths, tf

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.tf(Image.open(self.paths[i]).convert("RGB"))


def torch_model(name: str, pth: str):
    m = getattr(models, name)(weights=None)
    m.load_state_dict(torch.load(pth, map_location="cpu"), strict=False)
    m.eval()
    return m.to(memory_format=torch.channels_last)


def torch_pipeline(model, paths, tf, batch: int, workers: int) -> float:
    loader = torch.utils.data.DataLoader(Files(paths, tf), batch_size=batch, num_workers=workers)
    start = time.perf_counter()
    with torch.inference_mode():
        for x in loader:
            model(x.to(memory_format=torch.channels_last))
    return len(paths) / (time.perf_counter() - start)


def torch_inference(model, tensors: torch.Tensor, batch: int) -> float:
    x = tensors.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x[:batch])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(x), batch):
            model(x[i:i + batch])
    return len(x) / (time.perf_counter() - start)


def main() -> int:
    torch.set_num_threads(os.cpu_count() or 1)  # Debian torch starts with 1 OpenMP thread here; use every core, as ORT does
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--models", default="resnet18,efficientnet_b0")
    ap.add_argument("--featureonnx", default=os.path.join(REPO, "src/FeatureOnnx.Cli/bin/Release/net10.0/featureonnx"))
    ap.add_argument("--extract-args", default="", help="extra arguments for our extract, e.g. '--threads 2'")
    ap.add_argument("--markdown", help="append the table to this file")
    a = ap.parse_args()
    featureonnx = [a.featureonnx]
    work = tempfile.mkdtemp(prefix="featureonnx-bench-")
    try:
        img_dir = os.path.join(work, "images"); os.makedirs(img_dir)
        paths = make_images(img_dir, a.images)
        rows = []
        for name in a.models.split(","):
            mdir = os.path.join(work, "models")
            subprocess.run([sys.executable, os.path.join(HERE, "export.py"), "--model", name, "--weights", "random:0",
                            "--layers", "avgpool=pooled", "-o", mdir], check=True, stdout=subprocess.DEVNULL)
            manifest = os.path.join(mdir, f"{name}.json")
            extra = a.extract_args.split()
            e2e = ours(featureonnx, [img_dir, "--model", manifest, "--batch", str(a.batch), *extra], os.path.join(work, "e2e"))
            # Ready tensors: our own preprocessing written by reference.py's twin is not needed: use torchvision's.
            tf = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC if name.startswith("efficientnet") else T.InterpolationMode.BILINEAR),
                            T.CenterCrop(224), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
            tensors = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])
            tpath = os.path.join(work, "tensors.npy"); np.save(tpath, tensors.numpy())
            inf = ours(featureonnx, ["--tensors-in", tpath, "--model", manifest, "--batch", str(a.batch), *extra], os.path.join(work, "inf"))
            model = torch_model(name, os.path.join(mdir, f"{name}.pth"))
            pt_pipe = torch_pipeline(model, paths, tf, a.batch, 2)
            pt_inf = torch_inference(model, tensors, a.batch)
            ours_e2e = e2e["imagesPerSecond"]
            ours_inf = a.images / inf["seconds"]["inferenceBusy"]
            rows.append((name, ours_e2e, ours_inf, pt_pipe, pt_inf, e2e["seconds"]))
        lines = [f"{a.images} JPEGs 500x375, batch {a.batch}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)",
                 "",
                 "| model | ours end-to-end | ours inference | PyTorch DataLoader(2) | PyTorch inference (channels_last) | e2e / inference | e2e / PyTorch e2e | inference / PyTorch inference |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, e, i, pp, pi, secs in rows:
            lines.append(f"| {name} | {e:.1f} | {i:.1f} | {pp:.1f} | {pi:.1f} | {e / i:.2f}x | {e / pp:.2f}x | {i / pi:.2f}x |")
        lines.append("")
        for name, e, i, pp, pi, secs in rows:
            lines.append(f"{name}: ours busy seconds: decode {secs['decodeBusy']:.1f} (summed over workers), inference {secs['inferenceBusy']:.1f}, write {secs['writeBusy']:.2f}; batches wall {secs['batches']:.1f}")
        text = "\n".join(lines)
        print(text)
        if a.markdown:
            with open(a.markdown, "a") as f:
                f.write(text + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
