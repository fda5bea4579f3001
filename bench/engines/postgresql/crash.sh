#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Process-kill crash test of PostgreSQL (on libatomio when the binaries have the atomio GUC).
#
# On a loop-mounted ext4 and/or XFS (reflink=1) image in /dev/shm: initdb -k (data checksums)
# as the postgres user, full_page_writes=off, atomio=on (write-behind, unless --write-behind
# off: then deferred, every write in place before it returns); pgbench -i; then, --kills times: run
# pgbench -c 4 -j 2 for a random 2-6 s, SIGKILL the postmaster and every child at once,
# restart (crash recovery) and check: pg_amcheck --heapallindexed, pgbench's invariant
# sum(abalance) = sum(bbalance) = sum(tbalance) = sum(history.delta), the tables' row counts;
# every --checksums-every kills and at the end, a clean stop and pg_checksums --check.
# Before that, a self-test proves that each check fails on a cluster damaged on purpose.
# After the kills, --backups times (default 1): pg_basebackup -X stream while pgbench runs,
# then the backup started as a cluster of its own (its recovery replays the WAL streamed with
# it) and the same checks; its pg_atomio must have come without contents. Then --backend-kills
# times (default 3): one client backend SIGKILLed under pgbench, as an out-of-memory kill
# would; the postmaster ends the other processes and starts them again itself (PostgreSQL's
# crash restart, recovering the store again on libatomio); the same checks once it takes
# connections. On libatomio, last, a database moved to a tablespace and back before a kill
# (dbmove_check).
#
#   crash.sh [--bin DIR] [--atomio on|off] [--write-behind on|off] [--fs ext4|xfs|both]
#            [--kills N] [--backend-kills N] [--clients N] [--backups N] [--scale N] [--seed S]
#            [--checksums-every K] [--control] [--no-selftest]
#
# --kills defaults to ATOMIO_PG_KILLS or 20 (CI); a long local run: --kills 200.
# --clients: pgbench's clients during the kills (default 4).
# --control runs only the self-test. Exit: 0 all checks passed, 1 a check failed, 77 cannot run.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
pg_prog=crash.sh
pg_bin=""
fs_list=both
kills=${ATOMIO_PG_KILLS:-20}
backend_kills=3
clients=4
backups=1
scale=2
seed=1
every=5
control=0
selftest=1
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) pg_bin=$2; shift 2 ;;
    --atomio) pg_atomio_mode=$2; pg_atomio_given=1; shift 2 ;;
    --write-behind) pg_write_behind=$2; pg_write_behind_given=1; shift 2 ;;
    --fs) fs_list=$2; shift 2 ;;
    --kills) kills=$2; shift 2 ;;
    --backend-kills) backend_kills=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --backups) backups=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --checksums-every) every=$2; shift 2 ;;
    --control) control=1; shift ;;
    --no-selftest) selftest=0; shift ;;
    *) echo "crash.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$pg_bin" ] || pg_bin=$(pg_default_bin)
case "$fs_list" in both) fs_list="ext4 xfs" ;; ext4 | xfs) ;; *) echo "--fs ext4|xfs|both" >&2; exit 2 ;; esac
case "$pg_atomio_mode" in on | off) ;; *) echo "--atomio on|off" >&2; exit 2 ;; esac
case "$pg_write_behind" in on | off) ;; *) echo "--write-behind on|off" >&2; exit 2 ;; esac
pg_preflight mkfs.xfs mkfs.ext4

work=$(mktemp -d /dev/shm/atomio-pgcrash.XXXXXX) || exit 1
chmod 755 "$work"
pg_tmpdirs+=("$work")
trap pg_cleanup EXIT
trap 'exit 130' INT TERM

RANDOM=$seed
t_start=$(pg_now)
failures=0
total_kills=0
echo "crash.sh: $pg_bin ($("$pg_bin/postgres" --version)), $(pg_mode_note), full_page_writes=off," \
    "fs: $fs_list, $kills kills, $backend_kills backend kills and $backups base backups each," \
    "$clients clients, scale $scale, seed $seed"

fail() {
    echo "  FAIL: $*"
    failures=$((failures + 1))
}

