#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
test_fs.py -- atomio-bench on real loop-mounted filesystems: `probe` on XFS reflink=1 at 16 KiB
pages reports direct atomic writes through the software (copy-on-write) path with no hardware
support, on ext4 none, each with a reason; a short `compare --baselines --json --svg` on each
runs every path the file can do plus UNSAFE and the bare loops, and its output has the
documented shape; then short --write-behind --verify runs on each (they need the library's
write-behind mode). Needs root (exit 77 = skipped, with the reason printed). Runs in a private
mount namespace (unshare -m), so the mounts and their autoclear loop devices go away with the
process even if it is killed; a finally block unmounts on ordinary failures too.

usage: test_fs.py BENCH_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SKIP = 77
BENCH_DIR = sys.argv[1]
BENCH = os.path.join(BENCH_DIR, "atomio-bench")
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def skip(why):
    print("skipped: " + why)
    sys.exit(SKIP)


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def bench(args):
    env = dict(os.environ)
    env.pop("ATOMIO_PATH", None)
    p = subprocess.run([BENCH] + args, capture_output=True, text=True, timeout=300, env=env)
    return p.returncode, p.stdout, p.stderr


def make_fs(tmp, kind):
    img = os.path.join(tmp, kind + ".img")
    mnt = os.path.join(tmp, kind)
    os.mkdir(mnt)
    with open(img, "wb") as f:
        f.truncate((512 if kind == "xfs" else 256) << 20)
    if kind == "xfs":
        sh("mkfs.xfs", "-q", "-f", "-m", "reflink=1", img)
    else:
        sh("mkfs.ext4", "-q", "-F", img)
    sh("mount", "-o", "loop", img, mnt)
    return mnt


def test_probe(mnt, kind):
    f = os.path.join(mnt, "probe.dat")
    with open(f, "wb") as fh:
        fh.write(b"\x5a" * (1 << 20))
    rc, out, err = bench(["probe", f, "--page-size", "16k", "--json"])
    check(rc == 0, f"{kind}: probe exit {rc}: {err.strip()}")
    try:
        p = json.loads(out)
    except ValueError as e:
        check(False, f"{kind}: probe --json: {e}")
        return
    d = p["paths"]["DIRECT_ATOMIC"]
    check(p["caps"]["fs_type"] == kind, f"{kind}: fs_type {p['caps']['fs_type']}")
    check(d["reason"] != "", f"{kind}: DIRECT_ATOMIC has a reason")
    if kind == "xfs":
        check(d["available"] and d["kind"] == "software",
              f"xfs reflink=1: direct atomic via software, got {d}")
        check(p["caps"]["hw_atomic_unit_max_bytes"] == 0, "xfs on loop: no hardware limit")
        check(p["caps"]["atomic_unit_min_bytes"] > 0 and p["caps"]["atomic_segments_max"] >= 1,
              "xfs reflink=1: atomic unit figures")
    else:
        check(not d["available"], f"ext4: no direct atomic, got {d}")
    check(isinstance(p["auto"]["reason"], str) and p["auto"]["reason"], f"{kind}: AUTO reason")
    rc, out, err = bench(["probe", f, "--page-size", "16k"])
    check(rc == 0 and "AUTO picks" in out, f"{kind}: probe table ({err.strip()})")
    if kind == "xfs":
        check("yes (software)" in out, "xfs: table says software atomic")


