#!/usr/bin/env python3
"""Whole-process throughput of `featureonnx extract` against its peers, in ONE run, on the same JPEGs and cores.

Each contender is one process, timed from its start to its exit (start-up, model load and writing the features
count, as a user waiting for a job sees them), on N JPEGs of 500x375 (q90, seeded random crops of the repo's test
photos, as bench_extract.py makes them):
  ours      featureonnx extract IMAGES -o OUT   (built-in ImageNet ResNet18 -> pooled; default settings unless
            --ours-variants adds others, e.g. "--threads 1;--decode-nice 0")
  ours int8 featureonnx extract IMAGES --precision int8 --calibrate PHOTOS -o OUT (calibrated on the repo's 33 test
            photos; the quantised graph is made once, untimed, before the rounds, so each timed run reads it from the
            conversion cache, as every run after a user's first does; --no-int8 leaves it out)
  pytorch   the PyTorch recipe in a fresh python3: torchvision resnet18 (fc = Identity, eval, channels_last,
            inference_mode), DataLoader(2 workers) with PIL + Resize(256) + CenterCrop(224) + ToTensor + Normalize,
            features gathered and saved with numpy
  mlnet     ML.NET's DnnImageFeaturizer (ResNet18, same weights as ours), benchmarks/mlnet-featurizer (skipped with
            the reason when it is not built: benchmarks/mlnet-featurizer/run.sh builds it)
Rounds alternate the contenders (--rounds 3) and the table gives each one's median and every round, then the ratios
of ours (default) to each peer. Each row also says what the process had: ours' intra-op threads and JPEG decoder
from run.json, torch's thread count, ML.NET's line.

  /usr/bin/python3 export-scripts/bench_whole_process.py [--images 400] [--rounds 3] [--ours-variants "--threads 1"]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

PYTORCH_RECIPE = r'''
import os, sys, glob, numpy as np, torch
from PIL import Image
from torchvision import models, transforms as T
torch.set_num_threads(os.cpu_count() or 1)  # Debian's torch starts with one thread here
paths = sorted(glob.glob(os.path.join(sys.argv[1], "*.jpg")))
tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
class Files(torch.utils.data.Dataset):
    def __len__(self): return len(paths)
    def __getitem__(self, i): return tf(Image.open(paths[i]).convert("RGB"))
torch.manual_seed(0)
m = models.resnet18(weights=None); m.fc = torch.nn.Identity(); m.eval(); m = m.to(memory_format=torch.channels_last)
out = []
with torch.inference_mode():
    for x in torch.utils.data.DataLoader(Files(), batch_size=32, num_workers=2):
        out.append(m(x.to(memory_format=torch.channels_last)).numpy())
np.save(sys.argv[2], np.concatenate(out))
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
'''


def timed(cmd: list[str], env=None) -> tuple[float, str]:
    start = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}")
    return seconds, r.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--featureonnx", default=os.path.join(REPO, "src/FeatureOnnx.Cli/bin/Release/net10.0/featureonnx"))
    ap.add_argument("--ours-variants", default="", help="';'-separated extra extract argument sets, each timed as its own contender")
    ap.add_argument("--no-peers", action="store_true", help="time ours only (for tuning)")
    ap.add_argument("--image-dir", help="use these JPEGs instead of making N")
    ap.add_argument("--no-int8", action="store_true", help="leave out the int8 contender")
    ap.add_argument("--calibrate", default=os.path.join(REPO, "tests/FeatureOnnx.Tests/fixtures/photos"), help="int8 calibration images")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="featureonnx-whole-")
    try:
        images = a.image_dir
        if images is None:
            import bench_extract
            images = os.path.join(work, "images"); os.makedirs(images)
            bench_extract.make_images(images, a.images)
        n = len([f for f in os.listdir(images) if f.endswith(".jpg")])
        contenders: dict[str, list[str]] = {"ours": [a.featureonnx, "extract", images, "--quiet", "-o"]}
        for i, v in enumerate(x.strip() for x in a.ours_variants.split(";") if x.strip()):
            contenders[f"ours {v}"] = [a.featureonnx, "extract", images, "--quiet", *v.split(), "-o"]
        if not a.no_int8:
            contenders["ours int8"] = [a.featureonnx, "extract", images, "--quiet", "--precision", "int8", "--calibrate", a.calibrate, "-o"]
            # untimed: calibrate and quantise once, as a user's first int8 run does; the timed runs read the cached graph
            subprocess.run(contenders["ours int8"] + [os.path.join(work, "int8-warm")], check=True, capture_output=True)
        notes: dict[str, str] = {}
        if not a.no_peers:
            contenders["pytorch"] = ["/usr/bin/python3", "-c", PYTORCH_RECIPE, images]
            mlnet = os.path.join(REPO, "benchmarks/mlnet-featurizer/bin/Release/net10.0/mlnet-featurizer")
            if os.path.exists(mlnet):
                contenders["mlnet"] = [mlnet, images]
            else:
                notes["mlnet"] = f"skipped: {mlnet} not built (benchmarks/mlnet-featurizer/run.sh builds it)"
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for r in range(a.rounds):
            for name, cmd in contenders.items():
                out = os.path.join(work, f"out-{len(times[name])}-{abs(hash(name))}")
                shutil.rmtree(out, ignore_errors=True)
                arg = out if name.startswith("ours") else out + ".npy"
                seconds, text = timed(cmd + [arg])
                times[name].append(seconds)
                if name.startswith("ours"):
                    run = json.load(open(os.path.join(out, "run.json")))
                    assert run["extracted"] == n, f"{name}: {run['extracted']} of {n} extracted"
                    notes[name] = (f"intra-op threads {run.get('intraOpThreads')}, decode workers {run.get('decodeWorkers')}, "
                                   f"JPEG: {run.get('decoders', {}).get('jpeg')}, batches {run['imagesPerSecond']:.1f} img/s, "
                                   f"busy: decode {run['seconds']['decodeBusy']:.1f} s, inference {run['seconds']['inferenceBusy']:.1f} s, "
                                   f"session {run['seconds']['sessionCreation']:.2f} s")
                else:
                    notes[name] = text.strip().splitlines()[-1] if text.strip() else ""
                shutil.rmtree(out, ignore_errors=True)
                if os.path.exists(out + ".npy"): os.remove(out + ".npy")
        print(f"{n} JPEGs 500x375, {os.cpu_count()} cores, whole process (start to exit), {a.rounds} alternated rounds")
        print()
        print("| contender | median s | img/s (median) | rounds (s) |")
        print("| --- | --: | --: | --- |")
        for name, ts in times.items():
            m = statistics.median(ts)
            print(f"| {name} | {m:.2f} | {n / m:.1f} | {', '.join(f'{t:.2f}' for t in ts)} |")
        print()
        for base in ("ours", "ours int8"):
            if base not in times: continue
            ours = statistics.median(times[base])
            for name, ts in times.items():
                if name != base and not (base == "ours int8" and name.startswith("ours")):
                    print(f"{base} vs {name}: {statistics.median(ts) / ours:.2f}x")
        print()
        for name, note in notes.items():
            print(f"{name}: {note}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
