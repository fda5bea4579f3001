#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
test_cli.py -- atomio-bench and the bare baselines as a user meets them: argument parsing (good
values accepted, bad ones exit 2 with exactly one line on stderr), --help/--version, the JSON
shape of run/probe/baselines, CSV columns, and the SVG parsed by an XML parser. No root: the
short runs use a scratch file under $TMPDIR with the UNSAFE path (no doublewrite store needed).

The --write-behind runs need the library's ATOMIO_DOUBLEWRITE_WRITE_BEHIND.

usage: test_cli.py BENCH_DIR   (the build directory holding atomio-bench and atomio-baseline-*)
"""
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

BENCH_DIR = sys.argv[1]
BENCH = os.path.join(BENCH_DIR, "atomio-bench")
FAILURES = []

# Figures every result carries as {"median","min","max"} (docs/benchmarks.md).
FIGS = ["pages_per_s", "mb_per_s", "lat_page_p50_us", "lat_page_p99_us", "lat_page_p999_us",
        "lat_page_max_us", "lat_batch_p50_us", "lat_batch_p99_us", "lat_batch_p999_us",
        "device_bytes_per_page", "data_bytes_per_page", "dblwr_bytes_per_page",
        "syncs_per_page", "cpu_us_per_page"]
# Members of one run record: atomio-bench's results[].runs[] and every baseline's output.
RUN_KEYS = ["name", "path_actual", "submitter", "o_direct", "qd_effective", "pages", "batches",
            "elapsed_s", "pages_per_s", "mb_per_s", "lat_page_source", "lat_page_p50_us",
            "lat_page_p99_us", "lat_page_p999_us", "lat_page_max_us", "lat_batch_p50_us",
            "lat_batch_p99_us", "lat_batch_p999_us", "device_bytes_per_page",
            "data_bytes_per_page", "dblwr_bytes_per_page", "syncs_per_page", "cpu_us_per_page",
            "cpu_user_s", "cpu_sys_s", "note", "bytes_data", "bytes_doublewrite", "dev_syncs", "error"]
CONFIG_KEYS = ["file", "file_size_bytes", "page_size_bytes", "workload", "zipf_theta",
               "pages_per_run", "duration_s", "warmup_s", "batch_pages", "qd", "threads",
               "sync_every", "io_style", "submitter_requested", "seed"]


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def run(args, prog=BENCH, env=None):
    e = dict(os.environ)
    e.pop("ATOMIO_PATH", None)
    if env:
        e.update(env)
    p = subprocess.run([prog] + args, capture_output=True, text=True, timeout=120, env=e)
    return p.returncode, p.stdout, p.stderr


def usage_error(args, prog=BENCH):
    rc, out, err = run(args, prog)
    lines = err.strip().splitlines()
    check(rc == 2, f"{args}: exit {rc}, want 2 (stderr: {err.strip()!r})")
    check(len(lines) == 1, f"{args}: want one line on stderr, got {len(lines)}: {err!r}")
    check(out == "", f"{args}: usage error printed on stdout: {out!r}")


def usage_error_says(args, *words, prog=BENCH):
    """A usage error whose one line names every word (the options at fault, the way out)."""
    usage_error(args, prog)
    _, _, err = run(args, prog)
    for w in words:
        check(w in err, f"{args}: error does not mention {w!r}: {err.strip()!r}")


def accepted(args):
    """Options parse: with --help last, parsing runs through them and then prints help."""
    rc, out, err = run(args + ["--help"])
    check(rc == 0 and "usage:" in out, f"{args}: not accepted (exit {rc}, {err.strip()!r})")


def test_conventions():
    rc, out, _ = run(["--version"])
    check(rc == 0 and out.startswith("atomio-bench ") and "libatomio" in out, "--version")
    rc, out, _ = run(["--help"])
    check(rc == 0 and "probe" in out and "compare" in out, "--help lists commands")
    for cmd in ["probe", "run", "compare"]:
        rc, out, _ = run([cmd, "--help"])
        check(rc == 0 and out.startswith("usage: atomio-bench " + cmd), f"{cmd} --help")
        check("exit status" in out, f"{cmd} --help documents exit status")
    usage_error([])
    usage_error(["frobnicate"])


def test_parsing():
    f = "/nonexistent-dir/never-created"
    good = [["--page-size", "4k"], ["--page-size", "16K"], ["--page-size", "16KiB"],
            ["--page-size=512"], ["--page-size", "1m"], ["--file-size", "1g"],
            ["--file-size", "64MiB"], ["--duration", "10s"], ["--duration", "500ms"],
            ["--duration", "0.5s"], ["--duration", "2m"], ["--duration", "3"],
            ["--warmup", "0"], ["--warmup", "250ms"], ["--pages", "100000"], ["--pages", "64k"],
            ["--batch", "1"], ["--batch", "64"], ["--qd", "32"], ["--threads", "4"],
            ["--sync", "batch"], ["--sync", "never"], ["--sync", "128"], ["--direct"],
            ["--buffered"], ["--io-style", "any"], ["--submitter", "uring"],
            ["--submitter", "sync"], ["--submitter", "engine"], ["--workload", "checkpoint"], ["--workload", "sequential"],
            ["--random"], ["--sequential"], ["--zipf", "0.8"], ["--seed", "42"],
            ["--path", "doublewrite"], ["--path", "DIRECT_ATOMIC"], ["--path", "unsafe"],
            ["--policy", "calibrate"], ["--json"], ["--csv"], ["--svg", "/tmp/x.svg"],
            ["--dblwr-dir", "/tmp/d"], ["--no-progress"], ["--processes", "4"],
            ["--sync", "every:4096"], ["--sync", "every:4k"], ["--sync", "deferred"],
            ["--store-size", "256m"], ["--verify"],
            ["--write-behind", "--sync", "every:4096"], ["--write-behind", "--sync", "never"],
            ["--write-behind", "--sync", "deferred"],
            ["--write-behind", "--sync", "every:64", "--write-behind-size", "4m"],
            ["--write-behind", "--sync", "every:64", "--write-behind-size=512k"],
            ["--write-behind", "--sync", "every:64", "--write-behind-size", "16KiB"]]
    for g in good:
        accepted(["run", f] + g)
    for g in [["--paths", "auto,doublewrite,unsafe"], ["--repeat", "5"], ["--baselines"],
              ["--write-behind", "--sync", "every:4096", "--write-behind-size", "8m"],
              ["--verify"]]:
        accepted(["compare", f] + g)
    bad = [["--page-size", "12k"], ["--page-size", "256"], ["--page-size", "2m"],
           ["--page-size", "abc"], ["--page-size", "-4k"], ["--page-size"],
           ["--file-size", "0"], ["--file-size", "1x"], ["--file-size", "1.5k"],
           ["--duration", "10parsecs"], ["--duration", "-1s"], ["--duration", "0"],
           ["--warmup", "soon"], ["--pages", "0"], ["--batch", "0"], ["--batch", "70000"],
           ["--qd", "0"], ["--qd", "9999"], ["--threads", "0"], ["--sync", "sometimes"],
           ["--sync", "every:"], ["--sync", "every:0"], ["--processes", "0"],
           ["--processes", "65"], ["--store-size", "0"], ["--store-size", "big"],
           ["--io-style", "mmap"], ["--submitter", "aio"], ["--workload", "oltp"],
           ["--zipf", "1.5"], ["--seed", "-3"], ["--path", "fastest"], ["--policy", "yolo"],
           ["--json", "--csv"], ["--bogus"], ["-x"], ["--json=yes"],
           ["--file-size", "1m", "--page-size", "16k", "--batch", "128"]]
    for b in bad:
        usage_error(["run", f] + b)
    usage_error(["run"])
    usage_error(["run", "a", "b"])
    usage_error(["run", f, "--paths", "auto"])           # compare-only option
    usage_error(["compare", f, "--path", "auto"])        # run-only option
    usage_error(["compare", f, "--repeat", "0"])
    usage_error(["compare", f, "--repeat", "1000"])
    usage_error(["compare", f, "--paths", "auto,auto"])
    usage_error(["compare", f, "--paths", "auto,nope"])
    # --submitter engine: the bench's ring drives the library's staged protocol; the library
    # neither stages pages for it (--write-behind) nor keeps its pages (--verify).
    for cmd in ["run", "compare"]:
        usage_error_says([cmd, f, "--submitter", "engine", "--write-behind", "--sync",
                          "every:64"], "--submitter engine", "--write-behind")
        usage_error_says([cmd, f, "--submitter", "engine", "--verify"], "--verify")
    # --write-behind defers durability: refused where every batch is made durable (the
    # default --sync batch, --sync N, the checkpoint workload's per-batch default), with a
    # message naming the option and the --sync values that work; its size needs it.
    for cmd in ["run", "compare"]:
        usage_error_says([cmd, f, "--write-behind"], "--write-behind", "--sync every:N",
                         "(the default)")
        usage_error_says([cmd, f, "--write-behind", "--sync", "batch"], "--write-behind",
                         "--sync batch", "every:N")
        usage_error_says([cmd, f, "--sync", "128", "--write-behind"], "--write-behind",
                         "--sync 128", "every:128")
        usage_error_says([cmd, f, "--write-behind", "--workload", "checkpoint"],
                         "--write-behind", "--sync batch")
        usage_error_says([cmd, f, "--write-behind", "--sync", "every:64", "--sync", "batch"],
                         "--write-behind")  # the last --sync wins
        usage_error_says([cmd, f, "--write-behind-size", "4m", "--sync", "every:64"],
                         "--write-behind-size needs --write-behind")
        for v in ["0", "x", "-1m", "1.5k", ""]:
            usage_error_says([cmd, f, "--write-behind", "--sync", "every:64",
                              "--write-behind-size", v], "--write-behind-size")
        usage_error_says([cmd, f, "--write-behind", "--sync", "never", "--page-size", "16k",
                          "--write-behind-size", "8k"], "--write-behind-size", "one page")
        usage_error_says([cmd, f, "--write-behind=yes", "--sync", "never"], "--write-behind")
        usage_error_says([cmd, f, "--write-behind", "--sync", "never", "--write-behind-size"],
                         "--write-behind-size")
        usage_error_says([cmd, f, "--verify=1"], "--verify")
    usage_error(["probe"])
    usage_error(["probe", "a", "b"])
    usage_error(["probe", "/tmp", "--page-size", "3k"])
    usage_error(["probe", "/tmp", "--io-style", "weird"])
    rc, _, err = run(["probe", "/nonexistent-dir/file"])
    check(rc == 1 and len(err.strip().splitlines()) == 1, f"probe missing file: exit {rc}, {err!r}")
    for b in ["atomio-baseline-pwritev2", "atomio-baseline-dblwr", "atomio-baseline-uring"]:
        prog = os.path.join(BENCH_DIR, b)
        if not os.path.exists(prog):
            continue
        usage_error(["--batch", "0", "f"], prog)
        usage_error(["f", "--write-behind", "--sync", "every:64"], prog)  # the library's mode
        usage_error([], prog)
        rc, out, _ = run(["--help"], prog)
        check(rc == 0 and out.startswith("usage: " + b), f"{b} --help")


def check_record(rec, what):
    for k in RUN_KEYS:
        check(k in rec, f"{what}: run record lacks {k!r}")
    check(rec.get("error") is None, f"{what}: run failed: {rec.get('error')}")
    check(rec.get("pages", 0) > 0, f"{what}: no pages measured")
    check(rec.get("pages_per_s", 0) > 0, f"{what}: pages_per_s {rec.get('pages_per_s')}")


def test_run_outputs(tmp):
    f = os.path.join(tmp, "data.bin")
    svg = os.path.join(tmp, "chart.svg")
    common = [f, "--path", "unsafe", "--file-size", "4m", "--page-size", "16k", "--batch", "8",
              "--pages", "256", "--warmup", "0", "--no-progress"]
    rc, out, err = run(["run"] + common + ["--json", "--svg", svg])
    check(rc == 0, f"run --json exit {rc}: {err.strip()}")
    check(os.path.getsize(f) == 4 << 20, "run created and filled the file to --file-size")
    try:
        doc = json.loads(out)
    except ValueError as e:
        check(False, f"run --json is not JSON: {e}: {out[:200]!r}")
        return
    check(doc.get("schema") == "atomio-bench/1" and doc.get("command") == "run", "schema/command")
    for k in CONFIG_KEYS + ["repeat", "interleaved", "policy", "doublewrite_dir"]:
        check(k in doc.get("config", {}), f"config lacks {k!r}")
    check(doc["config"].get("page_size_bytes") == 16384, "config page size")
    check(doc["config"].get("batch_pages") == 8, "config batch")
    check(isinstance(doc.get("file"), dict) and "filled_by_tool" in doc["file"], "file object")
    res = doc.get("results", [])
    check(len(res) == 1, f"run has one result, got {len(res)}")
    if res:
        r = res[0]
        for k in ["name", "kind", "path_requested", "path_actual", "runs_ok", "failed",
                  "ratio_to_unsafe", "ratio_to_bare", "bare_name", "runs"] + FIGS:
            check(k in r, f"result lacks {k!r}")
        for k in FIGS:
            v = r.get(k)
            check(isinstance(v, dict) and set(v) == {"median", "min", "max"}, f"{k} shape")
        check(r.get("path_requested") == "UNSAFE", "path_requested")
        check(r.get("pages_per_s", {}).get("median", 0) > 0, "pages_per_s median > 0")
        check(r.get("device_bytes_per_page", {}).get("median") == 16384,
              f"UNSAFE writes each page once: {r.get('device_bytes_per_page')}")
        check(abs(r.get("syncs_per_page", {}).get("median", 0) - 1 / 8) < 0.02,
              f"sync every batch of 8: {r.get('syncs_per_page')}")
        check(len(r.get("runs", [])) == 1, "one run record")
        for rec in r.get("runs", []):
            check_record(rec, "run")
            check(rec["pages"] == 256, f"--pages 256 measured {rec['pages']}")
    check(set(doc.get("summary", {})) >= {"fastest_safe_path", "auto_path"}, "summary")
    try:
        root = ET.parse(svg).getroot()
        check(root.tag == "{http://www.w3.org/2000/svg}svg", f"svg root {root.tag}")
        check(len(root.findall(".//{http://www.w3.org/2000/svg}rect")) >= 2, "svg has bars")
    except (ET.ParseError, OSError) as e:
        check(False, f"svg not well-formed: {e}")

    rc, out, err = run(["run"] + common + ["--csv", "--workload", "checkpoint", "--buffered"])
    check(rc == 0, f"run --csv exit {rc}: {err.strip()}")
    rows = list(csv.reader(io.StringIO(out)))
    check(len(rows) == 2, f"csv: header + 1 row, got {len(rows)}")
    if len(rows) == 2:
        check(len(rows[0]) == len(rows[1]), "csv: row has as many columns as the header")
        check(rows[0][:5] == ["name", "kind", "path_actual", "runs_ok", "pages_per_s"],
              f"csv header {rows[0][:5]}")
    rc, out, err = run(["run"] + common)
    check(rc == 0 and "pages/s" in out and "UNSAFE" in out, f"table output ({err.strip()})")
    check("\r" not in err, "no progress bar when stderr is not a terminal")

    # Driver semantics: pages budget shared by threads, sync cadence per thread.
    for extra, want_pages, want_spp in [
            (["--threads", "2", "--workload", "checkpoint"], 256, 1 / 8),
            (["--sequential", "--sync", "16"], 256, 1 / 16),
            (["--sync", "never", "--batch", "1"], 256, 0.0)]:
        rc, out, err = run(["run"] + common + extra + ["--json"])
        check(rc == 0, f"run {extra}: exit {rc}: {err.strip()}")
        try:
            rec = json.loads(out)["results"][0]["runs"][0]
            check(rec["pages"] == want_pages, f"run {extra}: {rec['pages']} pages")
            check(abs(rec["syncs_per_page"] - want_spp) < 1e-9,
                  f"run {extra}: syncs/page {rec['syncs_per_page']}, want {want_spp}")
            if "--batch" in extra:
                check(rec["lat_page_source"] == "call", f"batch 1 latency source {rec}")
        except (ValueError, KeyError, IndexError) as e:
            check(False, f"run {extra} --json: {e}")

    # DOUBLEWRITE: every page also goes to the store, made beside the file and removed after.
    rc, out, err = run(["run"] + common + ["--path", "doublewrite", "--json"])
    check(rc == 0, f"run --path doublewrite exit {rc}: {err.strip()}")
    try:
        r = json.loads(out)["results"][0]
        check(r["path_actual"] == "DOUBLEWRITE", f"doublewrite ran {r['path_actual']}")
        check(r["dblwr_bytes_per_page"]["median"] >= 16384,
              f"doublewrite store bytes/page {r['dblwr_bytes_per_page']}")
        check(r["device_bytes_per_page"]["median"] >= 2 * 16384,
              f"doublewrite device bytes/page {r['device_bytes_per_page']}")
    except (ValueError, KeyError, IndexError) as e:
        check(False, f"run --path doublewrite --json: {e}")
    check(not os.path.exists(f + ".atomio-dblwr"), "doublewrite dir removed after the run")

    # Several writer processes, one shared store, deferred durability: figures summed over the
    # processes, the new counters present, the mode in the config.
    rc, out, err = run(["run"] + common + ["--path", "doublewrite", "--processes", "2",
                                           "--batch", "1", "--sync", "every:64", "--json"])
    check(rc == 0, f"run --processes 2 exit {rc}: {err.strip()}")
    try:
        doc = json.loads(out)
        check(doc["config"]["processes"] == 2, f"config processes {doc['config'].get('processes')}")
        check(doc["config"]["doublewrite_mode"] == "deferred",
              f"config doublewrite_mode {doc['config'].get('doublewrite_mode')}")
        rec = doc["results"][0]["runs"][0]
        check(rec["pages"] == 256, f"--processes 2 measured {rec['pages']} pages, want 256")
        check(rec["processes"] == 2, f"run record processes {rec.get('processes')}")
        for k in ["bounce_copies", "forced_syncs", "group_commits", "group_records",
                  "group_commit_records", "store_bytes", "store_bytes_used", "attached",
                  "pages_staged", "staged_reads", "staged_now", "verified_pages",
                  "verify_staged_reads"]:
            check(k in rec, f"run record has {k}")
        check(rec["pages_staged"] == 0 and rec["staged_now"] == 0,
              f"deferred without write-behind stages nothing: {rec['pages_staged']}")
        res = doc["results"][0]
        for k in ["pages_staged", "staged_reads", "staged_now"]:
            check(res.get(k) == {"median": None, "min": None, "max": None},
                  f"{k} is null without write-behind: {res.get(k)}")
        check(doc["config"].get("write_behind") is False, "config write_behind false")
        check("write_behind_bytes" in doc["config"], "config has write_behind_bytes")
        check(rec["group_commits"] > 0 and rec["store_bytes"] > 0,
              f"store counters {rec['group_commits']} {rec['store_bytes']}")
    except (ValueError, KeyError, IndexError) as e:
        check(False, f"run --processes 2 --json: {e}")
    check(not os.path.exists(f + ".atomio-dblwr"), "doublewrite dir removed after --processes")
    rc, out, err = run(["run"] + common + ["--processes", "2", "--json"])
    try:
        rec = json.loads(out)["results"][0]["runs"][0]
        check(rc == 0 and rec["pages"] == 256 and rec["processes"] == 2,
              f"UNSAFE --processes 2: rc {rc}, {rec.get('pages')} pages")
        check(json.loads(out)["config"]["doublewrite_mode"] == "sync_batch", "default mode")
    except (ValueError, KeyError, IndexError) as e:
        check(False, f"UNSAFE --processes 2 --json: {e} {err.strip()}")
    rc, out, err = run(common[:1] + common[3:] +
                       ["--processes", "2", "--json"],
                       prog=os.path.join(BENCH_DIR, "atomio-baseline-dblwr"))
    try:
        rec = json.loads(out)
        check(rc == 0 and rec["pages"] == 256 and rec["processes"] == 2,
              f"bare-dblwr --processes 2: rc {rc}, {rec.get('pages')} pages, {err.strip()}")
        check(rec["bytes_doublewrite"] == 256 * 16384, f"bare-dblwr store bytes {rec}")
    except (ValueError, KeyError) as e:
        check(False, f"bare-dblwr --processes 2 --json: {e} {err.strip()}")

    # --verify: the last pages of every thread read back, on every path and sync mode.
    for extra in [["--path", "unsafe"], ["--path", "doublewrite"],
                  ["--path", "doublewrite", "--sync", "every:32", "--threads", "2"],
                  ["--path", "doublewrite", "--processes", "2", "--batch", "1",
                   "--sync", "every:64", "--direct"]]:
        rc, out, err = run(["run"] + common + extra + ["--verify", "--json"])
        check(rc == 0, f"run --verify {extra}: exit {rc}: {err.strip()}")
        try:
            doc = json.loads(out)
            rec = doc["results"][0]["runs"][0]
            check(doc["config"].get("verify") is True, "config verify true")
            check(rec["verified_pages"] > 0, f"--verify {extra}: {rec['verified_pages']} pages")
        except (ValueError, KeyError, IndexError) as e:
            check(False, f"run --verify {extra} --json: {e}")
    rc, out, err = run(["run"] + common + ["--verify"])
    check(rc == 0 and "verify: the last 8 page(s) written read back as written" in out,
          f"--verify table line: {out[-400:]!r} {err.strip()}")

    test_write_behind(common, f)

    # A path the file cannot do is a runtime error (1) with one line naming the reason.
    rc, out, err = run(["run"] + common + ["--path", "buffered"])
    check(rc == 1, f"forced impossible path exits 1, got {rc}")
    check("BUFFERED_ATOMIC" in err, f"forced path error names the path: {err.strip()!r}")

    rc, out, err = run(["probe", f, "--json", "--page-size", "16k"])
    check(rc == 0, f"probe --json exit {rc}: {err.strip()}")
    try:
        p = json.loads(out)
        for k in ["schema", "command", "path", "page_size_bytes", "io_style", "caps", "paths",
                  "auto"]:
            check(k in p, f"probe lacks {k!r}")
        for k in ["fs_type", "fs_block_size_bytes", "sys_page_size_bytes", "statx_mask",
                  "statx_attributes", "dio_mem_align_bytes", "dio_offset_align_bytes",
                  "atomic_unit_min_bytes", "atomic_unit_max_bytes", "atomic_unit_max_opt_bytes",
                  "atomic_segments_max", "hw_atomic_unit_max_bytes", "dev_major", "dev_minor"]:
            check(k in p.get("caps", {}), f"probe caps lack {k!r}")
        for k in ["DIRECT_ATOMIC", "BUFFERED_ATOMIC", "DOUBLEWRITE", "UNSAFE"]:
            v = p.get("paths", {}).get(k, {})
            check("available" in v and isinstance(v.get("reason"), str), f"probe paths.{k}")
        check(isinstance(p.get("auto", {}).get("reason"), str), "probe auto.reason")
    except ValueError as e:
        check(False, f"probe --json is not JSON: {e}")
    rc, out, err = run(["probe", f])
    check(rc == 0 and "AUTO" in out and "DIRECT_ATOMIC" in out, "probe table")

    for b in ["pwritev2", "dblwr", "uring"]:
        prog = os.path.join(BENCH_DIR, "atomio-baseline-" + b)
        if not os.path.exists(prog):
            print(f"note: atomio-baseline-{b} not built (liburing missing?)")
            continue
        args = [f, "--file-size", "4m", "--batch", "8", "--pages", "128", "--warmup", "0",
                "--json", "--submitter", "sync" if b == "pwritev2" else "auto"]
        rc, out, err = run(args, prog)
        check(rc == 0, f"baseline {b} exit {rc}: {err.strip()}")
        try:
            rec = json.loads(out)
            check_record(rec, "baseline " + b)
            for k in CONFIG_KEYS + ["schema", "command", "atomic"]:
                check(k in rec, f"baseline {b} lacks {k!r}")
            want = 32768 if b == "dblwr" else 16384
            check(rec.get("device_bytes_per_page") == want,
                  f"baseline {b}: {rec.get('device_bytes_per_page')} device bytes/page, want {want}")
        except ValueError as e:
            check(False, f"baseline {b} output not JSON: {e}: {out[:200]!r}")


def test_write_behind(common, f):
    """--write-behind end to end. Needs a library with ATOMIO_DOUBLEWRITE_WRITE_BEHIND: before
    it, the ctx open is refused and these checks fail."""
    # Several writer processes on one instance, page-at-a-time, deferred syncs: every process
    # opens its ctx in the one mode; the pages are read back through the staging and after
    # the final sync (which must flush it).
    for extra in [["--processes", "2", "--batch", "1", "--sync", "every:64"],
                  ["--processes", "2", "--batch", "1", "--sync", "every:64", "--buffered",
                   "--page-size", "8k", "--write-behind-size", "1m"],
                  ["--batch", "8", "--threads", "2", "--sync", "never"],
                  ["--batch", "4", "--sync", "deferred", "--direct"]]:
        args = ["run"] + common + ["--path", "doublewrite", "--write-behind", "--verify",
                                   "--json"] + extra
        rc, out, err = run(args)
        check(rc == 0, f"run --write-behind {extra}: exit {rc}: {err.strip()}")
        if rc != 0:
            continue  # one line per failed run, not every figure it lacks
        try:
            doc = json.loads(out)
            c = doc["config"]
            check(c["doublewrite_mode"] == "write_behind", f"doublewrite_mode {c}")
            check(c["write_behind"] is True, "config write_behind true")
            want_size = 1 << 20 if "--write-behind-size" in extra else None
            check(c["write_behind_bytes"] == want_size,
                  f"config write_behind_bytes {c['write_behind_bytes']}, want {want_size}")
            res = doc["results"][0]
            rec = res["runs"][0]
            check(rec["error"] is None and rec["path_actual"] == "DOUBLEWRITE",
                  f"--write-behind {extra}: {rec.get('error')} {rec.get('path_actual')}")
            check(rec["pages"] == 256, f"--write-behind {extra}: {rec['pages']} pages")
            check(0 < rec["pages_staged"] <= rec["pages"],
                  f"--write-behind {extra}: pages_staged {rec['pages_staged']} of "
                  f"{rec['pages']}")
            check(rec["staged_reads"] == 0, f"the workload does not read: {rec['staged_reads']}")
            check(rec["verified_pages"] > 0, f"--write-behind {extra}: nothing verified")
            check(rec["verify_staged_reads"] <= rec["verified_pages"],
                  f"staged reads {rec['verify_staged_reads']} of {rec['verified_pages']}")
            procs = 2 if "--processes" in extra else 1
            check(rec["processes"] == procs and rec["attached"] == procs,
                  f"--write-behind {extra}: processes {rec['processes']} attached "
                  f"{rec['attached']}")
            for k in ["pages_staged", "staged_reads", "staged_now"]:
                check(isinstance(res[k]["median"], (int, float)),
                      f"--write-behind: figure {k} {res[k]}")
        except (ValueError, KeyError, IndexError, TypeError) as e:
            check(False, f"run --write-behind {extra} --json: {e}: {err.strip()}")
        check(not os.path.exists(f + ".atomio-dblwr"), "doublewrite dir removed after")
    # Table: the mode in the header, the staging columns and their legend.
    rc, out, err = run(["run"] + common + ["--path", "doublewrite", "--write-behind", "--sync",
                                           "every:64", "--write-behind-size", "2m"])
    check(rc == 0, f"run --write-behind table: exit {rc}: {err.strip()}")
    for w in ["doublewrite: write_behind", "staging 2 MiB", "staged", "st.read", "st.now",
              "write-behind"]:
        check(w in out, f"--write-behind table lacks {w!r}")
    # compare: every row opens its ctx in the mode; only DOUBLEWRITE stages, so UNSAFE has no
    # staging figures; the bare loops run as without it.
    rc, out, err = run(["compare"] + common[:1] + common[3:] +
                       ["--paths", "doublewrite,unsafe", "--repeat", "1", "--write-behind",
                        "--sync", "every:64", "--baselines", "--json"])
    check(rc == 0, f"compare --write-behind: exit {rc}: {err.strip()}")
    try:
        rows = {r["name"]: r for r in json.loads(out)["results"]}
        check(rows["DOUBLEWRITE"]["pages_staged"]["median"] > 0,
              f"compare --write-behind: DOUBLEWRITE staged {rows['DOUBLEWRITE']['pages_staged']}")
        check(rows["UNSAFE"]["pages_staged"]["median"] is None,
              f"compare --write-behind: UNSAFE staging figure {rows['UNSAFE']['pages_staged']}")
        check(rows["bare-dblwr"]["runs_ok"] == 1, "compare --write-behind: bare-dblwr ran")
    except (ValueError, KeyError, IndexError, TypeError) as e:
        check(False, f"compare --write-behind --json: {e}: {err.strip()}")


def main():
    tmp = tempfile.mkdtemp(prefix="atomio-bench-test-")
    try:
        test_conventions()
        test_parsing()
        test_run_outputs(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
