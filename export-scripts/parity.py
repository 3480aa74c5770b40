#!/usr/bin/env python3
"""Compare two feature folders (ours vs reference), layer by layer.

Each folder holds LAYER.npy (float32, one row per image) and index.csv (row,path), as written by
`featureonnx extract` and by reference.py. For every layer present in the reference (or named by --layers):

  rows      matched by path (--match): 'relpath' = the path relative to the deepest folder common to all paths of
            that side (so /tmp/a/photos/x.jpg matches photos/x.jpg); 'basename' = file name only (must be unique on
            both sides); 'row' = row number (for inputs without real paths, e.g. --tensors-in runs); 'auto' (default)
            = relpath when both sides yield the same set of keys, else basename when unique, else row when both sides
            have the same number of rows and no path matches at all.
  cosine    per row: a.b / (|a| |b|) in float64 over the flattened row (1 when both rows are all zero).
  rel err   per row: max_i |a_i - b_i| / max_i |b_i| (b = reference; the absolute error when b is all zero), i.e. the
            largest element error relative to the row's largest reference magnitude; the table shows the max over rows.
  kind      'vector' when the reference row has rank 1 once trailing size-1 axes are dropped (pooled [512] or
            [512,1,1], fc7 [4096]), else 'map' (e.g. [C, H, W]). Ours only needs the same number of values per row.

Targets: --min-cosine-pooled (vectors, default 0.9999), --min-cosine-maps (maps, default 0.999), --max-rel-err
(every layer, off unless given; 1e-4 for the "same preprocessed tensors" comparison). Exit code: 0 all targets met,
1 a target missed, 2 the folders cannot be compared (missing layer, shape or row mismatch, NaN, unreadable file).
Rows present on one side only are listed and make the exit code 2 unless --allow-missing.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np


def read_index(folder: str) -> list[str]:
    path = os.path.join(folder, "index.csv")
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["row", "path"]:
            raise SystemExit(f"parity.py: {path}: header must be 'row,path'")
        rows = [(int(row[0]), row[1]) for row in r if row]
    rows.sort()
    if [i for i, _ in rows] != list(range(len(rows))):
        raise SystemExit(f"parity.py: {path}: rows are not 0..{len(rows) - 1}")
    return [p for _, p in rows]


def rel_keys(paths: list[str]) -> list[str]:
    norm = [os.path.normpath(p.replace("\\", "/")) for p in paths]
    dirs = [os.path.dirname(p) for p in norm]
    try:
        common = os.path.commonpath(dirs) if dirs else ""
    except ValueError:  # absolute and relative mixed
        common = ""
    return [os.path.relpath(p, common) if common else p for p in norm]


def make_keys(ours: list[str], ref: list[str], mode: str) -> tuple[list[str], list[str], str]:
    if mode in ("relpath", "auto"):
        ko, kr = rel_keys(ours), rel_keys(ref)
        if mode == "relpath" or set(ko) == set(kr):
            return ko, kr, "relpath"
    if mode in ("basename", "auto"):
        ko, kr = [os.path.basename(p) for p in ours], [os.path.basename(p) for p in ref]
        unique = len(set(ko)) == len(ko) and len(set(kr)) == len(kr)
        if mode == "basename" or (unique and set(ko) & set(kr)):
            if not unique:
                raise SystemExit("parity.py: --match basename: file names are not unique")
            return ko, kr, "basename"
    if mode == "auto" and len(ours) != len(ref):
        ko, kr = rel_keys(ours), rel_keys(ref)
        return ko, kr, "relpath"
    return [str(i) for i in range(len(ours))], [str(i) for i in range(len(ref))], "row"


def row_metrics(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = np.einsum("ij,ij->i", a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where((na == 0) & (nb == 0), 1.0, dot / (na * nb))
    cos = np.nan_to_num(cos, nan=0.0)
    absmax = np.abs(a - b).max(axis=1)
    scale = np.abs(b).max(axis=1)
    rel = np.where(scale > 0, absmax / np.where(scale > 0, scale, 1), absmax)
    return cos, rel, absmax


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ours", help="folder from featureonnx extract")
    ap.add_argument("reference", help="folder from reference.py")
    ap.add_argument("--layers", help="comma-separated layers (default: every .npy of the reference folder)")
    ap.add_argument("--match", choices=["auto", "relpath", "basename", "row"], default="auto")
    ap.add_argument("--min-cosine-pooled", type=float, default=0.9999, help="target for vector layers (default 0.9999)")
    ap.add_argument("--min-cosine-maps", type=float, default=0.999, help="target for map layers (default 0.999)")
    ap.add_argument("--max-rel-err", type=float, default=None, help="target for the max relative error of every layer (default: none)")
    ap.add_argument("--allow-missing", action="store_true", help="rows on one side only are reported, not fatal")
    ap.add_argument("--worst", type=int, default=0, metavar="K", help="also print the K worst rows per layer")
    ap.add_argument("--label", default="", help="prefix for the table title")
    args = ap.parse_args(argv)

    ours_paths, ref_paths = read_index(args.ours), read_index(args.reference)
    ko, kr, how = make_keys(ours_paths, ref_paths, args.match)
    if len(set(ko)) != len(ko) or len(set(kr)) != len(kr):
        print(f"parity.py: keys ({how}) are not unique", file=sys.stderr)
        return 2
    pos_o = {k: i for i, k in enumerate(ko)}
    common = [k for k in kr if k in pos_o]
    only_ref = [k for k in kr if k not in pos_o]
    only_ours = sorted(set(ko) - set(kr))
    status = 0
    if only_ref or only_ours:
        print(f"rows only in reference: {len(only_ref)} {only_ref[:5]}; only in ours: {len(only_ours)} {only_ours[:5]}")
        if not args.allow_missing:
            status = 2
    if not common:
        print("parity.py: no rows in common", file=sys.stderr)
        return 2
    io = np.array([pos_o[k] for k in common])
    ir = np.array([i for i, k in enumerate(kr) if k in pos_o])  # same order as common

    if args.layers:
        layers = [l.strip() for l in args.layers.split(",") if l.strip()]
    else:
        layers = sorted(os.path.splitext(f)[0] for f in os.listdir(args.reference) if f.endswith(".npy"))
    title = f"{args.label + ': ' if args.label else ''}{len(common)} rows matched by {how}"
    print(title)
    hdr = f"{'layer':<14} {'kind':<6} {'row shape':<16} {'min cos':>12} {'median cos':>12} {'max rel err':>12} {'max abs err':>12} {'target':<24} result"
    print(hdr)
    print("-" * len(hdr))
    for layer in layers:
        po, pr = os.path.join(args.ours, layer + ".npy"), os.path.join(args.reference, layer + ".npy")
        if not os.path.isfile(po) or not os.path.isfile(pr):
            print(f"{layer:<14} missing: {po if not os.path.isfile(po) else pr}")
            status = 2
            continue
        a, b = np.load(po, mmap_mode="r"), np.load(pr, mmap_mode="r")
        if len(a) != len(ours_paths) or len(b) != len(ref_paths):
            print(f"{layer:<14} row count differs from index.csv: ours {len(a)}/{len(ours_paths)}, reference {len(b)}/{len(ref_paths)}")
            status = 2
            continue
        if int(np.prod(a.shape[1:])) != int(np.prod(b.shape[1:])):
            print(f"{layer:<14} shape mismatch: ours {list(a.shape[1:])}, reference {list(b.shape[1:])}")
            status = 2
            continue
        a, b = np.asarray(a[io]), np.asarray(b[ir])
        if not np.isfinite(a).all() or not np.isfinite(b).all():
            print(f"{layer:<14} NaN or Inf: ours {int((~np.isfinite(a)).sum())}, reference {int((~np.isfinite(b)).sum())} values")
            status = 2
            continue
        row_shape = list(b.shape[1:])
        while len(row_shape) > 1 and row_shape[-1] == 1:  # [512, 1, 1] is a vector that was not flattened
            row_shape.pop()
        kind = "vector" if len(row_shape) == 1 else "map"
        cos, rel, absmax = row_metrics(a, b)
        min_cos = args.min_cosine_pooled if kind == "vector" else args.min_cosine_maps
        ok = cos.min() >= min_cos and (args.max_rel_err is None or rel.max() <= args.max_rel_err)
        target = f"cos>={min_cos:g}" + (f", rel<={args.max_rel_err:g}" if args.max_rel_err is not None else "")
        print(f"{layer:<14} {kind:<6} {str(list(b.shape[1:])):<16} {cos.min():>12.8f} {float(np.median(cos)):>12.8f} "
              f"{rel.max():>12.3e} {absmax.max():>12.3e} {target:<24} {'ok' if ok else 'MISSED'}")
        if not ok and status == 0:
            status = 1
        if args.worst:
            for j in np.argsort(cos)[:args.worst]:
                print(f"    {common[j]}: cos {cos[j]:.8f}, rel err {rel[j]:.3e}")
    print("parity: " + {0: "all targets met", 1: "TARGET MISSED", 2: "CANNOT COMPARE (see above)"}[status])
    return status


if __name__ == "__main__":
    sys.exit(main())
