# SPDX-License-Identifier: MIT
# Shared by crash.sh and blockcrash.sh (sourced, not run): filesystem images, a PostgreSQL
# cluster run as the unprivileged `postgres` user, killing a whole cluster, and the checks
# every crash test runs after recovery (pg_amcheck, pgbench's invariants, pg_checksums).
#
# A cluster is named by its data directory; its port and socket directory are kept in
# $PGDATA/../pgtest.env. Every helper prints what failed and returns non-zero.

pg_user=postgres
pg_bin=""          # the PostgreSQL bin directory (--bin)
pg_atomio_mode=on  # --atomio on|off: the GUC, when the binaries have it
pg_atomio_given=0  # 1 when --atomio was given: then binaries without the GUC are an error
pg_has_atomio=0    # 1 when the binaries know the atomio GUC
pg_write_behind=on # --write-behind on|off: atomio_write_behind, when the binaries have it
pg_write_behind_given=0 # 1 when --write-behind was given: binaries without the GUC are an error
pg_has_write_behind=0   # 1 when the binaries know the atomio_write_behind GUC
pg_db=bench

# Everything made here, undone by pg_cleanup (run from the caller's EXIT trap).
pg_servers=()  # data directories of started clusters
pg_mounts=()
pg_loops=()
pg_fuses=()
pg_daemons=()  # pids of background daemons (the recorder)
pg_tmpdirs=()
pg_granted=()  # directories given search permission for the postgres user ...
pg_granted_by=""  # ... by this process (subshells running a filesystem each leave them)

pg_skip() {
    echo "$pg_prog skipped: $*"
    exit 77
}

pg_now() { date +%s.%N; }
pg_since() { awk -v a="$1" -v b="$(pg_now)" 'BEGIN { printf "%.1f", b - a }'; }

# pg_default_bin: the patched build of build.sh if it is there (ATOMIO_PG_CACHE, default
# build/postgresql), else Debian's PostgreSQL 15.
pg_default_bin() {
    local here c
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    c=${ATOMIO_PG_CACHE:-$here/../../../build/postgresql}/install/bin
    if [ -x "$c/postgres" ]; then (cd "$c" && pwd); else echo /usr/lib/postgresql/15/bin; fi
}

# pg_preflight TOOLS...: root, loop devices, the PostgreSQL binaries and the given tools, or
# exit 77 with the reason.
pg_preflight() {
    [ "$(id -u)" = 0 ] || pg_skip "needs root (loop devices, mounts, running PostgreSQL as $pg_user)"
    [ -c /dev/loop-control ] || pg_skip "/dev/loop-control is missing (no loop devices)"
    local t
    for t in "$@" runuser losetup mount umount pgrep; do
        command -v "$t" >/dev/null || pg_skip "$t not installed"
    done
    for t in postgres initdb pg_ctl psql pgbench pg_amcheck pg_checksums; do
        [ -x "$pg_bin/$t" ] || pg_skip "$pg_bin/$t is missing (--bin DIR: a PostgreSQL bin directory)"
    done
    if ! id -u "$pg_user" >/dev/null 2>&1; then
        useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin "$pg_user" ||
            pg_skip "cannot create the $pg_user user"
    fi
    # The server runs as the postgres user: it must reach the binaries and the libatomio they
    # load, wherever they were built (a checkout under /root or a mktemp -d directory is
    # closed to other users).
    local lib
    pg_reach "$pg_bin"
    lib=$(ldd "$pg_bin/postgres" 2>/dev/null | awk '$1 ~ /^libatomio/ && $3 ~ /^\// { print $3 }')
    [ -z "$lib" ] || pg_reach "$(dirname "$lib")"
    local share
    share=$("$pg_bin/pg_config" --sharedir 2>/dev/null || true)
    if [ -n "$share" ] && [ ! -e "$share/extension/amcheck.control" ]; then
        pg_skip "the amcheck extension is not installed in $share (contrib)"
    fi
    # Read the whole list first: grep -q in a pipe stops reading at the first match, postgres
    # then dies of SIGPIPE, and under pipefail the test would say "no atomio GUC" at random.
    local gucs
    gucs=$(pg_as "$pg_bin/postgres" --describe-config 2>/dev/null) ||
        pg_skip "$pg_bin/postgres --describe-config failed"
    if grep -q '^atomio[[:space:]]' <<<"$gucs"; then
        pg_has_atomio=1
    elif [ "$pg_atomio_given" = 1 ]; then
        echo "$pg_prog: --atomio $pg_atomio_mode, but $pg_bin/postgres has no atomio GUC" >&2
        exit 1
    fi
    if grep -q '^atomio_write_behind[[:space:]]' <<<"$gucs"; then
        pg_has_write_behind=1
    elif [ "$pg_write_behind_given" = 1 ]; then
        echo "$pg_prog: --write-behind $pg_write_behind, but $pg_bin/postgres has no atomio_write_behind GUC" >&2
        exit 1
    fi
}

