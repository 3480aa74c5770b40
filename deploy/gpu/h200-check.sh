#!/usr/bin/env bash
# The H200 runbook (docs/benchmarks.md, "H200 plan"): every GPU figure FeatureOnnx still owes, in one device call
# that ends within BUDGET seconds (default 450; each step also has its own limit, and a step that no longer fits is
# skipped and says so). Made ready by deploy/gpu/prepare.sh, which prints the device calls.
#
# usage: deploy/gpu/h200-check.sh APP OUT [MODELS_DIR] [JPEG_DIR]
#   APP         the featureonnx binary (/tmp/featureonnx/featureonnx, unpacked by deploy/gpu/device-run.sh)
#   OUT         output folder (created). At the end it holds summary.txt (the tables), steps.tsv (exit code and
#               seconds per step), results.tar.gz (every report folder, log and run.json) and the resnet18 charts
#               (bench-r18*.svg): the device returns at most 8 files from OUT. KEEP=1 leaves the folders unpacked too.
#   MODELS_DIR  optional (may be ""): exported float32 manifests (export.py), each benched on cuda at fp32 and fp16
#   JPEG_DIR    optional: images for extract; default N JPEGs of 500x375 (q90, seeded random crops of the repo's
#               photos, made with PIL when a python3 here has it; otherwise copies of samples/ and the test photos)
# Steps, in order: providers; bench resnet18 on cuda x run,bound,uint8,device (compared with a CPU session); the CPU
# provider alone (run); cuda with prefer_nhwc=1 (uint8, device); cuda with prefer_nhwc=1 and enable_cuda_graph=1
# (device, batch 256); precision fp32 and fp16 (the C# conversion, float32 islands) on cuda, device path, NHWC, then
# fp16 with a CUDA graph, on the repo's photos (agreement with the CPU's fp32 run on real images); PyTorch fp32 and AMP
# channels_last on the same GPU (export-scripts/bench_torch_amp.py, the issue's fp16 peer); extract --provider cuda
# --batch 256 --workers 16 with --uint8-input on, then off; every exported model on cuda at batch 256 (device,
# prefer_nhwc=1) at fp32 and fp16, fp16 also with enable_cuda_graph=1.
# Where CUDA is not usable the bench rows say why, and extract runs on the CPU as a dry run (labelled so).
# env: N (default 4096), BATCH (1,32,256), BIG (256: the batch of the NHWC, CUDA graph and exported-model steps),
#      WARMUP (3), ITERS (20), WORKERS (16), BUDGET (450)
set -uo pipefail

app=${1:?usage: h200-check.sh APP OUT [MODELS_DIR] [JPEG_DIR]}
out=${2:?usage: h200-check.sh APP OUT [MODELS_DIR] [JPEG_DIR]}
models=${3:-}
jpegs=${4:-}
repo=$(cd "$(dirname "$0")/../.." && pwd)
n=${N:-4096}; batch=${BATCH:-1,32,256}; big=${BIG:-256}; warmup=${WARMUP:-3}; iters=${ITERS:-20}; workers=${WORKERS:-16}
budget=${BUDGET:-450}
start=$(date +%s)
deadline=$((start + budget))
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
printf 'step\texit\tseconds\tlimit\n' >"$out/steps.tsv"

say() { echo "$*" | tee -a "$summary"; }

# At exit, whatever happened: everything but summary.txt and steps.tsv into results.tar.gz, the resnet18 charts
# beside it (the device hands back at most 8 files from OUT, at most 2 folders down).
bundle() {
  rm -rf "${out:?}/.jpegs"
  local items
  mapfile -t items < <(cd "$out" && ls -A | grep -v -x -e summary.txt -e steps.tsv -e results.tar.gz)
  [ "${#items[@]}" -gt 0 ] || return 0
  for chart in bench-r18 bench-r18-nhwc; do
    [ -f "$out/$chart/report.svg" ] && cp "$out/$chart/report.svg" "$out/$chart.svg.keep"
  done
  tar -czf "$out/results.tar.gz" -C "$out" "${items[@]}"
  [ "${KEEP:-0}" = 1 ] || (cd "$out" && rm -rf "${items[@]}")
  for chart in bench-r18 bench-r18-nhwc; do
    [ -f "$out/$chart.svg.keep" ] && mv "$out/$chart.svg.keep" "$out/$chart.svg"
  done
  return 0
}
trap bundle EXIT

# step NAME LIMIT CMD...: runs CMD under `timeout` (the smaller of LIMIT and what the budget has left, keeping 15 s
# for the summary), output to OUT/NAME.log; records exit code and seconds. Exit 124: ran out of time.
step() {
  local name=$1 limit=$2; shift 2
  local left=$((deadline - $(date +%s) - 15))
  if [ "$left" -lt 20 ]; then
    say "== $name: skipped, out of time (budget ${budget}s)"
    printf '%s\tskipped\t0\t0\n' "$name" >>"$out/steps.tsv"
    return 0
  fi
  [ "$limit" -le "$left" ] || limit=$left
  local t0 t1 rc
  t0=$(date +%s.%N)
  # SIGINT first: bench and extract stop between runs and still write their report / run.json (exit 130).
  timeout -s INT -k 15 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$limit" >>"$out/steps.tsv"
  say "== $name: exit $rc in ${secs}s (limit ${limit}s)$([ "$rc" -eq 124 ] && echo ", TIMED OUT (stopped with SIGINT: the report holds the runs finished)")"
  return 0
}

