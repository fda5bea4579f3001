#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Block-level crash test of PostgreSQL: torn pages, which a process kill cannot make.
#
# A fresh filesystem image holds a cluster (initdb -k, pgbench -i, made before recording).
# It is served through the FUSE recorder (tests/blockcrash/recorder.c) under a loop device with
# direct I/O, so every block write and flush the kernel sends is logged in order. While
# recording, pgbench -c 4 -j 2 runs with CHECKPOINTs every few seconds (checkpoints are where
# the data pages are written), then the cluster is killed. blockcrash-state then builds crash
# states from the log -- the image as of one flush plus a subset of the writes after it, one
# write possibly torn into 4 KiB pieces (docs/reliability.md) -- and each state is mounted and
# checked: PostgreSQL starts (crash recovery), pg_amcheck --heapallindexed, pgbench's invariant
# and row counts, a clean stop, pg_checksums --check.
#
#   blockcrash.sh [--bin DIR] [--atomio on|off] [--write-behind on|off] [--control] [--states N] [--seed S]
#                 [--fs ext4|xfs] [--scale N] [--duration S] [--workers W] [--fpw on|off]
#                 [--tools DIR] [--keep DIR] [--from-start] [--uniform]
#
# Default: atomio=on (write-behind; --write-behind off: deferred), full_page_writes=off; 0
# damaged states or it fails. --control: the same
# with atomio=off (or binaries without the GUC), i.e. stock PostgreSQL without torn-page
# protection; it must show damage in at least one state, or the harness cannot fail and the
# control fails. --fpw on (with --atomio off) is PostgreSQL's own protection, full-page images
# in the WAL: it must pass. --tools: where blockcrash-recorder and blockcrash-state are
# (default build/tests, ATOMIO_BLOCKCRASH_BIN). --keep DIR keeps the log, the base image and
# the server logs of damaged states. --from-start draws states from the server's start-up on,
# not only from once it is up. On ext4, up to half the states are picked among those that tear
# a write to a relation file (see step 3); --uniform checks the generator's states as drawn.
# Exit: 0 passed, 1 failed, 77 cannot run here (the reason is printed).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
pg_prog=blockcrash.sh