# selftest MNT: every check must report a cluster damaged on purpose.
#  1. the invariant: one account's balance changed without a history row;
#  2. pg_checksums: one byte of a heap tuple's aid flipped on disk (cluster stopped);
#  3. pg_amcheck, reading that page (its checksum fails);
#  4. pg_amcheck with ignore_checksum_failure=on: its own heapallindexed check must find the
#     heap tuple whose key the index does not hold;
#  5. the kill: no process of the cluster is left (checked after every kill anyway);
#  6. on libatomio, the database-move check with the directory fences skipped (dbmove_check).
selftest() {
    local mnt=$1 data=$1/selftest/data t0 file off before mode=$pg_atomio_mode
    t0=$(pg_now)
    echo "== self-test: each check must catch damage made on purpose"
    # Without atomio: its doublewrite recovery at start-up may put back a page damaged here
    # (the store can still hold a copy of it), and this tests the checks, not the protection.
    pg_atomio_mode=off
    pg_init "$data" 5499 || { fail "self-test: initdb"; return; }
    pg_atomio_mode=$mode
    pg_start "$data" || { fail "self-test: start"; return; }
    pg_setup_db "$data" 1 || { fail "self-test: setup"; return; }
    pg_bench "$data" -c 2 -j 2 -T 2 >/dev/null 2>&1
    if pg_check "$data" 1; then echo "  undamaged cluster: $pg_check_msg"; else fail "self-test: undamaged cluster failed: $pg_check_msg"; fi

    pg_sql "$data" "UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid = 1"
    if pg_check "$data" 1; then fail "self-test: the invariant check missed a balance changed without history"
    else echo "  invariant check caught: $pg_check_msg"; fi
    pg_sql "$data" "UPDATE pgbench_accounts SET abalance = abalance - 7 WHERE aid = 1"

    # Flip a bit of the aid of a tuple on heap block 5 (the first 4 bytes after its header).
    pg_sql "$data" "CREATE EXTENSION pageinspect" >/dev/null
    pg_sql "$data" "CHECKPOINT"
    file=$data/$(pg_sql "$data" "SELECT pg_relation_filepath('pgbench_accounts')")
    off=$(pg_sql "$data" "SELECT 5 * 8192 + lp_off + t_hoff FROM heap_page_items(get_raw_page('pgbench_accounts', 5)) WHERE lp_len > 0 AND t_xmax = 0 ORDER BY lp LIMIT 1")
    pg_stop "$data" || { fail "self-test: stop"; return; }
    if [ -z "$off" ] || ! [ -f "$file" ]; then fail "self-test: no tuple to damage"; return; fi
    before=$(od -An -tx1 -j "$off" -N1 "$file" | tr -d ' ')
    printf "\\x$(printf %02x $((0x$before ^ 0x10)))" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none
    echo "  flipped a bit of byte $off of $(basename "$file") (0x$before -> 0x$(od -An -tx1 -j "$off" -N1 "$file" | tr -d ' '))"
    if pg_checksums_check "$data"; then fail "self-test: pg_checksums missed the flipped bit"
    else echo "  pg_checksums caught: $pg_checksums_msg"; fi
    pg_start "$data" || { fail "self-test: start after damage"; return; }
    if pg_check "$data" 1; then fail "self-test: pg_amcheck missed the damaged page"
    else echo "  pg_amcheck caught: $pg_check_msg"; fi
    if PGOPTIONS="-c ignore_checksum_failure=on" pg_check "$data" 1; then
        fail "self-test: pg_amcheck --heapallindexed (checksums ignored) missed a heap tuple the index lacks"
    else echo "  pg_amcheck --heapallindexed, checksums ignored, caught: $pg_check_msg"; fi
    pg_kill "$data" || fail "self-test: kill left processes"
    if [ "$pg_has_atomio" = 1 ] && [ "$pg_atomio_mode" = on ]; then
        dbmove_check "$mnt" 5498 1 "database move, fences skipped,"
    fi
    rm -rf "$mnt/selftest"
    echo "  self-test done in $(pg_since "$t0") s"
}