# The figures of a bench report: its table rows and skip lines (report.md).
bench_summary() {
  local md=$1/report.md
  if [ -f "$md" ]; then
    # The main table only: the agreement table's rows name their output in backquotes.
    grep -E '^- \*\*Skipped|^- Machine|^\| (provider|cpu|cuda)' "$md" | grep -v -e '| output |' -e '`' | sed 's/^/   /' >>"$summary"
  else
    tail -3 "$out/$(basename "$1").log" 2>/dev/null | sed 's/^/   /' >>"$summary"
  fi
}

bench() { # bench NAME LIMIT BATCHES PATHS ARGS...
  local name=$1 limit=$2 batches=$3 paths=$4; shift 4
  step "$name" "$limit" "$app" bench --batch "$batches" --input-path "$paths" --warmup "$warmup" --iters "$iters" -q --overwrite -o "$out/$name" "$@"
  bench_summary "$out/$name"
}

say "h200-check: $(date -u '+%Y-%m-%d %H:%M:%S') UTC, $(nproc) cores, budget ${budget}s, app $app"
say "   batch $batch, warm-up $warmup, timed $iters; extract: N=$n, workers $workers"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/   gpu: /' | tee -a "$summary"

# 1. Is CUDA usable (driver, CUDA 13, cuDNN 9, provider library)?
step providers 60 "$app" providers
sed 's/^/   /' "$out/providers.log" >>"$summary"
cuda_ok=0
grep -q '^cuda *usable' "$out/providers.log" && cuda_ok=1

# 2. resnet18 (built in) on CUDA, the four input paths: run (pageable float32), bound (pinned float32), uint8 (pinned
#    crops, normalised in the graph: what extract feeds), device (inference alone, as PyTorch's input-on-GPU figures).
#    Every row is compared with a CPU session's plain run on the same batch.
bench bench-r18 150 "$batch" run,bound,uint8,device --model resnet18 --providers cuda
# 2b. The CPU provider on this machine's cores, for the EP comparison (plain run only; fewer timed runs).
iters_saved=$iters; iters=5
bench bench-r18-cpu 90 "$batch" run --model resnet18 --providers cpu
iters=$iters_saved
# 3. NHWC convolutions (channels-last, as PyTorch's AMP figure), the paths that matter for speed.
bench bench-r18-nhwc 90 "32,$big" uint8,device --model resnet18 --providers cuda --cuda-options prefer_nhwc=1
# 3b. NHWC and a CUDA graph (device path only: fixed addresses), batch BIG.
bench bench-r18-graph 60 "$big" device --model resnet18 --providers cuda --cuda-options prefer_nhwc=1,enable_cuda_graph=1

# 3c. Precision: fp16 converted by FeatureOnnx (float16 compute, float32 reductions/exponentials/normalisations) beside
#     fp32, inference alone, NHWC; inputs are the repo's photos, so the agreement columns (vs the CPU's fp32 run) are
#     the fp16 accuracy on real images. Then fp16 with a CUDA graph (the issue's target: >= PyTorch AMP channels_last).
photos=$repo/tests/FeatureOnnx.Tests/fixtures/photos
bench bench-r18-fp16 120 "32,$big" device --model resnet18 --providers cuda --precision fp32,fp16 --images "$photos" --cuda-options prefer_nhwc=1
bench bench-r18-fp16-graph 60 "$big" device --model resnet18 --providers cuda --precision fp16 --images "$photos" --cuda-options prefer_nhwc=1,enable_cuda_graph=1
# 3d. PyTorch on the same GPU and batch: fp32, fp32 channels_last, AMP channels_last (inference alone, input on the GPU).
torch_py=""
for py in /opt/torch/.venv/bin/python3 python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null && "$py" -c 'import torch, torchvision' 2>/dev/null; then torch_py=$py; break; fi
done
if [ -n "$torch_py" ]; then
  step torch-amp 120 "$torch_py" "$repo/export-scripts/bench_torch_amp.py" --batch "$big" --models resnet18,efficientnet_b0 \
    --warmup "$warmup" --iters "$iters" --json "$out/torch-amp.json"
  grep -E '^(torch|bench_torch_amp|\|)' "$out/torch-amp.log" | sed 's/^/   /' >>"$summary"
else
  say "== torch-amp: skipped, no python3 with torch and torchvision here"
fi

