#!/bin/sh
# SPDX-License-Identifier: MIT
# measure.sh -- reproduce docs/benchmarks.md: fresh 2 GiB loop-mounted XFS (reflink=1) and ext4,
# then the compare runs whose JSON, SVG and tables the doc shows. Needs root. Mounts live in a
# private mount namespace and are removed on exit, also on failure.
#
# usage: bench/tools/measure.sh BUILD_DIR OUT_DIR   (BUILD_DIR: a Release build)
# environment: IMGDIR where the images live (default /tmp: a disk-backed loop device;
#              /dev/shm gives a RAM-backed one, whose figures are far steadier on a busy
#              machine and show the CPU and syscall cost of each path), REPEAT (default 3),
#              DURATION (default 2s).
set -eu
BUILD=$(cd "$1" && pwd)
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
B=$BUILD/bench
[ "$(id -u)" = 0 ] || { echo "skipped: needs root for loop mounts"; exit 77; }
if [ "${ATOMIO_MEASURE_NS:-}" != 1 ]; then
  ATOMIO_MEASURE_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
T=$(mktemp -d "${IMGDIR:-/tmp}/atomio-measure-XXXXXX")
cleanup() { umount "$T/xfs" 2>/dev/null || true; umount "$T/ext4" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT INT TERM
for fs in xfs ext4; do truncate -s 2G "$T/$fs.img"; mkdir "$T/$fs"; done
mkfs.xfs -q -f -m reflink=1 "$T/xfs.img"
mkfs.ext4 -q -F "$T/ext4.img"
mount -o loop "$T/xfs.img" "$T/xfs"
mount -o loop "$T/ext4.img" "$T/ext4"

# The workload of the speed targets in docs/benchmarks.md: 16 KiB pages, batch 64, queue depth 32.
W="--page-size 16k --batch 64 --qd 32 --duration ${DURATION:-2s} --warmup 1s --repeat ${REPEAT:-3} --file-size 256m"
{ uname -r; echo "images in ${IMGDIR:-/tmp} ($(stat -f -c %T "$T"))"; } > "$OUT/kernel.txt"
for fs in xfs ext4; do
  f=$T/$fs/bench.dat
  # 1. every path the file can do + UNSAFE + the bare loops (submitter auto)
  "$B/atomio-bench" compare "$f" $W --baselines --json --svg "$OUT/$fs-compare.svg" \
      > "$OUT/$fs.json" || echo "$fs: compare exit $?"
  # 2. library overhead: sync submitter against the bare pwritev2 loops
  paths=unsafe; [ $fs = xfs ] && paths=direct,unsafe
  "$B/atomio-bench" compare "$f" $W --submitter sync --paths $paths --baselines --json \
      > "$OUT/$fs-sync.json" || echo "$fs-sync: compare exit $?"
  # 3. DOUBLEWRITE without ATOMIO_WRITE_STABLE_PAGES: every page copied into the segment
  "$B/atomio-bench" compare "$f" $W --copy-pages --paths doublewrite,unsafe --baselines --json \
      > "$OUT/$fs-copy.json" || echo "$fs-copy: compare exit $?"
  "$B/atomio-bench" probe "$f" --page-size 16k > "$OUT/$fs-probe.txt" 2>&1 || true
done
python3 "$(dirname "$0")/json2md.py" "$OUT"/xfs.json "$OUT"/xfs-sync.json "$OUT"/xfs-copy.json \
    "$OUT"/ext4.json "$OUT"/ext4-sync.json "$OUT"/ext4-copy.json > "$OUT/tables.md"
# Paths in the outputs name the temp dir; keep them stable for the docs.
sed -i "s|$T/||g" "$OUT"/*.json "$OUT"/*.svg "$OUT"/*.txt
echo "results in $OUT"
