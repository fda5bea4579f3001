#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Throughput and write-volume measurement of PostgreSQL on libatomio against stock PostgreSQL.
#
# On RAM-backed loop images (/dev/shm) with ext4 and/or XFS (reflink=1): initdb -k once per
# filesystem as the postgres user, pgbench -i -s SCALE, CHECKPOINT, clean stop; that data
# directory is the pristine copy every run starts from (cp -a within the filesystem). Then,
# interleaved, --rounds rounds of three configurations per series (the order rotates each round):
#
#   stock-on   atomio=off, full_page_writes=on    (the stock baseline)
#   stock-off  atomio=off, full_page_writes=off   (unsafe: the ceiling)
#   atomio     atomio=on,  full_page_writes=off   (write-behind: atomio_write_behind=on, the
#                                                  default, written into postgresql.conf)
#
# and two series, checkpoint_timeout=30s and 5min (max_wal_size=4GB so checkpoints are timed,
# shared_buffers=128MB, synchronous_commit=on). Each run: cp -a of the pristine cluster,
# sync, start, [--warmup SEC of pgbench], then pgbench -c CLIENTS -j 2 -T DURATION (4 clients
# unless --clients; with --connect pgbench -C, a new connection per transaction, as an
# application without a connection pool makes) is the measured window: WAL bytes
# (pg_wal_lsn_diff of pg_current_wal_lsn), device bytes (sectors written, field 7 of
# /sys/block/loopN/stat, x 512), transactions and TPS from pgbench. After the window: CHECKPOINT (so the checkpointer logs
# libatomio's counters; outside the window), sync, device bytes again, clean stop.
#
#   run.sh [--bin DIR] [--fs ext4|xfs|both] [--series 30s|5min|both] [--rounds N]
#          [--duration SEC] [--scale N] [--warmup SEC] [--clients N] [--connect] [--out DIR]
#          [--port N] [--extra NAME:SETTING=VALUE[,SETTING=VALUE...]] [--configs NAME,NAME...]
#
# --extra adds a labelled configuration to every round (atomio=on, full_page_writes=off plus the
# given settings; repeat it for more), e.g. --extra atomio-1g:atomio_store_size=1024, or
# --extra atomio-deferred:atomio_write_behind=off for libatomio's deferred mode (every write in
# place before it returns) next to write-behind.
# --configs runs only the named configurations (default: all), e.g. --configs stock-on,atomio,atomio-deferred.
# Results: DIR/raw/<run>/ (pgbench output, server log, numbers), DIR/runs.csv, DIR/runs.jsonl,
# DIR/medians.md (summarize.py), DIR/commands.txt (every command run, in order).
# Exit: 0 done, 1 a run failed, 77 cannot run (not root, no loop devices, no binaries).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
pg_prog=run.sh
pg_bin=""
fs_list=both
series_list=both
rounds=3
duration=60
scale=20
warmup=0
clients=4
connect=()
out=""
port=54391
extras=()
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) pg_bin=$2; shift 2 ;;
    --fs) fs_list=$2; shift 2 ;;
    --series) series_list=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --connect) connect=(-C); shift ;;
    --out) out=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --extra) extras+=("$2"); shift 2 ;;
    --configs) only=$2; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$pg_bin" ]; then
    # The brief's order: an explicit cache, the shared install, then lib.sh's search.
    if [ -n "${ATOMIO_PG_CACHE:-}" ] && [ -x "$ATOMIO_PG_CACHE/install/bin/postgres" ]; then
        pg_bin=$ATOMIO_PG_CACHE/install/bin
    elif [ -x /work/pgcache/install/bin/postgres ]; then
        pg_bin=/work/pgcache/install/bin
    else
        pg_bin=$(pg_default_bin)
    fi
fi
case "$fs_list" in both) fs_list="ext4 xfs" ;; ext4 | xfs) ;; *) echo "--fs ext4|xfs|both" >&2; exit 2 ;; esac
case "$series_list" in both) series_list="30s 5min" ;; 30s | 5min) ;; *) echo "--series 30s|5min|both" >&2; exit 2 ;; esac
[ -n "$out" ] || out=$repo/docs/benchmarks/results/postgresql
pg_preflight mkfs.xfs mkfs.ext4 findmnt python3
[ "$pg_has_atomio" = 1 ] || pg_skip "$pg_bin/postgres has no atomio GUC (not the patched build)"
pg_atomio_mode=off # the pristine cluster is made by the stock code path

