#!/usr/bin/env bash
# Re-derives the bundled libturbojpeg.so.0 beside this script from Debian bookworm's libturbojpeg0 package and checks
# it against the sha256 in README.md (and in ../../NativeLibraries.targets, which refuses a build without it).
# usage: src/FeatureOnnx/native/linux-x64/fetch-libturbojpeg.sh [--check]   (--check: compare only, change nothing)
# Needs a Debian/Ubuntu machine whose apt sources carry libturbojpeg0 1:2.1.5-2 (Debian 12); no root needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=1:2.1.5-2
expected=4292207ec19b9543d29e13a71263ecd6ad89a28f880e5d201c76cfb168e6d056
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download "libturbojpeg0=$version" >/dev/null
dpkg-deb -x libturbojpeg0_*.deb root
lib=root/usr/lib/x86_64-linux-gnu/libturbojpeg.so.0.2.0
actual=$(sha256sum "$lib" | cut -d' ' -f1)
[ "$actual" = "$expected" ] || { echo "libturbojpeg0 $version gave sha256 $actual, expected $expected" >&2; exit 1; }
if [ "${1:-}" = --check ]; then
  cmp "$lib" "$here/libturbojpeg.so.0" && echo "bundled libturbojpeg.so.0 is libturbojpeg0 $version"
  exit
fi
cp "$lib" "$here/libturbojpeg.so.0"
cp root/usr/share/doc/libturbojpeg0/copyright "$here/libjpeg-turbo-copyright.txt"
echo "wrote $here/libturbojpeg.so.0 (sha256 $actual)"
