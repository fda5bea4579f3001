#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install dependencies, build libatomio, and run atomio-bench against a scratch file:
# the capability probe, then a short run of the path AUTO picks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/atomio-quickstart.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
bench=build/bench/atomio-bench
"$bench" probe "$scratch" --page-size 16k
"$bench" run "$scratch/data" --path auto --page-size 16k --file-size 64m --pages 4096 \
    --dblwr-dir "$scratch/dblwr"