# ---- one crash state (run by blockcrash-state for each image, in the worker's namespace) ----
if [ "${1:-}" = --check-state ]; then
    k=$BC_JOB
    pg_bin=$BCPG_BIN
    scale=$BCPG_SCALE
    mnt=$BCPG_MNT
    data=$mnt/pg/data
    res=$BCPG_WORK/results.$k
    sock=$BCPG_WORK/sock.$k
    port=$((BCPG_PORT + 1 + k))
    t0=$(pg_now)
    verdict() { # VERDICT MESSAGE
        local line
        line=$(printf 'state %3s: %-8s %s -- %s (%s s)' "$BC_STATE" "$1" "$2" "$BC_STATE_DESC" "$(pg_since "$t0")")
        echo "$line"
        echo "$line" >>"$res"
        if [ "$1" != ok ] && [ -n "${BCPG_KEEP:-}" ] && [ -f "$mnt/pg/server.log" ]; then
            cp "$mnt/pg/server.log" "$BCPG_KEEP/state-$BC_STATE.server.log"
        fi
    }
    finish() {
        [ -f "$data/postmaster.pid" ] && pg_as "$pg_bin/pg_ctl" stop -m immediate -w -D "$data" >/dev/null 2>&1
        pg_umount "$mnt" || { echo "state $BC_STATE: cannot unmount $mnt" >&2; exit 2; }
    }
    # On ext4, name the file the torn write belongs to (debugfs on the unmounted image).
    torn_off=$(echo "$BC_STATE_DESC" | sed -n 's/.*torn=record [0-9]* (\([0-9]*\)+.*/\1/p')
    if [ -n "$torn_off" ] && [ "$BCPG_FS" = ext4 ] && command -v debugfs >/dev/null; then
        ino=$(debugfs -R "icheck $((torn_off / 4096))" "$BC_STATE_IMG" 2>/dev/null | awk 'NR == 2 { print $2 }')
        case "$ino" in
        '' | *[!0-9]*) BC_STATE_DESC="$BC_STATE_DESC [filesystem metadata]" ;;
        *) f=$(debugfs -R "ncheck $ino" "$BC_STATE_IMG" 2>/dev/null | awk 'NR == 2 { print $2 }')
           [ "$ino" = 8 ] && f="ext4 journal"
           BC_STATE_DESC="$BC_STATE_DESC [${f:-inode $ino}]"
           BC_STATE_DESC=${BC_STATE_DESC/\[\/pg\/data\//[} ;;
        esac
    fi
    o=()
    [ "$BCPG_FS" = xfs ] && o=(-o nouuid)
    if ! mount -t "$BCPG_FS" "${o[@]}" -o loop "$BC_STATE_IMG" "$mnt" 2>/dev/null; then
        verdict mount-failure "the filesystem refused to mount"
        exit 0
    fi
    # The recording's server was killed: its pid file names a process that is gone.
    rm -f "$data/postmaster.pid"
    printf 'PGPORT=%s\nPGHOST=%s\nexport PGPORT PGHOST\n' "$port" "$sock" >"$mnt/pg/pgtest.env"
    : >"$mnt/pg/server.log"
    if ! pg_start "$data" 120 "-p $port -k $sock"; then
        why=$(grep -E 'FATAL|PANIC|invalid page|checksum' "$mnt/pg/server.log" | head -3 | sed 's/^[0-9-]* [0-9:.]* [A-Z]* \[[0-9]*\] //' | tr '\n' ' ')
        verdict DAMAGE "start (crash recovery) failed: ${why:-no reason in the server log}"
        finish
        exit 0
    fi
    if ! pg_check "$data" "$scale"; then
        verdict DAMAGE "$pg_check_msg"
        finish
        exit 0
    fi
    msg=$pg_check_msg
    redo=$(grep -c 'redo starts at' "$mnt/pg/server.log")
    if ! pg_stop "$data"; then
        verdict DAMAGE "clean stop failed: $(grep -E 'FATAL|PANIC|ERROR' "$mnt/pg/server.log" | tail -2 | tr '\n' ' ')"
        finish
        exit 0
    fi
    if ! pg_checksums_check "$data"; then
        verdict DAMAGE "pg_checksums: $pg_checksums_msg"
        finish
        exit 0
    fi
    verdict ok "$msg, pg_checksums ok, redo $redo"
    finish
    exit 0
fi

# ---- the run ----
control=0
states=${ATOMIO_PG_STATES:-50}
seed=1
fs=ext4
scale=2
duration=30
workers=2
fpw=off
tools=${ATOMIO_BLOCKCRASH_BIN:-$here/../../../build/tests}
keep=""
from_start=0
uniform=0
pool_factor=8
pg_bin=""
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) pg_bin=$2; shift 2 ;;
    --atomio) pg_atomio_mode=$2; pg_atomio_given=1; shift 2 ;;
    --write-behind) pg_write_behind=$2; pg_write_behind_given=1; shift 2 ;;
    --control) control=1; shift ;;
    --states) states=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --fs) fs=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --fpw) fpw=$2; shift 2 ;;
    --tools) tools=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --from-start) from_start=1; shift ;;
    --uniform) uniform=1; shift ;;
    *) echo "blockcrash.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$pg_bin" ] || pg_bin=$(pg_default_bin)
[ "$control" = 1 ] && pg_atomio_mode=off
case "$fs" in ext4 | xfs) ;; *) echo "--fs ext4|xfs" >&2; exit 2 ;; esac
case "$pg_write_behind" in on | off) ;; *) echo "--write-behind on|off" >&2; exit 2 ;; esac
pg_preflight mkfs.xfs mkfs.ext4 fusermount3
[ -c /dev/fuse ] || pg_skip "/dev/fuse is missing (no FUSE in this kernel or container)"
for t in blockcrash-recorder blockcrash-state; do
    [ -x "$tools/$t" ] || { echo "blockcrash.sh: $tools/$t not built (cmake --build build --target $t)" >&2; exit 1; }
done
tools=$(cd "$tools" && pwd)

