#!/usr/bin/env bash
# Smoke test of the .NET packaging (docs/deployment.md): packs the library (FeatureOnnx.Core) and the dotnet tool
# (featureonnx) into a temporary nupkg/ folder, then
#  1. installs the tool from there (dotnet tool install --tool-path ... --add-source ... featureonnx), runs --help and
#     extract on the photos;
#  2. builds a new console app outside the repository that references FeatureOnnx.Core from there and runs the README's
#     example (tests/FeatureOnnx.Tests/Examples/ReadmeExample.cs) on the photos: the built-in model must have been
#     copied next to it by the package's buildTransitive targets;
#  3. builds the same app for CUDA as docs/deployment.md says (Microsoft.ML.OnnxRuntime.Gpu.Linux plus the CPU
#     package's assets excluded) and checks that the CUDA build of libonnxruntime.so is the one in its output;
#  4. compares both sets of features with `dotnet run` (cosine >= 0.99999, same rows).
# usage: .ci/smoke-pack.sh [PHOTOS=samples]   env: KEEP=1 keeps the temporary folder.
# Run by test.sh (about two minutes on two cores). Packs with a unique version (0.0.0-smoke.N), removed from the
# NuGet cache at exit, so a stale package is never used.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
photos=$(cd "${1:-samples}" && pwd)
py=/usr/bin/python3
version=0.0.0-smoke.$(date +%s)
work=$(mktemp -d /tmp/featureonnx-pack.XXXXXX)
cache=${NUGET_PACKAGES:-$HOME/.nuget/packages}
cleanup() {
  rm -rf "$cache/featureonnx.core/$version" "$cache/featureonnx/$version"
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "smoke-pack: FAILED: $*" >&2; exit 1; }
step() { echo "smoke-pack: $*"; }

step "packing $version"
for project in src/FeatureOnnx src/FeatureOnnx.Cli; do
  dotnet pack "$project" -c Release -p:Version="$version" --artifacts-path "$repo/artifacts/smoke-pack" \
    -o "$work/nupkg" -nologo -v quiet >"$work/pack.log" 2>&1 || { cat "$work/pack.log"; fail "dotnet pack $project"; }
done
lib=$work/nupkg/FeatureOnnx.Core.$version.nupkg
tool=$work/nupkg/featureonnx.$version.nupkg
[ -f "$lib" ] && [ -f "$tool" ] || fail "packages missing: $(ls "$work/nupkg")"
for entry in README.md buildTransitive/FeatureOnnx.Core.targets models/resnet18.json \
  models/nuget/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/LICENSE \
  models/nuget/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx; do
  unzip -l "$lib" "$entry" >/dev/null || fail "FeatureOnnx.Core lacks $entry"
done
# libjpeg-turbo rides in the package as a RID-specific native asset (src/FeatureOnnx/NativeLibraries.targets).
unzip -l "$lib" runtimes/linux-x64/native/libturbojpeg.so.0 >/dev/null || fail "FeatureOnnx.Core lacks runtimes/linux-x64/native/libturbojpeg.so.0"
unzip -l "$lib" licenses/libjpeg-turbo.txt >/dev/null || fail "FeatureOnnx.Core lacks licenses/libjpeg-turbo.txt"
unzip -l "$tool" | grep -cE " tools/net10.0/any/libturbojpeg.so.0$" >/dev/null || fail "the featureonnx tool lacks libturbojpeg.so.0"
unzip -p "$lib" FeatureOnnx.Core.nuspec | grep -c '<license type="expression">MIT</license>' >/dev/null || fail "no MIT licence expression"
unzip -p "$lib" FeatureOnnx.Core.nuspec | grep -c 'id="Microsoft.ML.OnnxRuntime"' >/dev/null || fail "the library does not depend on the CPU ONNX Runtime"
unzip -l "$tool" | grep -c "DotnetToolSettings.xml" >/dev/null || fail "featureonnx is not a tool package"
ls -l "$work/nupkg" | awk 'NR > 1 { printf "  %s %.1f MB\n", $9, $5 / 1e6 }'

step "dotnet tool install from the folder"
dotnet tool install --tool-path "$work/tool" --add-source "$work/nupkg" featureonnx --version "$version" >/dev/null \
  || fail "dotnet tool install"
"$work/tool/featureonnx" --help | grep -c "featureonnx extract" >/dev/null || fail "featureonnx --help"
"$work/tool/featureonnx" extract "$photos" -o "$work/out/tool" --quiet || fail "the tool's extract"

