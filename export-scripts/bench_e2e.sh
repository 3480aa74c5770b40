#!/usr/bin/env bash
# End-to-end ONNX model (export-e2e, extract --e2e) against the C# preprocessing path, on the CPU, in one run.
# Usage: export-scripts/bench_e2e.sh [PHOTOS_DIR] [COPIES]   (default: the test photos, 4 copies of each JPEG/PNG)
# Needs the Release CLI: dotnet build -c Release src/FeatureOnnx.Cli. Prints one line per configuration:
# images/s over the batches (session creation excluded) and the busy seconds per stage from run.json.
set -euo pipefail
cd "$(dirname "$0")/.."
photos=${1:-tests/FeatureOnnx.Tests/fixtures/photos}
copies=${2:-4}
cli=${FEATUREONNX:-$PWD/src/FeatureOnnx.Cli/bin/Release/net10.0/featureonnx}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/in"
for k in $(seq 1 "$copies"); do
  for f in "$photos"/*.jpg "$photos"/*.png; do cp "$f" "$work/in/$k-$(basename "$f")"; done
done
n=$(ls "$work/in" | wc -l)
"$cli" export-e2e --model resnet18 -o "$work/resnet18.e2e.onnx" >/dev/null
echo "$n images ($copies copies of $photos), resnet18 pooled, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
run() {
  local name=$1; shift
  "$cli" extract "$work/in" -o "$work/out-$name" --quiet "$@" >/dev/null || true
  python3 - "$work/out-$name/run.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r["seconds"]
print(f"{sys.argv[2]:<28} {r['imagesPerSecond']:6.1f} img/s  extracted {r['extracted']:4d}  session {s['sessionCreation']:.1f}s  "
      f"decode/check busy {s['decodeBusy']:.1f}s  inference busy {s['inferenceBusy']:.1f}s")
PY
}
run "csharp --batch 32" --batch 32
run "csharp --batch 1" --batch 1
run "e2e --workers 1" --e2e --model "$work/resnet18.e2e.onnx" --workers 1
run "e2e --workers 2" --e2e --model "$work/resnet18.e2e.onnx" --workers 2
python3 - "$work" <<'PY'
import numpy as np, sys, csv
w = sys.argv[1]
def load(name):
    x = np.load(f"{w}/out-{name}/pooled.npy"); rows = [r["path"] for r in csv.DictReader(open(f"{w}/out-{name}/index.csv"))]
    return dict(zip(rows, x))
a, b = load("csharp --batch 32"), load("e2e --workers 1")
cos = [float(np.dot(a[k], b[k]) / np.linalg.norm(a[k]) / np.linalg.norm(b[k])) for k in a if k in b]
print(f"pooled cosine e2e vs C# path over {len(cos)} images: min {min(cos):.6f}, median {np.median(cos):.6f}")
PY
