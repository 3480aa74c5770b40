#!/usr/bin/python3
"""Generate the committed preprocessing fixtures for the C# tests (tests/FeatureOnnx.Tests/fixtures/).

What it makes (all paths relative to the repository root):

  tests/FeatureOnnx.Tests/fixtures/photos/      copies of every real photo in the source folder, plus its
                                                SOURCES.md (licences), so the tests never read outside the repo
  tests/FeatureOnnx.Tests/fixtures/generated/   small synthetic inputs derived from two photos, one per image
                                                format / PIL mode that Image.convert('RGB') has to handle
                                                (BMP, GIF, animated GIF, TIFF, WebP, TGA, PPM/PGM/PBM, PNG P+tRNS,
                                                LA, RGBA, 16-bit grey, 16-bit RGB, JPEG CMYK / grey / EXIF ...)
  tests/FeatureOnnx.Tests/fixtures/reference/   <file>.npy: uint8 HWC reference crops computed with PIL + torchvision
                                                manifest.json: one entry per (input, variant), plus library versions
  samples/                                      5 small photos for the README's first command, with SOURCES.md

The reference recipe (torchvision's standard ImageNet eval transform, minus ToTensor/Normalize):

    img = PIL.Image.open(path)
    img = PIL.ImageOps.exif_transpose(img)      # our documented addition; honours EXIF orientation
    img = img.convert('RGB')
    img = torchvision.transforms.Resize(256)(img)        # bilinear, PIL backend
    img = torchvision.transforms.CenterCrop(224)(img)
    ref = np.asarray(img)                        # uint8 [224, 224, 3]

Variants (field "variant" in the manifest): "default" (above, every input), "bicubic" (Resize with
InterpolationMode.BICUBIC), "noresize" (CenterCrop(224) on the un-resized image; smaller images get
torchvision's zero padding) and "crop225" (Resize(256) then CenterCrop(225): odd crop, round-half-to-even offsets).

Rerun from the repository root (needs PIL, torch, torchvision, numpy; the Debian python has them):

    /usr/bin/python3 export-scripts/make_preprocess_fixtures.py [PHOTO_SOURCE_DIR]

PHOTO_SOURCE_DIR defaults to ../shared/testdata/photos relative to the repository root. The generated/ and
reference/ folders are wiped and rewritten; photos/ and samples/ files are overwritten. Outputs are
deterministic for a given PIL/libjpeg/zlib build (fixed seeds, no timestamps), but a different PIL version
may encode generated files or decode JPEGs differently: rerun only deliberately and commit everything together.
"""

import json
import os
import shutil
import struct
import sys
import warnings
import zlib

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image, ImageOps
from torchvision.transforms import CenterCrop, InterpolationMode, Resize

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "FeatureOnnx.Tests", "fixtures")
PHOTOS_OUT = os.path.join(FIXTURES, "photos")
GENERATED_OUT = os.path.join(FIXTURES, "generated")
REFERENCE_OUT = os.path.join(FIXTURES, "reference")
SAMPLES_OUT = os.path.join(REPO, "samples")

SAMPLE_PHOTOS = ["opencv_baboon.jpg", "skimage_chelsea.png", "opencv_fruits.jpg",
                 "sklearn_flower.jpg", "skimage_coffee.png"]

# Extra variants (beyond "default", which every input gets).
BICUBIC = ["opencv_baboon.jpg", "skimage_chelsea.png", "libjxl_flower_cropped.jpg"]
# HappyFish is 259x194: height is zero-padded to 224, width cropped at round(17.5) = 18.
NORESIZE = ["opencv_HappyFish.jpg", "skimage_astronaut.png", "tiny_99x61.png"]
# After Resize(256): building 370x256 -> offsets round(72.5)=72 (down), round(15.5)=16 (up);
# chelsea 384x256 -> round(79.5)=80, round(15.5)=16.
CROP225 = ["opencv_building.jpg", "skimage_chelsea.png"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".tga", ".ppm", ".pgm", ".pbm")


# --------------------------------------------------------------------------------------------- reference