# pg_reach DIR: give others search permission (x, never read) on DIR and each ancestor the
# postgres user cannot pass through; pg_cleanup takes it back.
pg_reach() {
    local d
    d=$(cd "$1" 2>/dev/null && pwd) || return 0
    while [ "$d" != / ]; do
        if ! runuser -u "$pg_user" -- test -x "$d" 2>/dev/null; then
            chmod o+x "$d" && pg_granted+=("$d") && pg_granted_by=$BASHPID
        fi
        d=$(dirname "$d")
    done
}

# pg_mode_note: how pages are protected, for the scripts' first line.
pg_mode_note() {
    if [ "$pg_has_atomio" != 1 ]; then
        echo "no atomio GUC in these binaries (stock PostgreSQL)"
    elif [ "$pg_atomio_mode" = on ] && [ "$pg_has_write_behind" = 1 ]; then
        echo "atomio=on, atomio_write_behind=$pg_write_behind"
    else
        echo "atomio=$pg_atomio_mode"
    fi
}

# pg_as CMD...: run as the postgres user, from a directory it can read.
pg_as() { (cd / && runuser -u "$pg_user" -- "$@"); }

# pg_mkfs FS IMAGE SIZE: a fresh filesystem in a sparse image file.
pg_mkfs() {
    rm -f "$2"
    truncate -s "$3" "$2" || return 1
    case "$1" in
    xfs) mkfs.xfs -q -f -m reflink=1 "$2" ;;
    ext4) mkfs.ext4 -q -F -b 4096 -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$2" ;;
    *) echo "unknown filesystem $1" >&2; return 1 ;;
    esac
}

