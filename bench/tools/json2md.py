#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
json2md.py -- turn `atomio-bench compare --json` output into the Markdown table used in
docs/benchmarks.md (medians, pages/s with min-max, ratios to UNSAFE and to the bare loop).

usage: json2md.py RESULT.json [...]
"""
import json
import sys


def fmt(v, digits=0):
    if v is None:
        return "-"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def table(doc):
    c = doc["config"]
    f = doc.get("file", {})
    print(f"**{f.get('fs_type', '?')}**, {c['page_size_bytes'] // 1024} KiB pages, "
          f"{c['workload']}, batch {c['batch_pages']}, qd {c['qd']}, {c['threads']} thread(s) "
          f"x {c.get('processes', 1)} process(es), sync {c['sync_every']} "
          f"({c.get('doublewrite_mode', 'sync_batch')}), "
          f"store {str(c['store_size_bytes'] // 2**20) + ' MiB' if c.get('store_size_bytes') else 'default'}, "
          f"io {c['io_style']}, submitter {c['submitter_requested']}, "
          f"{'pages copied by the library' if c.get('stable_pages') is False else 'stable pages'}, "
          f"{c['duration_s']} s + {c['warmup_s']} s warm-up, median of {c['repeat']} "
          f"interleaved runs\n")
    print("| row | path used | pages/s [min-max] | MB/s | page p50/p99/p99.9 us | "
          "batch p50/p99 us | device B/page | store B/page | syncs/page | CPU us/page | "
          "group | forced | vs UNSAFE | vs bare |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in doc["results"]:
        if r["failed"] and r["runs_ok"] == 0:
            err = next((x["error"] for x in r["runs"] if x["error"]), "failed")
            print(f"| {r['name']} | - | failed: {err.split(': ', 1)[-1]} ||||||||||||")
            continue
        m = {k: v["median"] for k, v in r.items() if isinstance(v, dict) and "median" in v}
        pps = r["pages_per_s"]
        lat = "/".join(fmt(m[k], 0) for k in ["lat_page_p50_us", "lat_page_p99_us",
                                               "lat_page_p999_us"])
        blat = "/".join(fmt(m[k], 0) for k in ["lat_batch_p50_us", "lat_batch_p99_us"])
        print(f"| {r['name']} | {r['path_actual'] or '-'} | {fmt(pps['median'])} "
              f"[{fmt(pps['min'])}-{fmt(pps['max'])}] | {fmt(m['mb_per_s'], 1)} | {lat} | "
              f"{blat} | {fmt(m['device_bytes_per_page'])} | {fmt(m['dblwr_bytes_per_page'])} | "
              f"{fmt(m['syncs_per_page'], 4)} | "
              f"{fmt(m['cpu_us_per_page'], 1)} | {fmt(m.get('group_commit_records'), 2)} | "
              f"{fmt(m.get('forced_syncs'))} | {fmt(r['ratio_to_unsafe'], 2)} | "
              f"{fmt(r['ratio_to_bare'], 2)} |")
    print()


for path in sys.argv[1:]:
    with open(path) as fh:
        table(json.load(fh))