def reference(path, variant):
    # convert('RGB') of a P image whose tRNS is bytes warns "should be converted to RGBA"; the recipe ignores it.
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    img = img.convert("RGB")
    if variant == "default":
        img = Resize(256)(img)
        img = CenterCrop(224)(img)
    elif variant == "bicubic":
        img = Resize(256, interpolation=InterpolationMode.BICUBIC)(img)
        img = CenterCrop(224)(img)
    elif variant == "noresize":
        img = CenterCrop(224)(img)
    elif variant == "crop225":
        img = Resize(256)(img)
        img = CenterCrop(225)(img)
    else:
        raise ValueError(variant)
    arr = np.ascontiguousarray(np.asarray(img), dtype=np.uint8)
    side = 225 if variant == "crop225" else 224
    assert arr.shape == (side, side, 3), (path, variant, arr.shape)
    return arr


# --------------------------------------------------------------------------------------------- 16-bit PNG

def write_png16_rgb(path, arr):
    """Minimal PNG encoder: 16-bit RGB (colour type 2), big-endian samples, filter 0 on every row."""
    assert arr.dtype == np.uint16 and arr.ndim == 3 and arr.shape[2] == 3
    h, w, _ = arr.shape
    be = arr.astype(">u2")
    raw = b"".join(b"\x00" + be[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9))
           + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


# --------------------------------------------------------------------------------------------- generated

