#!/usr/bin/python3
"""Generate the committed decode-scale fixtures (tests/FeatureOnnx.Tests/fixtures/decode_scale/).

`extract --decode-scale draft` must give PIL's crops after Image.draft; `auto` decodes at libjpeg's 1/2, 1/4 or 1/8
scale too, so PIL can make its references as well (Image.draft asked for exactly that scale). This script writes:

  decode_scale/gen_large_*.jpg   five larger JPEGs made from the test photos (upscaled, re-encoded by PIL at fixed
                                 quality; deterministic), covering 4:2:0 / 4:2:2 progressive / 4:4:4 / grey / CMYK, the
                                 EXIF orientations that swap or flip axes, odd sizes, and 1/8 scale
  decode_scale/references.npz    uint8 HWC 224x224 crops, key "<file>.draft.s<scale>" / "<file>.auto.s<scale>", and two
                                 whole images decoded at a scale (RAW_SCALED: the damaged JPEG's warning path)
  decode_scale/manifest.json     one entry per JPEG of photos/, generated/ and decode_scale/: stored size, PIL mode,
                                 EXIF orientation, the scale PIL's draft picked (draft_scale), the scale auto picks
                                 (auto_scale, F = 2) and the reference keys; scale 1 points to the exact reference
                                 that make_preprocess_fixtures.py wrote (reference/<file>.npy), or to none for the
                                 generated large files (their exact crops are compared with C#'s own exact decode)

The draft recipe (what the issue asks `draft` to match), S = 256, the resize target:

    img = PIL.Image.open(path)
    img.draft('RGB', (S, S))                 # libjpeg scale_denom = largest of 8,4,2,1 <= min(W // S, H // S)
    img = PIL.ImageOps.exif_transpose(img)
    img = img.convert('RGB')
    img = torchvision.transforms.Resize(S)(img)      # bilinear, from the scaled size PIL now reports
    img = torchvision.transforms.CenterCrop(224)(img)

The auto recipe decodes with img.draft('RGB', (W // s, H // s)), which makes Pillow 9.4 pick exactly scale s
(checked: decoderconfig and the image size are asserted), s = the largest of 8, 4, 2, 1 with
ceil(min(W, H) / s) >= 2 * S, then keeps the full-size geometry: after exif_transpose and convert,
img.resize(Resize(S)'s size for the full-size image, BILINEAR, box=the part of the scaled image the full image covers,
(0, 0, W / s, H / s) carried through the EXIF orientation), then CenterCrop(224).

Rerun from the repository root after make_preprocess_fixtures.py (same Debian python: PIL 9.4 on libjpeg-turbo 2.1.5):

    /usr/bin/python3 export-scripts/make_decode_scale_fixtures.py

Deterministic for a given PIL/libjpeg build; the folder is wiped and rewritten.
"""

import io
import json
import os
import shutil
import sys
import zipfile

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image, ImageOps
from torchvision.transforms import CenterCrop, Resize

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "FeatureOnnx.Tests", "fixtures")
OUT = os.path.join(FIXTURES, "decode_scale")
S = 256
CROP = 224
AUTO_FACTOR = 2

# name -> (source photo, size, PIL save options, EXIF orientation or None, mode)
LARGE = [
    ("gen_large_420_exif6.jpg", "skimage_astronaut.png", (2075, 2061), dict(quality=75, subsampling=2), 6, "RGB"),
    ("gen_large_422_progr_exif3.jpg", "skimage_coffee.png", (1813, 1209), dict(quality=80, subsampling=1, progressive=True), 3, "RGB"),
    ("gen_large_444_exif5.jpg", "skimage_motorcycle_left.png", (1537, 1031), dict(quality=80, subsampling=0), 5, "RGB"),
    ("gen_large_gray_exif8.jpg", "skimage_camera.png", (1030, 1547), dict(quality=80), 8, "L"),
    ("gen_large_cmyk.jpg", "skimage_chelsea.png", (1100, 1027), dict(quality=80), None, "CMYK"),
]


