#!/usr/bin/env bash
# Parity of `featureonnx extract` with the PyTorch reference (reference.py) on resnet18, vgg16 and efficientnet_b0,
# exported with seeded random weights. Fails (exit 1) when a target is missed.
#
#   [FEATUREONNX="dotnet path/to/featureonnx.dll"] export-scripts/parity_check.sh [PHOTOS]
#   export-scripts/parity_check.sh --self-test [PHOTOS]   # no C#: reference.py vs itself, decoding and --tensors-in (exact)
#
# PHOTOS defaults to ../shared/testdata/photos (next to the repository). Per model, in a temporary folder that is
# removed on exit (mktemp -d; KEEP_WORK=1 keeps it):
#   1. export.py --model M --weights $WEIGHTS (BatchNorm recalibrated on PHOTOS when CALIBRATION=images) -> M.onnx/.json/.pth
#   2. reference.py --weights M.pth over PHOTOS -> ref/M (and the preprocessed tensors, ref/M.tensors.npy + .csv)
#   3. $FEATUREONNX extract PHOTOS -o ours/M --model M.json --layers <every manifest output>
#   4. parity.py ours/M ref/M: min cosine >= MIN_COS_POOLED on vectors, >= MIN_COS_MAPS on maps
#   5. only when `$FEATUREONNX extract --help` mentions --tensors-in: the same tensors fed to both
#      (decode and resize taken out), max relative error <= MAX_REL_ERR (see tensors_in_parity below)
#
# Environment: FEATUREONNX (default: dotnet src/FeatureOnnx.Cli/bin/Release/net10.0/featureonnx.dll, built if
# missing), PYTHON (default: /usr/bin/python3 when it has torch, else
# python3), MODELS ("resnet18 vgg16 efficientnet_b0"), WEIGHTS (random:0), CALIBRATION (images | noise; default
# images), MIN_COS_POOLED (0.9999), MIN_COS_MAPS (0.999), MAX_REL_ERR (1e-4), EXTRACT_ARGS (extra arguments for
# extract, e.g. "--threads 2"), TENSORS_IN_EXTRACT_ARGS (extra arguments for the --tensors-in run only), KEEP_WORK (0).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self_test=0
if [[ "${1:-}" == "--self-test" ]]; then self_test=1; shift; fi
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; fi
PHOTOS=${1:-$here/../../shared/testdata/photos}
[[ -d "$PHOTOS" ]] || { echo "parity_check: photos folder '$PHOTOS' not found" >&2; exit 2; }

if [[ -z "${PYTHON:-}" ]]; then
  if /usr/bin/python3 -c 'import torch, torchvision, onnx' 2>/dev/null; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
MODELS=${MODELS:-"resnet18 vgg16 efficientnet_b0"}
WEIGHTS=${WEIGHTS:-random:0}
CALIBRATION=${CALIBRATION:-images}
MIN_COS_POOLED=${MIN_COS_POOLED:-0.9999}
MIN_COS_MAPS=${MIN_COS_MAPS:-0.999}
MAX_REL_ERR=${MAX_REL_ERR:-1e-4}
read -r -a extract_args <<< "${EXTRACT_ARGS:-}"
read -r -a tensors_in_args <<< "${TENSORS_IN_EXTRACT_ARGS:-}"

if (( ! self_test )) && [[ -z "${FEATUREONNX:-}" ]]; then
  # Default: this repository's CLI, built in Release (test.sh's `dotnet test -c Release` has usually built it already).
  cli_dll=$here/../src/FeatureOnnx.Cli/bin/Release/net10.0/featureonnx.dll
  if [[ ! -f "$cli_dll" ]]; then
    echo "parity_check: building src/FeatureOnnx.Cli (Release)"
    dotnet build "$here/../src/FeatureOnnx.Cli" -c Release -nologo -v q >&2 || { echo "parity_check: build failed; set FEATUREONNX" >&2; exit 2; }
  fi
  FEATUREONNX="dotnet $(cd "$(dirname "$cli_dll")" && pwd)/featureonnx.dll"
fi
read -r -a featureonnx <<< "${FEATUREONNX:-}"

