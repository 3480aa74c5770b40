#!/usr/bin/env bash
# Installs what the test suite needs on a clean Debian/Ubuntu machine (run as root, or it uses sudo):
#  (not libturbojpeg0: the PIL-exact JPEG decoder ships with the repository, src/FeatureOnnx/native/linux-x64, and the
#   tests check that every build uses that copy)
#  - python3-torch, -torchvision, -onnx, -sklearn, -pil: export-scripts/ and the PyTorch parity check (Debian's torch 1.13)
#  - gcc: builds the fake CUDA libraries of tests/FeatureOnnx.Tests/fixtures/cuda-stub (broken-CUDA tests without a GPU)
set -euo pipefail
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
pkgs="gcc python3-torch python3-torchvision python3-onnx python3-sklearn python3-pil python3-numpy"
missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "installing: $missing"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "setup: all test prerequisites present"
