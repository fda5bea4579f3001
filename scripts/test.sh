#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite, as CI runs it: dependencies, a -Werror build, every CTest suite
# (filesystem suites make their own loop mounts as root and skip with a reason otherwise),
# a patched PostgreSQL 15 built on the library and crash-tested (ATOMIO_CI_POSTGRESQL=0 skips
# it), then the ASan+UBSan and TSan builds of the unit and filesystem suites.
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

# PostgreSQL 15 on libatomio (bench/engines/postgresql): build the patched server against the
# library just built, then the short crash tests: 20 whole-cluster SIGKILLs with recovery and
# checks, and the block-level run (torn pages) with its negative control (stock PostgreSQL
# without full-page writes must show damage). ATOMIO_CI_POSTGRESQL=0 leaves this step out, for
# a quick local run; CI always runs it. A script that cannot run here exits 77 and says why.
pg_step() {
    local rc=0
    "$@" || rc=$?
    if [ "$rc" = 77 ]; then
        echo "(skipped: the reason is printed above)"
    elif [ "$rc" != 0 ]; then
        echo "FAILED ($rc): $*"
        return 1
    fi
}
if [ "${ATOMIO_CI_POSTGRESQL:-1}" != 0 ]; then
    step "PostgreSQL 15 on libatomio: build"
    export ATOMIO_PG_CACHE=$PWD/build-ci-pg
    bash bench/engines/postgresql/build.sh --atomio-build build-ci
    pgbin=$ATOMIO_PG_CACHE/install/bin
    step "PostgreSQL: process-kill crash test (ext4 and XFS)"
    pg_step bash bench/engines/postgresql/crash.sh --bin "$pgbin" --atomio on --kills "${ATOMIO_PG_KILLS:-20}"
    step "PostgreSQL: block-level crash test, torn pages (libatomio, full_page_writes=off)"
    pg_step bash bench/engines/postgresql/blockcrash.sh --bin "$pgbin" --atomio on --tools build-ci/tests
    step "PostgreSQL: block-level negative control (stock, full_page_writes=off, must show damage)"
    pg_step bash bench/engines/postgresql/blockcrash.sh --control --bin "$pgbin" --tools build-ci/tests
fi

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