step "a console app referencing FeatureOnnx.Core"
consumer() {  # consumer DIR EXTRA_PACKAGE_REFERENCES
  mkdir -p "$1"
  cat >"$1/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="smoke" value="$work/nupkg" />
  </packageSources>
</configuration>
EOF
  cat >"$1/consumer.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="FeatureOnnx.Core" Version="$version" />
$2
  </ItemGroup>
</Project>
EOF
  cp "$repo/tests/FeatureOnnx.Tests/Examples/ReadmeExample.cs" "$1/"
  cat >"$1/Program.cs" <<'EOF'
using FeatureOnnx.Examples;
using FeatureOnnx.Formats;

// args: IMAGES OUT. The folder through the pipeline, then the first indexed image again through Embed.
var result = await ReadmeExample.ExtractFolder(args[0], args[1]);
var first = File.ReadLines(Path.Combine(args[1], "index.csv")).Skip(1).First().Split(',', 2)[1];
var vector = ReadmeExample.Embed(File.ReadAllBytes(first));
using (var npy = new NpyWriter(Path.Combine(args[1], "embed.npy"), [vector.Length])) { npy.Append(vector); npy.Complete(); }
Console.WriteLine($"{result.Extracted} extracted; ONNX Runtime providers: {string.Join(", ", Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetAvailableProviders())}");
EOF
  (cd "$1" && dotnet build -c Release -nologo -v quiet >build.log 2>&1) || { cat "$1/build.log"; fail "building $1"; }
}
consumer "$work/app" ""
[ -f "$work/app/bin/Release/net10.0/models/resnet18.json" ] || fail "the package did not copy models/ next to the app"
(cd "$work" && dotnet app/bin/Release/net10.0/consumer.dll "$photos" "$work/out/app") || fail "the console app"

step "the same app for CUDA (build only)"
consumer "$work/app-cuda" '    <PackageReference Include="Microsoft.ML.OnnxRuntime.Gpu.Linux" Version="1.31.0" />
    <PackageReference Include="Microsoft.ML.OnnxRuntime" Version="1.31.1" ExcludeAssets="all" />'
native=$work/app-cuda/bin/Release/net10.0/runtimes/linux-x64/native
[ -f "$native/libonnxruntime_providers_cuda.so" ] || fail "no CUDA provider in the CUDA app"
cmp -s "$native/libonnxruntime.so" "$cache/microsoft.ml.onnxruntime.gpu.linux/1.31.0/runtimes/linux-x64/native/libonnxruntime.so" \
  || fail "the CUDA app got the CPU build of libonnxruntime.so"
dotnet "$work/app-cuda/bin/Release/net10.0/consumer.dll" "$photos" "$work/out/app-cuda" | grep -c CUDAExecutionProvider >/dev/null \
  || fail "the CUDA app's ONNX Runtime lists no CUDA provider"

step "reference: dotnet run"
dotnet run --project src/FeatureOnnx.Cli -c Release -- extract "$photos" -o "$work/out/ref" --quiet || fail "dotnet run"
"$py" - "$work/out" <<'EOF' || fail "features differ from dotnet run"
import os, sys
import numpy as np
out = sys.argv[1]
def cos(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return ((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min()
ref = np.load(os.path.join(out, "ref", "pooled.npy"))
rows = open(os.path.join(out, "ref", "index.csv")).read()
bad = []
for run in ("tool", "app", "app-cuda"):
    x = np.load(os.path.join(out, run, "pooled.npy"))
    c = cos(ref, x) if x.shape == ref.shape else float("nan")
    print(f"  {run}: {list(x.shape)}, min cosine {c:.9f}")
    if not c >= 0.99999: bad.append(run)
    if open(os.path.join(out, run, "index.csv")).read() != rows: bad.append(run + " index.csv")
for run in ("app", "app-cuda"):
    e = np.load(os.path.join(out, run, "embed.npy"))
    c = cos(ref[:1], e)
    print(f"  {run} Embed(first image): min cosine {c:.9f}")
    if not c >= 0.99999: bad.append(run + " Embed")
# Every run decoded JPEG with the libjpeg-turbo the package carries, never with the system's or ImageSharp.
import json
for run in ("tool", "app", "app-cuda"):
    jpeg = json.load(open(os.path.join(out, run, "run.json")))["decoders"]["jpeg"]
    print(f"  {run}: jpeg decoded by {jpeg}")
    if not jpeg.startswith("libjpeg-turbo 2.1.5 (bundled: "): bad.append(run + " decoder")
sys.exit(1 if bad else 0)
EOF
step "passed"
