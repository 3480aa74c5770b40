#!/usr/bin/env bash
# The GPU data path check (issue 15, README "GPU decoder"): one device call, within BUDGET seconds (default 450), on
# N JPEGs of 500x375 q90: PyTorch's DataLoader and nvJPEG pipelines, extract --decoder cpu|gpu at fp32 and fp16,
# img/s and CPU seconds per 1,000 images, the agreement figures (nvJPEG vs PIL crops per chroma subsampling; pooled
# cosine GPU decoder vs CPU path on the test photos) and corrupt files through the GPU decoder. All of it is
# export-scripts/bench_gpu_decode.py; this wrapper checks the publish, picks the python with torch and keeps the
# budget. Without a GPU every CUDA step is skipped with its reason (a dry run of the rest).
# usage: deploy/gpu/gpu-decode-check.sh APP OUT [JPEG_DIR]
#   APP      the featureonnx binary (/tmp/featureonnx/featureonnx, unpacked by deploy/gpu/device-run.sh with CHECK=gpu-decode)
#   OUT      output folder: summary.txt, and results.tar.gz with every log and run.json (the device returns few files)
# env: N (32768), BATCH (256), WORKERS (cores), BUDGET (450), STEP_TIMEOUT (120)
set -uo pipefail
app=${1:?usage: gpu-decode-check.sh APP OUT [JPEG_DIR]}
out=${2:?usage: gpu-decode-check.sh APP OUT [JPEG_DIR]}
jpegs=${3:-}
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }
say "gpu-decode-check: $(date -u '+%Y-%m-%d %H:%M:%S') UTC, $(nproc) cores, budget ${BUDGET:-450}s, app $app"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/   gpu: /' | tee -a "$summary"

# An earlier GPU run decoded every JPEG with ImageSharp because its publish lacked libturbojpeg: refuse that.
if [ ! -f "$(dirname "$app")/libturbojpeg.so.0" ]; then
  say "FAILED: $(dirname "$app") has no libturbojpeg.so.0: the CPU decoder would be ImageSharp; rebuild the publish (deploy/gpu/prepare.sh checks it)"
  exit 1
fi

py=""
for candidate in /opt/torch/.venv/bin/python3 python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import numpy, PIL' 2>/dev/null; then
    py=$candidate
    "$candidate" -c 'import torch' 2>/dev/null && break
  fi
done
[ -n "$py" ] || { say "FAILED: no python3 with numpy and PIL here"; exit 1; }
say "python: $py"

args=(--featureonnx "$app" --out "$out/run" --n "${N:-32768}" --batch "${BATCH:-256}" --workers "${WORKERS:-$(nproc)}" --step-timeout "${STEP_TIMEOUT:-120}")
[ -n "$jpegs" ] && args+=(--jpegs "$jpegs")
timeout -s INT -k 15 "${BUDGET:-450}" "$py" "$repo/export-scripts/bench_gpu_decode.py" "${args[@]}" 2>&1 | tee -a "$summary"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 124 ] && say "gpu-decode-check: TIMED OUT after ${BUDGET:-450}s: the steps above finished, the rest did not run"
rm -rf "$out/run/.jpegs" "$out/run/.corrupt" "$out/run/.clean"
find "$out/run" -name '*.npy' -delete 2>/dev/null
tar -czf "$out/results.tar.gz" -C "$out" run && rm -rf "$out/run"
say "gpu-decode-check: exit $rc; logs and run.json files in results.tar.gz"
exit "$rc"
