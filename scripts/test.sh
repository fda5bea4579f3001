#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite, as CI runs it: dependencies, a -Werror build, every CTest suite
# (filesystem suites make their own loop mounts as root and skip with a reason otherwise),
# then the ASan+UBSan and TSan builds of the unit and filesystem suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)

step() { printf '\n==== %s\n' "$*"; }

step "format: the library and its headers follow .clang-format"
bash scripts/format-check.sh

step "build (warnings are errors)"
cmake -S . -B build-ci -DATOMIO_WERROR=ON -DATOMIO_REQUIRE_ALL_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-ci -j"$jobs"
step "all suites"
ctest --test-dir build-ci --output-on-failure -j"$jobs"

step "jemalloc build: page buffers from a private arena"
cmake -S . -B build-ci-je -DATOMIO_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DATOMIO_WITH_JEMALLOC=ON >/dev/null
cmake --build build-ci-je -j"$jobs"
ctest --test-dir build-ci-je --output-on-failure -j"$jobs" -L 'unit|root|fs|threads'

step "ASan+UBSan: unit and filesystem suites"
cmake -S . -B build-asan -DATOMIO_WERROR=ON -DCMAKE_BUILD_TYPE=Asan >/dev/null
cmake --build build-asan -j"$jobs"
# The block-level harness's own tools are not what this build checks (its checker runs the
# library's recovery, which the root suites cover here); the plain build runs it.
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$jobs" \
    -L 'unit|root|fs' -LE blockcrash

step "TSan: unit and thread suites"
cmake -S . -B build-tsan -DATOMIO_WERROR=ON -DCMAKE_BUILD_TYPE=Tsan -DATOMIO_BUILD_BENCH=OFF >/dev/null
cmake --build build-tsan -j"$jobs"
# The long suites are the single-threaded crash simulators and kill loops: nothing for TSan to
# see, and ten times slower under it. The plain and ASan+UBSan builds run them.
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j"$jobs" \
    -L 'unit|threads' -LE long

step "clang build: unit suites and a short libFuzzer run over the doublewrite store parser"
CC=clang cmake -S . -B build-fuzz -DATOMIO_WERROR=ON -DATOMIO_BUILD_FUZZ=ON \
    -DATOMIO_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$jobs"
ctest --test-dir build-fuzz --output-on-failure -j"$jobs" -L 'unit|fuzz'

step "done"
