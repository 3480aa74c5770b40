#!/usr/bin/env bash
# Makes everything deploy/gpu/h200-check.sh needs on the H200 (docs/benchmarks.md, "H200 plan"), here, and prints
# the device calls. All under .gpu/ (git-ignored):
#   .gpu/cuda/    pack.sh: libonnxruntime_providers_cuda.so with other GPUs' kernels zeroed, xz (about 50 MiB)
#   .gpu/app/     pack.sh: the CLI, deployment profile (self-contained linux-x64, trimmed, built-in resnet18 with
#                 float16 weights) and -p:OrtFlavor=cuda (about 44 MiB)
#   .gpu/models/  models.tar.xz: resnet18 and efficientnet_b0 exported in float32 with export.py --weights random:0
#                 (h200-check.sh benches each at fp32 and fp16: --precision), as many as fit in 64 MiB (none with --no-models)
#   .gpu/send/K/  the three cut into pieces: a device call carries one folder; the working tree travels with it and
#                 both together must stay under 64 MiB. deploy/gpu/device-run.sh joins them on the device.
# usage: deploy/gpu/prepare.sh [--no-models]
# env: PACK (default ../shared/gpu/pack.sh beside the repository), PYTHON (default /usr/bin/python3: torch, onnx),
#      CHUNK_MIB (piece size; default 64 MiB minus the working tree minus 4 MiB)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
pack=${PACK:-$repo/../shared/gpu/pack.sh}
python=${PYTHON:-/usr/bin/python3}
models=1
[ "${1:-}" = --no-models ] && models=0
limit=$((64 * 1024 * 1024))
fail() { echo "prepare: FAILED: $*" >&2; exit 1; }
step() { echo "prepare: $*"; }
part_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

[ -x "$pack" ] || [ -f "$pack" ] || fail "no pack.sh at $pack (set PACK=)"
git check-ignore -q .gpu/x || fail ".gpu/ is not git-ignored: add /.gpu/ to .gitignore"

# 1. The CLI: the deployment build with the CUDA flavour. Published under artifacts/ (git-ignored), never into the
#    projects' bin/ and obj/, so the build the tests use is untouched. nice: the machine may be shared.
pub=$repo/artifacts/gpu-publish/out
step "publishing (profile linux-x64, cuda flavour) into $pub"
rm -rf "$pub"; mkdir -p "$repo/artifacts"
nice -n 10 dotnet publish src/FeatureOnnx.Cli -c Release -p:PublishProfile=linux-x64 -p:OrtFlavor=cuda \
  --artifacts-path "$repo/artifacts/gpu-publish" -o "$pub" -nologo -v quiet >"$repo/artifacts/gpu-publish.log" 2>&1 \
  || { tail -30 "$repo/artifacts/gpu-publish.log"; fail "dotnet publish (log: artifacts/gpu-publish.log)"; }
[ -f "$pub/libonnxruntime_providers_cuda.so" ] || fail "the publish has no libonnxruntime_providers_cuda.so: not the cuda flavour?"
# An earlier GPU run decoded every JPEG with ImageSharp because its publish lacked libturbojpeg: never again.
cmp -s "$pub/libturbojpeg.so.0" src/FeatureOnnx/native/linux-x64/libturbojpeg.so.0 || fail "the publish lacks the bundled libturbojpeg.so.0"
"$pub/featureonnx" providers | head -3

# 2. Two parts, .gpu/cuda and .gpu/app (pack.sh reuses provider.so.xz when the library has not changed).
step "packing with $pack"
nice -n 10 bash "$pack" "$pub" "$repo/.gpu"
for part in cuda app; do
  bytes=$(part_bytes ".gpu/$part")
  [ "$bytes" -le "$limit" ] || fail ".gpu/$part is $bytes bytes, over 64 MiB"
  step ".gpu/$part: $((bytes / 1048576)) MiB"
done