def test_compare(mnt, kind, tmp):
    f = os.path.join(mnt, "bench.dat")
    svg = os.path.join(tmp, kind + ".svg")
    rc, out, err = bench(["compare", f, "--file-size", "32m", "--page-size", "16k", "--batch",
                          "16", "--qd", "8", "--duration", "300ms", "--warmup", "100ms",
                          "--repeat", "2", "--baselines", "--json", "--svg", svg])
    try:
        doc = json.loads(out)
    except ValueError as e:
        check(False, f"{kind}: compare --json: {e}: {err.strip()}")
        return
    rows = {r["name"]: r for r in doc["results"]}
    names = list(rows)
    print(f"{kind}: compare rows {names}, exit {rc}")
    want = ["AUTO", "DOUBLEWRITE", "UNSAFE", "bare-dblwr"]
    if kind == "xfs":
        want.append("DIRECT_ATOMIC")
    else:
        check("DIRECT_ATOMIC" not in rows, "ext4: no DIRECT_ATOMIC row")
    for w in want:
        check(w in rows, f"{kind}: compare has a {w} row")
    check(any(n.startswith("bare-") and n != "bare-dblwr" for n in names),
          f"{kind}: a bare plain-write row")
    for name, r in rows.items():
        errors = [x["error"] for x in r["runs"] if x["error"]]
        if errors:
            check(False, f"{kind}: {name} failed: {errors[0]}")
            continue
        check(r["runs_ok"] == 2, f"{kind}: {name}: 2 repeats, got {r['runs_ok']}")
        pps = r["pages_per_s"]
        check(pps["median"] > 0 and pps["min"] <= pps["median"] <= pps["max"],
              f"{kind}: {name}: pages_per_s {pps}")
        check(r["device_bytes_per_page"]["median"] >= 16384,
              f"{kind}: {name}: device bytes/page {r['device_bytes_per_page']}")
        check(r["syncs_per_page"]["median"] > 0, f"{kind}: {name}: syncs counted")
        if name == "DOUBLEWRITE" or name == "bare-dblwr":
            check(r["dblwr_bytes_per_page"]["median"] >= 16384,
                  f"{kind}: {name}: every page also written to the doublewrite store")
    check(rows.get("UNSAFE", {}).get("ratio_to_unsafe") == 1, f"{kind}: UNSAFE ratio 1")
    check(rc == 0, f"{kind}: compare exit {rc}: {err.strip()}")
    auto = rows.get("AUTO", {})
    check(auto.get("path_actual") == "DOUBLEWRITE",
          f"{kind}: AUTO (policy fast) runs DOUBLEWRITE, got {auto.get('path_actual')}")
    check(doc["summary"]["fastest_safe_path"] in ("DIRECT_ATOMIC", "DOUBLEWRITE"),
          f"{kind}: summary names the fastest torn-safe path")
    try:
        ET.parse(svg)
    except (ET.ParseError, OSError) as e:
        check(False, f"{kind}: svg not well-formed: {e}")
    check(not os.path.exists(f + ".atomio-dblwr"), f"{kind}: doublewrite dir removed after")
    check(not os.path.exists(f + ".bare-dblwr"), f"{kind}: bare doublewrite file removed after")


def test_write_behind(mnt, kind):
    """Write-behind on a real filesystem: four page-at-a-time buffered writer processes on one
    instance (the PostgreSQL-like case the mode is for) and one O_DIRECT writer with batches,
    each page read back through the staging and after the final sync (--verify)."""
    f = os.path.join(mnt, "wb.dat")
    for extra in [["--page-size", "8k", "--batch", "1", "--buffered", "--processes", "4",
                   "--sync", "every:4096"],
                  ["--page-size", "16k", "--batch", "16", "--direct", "--sync", "every:1024",
                   "--write-behind-size", "2m"]]:
        rc, out, err = bench(["run", f, "--file-size", "32m", "--path", "doublewrite",
                              "--duration", "500ms", "--warmup", "100ms", "--write-behind",
                              "--verify", "--no-progress", "--json"] + extra)
        check(rc == 0, f"{kind}: run --write-behind {extra}: exit {rc}: {err.strip()}")
        if rc != 0:
            continue
        try:
            doc = json.loads(out)
            rec = doc["results"][0]["runs"][0]
        except (ValueError, KeyError, IndexError) as e:
            check(False, f"{kind}: run --write-behind --json: {e}: {err.strip()}")
            continue
        check(doc["config"]["doublewrite_mode"] == "write_behind", f"{kind}: mode")
        check(rec["path_actual"] == "DOUBLEWRITE", f"{kind}: path {rec['path_actual']}")
        check(rec["pages"] > 0 and 0 < rec["pages_staged"] <= rec["pages"],
              f"{kind}: {extra}: pages {rec['pages']}, staged {rec['pages_staged']}")
        check(rec["verified_pages"] > 0, f"{kind}: {extra}: nothing verified")
        check(rec["group_commits"] > 0, f"{kind}: {extra}: no group commit")
        check(not os.path.exists(f + ".atomio-dblwr"), f"{kind}: doublewrite dir removed")


