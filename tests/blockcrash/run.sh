#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Block-level crash test of libatomio on real XFS and ext4 (see docs/reliability.md).
#
# For every scenario: mkfs a 128 MiB image, serve it through the FUSE recorder, attach it to a
# loop device with direct I/O, mount it, run the workload, then replay crash states from the
# recorder's log and check every page after mount + recovery. Controls (UNSAFE writes, and a
# doublewrite store whose durability step is sabotaged) must show violations, or the run fails.
#
#   run.sh [--bin-dir DIR] [--results DIR] [--states N] [--seed S] [--workers W]
#          [--tear 4096|512] [--fsck] [--only name,name] [--budget SECONDS]
#
# ATOMIO_BLOCKCRASH_STATES (or --states) is the total number of states over all scenarios:
# 3600 by default (CI); e.g. ATOMIO_BLOCKCRASH_STATES=50000 for a long local run.
# ATOMIO_BLOCKCRASH_SEED, ATOMIO_BLOCKCRASH_WORKERS and ATOMIO_BLOCKCRASH_BUDGET (seconds for
# the whole run, 540 by default; 0 = none) do the same as their flags.
# Exit: 0 all scenarios passed, 1 some failed, 77 skipped (the reason is printed).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${BLOCKCRASH_BIN:-$here/../../build/tests}
results=""
states=${ATOMIO_BLOCKCRASH_STATES:-3600}
seed=${ATOMIO_BLOCKCRASH_SEED:-1}
workers=${ATOMIO_BLOCKCRASH_WORKERS:-2}
budget=${ATOMIO_BLOCKCRASH_BUDGET:-540}
tear=4096
fsck=""
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --bin-dir) bin=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --states) states=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --tear) tear=$2; shift 2 ;;
    --fsck) fsck=--fsck; shift ;;
    --only) only=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$results" ] || results=$bin/blockcrash-results

