#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build PostgreSQL 15 with the libatomio hooks (patches/ + src/), one command from a clean
# checkout:
#
#   bench/engines/postgresql/build.sh [--atomio-build DIR] [--jobs N]
#
# Steps, each skipped when its inputs are unchanged:
#   1. libatomio (cmake, Release) in <repo>/build/atomio, unless --atomio-build DIR names a build
#   2. the Debian source package postgresql-15 (pinned), fetched with apt-get source (needs root
#      the first time: it may add a deb-src entry and install build dependencies)
#   3. the patch series applied (a changed series is reversed and re-applied), src/ copied in
#   4. configure (minimal), make, make install of the server, the client tools and contrib/amcheck
#
# Cache: ${ATOMIO_PG_CACHE:-<repo>/build/postgresql}: src/ (source tree, built in place),
# install/ (the prefix; binaries in install/bin), build.log.
set -euo pipefail

PG_MAJOR=15
PG_VERSION=15.18
DEB_VERSION=15.18-0+deb12u1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache=${ATOMIO_PG_CACHE:-$repo/build/postgresql}
atomio_build=""
jobs=$(nproc)

log() { printf '[pg-build] %s\n' "$*"; }
die() {
    printf '[pg-build] error: %s\n' "$*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
    --atomio-build)
        [ $# -ge 2 ] || die "--atomio-build needs a directory"
        atomio_build=$(cd "$2" 2>/dev/null && pwd) || die "--atomio-build: no such directory: $2"
        shift 2
        ;;
    --jobs | -j)
        [ $# -ge 2 ] || die "--jobs needs a number"
        jobs=$2
        shift 2
        ;;
    -h | --help)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
buildlog=$cache/build.log
srcroot=$cache/src
srcdir=$srcroot/postgresql-$PG_VERSION
prefix=$cache/install

# Run a command with its output in build.log; on failure show the end of it.
run() {
    if ! "$@" >>"$buildlog" 2>&1; then
        tail -n 40 "$buildlog" >&2
        die "failed: $* (full output in $buildlog)"
    fi
}

sha() { sha256sum "$@" | sha256sum | cut -c1-16; }

: >"$buildlog"

# ---------------------------------------------------------------------------------------------
# 1. libatomio
if [ -z "$atomio_build" ]; then
    atomio_build=$repo/build/atomio
    log "libatomio: cmake build in $atomio_build (Release, incremental)"
    if [ ! -f "$atomio_build/CMakeCache.txt" ]; then
        command -v cmake >/dev/null || die "cmake is missing: run scripts/deps.sh (or apt-get install cmake) first"
        if ! cmake -S "$repo" -B "$atomio_build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
            -DATOMIO_BUILD_BENCH=OFF -DATOMIO_BUILD_DOCS=OFF >>"$buildlog" 2>&1; then
            tail -n 20 "$buildlog" >&2
            rm -rf "$atomio_build"
            die "configuring libatomio failed: install its dependencies (sudo scripts/deps.sh) and rerun"
        fi
    fi
    run cmake --build "$atomio_build" -j"$jobs" --target atomio
fi
atomio_so=$(find "$atomio_build" -name 'libatomio.so' -print -quit 2>/dev/null || true)
[ -n "$atomio_so" ] || die "no libatomio.so under $atomio_build (build libatomio with ATOMIO_BUILD_SHARED=ON)"
atomio_libdir=$(cd "$(dirname "$atomio_so")" && pwd)
log "libatomio: $atomio_libdir"

# ---------------------------------------------------------------------------------------------
# 2. PostgreSQL source (Debian's postgresql-15, upstream tree without Debian's patches)
ensure_deb_src() {
    if grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ ||
        grep -qs '^deb-src' /etc/apt/sources.list; then
        return
    fi
    local uri
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=http://deb.debian.org/debian
    log "adding a deb-src entry for bookworm main ($uri) in /etc/apt/sources.list.d/atomio-pg-src.sources"
    cat >/etc/apt/sources.list.d/atomio-pg-src.sources <<EOF
Types: deb-src
URIs: $uri
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

need_pkgs() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing packages ${missing[*]}: run this script as root once, or install them"
        log "installing ${missing[*]}"
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}

if [ ! -f "$srcdir/configure" ]; then
    [ "$(id -u)" = 0 ] || die "fetching the source needs root the first time (apt-get); run as root"
    ensure_deb_src
    log "apt-get update"
    run apt-get update -q
    need_pkgs dpkg-dev bison flex zlib1g-dev make gcc
    mkdir -p "$srcroot"
    log "apt-get source postgresql-$PG_MAJOR=$DEB_VERSION"
    if ! (cd "$srcroot" && apt-get source -q --download-only "postgresql-$PG_MAJOR=$DEB_VERSION") >>"$buildlog" 2>&1; then
        tail -n 15 "$buildlog" >&2
        die "could not fetch postgresql-$PG_MAJOR=$DEB_VERSION with apt-get source. If the archive no longer
    carries that version, pick one it has ('apt-cache showsrc postgresql-$PG_MAJOR | grep ^Version'),
    set DEB_VERSION/PG_VERSION at the top of $0 accordingly, and check that the patches still apply."
    fi
    rm -rf "$srcdir.tmp"
    run dpkg-source -x --skip-patches "$srcroot/postgresql-${PG_MAJOR}_${DEB_VERSION}.dsc" "$srcdir.tmp"
    mv "$srcdir.tmp" "$srcdir"
    log "source in $srcdir"