def test_engine_ring(mnt, kind):
    """--submitter engine: the bench's own io_uring drives the library (atomio_uring.h), two
    batches in flight, deferred durability. The DOUBLEWRITE row goes through the staged
    protocol (store write, store fsync, in-place writes from the batch's copy), UNSAFE through
    atomio_prep_write(); both must count every page in place, and only DOUBLEWRITE store bytes.
    Then the data file must hold, at each page, the page number every write of it stamps."""
    f = os.path.join(mnt, "ring.dat")
    rc, out, err = bench(["compare", f, "--file-size", "32m", "--page-size", "16k", "--batch",
                          "64", "--direct", "--sync", "every:1024", "--submitter", "engine",
                          "--paths", "doublewrite,unsafe", "--repeat", "1", "--duration",
                          "500ms", "--warmup", "100ms", "--no-progress", "--json"])
    check(rc == 0, f"{kind}: compare --submitter engine: exit {rc}: {err.strip()}")
    if rc != 0:
        return
    try:
        doc = json.loads(out)
        rows = {r["path_requested"]: r["runs"][0] for r in doc["results"]}
    except (ValueError, KeyError, IndexError) as e:
        check(False, f"{kind}: compare --submitter engine --json: {e}: {err.strip()}")
        return
    check(doc["config"]["submitter_requested"] == "engine", f"{kind}: config submitter")
    for name, run in rows.items():
        check(run["submitter"] == "engine", f"{kind}: {name}: submitter {run['submitter']}")
        check(run["pages"] > 0, f"{kind}: {name}: no pages")
        # every page the driver counted went in place within the measured part: batches in
        # flight are finished before measurement starts and before the run ends
        check(run["data_bytes_per_page"] == 16384,
              f"{kind}: {name}: data bytes/page {run['data_bytes_per_page']}")
    dw, un = rows.get("DOUBLEWRITE"), rows.get("UNSAFE")
    check(dw is not None and un is not None, f"{kind}: rows {sorted(rows)}")
    if dw and un:
        check(dw["path_actual"] == "DOUBLEWRITE", f"{kind}: path {dw['path_actual']}")
        check(16384 <= dw["dblwr_bytes_per_page"] <= 16384 * 1.01,
              f"{kind}: store bytes/page {dw['dblwr_bytes_per_page']}")
        check(un["dblwr_bytes_per_page"] == 0, f"{kind}: UNSAFE store bytes")
    # Each write stamps its page number into the page's first 8 bytes; the file was filled
    # with pseudo-random bytes first. A page holding another page's number went to the wrong
    # offset; pages holding their own number show that the writes went in place.
    with open(f, "rb") as fh:
        data = fh.read()
    npages = len(data) // 16384
    stamps = [int.from_bytes(data[p * 16384:p * 16384 + 8], "little") for p in range(npages)]
    bad = [p for p in range(npages) if stamps[p] < npages and stamps[p] != p]
    own = sum(1 for p in range(npages) if stamps[p] == p)
    check(not bad, f"{kind}: pages {bad[:5]} hold another page's stamp")
    check(own > npages // 2, f"{kind}: only {own} of {npages} pages hold their own stamp")
    check(not os.path.exists(f + ".atomio-dblwr"), f"{kind}: doublewrite dir removed")


def main():
    if os.geteuid() != 0:
        skip(f"needs root to make loop-mounted filesystems (uid {os.geteuid()})")
    for tool in ["mkfs.xfs", "mkfs.ext4", "mount", "umount", "unshare"]:
        if not shutil.which(tool):
            skip(f"{tool} not installed (apt-get install xfsprogs e2fsprogs util-linux)")
    if not os.path.exists("/dev/loop-control"):
        skip("no /dev/loop-control: cannot make loop filesystems")
    if os.environ.get("ATOMIO_BENCH_TEST_NS") != "1":
        env = dict(os.environ, ATOMIO_BENCH_TEST_NS="1")
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                            os.path.abspath(__file__), BENCH_DIR], env=env)
        return p.returncode
    tmp = tempfile.mkdtemp(prefix="atomio-bench-fs-")
    mounts = []
    try:
        for kind in ["xfs", "ext4"]:
            mnt = make_fs(tmp, kind)
            mounts.append(mnt)
            test_probe(mnt, kind)
            test_compare(mnt, kind, tmp)
            test_write_behind(mnt, kind)
            test_engine_ring(mnt, kind)
    finally:
        for m in reversed(mounts):
            subprocess.run(["umount", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
