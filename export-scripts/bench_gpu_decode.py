#!/usr/bin/env python3
"""GPU data path (issue 15), in ONE run on one machine, on the same JPEGs:

  torch-dataloader  PyTorch: PIL decode + Resize(256) + CenterCrop(224) in a DataLoader (WORKERS-1 processes),
                    resnet18 to the pooled vector, AMP fp16 + channels_last (timed after the first batch)
  torch-nvjpeg      PyTorch: file bytes -> torchvision.io.decode_jpeg(list, device='cuda') (nvJPEG, batched) ->
                    antialiased GPU resize + centre crop -> AMP fp16 + channels_last
  ours-cpu-fp32/16  featureonnx extract --provider cuda --decoder cpu --precision fp32|fp16 (built-in resnet18, NHWC)
  ours-gpu-fp32/16  the same with --decoder gpu (nvJPEG + the PIL-exact CUDA resize into the bound input)

Each runs as a child process: img/s is the pipeline's own (after start-up: run.json's imagesPerSecond for ours,
after the first batch for torch), CPU seconds per 1,000 images are the child's user+system time from
getrusage(RUSAGE_CHILDREN) (whole process, start-up included, DataLoader workers included). Then the agreement:
  crops     nvJPEG (torchvision.io.decode_jpeg on the GPU, the library our decoder calls) vs PIL, per chroma
            subsampling, on the test photos re-encoded at q90 as 4:4:4, 4:2:2, 4:2:0 and greyscale: Resize(256) +
            CenterCrop(224) by PIL on both decodes (our CUDA resize equals PIL's on the same pixels, bit for bit:
            tests/.../GpuResizeTwinTests), mean |diff| and max
  pooled    extract --decoder gpu vs --decoder cpu on the test photos (built-in resnet18, real ImageNet weights,
            fp32): min cosine (target >= 0.9999)
  corrupt   truncated, zero-byte, header-only, garbage-scan and renamed files among good JPEGs through --decoder gpu:
            exit 3, every bad file in errors.csv, the good files' rows equal to a run of the good files alone
Where CUDA or torch is missing, each step that needs it prints why and is skipped.

  python3 export-scripts/bench_gpu_decode.py --featureonnx APP --out OUT [--n 32768] [--batch 256] [--workers 16]
"""
from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PHOTOS = os.path.join(REPO, "tests/FeatureOnnx.Tests/fixtures/photos")


def photos() -> list[str]:
    return sorted(p for p in glob.glob(os.path.join(PHOTOS, "*")) if not p.endswith(".md"))