# dbmove_check MNT PORT CONTROL LABEL: a database moved to a tablespace, changed there and moved
# back (each move copies the files with plain writes and removes the old directory with rmtree),
# another database made in the tablespace, written and dropped, then the cluster killed before
# the store's ring has come round: the store still holds copies of the files of all three
# removed directories. Their fences (atomio_ctx_fence_dir() before each
# rmtree) keep recovery from applying any of them: the restart must succeed with every row
# holding its new value, amcheck and pg_checksums clean. The control (CONTROL=1) runs the same
# with the fences skipped, and must not come out clean.
dbmove_check() {
    local mnt=$1 port=$2 control=$3 label=$4 dir=$1/dbmove data ts pm sum fenced bad="" why rc
    data=$dir/data
    ts=$dir/ts
    # No autovacuum: a worker exiting at the kill (see below) is as good as a client backend.
    pg_init "$data" "$port" "autovacuum = off" || { fail "$label: initdb"; return; }
    mkdir -p "$ts"
    chown "$pg_user" "$ts"
    if [ "$control" = 1 ]; then
        ATOMIO_PG_TEST_SKIP_DIR_FENCE=1 pg_start "$data" || { fail "$label: start"; return; }
    else
        pg_start "$data" || { fail "$label: start"; return; }
    fi
    if ! { pg_sql "$data" "CREATE TABLESPACE mv_ts LOCATION '$ts'" postgres &&
        pg_sql "$data" "CREATE DATABASE mv" postgres &&
        pg_sql "$data" "CREATE EXTENSION amcheck" mv &&
        pg_sql "$data" "CREATE TABLE t (id int PRIMARY KEY, v int)" mv &&
        pg_sql "$data" "INSERT INTO t SELECT g, 1 FROM generate_series(1, 20000) g" mv &&
        pg_sql "$data" "CHECKPOINT" mv &&
        pg_sql "$data" "ALTER DATABASE mv SET TABLESPACE mv_ts" postgres &&
        pg_sql "$data" "UPDATE t SET v = 2" mv &&
        pg_sql "$data" "CHECKPOINT" mv &&
        pg_sql "$data" "ALTER DATABASE mv SET TABLESPACE pg_default" postgres &&
        pg_sql "$data" "CREATE DATABASE gone TABLESPACE mv_ts" postgres &&
        pg_sql "$data" "CREATE TABLE g AS SELECT generate_series(1, 20000) AS x" gone &&
        pg_sql "$data" "CHECKPOINT" gone &&
        pg_sql "$data" "DROP DATABASE gone" postgres; } >"$dir/setup.log" 2>&1; then
        fail "$label: setup: $(tail -2 "$dir/setup.log" | tr '\n' ' ')"
        pg_kill "$data" >/dev/null
        return
    fi
    # psql returns before its backend has finished exiting. A backend that closes its
    # libatomio context while the kill takes the other processes down finds itself the
    # instance's last living context and writes the store's header clean (every copy was
    # released by the checkpoints), and the restart would then see no copies at all: wait
    # until no client backend (a "[local]" process title) is left.
    pm=$(head -1 "$data/postmaster.pid")
    for _ in $(seq 100); do
        pgrep -P "$pm" -f '\[local\]' >/dev/null || break
        sleep 0.1
    done
    pg_kill "$data" || { fail "$label: the cluster did not die"; return; }
    pg_clear_locks "$data"
    if ! pg_start "$data"; then
        why=$(grep -E 'FATAL|recovery kept' "$dir/server.log" | head -2 | sed 's/^.*\] //' | tr '\n' ' ')
        if [ "$control" = 1 ]; then echo "  $label caught: the restart is refused: $why"
        else fail "$label: restart after the kill failed: $why"; fi
        return
    fi
    # The copies must have been there to skip: a restart that saw none tested nothing.
    # (The control has no fences: its count is 0 whether or not the copies were there.)
    fenced=$(grep 'atomio: doublewrite store .* recovered' "$dir/server.log" | tail -1 | grep -o '[0-9]* fenced')
    if [ "$control" = 0 ] && ! [ "${fenced%% *}" -gt 0 ] 2>/dev/null; then
        fail "$label: the restart found no fenced copies (${fenced:-no recovery line}): nothing was tested"
        pg_stop "$data"
        return
    fi
    sum=$(pg_sql "$data" "SELECT count(*) || ' ' || sum(v) FROM t" mv 2>&1)
    [ "$sum" = "20000 40000" ] || bad="rows and sum(v) are $sum, want 20000 40000"
    why=$( (pg_env "$data" && pg_as env PGPORT="$PGPORT" PGHOST="$PGHOST" \
        "$pg_bin/pg_amcheck" --heapallindexed -d mv) 2>&1)
    rc=$?
    [ $rc = 0 ] || bad="$bad${bad:+; }amcheck(rc=$rc): $(echo "$why" | grep -v '^$' | head -2 | tr '\n' ' ')"
    if pg_stop "$data"; then
        pg_checksums_check "$data" || bad="$bad${bad:+; }pg_checksums: $pg_checksums_msg"
    else
        bad="$bad${bad:+; }clean stop failed"
    fi
    if [ "$control" = 1 ]; then
        if [ -n "$bad" ]; then echo "  $label caught: $bad"
        else fail "$label: without the fences the moved database still came out clean"; fi
    elif [ -n "$bad" ]; then
        fail "$label: $bad"
    else
        echo "  $label: moved to a tablespace and back, another dropped, killed: restart ok, rows and sum(v) $sum, amcheck ok, pg_checksums ok; $fenced"
    fi
    [ -f "$data/postmaster.pid" ] && pg_stop "$data"
    rm -rf "$dir"
}