mkdir -p "$out/raw" || exit 1
cmdlog=$out/commands.txt
: >"$cmdlog"

# say CMD...: print the command (and log it), then run it.
say() {
    echo "+ $*" | tee -a "$cmdlog"
    "$@"
}
# note TEXT: print and log a command run through a lib.sh helper, as the shell would see it.
note() { echo "+ $*" | tee -a "$cmdlog"; }

configs=("stock-on:atomio=off,full_page_writes=on"
    "stock-off:atomio=off,full_page_writes=off"
    "atomio:atomio=on,full_page_writes=off")
for e in "${extras[@]}"; do
    case "$e" in
    *:*=*) configs+=("${e%%:*}:atomio=on,full_page_writes=off,${e#*:}") ;;
    *) echo "--extra NAME:SETTING=VALUE[,...]" >&2; exit 2 ;;
    esac
done
if [ -n "$only" ]; then
    sel=()
    for c in "${configs[@]}"; do
        case ",$only," in *",${c%%:*},"*) sel+=("$c") ;; esac
    done
    [ ${#sel[@]} -gt 0 ] || { echo "--configs $only: no such configuration" >&2; exit 2; }
    configs=("${sel[@]}")
fi

work=$(mktemp -d /dev/shm/atomio-pgrun.XXXXXX) || exit 1
chmod 755 "$work"
pg_tmpdirs+=("$work")
trap pg_cleanup EXIT
trap 'exit 130' INT TERM

# Every mounted image goes; a port someone else listens on would make pg_start fail.
while [ -e "/tmp/.s.PGSQL.$port" ] || ss -Hltn "sport = :$port" 2>/dev/null | grep . >/dev/null; do
    port=$((port + 1))
done

{
    echo "# run.sh $(date -u +%FT%TZ) on $(uname -sr), $(nproc) CPUs"
    echo "# bin=$pg_bin fs=[$fs_list] series=[$series_list] rounds=$rounds duration=$duration scale=$scale warmup=$warmup clients=$clients${connect:+ connect (-C)}"
    echo "# commit $(git -C "$repo" rev-parse HEAD 2>/dev/null) $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null | grep . >/dev/null && echo '(dirty)')"
    "$pg_bin/postgres" --version
} | tee -a "$cmdlog"

devbytes() { awk '{ print $7 * 512 }' "/sys/block/$1/stat"; }
loglines() { wc -l <"$1" 2>/dev/null || echo 0; }

failures=0
for fs in $fs_list; do
    img=$work/$fs.img
    mnt=$work/$fs
    note pg_mkfs "$fs" "$img" 4G
    pg_mkfs "$fs" "$img" 4G || { echo "mkfs $fs failed"; failures=$((failures + 1)); continue; }
    note mount -t "$fs" -o "loop$([ "$fs" = xfs ] && echo ,nouuid)" "$img" "$mnt"
    pg_mount "$fs" "$img" "$mnt" || { echo "mount $fs failed"; failures=$((failures + 1)); continue; }
    chmod 755 "$mnt"
    loopdev=$(findmnt -n -o SOURCE --target "$mnt")
    loop=$(basename "$loopdev")
    echo "# $fs: $img on $loopdev (/sys/block/$loop/stat)" | tee -a "$cmdlog"

    pristine=$mnt/pristine/data
    settings=("shared_buffers = 128MB" "max_wal_size = 4GB" "synchronous_commit = on"
        "log_checkpoints = on" "checkpoint_completion_target = 0.9")
    note initdb -k -U "$pg_user" -D "$pristine" "(as $pg_user; appended: port = $port, ${settings[*]})"
    pg_init "$pristine" "$port" "${settings[@]}" || { failures=$((failures + 1)); continue; }
    note pg_ctl start -w -D "$pristine"
    pg_start "$pristine" 300 "-c atomio=off" || {
        echo "start failed"; tail -5 "$pristine/../server.log"; failures=$((failures + 1)); continue
    }
    note "psql -c 'CREATE DATABASE $pg_db'; psql -c 'CREATE EXTENSION amcheck'; pgbench -i -q -s $scale $pg_db"
    pg_setup_db "$pristine" "$scale" || { failures=$((failures + 1)); continue; }
    note psql -c CHECKPOINT
    pg_sql "$pristine" CHECKPOINT
    note pg_ctl stop -m fast -D "$pristine"
    pg_stop "$pristine" || { echo "stop failed"; failures=$((failures + 1)); continue; }
    echo "# pristine cluster: $(du -sh "$pristine" | cut -f1)" | tee -a "$cmdlog"

    n=${#configs[@]}
    for round in $(seq 1 "$rounds"); do
        for series in $series_list; do
            for k in $(seq 0 $((n - 1))); do
                c=${configs[$(((k + round - 1) % n))]}
                name=${c%%:*}
                opts="-c checkpoint_timeout=$series"
                IFS=, read -r -a kv <<<"${c#*:}"
                for s in "${kv[@]}"; do opts="$opts -c $s"; done
                id=$fs-$series-$name-r$round
                raw=$out/raw/$id
                rm -rf "$raw"
                mkdir -p "$raw"
                run=$mnt/run
                data=$run/data
                echo "== $id ($(date -u +%T))" | tee -a "$cmdlog"
                say rm -rf "$run"
                say cp -a "$mnt/pristine" "$run"
                say sync -f "$mnt"
                note pg_ctl start -w -D "$data" -o "'$opts'"
                if ! pg_start "$data" 300 "$opts"; then
                    echo "start failed"; tail -5 "$run/server.log"
                    cp "$run/server.log" "$raw/" 2>/dev/null
                    failures=$((failures + 1)); continue
                fi
                if [ "$warmup" -gt 0 ]; then
                    note pgbench "${connect[@]}" -c "$clients" -j 2 -T "$warmup" "$pg_db" "(warm-up)"
                    pg_bench "$data" "${connect[@]}" -c "$clients" -j 2 -T "$warmup" >"$raw/warmup.txt" 2>&1
                fi
                bgw="SELECT buffers_checkpoint || ' ' || buffers_clean || ' ' || buffers_backend || ' ' || buffers_backend_fsync FROM pg_stat_bgwriter"
                bgw0=$(pg_sql "$data" "$bgw")
                lsn0=$(pg_sql "$data" "SELECT pg_current_wal_lsn()")
                dev0=$(devbytes "$loop")
                log0=$(loglines "$run/server.log")
                t0=$(pg_now)
                load0=$(cut -d' ' -f1-3 /proc/loadavg)
                note pgbench "${connect[@]}" -c "$clients" -j 2 -T "$duration" "$pg_db"
                pg_bench "$data" "${connect[@]}" -c "$clients" -j 2 -T "$duration" >"$raw/pgbench.txt" 2>&1
                rc=$?
                t1=$(pg_now)
                load1=$(cut -d' ' -f1-3 /proc/loadavg)
                dev1=$(devbytes "$loop")
                lsn1=$(pg_sql "$data" "SELECT pg_current_wal_lsn()")
                wal=$(pg_sql "$data" "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')")
                log1=$(loglines "$run/server.log")
                bgw1=$(pg_sql "$data" "$bgw")
                note psql -c CHECKPOINT "(after the window)"
                pg_sql "$data" CHECKPOINT
                say sync -f "$mnt"
                dev2=$(devbytes "$loop")
                log2=$(loglines "$run/server.log")
                bgw2=$(pg_sql "$data" "$bgw")
                note pg_ctl stop -m fast -D "$data"
                pg_stop "$data" || echo "stop of $id failed"
                cp "$run/server.log" "$raw/server.log"
                cat >"$raw/run.env" <<EOF
fs=$fs
series=$series
config=$name
settings=${c#*:}
round=$round
order=$k
duration=$duration
scale=$scale
warmup=$warmup
loop=$loop
pgbench_rc=$rc
lsn0=$lsn0
lsn1=$lsn1
wal_bytes=$wal
dev_bytes0=$dev0
dev_bytes1=$dev1
dev_bytes2=$dev2
log_line0=$log0
log_line1=$log1
log_line2=$log2
t0=$t0
t1=$t1
bgwriter0="$bgw0"
bgwriter1="$bgw1"
bgwriter2="$bgw2"
loadavg0="$load0"
loadavg1="$load1"
EOF
                if [ "$rc" != 0 ]; then
                    echo "pgbench failed (rc=$rc):"; tail -5 "$raw/pgbench.txt"
                    failures=$((failures + 1))
                fi
                python3 "$here/summarize.py" --one "$raw" || failures=$((failures + 1))
            done
        done
    done
    say rm -rf "$mnt/run"
    pg_umount "$mnt"
    note umount "$mnt"
done

say python3 "$here/summarize.py" "$out"
echo "run.sh: $failures failure(s); results in $out"
[ "$failures" = 0 ]
