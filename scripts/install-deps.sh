#!/usr/bin/env bash
# Installs the Debian packages the build needs (make, zlib and OpenBLAS headers, unzip and pip for
# the model), only those missing.
set -euo pipefail

missing=()
for pkg in make zlib1g-dev libopenblas-dev unzip; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v swift >/dev/null || { echo "swift not found: install Swift 6 (https://www.swift.org/install/)" >&2; exit 69; }
command -v pip3 >/dev/null || command -v pip >/dev/null || missing+=("python3-pip")
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
else
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 69
fi