# 4. End to end: JPEG files to features, on CUDA with uint8 input on and off.
if [ -z "$jpegs" ]; then
  jpegs=$out/.jpegs
  rm -rf "$jpegs"; mkdir -p "$jpegs"
  make_jpegs() {
    local py
    for py in /opt/torch/.venv/bin/python3 python3 /usr/bin/python3; do
      if command -v "$py" >/dev/null && "$py" -c 'import PIL' 2>/dev/null; then
        "$py" - "$repo" "$jpegs" "$n" <<'EOF'
import glob, os, random, sys
from concurrent.futures import ProcessPoolExecutor
from PIL import Image
repo, folder, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
photos = sorted(p for p in glob.glob(os.path.join(repo, "tests/FeatureOnnx.Tests/fixtures/photos/*")) if not p.endswith(".md"))

def make(k):  # as export-scripts/bench_extract.py: seeded random 500x375 crops, quality 90
    sources = [Image.open(p).convert("RGB") for p in photos]
    sources = [s if min(s.size) >= 375 else s.resize((max(500, s.width * 375 // s.height), 375)) for s in sources]
    for i in range(k, n, os.cpu_count() or 1):
        rng = random.Random(i)
        src = sources[i % len(sources)]
        x = rng.randint(0, max(0, src.width - 500)); y = rng.randint(0, max(0, src.height - 375))
        src.crop((x, y, x + 500, y + 375)).resize((500, 375)).save(os.path.join(folder, f"img_{i:05d}.jpg"), quality=90)

with ProcessPoolExecutor() as pool:
    list(pool.map(make, range(os.cpu_count() or 1)))
print(f"{n} JPEGs of 500x375 (q90) made with {sys.executable}")
EOF
        return
      fi
    done
    # No PIL: copies of the repo's photos as they are (sizes vary), repeated to N files.
    local files=() i=0
    mapfile -t files < <(find "$repo/samples" "$repo/tests/FeatureOnnx.Tests/fixtures/photos" -maxdepth 1 -type f ! -name '*.md' | sort)
    while [ "$i" -lt "$n" ]; do
      local f=${files[$((i % ${#files[@]}))]}
      cp "$f" "$jpegs/$(printf '%05d' "$i")_$(basename "$f")"
      i=$((i + 1))
    done
    echo "$n copies of ${#files[@]} repo photos (no PIL here: sizes as they are, not 500x375)"
  }
  export -f make_jpegs; export repo jpegs n
  step make-jpegs 90 bash -c make_jpegs
  tail -1 "$out/make-jpegs.log" | sed 's/^/   /' >>"$summary"
fi
if [ "$cuda_ok" = 1 ]; then provider=cuda; else provider=cpu; say "   CUDA is not usable here: extract runs on the CPU as a dry run of the pipeline, not a GPU figure"; fi
for mode in on off; do
  name=extract-uint8-$mode
  rm -rf "${out:?}/$name"
  step "$name" 120 "$app" extract "$jpegs" -o "$out/$name" --provider "$provider" --batch 256 --workers "$workers" --uint8-input "$mode" -q
  if [ -f "$out/$name/run.json" ]; then
    python3 - "$out/$name/run.json" >>"$summary" 2>&1 <<'EOF' || grep -E '"(imagesPerSecond|provider|uint8Input)"' "$out/$name/run.json" >>"$summary"
import json, sys
r = json.load(open(sys.argv[1]))
def pick(d, *keys):
    return {k: d[k] for k in keys if k in d}
print("   " + json.dumps(pick(r, "status", "provider", "uint8Input", "imagesPerSecond", "extracted", "failed", "batchSize", "decodeWorkers", "intraOpThreads", "decoders", "warnings")))
print("   seconds " + json.dumps(r.get("seconds", {})))
EOF
  else
    tail -3 "$out/$name.log" | sed 's/^/   /' >>"$summary"
  fi
  # The features themselves (N x 512 floats) stay out of OUT; run.json, index.csv and errors.csv remain.
  find "$out/$name" -name '*.npy' -delete 2>/dev/null
done

# 5. Exported float32 models (export.py), CUDA alone at batch BIG, inference alone (device path), NHWC, at fp32 and
#    fp16 (converted here, float32 islands); fp16 also with a CUDA graph (the issue's fp16 target: >= PyTorch AMP
#    channels_last, step 3d). Compared with a CPU session of the fp32 model on the repo's photos. A manifest already
#    at fp16 (featureonnx convert) is benched as it is.
if [ -n "$models" ]; then
  for manifest in "$models"/*.json; do
    [ -f "$manifest" ] || { say "== no manifest in $models"; break; }
    base=$(basename "$manifest" .json)
    if grep -q '"precision": *"fp16"' "$manifest"; then
      bench "bench-$base-graph" 60 "$big" device --model "$manifest" --providers cuda --images "$photos" --cuda-options prefer_nhwc=1,enable_cuda_graph=1
      continue
    fi
    bench "bench-$base" 120 "$big" device,uint8 --model "$manifest" --providers cuda --precision fp32,fp16 --images "$photos" --cuda-options prefer_nhwc=1
    bench "bench-$base-fp16-graph" 60 "$big" device --model "$manifest" --providers cuda --precision fp16 --images "$photos" --cuda-options prefer_nhwc=1,enable_cuda_graph=1
  done
fi

say "h200-check: done in $(($(date +%s) - start))s; reports, logs and run.json files in results.tar.gz"
