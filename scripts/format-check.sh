#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The library's sources and public headers follow .clang-format: list every file that does
# not, and fail. `scripts/format-check.sh --fix` rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null; then
    echo "format check: $cf not found (scripts/deps.sh installs clang-format)" >&2
    exit 1
fi
mapfile -t files < <(git ls-files 'libatomio/*.c' 'libatomio/*.h' 'include/*.h')
if [ "${1:-}" = "--fix" ]; then
    "$cf" -i "${files[@]}"
    exit 0
fi
bad=0
for f in "${files[@]}"; do
    if ! "$cf" --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "format check: $f differs from .clang-format ($cf -i $f)"
        bad=$((bad + 1))
    fi
done
echo "format check: ${#files[@]} files, $bad not formatted"
[ "$bad" -eq 0 ]