# 3. Exported models for the fp16 comparison: seeded random weights (export.py --weights random:0), pooled output;
#    float32 only: fp16 is FeatureOnnx's own conversion, made on the device (bench --precision fp32,fp16).
rm -rf .gpu/models
if [ "$models" = 1 ]; then
  exported=$repo/artifacts/gpu-models
  rm -rf "$exported"; mkdir -p "$exported"
  # Most wanted first; the last ones are dropped while the part is over 64 MiB.
  names=(efficientnet_b0 resnet18)
  for model in "${names[@]}"; do
    # BatchNorm statistics estimated on real photos, as a trained network's match natural images: estimated on noise,
    # efficientnet_b0 amplifies every rounding (its float16 twin drops from cosine 0.9999 to 0.990 on photos).
    step "exporting $model (float32, BatchNorm statistics from the test photos)"
    nice -n 10 "$python" export-scripts/export.py --model "$model" --weights random:0 --no-save-weights \
      --calibration-images tests/FeatureOnnx.Tests/fixtures/photos -o "$exported" \
      >>"$repo/artifacts/gpu-models.log" 2>&1 || { tail -20 "$repo/artifacts/gpu-models.log"; fail "export.py $model"; }
  done
  mkdir -p .gpu/models
  while [ "${#names[@]}" -gt 0 ]; do
    files=()
    for name in "${names[@]}"; do files+=("$name.json" "$name.onnx"); done
    tar -cf - -C "$exported" "${files[@]}" | nice -n 10 xz -6 -T0 >.gpu/models/models.tar.xz
    bytes=$(part_bytes .gpu/models)
    [ "$bytes" -gt "$limit" ] || break
    step "models.tar.xz is $((bytes / 1048576)) MiB with ${names[*]}: dropping ${names[-1]}"
    unset 'names[-1]'
  done
  step ".gpu/models: $((bytes / 1048576)) MiB: ${names[*]}"
fi

# 4. What travels. A device call sends the whole working tree (tracked and untracked-not-ignored files, about 27 MB
#    here, mostly test fixtures) plus what `carry` names, 64 MiB in all; so the parts are cut into pieces and dealt
#    into .gpu/send/1..K, each at most 64 MiB minus the tree minus a margin. deploy/gpu/device-run.sh joins them there.
tree=$(git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
[ -d shared ] && tree=$((tree + $(part_bytes shared)))
chunk=$(( ${CHUNK_MIB:-0} > 0 ? ${CHUNK_MIB:-0} * 1048576 : limit - tree - 4 * 1048576 ))
[ "$chunk" -gt $((8 * 1048576)) ] || fail "the working tree ($((tree / 1048576)) MiB) leaves no room to carry anything"
rm -rf .gpu/send
payload=(cuda/provider.so.xz app/app.tar.xz)
[ -f .gpu/models/models.tar.xz ] && payload+=(models/models.tar.xz)
"$python" - "$chunk" .gpu .gpu/send "${payload[@]}" <<'PY'
import hashlib, os, sys
chunk, root, send, files = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
folder, room, lines = 1, chunk, []
os.makedirs(os.path.join(send, "1"))
for rel in files:
    path = os.path.join(root, rel)
    size, digest, index = os.path.getsize(path), hashlib.sha256(), 0
    with open(path, "rb") as f:
        while True:
            if room == 0:
                folder, room = folder + 1, chunk
                os.makedirs(os.path.join(send, str(folder)))
            piece = f.read(room)
            if not piece:
                break
            digest.update(piece)
            with open(os.path.join(send, str(folder), f"{rel.replace('/', '_')}.{index:03d}"), "wb") as out:
                out.write(piece)
            room -= len(piece)
            index += 1
    lines.append(f"{rel} {size} {index} {digest.hexdigest()}\n")
for k in range(1, folder + 1):  # every folder holds the whole list: the last call checks that nothing is missing
    with open(os.path.join(send, str(k), "pieces.txt"), "w") as out:
        out.writelines(lines)
PY
calls=$(ls .gpu/send | wc -l)
for k in $(seq 1 "$calls"); do
  bytes=$(part_bytes ".gpu/send/$k")
  [ "$bytes" -le $((chunk + 4096)) ] || fail ".gpu/send/$k is $bytes bytes, over $chunk"
done
step "working tree $((tree / 1048576)) MiB: $calls folders of at most $((chunk / 1048576)) MiB in .gpu/send"

echo
echo "prepare: ready. On the device (run tool; each call sends the working tree and the carried folder, 64 MiB in all):"
for k in $(seq 1 $((calls - 1))); do
  echo "  $k. carry [\".gpu/send/$k\"]  command: mkdir -p /tmp/featureonnx-parts && cp .gpu/send/$k/* /tmp/featureonnx-parts/ && ls -l /tmp/featureonnx-parts"
done
echo "  $calls. carry [\".gpu/send/$calls\"]  timeout_s 560  command: bash deploy/gpu/device-run.sh .gpu/send/$calls \"\$OUT\""
echo "     (joins and checks the pieces, unpacks into /tmp/featureonnx as pack.sh's remote.sh does, then runs"
echo "      deploy/gpu/h200-check.sh /tmp/featureonnx/featureonnx \$OUT /tmp/featureonnx/exported: about 8 minutes)"
echo "  The files come back under files_at; summary.txt first."
