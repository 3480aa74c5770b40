#!/usr/bin/env bash
# Clean-machine smoke test of the deployment build (docs/deployment.md):
#  1. publishes the CLI with the deployment profile (cpu flavour, self-contained linux-x64, trimmed, single file);
#  2. copies it into an empty folder and runs it there with env -i: PATH without dotnet, DOTNET_ROOT and NUGET_PACKAGES
#     unset, HOME empty (so no NuGet cache either): the smoke set covers every command (the trimmed binary must still
#     parse arguments, read manifests, edit graphs with OnnxSharp, write run.json);
#  3. compares its features with `dotnet run` on the same photos (/usr/bin/python3 + numpy: same index.csv, same
#     shapes, cosine >= 0.99999 per row: the publish stores the built-in weights as float16, dotnet run has them as
#     trained; 0.9999995 measured on the test photos);
#  4. prints the compressed size (tar.xz) and fails when the cpu publish holds a CUDA library, when the whole folder
#     passes the 60 MB budget (45.4 MB when written: the built-in weights are stored as float16 by the profile), or when
#     the app without the built-in model's weights grows past 20 MB compressed (16.3 MB when written).
# usage: .ci/smoke-publish.sh [PHOTOS=samples]
#   env: KEEP=1 keeps the temporary folder; SIZE=app measures only the app without the weights (30 s on 2 cores),
#   SIZE=0 nothing, default both (what CI does, 60 s).
# The publish goes to artifacts/smoke-publish/ (git-ignored), never to the projects' bin/obj: the cuda build of
# the tests stays as it is, and a second run is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
photos=${1:-samples}
py=/usr/bin/python3
work=$(mktemp -d /tmp/featureonnx-smoke.XXXXXX)
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
fail() { echo "smoke-publish: FAILED: $*" >&2; exit 1; }
step() { echo "smoke-publish: $*"; }

step "publishing (profile linux-x64, cpu flavour)"
dotnet publish src/FeatureOnnx.Cli -c Release -p:PublishProfile=linux-x64 \
  --artifacts-path "$repo/artifacts/smoke-publish" -o "$work/publish" -nologo -v quiet >"$work/publish.log" 2>&1 \
  || { cat "$work/publish.log"; fail "dotnet publish"; }
[ ! -e "$work/publish/libonnxruntime_providers_cuda.so" ] || fail "the cpu publish holds the CUDA provider library"
# libjpeg-turbo comes from the repository, not from the build machine (which CI does not give libturbojpeg0).
cmp -s "$work/publish/libturbojpeg.so.0" src/FeatureOnnx/native/linux-x64/libturbojpeg.so.0 || fail "the publish lacks the bundled libturbojpeg.so.0"
[ -s "$work/publish/licenses/libjpeg-turbo.txt" ] || fail "the publish lacks licenses/libjpeg-turbo.txt"