work=$(mktemp -d "${TMPDIR:-/tmp}/parity.XXXXXX")
cleanup() { if [[ "${KEEP_WORK:-0}" == 1 ]]; then echo "parity_check: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
run_logged() {  # NAME CMD...: output to $work/NAME.log, last line shown; on failure the last 20 lines, and its exit code
  local name=$1 rc=0; shift
  "$@" >"$work/$name.log" 2>&1 || rc=$?
  if (( rc != 0 && rc != 3 )); then
    echo "  $name failed (exit $rc):"; tail -20 "$work/$name.log" | sed 's/^/    /'
  else
    tail -1 "$work/$name.log" | sed 's/^/  /'
  fi
  return "$rc"
}
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- "decode and resize taken out": the same preprocessed tensors fed to both sides. -------------------------------
# Wire-up point for the C# side. Called only when `featureonnx extract --help` mentions --tensors-in. Contract assumed:
#   featureonnx extract --tensors-in FILE.npy -o OUT --model M.json --layers L
#   FILE.npy: float32 [N,3,H,W], already normalised (reference.py --tensors-out); FILE.csv beside it: row,path.
#   OUT: LAYER.npy in FILE.npy's row order and index.csv (rows are matched by row number, so paths may be anything).
# If the C# option ends up different, change only the extract line below.
supports_tensors_in() {
  (( self_test )) && return 0
  "${featureonnx[@]}" extract --help 2>&1 | grep -c -- '--tensors-in' >/dev/null
}
tensors_in_parity() {  # MODEL LAYERS
  local m=$1 layers=$2 out=$work/ours-tensors/$1 rc=0
  if (( self_test )); then
    run_logged "$m.ours-tensors" "$PYTHON" "$here/reference.py" --model "$m" --weights "$work/models/$m.pth" \
      --tensors-in "$work/ref/$m.tensors.npy" -o "$out" || rc=$?
  else
    run_logged "$m.ours-tensors" "${featureonnx[@]}" extract --tensors-in "$work/ref/$m.tensors.npy" -o "$out" \
      --model "$work/models/$m.json" --layers "$layers" ${extract_args[@]+"${extract_args[@]}"} \
      ${tensors_in_args[@]+"${tensors_in_args[@]}"} || rc=$?
  fi
  (( rc == 0 )) || return 1
  "$PYTHON" "$here/parity.py" "$out" "$work/ref/$m" --layers "$layers" --match row --max-rel-err "$MAX_REL_ERR" \
    --min-cosine-pooled "$MIN_COS_POOLED" --min-cosine-maps "$MIN_COS_MAPS" --label "$m, same tensors fed to both"
}
# ------------------------------------------------------------------------------------------------------------------

manifest_outputs() {  # MODEL -> comma-separated output names of the manifest
  "$PYTHON" -c 'import json,sys; print(",".join(o["name"] for o in json.load(open(sys.argv[1]))["outputs"]))' "$work/models/$1.json"
}

calib=()
[[ "$CALIBRATION" == images ]] && calib=(--calibration-images "$PHOTOS")
echo "parity_check: photos $PHOTOS; models $MODELS; weights $WEIGHTS; BN calibration $CALIBRATION; python $PYTHON"
echo "parity_check: ours = ${FEATUREONNX:-reference.py --tensors-in (self-test)}; work $work"
summary=()
failed=0
mkdir -p "$work/models" "$work/ref" "$work/ours"
for m in $MODELS; do
  echo
  echo "=== $m"
  result=ok
  t=$(now)
  if ! run_logged "$m.export" "$PYTHON" "$here/export.py" --model "$m" --weights "$WEIGHTS" ${calib[@]+"${calib[@]}"} \
      -o "$work/models"; then
    summary+=("$(printf '%-16s export FAILED' "$m")"); failed=1; continue
  fi
  t_export=$(since "$t")
  size=$(awk -v b="$(stat -c %s "$work/models/$m.onnx")" 'BEGIN { printf "%.1f", b / 1e6 }')
  layers=$(manifest_outputs "$m")

  t=$(now)
  rc=0
  run_logged "$m.reference" "$PYTHON" "$here/reference.py" --model "$m" --weights "$work/models/$m.pth" \
    --manifest "$work/models/$m.json" --tensors-out "$work/ref/$m.tensors.npy" -o "$work/ref/$m" "$PHOTOS" || rc=$?
  t_ref=$(since "$t")
  if (( rc != 0 && rc != 3 )); then
    summary+=("$(printf '%-16s reference FAILED' "$m")"); failed=1; continue
  fi

  t=$(now)
  rc=0
  if (( self_test )); then
    run_logged "$m.ours" "$PYTHON" "$here/reference.py" --model "$m" --weights "$work/models/$m.pth" \
      -o "$work/ours/$m" "$PHOTOS" || rc=$?
  else
    run_logged "$m.ours" "${featureonnx[@]}" extract "$PHOTOS" -o "$work/ours/$m" --model "$work/models/$m.json" \
      --layers "$layers" ${extract_args[@]+"${extract_args[@]}"} || rc=$?
  fi
  t_ours=$(since "$t")
  if (( rc != 0 && rc != 3 )); then  # 3: some inputs failed; parity.py then lists the rows missing on our side
    result=FAILED; failed=1
  else
    "$PYTHON" "$here/parity.py" "$work/ours/$m" "$work/ref/$m" --layers "$layers" --min-cosine-pooled "$MIN_COS_POOLED" \
      --min-cosine-maps "$MIN_COS_MAPS" --label "$m, images decoded by each side" || { result=MISSED; failed=1; }
    if supports_tensors_in; then
      tensors_in_parity "$m" "$layers" || { result="$result, tensors-in MISSED"; failed=1; }
    else
      echo "  (featureonnx extract has no --tensors-in yet: the same-tensors comparison is skipped)"
    fi
  fi
  summary+=("$(printf '%-16s export %6ss  onnx %5s MB  reference %6ss  ours %6ss  %s' "$m" "$t_export" "$size" "$t_ref" "$t_ours" "$result")")
  rm -f "$work/models/$m".onnx "$work/models/$m".pth "$work/ref/$m".tensors.npy  # vgg16: 1.1 GB
done

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
if (( failed )); then echo "parity_check: FAILED"; exit 1; fi
echo "parity_check: all targets met"