# Whole images decoded at a scale (key "<name>.decoded.s<scale>", uint8 HWC at PIL's scaled size).
RAW_SCALED = [("jpeg/gen_damaged_420.jpg", 2), ("jpeg/gen_progressive_420.jpg", 4)]


def exif_bytes(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def make_large(photo_dir):
    desc = {}
    for name, src, size, opts, orientation, mode in LARGE:
        img = Image.open(os.path.join(photo_dir, src)).convert("RGB").resize(size, Image.BICUBIC)
        if mode == "L":
            img = img.convert("L")
        elif mode == "CMYK":
            img = img.convert("CMYK")
        kw = dict(opts)
        if orientation is not None:
            kw["exif"] = exif_bytes(orientation)
        img.save(os.path.join(OUT, name), "JPEG", **kw)
        desc[name] = "%s upscaled (bicubic) to %dx%d, %s, PIL JPEG %s%s" % (
            src, size[0], size[1], mode, ", ".join("%s=%s" % kv for kv in sorted(opts.items())),
            ", EXIF orientation %d" % orientation if orientation else "")
    return desc


def auto_scale(w, h):
    shorter = min(w, h)
    for s in (8, 4, 2):
        if shorter >= 16 * s and (shorter + s - 1) // s >= AUTO_FACTOR * S:
            return s
    return 1


def resized_size(w, h):
    """torchvision's Resize(S) size for a w x h image."""
    return (S, int(S * h / w)) if w <= h else (int(S * w / h), S)


def full_box(cw, ch, w, h, orientation):
    """Where the full image lies in a scaled decode of cw x ch pixels (exact extents w, h), after exif_transpose."""
    flip_x, flip_y = {2: (1, 0), 3: (1, 1), 4: (0, 1), 6: (0, 1), 7: (1, 1), 8: (1, 0)}.get(orientation, (0, 0))
    x = (cw - w, cw) if flip_x else (0, w)
    y = (ch - h, ch) if flip_y else (0, h)
    return (y[0], x[0], y[1], x[1]) if orientation in (5, 6, 7, 8) else (x[0], y[0], x[1], y[1])


def crop_at(path, request, full_geometry=False):
    """PIL's path with img.draft('RGB', request) (None: no draft); returns (crop, scale PIL used).

    full_geometry (auto): resize to the size Resize(S) gives the full-size image, reading the box of the scaled image
    that the full image covers (Image.resize(size, box=...)), instead of Resize(S) of the scaled image (draft)."""
    img = Image.open(path)
    w, h = img.size
    orientation = img.getexif().get(0x0112, 1)
    scale = 1
    if request is not None:
        img.draft("RGB", request)
        scale = img.decoderconfig[0] if img.decoderconfig else 1
        assert img.size == ((w + scale - 1) // scale, (h + scale - 1) // scale), (path, img.size, scale)
    cw, ch = img.size
    img = ImageOps.exif_transpose(img)
    img = img.convert("RGB")
    if full_geometry:
        fw, fh = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
        img = img.resize(resized_size(fw, fh), Image.BILINEAR, box=full_box(cw, ch, w / scale, h / scale, orientation))
    else:
        img = Resize(S)(img)
    img = CenterCrop(CROP)(img)
    arr = np.ascontiguousarray(np.asarray(img), dtype=np.uint8)
    assert arr.shape == (CROP, CROP, 3)
    return arr, scale


def main():
    photo_dir = os.path.join(FIXTURES, "photos")
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    desc = make_large(photo_dir)

    jpegs = [("photos", f) for f in sorted(os.listdir(photo_dir)) if f.lower().endswith(".jpg")]
    jpegs += [("generated", f) for f in sorted(os.listdir(os.path.join(FIXTURES, "generated"))) if f.endswith(".jpg")]
    jpegs += [("decode_scale", name) for name, *_ in LARGE]

    arrays = {}
    entries = []
    for folder, f in jpegs:
        path = os.path.join(FIXTURES, folder, f)
        with Image.open(path) as im:
            w, h = im.size
            mode = im.mode
            orientation = im.getexif().get(0x0112)
        exact_key = None if folder == "decode_scale" else "reference/%s.npy" % f

        draft_crop, draft_s = crop_at(path, (S, S))
        a_s = auto_scale(w, h)
        draft_key = auto_key = exact_key
        if draft_s > 1:
            draft_key = "%s.draft.s%d" % (f, draft_s)
            arrays[draft_key] = draft_crop
        if a_s > 1:
            auto_crop, got = crop_at(path, (w // a_s, h // a_s), full_geometry=True)
            assert got == a_s, (f, got, a_s)
            auto_key = "%s.auto.s%d" % (f, a_s)
            arrays[auto_key] = auto_crop
        if draft_s == 1 and exact_key is not None:
            # PIL's draft did not scale: its crop must be the exact reference, which the C# test then uses.
            exact = np.load(os.path.join(FIXTURES, exact_key))
            assert np.array_equal(exact, draft_crop), f
        e = {"file": "%s/%s" % (folder, f), "size": [w, h], "pil_mode": mode,
             "draft_scale": draft_s, "draft_reference": draft_key,
             "auto_scale": a_s, "auto_reference": auto_key}
        if orientation is not None:
            e["exif_orientation"] = orientation
        if folder == "decode_scale":
            e["description"] = desc[f]
        entries.append(e)

    # Whole decoded images (no resize): libjpeg's warning path (a corrupt entropy segment) at a reduced scale.
    for rel, s in RAW_SCALED:
        img = Image.open(os.path.join(FIXTURES, rel))
        w, h = img.size
        img.draft("RGB", (w // s, h // s))
        assert img.decoderconfig[0] == s, (rel, img.decoderconfig)
        arrays["%s.decoded.s%d" % (os.path.basename(rel), s)] = np.ascontiguousarray(np.asarray(img.convert("RGB")), dtype=np.uint8)

    # Compressed, and written with a fixed timestamp so that reruns give the same bytes.
    with zipfile.ZipFile(os.path.join(OUT, "references.npz"), "w", zipfile.ZIP_DEFLATED) as z:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.save(buf, arrays[key], allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, buf.getvalue())

    manifest = {
        "generator": "export-scripts/make_decode_scale_fixtures.py",
        "recipe": "draft: Image.open -> draft('RGB', (256, 256)) -> ImageOps.exif_transpose -> convert('RGB') -> "
                  "Resize(256) -> CenterCrop(224) -> uint8 HWC; auto: draft('RGB', (W // s, H // s)) -> exif_transpose -> "
                  "convert -> resize(Resize(256) size of the full image, BILINEAR, box=full image in the scaled one) -> CenterCrop(224)",
        "resize_target": S, "auto_factor": AUTO_FACTOR,
        "paths": "'file' is relative to fixtures/; a reference is a key of decode_scale/references.npz, or "
                 "reference/<file>.npy (scale 1: the exact crop), or null (scale 1 of a generated large file)",
        "versions": {"python": sys.version.split()[0], "PIL": PIL.__version__, "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "numpy": np.__version__},
        "entries": entries,
    }
    with open(os.path.join(OUT, "manifest.json"), "w", newline="\n") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    with open(os.path.join(OUT, "SOURCES.md"), "w", newline="\n") as fh:
        fh.write("# Decode-scale fixtures\n\nMade by export-scripts/make_decode_scale_fixtures.py from the photos in "
                 "../photos/ (licences: ../photos/SOURCES.md):\n\n")
        for name in sorted(desc):
            fh.write("- `%s`: %s\n" % (name, desc[name]))
    print("jpegs: %d, references: %d, scaled by draft: %d, by auto: %d" % (
        len(entries), len(arrays), sum(e["draft_scale"] > 1 for e in entries), sum(e["auto_scale"] > 1 for e in entries)))


if __name__ == "__main__":
    main()