work=$(mktemp -d /dev/shm/atomio-pgbc.XXXXXX) || exit 1
chmod 755 "$work"
pg_tmpdirs+=("$work")
mnt=/tmp/atomio-pgbc.$$
pg_tmpdirs+=("$mnt")
trap pg_cleanup EXIT
trap 'exit 130' INT TERM
[ -n "$keep" ] && mkdir -p "$keep" && keep=$(cd "$keep" && pwd)

if [ "$pg_has_atomio" = 1 ]; then
    protection=$(pg_mode_note)
else
    protection="stock PostgreSQL (no atomio GUC)"
    [ "$control" = 1 ] || [ "$fpw" = on ] ||
        echo "blockcrash.sh: WARNING: these binaries have no atomio GUC and full_page_writes=off:" \
            "nothing protects the pages, damage is expected"
fi
name=blockcrash
[ "$control" = 1 ] && name="blockcrash --control"
t_start=$(pg_now)
echo "$name: $pg_bin ($("$pg_bin/postgres" --version)), $protection, full_page_writes=$fpw, $fs," \
    "scale $scale, ${duration}s of pgbench, $states states, seed $seed, $workers workers"

port=5450
# synchronous_commit=off and a 1 s WAL writer: a flush per commit would make almost every
# flush interval one WAL write, and few states would fall where checkpoints write data pages.
settings=("full_page_writes = $fpw" "synchronous_commit = off" "wal_writer_delay = 1s")

# 1. The base image: a cluster with pgbench's tables, cleanly stopped.
t0=$(pg_now)
pg_mkfs "$fs" "$work/base.img" 512M || exit 1
pg_mount "$fs" "$work/base.img" "$mnt" || exit 1
chmod 755 "$mnt"
mkdir -p "$mnt/pg"
pg_init "$mnt/pg/data" $port "${settings[@]}" || exit 1
pg_start "$mnt/pg/data" || { echo "first start failed"; exit 1; }
[ "$pg_has_atomio" = 1 ] && echo "  atomio: $(pg_sql "$mnt/pg/data" "SHOW atomio" postgres)$([ "$pg_has_write_behind" = 1 ] &&
    echo ", atomio_write_behind: $(pg_sql "$mnt/pg/data" "SHOW atomio_write_behind" postgres)")"
pg_setup_db "$mnt/pg/data" "$scale" || exit 1
pg_check "$mnt/pg/data" "$scale" || { echo "the base cluster fails its checks: $pg_check_msg"; exit 1; }
pg_stop "$mnt/pg/data" || exit 1
pg_umount "$mnt" || exit 1
echo "  base image (mkfs, initdb -k, pgbench -i -s $scale): $(pg_since "$t0") s"

# 2. Recording: the image through the recorder, a loop device with direct I/O, pgbench.
t0=$(pg_now)
mkdir -p "$work/fuse"
cp --sparse=always "$work/base.img" "$work/disk.img"
"$tools/blockcrash-recorder" "$work/disk.img" "$work/log" "$work/fuse" -f -s >"$work/recorder.out" 2>&1 &
pg_daemons+=($!)
rec_pid=$!
pg_fuses+=("$work/fuse")
for _ in $(seq 100); do [ -e "$work/fuse/disk.img" ] && break; sleep 0.05; done
[ -e "$work/fuse/disk.img" ] || { echo "the recorder did not start:"; cat "$work/recorder.out"; exit 1; }
loop=$(losetup --direct-io=on -f --show "$work/fuse/disk.img") || exit 1
pg_loops+=("$loop")
pg_mount "$fs" "$loop" "$mnt" || exit 1
data=$mnt/pg/data
# Crash states start at the flush before the G marker: by default once the server is up (its
# start-up is not what this tests, and with atomio it makes a few hundred flushes of its own).
[ "$from_start" = 1 ] && echo G >"$work/fuse/ctl"
pg_start "$data" || { echo "start on the recorded device failed"; tail -3 "$mnt/pg/server.log"; exit 1; }
[ "$from_start" = 1 ] || echo G >"$work/fuse/ctl"
pg_bench "$data" -n -c 4 -j 2 -T "$duration" >"$work/pgbench.out" 2>&1 &
bpid=$!
every=$(( (duration + 5) / 6 ))
ncp=0
for ((s = every; s < duration; s += every)); do
    sleep "$every"
    pg_sql "$data" "CHECKPOINT" && ncp=$((ncp + 1))