# The clean machine: the app in an empty folder; relative photos are copied beside it under the same name, so that
# index.csv paths are those of the reference run in the repository (absolute ones are read where they are).
clean=$work/clean
mkdir -p "$clean/home" "$clean/bin"
cp -r "$work/publish" "$clean/featureonnx"
case $photos in
  /*) ;;
  *) mkdir -p "$(dirname "$clean/$photos")"; cp -r "$photos" "$clean/$photos" ;;
esac
app=$clean/featureonnx/featureonnx
bare() { (cd "$clean" && env -i PATH="$clean/bin" HOME="$clean/home" LANG=C.UTF-8 "$@"); }
bare /bin/sh -c 'command -v dotnet' >/dev/null && fail "dotnet is on the bare PATH"
[ -z "$(bare /usr/bin/env | grep -E '^(DOTNET_|NUGET_)' || true)" ] || fail "DOTNET_/NUGET_ variables in the bare environment"

step "smoke set on the published binary (no dotnet, no NuGet cache)"
bare /usr/bin/env LD_DEBUG=libs "$app" --help >"$work/help.txt" 2>"$work/ld.txt" || fail "--help"
grep -q "featureonnx extract" "$work/help.txt" || fail "--help printed no usage"
! grep -E "(/usr/share/dotnet|/usr/lib/dotnet|$HOME/.dotnet)/" "$work/ld.txt" | grep -c "init:" >/dev/null \
  || fail "the published app loaded a library of an installed .NET"
bare "$app" --version >/dev/null || fail "--version"
bare "$app" providers >"$work/providers.txt" || fail "providers"
grep -q "^cpu *usable" "$work/providers.txt" || fail "providers: CPU not usable"
bare "$app" inspect resnet18 >"$work/inspect.txt" || fail "inspect resnet18"
grep -q "^weights   float16: 22 float32 weight tensors" "$work/inspect.txt" || fail "the built-in weights are not stored as float16: $(grep '^weights' "$work/inspect.txt")"
bare "$app" inspect resnet18 --all >/dev/null || fail "inspect resnet18 --all"
bare "$app" extract "$photos" -o out/default --quiet || fail "extract $photos"
bare "$app" extract "$photos" -o out/layer1 --layers layer1 --pool avg --l2 --quiet || fail "extract --layers layer1 --pool avg --l2"
mkdir -p "$clean/out/pca" "$clean/out/l2"
bare "$app" pca fit out/default/pooled.npy -k 3 -o out/pca.npz --quiet || fail "pca fit"
bare "$app" pca transform out/pca.npz out/default/pooled.npy -o out/pca/pooled.npy >/dev/null || fail "pca transform"
bare "$app" postprocess out/default/pooled.npy --l2 -o out/l2/pooled.npy >/dev/null || fail "postprocess"
onnx=$(cd "$clean" && find featureonnx/models -name ResNet18.onnx | head -1)
bare "$app" expose "$onnx" --outputs ReLU283_Output_0=stage1 --only --dynamic-batch -o out/stage1.onnx >/dev/null || fail "expose"
bare "$app" inspect out/stage1.onnx >/dev/null || fail "inspect of an exposed graph"
mkdir -p "$clean/bad"
head -c 3000 "$repo/samples/opencv_baboon.jpg" >"$clean/bad/truncated.jpg"
set +e; bare "$app" extract bad -o out/bad --quiet; rc=$?; set -e
[ "$rc" -eq 3 ] && grep -q "truncated.jpg" "$clean/out/bad/errors.csv" || fail "a truncated JPEG: exit $rc (3 expected) or not in errors.csv"

step "reference: dotnet run on the same photos"
ref=$work/ref
run_ref() { dotnet run --project src/FeatureOnnx.Cli -c Release "$@"; }
mkdir -p "$ref/pca" "$ref/l2"
run_ref -- extract "$photos" -o "$ref/default" --quiet || fail "dotnet run extract"
run_ref --no-build -- extract "$photos" -o "$ref/layer1" --layers layer1 --pool avg --l2 --quiet || fail "dotnet run extract layer1"
run_ref --no-build -- pca fit "$ref/default/pooled.npy" -k 3 -o "$ref/pca.npz" --quiet || fail "dotnet run pca fit"
run_ref --no-build -- pca transform "$ref/pca.npz" "$ref/default/pooled.npy" -o "$ref/pca/pooled.npy" >/dev/null || fail "dotnet run pca transform"
run_ref --no-build -- postprocess "$ref/default/pooled.npy" --l2 -o "$ref/l2/pooled.npy" >/dev/null || fail "dotnet run postprocess"

step "comparing"
"$py" - "$ref" "$clean/out" "$clean/featureonnx" <<'EOF' || fail "features differ from dotnet run"
import json, os, sys
import numpy as np
ref, out, app = sys.argv[1:4]
bad = []
for sub in ("default", "layer1", "pca", "l2"):
    for name in sorted(os.listdir(os.path.join(ref, sub))):
        r, o = os.path.join(ref, sub, name), os.path.join(out, sub, name)
        if name == "index.csv" and open(r).read() != open(o).read():
            bad.append(f"{sub}/index.csv: rows differ")
        if not name.endswith(".npy"):
            continue
        a, b = np.load(r).astype(np.float64), np.load(o).astype(np.float64)
        if a.shape != b.shape:
            bad.append(f"{sub}/{name}: shape {b.shape}, dotnet run {a.shape}"); continue
        a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
        print(f"  {sub}/{name} {list(a.shape)}: min cosine {cos.min():.9f}, max |diff| {np.abs(a - b).max():.2e}")
        if not cos.min() >= 0.99999:
            bad.append(f"{sub}/{name}: min cosine {cos.min()}")
run = json.load(open(os.path.join(out, "default", "run.json")))
if not run["decoders"]["jpeg"].startswith("libjpeg-turbo 2.1.5 (bundled: " + os.path.realpath(app)):
    bad.append(f"run.json: JPEG decoded by {run['decoders']['jpeg']!r}, not the libjpeg-turbo next to the published app")
if not (run.get("weightStorage") or "").startswith("float16"):
    bad.append(f"run.json: weightStorage is {run.get('weightStorage')!r}, float16 expected from the deployment build")
if not os.path.realpath(run["manifest"]).startswith(os.path.realpath(app) + os.sep):
    bad.append(f"run.json: the manifest came from {run['manifest']}, not from the app's models/")
print("\n".join("  DIFF " + b for b in bad) or "  same rows, same features")
sys.exit(1 if bad else 0)
EOF

if [ "${SIZE:-all}" != 0 ]; then
  step "compressed size (tar | xz -6 -T0)"
  xz6() { if command -v xz >/dev/null; then xz -6 -T0; else "$py" -c 'import lzma, sys; sys.stdout.buffer.write(lzma.compress(sys.stdin.buffer.read(), preset=6))'; fi; }
  size() { tar -cf - -C "$work/publish" "$@" | xz6 | wc -c; }
  mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
  app_only=$(size --exclude='*.onnx' .)
  echo "  without the model weights (*.onnx): $(mb "$app_only") MB"
  if [ "${SIZE:-all}" != app ]; then
    total=$(size .)
    echo "  whole publish folder ($(du -sm "$work/publish" | cut -f1) MB raw): $(mb "$total") MB"
  fi
  [ "${SIZE:-all}" = app ] || [ "$total" -le 60000000 ] || fail "the publish folder is $(mb "$total") MB compressed, above the 60 MB budget"
  [ "$app_only" -le 20000000 ] || fail "the app without the model weights is $(mb "$app_only") MB compressed, above 20 MB"
fi
step "passed"