# backup_check FS PORT DATA MNT N: base backup N of the running cluster at DATA, taken while
# pgbench writes, started on PORT+100 and checked like a cluster after a kill.
backup_check() {
    local fs=$1 port=$2 data=$3 mnt=$4 n=$5 bdir bdata bpid t0 out sock
    bdir=$mnt/backup-$n
    bdata=$bdir/data
    t0=$(pg_now)
    mkdir -p "$bdir"
    chown "$pg_user" "$bdir"
    sock=$(pg_env "$data" && echo "$PGHOST")
    printf 'PGPORT=%s\nPGHOST=%s\nexport PGPORT PGHOST\n' $((port + 100)) "$sock" >"$bdir/pgtest.env"
    out="$fs backup $n"
    pg_bench "$data" -n -c 4 -j 2 -T 3600 >"$bdir/pgbench.out" 2>&1 &
    bpid=$!
    sleep 1
    if ! (pg_env "$data" && pg_as env PGPORT="$PGPORT" PGHOST="$PGHOST" \
        "$pg_bin/pg_basebackup" -D "$bdata" -X stream -c fast) >"$bdir/basebackup.log" 2>&1; then
        pg_stop_tree "$bpid"
        wait "$bpid"
        fail "$out: pg_basebackup: $(tail -2 "$bdir/basebackup.log" | tr '\n' ' ')"
        return
    fi
    sleep 1
    pg_stop_tree "$bpid"
    wait "$bpid"
    if [ -d "$data/pg_atomio" ] && [ -n "$(ls -A "$data/pg_atomio")" ]; then
        if [ ! -d "$bdata/pg_atomio" ]; then
            fail "$out: the backup has no pg_atomio directory"
            return
        fi
        if [ -n "$(ls -A "$bdata/pg_atomio")" ]; then
            fail "$out: the backup carries the store's contents: $(cd "$bdata/pg_atomio" && echo *)"
            return
        fi
        out="$out (pg_atomio empty)"
    fi
    if ! pg_start "$bdata" 300 "-p $((port + 100))"; then
        fail "$out: the backup did not start: $(grep -E 'FATAL|PANIC' "$bdir/server.log" | tail -2 | tr '\n' ' ')"
        return
    fi
    if ! pg_check "$bdata" "$scale"; then
        fail "$out: $pg_check_msg"
    elif ! pg_stop "$bdata"; then
        fail "$out: clean stop failed"
    elif ! pg_checksums_check "$bdata"; then
        fail "$out: pg_checksums: $pg_checksums_msg"
    else
        echo "  $out: started, $pg_check_msg, pg_checksums ok; $(pg_since "$t0") s"
    fi
    [ -f "$bdata/postmaster.pid" ] && pg_stop "$bdata"
    rm -rf "$bdir"
}

