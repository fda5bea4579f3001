#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install everything libatomio needs to build, test and benchmark on Debian 12 (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config git ca-certificates \
    liburing-dev libnuma-dev libjemalloc-dev libcriterion-dev \
    xfsprogs e2fsprogs util-linux kmod fuse3 libfuse3-dev \
    clang clang-format libclang-rt-14-dev \
    python3 python3-pytest python3-setuptools python3-pip python3-venv cargo \
    groff-base man-db binutils >/dev/null
