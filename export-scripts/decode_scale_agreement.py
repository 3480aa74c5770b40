#!/usr/bin/python3
"""Do `--decode-scale auto` (and draft) features find the same neighbours as exact ones? 10-NN agreement on 1,023 images.

The images (deterministic, outside the repo, cached under --work): 31 variants of each of the 33 test photos, each a
random crop (40-100 % of the area), mirrored or not, rescaled (bicubic) so that its shorter side is 1,024-2,200 px
(auto then decodes at 1/2 or 1/4, draft at 1/4 or 1/8), with seeded Gaussian grain (sigma 2) and saved at quality
85-95, a fifth of them stored sideways with EXIF orientation 6. Near-duplicates of one photo are each other's
nearest neighbours, so the 10-NN lists are full of close calls: a hard case for agreement.

Runs `featureonnx extract --decode-scale S` (built-in resnet18, pooled) for exact and each other scale, then prints
per scale: pooled cosine against exact (min, 1st percentile, median) and the 10-NN agreement: for every image, the
share of its 10 nearest neighbours (cosine, itself excluded) by scale-S features that are also among its 10 nearest
by exact features (mean and min over images), and the share of images whose 10-NN set is identical.
Exit status 1 when auto's mean agreement is below --min-agreement (default 0.95; README explains the bound).

  /usr/bin/python3 export-scripts/decode_scale_agreement.py [--variants 31] [--threads 2] [--scales auto,draft]
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import random
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PHOTOS = os.path.join(REPO, "tests", "FeatureOnnx.Tests", "fixtures", "photos")
K = 10


def make(folder, variants):
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(1017)
    grain = np.random.default_rng(1017)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif6 = exif.tobytes()
    photos = sorted(p for p in glob.glob(os.path.join(PHOTOS, "*")) if not p.endswith(".md"))
    for p in photos:
        src = Image.open(p).convert("RGB")
        stem = os.path.splitext(os.path.basename(p))[0]
        for v in range(variants):
            f = rng.uniform(0.4, 1.0) ** 0.5
            cw, ch = max(16, int(src.width * f)), max(16, int(src.height * f))
            x, y = rng.randint(0, src.width - cw), rng.randint(0, src.height - ch)
            img = src.crop((x, y, x + cw, y + ch))
            if rng.random() < 0.5:
                img = ImageOps.mirror(img)
            shorter = rng.randint(1024, 2200)
            scale = shorter / min(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
            arr = np.asarray(img, dtype=np.float32) + grain.normal(0, 2.0, (img.height, img.width, 1)).astype(np.float32)
            img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
            kw = dict(quality=rng.choice([85, 90, 95]))
            if rng.random() < 0.2:
                img = img.transpose(Image.ROTATE_90)
                kw["exif"] = exif6
            img.save(os.path.join(folder, "%s_v%02d.jpg" % (stem, v)), "JPEG", **kw)


def extract(exe, folder, out, scale, threads):
    cmd = [exe, "extract", folder, "-o", out, "--overwrite", "-q", "--decode-scale", scale]
    if threads:
        cmd += ["--threads", str(threads)]
    t = time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stdout))
    print("extract --decode-scale %s: %.0f s; %s" % (scale, time.time() - t, r.stdout.strip().splitlines()[0]), file=sys.stderr)
    with open(os.path.join(out, "index.csv")) as fh:
        paths = [row[1] for row in list(csv.reader(fh))[1:]]
    x = np.load(os.path.join(out, "pooled.npy")).astype(np.float64)
    order = np.argsort(paths)
    return [paths[i] for i in order], x[order]


def knn(x):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :K]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", type=int, default=31)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--scales", default="auto,draft")
    ap.add_argument("--min-agreement", type=float, default=0.95)
    ap.add_argument("--featureonnx", default=os.path.join(REPO, "src/FeatureOnnx.Cli/bin/Release/net10.0/featureonnx"))
    ap.add_argument("--work", default="/tmp/featureonnx-decode-scale-agreement")
    a = ap.parse_args()
    folder = os.path.join(a.work, "images-%d" % a.variants)
    marker = os.path.join(folder, ".complete")
    if not os.path.exists(marker):
        t = time.time()
        make(folder, a.variants)
        open(marker, "w").close()
        print("made the images in %.0f s" % (time.time() - t), file=sys.stderr)
    paths, exact = extract(a.featureonnx, folder, os.path.join(a.work, "out-exact"), "exact", a.threads)
    n = len(paths)
    nn_exact = knn(exact)
    print("%d images (%d photos x %d variants), resnet18 pooled, %d nearest neighbours by cosine" % (n, n // a.variants, a.variants, K))
    print("| scale | pooled cosine vs exact: min / p1 / median | 10-NN agreement: mean / min | identical 10-NN sets |")
    print("|---|---|---|---|")
    status = 0
    for scale in a.scales.split(","):
        p2, x = extract(a.featureonnx, folder, os.path.join(a.work, "out-" + scale.replace(":", "_")), scale, a.threads)
        assert p2 == paths
        cos = (exact * x).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(x, axis=1)
        nn = knn(x)
        agree = np.array([len(set(nn[i]) & set(nn_exact[i])) / K for i in range(n)])
        print("| %s | %.5f / %.5f / %.5f | %.4f / %.1f | %.1f %% |" % (
            scale, cos.min(), np.percentile(cos, 1), np.median(cos), agree.mean(), agree.min(), 100 * (agree == 1).mean()))
        if scale == "auto":
            # Yardstick: exact features moved by random directions of the same per-image size as auto's change. The
            # near-duplicates make 10-NN lists fragile; this says how much agreement any change that small leaves.
            rng = np.random.default_rng(0)
            d = rng.normal(size=exact.shape)
            d *= (np.linalg.norm(x - exact, axis=1) / np.linalg.norm(d, axis=1))[:, None]
            nn_noise = knn(exact + d)
            agree_noise = np.array([len(set(nn_noise[i]) & set(nn_exact[i])) / K for i in range(n)])
            print("| exact + random change of auto's size | | %.4f / %.1f | %.1f %% |" % (
                agree_noise.mean(), agree_noise.min(), 100 * (agree_noise == 1).mean()))
        if scale == "auto" and agree.mean() < a.min_agreement:
            print("auto: mean 10-NN agreement %.4f is below %.2f" % (agree.mean(), a.min_agreement))
            status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