# backend_kills FS DATA MNT: --backend-kills times, one client backend SIGKILLed while pgbench
# runs. The postmaster ends every other process and starts them again by itself (its crash
# restart: on libatomio it recovers the store again first); the script only waits until the
# server takes connections, then checks. A clean stop and pg_checksums after the last.
# Returns 1 when the cluster is left unusable.
backend_kills() {
    local fs=$1 data=$2 mnt=$3 log=$3/pg/server.log k ms bpid pm pm_after victims victim lines i
    local t0 r out new restart
    for k in $(seq "$backend_kills"); do
        ms=$((2000 + RANDOM % 4001))
        lines=$(wc -l <"$log")
        pm=$(head -1 "$data/postmaster.pid")
        pg_bench "$data" -n -c "$clients" -j 2 -T 3600 >"$mnt/pg/pgbench.out" 2>&1 &
        bpid=$!
        sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
        # A client backend's title: "postgres: USER DB [local] STATE".
        mapfile -t victims < <(pgrep -P "$pm" -f " $pg_db \\[local\\]")
        if [ ${#victims[@]} = 0 ]; then
            fail "$fs backend kill $k: no client backend of pgbench found"
            pg_stop_tree "$bpid"; wait "$bpid"
            return 1
        fi
        victim=${victims[RANDOM % ${#victims[@]}]}
        kill -KILL "$victim"
        t0=$(pg_now)
        # The restart ends pgbench's connections, and pgbench with them.
        for i in $(seq 600); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
        pg_stop_tree "$bpid"
        wait "$bpid"
        for i in $(seq 1200); do pg_sql "$data" "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
        r=$(pg_since "$t0")
        out="$fs backend kill $k after $ms ms (1 of ${#victims[@]} client backends)"
        if ! pg_sql "$data" "SELECT 1" >/dev/null 2>&1; then
            fail "$out: no connection 120 s later: $(tail -n +$((lines + 1)) "$log" | grep -E 'FATAL|PANIC' | tail -2 | tr '\n' ' ')"
            return 1
        fi
        pm_after=$(head -1 "$data/postmaster.pid")
        new=$(tail -n +$((lines + 1)) "$log")
        if [ "$pm_after" != "$pm" ]; then
            fail "$out: the postmaster changed ($pm -> $pm_after): not a crash restart"
            continue
        fi
        if ! grep -q 'all server processes terminated; reinitializing' <<<"$new"; then
            fail "$out: no crash restart in the server log"
            continue
        fi
        # (Not grep -q at the end of a pipe: under pipefail its early exit fails the pipe.)
        restart=$(sed -n '/all server processes terminated; reinitializing/,$p' <<<"$new")
        if [ "$pg_has_atomio" = 1 ] && [ "$pg_atomio_mode" = on ] &&
            ! grep -q 'atomio: doublewrite store .* recovered' <<<"$restart"; then
            fail "$out: the crash restart did not recover the store:" \
                "$(grep -E 'reinitializing|atomio|FATAL|PANIC' <<<"$new" | tail -4 | tr '\n' ' ')"
            continue
        fi
        out="$out: crash restart, recovery+start $r s"
        if ! pg_check "$data" "$scale"; then
            fail "$out: $pg_check_msg"
            continue
        fi
        echo "  $out, $pg_check_msg"
    done
    if ! pg_stop "$data"; then fail "$fs backend kills: clean stop failed"; return 1; fi
    if pg_checksums_check "$data"; then echo "  $fs backend kills: pg_checksums ok"
    else fail "$fs backend kills: pg_checksums: $pg_checksums_msg"; fi
    pg_start "$data" || { fail "$fs: start after the backend kills"; return 1; }
}

# run_fs FS PORT: the kill loop on one filesystem. Writes "KILLS FAILURES" to $work/result.FS.
run_fs() {
    local fs=$1 port=$2 img=$work/$1.img mnt=$work/mnt-$1 data t0 tk tc k ms r bpid out
    t0=$(pg_now)
    pg_mkfs "$fs" "$img" 2G || { fail "$fs: mkfs"; return; }
    pg_mount "$fs" "$img" "$mnt" || { fail "$fs: mount"; return; }
    chmod 755 "$mnt"
    data=$mnt/pg/data
    pg_init "$data" "$port" || { fail "$fs: initdb"; return; }
    pg_start "$data" || { fail "$fs: first start"; return; }
    if [ "$pg_has_atomio" = 1 ]; then
        echo "  $fs: atomio: $(pg_sql "$data" "SHOW atomio" postgres)$([ "$pg_has_write_behind" = 1 ] &&
            echo ", atomio_write_behind: $(pg_sql "$data" "SHOW atomio_write_behind" postgres)")"
    fi
    pg_setup_db "$data" "$scale" || { fail "$fs: setup"; return; }
    pg_check "$data" "$scale" || fail "$fs: after setup: $pg_check_msg"
    echo "  $fs: setup (mkfs, initdb -k, pgbench -i -s $scale) $(pg_since "$t0") s"
    for k in $(seq "$kills"); do
        ms=$((2000 + RANDOM % 4001))
        pg_bench "$data" -n -c "$clients" -j 2 -T 3600 >"$mnt/pg/pgbench.out" 2>&1 &
        bpid=$!
        sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
        if ! pg_kill "$data"; then
            fail "$fs kill $k: the cluster did not die"
            wait $bpid
            return
        fi
        wait $bpid
        total_kills=$((total_kills + 1))
        pg_clear_locks "$data"
        tk=$(pg_now)
        if ! pg_start "$data"; then
            fail "$fs kill $k: restart (crash recovery) failed: $(grep -E 'FATAL|PANIC|ERROR' "$mnt/pg/server.log" | tail -2 | tr '\n' ' ')"
            return
        fi
        r=$(pg_since "$tk")
        tc=$(pg_now)
        out="$fs kill $k after $ms ms ($pg_killed processes): recovery+start $r s"
        if ! pg_check "$data" "$scale"; then
            fail "$out: $pg_check_msg"
            continue
        fi
        out="$out, $pg_check_msg"
        if [ $((k % every)) = 0 ] || [ "$k" = "$kills" ]; then
            if ! pg_stop "$data"; then fail "$out: clean stop failed"; return; fi
            if pg_checksums_check "$data"; then out="$out, pg_checksums ok"
            else fail "$out: pg_checksums: $pg_checksums_msg"; fi
            [ "$k" = "$kills" ] || pg_start "$data" || { fail "$fs: start after pg_checksums"; return; }
        fi
        echo "  $out; checks $(pg_since "$tc") s"
    done
    if [ "$backups" -gt 0 ]; then
        [ -f "$data/postmaster.pid" ] || pg_start "$data" || { fail "$fs: start for the backups"; return; }
        for k in $(seq "$backups"); do backup_check "$fs" "$port" "$data" "$mnt" "$k"; done
    fi
    if [ "$backend_kills" -gt 0 ]; then
        [ -f "$data/postmaster.pid" ] || pg_start "$data" || { fail "$fs: start for the backend kills"; return; }
        backend_kills "$fs" "$data" "$mnt" || return
    fi
    if [ "$pg_has_atomio" = 1 ] && [ "$pg_atomio_mode" = on ]; then
        dbmove_check "$mnt" $((port + 200)) 0 "$fs database move"
    fi
    [ -f "$data/postmaster.pid" ] && pg_stop "$data"
    echo "  $fs: $(grep -c 'redo starts at' "$mnt/pg/server.log") crash recoveries with redo," \
        "$(grep -c 'checkpoint complete' "$mnt/pg/server.log") checkpoints; $(pg_since "$t0") s"
    pg_umount "$mnt" || fail "$fs: umount"
    rm -f "$img"
}

if [ "$selftest" = 1 ]; then
    mkdir -p "$work/selftest-mnt"
    fs=${fs_list%% *}
    if pg_mkfs "$fs" "$work/selftest.img" 1G && pg_mount "$fs" "$work/selftest.img" "$work/selftest-mnt"; then
        chmod 755 "$work/selftest-mnt"
        selftest "$work/selftest-mnt"
        pg_umount "$work/selftest-mnt" || fail "self-test: umount"
    else
        fail "self-test: no filesystem"
    fi
    rm -f "$work/selftest.img"
fi

# The filesystems run side by side: most of a kill cycle is pgbench running for its random
# time, and two clusters share the two cores well.
if [ "$control" = 0 ]; then
    children=()
    i=0
    for fs in $fs_list; do
        (
            # This subshell cleans up what it made, and only that.
            pg_servers=() pg_mounts=() pg_loops=() pg_fuses=() pg_daemons=() pg_tmpdirs=()
            trap pg_cleanup EXIT
            trap 'exit 130' INT TERM
            RANDOM=$((seed * 16 + i))
            failures=0
            total_kills=0
            run_fs "$fs" $((5432 + i))
            echo "$total_kills $failures" >"$work/result.$fs"
        ) &
        children+=($!)
        i=$((i + 1))
    done
    # An interrupted run stops the loops first: each cleans up after itself.
    trap 'kill -TERM "${children[@]}" 2>/dev/null; wait; exit 130' INT TERM
    wait
    trap 'exit 130' INT TERM
    for fs in $fs_list; do
        if [ -f "$work/result.$fs" ]; then
            read -r a b <"$work/result.$fs"
            total_kills=$((total_kills + a))
            failures=$((failures + b))
        else
            fail "$fs: the kill loop did not finish"
        fi
    done
fi

el=$(pg_since "$t_start")
if [ "$control" = 1 ]; then
    if [ "$failures" = 0 ]; then
        echo "crash.sh --control: PASS: every check caught the damage made on purpose ($el s)"
        exit 0
    fi
    echo "crash.sh --control: FAIL: $failures check(s) could not fail ($el s)"
    exit 1
fi
if [ "$failures" = 0 ]; then
    echo "crash.sh: PASS: $total_kills kills, $backend_kills backend kill(s) and $backups base backup(s) each on $fs_list, every check passed ($el s)"
    exit 0
fi
echo "crash.sh: FAIL: $failures failure(s), $total_kills kills on $fs_list ($el s)"
exit 1