# pg_mount FS DEVICE-OR-IMAGE DIR: mount (an image through an autoclear loop device).
pg_mount() {
    local o=()
    [ "$1" = xfs ] && o+=(nouuid)
    [ -f "$2" ] && o+=(loop)
    mkdir -p "$3"
    if [ ${#o[@]} -gt 0 ]; then
        mount -t "$1" -o "$(IFS=,; echo "${o[*]}")" "$2" "$3" || return 1
    else
        mount -t "$1" "$2" "$3" || return 1
    fi
    pg_mounts+=("$3")
}

pg_umount() {
    local i
    for i in $(seq 50); do
        umount "$1" 2>/dev/null && return 0
        mountpoint -q "$1" || return 0
        sleep 0.1
    done
    echo "umount $1: still busy" >&2
    return 1
}

# pg_env DATA: PGPORT and PGHOST of the cluster at DATA.
pg_env() {
    # shellcheck disable=SC1090,SC1091
    . "$1/../pgtest.env"
}

# pg_init DATA PORT [setting=value...]: initdb -k as postgres, the test's settings.
pg_init() {
    local data=$1 port=$2 sock
    shift 2
    sock=$(mktemp -d /tmp/atomio-pgsock.XXXXXX) || return 1
    chmod 755 "$sock"
    chown "$pg_user" "$sock"
    pg_tmpdirs+=("$sock")
    mkdir -p "$data"
    chown "$pg_user" "$data" "$(dirname "$data")"
    chmod 700 "$data"
    printf 'PGPORT=%s\nPGHOST=%s\nexport PGPORT PGHOST\n' "$port" "$sock" >"$data/../pgtest.env"
    pg_as "$pg_bin/initdb" -k -U "$pg_user" -D "$data" --no-instructions >"$data/../initdb.log" 2>&1 ||
        { echo "initdb failed:"; tail -5 "$data/../initdb.log"; return 1; }
    {
        echo "# crash test settings"
        echo "port = $port"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$sock'"
        echo "shared_buffers = 128MB"
        echo "checkpoint_timeout = 30s"
        echo "full_page_writes = off"
        echo "max_wal_size = 256MB"
        echo "log_checkpoints = on"
        echo "log_line_prefix = '%m [%p] '"
        if [ "$pg_has_atomio" = 1 ]; then echo "atomio = $pg_atomio_mode"; fi
        if [ "$pg_has_write_behind" = 1 ]; then echo "atomio_write_behind = $pg_write_behind"; fi
        local s
        for s in "$@"; do echo "$s"; done
    } >>"$data/postgresql.conf"
}

# pg_start DATA [timeout [postgres options]]: start and wait until it accepts connections
# (crash recovery runs first).
pg_start() {
    local data=$1 t=${2:-300} o=${3:-}
    pg_servers+=("$data")
    pg_as "$pg_bin/pg_ctl" start -w -t "$t" -D "$data" -l "$data/../server.log" ${o:+-o "$o"} \
        >/dev/null 2>&1
}

pg_stop() {
    pg_as "$pg_bin/pg_ctl" stop -w -t 300 -m fast -D "$1" >/dev/null 2>&1
}

# pg_sql DATA SQL: one query in the bench database, unaligned, no headers.
pg_sql() {
    (pg_env "$1" && pg_as env PGPORT="$PGPORT" PGHOST="$PGHOST" \
        "$pg_bin/psql" -X -q -At -v ON_ERROR_STOP=1 -d "${3:-$pg_db}" -c "$2")
}

# pg_bench DATA ARGS...: pgbench against the bench database.
pg_bench() {
    local data=$1
    shift
    (pg_env "$data" && pg_as env PGPORT="$PGPORT" PGHOST="$PGHOST" "$pg_bin/pgbench" "$@" "$pg_db")
}

# pg_setup_db DATA SCALE: the bench database, amcheck, pgbench's tables.
pg_setup_db() {
    pg_sql "$1" "CREATE DATABASE $pg_db" postgres &&
        pg_sql "$1" "CREATE EXTENSION amcheck" &&
        pg_bench "$1" -i -q -s "$2" >"$1/../pgbench-init.log" 2>&1 ||
        { echo "setup failed:"; tail -5 "$1/../pgbench-init.log"; return 1; }
}

# pg_tree PID: PID and all its descendants, parents first.
pg_tree() {
    local todo=("$1") out=() p c
    while [ ${#todo[@]} -gt 0 ]; do
        p=${todo[0]}
        todo=("${todo[@]:1}")
        out+=("$p")
        for c in $(pgrep -P "$p"); do todo+=("$c"); done
    done
    echo "${out[@]}"
}

# pg_pids DATA: the postmaster (from postmaster.pid) and all its descendants.
pg_pids() {
    local pm
    [ -f "$1/postmaster.pid" ] || return 0
    pm=$(head -1 "$1/postmaster.pid")
    [ -n "$pm" ] && [ -d "/proc/$pm" ] || return 0
    pg_tree "$pm"
}

# pg_stop_tree PID: SIGTERM a background job and everything under it. pg_bench runs pgbench
# through a subshell and runuser: killing the job's pid alone leaves pgbench running.
pg_stop_tree() {
    # shellcheck disable=SC2046
    kill -TERM $(pg_tree "$1") 2>/dev/null
}

# pg_procs_in DATA: pids of any process whose working directory is DATA (a server's
# processes all are), to prove a kill left nothing behind.
pg_procs_in() {
    local d
    d=$(cd "$1" && pwd -P)
    find /proc/[0-9]*/cwd -maxdepth 0 -lname "$d" 2>/dev/null | cut -d/ -f3
}

# pg_kill DATA: SIGKILL the whole cluster at once. The postmaster is stopped first so it
# forks nothing between the listing and the kill; then one kill(1) takes every process, the
# postmaster last: a child that saw the postmaster die before its own SIGKILL came would exit
# by itself, running its exit callbacks (libatomio's last-context cleanup among them), which
# is a clean exit, not the crash this simulates.
pg_kill() {
    local pids pm i
    pm=$(head -1 "$1/postmaster.pid" 2>/dev/null)
    [ -n "$pm" ] || { echo "no postmaster.pid in $1"; return 1; }
    kill -STOP "$pm" 2>/dev/null
    pids=$(pg_pids "$1")
    # shellcheck disable=SC2086
    kill -KILL $(echo $pids | tr ' ' '\n' | tac) 2>/dev/null
    # Gone means reaped, not a zombie: a zombie's pid still answers kill(pid, 0), and the
    # restarted postmaster takes the pid in a lock file for a live server.
    for i in $(seq 200); do
        local p alive=""
        for p in $pids; do [ -d "/proc/$p" ] && alive=1 && break; done
        if [ -z "$alive" ] && [ -z "$(pg_procs_in "$1")" ]; then
            pg_killed=$(echo $pids | wc -w)
            return 0
        fi
        sleep 0.05
    done
    echo "processes still alive in $1 after SIGKILL: $(pg_procs_in "$1")"
    return 1
}

# pg_clear_locks DATA: after pg_kill, the killed server's lock files (postmaster.pid and the
# socket's lock): every process of it is gone, and on a busy machine the pid they hold may
# already belong to another process, which would make the postmaster refuse to start. A
# rebooted machine has no such leftovers either.
pg_clear_locks() {
    (pg_env "$1" && rm -f "$1/postmaster.pid" "$PGHOST/.s.PGSQL.$PGPORT.lock")
}

# pg_check DATA: the online checks. Prints one line; returns 1 if anything is wrong.
#   - pg_amcheck --heapallindexed over the bench database (heap and B-tree structure, every
#     heap tuple found in every index, checksums of every page read)
#   - pgbench's invariant: sum(abalance) = sum(bbalance) = sum(tbalance) = sum(history.delta)
#   - row counts of the accounts, branches and tellers tables for the scale
pg_check() {
    local data=$1 scale=$2 out rc sums bad=""
    out=$( (pg_env "$data" && pg_as env PGPORT="$PGPORT" PGHOST="$PGHOST" ${PGOPTIONS:+PGOPTIONS="$PGOPTIONS"} \
        "$pg_bin/pg_amcheck" --heapallindexed -d "$pg_db") 2>&1)
    rc=$?
    if [ $rc != 0 ]; then
        bad="amcheck(rc=$rc): $(echo "$out" | grep -v '^$' | head -3 | tr '\n' ' ')"
    fi
    sums=$(pg_sql "$data" "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' ||
        (SELECT sum(bbalance) FROM pgbench_branches) || ' ' ||
        (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' ||
        (SELECT coalesce(sum(delta), 0) FROM pgbench_history) || ' ' ||
        (SELECT count(*) FROM pgbench_accounts) || ' ' ||
        (SELECT count(*) FROM pgbench_branches) || ' ' ||
        (SELECT count(*) FROM pgbench_tellers) || ' ' ||
        (SELECT count(*) FROM pgbench_history)" 2>&1)
    rc=$?
    pg_history_rows=""
    if [ $rc != 0 ]; then
        bad="$bad${bad:+; }invariant query failed: $(echo "$sums" | head -2 | tr '\n' ' ')"
    else
        # shellcheck disable=SC2086
        set -- $sums
        pg_history_rows=$8
        if [ "$1" != "$2" ] || [ "$2" != "$3" ] || [ "$3" != "$4" ]; then
            bad="$bad${bad:+; }invariant broken: accounts $1 branches $2 tellers $3 history $4"
        fi
        if [ "$5" != $((scale * 100000)) ] || [ "$6" != "$scale" ] || [ "$7" != $((scale * 10)) ]; then
            bad="$bad${bad:+; }row counts: accounts $5 branches $6 tellers $7 (scale $scale)"
        fi
    fi
    if [ -n "$bad" ]; then
        pg_check_msg=$bad
        return 1
    fi
    pg_check_msg="amcheck ok, sums $1, history rows $8"
    return 0
}

# pg_checksums_check DATA: the offline check of every page's checksum (cluster stopped).
pg_checksums_check() {
    local out
    out=$(pg_as "$pg_bin/pg_checksums" --check -D "$1" 2>&1)
    local rc=$?
    pg_checksums_msg=$(echo "$out" | grep -E 'checksum verification failed|Bad checksums|error' | head -3 | tr '\n' ' ')
    [ -n "$pg_checksums_msg" ] || pg_checksums_msg=$(echo "$out" | grep -E 'Blocks scanned' | tr '\n' ' ')
    return $rc
}

# pg_cleanup: stop every server (immediate), unmount, detach, remove the scratch directories.
pg_cleanup() {
    local d m l f p
    for d in "${pg_servers[@]}"; do
        [ -f "$d/postmaster.pid" ] || continue
        pg_as "$pg_bin/pg_ctl" stop -m immediate -w -t 30 -D "$d" >/dev/null 2>&1 || {
            p=$(pg_pids "$d")
            # shellcheck disable=SC2086
            [ -n "$p" ] && kill -KILL $p 2>/dev/null
        }
    done
    for m in "${pg_mounts[@]}"; do mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }; done
    for l in "${pg_loops[@]}"; do losetup "$l" >/dev/null 2>&1 && losetup -d "$l"; done
    for f in "${pg_fuses[@]}"; do mountpoint -q "$f" && fusermount3 -u -z "$f"; done
    for p in "${pg_daemons[@]}"; do kill "$p" 2>/dev/null; done
    for d in "${pg_tmpdirs[@]}"; do rm -rf "$d"; done
    if [ "$pg_granted_by" = "$BASHPID" ]; then
        for d in "${pg_granted[@]}"; do chmod o-x "$d" 2>/dev/null; done
    fi
}
