#!/usr/bin/python3
"""Benchmark of `extract --decode-scale exact|draft|auto` against PIL exact and PIL draft, in ONE run, same files.

Two image sets, made deterministically from the repo's test photos (outside the repo, cached under --work):
  large: N JPEGs of 8-20 MP (3264x2448 ... 5472x3648, a third portrait, some with EXIF orientation 6): a random crop
         of a test photo, flipped or not, upscaled (bicubic), with seeded Gaussian grain (sigma 2.5) so that the
         entropy-coded data is as dense as a camera's (upscaled photos alone compress far too well), quality 90, 4:2:0
  small: M JPEGs of 500x375, quality 90 (the ImageNet-sized set of docs/benchmarks.md): scaling must not cost there
For each set:
  ours:  featureonnx extract SET --decode-scale exact|draft|auto (built-in resnet18, --batch 32, --threads T if given):
         img/s over the batches and decode ms per image (run.json decodeBusy / images: decode + resize + crop, summed
         over the decode workers), and the decode scales used
  PIL:   Image.open -> [draft('RGB', (256, 256))] -> exif_transpose -> convert('RGB') -> Resize(256) -> CenterCrop(224),
         one thread, ms per image (the same work as our decode ms), and the crop mean |diff| of draft vs exact
and prints the ratios of point 4 of the issue (auto/exact and draft/exact img/s, decode ms auto/exact) plus the
pooled-feature cosine (min, median) of auto and draft against exact on the large set.

  /usr/bin/python3 export-scripts/bench_decode_scale.py [--large 40] [--small 128] [--threads 2] [--repeat 1]
      [--featureonnx src/FeatureOnnx.Cli/bin/Release/net10.0/featureonnx] [--work /tmp/featureonnx-decode-scale-bench]

Needs libjpeg-turbo for our side (FEATUREONNX_TURBOJPEG, or the bundled library) and the Debian python (PIL 9.4).
Timings need a quiet machine; the set is made once and reused (delete --work to remake it).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import statistics
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageOps
from torchvision.transforms import CenterCrop, Resize

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PHOTOS = os.path.join(REPO, "tests", "FeatureOnnx.Tests", "fixtures", "photos")
SIZES = [(3264, 2448), (4000, 3000), (4032, 3024), (4608, 3456), (5472, 3648)]


def sources():
    return [Image.open(p).convert("RGB") for p in sorted(glob.glob(os.path.join(PHOTOS, "*"))) if not p.endswith(".md")]


def exif6():
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif.tobytes()


def make_large(folder, n):
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(17)
    noise = np.random.default_rng(17)
    srcs = sources()
    for i in range(n):
        path = os.path.join(folder, "large_%03d.jpg" % i)
        src = srcs[i % len(srcs)]
        w, h = SIZES[i % len(SIZES)]
        if i % 3 == 2:
            w, h = h, w
        f = rng.uniform(0.7, 1.0)
        cw, ch = max(16, int(src.width * f)), max(16, int(src.height * f))
        x, y = rng.randint(0, src.width - cw), rng.randint(0, src.height - ch)
        img = src.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            img = ImageOps.mirror(img)
        img = img.resize((w, h), Image.BICUBIC)
        arr = np.asarray(img, dtype=np.float32) + noise.normal(0, 2.5, (h, w, 1)).astype(np.float32)
        img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
        kw = dict(quality=90, subsampling=2)
        if i % 5 == 4:  # stored sideways, EXIF says rotate
            img = img.transpose(Image.ROTATE_90)
            kw["exif"] = exif6()
        img.save(path, "JPEG", **kw)


def make_small(folder, n):
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(0)
    srcs = [s if min(s.size) >= 375 else s.resize((max(500, s.width * 375 // s.height), 375)) for s in sources()]
    for i in range(n):
        src = srcs[i % len(srcs)]
        x, y = rng.randint(0, max(0, src.width - 500)), rng.randint(0, max(0, src.height - 375))
        src.crop((x, y, x + 500, y + 375)).resize((500, 375)).save(os.path.join(folder, "small_%04d.jpg" % i), quality=90)


def ensure(folder, n, maker):
    marker = os.path.join(folder, ".complete-%d" % n)
    if not os.path.exists(marker):
        t = time.time()
        maker(folder, n)
        open(marker, "w").close()
        print("made %d images in %s (%.0f s)" % (n, folder, time.time() - t), file=sys.stderr)
    return sorted(glob.glob(os.path.join(folder, "*.jpg")))


def ours(exe, folder, out, scale, threads):
    cmd = [exe, "extract", folder, "-o", out, "--overwrite", "-q", "--batch", "32", "--decode-scale", scale]
    if threads:
        cmd += ["--threads", str(threads)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("bench: %s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stdout))
    run = json.load(open(os.path.join(out, "run.json")))
    n = run["extracted"]
    return {"ips": run["imagesPerSecond"], "decode_ms": 1000 * run["seconds"]["decodeBusy"] / n,
            "infer_ms": 1000 * run["seconds"]["inferenceBusy"] / n, "scales": run.get("decodedAtScale", {}),
            "pooled": np.load(os.path.join(out, "pooled.npy")), "hint": "hint:" in r.stdout}


def pil(files, draft):
    crops, t0 = [], time.perf_counter()
    for f in files:
        img = Image.open(f)
        if draft:
            img.draft("RGB", (256, 256))
        img = ImageOps.exif_transpose(img).convert("RGB")
        crops.append(np.asarray(CenterCrop(224)(Resize(256)(img))))
    return 1000 * (time.perf_counter() - t0) / len(files), crops


def cosines(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    c = (a * b).sum(axis=1)
    return float(c.min()), float(np.median(c))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--large", type=int, default=40)
    ap.add_argument("--small", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="extract --threads (0: extract's default)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration; the best img/s is kept")
    ap.add_argument("--featureonnx", default=os.path.join(REPO, "src/FeatureOnnx.Cli/bin/Release/net10.0/featureonnx"))
    ap.add_argument("--work", default="/tmp/featureonnx-decode-scale-bench")
    a = ap.parse_args()
    sets = {"large": ensure(os.path.join(a.work, "large-%d" % a.large), a.large, make_large),
            "small": ensure(os.path.join(a.work, "small-%d" % a.small), a.small, make_small)}
    mp = [Image.open(f).size for f in sets["large"]]
    print("large set: %d JPEGs, %.1f-%.1f MP (median %.1f), %.1f MB median file" % (
        len(mp), min(w * h for w, h in mp) / 1e6, max(w * h for w, h in mp) / 1e6,
        statistics.median(w * h for w, h in mp) / 1e6, statistics.median(os.path.getsize(f) for f in sets["large"]) / 1e6))
    print("small set: %d JPEGs of 500x375; extract --threads %s, --batch 32, resnet18; machine: %d cores" % (
        len(sets["small"]), a.threads or "default", os.cpu_count()))

    rows = []
    for name, files in sets.items():
        folder = os.path.dirname(files[0])
        res = {}
        for scale in ("exact", "draft", "auto"):
            runs = [ours(a.featureonnx, folder, os.path.join(a.work, "out-%s-%s" % (name, scale)), scale, a.threads)
                    for _ in range(a.repeat)]
            res[scale] = max(runs, key=lambda r: r["ips"])
        pil(files[:4], False)  # warm the imports and the page cache
        pil_exact_ms, exact_crops = pil(files, False)
        pil_draft_ms, draft_crops = pil(files, True)
        pil_diff = float(np.mean([np.abs(x.astype(int) - y).mean() for x, y in zip(exact_crops, draft_crops)]))
        e = res["exact"]
        for scale in ("exact", "draft", "auto"):
            r = res[scale]
            cos = cosines(e["pooled"], r["pooled"]) if scale != "exact" else (1.0, 1.0)
            rows.append((name, "featureonnx %s" % scale, "%.1f" % r["ips"], "%.1f" % r["decode_ms"],
                         "%.2f" % (r["ips"] / e["ips"]), "%.2f" % (r["decode_ms"] / e["decode_ms"]),
                         " ".join("%s:%d" % kv for kv in sorted(r["scales"].items())),
                         "%.5f / %.5f" % cos if scale != "exact" else "", "hint" if r["hint"] else ""))
        rows.append((name, "PIL exact (1 thread)", "%.1f" % (1000 / pil_exact_ms), "%.1f" % pil_exact_ms, "", "", "", "", ""))
        rows.append((name, "PIL draft (1 thread)", "%.1f" % (1000 / pil_draft_ms), "%.1f" % pil_draft_ms, "", "%.2f" % (pil_draft_ms / pil_exact_ms),
                     "crop mean |diff| vs PIL exact %.2f" % pil_diff, "", ""))

    head = ("set", "path", "img/s", "decode ms/img", "img/s vs exact", "decode vs exact", "scales", "pooled cos min / median vs exact", "")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print("(img/s of PIL: preprocessing alone, one thread; ours: end to end with inference. decode ms: decode + resize + crop.)")


if __name__ == "__main__":
    main()
