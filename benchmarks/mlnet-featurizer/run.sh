#!/usr/bin/env bash
# Builds the ML.NET DnnImageFeaturizer peer (Release) and runs it on every .jpg of IMAGES_DIR, printing its own
# figure and the whole process's wall time and peak RSS.
# Usage: benchmarks/mlnet-featurizer/run.sh IMAGES_DIR [OUT.npy] [--threads N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: $0 IMAGES_DIR [OUT.npy] [--threads N]" >&2
  exit 2
fi
images="$1"; shift
out="${TMPDIR:-/tmp}/mlnet-featurizer.npy"
if [[ $# -gt 0 && "$1" != -* ]]; then out="$1"; shift; fi
if [[ ! -x /usr/bin/time ]]; then
  echo "run.sh: /usr/bin/time is missing; install it with: apt-get install time" >&2
  exit 2
fi

# Build once, outside the timed run (incremental: a second call only checks).
start=$(date +%s%N)
dotnet build "$here/MlNetFeaturizer.csproj" -c Release -nologo -v quiet >"${TMPDIR:-/tmp}/mlnet-featurizer-build.log" 2>&1 \
  || { cat "${TMPDIR:-/tmp}/mlnet-featurizer-build.log" >&2; exit 1; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf 'build: %d.%03d s (log: %s)\n' $((ms / 1000)) $((ms % 1000)) "${TMPDIR:-/tmp}/mlnet-featurizer-build.log"

# time's report goes to a file and then to stdout, so it cannot interleave with the program's own lines.
timing="$(mktemp)"
trap 'rm -f "$timing"' EXIT
/usr/bin/time -o "$timing" -f "mlnet process: %e s wall, %M KB peak" \
  "$here/bin/Release/net10.0/mlnet-featurizer" "$images" "$out" "$@"
cat "$timing"
echo "features: $out"
