#!/usr/bin/env bash
# On the H200: the last device call of the runbook (deploy/gpu/prepare.sh prints every call). Joins the pieces the
# earlier calls copied into PARTS with this call's own FOLDER, checks each file's size and sha256, unpacks as
# pack.sh's remote.sh does (CUDA provider and app into ROOT, LD_LIBRARY_PATH to the CUDA 13 and cuDNN 9 wheels),
# the exported models into ROOT/exported, then runs deploy/gpu/h200-check.sh ROOT/featureonnx OUT ROOT/exported, or
# with CHECK=gpu-decode deploy/gpu/gpu-decode-check.sh ROOT/featureonnx OUT (the GPU data path, issue 15).
# usage: deploy/gpu/device-run.sh FOLDER OUT
# env: ROOT (default /tmp/featureonnx), PARTS (default /tmp/featureonnx-parts), CHECK (h200 or gpu-decode), and the
#      check's own (N, BUDGET...)
set -euo pipefail
folder=${1:?usage: device-run.sh FOLDER OUT}
out=${2:?usage: device-run.sh FOLDER OUT}
here=$(cd "$(dirname "$0")" && pwd)
root=${ROOT:-/tmp/featureonnx}
parts=${PARTS:-/tmp/featureonnx-parts}
mkdir -p "$parts" "$root" "$out"
cp "$folder"/* "$parts"/
python3 - "$parts" "$root" <<'PY'
import hashlib, lzma, os, shutil, sys, tarfile
parts, root = sys.argv[1], sys.argv[2]
for line in open(os.path.join(parts, "pieces.txt")):
    rel, size, count, sha = line.split()
    flat = rel.replace("/", "_")
    names = [os.path.join(parts, f"{flat}.{i:03d}") for i in range(int(count))]
    missing = [os.path.basename(n) for n in names if not os.path.exists(n)]
    if missing:
        sys.exit(f"device-run: {rel}: missing {', '.join(missing)}: a copy call was left out")
    joined, digest = os.path.join(parts, flat), hashlib.sha256()
    with open(joined, "wb") as out:
        for n in names:
            with open(n, "rb") as f:
                data = f.read()
            digest.update(data)
            out.write(data)
    if os.path.getsize(joined) != int(size) or digest.hexdigest() != sha:
        sys.exit(f"device-run: {rel}: size or sha256 differs from what prepare.sh cut")
    if rel.startswith("cuda/"):
        with lzma.open(joined) as src, open(os.path.join(root, "libonnxruntime_providers_cuda.so"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    elif rel.startswith("app/"):
        tarfile.open(joined, "r:xz").extractall(root)
    elif rel.startswith("models/"):
        shutil.rmtree(os.path.join(root, "exported"), ignore_errors=True)
        tarfile.open(joined, "r:xz").extractall(os.path.join(root, "exported"))
    os.remove(joined)
    print(f"device-run: {rel}: {size} bytes, sha256 ok, unpacked into {root}")
PY
venv=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH=$venv/cu13/lib:$venv/cudnn/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
models=""
[ -d "$root/exported" ] && models=$root/exported
if [ "${CHECK:-h200}" = gpu-decode ]; then
  exec bash "$here/gpu-decode-check.sh" "$root/featureonnx" "$out"
fi
exec bash "$here/h200-check.sh" "$root/featureonnx" "$out" "$models"