done
wait $bpid || { echo "pgbench failed:"; tail -5 "$work/pgbench.out"; exit 1; }
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.out" | head -1)
pg_check "$data" "$scale" || { echo "the recorded cluster fails its checks before the crash: $pg_check_msg"; exit 1; }
echo "  recorded: pgbench $tps tps, $pg_check_msg, $ncp CHECKPOINTs + timed ones:" \
    "$(grep -c 'checkpoint complete' "$mnt/pg/server.log") checkpoints in the server log"
pg_kill "$data" || exit 1 # the recording ends in a crash, not a shutdown checkpoint
pg_umount "$mnt" || exit 1
losetup -d "$loop" || exit 1
# The loop device lets go of the FUSE file asynchronously after the detach.
for i in $(seq 300); do
    fusermount3 -u "$work/fuse" 2>"$work/fusermount.err" && break
    sleep 0.1
done
if [ "$i" = 300 ]; then
    echo "the FUSE mount is still busy: $(cat "$work/fusermount.err")"
    losetup -a | grep -F "$work" | sed 's/^/  /'
    exit 1
fi
wait "$rec_pid"
[ -s "$work/recorder.out" ] && sed 's/^/  recorder: /' "$work/recorder.out"
echo "  recording: $(pg_since "$t0") s, log $(( $(stat -c %s "$work/log") >> 20 )) MiB"
if [ -n "$keep" ]; then
    cp --sparse=always "$work/base.img" "$keep/base.img"
    cp "$work/log" "$keep/log"
fi

# 3. Which states. Drawn uniformly, most torn writes are WAL, journal or (with atomio) store
# writes; those that tear a data page are what this test is about. On ext4 the states come
# from a draw $pool_factor times larger: up to half of them are states whose torn write belongs
# to a relation file (named by debugfs on the final image), the rest are spread evenly over the
# draw. Elsewhere, or with --uniform, the draw is the states.
t0=$(pg_now)
draw=$states # states asked of the generator
pick=()
if [ "$uniform" = 0 ] && [ "$fs" = ext4 ] && command -v debugfs >/dev/null; then
    draw=$((states * pool_factor))
    "$tools/blockcrash-state" --base "$work/base.img" --log "$work/log" --states "$draw" \
        --seed "$seed" --list >"$work/draw.txt" || exit 1
    ndraw=$(grep -c '^state ' "$work/draw.txt") # fewer when duplicates were skipped
    # index and 4 KiB block of every torn write
    sed -n 's/^state \([0-9]*\): .*torn=record [0-9]* (\([0-9]*\)+.*/\1 \2/p' "$work/draw.txt" |
        awk '{ print $1, int($2 / 4096) }' >"$work/torn.txt"
    if [ -s "$work/torn.txt" ]; then
        debugfs -R "icheck $(cut -d' ' -f2 "$work/torn.txt" | tr '\n' ' ')" "$work/disk.img" 2>/dev/null |
            awk 'NR > 1 && $2 ~ /^[0-9]+$/ { print $1, $2 }' >"$work/blk-ino.txt"
        debugfs -R "ncheck $(cut -d' ' -f2 "$work/blk-ino.txt" | sort -u | tr '\n' ' ')" "$work/disk.img" 2>/dev/null |
            awk 'NR > 1 { print $1, $2 }' >"$work/ino-path.txt"
        # state indices whose torn write is in a relation file
        awk 'FILENAME ~ /ino-path/ { if ($2 ~ "^/pg/data/(base|global)/") rel[$1] = 1; next }
             FILENAME ~ /blk-ino/ { if ($2 in rel) relblk[$1] = 1; next }
             ($2 in relblk) { print $1 }' "$work/ino-path.txt" "$work/blk-ino.txt" "$work/torn.txt" \
            >"$work/rel.txt"
    else
        : >"$work/rel.txt"
    fi
    # evenly spaced: M of the N lines of a list
    spread() { awk -v m="$1" '{ a[NR] = $1 } END { n = NR; if (m > n) m = n; for (k = 0; k < m; k++) print a[int(k * n / m) + 1] }'; }
    spread $((states / 2)) <"$work/rel.txt" >"$work/pick.txt"
    nrel=$(wc -l <"$work/pick.txt")
    seq 0 $((ndraw - 1)) | grep -vxF -f "$work/pick.txt" | spread $((states - nrel)) >>"$work/pick.txt"
    mapfile -t pick < <(sort -n "$work/pick.txt")
    echo "  drew $ndraw states: $(wc -l <"$work/torn.txt") with a torn write, $(wc -l <"$work/rel.txt") of them" \
        "to a relation file; checking $nrel of those and $(( ${#pick[@]} - nrel )) others spread over the draw"