def _make(args):  # as export-scripts/bench_extract.py and h200-check.sh: seeded random 500x375 crops, quality 90
    from PIL import Image
    folder, n, k, step = args
    sources = [Image.open(p).convert("RGB") for p in photos()]
    sources = [s if min(s.size) >= 375 else s.resize((max(500, s.width * 375 // s.height), 375)) for s in sources]
    for i in range(k, n, step):
        rng = random.Random(i)
        src = sources[i % len(sources)]
        x = rng.randint(0, max(0, src.width - 500)); y = rng.randint(0, max(0, src.height - 375))
        src.crop((x, y, x + 500, y + 375)).resize((500, 375)).save(os.path.join(folder, f"img_{i:05d}.jpg"), quality=90)


def make_jpegs(folder: str, n: int) -> None:
    from concurrent.futures import ProcessPoolExecutor
    os.makedirs(folder, exist_ok=True)
    if len(glob.glob(os.path.join(folder, "*.jpg"))) == n:
        return
    cpus = os.cpu_count() or 1
    with ProcessPoolExecutor() as pool:
        list(pool.map(_make, [(folder, n, k, cpus) for k in range(cpus)]))


def timed_child(cmd: list[str], log: str, timeout: float) -> tuple[int, float, float, str]:
    """Runs cmd; returns (exit code, wall seconds, CPU seconds of it and its children, output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        code, text = r.returncode, r.stdout
    except subprocess.TimeoutExpired as e:
        code, text = 124, (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(log, "w") as f:
        f.write(f"$ {' '.join(cmd)}\n{text}")
    return code, wall, cpu, text


# ---------------------------------------------------------------- PyTorch pipelines (run as children)

def torch_model():
    import torch
    from torchvision import models
    model = models.resnet18(weights=None)
    model.fc = torch.nn.Identity()  # the pooled vector, as extract's default output
    return model.eval().cuda().to(memory_format=torch.channels_last)


def timed_inference(model, batches) -> tuple[int, float]:
    """Both PyTorch pipelines' timed loop: each batch (float, 0..255 RGB, NCHW on the GPU; made inside the loop, so its
    decode and resize count) is normalised and run with AMP channels_last; the first batch is warm-up, the clock starts
    after it. Returns (images timed, img/s)."""
    import torch

    mean = torch.tensor([0.485, 0.456, 0.406], device="cuda").view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device="cuda").view(1, 3, 1, 1) * 255
    done, t0 = 0, None
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
        for x in batches:
            model(((x - mean) / std).contiguous(memory_format=torch.channels_last))
            if t0 is None:
                torch.cuda.synchronize(); t0 = time.perf_counter()
            else:
                done += x.shape[0]
        torch.cuda.synchronize()
    return done, done / (time.perf_counter() - t0)


def child_dataloader(folder: str, batch: int, workers: int) -> dict:
    import torch
    from PIL import Image
    from torchvision import transforms as T

    files = sorted(glob.glob(os.path.join(folder, "*.jpg")))
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.PILToTensor()])

    class Files(torch.utils.data.Dataset):
        def __len__(self):
            return len(files)

        def __getitem__(self, i):
            return tf(Image.open(files[i]).convert("RGB"))

    loader = torch.utils.data.DataLoader(Files(), batch_size=batch, num_workers=max(1, workers - 1), pin_memory=True)
    done, rate = timed_inference(torch_model(), (x.cuda(non_blocking=True).float() for x in loader))
    return {"images": done, "img_per_s": rate}


def child_nvjpeg(folder: str, batch: int) -> dict:
    import torch
    import torchvision
    from torchvision.io import decode_jpeg, ImageReadMode
    from torchvision.transforms.v2 import functional as F

    files = sorted(glob.glob(os.path.join(folder, "*.jpg")))

    def batches():
        for start in range(0, len(files), batch):
            data = [torchvision.io.read_file(f) for f in files[start:start + batch]]
            images = decode_jpeg(data, mode=ImageReadMode.RGB, device="cuda")
            # float before resizing: antialiased interpolation of uint8 is not on every torch's CUDA path
            yield torch.stack([F.center_crop(F.resize(im.float(), [256], antialias=True), [224, 224]) for im in images])

    done, rate = timed_inference(torch_model(), batches())
    return {"images": done, "img_per_s": rate, "torchvision": torchvision.__version__}


# ---------------------------------------------------------------- agreement

def crop_agreement() -> list[tuple[str, int, float, int]]:
    """Per subsampling: (name, images, mean |diff|, max) of nvJPEG-decoded vs PIL-decoded crops (PIL resize on both)."""
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.io import decode_jpeg, ImageReadMode
    from torchvision import transforms as T

    tf = T.Compose([T.Resize(256), T.CenterCrop(224)])
    rows = []
    for name, mode, subsampling in [("4:4:4", "RGB", 0), ("4:2:2", "RGB", 1), ("4:2:0", "RGB", 2), ("grey", "L", None)]:
        diffs, peak, count = [], 0, 0
        for p in photos():
            buf = io.BytesIO()
            img = Image.open(p).convert(mode)
            img.save(buf, format="JPEG", quality=90, **({} if subsampling is None else {"subsampling": subsampling}))
            data = buf.getvalue()
            pil = np.asarray(tf(Image.open(io.BytesIO(data)).convert("RGB")), dtype=np.int16)
            gpu = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB, device="cuda")
            nv = np.asarray(tf(Image.fromarray(gpu.permute(1, 2, 0).cpu().numpy())), dtype=np.int16)
            d = np.abs(pil - nv)
            diffs.append(d.mean()); peak = max(peak, int(d.max())); count += 1
        rows.append((name, count, float(np.mean(diffs)), peak))
    return rows


def read_rows(folder: str):
    import numpy as np
    with open(os.path.join(folder, "index.csv")) as f:
        keys = [r["path"] for r in csv.DictReader(f)]
    return dict(zip(keys, np.load(os.path.join(folder, "pooled.npy"))))


def min_cosine(a: dict, b: dict) -> tuple[float, int]:
    import numpy as np
    common = sorted(set(a) & set(b))
    cos = [float(np.dot(a[k], b[k]) / (np.linalg.norm(a[k]) * np.linalg.norm(b[k]) + 1e-30)) for k in common]
    return (min(cos) if cos else float("nan")), len(common)


def make_corrupt(folder: str, good: list[str]) -> list[str]:
    """Copies good JPEGs into folder and adds hostile files; returns the names of the bad ones."""
    os.makedirs(folder, exist_ok=True)
    for p in good:
        shutil.copy(p, folder)
    data = open(good[0], "rb").read()
    sos = data.find(b"\xff\xda")
    sof = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
    bad = {
        "truncated_60pct.jpg": data[: len(data) * 6 // 10],
        "zero_bytes.jpg": b"",
        "header_only.jpg": data[: sos + 2] if sos > 0 else data[:600],
        "no_eoi.jpg": data[:-2],
        "renamed_text.jpg": b"this is not an image\n" * 20,
        # SOF0/SOF2 declaring 65535 x 65535: refused by the pixel limit before any decoder sees it.
        "huge_dims.jpg": data[:sof + 5] + b"\xff\xff\xff\xff" + data[sof + 9:],
    }
    for name, content in bad.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(content)
    return sorted(bad)


# ---------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--featureonnx", help="the featureonnx binary")
    ap.add_argument("--out", help="output folder")
    ap.add_argument("--n", type=int, default=32768)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--jpegs", help="folder of JPEGs (default: OUT/.jpegs, made here)")
    ap.add_argument("--step-timeout", type=float, default=120)
    ap.add_argument("--child", choices=["dataloader", "nvjpeg"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        r = child_dataloader(a.jpegs, a.batch, a.workers) if a.child == "dataloader" else child_nvjpeg(a.jpegs, a.batch)
        print("RESULT " + json.dumps(r))
        return 0
    if not a.featureonnx or not a.out:
        ap.error("--featureonnx and --out are required")
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    app = os.path.abspath(a.featureonnx)
    say = print

    # Preconditions: the publish decodes JPEG with libjpeg-turbo (an earlier GPU run used ImageSharp by mistake).
    providers = subprocess.run([app, "providers"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    open(os.path.join(out, "providers.log"), "w").write(providers)
    cuda_ok = any(l.startswith("cuda") and "NOT usable" not in l and "usable" in l for l in providers.splitlines())
    gpu_decoder_ok = "gpu decoder (extract --decoder gpu): usable" in providers
    for line in providers.splitlines():
        if line.startswith(("cuda", "gpu decoder")) or "nvJPEG" in line or "NVRTC" in line or "hardware backend" in line:
            say("   " + line.strip())
    try:
        import torch
        torch_cuda = torch.cuda.is_available()
        torch_why = "" if torch_cuda else f"torch {torch.__version__} sees no CUDA device"
    except ImportError as e:
        torch_cuda, torch_why = False, f"no torch in {sys.executable} ({e})"

    jpegs = a.jpegs or os.path.join(out, ".jpegs")
    t0 = time.perf_counter()
    if not a.jpegs:
        make_jpegs(jpegs, a.n)
    n = len(glob.glob(os.path.join(jpegs, "*.jpg")))
    say(f"images: {n} JPEGs in {jpegs} ({time.perf_counter() - t0:.1f}s to make)")

    # libjpeg-turbo check on a small run (also a dry run of the CPU decoder here).
    probe = os.path.join(out, "probe")
    subprocess.run([app, "extract", photos()[0], "-o", probe, "--decoder", "cpu", "-q", "--overwrite"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    decoders = json.load(open(os.path.join(probe, "run.json"))).get("decoders", {}) if os.path.exists(os.path.join(probe, "run.json")) else {}
    turbo = "libjpeg-turbo" in decoders.get("jpeg", "")
    say(f"publish decodes JPEG with: {decoders.get('jpeg', '?')}{'' if turbo else '   <-- NOT libjpeg-turbo: the CPU figures below are not the real ones'}")

    rows = []  # (pipeline, img/s, cpu s per 1000, note)
    for name in ["torch-dataloader", "torch-nvjpeg"]:
        if not torch_cuda:
            say(f"== {name}: skipped: {torch_why}")
            continue
        code, wall, cpu, text = timed_child([sys.executable, __file__, "--child", name.split("-")[1], "--jpegs", jpegs,
                                             "--batch", str(a.batch), "--workers", str(a.workers)], os.path.join(out, name + ".log"), a.step_timeout)
        result = next((json.loads(l[7:]) for l in text.splitlines() if l.startswith("RESULT ")), None)
        if code != 0 or result is None:
            say(f"== {name}: exit {code}: {text.strip().splitlines()[-1] if text.strip() else ''}")
            continue
        rows.append((name, result["img_per_s"], cpu / n * 1000, f"wall {wall:.1f}s"))

    for decoder in ["cpu", "gpu"]:
        for precision in ["fp32", "fp16"]:
            name = f"ours-{decoder}-{precision}"
            if not cuda_ok:
                say(f"== {name}: skipped: CUDA is not usable here (providers: see above)")
                continue
            if decoder == "gpu" and not gpu_decoder_ok:
                say(f"== {name}: skipped: the GPU decoder is not usable here (providers: see above)")
                continue
            folder = os.path.join(out, name)
            code, wall, cpu, text = timed_child([app, "extract", jpegs, "-o", folder, "--provider", "cuda", "--batch", str(a.batch),
                                                 "--workers", str(a.workers), "--decoder", decoder, "--precision", precision,
                                                 "--cuda-options", "prefer_nhwc=1", "-q", "--overwrite"], os.path.join(out, name + ".log"), a.step_timeout)
            run = json.load(open(os.path.join(folder, "run.json"))) if os.path.exists(os.path.join(folder, "run.json")) else None
            if run is None:
                say(f"== {name}: exit {code}: {text.strip().splitlines()[-1] if text.strip() else ''}")
                continue
            rows.append((name, run["imagesPerSecond"], cpu / n * 1000, f"exit {code}, {run['extracted']} rows, decoders {run.get('decoders')}"))
            for f in glob.glob(os.path.join(folder, "*.npy")):
                os.remove(f)

    if rows:
        say("\n| pipeline | img/s | CPU s / 1,000 images | note |\n|---|---|---|---|")
        for name, ips, cpu, note in rows:
            say(f"| {name} | {ips:,.0f} | {cpu:.2f} | {note} |")
        by = {r[0]: r[1] for r in rows}
        for ours, peer, target in [("ours-gpu-fp16", "torch-nvjpeg", 1.5), ("ours-gpu-fp16", "torch-dataloader", 2.5), ("ours-cpu-fp16", "torch-dataloader", 1.0)]:
            if ours in by and peer in by:
                ratio = by[ours] / by[peer]
                say(f"{ours} / {peer}: {ratio:.2f}x (target >= {target}x: {'MET' if ratio >= target else 'NOT MET'})")

    # Agreement 1: nvJPEG vs PIL crops per chroma subsampling.
    if torch_cuda:
        try:
            say("\n| subsampling | images | crop mean abs diff | max |\n|---|---|---|---|")
            for name, count, mean, peak in crop_agreement():
                say(f"| {name} | {count} | {mean:.3f} | {peak} |")
        except Exception as e:  # an old torchvision without GPU decode_jpeg, say
            say(f"== crop agreement: failed: {type(e).__name__}: {e}")
    else:
        say(f"== crop agreement (nvJPEG vs PIL): skipped: {torch_why}")

    # Agreement 2: pooled features, GPU decoder vs CPU path, real ResNet18 weights.
    if cuda_ok and gpu_decoder_ok:
        folders = {}
        for decoder in ["cpu", "gpu"]:
            folders[decoder] = os.path.join(out, f"photos-{decoder}")
            subprocess.run([app, "extract", PHOTOS, "-o", folders[decoder], "--provider", "cuda", "--decoder", decoder, "-q", "--overwrite"],
                           stdout=open(os.path.join(out, f"photos-{decoder}.log"), "w"), stderr=subprocess.STDOUT)
        try:
            cos, count = min_cosine(read_rows(folders["cpu"]), read_rows(folders["gpu"]))
            say(f"pooled, --decoder gpu vs cpu on {count} test photos: min cosine {cos:.6f} (target >= 0.9999: {'MET' if cos >= 0.9999 else 'NOT MET'})")
        except (OSError, ValueError) as e:
            say(f"== pooled agreement: failed: {e}")
    else:
        say("== pooled agreement (GPU decoder vs CPU path): skipped: CUDA or the GPU decoder is not usable here")

    # Corrupt files through the GPU decoder (here, without one: the refusal is what is checked).
    good = [p for p in photos() if p.endswith(".jpg")][:6]
    hostile = os.path.join(out, ".corrupt")
    bad = make_corrupt(hostile, good)
    clean = os.path.join(out, ".clean")
    os.makedirs(clean, exist_ok=True)
    for p in good:
        shutil.copy(p, clean)
    decoder_args = ["--provider", "cuda", "--decoder", "gpu"] if cuda_ok and gpu_decoder_ok else ["--decoder", "cpu"]
    label = "GPU decoder" if cuda_ok and gpu_decoder_ok else "CPU decoder (dry run: no GPU decoder here)"
    r = subprocess.run([app, "extract", hostile, "-o", os.path.join(out, "corrupt"), *decoder_args, "-q", "--overwrite"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=a.step_timeout)
    subprocess.run([app, "extract", clean, "-o", os.path.join(out, "clean"), *decoder_args, "-q", "--overwrite"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=a.step_timeout)
    try:
        with open(os.path.join(out, "corrupt", "errors.csv")) as f:
            failed = {os.path.basename(row["path"]): row["reason"] for row in csv.DictReader(f)}
        rows_bad, rows_clean = read_rows(os.path.join(out, "corrupt")), read_rows(os.path.join(out, "clean"))
        same = {os.path.basename(k): v for k, v in rows_bad.items()}
        import numpy as np
        worst = max(float(np.abs(same[os.path.basename(k)] - v).max()) for k, v in rows_clean.items())
        unaffected = worst <= 1e-5
        ok = r.returncode == 3 and set(failed) == set(bad) and len(rows_bad) == len(good) and unaffected
        say(f"corrupt files through the {label}: exit {r.returncode}, {len(failed)}/{len(bad)} in errors.csv, "
            f"{len(rows_bad)}/{len(good)} good rows, max |diff| {worst:.2g} vs a run of the good files alone: {'PASS' if ok else 'FAIL'}")
        for name in bad:
            say(f"   {name}: {failed.get(name, 'NOT IN errors.csv')}")
    except (OSError, KeyError, ValueError) as e:
        say(f"== corrupt files: FAIL: {e}\n{r.stdout[-2000:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