def exif_bytes(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def generate(photo_dir, out):
    """Write the synthetic inputs; returns {filename: one-line description}."""
    desc = {}
    base = Image.open(os.path.join(photo_dir, "skimage_coffee.png")).convert("RGB").resize((240, 160), Image.LANCZOS)
    cat = Image.open(os.path.join(photo_dir, "skimage_chelsea.png")).convert("RGB").resize((240, 160), Image.LANCZOS)
    small = base.resize((200, 134), Image.LANCZOS)  # for the formats stored uncompressed / 16-bit
    rgb = np.asarray(base)
    h, w, _ = rgb.shape
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(20240229)

    def p(name):
        return os.path.join(out, name)

    # --- plain RGB containers
    base.save(p("rgb24.bmp"))
    desc["rgb24.bmp"] = "BMP 24-bit BGR, bottom-up rows"
    small.save(p("rgb_raw.tif"), compression=None)
    desc["rgb_raw.tif"] = "TIFF uncompressed RGB"
    base.save(p("lossless.webp"), lossless=True, quality=100)
    desc["lossless.webp"] = "WebP lossless RGB"
    small.save(p("rgb.tga"))
    desc["rgb.tga"] = "TGA 24-bit uncompressed (PIL default: bottom-left origin)"
    small.save(p("rgb_rle_topleft.tga"), rle=True, orientation=1)
    desc["rgb_rle_topleft.tga"] = "TGA 24-bit RLE, top-left origin"
    small.save(p("rgb.ppm"))
    desc["rgb.ppm"] = "PPM P6 8-bit RGB"
    base.convert("L").save(p("gray.pgm"))
    desc["gray.pgm"] = "PGM P5 8-bit grey"
    base.convert("1").save(p("bw.pbm"))
    desc["bw.pbm"] = "PBM P4 1-bit (Floyd-Steinberg dithered by PIL)"

    # --- palette
    pal = base.quantize(colors=64, method=Image.MEDIANCUT)
    pal.save(p("palette.gif"))
    desc["palette.gif"] = "GIF single frame, 64-colour palette"
    pal_t = pal.copy()
    pal_t.info["transparency"] = 5
    pal_t.save(p("palette_trns.gif"), transparency=5)
    desc["palette_trns.gif"] = "GIF single frame, palette index 5 transparent (colour kept by convert)"
    frame2 = ImageOps.mirror(cat).quantize(colors=64, method=Image.MEDIANCUT)
    cat.quantize(colors=64, method=Image.MEDIANCUT).save(
        p("anim2.gif"), save_all=True, append_images=[frame2], duration=200, loop=0)
    desc["anim2.gif"] = "animated GIF, 2 frames (frame 2 = mirrored); only frame 1 counts"
    # PNG palette with tRNS: several partial alphas + one fully transparent entry
    pal_png = base.quantize(colors=32, method=Image.MEDIANCUT)
    trns = bytes([0, 128, 64] + [255] * 29)
    pal_png.save(p("palette_trns.png"), transparency=trns)
    desc["palette_trns.png"] = "PNG mode P, 32 colours, tRNS (entry 0 alpha 0, 1 alpha 128, 2 alpha 64)"

    # --- alpha
    grey = np.asarray(base.convert("L"))
    alpha = ((xx * 255) // (w - 1)).astype(np.uint8)        # horizontal ramp 0..255
    alpha[:, : w // 6] = 0                                   # fully transparent band, colour kept
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(p("la.png"))
    desc["la.png"] = "PNG LA (grey + alpha ramp, left band alpha 0)"
    a = ((yy * 255) // (h - 1)).astype(np.uint8)             # vertical ramp
    a[: h // 5, :] = 0                                       # fully transparent rows with non-zero colour
    a[:, -w // 8:] = 255
    Image.fromarray(np.dstack([rgb, a]), "RGBA").save(p("rgba_alpha.png"))
    desc["rgba_alpha.png"] = "PNG RGBA, alpha ramp, top rows alpha 0 with colour kept"

    # --- 16-bit
    g = np.asarray(small.convert("L")).astype(np.float64) / 255.0
    g16 = np.round(g ** 4 * 65535).astype(np.uint16)         # values < 256 only in the darkest areas
    g16[-8:, :] = (np.arange(g16.shape[1]) * 65535 // (g16.shape[1] - 1)).astype(np.uint16)  # ramp row band
    im16 = Image.fromarray(g16)
    assert im16.mode == "I;16", im16.mode
    im16.save(p("gray16.png"))
    desc["gray16.png"] = "PNG 16-bit grey (PIL opens as mode I; convert('RGB') clips at 255)"
    s16 = np.asarray(base.resize((180, 120), Image.LANCZOS)).astype(np.uint16)  # small: low bytes don't compress
    low = rng.integers(0, 256, size=s16.shape, dtype=np.uint16)   # low byte: so truncation != rounding
    write_png16_rgb(p("rgb16.png"), (s16 << 8) | low)
    desc["rgb16.png"] = "PNG 16-bit RGB, big-endian, random low bytes (written by a tiny encoder)"

    # --- JPEG
    f = rgb.astype(np.float64) / 255.0
    k = 1.0 - f.max(axis=2)
    denom = np.where(k < 1.0, 1.0 - k, 1.0)
    cmy = (1.0 - f - k[..., None]) / denom[..., None]
    cmyk = np.round(np.dstack([cmy, k]) * 255).astype(np.uint8)
    Image.fromarray(cmyk, "CMYK").save(p("cmyk.jpg"), quality=92)
    desc["cmyk.jpg"] = "JPEG CMYK (Adobe APP14, inverted samples as PIL/Photoshop write them), real K channel"
    base.convert("L").save(p("gray.jpg"), quality=90)
    desc["gray.jpg"] = "JPEG greyscale (1 component)"
    for o in (6, 3, 8):
        base.save(p("exif%d.jpg" % o), quality=90, exif=exif_bytes(o))
        desc["exif%d.jpg" % o] = "JPEG with EXIF Orientation=%d" % o
    base.save(p("exif6.png"), exif=exif_bytes(6))
    desc["exif6.png"] = "PNG with eXIf chunk Orientation=6 (PIL 9.4 exif_transpose honours it too)"

    # --- tiny (smaller than 224 on both sides; odd size for asymmetric zero padding)
    Image.open(os.path.join(photo_dir, "opencv_fruits.jpg")).convert("RGB").resize(
        (99, 61), Image.LANCZOS).save(p("tiny_99x61.png"))
    desc["tiny_99x61.png"] = "PNG RGB 99x61 (upscaled by Resize(256); zero-padded by noresize CenterCrop)"
    return desc


# --------------------------------------------------------------------------------------------- main

def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "..", "shared", "testdata", "photos")
    src = os.path.abspath(src)
    if not os.path.isdir(src):
        sys.exit("photo source folder not found: %s" % src)

    for d in (GENERATED_OUT, REFERENCE_OUT):
        if os.path.isdir(d):
            shutil.rmtree(d)
    for d in (PHOTOS_OUT, GENERATED_OUT, REFERENCE_OUT, SAMPLES_OUT):
        os.makedirs(d, exist_ok=True)

    # 1. photos (copyfile: content only, the source is read-only)
    photos = sorted(f for f in os.listdir(src) if f.lower().endswith(IMAGE_EXTS))
    for f in photos + ["SOURCES.md"]:
        shutil.copyfile(os.path.join(src, f), os.path.join(PHOTOS_OUT, f))

    # 4. samples + their licence lines
    for f in SAMPLE_PHOTOS:
        shutil.copyfile(os.path.join(src, f), os.path.join(SAMPLES_OUT, f))
    write_samples_sources(os.path.join(src, "SOURCES.md"), os.path.join(SAMPLES_OUT, "SOURCES.md"))

    # 2. generated
    desc = generate(src, GENERATED_OUT)
    generated = sorted(desc)

    # 3. references + manifest
    inputs = [("photo", "photos", f) for f in photos] + [("generated", "generated", f) for f in generated]
    names = [f for _, _, f in inputs]
    assert len(names) == len(set(names)), "photo and generated file names must not collide"
    extra = {"bicubic": BICUBIC, "noresize": NORESIZE, "crop225": CROP225}
    for v, lst in extra.items():
        missing = set(lst) - set(names)
        assert not missing, (v, missing)

    entries = []
    for kind, folder, f in inputs:
        path = os.path.join(FIXTURES, folder, f)
        with Image.open(path) as im:
            fmt, mode, size = im.format, im.mode, list(im.size)
            n_frames = getattr(im, "n_frames", 1)
            orientation = im.getexif().get(0x0112)
        variants = ["default"] + [v for v, lst in extra.items() if f in lst]
        for v in variants:
            ref_name = f + ".npy" if v == "default" else "%s.%s.npy" % (f, v)
            arr = reference(path, v)
            np.save(os.path.join(REFERENCE_OUT, ref_name), arr, allow_pickle=False)
            e = {"file": "%s/%s" % (folder, f), "kind": kind, "format": fmt, "pil_mode": mode, "size": size,
                 "variant": v, "reference": ref_name, "shape": list(arr.shape)}
            if n_frames != 1:
                e["n_frames"] = n_frames
            if orientation is not None:
                e["exif_orientation"] = orientation
            if kind == "generated":
                e["description"] = desc[f]
            entries.append(e)

    manifest = {
        "generator": "export-scripts/make_preprocess_fixtures.py",
        "recipe": "Image.open -> ImageOps.exif_transpose -> convert('RGB') -> Resize(256) [bilinear|bicubic] "
                  "-> CenterCrop(224|225) -> np.asarray uint8 HWC; 'noresize' skips Resize",
        "paths": "'file' is relative to fixtures/, 'reference' to fixtures/reference/",
        "versions": {"python": sys.version.split()[0], "PIL": PIL.__version__, "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "numpy": np.__version__,
                     "libjpeg_turbo": _feature_version("libjpeg_turbo"), "zlib": _feature_version("zlib"),
                     "webp": _feature_version("webp")},
        "entries": entries,
    }
    with open(os.path.join(REFERENCE_OUT, "manifest.json"), "w", newline="\n") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    print("photos: %d, generated: %d, references: %d" % (len(photos), len(generated), len(entries)))


def _feature_version(name):
    try:
        from PIL import features
        return features.version(name)
    except Exception:  # older PIL
        return None


def write_samples_sources(src_md, dst_md):
    """Header + the table rows whose prefix matches one of the samples (SOURCES.md lists licences per prefix)."""
    lines = open(src_md, encoding="utf-8").read().splitlines()
    prefixes = {f.split("_", 1)[0] + "_" for f in SAMPLE_PHOTOS}
    rows = [l for l in lines if l.startswith("| `") and any(l.startswith("| `%s`" % p) for p in prefixes)]
    header = [l for l in lines if l.startswith("| prefix") or l.startswith("| ---")]
    out = ["# Sample photos", "",
           "Copied unchanged from the project's test photos (tests/FeatureOnnx.Tests/fixtures/photos/, whose",
           "SOURCES.md has the full provenance) by export-scripts/make_preprocess_fixtures.py. Each file was taken",
           "unchanged from a Debian 12 (bookworm) package; the prefix of its name says which.", "",
           "Files: " + ", ".join("`%s`" % f for f in SAMPLE_PHOTOS), ""] + header + rows + ["",
           "`sklearn_flower.jpg`: CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/), from",
           "https://www.flickr.com/photos/vultilion/6056698931/ (Flickr user vultilion), per",
           "sklearn/datasets/images/README.txt in python3-sklearn; attribution required when redistributing."]
    with open(dst_md, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
