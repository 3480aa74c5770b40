#!/usr/bin/env python3
"""Independent PyTorch reference for FeatureOnnx: the torchvision eval recipe with forward hooks.

Imports nothing from FeatureOnnx or export.py. For every image (files, or folders walked recursively):
  PIL.Image.open -> ImageOps.exif_transpose (FeatureOnnx's documented addition; a no-op without the tag)
  -> convert('RGB') -> Resize(resize_size, interpolation) -> CenterCrop(crop_size) -> ToTensor -> Normalize(mean, std)
  -> the model in eval mode, with register_forward_hook on each requested module.
Resize/crop/interpolation/mean/std are read from the torchvision weights enum's transforms() (as export.py does).

Writes OUT/<alias>.npy (float32, [N, D] for vectors, [N, C, H, W] for maps; an output whose spatial dims are all 1,
e.g. avgpool's [N,512,1,1], is flattened to [N,512] like the manifest's "flatten": true), OUT/index.csv (row,path)
and OUT/errors.csv (path,reason) — the layout of `featureonnx extract`.

Folders are walked recursively for .jpg .jpeg .jpe .jfif .png .bmp .dib .gif .tif .tiff .webp .tga .pbm .pgm .ppm
.pnm (case-insensitive); each folder's files are sorted ordinally by path, the path being the folder argument joined
with the relative path (as `featureonnx extract` records it). Files named explicitly are always tried.

--tensors-out FILE.npy writes the preprocessed inputs [N,3,H,W] float32 (rows as index.csv) and FILE.csv (row,path).
--tensors-in FILE.npy skips decoding and feeds those tensors (paths from FILE.csv when present, else "row<i>"):
  the "decode and resize taken out" comparison.

Weights (same semantics as export.py): --weights DEFAULT | enum member | PATH.pth | random:SEED; for random weights of
a model with BatchNorm, --recalibrate-bn defaults to 8 batches of 8 seeded image-like noise inputs, or
--calibration-images DIR (BatchNorm layers alone in train mode, momentum=None, statistics reset first). The surest way to get export.py's exact weights is
--weights DIR/NAME.pth (export.py saves it), which turns recalibration off by default.

Exit code: 0 all inputs done, 3 some inputs failed (see errors.csv), 2 usage error.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
from PIL import Image, ImageOps
from torchvision import models
from torchvision import transforms as T

# Same defaults as export.py, written again on purpose (this script imports nothing of ours): (module, alias).
DEFAULT_LAYERS = {
    "resnet18": [("avgpool", "pooled"), ("layer1", "layer1"), ("layer2", "layer2"), ("layer3", "layer3"), ("layer4", "layer4")],
    "vgg16": [("classifier.4", "fc7"), ("features.16", "features16"), ("features", "features")],
    "efficientnet_b0": [("avgpool", "pooled"), ("features", "features"), ("features.2", "stage2"), ("features.4", "stage4"),
                        ("features.6", "stage6")],
}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp", ".tga",
                    ".pbm", ".pgm", ".ppm", ".pnm"}


def fail(msg: str):
    print(f"reference.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def list_inputs(inputs: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    items, problems, seen = [], [], set()

    def add(p):
        full = os.path.realpath(p)
        if full in seen:
            problems.append((p, "duplicate input"))
        else:
            seen.add(full)
            items.append(p)

    for inp in inputs:
        if os.path.isfile(inp):
            add(inp)
        elif os.path.isdir(inp):
            found = []
            for root, dirs, files in os.walk(inp, followlinks=True):
                for f in files:
                    if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS:
                        found.append(os.path.join(root, f))
            for p in sorted(found):  # code point order == .NET ordinal for BMP characters
                add(p)
        else:
            problems.append((inp, "no such file or folder"))
    return items, problems


def build_model(name: str, weights: str, enum):
    if weights.startswith("random:"):
        seed = int(weights.split(":", 1)[1])
        torch.manual_seed(seed)
        return models.get_model(name, weights=None), seed
    if weights == "DEFAULT" or weights in enum.__members__:
        return models.get_model(name, weights=enum.DEFAULT if weights == "DEFAULT" else enum[weights]), None
    if not os.path.isfile(weights):
        fail(f"--weights {weights}: not DEFAULT, an enum member, random:SEED or a file")
    model = models.get_model(name, weights=None)
    state = torch.load(weights, map_location="cpu")
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model, None


def smooth_noise(n, h, w, mean, std, gen):
    """Seeded image-like noise, as export.py defines it (sum of upsampled N(0,1) grids, standardised, random
    contrast/brightness, clamped to the normalised pixel range)."""
    import math
    import torch.nn.functional as F
    side, scales = 4, []
    while side < min(h, w):
        scales.append(side)
        side *= 2
    x = torch.zeros(n, 3, h, w)
    for s in scales:
        grid = torch.randn(n, 3, s, s, generator=gen)
        x += F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False) * math.sqrt(min(h, w) / s)
    x += torch.randn(n, 3, h, w, generator=gen)
    x = (x - x.mean(dim=(2, 3), keepdim=True)) / x.std(dim=(2, 3), keepdim=True)
    x = x * (0.5 + torch.rand(n, 1, 1, 1, generator=gen)) + 0.5 * torch.randn(n, 1, 1, 1, generator=gen)
    mean_t, std_t = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    return torch.max(torch.min(x, (1 - mean_t) / std_t), -mean_t / std_t)


def recalibrate_bn(model, batches, batch_size, size, seed, calib_tensors, mean, std):
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for b in range(batches):
            if calib_tensors is not None:
                idx = [(b * batch_size + i) % len(calib_tensors) for i in range(batch_size)]
                model(calib_tensors[idx])
            else:
                model(smooth_noise(batch_size, size[0], size[1], mean, std, gen))
    for m in bns:
        m.momentum = 0.1
    model.eval()


def load_image(path: str, tf) -> torch.Tensor:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return tf(im.convert("RGB"))


def write_csv(path: str, header: list[str], rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def read_paths(csv_path: str) -> list[str]:
    with open(csv_path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        if header[:2] != ["row", "path"]:
            fail(f"{csv_path}: header must be row,path")
        return [row[1] for row in r]


def check_manifest(path: str, resize, crop_hw, interp, mean, std, aliases, shapes, flattened) -> None:
    """Cross-check an exported manifest against what this script derived independently."""
    with open(path) as f:
        m = json.load(f)
    p = m["preprocess"]
    problems = []
    if p.get("resizeShorter") != resize:
        problems.append(f"resizeShorter {p.get('resizeShorter')} != {resize}")
    if list(p.get("centerCrop", [])) != crop_hw:
        problems.append(f"centerCrop {p.get('centerCrop')} != {crop_hw}")
    if p.get("interpolation") != interp:
        problems.append(f"interpolation {p.get('interpolation')} != {interp}")
    if not np.allclose(p.get("mean"), mean, atol=0) or not np.allclose(p.get("std"), std, atol=0):
        problems.append(f"mean/std {p.get('mean')}/{p.get('std')} != {mean}/{std}")
    if p.get("pixelDivisor") != 255 or p.get("channelOrder", "rgb") != "rgb":
        problems.append("pixelDivisor must be 255 and channelOrder rgb")
    outs = {o["name"]: o for o in m["outputs"]}
    for a in aliases:
        if a not in outs:
            problems.append(f"manifest has no output '{a}'")
        elif list(outs[a].get("shape", [])) != shapes[a]:
            problems.append(f"output {a}: manifest shape {outs[a].get('shape')} != reference {shapes[a]}")
        elif bool(outs[a].get("flatten", False)) != flattened[a]:
            problems.append(f"output {a}: manifest flatten {outs[a].get('flatten', False)}, reference flattened: {flattened[a]}")
    if problems:
        fail(f"{path} disagrees with the torchvision weights' transforms / model: " + "; ".join(problems))
    log(f"manifest {path}: preprocessing and output shapes agree")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Details: head -30 reference.py",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", help="image files and folders")
    ap.add_argument("--model", required=True)
    ap.add_argument("--weights", default="DEFAULT", help="DEFAULT | enum member | PATH.pth | random:SEED")
    ap.add_argument("--transforms-from", help="weights enum member whose transforms() give the preprocessing (default: the --weights member, else DEFAULT)")
    ap.add_argument("--recalibrate-bn", type=int, default=None, metavar="N")
    ap.add_argument("--calibration-images", metavar="DIR")
    ap.add_argument("--calibration-batch", type=int, default=8)
    ap.add_argument("--layers", help="MODULE[=ALIAS],... (module names for register_forward_hook)")
    ap.add_argument("--manifest", help="an exported NAME.json to cross-check (preprocessing, output names and shapes)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--tensors-out", metavar="FILE.npy")
    ap.add_argument("--tensors-in", metavar="FILE.npy")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.inputs and not args.tensors_in:
        fail("give image files/folders or --tensors-in")
    t0 = time.time()

    name = args.model
    enum = models.get_model_weights(name)
    key = args.transforms_from or (args.weights if args.weights in enum.__members__ else "DEFAULT")
    tsrc = enum.DEFAULT if key == "DEFAULT" else enum[key]
    wt = tsrc.transforms()
    resize, crop = list(wt.resize_size), list(wt.crop_size)
    crop_hw = [crop[0], crop[0]] if len(crop) == 1 else crop[:2]
    tf = T.Compose([
        T.Resize(resize if len(resize) > 1 else resize[0], interpolation=wt.interpolation),
        T.CenterCrop(crop_hw),
        T.ToTensor(),
        T.Normalize(mean=list(wt.mean), std=list(wt.std)),
    ])

    if args.layers:
        layers = []
        for part in args.layers.split(","):
            if part.strip():
                node, _, alias = part.strip().partition("=")
                layers.append((node.strip(), alias.strip() or node.strip()))
    else:
        layers = DEFAULT_LAYERS.get(name, [("avgpool", "pooled")])

    model, seed = build_model(name, args.weights, enum)
    model.eval()
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    n_cal = args.recalibrate_bn if args.recalibrate_bn is not None else (8 if seed is not None and has_bn else 0)
    if n_cal > 0 and has_bn:
        calib = None
        if args.calibration_images:
            files, _ = list_inputs([args.calibration_images])
            files = sorted(files)
            good = []
            for p in files:
                try:
                    good.append(load_image(p, wt))
                except Exception:
                    pass
            calib = torch.stack(good)
        recalibrate_bn(model, n_cal, args.calibration_batch, crop_hw, seed if seed is not None else 0, calib,
                       list(wt.mean), list(wt.std))
        log(f"recalibrated BatchNorm statistics on {n_cal} batches")

    captured: dict[str, torch.Tensor] = {}
    for node, alias in layers:
        try:
            module = model.get_submodule(node)
        except AttributeError:
            fail(f"'{node}' is not a module of {name}; forward hooks need module names (e.g. layer1, features.16, avgpool)")

        def hook(_m, _inp, out, alias=alias):
            captured[alias] = out.detach().clone()  # clone: a later in-place op must not change what we saw

        module.register_forward_hook(hook)

    os.makedirs(args.output, exist_ok=True)
    problems: list[tuple[str, str]] = []
    if args.tensors_in:
        data = torch.from_numpy(np.load(args.tensors_in).astype(np.float32, copy=False))
        side = os.path.splitext(args.tensors_in)[0] + ".csv"
        paths = read_paths(side) if os.path.isfile(side) else [f"row{i}" for i in range(len(data))]
        if len(paths) != len(data):
            fail(f"{side} has {len(paths)} rows, {args.tensors_in} {len(data)}")
        tensors = list(data)
    else:
        files, problems = list_inputs(args.inputs)
        paths, tensors = [], []
        first_checked = False
        for p in files:
            try:
                t = load_image(p, tf)
            except Exception as e:
                problems.append((p, f"{type(e).__name__}: {e}"))
                continue
            if not first_checked:  # the explicit Compose must equal the weights' own transforms
                alt = load_image(p, wt)
                if not torch.equal(alt, t):
                    fail(f"explicit transforms differ from {tsrc}.transforms() on {p}")
                first_checked = True
            paths.append(p)
            tensors.append(t)
    if not tensors:
        fail("no usable input")
    for p, why in problems:
        log(f"  skipped {p}: {why}")

    batch_all = torch.stack(tensors)
    if args.tensors_out:
        np.save(args.tensors_out, batch_all.numpy().astype(np.float32))
        write_csv(os.path.splitext(args.tensors_out)[0] + ".csv", ["row", "path"], enumerate(paths))

    results: dict[str, list[np.ndarray]] = {a: [] for _, a in layers}
    flattened: dict[str, bool] = {}
    with torch.no_grad():
        for s in range(0, len(batch_all), args.batch_size):
            captured.clear()
            model(batch_all[s:s + args.batch_size])
            for _, a in layers:
                out = captured[a]
                if out.dim() > 2 and all(d == 1 for d in out.shape[2:]):
                    out = torch.flatten(out, 1)
                    flattened[a] = True
                else:
                    flattened.setdefault(a, False)
                results[a].append(out.float().numpy())
    shapes = {}
    for _, a in layers:
        arr = np.concatenate(results[a]).astype(np.float32)
        shapes[a] = list(arr.shape[1:])
        np.save(os.path.join(args.output, a + ".npy"), arr)
    write_csv(os.path.join(args.output, "index.csv"), ["row", "path"], enumerate(paths))
    write_csv(os.path.join(args.output, "errors.csv"), ["path", "reason"], problems)
    if args.manifest:
        check_manifest(args.manifest, resize[0], crop_hw, wt.interpolation.value, list(wt.mean), list(wt.std),
                       [a for _, a in layers], shapes, flattened)
    log(f"reference {name}: {len(paths)} rows, {len(problems)} failed -> {args.output}: "
        + ", ".join(f"{a}.npy {[len(paths)] + shapes[a]}" for _, a in layers) + f" ({time.time() - t0:.1f}s)")
    return 3 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