fi
rm -f "$work/disk.img"
pick_arg=()
[ ${#pick[@]} -gt 0 ] && pick_arg=(--pick "$(IFS=,; echo "${pick[*]}")")

# 4. The crash states, checked by $workers jobs of blockcrash-state, each in a mount namespace
# of its own (so all mount at the recording's path) with an image, a port and a socket
# directory of its own. The states are generated once.
export BCPG_BIN=$pg_bin BCPG_SCALE=$scale BCPG_MNT=$mnt BCPG_WORK=$work BCPG_FS=$fs \
    BCPG_PORT=$port BCPG_KEEP=$keep
for ((k = 0; k < workers; k++)); do
    mkdir -p "$work/sock.$k"
    chown "$pg_user" "$work/sock.$k"
    : >"$work/results.$k"
done
"$tools/blockcrash-state" --base "$work/base.img" --log "$work/log" --states "$draw" \
    --seed "$seed" "${pick_arg[@]}" --jobs "$workers" --out "$work/state.img" \
    --run "bash '$here/blockcrash.sh' --check-state" 2>&1 | tee "$work/states.out" |
    sed -u -e '/^state /s/^/  /' -e "/^blockcrash-state/s/^/  /"
werr=$? # blockcrash-state's status (pipefail)
checked=$(cat "$work"/results.* | wc -l)
ok=$(cat "$work"/results.* | grep -c '^state *[0-9]*: ok ')
damage=$(cat "$work"/results.* | grep -c '^state *[0-9]*: DAMAGE ')
mountfail=$(cat "$work"/results.* | grep -c '^state *[0-9]*: mount-failure ')
total=$(sed -n 's/^blockcrash-state: log .*; \([0-9]*\) states (\([0-9]*\) with a torn write.*/\1/p' "$work/states.out" | head -1)
[ ${#pick[@]} -gt 0 ] && total=${#pick[@]}
torn_states=$(cat "$work"/results.* | grep -c 'kind=torn')
# On ext4 the state lines name the file of the torn write: relation files are data pages.
torn_rel=$(cat "$work"/results.* | grep -c ' \[\(base\|global\)/')
torn_rel_bad=$(cat "$work"/results.* | grep ': DAMAGE ' | grep -c ' \[\(base\|global\)/')
echo "  states: $(pg_since "$t0") s"

el=$(pg_since "$t_start")
rel=""
[ "$fs" = ext4 ] && rel=", $torn_rel of them to a relation file ($torn_rel_bad of those damaged)"
summary="$checked states checked ($torn_states with a torn write$rel): ok $ok, damaged $damage, mount-failure $mountfail; $el s"
if [ "$werr" != 0 ] || [ -z "$total" ] || [ "$checked" -lt "$total" ]; then
    echo "$name: FAIL: a worker failed or states were not checked: $summary"
    exit 1
fi
if [ "$control" = 1 ]; then
    if [ "$damage" -gt 0 ]; then
        echo "$name: PASS: stock PostgreSQL with full_page_writes=off showed torn-page damage: $summary"
        exit 0
    fi
    echo "$name: FAIL: no state showed damage, the harness cannot fail: $summary"
    exit 1
fi
if [ "$damage" = 0 ] && [ "$mountfail" = 0 ]; then
    echo "$name: PASS: $summary"
    exit 0
fi
echo "$name: FAIL: $summary"
exit 1