skip() {
    echo "blockcrash skipped: $*"
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (loop devices, mounts, FUSE)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing (no FUSE in this kernel or container)"
[ -c /dev/loop-control ] || skip "/dev/loop-control is missing (no loop devices)"
for t in mkfs.xfs mkfs.ext4 losetup fusermount3 xfs_repair e2fsck; do
    command -v "$t" >/dev/null || skip "$t not installed (scripts/deps.sh installs it)"
done
for b in blockcrash-recorder blockcrash-workload blockcrash-check; do
    [ -x "$bin/$b" ] || { echo "blockcrash: $bin/$b not built" >&2; exit 1; }
done

work=$(mktemp -d /dev/shm/blockcrash.XXXXXX) || exit 1
# The workload's mount points. The workload names its mount point as the store's data root, so
# the manifest records paths relative to it and the checker mounts crash states elsewhere; a
# scenario with --data-root none records absolute paths, and its states are mounted at the
# same path (in the checker's private mount namespaces).
mntroot=/tmp/atomio-blockcrash.$$
mkdir -p "$mntroot" "$results"
rec_pids=()
loops=()
mounts=()
fuses=()

cleanup() {
    local m l f p
    for m in "${mounts[@]}"; do mountpoint -q "$m" && umount -l "$m"; done
    for l in "${loops[@]}"; do losetup "$l" >/dev/null 2>&1 && losetup -d "$l"; done
    for f in "${fuses[@]}"; do mountpoint -q "$f" && fusermount3 -u -z "$f"; done
    for p in "${rec_pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$work" "$mntroot"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkfs_image() { # fstype image
    truncate -s 128M "$2"
    if [ "$1" = xfs ]; then
        # mkfs.xfs 6.1 refuses < 300 MB outside its test harness; these variables say we are one.
        TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 \
            mkfs.xfs -q -f -K -m reflink=1 -l size=8m "$2"
    else
        mkfs.ext4 -q -F -b 4096 -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$2"
    fi
}

# record NAME FSTYPE BASE-IMAGE MOUNT-NAME -- workload args...: run the workload over a
# recorded device mounted at $mntroot/MOUNT-NAME.
record() {
    local name=$1 fs=$2 base=$3 d=$work/$1 mnt=$mntroot/$4
    shift 5
    mkdir -p "$d/fuse" "$mnt"
    cp --sparse=always "$base" "$d/disk.img"
    "$bin/blockcrash-recorder" "$d/disk.img" "$d/log" "$d/fuse" -f -s >"$d/recorder.out" 2>&1 &
    rec_pids+=($!)
    fuses+=("$d/fuse")
    for _ in $(seq 100); do [ -e "$d/fuse/disk.img" ] && break; sleep 0.05; done
    [ -e "$d/fuse/disk.img" ] || { echo "$name: recorder did not start"; cat "$d/recorder.out"; return 1; }
    local loop
    loop=$(losetup --direct-io=on -f --show "$d/fuse/disk.img") || return 1
    loops+=("$loop")
    local mo=""
    [ "$fs" = xfs ] && mo="-o nouuid"
    # shellcheck disable=SC2086
    mount -t "$fs" $mo "$loop" "$mnt" || return 1
    mounts+=("$mnt")
    "$bin/blockcrash-workload" --ctl "$d/fuse/ctl" --data "$mnt/data" --store "$mnt/store" \
        --data-root "$mnt" "$@" >"$d/workload.out" 2>&1
    local rc=$?
    sed "s/^/  $name workload: /" "$d/workload.out"
    umount "$mnt" && losetup -d "$loop" || return 1
    # The loop device lets go of disk.img asynchronously after detach: wait for it.
    # On a loaded machine that has taken over 10 s: allow a minute.
    local i gone=""
    for i in $(seq 600); do
        fusermount3 -u "$d/fuse" 2>/dev/null && { gone=1; break; }
        sleep 0.1
    done
    [ -n "$gone" ] || { echo "$name: FUSE mount still busy after 60 s"; return 1; }
    wait "${rec_pids[-1]}" 2>/dev/null
    rm -f "$d/disk.img"
    [ -s "$d/recorder.out" ] && sed "s/^/  $name recorder: /" "$d/recorder.out"
    return $rc
}

check() { # NAME FSTYPE STATES EXPECT BASE MOUNT-NAME [extra checker args]
    local name=$1 fs=$2 n=$3 expect=$4 base=$5 d=$work/$1 mnt=$mntroot/$6
    shift 6
    local b="" # no --budget at all when the run has none
    if [ "$budget" != 0 ]; then
        b=$((deadline - $(date +%s)))
        [ $b -lt 20 ] && b=20
    fi
    "$bin/blockcrash-check" --base "$base" --log "$d/log" --fstype "$fs" --mnt "$mnt" \
        --store "$mnt/store" --states "$n" --seed "$seed" --workers "$workers" --tear "$tear" \
        --expect "$expect" --name "$name" --results "$results" \
        ${b:+--budget $(( b * weight_left_share / 100 ))} $fsck ${BLOCKCRASH_CHECK_ARGS:-} "$@"
}

# keep_inputs NAME BASE: next to kept failing states, the log and base image they came from
# (state.txt's reproduce line points at them).
keep_inputs() {
    [ -d "$results/$1" ] || return 0
    cp --sparse=always "$2" "$results/$1/base.img"
    cp "$work/$1/log" "$results/$1/log"
}

passed=0
failed=0
summary=()
verdict() { # NAME RC
    if [ "$2" = 0 ]; then passed=$((passed + 1)); summary+=("PASS $1"); else failed=$((failed + 1)); summary+=("FAIL $1"); fi
}
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

# Scenarios: name fstype weight expect workload-args. Weights share out the states.
# xfs-doublewrite records absolute paths (--data-root none), the others paths relative to the
# mount point.
scenarios=(
    "xfs-direct xfs 5 ok --path direct --page-sizes 4096,8192,16384 --threads 2 --reopen"
    "ext4-doublewrite ext4 5 ok --path doublewrite --page-sizes 4096,8192,16384 --threads 2 --reopen"
    "xfs-doublewrite xfs 4 ok --path doublewrite --page-sizes 16384,8192 --threads 2 --data-root none"
    "xfs-downgrade xfs 2 ok --path direct --page-sizes 16384 --threads 1 --fill"
    "ext4-deferred ext4 4 ok --path doublewrite --dw-mode deferred --page-sizes 4096,8192,16384 --threads 2 --reopen"
    "xfs-deferred xfs 3 ok --path doublewrite --dw-mode deferred --page-sizes 16384,8192 --threads 2 --sync-every 24 --rounds 10"
    "ext4-multiproc ext4 4 ok --path doublewrite --dw-mode deferred --page-sizes 4096,8192,16384 --procs 3"
    "xfs-multiproc xfs 2 ok --path doublewrite --dw-mode deferred --page-sizes 16384,8192 --procs 2 --sync-every 24 --rounds 10"
    "ext4-write-behind ext4 3 ok --path doublewrite --dw-mode write-behind --page-sizes 8192,16384 --procs 3"
    "control-unsafe xfs 2 violation --path unsafe --page-sizes 8192,16384 --threads 2"
    "control-sabotage ext4 2 violation --path doublewrite --page-sizes 16384,8192 --threads 2 --sabotage"
    "control-fake-sync ext4 1 violation --path unsafe --page-sizes 4096 --threads 2 --fake-sync"
    "control-deferred-sync ext4 1 violation --path doublewrite --dw-mode deferred --page-sizes 4096 --threads 2 --sabotage --fake-sync"
)
recovery_weight=2
total_weight=$recovery_weight
for s in "${scenarios[@]}"; do set -- $s; want "$1" && total_weight=$((total_weight + $3)); done

start=$(date +%s)
deadline=$((start + budget))
weight_done=0
echo "blockcrash: $states states over all scenarios, seed $seed, $workers workers, tear $tear B," \
     "budget ${budget}s, results in $results"
for s in "${scenarios[@]}"; do
    set -- $s
    name=$1 fs=$2 weight=$3 expect=$4
    shift 4
    want "$name" || continue
    echo "== $name ($fs): $*"
    n=$((states * weight / total_weight))
    weight_left_share=$((100 * weight / (total_weight - weight_done)))
    weight_done=$((weight_done + weight))
    mkdir -p "$work/$name"
    base=$work/$name/base.img
    mkfs_image "$fs" "$base" || { verdict "$name" 1; continue; }
    if ! record "$name" "$fs" "$base" "$name" -- "$@" --seed "$seed"; then
        echo "$name: recording failed"
        verdict "$name" 1
        continue
    fi
    if [ "$name" = xfs-downgrade ] && ! grep -q '^downgrades=[1-9]' "$work/$name/workload.out"; then
        echo "$name: the full filesystem did not make XFS refuse an atomic write (no downgrade);" \
             "the scenario cannot test what it is for"
        verdict "$name" 1
        continue
    fi
    rm -rf "${results:?}/$name"
    extra=()
    [ "$name" = ext4-doublewrite ] && extra=(--save-recovery-base "$work/recovery-base.img")
    check "$name" "$fs" "$n" "$expect" "$base" "$name" "${extra[@]}"
    rc=$?
    keep_inputs "$name" "$base"
    verdict "$name" $rc
done

# Crash during recovery: the ext4-doublewrite crash state whose recovery restored the most
# pages (live batches, torn or old pages in place) is the starting image; a recovery run over
# it is recorded and crashed in turn. Every page must still be one version its phase-one state
# allowed, and, once recovery has returned, the version recovery left.
if want recovery-crash; then
    name=recovery-crash
    echo "== $name (ext4): recovery over a crash state with live batches, crashed"
    weight=$recovery_weight
    weight_left_share=100
    n=$((states * weight / total_weight))
    rb=$work/recovery-base.img
    if [ ! -s "$rb" ]; then
        echo "$name: no recovery base (ext4-doublewrite did not run, or none of its states had pages to restore)"
        verdict "$name" 1
    else
        mkdir -p "$work/$name"
        rm -rf "${results:?}/$name"
        # The files of that state live under ext4-doublewrite's mount point: use that path.
        if record "$name" ext4 "$rb" ext4-doublewrite -- --mode recover \
            --page-sizes 4096,8192,16384 --pages 24; then
            check "$name" ext4 "$n" ok "$rb" ext4-doublewrite --constraints "$rb.constraints"
            rc=$?
            keep_inputs "$name" "$rb"
            [ -d "$results/$name" ] && cp "$rb.constraints" "$results/$name/"
            verdict "$name" $rc
        else
            echo "$name: recording failed"
            verdict "$name" 1
        fi
    fi
fi

echo
for l in "${summary[@]}"; do echo "  $l"; done
echo "blockcrash: total $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
