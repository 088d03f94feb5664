#!/usr/bin/env bash
# The README's two set-up commands: `scripts/setup.sh demo` runs the main job on the default
# model, `scripts/setup.sh test` the test suite. A fresh Debian machine with Swift has no make, so
# this first installs what is missing (make and the Debian packages the build needs, through
# scripts/install-deps.sh), then runs `make TARGET`, which fetches the default model into the
# cache unless it is there, builds, and runs the job or the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    echo "usage: scripts/setup.sh demo|test [more make arguments]" >&2
    exit 64
fi
scripts/install-deps.sh
exec make "$@"
