#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn run.sh's raw results into runs.csv, runs.jsonl and medians.md.

  summarize.py DIR          DIR/raw/*/ -> DIR/runs.csv, DIR/runs.jsonl, DIR/medians.md
  summarize.py --one RAW    print one run's figures (run.sh calls it after each run)

Each raw run directory holds run.env (numbers run.sh measured), pgbench.txt and server.log.
Per-transaction figures divide by pgbench's "number of transactions actually processed".
"""
import csv
import json
import os
import re
import statistics
import sys

CONFIG_ORDER = ["stock-on", "stock-off", "atomio"]
COUNTER_RE = re.compile(
    r"atomio: checkpointer counters: pages direct_atomic=(\d+) buffered_atomic=(\d+) "
    r"doublewrite=(\d+) unsafe=(\d+), batches=(\d+), group_commits=(\d+) \(records (\d+)\), "
    r"syncs=(\d+), forced_syncs=(\d+), downgrades=(\d+), bytes data=(\d+) doublewrite=(\d+); "
    r"store used (\d+) of (\d+) bytes, (\d+) processes attached")
COUNTER_KEYS = ["direct_atomic", "buffered_atomic", "doublewrite", "unsafe", "batches",
                "group_commits", "group_records", "syncs", "forced_syncs", "downgrades",
                "bytes_data", "bytes_doublewrite", "store_used", "store_bytes", "attached"]
# Added with write-behind; older logs lack it.
STAGE_RE = re.compile(r"write-behind pages_staged=(\d+) staged_reads=(\d+) staged_now=(\d+)")
STAGE_KEYS = ["pages_staged", "staged_reads", "staged_now"]
CKPT_RE = re.compile(
    r"checkpoint complete: wrote (\d+) buffers .*?write=([\d.]+) s, sync=([\d.]+) s, "
    r"total=([\d.]+) s")


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            env[k] = v.strip('"')
    return env


def num(s):
    try:
        return int(s)
    except (TypeError, ValueError):
        try:
            return float(s)
        except (TypeError, ValueError):
            return None


def parse_run(raw):
    env = read_env(os.path.join(raw, "run.env"))
    r = {"run": os.path.basename(raw.rstrip("/"))}
    for k in ["fs", "series", "config", "settings", "loop"]:
        r[k] = env.get(k)
    for k in ["round", "order", "duration", "scale", "warmup", "pgbench_rc", "wal_bytes"]:
        r[k] = num(env.get(k))
    t0, t1 = num(env.get("t0")), num(env.get("t1"))
    r["elapsed_s"] = round(t1 - t0, 2) if t0 and t1 else None
    d0, d1, d2 = (num(env.get(k)) for k in ("dev_bytes0", "dev_bytes1", "dev_bytes2"))
    r["dev_bytes"] = d1 - d0 if d0 is not None and d1 is not None else None
    r["dev_bytes_incl_ckpt"] = d2 - d0 if d0 is not None and d2 is not None else None

    txt = open(os.path.join(raw, "pgbench.txt"), errors="replace").read()
    m = re.search(r"number of transactions actually processed: (\d+)", txt)
    r["txns"] = int(m.group(1)) if m else None
    # without -C: "(without initial connection time)"; with -C: "(including reconnection times)"
    m = re.search(r"tps = ([\d.]+) \((?:without initial connection time|including reconnection times)\)", txt)
    r["tps"] = float(m.group(1)) if m else None
    m = re.search(r"latency average = ([\d.]+) ms", txt)
    r["lat_ms"] = float(m.group(1)) if m else None
    m = re.search(r"number of failed transactions: (\d+)", txt)
    r["failed_txns"] = int(m.group(1)) if m else None

    for k, v in (("wal_per_txn", r["wal_bytes"]), ("dev_per_txn", r["dev_bytes"]),
                 ("dev_incl_ckpt_per_txn", r["dev_bytes_incl_ckpt"])):
        r[k] = round(v / r["txns"], 1) if v is not None and r["txns"] else None

    # pg_stat_bgwriter over the window (run.sh records it since the second version):
    # who wrote the buffers, the checkpointer, the background writer or backends (evictions).
    # The checkpointer publishes buffers_backend (and its own counts) only now and then, so
    # the figures "to the final checkpoint" also include what the final CHECKPOINT wrote.
    b0, b1, b2 = (env.get(k, "").split() for k in ("bgwriter0", "bgwriter1", "bgwriter2"))
    for i, k in enumerate(["buffers_checkpoint", "buffers_clean", "buffers_backend", "buffers_backend_fsync"]):
        r[k] = int(b1[i]) - int(b0[i]) if len(b0) == 4 and len(b1) == 4 else None
        r[k + "_to_final_ckpt"] = int(b2[i]) - int(b0[i]) if len(b0) == 4 and len(b2) == 4 else None
    # Load average (1 min) at the end of the window: the machine is shared.
    la = env.get("loadavg1", "").split()
    r["loadavg1"] = float(la[0]) if la else None
    lines = []
    logp = os.path.join(raw, "server.log")
    if os.path.exists(logp):
        lines = open(logp, errors="replace").read().splitlines()
    l0, l1, l2 = (num(env.get(k)) or 0 for k in ("log_line0", "log_line1", "log_line2"))
    window, final = lines[l0:l1], lines[l1:l2]
    r["ckpt_starts_in_window"] = sum("checkpoint starting: time" in x for x in window)
    ck = [CKPT_RE.search(x) for x in window]
    ck = [m for m in ck if m]
    r["ckpts_in_window"] = len(ck)
    r["ckpt_buffers"] = sum(int(m.group(1)) for m in ck)
    r["ckpt_write_s"] = round(sum(float(m.group(2)) for m in ck), 3)
    r["ckpt_sync_s"] = round(sum(float(m.group(3)) for m in ck), 3)
    r["ckpt_total_s"] = round(sum(float(m.group(4)) for m in ck), 3)
    fk = [m for m in (CKPT_RE.search(x) for x in final) if m]
    r["final_ckpt_buffers"] = int(fk[-1].group(1)) if fk else None
    r["final_ckpt_total_s"] = float(fk[-1].group(4)) if fk else None
    # The checkpointer's counters since the server started, logged by the CHECKPOINT after
    # the window (the last line before the shutdown checkpoint's).
    cm = [m for m in (COUNTER_RE.search(x) for x in lines[:l2]) if m]
    for i, k in enumerate(COUNTER_KEYS):
        r["atomio_" + k] = int(cm[-1].group(i + 1)) if cm else None
    sm = [m for m in (STAGE_RE.search(x) for x in lines[:l2]) if m]
    for i, k in enumerate(STAGE_KEYS):
        r["atomio_" + k] = int(sm[-1].group(i + 1)) if sm else None
    return r


def fmt(v, nd=0):
    if v is None:
        return "-"
    if nd == 0:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


def med(rows, key):
    v = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(v) if v else None


def ratio(a, b):
    return a / b if a is not None and b else None


def summarize(out):
    rawdir = os.path.join(out, "raw")
    runs = []
    for d in sorted(os.listdir(rawdir)):
        p = os.path.join(rawdir, d)
        if os.path.exists(os.path.join(p, "run.env")) and os.path.exists(os.path.join(p, "pgbench.txt")):
            runs.append(parse_run(p))
    runs.sort(key=lambda r: (r["fs"], r["series"] != "30s", r["round"], r["order"]))
    keys = list(runs[0].keys()) if runs else []
    with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(runs)
    with open(os.path.join(out, "runs.jsonl"), "w") as f:
        for r in runs:
            f.write(json.dumps(r) + "\n")

    groups = {}
    for r in runs:
        if r["pgbench_rc"] == 0 and r["txns"]:
            groups.setdefault((r["fs"], r["series"], r["config"]), []).append(r)
    configs = CONFIG_ORDER + sorted({k[2] for k in groups} - set(CONFIG_ORDER))
    md = ["| fs | series | config | n | TPS (min-max) | TPS ratio | paired TPS ratio | WAL B/txn | WAL ratio | device B/txn | "
          "device ratio | device B/txn incl. final ckpt | ratio | ckpts in window | ckpt buffers | "
          "forced syncs | group size |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    table = []
    for fs in sorted({k[0] for k in groups}):
        for series in ["30s", "5min"]:
            base = groups.get((fs, series, "stock-on"))
            if not base and not any((fs, series, c) in groups for c in configs):
                continue
            b = {k: med(base, k) for k in ("tps", "wal_per_txn", "dev_per_txn", "dev_incl_ckpt_per_txn")} if base else {}
            for c in configs:
                g = groups.get((fs, series, c))
                if not g:
                    continue
                m = {k: med(g, k) for k in ("tps", "wal_per_txn", "dev_per_txn", "dev_incl_ckpt_per_txn",
                                            "ckpts_in_window", "ckpt_buffers", "atomio_forced_syncs")}
                gc = med(g, "atomio_group_commits")
                gr = med(g, "atomio_group_records")
                row = {"fs": fs, "series": series, "config": c, "n": len(g), **{"median_" + k: v for k, v in m.items()},
                       "tps_ratio": ratio(m["tps"], b.get("tps")),
                       "wal_ratio": ratio(m["wal_per_txn"], b.get("wal_per_txn")),
                       "dev_ratio": ratio(m["dev_per_txn"], b.get("dev_per_txn")),
                       "dev_incl_ratio": ratio(m["dev_incl_ckpt_per_txn"], b.get("dev_incl_ckpt_per_txn")),
                       "tps_min": min(r["tps"] for r in g), "tps_max": max(r["tps"] for r in g)}
                # Paired: each round's run against the same round's stock-on (run minutes apart).
                pairs = {r["round"]: r for r in (base or [])}
                pr = [r["tps"] / pairs[r["round"]]["tps"] for r in g if r["round"] in pairs]
                row["tps_ratio_paired"] = statistics.median(pr) if pr else None
                table.append(row)
                md.append(f"| {fs} | {series} | {c} | {len(g)} | {fmt(m['tps'])} ({fmt(row['tps_min'])}-{fmt(row['tps_max'])}) | {fmt(row['tps_ratio'], 3)} | "
                          f"{fmt(row['tps_ratio_paired'], 3)} | "
                          f"{fmt(m['wal_per_txn'])} | {fmt(row['wal_ratio'], 3)} | {fmt(m['dev_per_txn'])} | "
                          f"{fmt(row['dev_ratio'], 3)} | {fmt(m['dev_incl_ckpt_per_txn'])} | "
                          f"{fmt(row['dev_incl_ratio'], 3)} | {fmt(m['ckpts_in_window'], 1)} | "
                          f"{fmt(m['ckpt_buffers'])} | {fmt(m['atomio_forced_syncs'])} | "
                          f"{fmt(ratio(gr, gc), 2) if gc else '-'} |")
    md.append("")
    md.append("Medians over rounds; ratios are median / median of stock-on in the same fs and series; "
              "the paired TPS ratio is the median over rounds of run / same round's stock-on. "
              "Counters (forced syncs, group size = group_records / group_commits) are the "
              "checkpointer's atomio_ctx_get_stats line after the final CHECKPOINT.")
    with open(os.path.join(out, "medians.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "medians.json"), "w") as f:
        json.dump(table, f, indent=1)
    print("\n".join(md))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        r = parse_run(sys.argv[2])
        print(f"   {r['run']}: tps {fmt(r['tps'], 1)}, txns {r['txns']}, WAL {fmt(r['wal_per_txn'])} B/txn, "
              f"device {fmt(r['dev_per_txn'])} B/txn ({fmt(r['dev_incl_ckpt_per_txn'])} incl. final ckpt), "
              f"ckpts {r['ckpts_in_window']}, forced_syncs {r['atomio_forced_syncs']}")
        return 0 if r["tps"] is not None else 1
    if len(sys.argv) == 2:
        summarize(sys.argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