else
    log "source: $srcdir (already there)"
    need_pkgs bison flex zlib1g-dev make gcc
fi

# ---------------------------------------------------------------------------------------------
# 3. Patch series and our source files
applied=$srcdir/.atomio-applied
mkdir -p "$applied"
shopt -s nullglob
patches=("$here"/patches/*.patch)
shopt -u nullglob
[ ${#patches[@]} -gt 0 ] || die "no patches in $here/patches"
want_series=$(sha "${patches[@]}")
have_series=$(cat "$applied/series.sha" 2>/dev/null || true)
if [ "$want_series" != "$have_series" ]; then
    if compgen -G "$applied/*.patch" >/dev/null; then
        log "patch series changed: reversing the applied one"
        for p in $(ls -r "$applied"/*.patch); do
            run patch -d "$srcdir" -p1 -R --batch -i "$p"
        done
        rm -f "$applied"/*.patch "$applied/series.sha"
    fi
    for p in "${patches[@]}"; do
        log "applying $(basename "$p")"
        if ! patch -d "$srcdir" -p1 --forward --batch -i "$p" >>"$buildlog" 2>&1; then
            tail -n 20 "$buildlog" >&2
            die "patch $(basename "$p") does not apply to $srcdir"
        fi
        cp "$p" "$applied/"
    done
    echo "$want_series" >"$applied/series.sha"
else
    log "patch series: already applied"
fi

# Copy a file in only when it differs, so make rebuilds only what changed.
install_src() {
    if ! cmp -s "$1" "$2"; then
        log "copying $(basename "$1") -> ${2#"$srcdir"/}"
        cp "$1" "$2"
        return 0
    fi
    return 1
}
install_src "$here/src/atomio_pg.c" "$srcdir/src/backend/storage/smgr/atomio_pg.c" || true
if install_src "$here/src/atomio_pg.h" "$srcdir/src/include/storage/atomio_pg.h"; then
    # the tree is configured without dependency tracking: rebuild every includer
    for f in $(grep -rl --include='*.c' 'storage/atomio_pg.h' "$srcdir/src"); do touch "$f"; done
fi
atomio_h_sha=$(sha "$repo/include/atomio.h")
if [ "$atomio_h_sha" != "$(cat "$applied/atomio_h.sha" 2>/dev/null || true)" ]; then
    touch "$srcdir/src/backend/storage/smgr/atomio_pg.c"
    echo "$atomio_h_sha" >"$applied/atomio_h.sha"
fi

# ---------------------------------------------------------------------------------------------
# 4. configure, make, install
conf_args=(--prefix="$prefix" --without-icu --without-llvm --without-readline --with-zlib
    CFLAGS="-O2 -g" CPPFLAGS="-I$repo/include"
    LDFLAGS="-L$atomio_libdir -Wl,-rpath,$atomio_libdir")
conf_sha=$(printf '%s\n' "${conf_args[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$srcdir/config.status" ] || [ "$conf_sha" != "$(cat "$applied/configure.sha" 2>/dev/null || true)" ]; then
    log "configure (${conf_args[*]})"
    (cd "$srcdir" && run ./configure "${conf_args[@]}")
    echo "$conf_sha" >"$applied/configure.sha"
else
    log "configure: unchanged"
fi

stamp=$(sha "${patches[@]}" "$here"/src/* "$repo/include/atomio.h" "$atomio_so" <(echo "$conf_sha"))
bins=(postgres initdb pg_ctl psql pgbench pg_amcheck pg_checksums pg_controldata)
uptodate=1
[ "$stamp" = "$(cat "$prefix/.atomio-stamp" 2>/dev/null || true)" ] || uptodate=0
for b in "${bins[@]}"; do [ -x "$prefix/bin/$b" ] || uptodate=0; done
pkglibdir=$("$prefix/bin/pg_config" --pkglibdir 2>/dev/null || true)
[ -n "$pkglibdir" ] && [ -f "$pkglibdir/amcheck.so" ] || uptodate=0
if [ $uptodate = 1 ]; then
    log "build: up to date ($prefix/bin)"
    exit 0
fi

log "make -j$jobs (a first build takes about 10 minutes on 2 cores; output in $buildlog)"
(cd "$srcdir" && run make -j"$jobs" -s)
(cd "$srcdir" && run make -j"$jobs" -s -C contrib/amcheck)
(cd "$srcdir" && run make -j"$jobs" -s -C contrib/pageinspect)
log "make install -> $prefix"
(cd "$srcdir" && run make -s install)
(cd "$srcdir" && run make -s -C contrib/amcheck install)
(cd "$srcdir" && run make -s -C contrib/pageinspect install)
for b in "${bins[@]}"; do [ -x "$prefix/bin/$b" ] || die "$prefix/bin/$b missing after install"; done
ldd "$prefix/bin/postgres" | grep "$atomio_libdir/libatomio" >/dev/null ||
    die "postgres does not link $atomio_libdir/libatomio.so"
echo "$stamp" >"$prefix/.atomio-stamp"
log "done: $prefix/bin (postgres linked against $atomio_libdir/libatomio.so)"
