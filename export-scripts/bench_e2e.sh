#!/usr/bin/env bash
# End-to-end ONNX models (export-e2e, extract --e2e) against the C# preprocessing path, on the CPU, in one run.
# Usage: export-scripts/bench_e2e.sh [PHOTOS_DIR] [COPIES] [ROUNDS]
#   defaults: the test photos, 4 copies of each JPEG/PNG, 3 rounds. The configurations are interleaved round by round
#   (the machine may be shared: compare the best round of each) and each line gives images/s over the batches
#   (session creation excluded): best and median of the rounds.
# e2e models take one file per call unless exported --batched (a Loop over a sequence of files).
# Needs the Release CLI: dotnet build -c Release src/FeatureOnnx.Cli; and a python3 with numpy (PYTHON, default
# /usr/bin/python3: Debian's, not a pyenv one first on PATH).
set -euo pipefail
py=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/.."
photos=${1:-tests/FeatureOnnx.Tests/fixtures/photos}
copies=${2:-4}
rounds=${3:-3}
cli=${FEATUREONNX:-$PWD/src/FeatureOnnx.Cli/bin/Release/net10.0/featureonnx}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/in"
for k in $(seq 1 "$copies"); do
  for f in "$photos"/*.jpg "$photos"/*.png; do cp "$f" "$work/in/$k-$(basename "$f")"; done
done
n=$(ls "$work/in" | wc -l)
single="$work/resnet18.e2e.onnx"; batched="$work/resnet18.batched.e2e.onnx"
"$cli" export-e2e --model resnet18 -o "$single" >/dev/null
"$cli" export-e2e --model resnet18 --batched -o "$batched" >/dev/null
echo "$n images ($copies copies of $photos), resnet18 pooled, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $rounds rounds"
configs=(
  "csharp --batch 32|--batch 32"
  "csharp --batch 1|--batch 1"
  "e2e --workers 1|--e2e --model $single --workers 1"
  "e2e --workers 2|--e2e --model $single --workers 2"
  "e2e batched --batch 8|--e2e --model $batched --workers 1 --batch 8"
  "e2e batched --batch 32|--e2e --model $batched --workers 1 --batch 32"
  "e2e batched --batch 8 --workers 2|--e2e --model $batched --workers 2 --batch 8"
)
for r in $(seq 1 "$rounds"); do
  for c in "${configs[@]}"; do
    name=${c%%|*}; args=${c#*|}
    # shellcheck disable=SC2086
    "$cli" extract "$work/in" -o "$work/out-$name" --quiet --overwrite $args >/dev/null || true
    "$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], r["imagesPerSecond"], sep="\t")' \
      "$work/out-$name/run.json" "$name" >> "$work/rates.tsv"
  done
done
"$py" - "$work" <<'PY'
import csv, sys, numpy as np
w = sys.argv[1]
rates = {}
for name, rate in csv.reader(open(f"{w}/rates.tsv"), delimiter="\t"):
    rates.setdefault(name, []).append(float(rate))
for name, r in rates.items():
    print(f"{name:<36} best {max(r):5.1f} img/s   median {np.median(r):5.1f}   rounds: {' '.join(f'{x:.1f}' for x in r)}")
def load(name):
    x = np.load(f"{w}/out-{name}/pooled.npy"); rows = [r["path"] for r in csv.DictReader(open(f"{w}/out-{name}/index.csv"))]
    return dict(zip(rows, x))
a, b = load("csharp --batch 32"), load("e2e --workers 1")
cos = [float(np.dot(a[k], b[k]) / np.linalg.norm(a[k]) / np.linalg.norm(b[k])) for k in a if k in b]
print(f"pooled cosine e2e vs C# path over {len(cos)} images: min {min(cos):.6f}, median {np.median(cos):.6f}")
PY
