#!/usr/bin/python3
"""Generate the JPEG decoding fixtures for TurboJpegDecoderTests (tests/FeatureOnnx.Tests/fixtures/jpeg/).

For every JPEG in that folder the reference is what Pillow gives:

    ref = np.asarray(PIL.Image.open(path).convert('RGB'))     # uint8 [H, W, 3], written as <name>.rgb.npy

No EXIF transpose (none of these files carries an orientation tag; the caller applies orientation).

Inputs (copied unchanged from the photo folder; licences in SOURCES.md, copied beside them):
  opencv_baboon.jpg                                       baseline 4:2:0 (ImageSharp 2.1.13: mean |diff| 2.3)
  libjxl_flower_small.q85_444_partially_interleaved.jpg   4:4:4, scans interleaving only some components
  libjxl_flower_small.q85_420_non_interleaved.jpg         4:2:0, one scan per component
  opencv_left01.jpg                                       greyscale (PIL mode L -> RGB with R=G=B)
Generated here with PIL (crops of the photos above, fixed parameters, no timestamps):
  gen_progressive_420.jpg     333x250 progressive, quality 85, 4:2:0
  gen_pair_444.jpg            501x375 (odd sizes: partial MCUs) quality 90, 4:4:4
  gen_pair_422.jpg            the same crop, 4:2:2
  gen_pair_420.jpg            the same crop, 4:2:0
  gen_cmyk.jpg                161x121 Image.convert('CMYK').save(): Adobe CMYK, stored inverted ("CMYK;I")
  gen_damaged_420.jpg         gen_pair_420.jpg with 4000 bytes cut from the middle of its entropy-coded data:
                              structurally complete, libjpeg only warns ("premature end of data segment") and
                              Pillow returns its best-effort pixels

Rerun from the repository root with the Debian python (PIL 9.4 on libjpeg62-turbo 2.1.5, numpy):

    /usr/bin/python3 export-scripts/make_jpeg_fixtures.py [PHOTO_SOURCE_DIR]

PHOTO_SOURCE_DIR defaults to ../shared/testdata/photos relative to the repository root. The folder is wiped and
rewritten. A different PIL/libjpeg build may encode the generated files differently: rerun only deliberately
and commit everything together.
"""

import os
import shutil
import sys

import numpy as np
import PIL
from PIL import Image, features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests", "FeatureOnnx.Tests", "fixtures", "jpeg")

COPIED = [
    "opencv_baboon.jpg",
    "libjxl_flower_small.q85_444_partially_interleaved.jpg",
    "libjxl_flower_small.q85_420_non_interleaved.jpg",
    "opencv_left01.jpg",
]


def generate(src):
    def photo(name):
        with Image.open(os.path.join(src, name)) as im:
            return im.convert("RGB")

    china = photo("sklearn_china.jpg")
    china.crop((150, 100, 483, 350)).save(os.path.join(OUT, "gen_progressive_420.jpg"), quality=85, progressive=True, subsampling=2)

    flower = photo("sklearn_flower.jpg")
    crop = flower.crop((60, 20, 561, 395))
    for name, subsampling in (("444", 0), ("422", 1), ("420", 2)):
        crop.save(os.path.join(OUT, f"gen_pair_{name}.jpg"), quality=90, subsampling=subsampling)

    with open(os.path.join(OUT, "gen_pair_420.jpg"), "rb") as f:
        data = f.read()
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    end = data.rindex(b"\xff\xd9")
    cut = (start + end) // 2
    while data[cut - 1] == 0xFF:  # never split a stuffed 0xFF00
        cut += 1
    with open(os.path.join(OUT, "gen_damaged_420.jpg"), "wb") as f:
        f.write(data[:cut] + data[cut + 4000 :])

    fruits = photo("opencv_fruits.jpg")
    fruits.crop((200, 180, 361, 301)).convert("CMYK").save(os.path.join(OUT, "gen_cmyk.jpg"), quality=90)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "..", "shared", "testdata", "photos")
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    shutil.copyfile(os.path.join(src, "SOURCES.md"), os.path.join(OUT, "SOURCES.md"))
    for name in COPIED:
        shutil.copyfile(os.path.join(src, name), os.path.join(OUT, name))
    generate(src)

    for name in sorted(os.listdir(OUT)):
        if not name.endswith(".jpg"):
            continue
        path = os.path.join(OUT, name)
        with Image.open(path) as im:
            mode = im.mode
            ref = np.asarray(im.convert("RGB"))
        assert ref.dtype == np.uint8 and ref.ndim == 3 and ref.shape[2] == 3
        np.save(os.path.join(OUT, name[: -len(".jpg")] + ".rgb.npy"), ref)
        print(f"{name}: {ref.shape[1]}x{ref.shape[0]} mode {mode}")
    print(f"PIL {PIL.__version__}, libjpeg {features.version('jpg')}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
