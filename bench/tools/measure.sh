#!/bin/sh
# SPDX-License-Identifier: MIT
# measure.sh -- reproduce docs/benchmarks.md: fresh 2 GiB loop-mounted XFS (reflink=1) and ext4,
# then the compare runs whose JSON, SVG and tables the doc shows. Needs root. Mounts live in a
# private mount namespace and are removed on exit, also on failure.
#
# usage: bench/tools/measure.sh BUILD_DIR OUT_DIR
# environment: IMGDIR where the images live (default /tmp: a disk-backed loop device;
#              /dev/shm gives a RAM-backed one, whose figures are far steadier on a busy
#              machine and show the CPU and syscall cost of each path), REPEAT (default 5),
#              DURATION (default 2s), FS (default "xfs ext4").
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

W="--qd 32 --duration ${DURATION:-2s} --warmup 1s --repeat ${REPEAT:-5} --file-size 256m"
{ uname -r; echo "images in ${IMGDIR:-/tmp} ($(stat -f -c %T "$T"))"; } > "$OUT/kernel.txt"
for fs in ${FS:-xfs ext4}; do
  f16=$T/$fs/bench16k.dat
  f8=$T/$fs/bench8k.dat
  # 1. per-batch durable (the default, InnoDB-like): every path + UNSAFE + the bare loops
  "$B/atomio-bench" compare "$f16" $W --page-size 16k --batch 64 --baselines --json \
      --svg "$OUT/$fs-batch.svg" > "$OUT/$fs-batch.json" || echo "$fs-batch: exit $?"
  # 2. deferred durability, one writer, batch 64, engine sync every 4096 pages: 16 KiB O_DIRECT
  "$B/atomio-bench" compare "$f16" $W --page-size 16k --batch 64 --direct --sync every:4096 \
      --paths doublewrite,unsafe --baselines --json > "$OUT/$fs-deferred-16k-direct.json" \
      || echo "$fs-deferred-16k-direct: exit $?"
  # 3. the same with 8 KiB buffered pages
  "$B/atomio-bench" compare "$f8" $W --page-size 8k --batch 64 --buffered --sync every:4096 \
      --paths doublewrite,unsafe --baselines --json > "$OUT/$fs-deferred-8k-buffered.json" \
      || echo "$fs-deferred-8k-buffered: exit $?"
  # 4. page-at-a-time buffered writers: 4 processes on one store, engine sync every 4096 pages
  "$B/atomio-bench" compare "$f8" $W --page-size 8k --batch 1 --buffered --processes 4 \
      --sync every:4096 --store-size 256m --paths doublewrite,unsafe --json \
      > "$OUT/$fs-procs4-batch1.json" || echo "$fs-procs4-batch1: exit $?"
  # 5-7. runs 2-4 in write-behind mode (pages staged in shared memory, written in rounds)
  "$B/atomio-bench" compare "$f16" $W --page-size 16k --batch 64 --direct --sync every:4096 \
      --write-behind --paths doublewrite,unsafe --baselines --json \
      > "$OUT/$fs-wb-16k-direct.json" || echo "$fs-wb-16k-direct: exit $?"
  "$B/atomio-bench" compare "$f8" $W --page-size 8k --batch 64 --buffered --sync every:4096 \
      --write-behind --paths doublewrite,unsafe --baselines --json \
      > "$OUT/$fs-wb-8k-buffered.json" || echo "$fs-wb-8k-buffered: exit $?"
  "$B/atomio-bench" compare "$f8" $W --page-size 8k --batch 1 --buffered --processes 4 \
      --sync every:4096 --store-size 256m --write-behind --paths doublewrite,unsafe --json \
      > "$OUT/$fs-wb-procs4-batch1.json" || echo "$fs-wb-procs4-batch1: exit $?"
  # 8-9. runs 2-3 with the bench's own io_uring driving the library (an engine's ring: two
  # batches in flight, the staged doublewrite protocol)
  "$B/atomio-bench" compare "$f16" $W --page-size 16k --batch 64 --direct --sync every:4096 \
      --submitter engine --paths doublewrite,unsafe --baselines --json \
      > "$OUT/$fs-engine-16k-direct.json" || echo "$fs-engine-16k-direct: exit $?"
  "$B/atomio-bench" compare "$f8" $W --page-size 8k --batch 64 --buffered --sync every:4096 \
      --submitter engine --paths doublewrite,unsafe --baselines --json \
      > "$OUT/$fs-engine-8k-buffered.json" || echo "$fs-engine-8k-buffered: exit $?"
  "$B/atomio-bench" probe "$f16" --page-size 16k > "$OUT/$fs-probe.txt" 2>&1 || true
done
# Each run once, in the order the doc shows them (the -wb-procs4 runs match two patterns).
ls "$OUT"/*-batch.json "$OUT"/*-deferred-*.json "$OUT"/*-procs4-*.json "$OUT"/*-wb-*.json \
  "$OUT"/*-engine-*.json 2>/dev/null \
  | awk '!seen[$0]++' | xargs python3 "$(dirname "$0")/json2md.py" > "$OUT/tables.md"
# Paths in the outputs name the temp dir; keep them stable for the docs.
sed -i "s|$T/||g" "$OUT"/*.json "$OUT"/*.svg "$OUT"/*.txt
echo "results in $OUT"
